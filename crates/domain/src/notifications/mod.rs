//! Notifications: what a user is told happened (a referral received, a referral answered, being
//! added to a care team, an emergency access, an appointment booked, cancelled or moved). Each is stored for its recipient in the same
//! transaction as the change that caused it, numbered per recipient without gaps, and then
//! published to whichever sockets the recipient holds, on every server instance.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::identity::UserId;
use crate::kernel::{Clock, RepositoryError, string_enum};

mod email;

pub use email::*;

/// The most notifications one listing returns.
pub const MAX_LIST_LIMIT: u32 = 500;
/// How many one listing returns when the caller does not say.
pub const DEFAULT_LIST_LIMIT: u32 = 100;

string_enum!(
    /// What a notification is about.
    NotificationKind, "notification kind" {
        /// To a referral's recipient, when it is sent.
        ReferralReceived => "referral.received",
        /// To a referral's sender.
        ReferralAccepted => "referral.accepted",
        /// To a referral's sender.
        ReferralDeclined => "referral.declined",
        /// To a referral's sender.
        ReferralCompleted => "referral.completed",
        /// To a referral's recipient, when the sender withdraws it.
        ReferralCancelled => "referral.cancelled",
        /// To a doctor someone else added to a patient's care team.
        CareTeamAdded => "care_team.added",
        /// To every active administrator, when a doctor breaks the glass.
        EmergencyAccessUsed => "emergency_access.used",
        /// To the doctor and the patient's account, unless they booked it themself.
        AppointmentBooked => "appointment.booked",
        /// To the doctor and the patient's account, unless they cancelled it themself.
        AppointmentCancelled => "appointment.cancelled",
        /// To the doctor and the patient's account, unless they moved it themself.
        AppointmentRescheduled => "appointment.rescheduled",
        /// To the patient's account before an appointment (and to its doctor before the first
        /// of their day), at each configured lead time.
        AppointmentReminder => "appointment.reminder",
        /// To a referral's sender and every active administrator, when an urgent or emergency
        /// referral is still unanswered after its time.
        ReferralEscalated => "referral.escalated",
        /// To the ordering doctor, when the laboratory records an order's results.
        LabResulted => "lab.resulted",
        /// To the ordering doctor, urgent, when a result is beyond a critical limit.
        LabCritical => "lab.critical",
        /// To every other doctor on the care team, when the ordering doctor has left a
        /// critical result unread for 15 minutes.
        LabCriticalEscalated => "lab.critical_escalated",
        /// To the patient's account, when the results are released to them.
        LabReleased => "lab.released",
        /// To the ordering doctor, urgent, when an ECG's analysis suspects atrial fibrillation.
        EcgAlert => "lab.ecg_alert",
        /// To the patient's account, when a doctor writes them a prescription.
        PrescriptionCreated => "prescription.created",
        /// To a participant, when a message of a conversation stays unread for the configured
        /// time.
        MessageUnread => "message.unread",
        /// A message to a participant of its conversation: an event of the user's stream,
        /// delivered on the socket as a `message` frame, not a notification.
        MessageReceived => "message.received",
        /// Another participant read a conversation up to a message: an event of the stream,
        /// delivered as a `message_read` frame, not a notification.
        MessageRead => "message.read",
    }
);

impl NotificationKind {
    /// Kinds that are events of the user's stream but not notifications: listed, counted and
    /// e-mailed as notifications never, delivered on the socket as their own frames.
    pub const MESSAGE_EVENTS: [NotificationKind; 2] = [
        NotificationKind::MessageReceived,
        NotificationKind::MessageRead,
    ];

    /// Whether it is a notification proper, shown in the user's list and counted unread.
    pub fn is_notification(self) -> bool {
        !Self::MESSAGE_EVENTS.contains(&self)
    }
}

/// What a notification carries: ids to fetch the details with, and a short title for people.
/// Never clinical text, and never a patient's name: a notification may be shown on a lock
/// screen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationData {
    /// A short human title, such as "Urgent referral from Dr Alice Adams".
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referral_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient_id: Option<Uuid>,
    /// The user who caused the notification (the other doctor, whoever added to the team).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency_access_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appointment_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lab_order_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prescription_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<Uuid>,
    /// Whether it needs attention at once (a critical result, a suspected arrhythmia).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub urgent: bool,
}

