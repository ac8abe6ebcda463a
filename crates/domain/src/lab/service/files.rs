//! The laboratory's files: uploads checked and stored before their descriptions, downloads
//! audited like every read, and where an order's ECG analysis stands.

use std::collections::BTreeSet;

use jiff::Timestamp;

use super::{LabError, LabService};
use crate::access::{Action, Actor};
use crate::audit::AuditAction;
use crate::jobs::{NewJob, Task};
use crate::kernel::{LabFileId, LabOrderId, RepositoryError, UserId, ValidationErrors};
use crate::lab::{
    EcgRecord, FileName, LabFile, LabFileKind, LabOrderDetail, LabTransitionError, analysable,
    read_recording,
};

/// A file as uploaded, its content already checked against its declared type.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub name: FileName,
    pub kind: LabFileKind,
    pub content_type: String,
    pub bytes: Vec<u8>,
    /// Lowercase hexadecimal SHA-256 of `bytes`.
    pub sha256: String,
    /// For a CSV recording without a time column.
    pub sampling_rate_hz: Option<f64>,
}

/// Where an order's ECG analysis stands.
#[derive(Debug, Clone, PartialEq)]
pub enum EcgState {
    /// The latest recording waits for its analysis job.
    Pending {
        file_id: LabFileId,
    },
    Done(Box<EcgRecord>),
}

impl LabService {
    /// The laboratory attaches files: reports, images, ECG recordings (a WFDB header with its
    /// signal file, by the same name; or a CSV with its sampling rate). Recordings are read
    /// before anything is stored, and analysed by a job afterwards.
    ///
    /// # Errors
    /// `Forbidden`, `OrderNotFound`, `Invalid` (an unpaired or unreadable recording; no
    /// files), `Transition` (not collected or resulted), `Moved`, `Internal`.
    pub async fn upload(
        &self,
        actor: &Actor,
        id: LabOrderId,
        uploads: Vec<Upload>,
    ) -> Result<Vec<LabFile>, LabError> {
        let (detail, basis) = self
            .authorized(
                actor,
                id,
                Action::ProcessLabOrder,
                AuditAction::LabFileUpload,
            )
            .await?;
        let order = &detail.listing.order;
        if !order.accepts_files() {
            return Err(LabTransitionError::NotFrom(order.status).into());
        }
        let now = self.gate.now();
        let files = describe(order.id, actor.user_id(), now, &uploads)?;
        let mut stored = Vec::new();
        for (file, upload) in files.iter().zip(uploads) {
            if let Err(e) = self.files.put(&file.key(), upload.bytes).await {
                self.forget(&stored).await;
                return Err(e.into());
            }
            stored.push(file.clone());
        }
        let jobs: Vec<NewJob> = files
            .iter()
            .filter(|f| matches!(f.kind, LabFileKind::EcgHeader | LabFileKind::EcgCsv))
            .map(|f| {
                NewJob::new(
                    Task::EcgAnalysis {
                        order: order.id,
                        file: f.id,
                    },
                    now,
                )
            })
            .collect();
        let event = self.gate.event(
            actor,
            Some(order.patient_id),
            AuditAction::LabFileUpload,
            Some(basis),
            now,
        );
        if let Err(e) = self
            .lab
            .add_files(order.id, order.status, &files, &event, &jobs)
            .await
        {
            self.forget(&stored).await;
            return Err(e.into());
        }
        Ok(files)
    }

    /// Deletes the bytes of files whose description was not stored; a failure leaves an
    /// orphan that nothing names, which is logged by the store and harmless.
    async fn forget(&self, files: &[LabFile]) {
        for file in files {
            let _ = self.files.delete(&file.key()).await;
        }
    }

