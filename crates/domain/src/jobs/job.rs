//! A job: what to do (its [`Task`]), when, and how its attempts went.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::kernel::{
    AppointmentId, LabFileId, LabOrderId, MessageId, PrescriptionId, ReferralId, UserId,
    string_enum, time_ordered_id,
};

time_ordered_id!(
    /// A job's identifier.
    JobId
);

time_ordered_id!(
    /// One claim of a job by one worker. Completing, failing, releasing or extending a job
    /// names its lease, so a worker whose lease expired (and whose job another worker now
    /// holds) changes nothing.
    LeaseId
);

string_enum!(
    /// What a job does; each kind has its own limit of attempts.
    JobKind, "job kind" {
        /// Deletes expired tokens, old sign-in failures and finished jobs (recurring).
        PurgeExpired => "maintenance.purge",
        /// E-mails a notification to its recipient, who asked for its kind by e-mail.
        NotificationEmail => "email.notification",
        /// Tells a staff member by e-mail that their account was approved.
        AccountApprovedEmail => "email.account_approved",
        /// Reminds an appointment's patient (and its doctor, of the first of their day) some
        /// time before it starts.
        AppointmentReminder => "appointment.reminder",
        /// Tells the sender and the administrators that an urgent or emergency referral is
        /// still unanswered.
        ReferralEscalation => "referral.escalation",
        /// Releases a lab order's results to the patient once the doctor has had them for the
        /// configured delay without releasing them.
        LabAutoRelease => "lab.auto_release",
        /// Tells every doctor on the care team of a critical result that the ordering doctor
        /// has left unread.
        LabCriticalEscalation => "lab.critical_escalation",
        /// Analyses an uploaded ECG recording.
        EcgAnalysis => "lab.ecg_analysis",
        /// Marks a prescription expired once its last day is over.
        PrescriptionExpiry => "prescription.expire",
        /// Notifies the participants who left a message unread.
        MessageUnread => "message.unread",
        /// Does nothing but hold its lease for a while, and fails its first attempts if asked:
        /// for checking and measuring the queue.
        Probe => "queue.probe",
    }
);

impl JobKind {
    /// How many times a job of this kind is tried before it is `dead`.
    pub const fn max_attempts(self) -> u32 {
        match self {
            JobKind::PurgeExpired => 3,
            // With the default backoff (10 s doubling to an hour), about nine hours of a
            // mail server being down before an e-mail is given up.
            JobKind::NotificationEmail | JobKind::AccountApprovedEmail => 12,
            JobKind::AppointmentReminder
            | JobKind::ReferralEscalation
            | JobKind::LabAutoRelease
            | JobKind::LabCriticalEscalation
            | JobKind::EcgAnalysis
            | JobKind::PrescriptionExpiry
            | JobKind::MessageUnread
            | JobKind::Probe => 5,
        }
    }
}

string_enum!(
    /// Where a job is in its life.
    JobState, "job state" {
        /// Waiting for its `run_at`.
        Scheduled => "scheduled",
        /// Held by a worker until its lease expires.
        Running => "running",
        /// Done.
        Succeeded => "succeeded",
        /// Its last attempt failed; it runs again at its `run_at`.
        Failed => "failed",
        /// Its attempts are spent (or its last lease expired on the last attempt); an
        /// administrator may retry it.
        Dead => "dead",
    }
);

impl JobState {
    /// Whether a job in this state still counts as pending for its unique key.
    pub const fn is_pending(self) -> bool {
        matches!(
            self,
            JobState::Scheduled | JobState::Running | JobState::Failed
        )
    }
}

/// What a job does, with its arguments: ids and figures, never a patient's name or clinical
/// text (administrators list jobs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "args")]
pub enum Task {
    #[serde(rename = "maintenance.purge")]
    PurgeExpired,
    #[serde(rename = "email.notification")]
    NotificationEmail {
        recipient: UserId,
        /// The recipient's notification id.
        notification_id: i64,
    },
    #[serde(rename = "email.account_approved")]
    AccountApprovedEmail { user: UserId },
    #[serde(rename = "appointment.reminder")]
    AppointmentReminder {
        appointment: AppointmentId,
        /// The start it reminds of: a moved appointment's old reminders find it moved.
        start_at: Timestamp,
        /// How long before the start it fires.
        lead_secs: i64,
    },
    #[serde(rename = "referral.escalation")]
    ReferralEscalation { referral: ReferralId },
    #[serde(rename = "lab.auto_release")]
    LabAutoRelease { order: LabOrderId },
    #[serde(rename = "lab.critical_escalation")]
    LabCriticalEscalation { order: LabOrderId },
    #[serde(rename = "lab.ecg_analysis")]
    EcgAnalysis {
        order: LabOrderId,
        /// The recording's header (WFDB) or only file (CSV).
        file: LabFileId,
    },
    #[serde(rename = "prescription.expire")]
    PrescriptionExpiry { prescription: PrescriptionId },
    #[serde(rename = "message.unread")]
    MessageUnread { message: MessageId },
    #[serde(rename = "queue.probe")]
    Probe {
        /// How long each attempt holds the job before it ends.
        hold_ms: u32,
        /// How many of its first attempts fail (to check retries and dead jobs).
        #[serde(default)]
        fail_attempts: u32,
    },
}