/// Who a new notification goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient {
    User(UserId),
    /// Every administrator whose account is active when the change commits.
    ActiveAdmins,
}

/// A notification to store with a change; its id is given when stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    pub recipient: Recipient,
    pub kind: NotificationKind,
    pub data: NotificationData,
}

/// A stored notification. `id` numbers the recipient's notifications 1, 2, 3, ... in commit
/// order: one committed after a client saw id N always has an id above N.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: i64,
    pub recipient: UserId,
    pub kind: NotificationKind,
    pub created_at: Timestamp,
    pub read_at: Option<Timestamp>,
    pub data: NotificationData,
}

/// What to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotificationQuery {
    pub recipient: UserId,
    /// Only ids above this one.
    pub after: Option<i64>,
    pub unread_only: bool,
    /// Whether the stream's message events are included (for sockets), or only
    /// notifications proper (for lists).
    pub with_events: bool,
    /// At most [`MAX_LIST_LIMIT`].
    pub limit: u32,
}

/// Stores notifications. The ports of the changes that cause notifications take
/// [`NewNotification`]s and write them in the change's transaction, numbering each
/// recipient's with `last + 1` under a lock held until commit; this port reads and marks them.
///
/// Wherever a notification is stored, its e-mail is enqueued in the same transaction when its
/// recipient has an address and chose its kind ([`EmailPreferences::wants`]): a
/// [`crate::jobs::Task::NotificationEmail`] job, unique per notification.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait NotificationRepository: Send + Sync {
    /// Stores notifications on their own, in one transaction, and returns them numbered.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn append(
        &self,
        notifications: &[NewNotification],
        at: Timestamp,
    ) -> Result<Vec<Notification>, RepositoryError>;

    /// Stores notifications on their own, once for `key`: a second call with the same key (from
    /// a job that ran twice, on any instance) stores nothing and returns `None`.
    ///
    /// # Errors
    /// [`RepositoryError`] (and nothing is stored, the key included).
    async fn append_once(
        &self,
        key: &str,
        notifications: &[NewNotification],
        at: Timestamp,
    ) -> Result<Option<Vec<Notification>>, RepositoryError>;

    /// The recipient's notification `id`, if there is one.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn find(
        &self,
        recipient: UserId,
        id: i64,
    ) -> Result<Option<Notification>, RepositoryError>;

    /// The recipient's notifications matching `query`, in id order.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn list(&self, query: NotificationQuery) -> Result<Vec<Notification>, RepositoryError>;

    /// Marks one read at `at` (a notification already read keeps its first reading time) and
    /// returns it, or `None` when the recipient has no notification with this id.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn mark_read(
        &self,
        recipient: UserId,
        id: i64,
        at: Timestamp,
    ) -> Result<Option<Notification>, RepositoryError>;

    /// Marks every unread notification read at `at`; returns how many were.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn mark_all_read(&self, recipient: UserId, at: Timestamp)
    -> Result<u64, RepositoryError>;

    /// How many of the recipient's notifications are unread.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn unread_count(&self, recipient: UserId) -> Result<u64, RepositoryError>;

    /// The id of the recipient's latest committed notification (0 when none).
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn last_id(&self, recipient: UserId) -> Result<i64, RepositoryError>;

    /// The latest committed notification id of each of these users who has any (users without
    /// notifications are left out), in a few round trips however many are asked about.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn last_ids(&self, recipients: &[UserId]) -> Result<Vec<(UserId, i64)>, RepositoryError>;
}

/// Tells every server instance about notifications that were just committed, so that each
/// delivers them to the recipients' sockets it holds. Called after the commit; a failure to
/// publish loses nothing (the notifications are stored, and clients replay with `after`), so
/// adapters log it instead of failing the change.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait NotificationPublisher: Send + Sync {
    async fn publish(&self, notifications: &[Notification]);
}

/// Hands committed notifications to `publisher`; nothing is published when there are none.
pub async fn publish_committed(
    publisher: &dyn NotificationPublisher,
    notifications: &[Notification],
) {
    if !notifications.is_empty() {
        publisher.publish(notifications).await;
    }
}

