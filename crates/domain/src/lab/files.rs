//! Files attached to a lab order (reports as PDF, images, ECG recordings), and the storage
//! port that keeps their bytes. A file is stored under a key made of ids only: the name its
//! uploader gave is kept as a label and never becomes a path.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::identity::UserId;
#[cfg(any(test, feature = "mocks"))]
pub use crate::kernel::MockFileStore;
pub use crate::kernel::{FileName, FileStore, InvalidFileName, MAX_FILE_NAME_CHARS, StorageKey};
use crate::kernel::{LabFileId, LabOrderId, string_enum};

string_enum!(
    /// What a file holds, as its content showed when it was uploaded.
    LabFileKind, "lab file kind" {
        Pdf => "pdf",
        /// PNG or JPEG.
        Image => "image",
        /// A WFDB header (`.hea`) naming its signal file.
        EcgHeader => "ecg_header",
        /// A WFDB signal file (`.dat`), read through its header.
        EcgSignal => "ecg_signal",
        /// One column of samples, or `time,value`.
        EcgCsv => "ecg_csv",
    }
);

impl LabFileKind {
    /// The media type it is served with.
    pub const fn content_type(self) -> &'static str {
        match self {
            LabFileKind::Pdf => "application/pdf",
            LabFileKind::Image => "image/*",
            LabFileKind::EcgHeader => "text/plain; charset=utf-8",
            LabFileKind::EcgSignal => "application/octet-stream",
            LabFileKind::EcgCsv => "text/csv; charset=utf-8",
        }
    }
}

/// A stored file's description; its bytes are in the [`FileStore`] under [`LabFile::key`].
#[derive(Debug, Clone, PartialEq)]
pub struct LabFile {
    pub id: LabFileId,
    pub order_id: LabOrderId,
    pub name: FileName,
    pub kind: LabFileKind,
    /// The media type it is served with (an image's own: `image/png`, `image/jpeg`).
    pub content_type: String,
    pub size: u64,
    /// Lowercase hexadecimal SHA-256 of the bytes.
    pub sha256: String,
    /// A CSV recording's sampling rate, as given with it.
    pub sampling_rate_hz: Option<f64>,
    /// The other file of a WFDB pair: the header's signal file, the signal file's header.
    pub pair: Option<LabFileId>,
    pub uploaded_by: UserId,
    pub uploaded_at: Timestamp,
}

impl LabFile {
    /// Where its bytes are kept: ids only, whatever the file was called.
    pub fn key(&self) -> StorageKey {
        StorageKey::lab_file(self.order_id, self.id)
    }
}
