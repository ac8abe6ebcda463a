//! What the laboratory's jobs do when they run: release results nobody released, escalate a
//! critical result left unread, analyse an uploaded ECG recording. Each finds nothing to do
//! when what it was for has already happened.

use std::sync::Arc;

use carehub_ecg::Rhythm;

use super::{
    EcgOutcome, EcgRecord, LabChangeError, LabFileKind, LabOrderChange, LabOrderStatus,
    LabRepository, LabService, analyse, read_recording, service::order_data,
};
use crate::jobs::JobChanges;
use crate::kernel::{Clock, LabFileId, LabOrderId, RepositoryError};
use crate::notifications::{
    MAX_LIST_LIMIT, NewNotification, NotificationKind, NotificationPublisher, NotificationQuery,
    NotificationRepository, Recipient, publish_committed,
};
use crate::patients::CareTeamRepository;

use super::FileStore;

/// What a laboratory job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabTaskOutcome {
    Done(String),
    /// Nothing to do, and why.
    Moot(&'static str),
}

/// Runs the laboratory's jobs.
#[derive(Clone)]
pub struct LabTasks {
    service: LabService,
    lab: Arc<dyn LabRepository>,
    files: Arc<dyn FileStore>,
    care_teams: Arc<dyn CareTeamRepository>,
    notifications: Arc<dyn NotificationRepository>,
    publisher: Arc<dyn NotificationPublisher>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for LabTasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabTasks").finish_non_exhaustive()
    }
}

