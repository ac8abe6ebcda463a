//! Messages: conversations between a patient and doctors of their care team, and between the
//! two doctors of a referral. Only participants see a conversation, and a doctor who leaves the
//! patient's care team no longer does, from then on. A message is stored first, with an event
//! in each other participant's stream (numbered with their notifications), so that it reaches
//! their sockets in order, once, across instances; one left unread becomes a notification.
//! Files go with a message as attachments: uploaded first, kept in the file store, sent with
//! the message, read by the participants.

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};

use crate::audit::AuditEvent;
use crate::identity::{FullName, UserId};
use crate::jobs::{JobChanges, NewJob, Task};
use crate::kernel::{
    AttachmentId, ConversationId, FileName, MessageId, Page, PageRequest, PatientId, ReferralId,
    RepositoryError, StorageKey, Text,
};
use crate::notifications::{NewNotification, Notification};

mod service;
#[cfg(test)]
mod tests;

pub use service::*;

/// The longest message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4_000;
/// The most participants a patient's conversation names besides its author.
pub const MAX_PARTICIPANTS: usize = 10;
/// The most files one message carries.
pub const MAX_ATTACHMENTS: usize = 5;
/// What files a message may carry: PDF documents, PNG and JPEG images.
pub const ATTACHMENT_TYPES: [&str; 3] = ["application/pdf", "image/png", "image/jpeg"];
/// The most files one user may have uploaded to a conversation and not sent yet: uploads
/// wait in the file store for a day, and nobody may fill it meanwhile.
pub const MAX_UNSENT_ATTACHMENTS: u32 = 20;
/// How long an uploaded file waits to be sent with a message before it is deleted.
pub const UNSENT_ATTACHMENT_TTL: SignedDuration = SignedDuration::from_hours(24);

/// A file uploaded to a conversation, to go (or gone) with a message. Its bytes are in the
/// file store under [`Attachment::key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: AttachmentId,
    pub conversation_id: ConversationId,
    /// The message it went with; `None` while its uploader has not sent it.
    pub message_id: Option<MessageId>,
    pub name: FileName,
    /// One of [`ATTACHMENT_TYPES`].
    pub content_type: String,
    pub size: u64,
    /// Lowercase hexadecimal SHA-256 of the bytes.
    pub sha256: String,
    pub uploaded_by: UserId,
    pub uploaded_at: Timestamp,
}

impl Attachment {
    /// Where its bytes are kept: ids only, whatever the file was called.
    pub fn key(&self) -> StorageKey {
        StorageKey::attachment(self.conversation_id, self.id)
    }
}

/// A file as uploaded, its content checked at the edge: a name, one of [`ATTACHMENT_TYPES`]
/// as the bytes showed, their digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub name: FileName,
    pub content_type: String,
    pub sha256: String,
    pub bytes: Vec<u8>,
}

/// What a conversation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The patient with doctors of their care team.
    Patient(PatientId),
    /// The referral's sender and recipient, about its patient.
    Referral {
        referral_id: ReferralId,
        patient_id: PatientId,
    },
}

impl Subject {
    pub fn patient_id(self) -> PatientId {
        match self {
            Subject::Patient(id) | Subject::Referral { patient_id: id, .. } => id,
        }
    }

    pub fn referral_id(self) -> Option<ReferralId> {
        match self {
            Subject::Patient(_) => None,
            Subject::Referral { referral_id, .. } => Some(referral_id),
        }
    }
}

/// One participant, and how far they have read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub user_id: UserId,
    /// `None` only if the account no longer exists.
    pub full_name: Option<FullName>,
    /// The last message they marked read.
    pub last_read: Option<MessageId>,
}

/// A conversation and its participants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub id: ConversationId,
    pub subject: Subject,
    pub participants: Vec<Participant>,
    pub created_by: UserId,
    pub created_at: Timestamp,
    /// When its latest message was sent.
    pub last_message_at: Option<Timestamp>,
}

impl Conversation {
    pub fn participant(&self, user: UserId) -> Option<&Participant> {
        self.participants.iter().find(|p| p.user_id == user)
    }
}

/// A conversation as one participant lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationSummary {
    pub conversation: Conversation,
    /// Messages of others after the participant's last read one.
    pub unread: u32,
}

/// A message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub sender_id: UserId,
    /// `None` only if the account no longer exists.
    pub sender_name: Option<FullName>,
    pub body: Text,
    pub sent_at: Timestamp,
    /// The files that went with it, in the order given.
    pub attachments: Vec<Attachment>,
}

/// How to start a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewConversation {
    /// With the patient and these users (doctors of the care team, or the patient's account).
    Patient {
        patient_id: PatientId,
        participant_ids: Vec<UserId>,
    },
    /// Between the referral's two doctors.
    Referral(ReferralId),
}