    /// One file's description and bytes; the read is audited.
    ///
    /// # Errors
    /// `Forbidden`, `OrderNotFound`, `FileNotFound`, `Internal`.
    pub async fn download(
        &self,
        actor: &Actor,
        id: LabOrderId,
        file_id: LabFileId,
    ) -> Result<(LabFile, Vec<u8>), LabError> {
        let (detail, basis) = self
            .authorized(actor, id, Action::AccessLabOrder, AuditAction::LabFileRead)
            .await?;
        let patient_id = detail.listing.order.patient_id;
        let Some(file) = detail.files.into_iter().find(|f| f.id == file_id) else {
            return Err(self
                .gate
                .deny(
                    actor,
                    Some(patient_id),
                    AuditAction::LabFileRead,
                    LabError::FileNotFound,
                )
                .await);
        };
        let bytes = self.files.get(&file.key()).await?.ok_or_else(|| {
            RepositoryError::new(format!("file {} is missing from the store", file.id))
        })?;
        self.gate
            .allowed(actor, patient_id, AuditAction::LabFileRead, basis)
            .await?;
        Ok((file, bytes))
    }

    /// The order's ECG analysis, or that it is pending; `None` when no recording was
    /// uploaded. The read is audited.
    ///
    /// # Errors
    /// `Forbidden`, `OrderNotFound`, `Internal`.
    pub async fn ecg(&self, actor: &Actor, id: LabOrderId) -> Result<Option<EcgState>, LabError> {
        let detail = self.get(actor, id).await?;
        Ok(ecg_state(&detail))
    }
}

/// Where the order's ECG analysis stands, from its latest recording.
pub fn ecg_state(detail: &LabOrderDetail) -> Option<EcgState> {
    let latest = detail
        .files
        .iter()
        .filter(|f| matches!(f.kind, LabFileKind::EcgHeader | LabFileKind::EcgCsv))
        .max_by_key(|f| f.id)?;
    match &detail.ecg {
        Some(record) if record.file_id == latest.id => {
            Some(EcgState::Done(Box::new(record.clone())))
        }
        _ => Some(EcgState::Pending { file_id: latest.id }),
    }
}

/// The descriptions of uploaded files, with WFDB headers paired with their signal files by
/// name, and every recording read once to check it.
fn describe(
    order: LabOrderId,
    by: UserId,
    at: Timestamp,
    uploads: &[Upload],
) -> Result<Vec<LabFile>, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    if uploads.is_empty() {
        errors.add("file", "send one or more parts named file");
        return Err(errors);
    }
    let mut files: Vec<LabFile> = uploads
        .iter()
        .map(|u| LabFile {
            id: LabFileId::generate(),
            order_id: order,
            name: u.name.clone(),
            kind: u.kind,
            content_type: u.content_type.clone(),
            size: u.bytes.len() as u64,
            sha256: u.sha256.clone(),
            sampling_rate_hz: u.sampling_rate_hz,
            pair: None,
            uploaded_by: by,
            uploaded_at: at,
        })
        .collect();
    let mut names = BTreeSet::new();
    for file in &files {
        if !names.insert(file.name.as_str()) {
            errors.add("file", format!("{} is sent twice", file.name.as_str()));
        }
    }
    errors.into_result()?;
    let mut errors = ValidationErrors::new();
    for i in 0..files.len() {
        let partner_kind = match files[i].kind {
            LabFileKind::EcgHeader => LabFileKind::EcgSignal,
            LabFileKind::EcgSignal => LabFileKind::EcgHeader,
            _ => continue,
        };
        let stem = files[i].name.stem().to_owned();
        let partner = files
            .iter()
            .position(|f| f.kind == partner_kind && f.name.stem() == stem);
        match partner {
            Some(j) => files[i].pair = Some(files[j].id),
            None => errors.add(
                "file",
                format!(
                    "{} needs its {} file of the same name in the same request",
                    files[i].name.as_str(),
                    if partner_kind == LabFileKind::EcgSignal {
                        ".dat"
                    } else {
                        ".hea"
                    }
                ),
            ),
        }
    }
    errors.into_result()?;
    let mut errors = ValidationErrors::new();
    for (file, upload) in files.iter().zip(uploads) {
        let signal = match file.kind {
            LabFileKind::EcgHeader => file
                .pair
                .and_then(|pair| files.iter().position(|f| f.id == pair))
                .map(|j| uploads[j].bytes.as_slice()),
            LabFileKind::EcgCsv => None,
            _ => continue,
        };
        if let Err(reason) = read_recording(file, &upload.bytes, signal)
            .and_then(|recording| analysable(&recording).map_err(|e| e.to_owned()))
        {
            errors.add("file", format!("{}: {reason}", file.name.as_str()));
        }
    }
    errors.into_result()?;
    Ok(files)
}
