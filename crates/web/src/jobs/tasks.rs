//! What each kind of job does, by calling the domain's services.

use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;

use carehub_domain::identity::IdentityService;
use carehub_domain::jobs::{Job, JobQueue, Task};
use carehub_domain::kernel::Clock;
use carehub_domain::lab::LabTasks;
use carehub_domain::notifications::{EmailOutcome, NotificationEmails};
use carehub_domain::prescriptions::PrescriptionService;
use carehub_domain::referrals::EscalationService;
use carehub_domain::scheduling::ReminderService;

/// How long succeeded jobs are kept for administrators to read.
pub const SUCCEEDED_JOB_RETENTION: SignedDuration = SignedDuration::from_hours(7 * 24);

/// Runs tasks, each through the domain service it belongs to. A task fails with an error
/// whose message is stored on the job (so it names what went wrong, never a patient).
#[derive(Clone)]
pub struct Tasks {
    pub identity: IdentityService,
    pub emails: NotificationEmails,
    pub reminders: ReminderService,
    pub escalations: EscalationService,
    pub lab: LabTasks,
    pub prescriptions: PrescriptionService,
    pub conversations: carehub_domain::messages::ConversationService,
    pub queue: Arc<dyn JobQueue>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Tasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tasks").finish_non_exhaustive()
    }
}

impl Tasks {
    /// Runs one attempt of a job's task to its end.
    ///
    /// # Errors
    /// Whatever stopped it; the job is retried or dies.
    pub async fn run(&self, job: &Job) -> anyhow::Result<()> {
        match &job.task {
            Task::PurgeExpired => {
                let credentials = self.identity.purge_expired().await?;
                let before = self.clock.now() - SUCCEEDED_JOB_RETENTION;
                let jobs = self.queue.purge_finished(before).await?;
                let attachments = self.conversations.purge_unsent(self.clock.now()).await?;
                if credentials + jobs + attachments > 0 {
                    tracing::info!(
                        credentials,
                        jobs,
                        attachments,
                        "expired credentials, old jobs and unsent attachments purged"
                    );
                }
                Ok(())
            }
            Task::NotificationEmail {
                recipient,
                notification_id,
            } => {
                let outcome = self
                    .emails
                    .send_notification(*recipient, *notification_id)
                    .await?;
                log_skipped(job, outcome);
                Ok(())
            }
            Task::AccountApprovedEmail { user } => {
                let outcome = self.emails.send_account_approved(*user).await?;
                log_skipped(job, outcome);
                Ok(())
            }
            Task::AppointmentReminder {
                appointment,
                start_at,
                lead_secs,
            } => {
                let lead = SignedDuration::from_secs(*lead_secs);
                let outcome = self.reminders.remind(*appointment, *start_at, lead).await?;
                tracing::info!(job = %job.id, outcome = ?outcome, "appointment reminder");
                Ok(())
            }
            Task::ReferralEscalation { referral } => {
                let outcome = self.escalations.escalate(*referral).await?;
                tracing::info!(job = %job.id, outcome = ?outcome, "referral escalation");
                Ok(())
            }
            Task::LabAutoRelease { order } => {
                let outcome = self.lab.auto_release(*order).await?;
                tracing::info!(job = %job.id, outcome = ?outcome, "lab results release");
                Ok(())
            }
            Task::LabCriticalEscalation { order } => {
                let outcome = self.lab.escalate_critical(*order).await?;
                tracing::info!(job = %job.id, outcome = ?outcome, "critical lab result escalation");
                Ok(())
            }
            Task::EcgAnalysis { order, file } => {
                let outcome = self.lab.analyse_ecg(*order, *file).await?;
                tracing::info!(job = %job.id, outcome = ?outcome, "ECG analysis");
                Ok(())
            }
            Task::PrescriptionExpiry { prescription } => {
                let outcome = self.prescriptions.expire(*prescription).await?;
                tracing::info!(job = %job.id, outcome = ?outcome, "prescription expiry");
                Ok(())
            }
            Task::MessageUnread { message } => {
                let outcome = self.conversations.notify_unread(*message).await?;
                tracing::info!(job = %job.id, outcome = ?outcome, "unread message notice");
                Ok(())
            }
            Task::Probe {
                hold_ms,
                fail_attempts,
            } => {
                tokio::time::sleep(Duration::from_millis(u64::from(*hold_ms))).await;
                if job.attempts <= *fail_attempts {
                    anyhow::bail!(
                        "probe attempt {} of {fail_attempts} set to fail",
                        job.attempts
                    );
                }
                Ok(())
            }
        }
    }
}

/// An e-mail job that found nothing to send succeeds; the log says why.
fn log_skipped(job: &Job, outcome: EmailOutcome) {
    if let EmailOutcome::Skipped(why) = outcome {
        tracing::info!(job = %job.id, kind = %job.kind(), why, "e-mail not sent");
    }
}