impl LabTasks {
    pub fn new(
        service: LabService,
        lab: Arc<dyn LabRepository>,
        files: Arc<dyn FileStore>,
        care_teams: Arc<dyn CareTeamRepository>,
        notifications: Arc<dyn NotificationRepository>,
        publisher: Arc<dyn NotificationPublisher>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            service,
            lab,
            files,
            care_teams,
            notifications,
            publisher,
            clock,
        }
    }

    /// Releases the order's results to the patient if no doctor has yet.
    ///
    /// # Errors
    /// [`RepositoryError`]: the job retries.
    pub async fn auto_release(&self, id: LabOrderId) -> Result<LabTaskOutcome, RepositoryError> {
        let Some(detail) = self.lab.find_order(id).await? else {
            return Ok(LabTaskOutcome::Moot("the order is gone"));
        };
        let mut order = detail.listing.order;
        let from = order.status;
        let now = self.clock.now();
        if order.release(None, now).is_err() {
            return Ok(LabTaskOutcome::Moot("the results were released already"));
        }
        let notices = self.service.released_notices(&order).await?;
        let stored = match self
            .lab
            .change_order(LabOrderChange {
                order: &order,
                from,
                audit: None,
                notifications: &notices,
                jobs: &JobChanges::default(),
            })
            .await
        {
            Ok(stored) => stored,
            Err(LabChangeError::Moved) => {
                return Ok(LabTaskOutcome::Moot("the order changed meanwhile"));
            }
            Err(LabChangeError::Repository(e)) => return Err(e),
        };
        publish_committed(self.publisher.as_ref(), &stored).await;
        Ok(LabTaskOutcome::Done("released".to_owned()))
    }

    /// Tells every other doctor on the care team of a critical result whose notification the
    /// ordering doctor has not read, once.
    ///
    /// # Errors
    /// [`RepositoryError`]: the job retries.
    pub async fn escalate_critical(
        &self,
        id: LabOrderId,
    ) -> Result<LabTaskOutcome, RepositoryError> {
        let Some(detail) = self.lab.find_order(id).await? else {
            return Ok(LabTaskOutcome::Moot("the order is gone"));
        };
        let order = detail.listing.order;
        let order_uuid = *order.id.as_uuid();
        let unread = self
            .notifications
            .list(NotificationQuery {
                recipient: order.ordered_by,
                after: None,
                unread_only: true,
                with_events: false,
                limit: MAX_LIST_LIMIT,
            })
            .await?
            .into_iter()
            .any(|n| {
                n.kind == NotificationKind::LabCritical && n.data.lab_order_id == Some(order_uuid)
            });
        if !unread {
            return Ok(LabTaskOutcome::Moot("the ordering doctor read it"));
        }
        let now = self.clock.now();
        let notices: Vec<NewNotification> = self
            .care_teams
            .list(order.patient_id)
            .await?
            .into_iter()
            .filter(|m| m.is_current(now) && m.doctor_id != order.ordered_by)
            .map(|m| m.doctor_id)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|doctor| NewNotification {
                recipient: Recipient::User(doctor),
                kind: NotificationKind::LabCriticalEscalated,
                data: order_data(
                    &order,
                    "Critical lab result not yet read by the ordering doctor",
                    true,
                ),
            })
            .collect();
        if notices.is_empty() {
            return Ok(LabTaskOutcome::Moot("nobody else is on the care team"));
        }
        match self
            .notifications
            .append_once(&format!("lab.critical_escalation:{id}"), &notices, now)
            .await?
        {
            Some(stored) => {
                publish_committed(self.publisher.as_ref(), &stored).await;
                Ok(LabTaskOutcome::Done(format!(
                    "{} doctors told",
                    stored.len()
                )))
            }
            None => Ok(LabTaskOutcome::Moot("escalated already")),
        }
    }

    /// Analyses the recording `file` of the order and stores the outcome as the order's ECG
    /// analysis; a suspected atrial fibrillation tells the ordering doctor, as urgent. A
    /// recording that cannot be analysed is stored as failed, with why.
    ///
    /// # Errors
    /// [`RepositoryError`]: the job retries.
    pub async fn analyse_ecg(
        &self,
        id: LabOrderId,
        file_id: LabFileId,
    ) -> Result<LabTaskOutcome, RepositoryError> {
        let Some(detail) = self.lab.find_order(id).await? else {
            return Ok(LabTaskOutcome::Moot("the order is gone"));
        };
        let Some(main) = detail.files.iter().find(|f| f.id == file_id) else {
            return Ok(LabTaskOutcome::Moot("the recording is gone"));
        };
        if !matches!(main.kind, LabFileKind::EcgHeader | LabFileKind::EcgCsv) {
            return Ok(LabTaskOutcome::Moot("not a recording"));
        }
        if detail.listing.order.status == LabOrderStatus::Cancelled {
            return Ok(LabTaskOutcome::Moot("the order was cancelled"));
        }
        let main_bytes = self.stored(main.key()).await?;
        let signal_bytes = match main.pair {
            Some(pair) => {
                let signal =
                    detail.files.iter().find(|f| f.id == pair).ok_or_else(|| {
                        RepositoryError::new("a WFDB header lost its signal file")
                    })?;
                Some(self.stored(signal.key()).await?)
            }
            None => None,
        };
        let outcome = match read_recording(main, &main_bytes, signal_bytes.as_deref())
            .and_then(|recording| analyse(&recording))
        {
            Ok((analysis, trace)) => EcgOutcome::Analysed { analysis, trace },
            Err(reason) => EcgOutcome::Failed { reason },
        };
        let order = &detail.listing.order;
        let notices: Vec<NewNotification> = match &outcome {
            EcgOutcome::Analysed { analysis, .. }
                if analysis.rhythm == Rhythm::AtrialFibrillationSuspected =>
            {
                vec![NewNotification {
                    recipient: Recipient::User(order.ordered_by),
                    kind: NotificationKind::EcgAlert,
                    data: order_data(order, "ECG: atrial fibrillation suspected", true),
                }]
            }
            _ => Vec::new(),
        };
        let summary = match &outcome {
            EcgOutcome::Analysed { analysis, .. } => format!("rhythm {:?}", analysis.rhythm),
            EcgOutcome::Failed { .. } => "unreadable".to_owned(),
        };
        let record = EcgRecord {
            order_id: id,
            file_id,
            analyzed_at: self.clock.now(),
            outcome,
        };
        let stored = self.lab.save_ecg(&record, &notices).await?;
        publish_committed(self.publisher.as_ref(), &stored).await;
        Ok(LabTaskOutcome::Done(summary))
    }

    async fn stored(&self, key: super::StorageKey) -> Result<Vec<u8>, RepositoryError> {
        self.files
            .get(&key)
            .await?
            .ok_or_else(|| RepositoryError::new("a lab file is missing from the store"))
    }
}