impl Task {
    /// The e-mail of a stored notification, unique per notification so that storing it twice
    /// never sends two.
    pub fn notification_email(recipient: UserId, notification_id: i64, at: Timestamp) -> NewJob {
        NewJob::new(
            Task::NotificationEmail {
                recipient,
                notification_id,
            },
            at,
        )
        .unique(format!("email.notification:{recipient}:{notification_id}"))
    }

    pub const fn kind(&self) -> JobKind {
        match self {
            Task::PurgeExpired => JobKind::PurgeExpired,
            Task::NotificationEmail { .. } => JobKind::NotificationEmail,
            Task::AccountApprovedEmail { .. } => JobKind::AccountApprovedEmail,
            Task::AppointmentReminder { .. } => JobKind::AppointmentReminder,
            Task::ReferralEscalation { .. } => JobKind::ReferralEscalation,
            Task::LabAutoRelease { .. } => JobKind::LabAutoRelease,
            Task::LabCriticalEscalation { .. } => JobKind::LabCriticalEscalation,
            Task::EcgAnalysis { .. } => JobKind::EcgAnalysis,
            Task::PrescriptionExpiry { .. } => JobKind::PrescriptionExpiry,
            Task::MessageUnread { .. } => JobKind::MessageUnread,
            Task::Probe { .. } => JobKind::Probe,
        }
    }
}

/// The longest unique key.
pub const MAX_UNIQUE_KEY_LEN: usize = 200;

/// A job to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub id: JobId,
    pub task: Task,
    pub run_at: Timestamp,
    /// While a job with this key is pending (scheduled, running or failed), another with the
    /// same key is not added.
    pub unique_key: Option<String>,
    pub max_attempts: u32,
}

impl NewJob {
    /// A job that runs `task` at `run_at`, with its kind's limit of attempts.
    pub fn new(task: Task, run_at: Timestamp) -> Self {
        let max_attempts = task.kind().max_attempts();
        Self {
            id: JobId::generate(),
            task,
            run_at,
            unique_key: None,
            max_attempts,
        }
    }

    /// The same job, added only while no other job with `key` is pending. Keys longer than
    /// [`MAX_UNIQUE_KEY_LEN`] are a programming error and are cut.
    #[must_use]
    pub fn unique(mut self, key: impl Into<String>) -> Self {
        let mut key: String = key.into();
        if key.len() > MAX_UNIQUE_KEY_LEN {
            let mut end = MAX_UNIQUE_KEY_LEN;
            while !key.is_char_boundary(end) {
                end -= 1;
            }
            key.truncate(end);
        }
        self.unique_key = Some(key);
        self
    }
}

/// What a change does to the queue, in the change's own transaction: jobs it makes moot and
/// jobs it causes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobChanges {
    /// Pending jobs (scheduled or failed, not running) whose unique key starts with one of
    /// these are deleted.
    pub cancel: Vec<String>,
    /// Jobs to add.
    pub add: Vec<NewJob>,
}

impl JobChanges {
    /// Adds `jobs`, cancelling nothing.
    pub fn add(jobs: Vec<NewJob>) -> Self {
        Self {
            cancel: Vec::new(),
            add: jobs,
        }
    }
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: JobId,
    pub task: Task,
    pub state: JobState,
    pub run_at: Timestamp,
    /// Attempts started so far, the running one included.
    pub attempts: u32,
    pub max_attempts: u32,
    pub unique_key: Option<String>,
    /// The last failure's message, as the worker reported it.
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    /// When the current or last attempt started.
    pub started_at: Option<Timestamp>,
    /// When it succeeded or died.
    pub finished_at: Option<Timestamp>,
    /// Until when the worker running it holds it.
    pub locked_until: Option<Timestamp>,
    /// The worker that runs or last ran it (an instance and a number).
    pub worker: Option<String>,
}

impl Job {
    pub fn kind(&self) -> JobKind {
        self.task.kind()
    }
}

/// A job a worker holds, and the lease it holds it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedJob {
    pub job: Job,
    pub lease: LeaseId,
}

/// What a worker asks for when it claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Who claims, as shown to administrators.
    pub worker: String,
    pub now: Timestamp,
    /// How long the jobs are held before another worker may take them.
    pub lease: SignedDuration,
    /// The most jobs to claim.
    pub limit: u32,
}

/// How many jobs of one kind are in one state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobCount {
    pub kind: JobKind,
    pub state: JobState,
    pub count: u64,
}