/// What sending a message writes, in one transaction.
#[derive(Debug, Clone, Copy)]
pub struct NewMessage<'a> {
    pub message: &'a Message,
    pub audit: &'a AuditEvent,
    /// A `message.received` event for each other participant who may read it.
    pub events: &'a [NewNotification],
    pub jobs: &'a JobChanges,
    /// Unsent attachments of the sender in the conversation, to go with the message.
    pub attachments: &'a [AttachmentId],
}

/// Why a message was not stored.
#[derive(Debug, thiserror::Error)]
pub enum SendMessageError {
    /// An attachment was sent with another message meanwhile, or deleted.
    #[error("an attachment is no longer unsent")]
    AttachmentsGone,
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Why a conversation was not stored.
#[derive(Debug, thiserror::Error)]
pub enum CreateConversationError {
    /// The referral has its conversation already: this one.
    #[error("the referral has a conversation")]
    Exists(ConversationId),
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Stores conversations, their participants and messages.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait MessageRepository: Send + Sync {
    /// Stores a new conversation with its audit event; a referral has one conversation.
    ///
    /// # Errors
    /// [`CreateConversationError::Exists`], `Repository`.
    async fn create(
        &self,
        conversation: &Conversation,
        audit: &AuditEvent,
    ) -> Result<(), CreateConversationError>;

    /// The conversation with its participants, if there is one.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn find(&self, id: ConversationId) -> Result<Option<Conversation>, RepositoryError>;

    /// The conversations `user` takes part in, newest first, with their unread counts.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn list(
        &self,
        user: UserId,
        page: PageRequest<ConversationId>,
    ) -> Result<Page<ConversationSummary, ConversationId>, RepositoryError>;

    /// Stores a message with its audit event, its events and jobs, and attaches its files
    /// (each still unsent, or nothing is stored); returns the events as stored.
    ///
    /// # Errors
    /// [`SendMessageError::AttachmentsGone`], `Repository`.
    async fn send<'a>(&self, new: NewMessage<'a>) -> Result<Vec<Notification>, SendMessageError>;

    /// Stores an uploaded file's description, unsent, with its audit event.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn add_attachment(
        &self,
        attachment: &Attachment,
        audit: &AuditEvent,
    ) -> Result<(), RepositoryError>;

    /// One attachment.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn attachment(&self, id: AttachmentId) -> Result<Option<Attachment>, RepositoryError>;

    /// How many files `uploader` has uploaded to the conversation and not sent.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn unsent_count(
        &self,
        conversation: ConversationId,
        uploader: UserId,
    ) -> Result<u32, RepositoryError>;

    /// Up to `limit` attachments uploaded before `before` and never sent.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn unsent_attachments(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<Attachment>, RepositoryError>;

    /// Deletes an attachment's description if it is still unsent; returns whether it was.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn delete_unsent_attachment(&self, id: AttachmentId) -> Result<bool, RepositoryError>;

    /// A conversation's messages with their attachments, newest first, in keyset pages by id
    /// (`after` is the last id of the previous page: older ones follow).
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn messages(
        &self,
        conversation: ConversationId,
        page: PageRequest<MessageId>,
    ) -> Result<Page<Message, MessageId>, RepositoryError>;

    /// One message, with its attachments.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn message(&self, id: MessageId) -> Result<Option<Message>, RepositoryError>;

    /// Moves `user`'s read mark in the conversation up to `upto`, never back; stores `events`
    /// (`message.read` for the others) only when it moved. Returns them as stored, or `None`
    /// when the mark was already there or beyond.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn mark_read(
        &self,
        conversation: ConversationId,
        user: UserId,
        upto: MessageId,
        events: &[NewNotification],
        at: Timestamp,
    ) -> Result<Option<Vec<Notification>>, RepositoryError>;

    /// Stores notifications (an unread message's) as the clinic's own change.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn notify(
        &self,
        notifications: &[NewNotification],
        at: Timestamp,
    ) -> Result<Vec<Notification>, RepositoryError>;
}

/// How long a message may stay unread before its recipient is notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageTimings {
    pub notify_unread_after: SignedDuration,
}

impl Default for MessageTimings {
    fn default() -> Self {
        Self {
            notify_unread_after: SignedDuration::from_mins(15),
        }
    }
}

impl MessageTimings {
    /// The job that notifies the recipients of `message` who have not read it.
    pub fn unread_job(&self, message: &Message) -> Option<NewJob> {
        let at = message.sent_at.checked_add(self.notify_unread_after).ok()?;
        Some(
            NewJob::new(
                Task::MessageUnread {
                    message: message.id,
                },
                at,
            )
            .unique(format!("message.unread:{}", message.id)),
        )
    }
}
