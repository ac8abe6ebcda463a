//! Files people send: their names, as given and never used as paths, and the storage port
//! that keeps their bytes under keys made of ids only (lab files, message attachments).

use async_trait::async_trait;

use super::{AttachmentId, ConversationId, LabFileId, LabOrderId, RepositoryError};

/// The longest file name kept.
pub const MAX_FILE_NAME_CHARS: usize = 200;

/// A file's name as its uploader gave it: a plain name with no directory part, no control
/// characters, not `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "must be a plain file name of 1 to {MAX_FILE_NAME_CHARS} characters, without a directory part or control characters"
)]
pub struct InvalidFileName;

impl FileName {
    /// # Errors
    /// [`InvalidFileName`].
    pub fn parse(raw: &str) -> Result<Self, InvalidFileName> {
        let plain = !raw.is_empty()
            && raw.chars().count() <= MAX_FILE_NAME_CHARS
            && raw != "."
            && raw != ".."
            && !raw
                .chars()
                .any(|c| c.is_control() || matches!(c, '/' | '\\' | ':'))
            && raw.trim() == raw;
        if plain {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidFileName)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the last dot, lowercased (`"100.HEA"` → `"hea"`).
    pub fn extension(&self) -> Option<String> {
        self.0
            .rsplit_once('.')
            .filter(|(stem, _)| !stem.is_empty())
            .map(|(_, ext)| ext.to_ascii_lowercase())
    }

    /// The name without its extension (`"100.hea"` → `"100"`).
    pub fn stem(&self) -> &str {
        self.0
            .rsplit_once('.')
            .filter(|(stem, _)| !stem.is_empty())
            .map_or(self.0.as_str(), |(stem, _)| stem)
    }
}

/// A path in the file store, made of ids only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StorageKey(String);

impl StorageKey {
    /// A lab order's file.
    pub fn lab_file(order: LabOrderId, file: LabFileId) -> Self {
        Self(format!("lab/{order}/{file}"))
    }

    /// A file attached to a message of a conversation.
    pub fn attachment(conversation: ConversationId, attachment: AttachmentId) -> Self {
        Self(format!("messages/{conversation}/{attachment}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Keeps files' bytes: a directory, or an S3-compatible object store.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait FileStore: Send + Sync {
    /// Stores `bytes` under `key`, replacing what was there. When this returns `Ok`, they are
    /// durably stored.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn put(&self, key: &StorageKey, bytes: Vec<u8>) -> Result<(), RepositoryError>;

    /// The bytes under `key`, or `None` when there are none.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn get(&self, key: &StorageKey) -> Result<Option<Vec<u8>>, RepositoryError>;

    /// Deletes what is under `key`; deleting nothing is no error.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn delete(&self, key: &StorageKey) -> Result<(), RepositoryError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_have_no_directory_part() {
        for ok in ["100.hea", "report final.pdf", "ECG (1).csv", ".hidden"] {
            assert!(FileName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../../etc/passwd",
            "a/b.pdf",
            "a\\b.pdf",
            "C:evil.pdf",
            "x\0.pdf",
            "line\nbreak.pdf",
            " padded.pdf",
        ] {
            assert!(FileName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn extensions_and_stems() {
        let name = FileName::parse("100.HEA").expect("valid");
        assert_eq!(
            (name.stem(), name.extension().as_deref()),
            ("100", Some("hea"))
        );
        let bare = FileName::parse("README").expect("valid");
        assert_eq!((bare.stem(), bare.extension()), ("README", None));
        let hidden = FileName::parse(".hea").expect("valid");
        assert_eq!(hidden.extension(), None);
    }

    #[test]
    fn storage_keys_are_made_of_ids() {
        let (order, file) = (LabOrderId::generate(), LabFileId::generate());
        assert_eq!(
            StorageKey::lab_file(order, file).as_str(),
            format!("lab/{order}/{file}")
        );
        let (conversation, attachment) = (ConversationId::generate(), AttachmentId::generate());
        assert_eq!(
            StorageKey::attachment(conversation, attachment).as_str(),
            format!("messages/{conversation}/{attachment}")
        );
    }
}