/// What a server instance delivers published notifications to (its socket hub). Publisher
/// adapters hand it what they receive, in any order and possibly more than once: the sink
/// orders by id, fills gaps from storage and drops duplicates.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait NotificationSink: Send + Sync {
    fn deliver(&self, notification: Notification);

    /// Publications may have been missed (a listener reconnected): every socket should check
    /// storage for notifications it has not delivered.
    fn resync(&self);
}

/// Why a notification operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    /// The caller has no notification with this id (404).
    #[error("no such notification")]
    NotFound,
    #[error("limit must be between 1 and {MAX_LIST_LIMIT}")]
    InvalidLimit,
    #[error(transparent)]
    Internal(#[from] crate::identity::InternalError),
}

impl From<RepositoryError> for NotificationError {
    fn from(error: RepositoryError) -> Self {
        Self::Internal(error.into())
    }
}

/// A user's own notifications: every operation is on the caller's, so there is nothing to
/// refuse beyond authentication.
#[derive(Clone)]
pub struct NotificationService {
    repository: std::sync::Arc<dyn NotificationRepository>,
    clock: std::sync::Arc<dyn Clock>,
}

impl std::fmt::Debug for NotificationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationService")
            .finish_non_exhaustive()
    }
}

impl NotificationService {
    pub fn new(
        repository: std::sync::Arc<dyn NotificationRepository>,
        clock: std::sync::Arc<dyn Clock>,
    ) -> Self {
        Self { repository, clock }
    }

    /// The caller's notifications above `after`, oldest first.
    ///
    /// # Errors
    /// [`NotificationError::InvalidLimit`], `Internal`.
    pub async fn list(
        &self,
        recipient: UserId,
        after: Option<i64>,
        unread_only: bool,
        limit: Option<u32>,
    ) -> Result<Vec<Notification>, NotificationError> {
        let limit = limit.unwrap_or(DEFAULT_LIST_LIMIT);
        if !(1..=MAX_LIST_LIMIT).contains(&limit) {
            return Err(NotificationError::InvalidLimit);
        }
        Ok(self
            .repository
            .list(NotificationQuery {
                recipient,
                after,
                unread_only,
                with_events: false,
                limit,
            })
            .await?)
    }

    /// The caller's stream above `after`, oldest first: notifications and message events, as
    /// sockets deliver them.
    ///
    /// # Errors
    /// `Internal`.
    pub async fn stream(
        &self,
        recipient: UserId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Notification>, NotificationError> {
        Ok(self
            .repository
            .list(NotificationQuery {
                recipient,
                after: Some(after),
                unread_only: false,
                with_events: true,
                limit: limit.clamp(1, MAX_LIST_LIMIT),
            })
            .await?)
    }

    /// # Errors
    /// [`NotificationError::NotFound`], `Internal`.
    pub async fn mark_read(
        &self,
        recipient: UserId,
        id: i64,
    ) -> Result<Notification, NotificationError> {
        self.repository
            .mark_read(recipient, id, self.clock.now())
            .await?
            // A message event is born read, and is no notification to mark.
            .filter(|n| n.kind.is_notification())
            .ok_or(NotificationError::NotFound)
    }

    /// Returns how many notifications were marked.
    ///
    /// # Errors
    /// `Internal`.
    pub async fn mark_all_read(&self, recipient: UserId) -> Result<u64, NotificationError> {
        Ok(self
            .repository
            .mark_all_read(recipient, self.clock.now())
            .await?)
    }

    /// # Errors
    /// `Internal`.
    pub async fn unread_count(&self, recipient: UserId) -> Result<u64, NotificationError> {
        Ok(self.repository.unread_count(recipient).await?)
    }

    /// The id of the caller's latest notification (0 when none): where live delivery starts
    /// for a socket that asks for no replay.
    ///
    /// # Errors
    /// `Internal`.
    pub async fn last_id(&self, recipient: UserId) -> Result<i64, NotificationError> {
        Ok(self.repository.last_id(recipient).await?)
    }

    /// The latest notification id of each of these users who has any: what sockets compare
    /// with what they sent, to catch a publication that never arrived.
    ///
    /// # Errors
    /// `Internal`.
    pub async fn last_ids(
        &self,
        recipients: &[UserId],
    ) -> Result<Vec<(UserId, i64)>, NotificationError> {
        if recipients.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.repository.last_ids(recipients).await?)
    }
}

#[cfg(test)]
mod tests;
