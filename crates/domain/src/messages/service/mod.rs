//! The conversations' use cases. Who may take part is decided by the access policy
//! ([`Action::Message`]) on the conversation's patient, or as a party to its referral, on top
//! of being a participant; every read and message is audited.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{
    Conversation, ConversationSummary, CreateConversationError, MAX_MESSAGE_CHARS,
    MAX_PARTICIPANTS, Message, MessageRepository, MessageTimings, NewConversation, NewMessage,
    Participant, SendMessageError, Subject,
};
use crate::access::{AccessError, Action, Actor, Basis, Relationship};
use crate::audit::{AuditAction, Gatekeeper};
use crate::identity::{Role, UserRepository, name_of};
use crate::jobs::JobChanges;
use crate::kernel::{
    AttachmentId, ConversationId, FileStore, MessageId, Page, PageRequest, RepositoryError, Text,
    UserId, ValidationErrors,
};
use crate::notifications::{
    NewNotification, NotificationData, NotificationKind, NotificationPublisher, Recipient,
    publish_committed,
};
use crate::patients::{CareTeamRepository, PatientRepository};
use crate::referrals::ReferralRepository;
use crate::relay::{Live, Relay, Relayed};

mod attachments;
mod delivery;

use attachments::UNSENT_ONLY;

pub use delivery::*;

/// Why a messaging operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    /// The caller may not do this (403).
    #[error("you may not do this")]
    Forbidden,
    /// No such patient or referral, or none the caller may see (404).
    #[error("no such patient or referral")]
    NotFound,
    /// No such conversation, or none the caller takes part in (404).
    #[error("no such conversation")]
    ConversationNotFound,
    /// No such message in the conversation (404).
    #[error("no such message in this conversation")]
    MessageNotFound,
    /// No such file in the conversation, or one not sent yet by someone else (404).
    #[error("no such attachment in this conversation")]
    AttachmentNotFound,
    /// The caller has [`super::MAX_UNSENT_ATTACHMENTS`] files waiting to be sent here (409).
    #[error(
        "you have {} files here not sent yet: send them with a message, or wait a day for them to be deleted",
        super::MAX_UNSENT_ATTACHMENTS
    )]
    TooManyUnsent,
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    #[error(transparent)]
    Internal(#[from] RepositoryError),
}

impl From<AccessError> for MessagingError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Forbidden => Self::Forbidden,
            AccessError::NotFound => Self::NotFound,
            AccessError::Internal(e) => Self::Internal(e),
        }
    }
}

/// A conversation started, or the referral's existing one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub conversation: Conversation,
    /// Whether it was created now (a referral has one conversation).
    pub created: bool,
}

/// Why a participant who may take part does: a party to the referral, the patient's own
/// record, or the care team.
fn participant_basis(subject: Subject, role: Role) -> Basis {
    match (subject, role) {
        (Subject::Referral { .. }, _) => Basis::Referral,
        (Subject::Patient(_), Role::Patient) => Basis::OwnRecord,
        (Subject::Patient(_), _) => Basis::CareTeam,
    }
}

/// Conversations and their messages.
#[derive(Clone)]
pub struct ConversationService {
    gate: Gatekeeper,
    messages: Arc<dyn MessageRepository>,
    patients: Arc<dyn PatientRepository>,
    care_teams: Arc<dyn CareTeamRepository>,
    referrals: Arc<dyn ReferralRepository>,
    users: Arc<dyn UserRepository>,
    publisher: Arc<dyn NotificationPublisher>,
    relay: Arc<dyn Relay>,
    files: Arc<dyn FileStore>,
    timings: MessageTimings,
}

impl std::fmt::Debug for ConversationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConversationService")
            .finish_non_exhaustive()
    }
}

/// The ports the service uses.
#[derive(Clone)]
pub struct MessagingPorts {
    pub messages: Arc<dyn MessageRepository>,
    pub patients: Arc<dyn PatientRepository>,
    pub care_teams: Arc<dyn CareTeamRepository>,
    pub referrals: Arc<dyn ReferralRepository>,
    pub users: Arc<dyn UserRepository>,
    pub publisher: Arc<dyn NotificationPublisher>,
    /// Carries "typing" to the other participants.
    pub relay: Arc<dyn Relay>,
    /// Keeps the bytes of attachments.
    pub files: Arc<dyn FileStore>,
}

impl std::fmt::Debug for MessagingPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessagingPorts").finish_non_exhaustive()
    }
}

impl ConversationService {
    pub fn new(gate: Gatekeeper, ports: MessagingPorts) -> Self {
        Self {
            gate,
            messages: ports.messages,
            patients: ports.patients,
            care_teams: ports.care_teams,
            referrals: ports.referrals,
            users: ports.users,
            publisher: ports.publisher,
            relay: ports.relay,
            files: ports.files,
            timings: MessageTimings::default(),
        }
    }

    /// The same service, on these clocks.
    #[must_use]
    pub fn with_timings(mut self, timings: MessageTimings) -> Self {
        self.timings = timings;
        self
    }

    /// Refuses, audited, a caller whose role may never take part in conversations, before
    /// their request is read.
    ///
    /// # Errors
    /// `Forbidden`, `Internal`.
    pub async fn check_role(
        &self,
        actor: &Actor,
        audit_as: AuditAction,
    ) -> Result<(), MessagingError> {
        Ok(self
            .gate
            .check_role(actor, Action::Message, audit_as)
            .await?)
    }

    /// Starts a conversation: about a patient, with the patient's account and doctors of the
    /// care team (the author is one of them); or about a referral, between its two doctors,
    /// whose one conversation is returned if it exists.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `Invalid` (participants who may not take part; a patient
    /// without an account; no doctor), `Internal`.
    pub async fn start(
        &self,
        actor: &Actor,
        new: NewConversation,
    ) -> Result<Started, MessagingError> {
        let audit_as = AuditAction::ConversationCreate;
        let (subject, basis, participants) = match new {
            NewConversation::Patient {
                patient_id,
                participant_ids,
            } => {
                let basis = self
                    .gate
                    .decide_on_patient_as(actor, patient_id, Action::Message, Some(audit_as))
                    .await?;
                let participants = self
                    .patient_participants(actor, patient_id, &participant_ids)
                    .await?;
                (Subject::Patient(patient_id), basis, participants)
            }
            NewConversation::Referral(referral_id) => {
                let Some(referral) = self.referrals.find(referral_id).await? else {
                    return Err(self
                        .gate
                        .deny(actor, None, audit_as, MessagingError::NotFound)
                        .await);
                };
                let party =
                    [referral.from_doctor_id, referral.to_doctor_id].contains(&actor.user_id());
                let relationship = if party {
                    Relationship::Party
                } else {
                    Relationship::None
                };
                let basis = self
                    .gate
                    .decide(
                        actor,
                        relationship,
                        Action::Message,
                        audit_as,
                        Some(referral.patient_id),
                    )
                    .await?;
                let subject = Subject::Referral {
                    referral_id,
                    patient_id: referral.patient_id,
                };
                (
                    subject,
                    basis,
                    vec![referral.from_doctor_id, referral.to_doctor_id],
                )
            }
        };
        let now = self.gate.now();
        let conversation = Conversation {
            id: ConversationId::generate(),
            subject,
            participants: participants
                .into_iter()
                .map(|user_id| Participant {
                    user_id,
                    full_name: None,
                    last_read: None,
                })
                .collect(),
            created_by: actor.user_id(),
            created_at: now,
            last_message_at: None,
        };
        let event = self.gate.event(
            actor,
            Some(subject.patient_id()),
            audit_as,
            Some(basis),
            now,
        );
        let (id, created) = match self.messages.create(&conversation, &event).await {
            Ok(()) => (conversation.id, true),
            Err(CreateConversationError::Exists(id)) => {
                self.gate
                    .allowed(
                        actor,
                        subject.patient_id(),
                        AuditAction::ConversationRead,
                        basis,
                    )
                    .await?;
                (id, false)
            }
            Err(CreateConversationError::Repository(e)) => return Err(e.into()),
        };
        let conversation = self
            .messages
            .find(id)
            .await?
            .ok_or_else(|| RepositoryError::new("a conversation just stored is missing"))?;
        Ok(Started {
            conversation,
            created,
        })
    }

    /// The participants of a new conversation about a patient: the author, the patient's
    /// account, and each named user, who must be that account or a doctor of the care team.
    async fn patient_participants(
        &self,
        actor: &Actor,
        patient_id: crate::kernel::PatientId,
        named: &[UserId],
    ) -> Result<Vec<UserId>, MessagingError> {
        let mut errors = ValidationErrors::new();
        let account = self
            .patients
            .find(patient_id)
            .await?
            .and_then(|p| p.details.user_id);
        let now = self.gate.now();
        let doctors: BTreeSet<UserId> = self
            .care_teams
            .list(patient_id)
            .await?
            .into_iter()
            .filter(|m| m.is_current(now))
            .map(|m| m.doctor_id)
            .collect();
        let Some(account) = account else {
            errors.add(
                "patient_id",
                "the patient has no account to hold a conversation with",
            );
            return Err(errors.into());
        };
        if named.len() > MAX_PARTICIPANTS {
            errors.add(
                "participant_ids",
                format!("name at most {MAX_PARTICIPANTS} participants"),
            );
        }
        let mut participants = vec![actor.user_id()];
        for (i, user) in named.iter().enumerate() {
            if *user != account && !doctors.contains(user) {
                errors.add(
                    format!("participant_ids[{i}]"),
                    "is neither the patient nor a doctor of the patient's care team",
                );
            } else if !participants.contains(user) {
                participants.push(*user);
            }
        }
        if !participants.contains(&account) {
            participants.push(account);
        }
        if !participants.iter().any(|p| doctors.contains(p)) {
            errors.add(
                "participant_ids",
                "name at least one doctor of the patient's care team",
            );
        }
        errors.into_result()?;
        Ok(participants)
    }

    /// The participants of `conversation` who may take part now: its patient's account and
    /// the doctors still on the care team, or both parties to its referral. Two lookups for a
    /// whole conversation, however many participants it has.
    async fn takers(
        &self,
        conversation: &Conversation,
    ) -> Result<BTreeSet<UserId>, RepositoryError> {
        let participants = conversation.participants.iter().map(|p| p.user_id);
        let Subject::Patient(patient_id) = conversation.subject else {
            return Ok(participants.collect());
        };
        let account = self
            .patients
            .find(patient_id)
            .await?
            .and_then(|p| p.details.user_id);
        let now = self.gate.now();
        let doctors: BTreeSet<UserId> = self
            .care_teams
            .list(patient_id)
            .await?
            .into_iter()
            .filter(|m| m.is_current(now))
            .map(|m| m.doctor_id)
            .collect();
        Ok(participants
            .filter(|u| account == Some(*u) || doctors.contains(u))
            .collect())
    }

    /// Whether `user` may now take part in `conversation`.
    async fn may_take_part(
        &self,
        conversation: &Conversation,
        user: UserId,
    ) -> Result<bool, RepositoryError> {
        if conversation.participant(user).is_none() {
            return Ok(false);
        }
        Ok(self.takers(conversation).await?.contains(&user))
    }

    /// The conversation, if the caller takes part in it now; a refusal is audited as
    /// `audit_as`, and a conversation the caller may not see is not found.
    async fn authorized(
        &self,
        actor: &Actor,
        id: ConversationId,
        audit_as: AuditAction,
    ) -> Result<(Conversation, Basis), MessagingError> {
        if !Gatekeeper::role_may_ever(actor, Action::Message) {
            return Err(self
                .gate
                .deny(actor, None, audit_as, MessagingError::Forbidden)
                .await);
        }
        let Some(conversation) = self.messages.find(id).await? else {
            return Err(self
                .gate
                .deny(actor, None, audit_as, MessagingError::ConversationNotFound)
                .await);
        };
        let patient_id = conversation.subject.patient_id();
        if conversation.participant(actor.user_id()).is_none() {
            return Err(self
                .gate
                .deny(
                    actor,
                    Some(patient_id),
                    audit_as,
                    MessagingError::ConversationNotFound,
                )
                .await);
        }
        let basis = match conversation.subject {
            Subject::Patient(patient_id) => self
                .gate
                .decide_on_patient_as(actor, patient_id, Action::Message, Some(audit_as))
                .await
                .map_err(|e| e.hiding_as(MessagingError::ConversationNotFound))?,
            Subject::Referral { patient_id, .. } => {
                self.gate
                    .decide(
                        actor,
                        Relationship::Party,
                        Action::Message,
                        audit_as,
                        Some(patient_id),
                    )
                    .await?
            }
        };
        Ok((conversation, basis))
    }

    /// One conversation, for a participant; the read is audited.
    ///
    /// # Errors
    /// `Forbidden`, `ConversationNotFound`, `Internal`.
    pub async fn get(
        &self,
        actor: &Actor,
        id: ConversationId,
    ) -> Result<Conversation, MessagingError> {
        let (conversation, basis) = self
            .authorized(actor, id, AuditAction::ConversationRead)
            .await?;
        self.gate
            .allowed(
                actor,
                conversation.subject.patient_id(),
                AuditAction::ConversationRead,
                basis,
            )
            .await?;
        Ok(conversation)
    }

    /// The caller's conversations, newest first, leaving out those they may no longer take
    /// part in; each patient listed is audited.
    ///
    /// # Errors
    /// `Forbidden`, `Internal`.
    pub async fn list(
        &self,
        actor: &Actor,
        page: PageRequest<ConversationId>,
    ) -> Result<Page<ConversationSummary, ConversationId>, MessagingError> {
        self.check_role(actor, AuditAction::ConversationList)
            .await?;
        let mut page = self.messages.list(actor.user_id(), page).await?;
        let mut kept = Vec::with_capacity(page.items.len());
        let mut events = Vec::new();
        let now = self.gate.now();
        for summary in page.items {
            let conversation = &summary.conversation;
            if self.may_take_part(conversation, actor.user_id()).await? {
                let basis = participant_basis(conversation.subject, actor.role());
                events.push(self.gate.event(
                    actor,
                    Some(conversation.subject.patient_id()),
                    AuditAction::ConversationList,
                    Some(basis),
                    now,
                ));
                kept.push(summary);
            }
        }
        self.gate.record(events).await?;
        page.items = kept;
        Ok(page)
    }

    /// Tells the conversation's other participants who may take part now that the caller is
    /// typing: relayed, never stored, and not audited (it shows nothing of the patient); a
    /// refusal is audited as `message.send`, the attempt it announces.
    ///
    /// # Errors
    /// `Forbidden`, `ConversationNotFound`, `Internal`.
    pub async fn typing(&self, actor: &Actor, id: ConversationId) -> Result<(), MessagingError> {
        let (conversation, _) = self.authorized(actor, id, AuditAction::MessageSend).await?;
        let from = actor.user_id();
        for to in self.takers(&conversation).await? {
            if to != from {
                let what = Live::Typing {
                    conversation_id: id,
                };
                self.relay.relay(Relayed { from, to, what }).await;
            }
        }
        Ok(())
    }

    /// A conversation's messages, newest first; the read is audited.
    ///
    /// # Errors
    /// `Forbidden`, `ConversationNotFound`, `Internal`.
    pub async fn messages(
        &self,
        actor: &Actor,
        id: ConversationId,
        page: PageRequest<MessageId>,
    ) -> Result<Page<Message, MessageId>, MessagingError> {
        let (conversation, basis) = self
            .authorized(actor, id, AuditAction::ConversationRead)
            .await?;
        let page = self.messages.messages(id, page).await?;
        self.gate
            .allowed(
                actor,
                conversation.subject.patient_id(),
                AuditAction::ConversationRead,
                basis,
            )
            .await?;
        Ok(page)
    }

    /// Sends a message, with files the sender uploaded to the conversation and has not sent
    /// yet: stored with an event for each other participant who may read it, published once
    /// committed; one left unread becomes a notification later.
    ///
    /// # Errors
    /// `Forbidden`, `ConversationNotFound`, `Invalid` (an empty or too long body; more than
    /// [`super::MAX_ATTACHMENTS`] files, or one that is not an unsent upload of the sender's here),
    /// `Internal`.
    pub async fn send(
        &self,
        actor: &Actor,
        id: ConversationId,
        body: &str,
        attachment_ids: &[AttachmentId],
    ) -> Result<Message, MessagingError> {
        let (conversation, basis) = self.authorized(actor, id, AuditAction::MessageSend).await?;
        let mut errors = ValidationErrors::new();
        let body = errors.check("body", Text::multiline(body, MAX_MESSAGE_CHARS));
        let attachments = self
            .unsent_of(actor, id, attachment_ids, &mut errors)
            .await?;
        let Some(body) = body.filter(|_| errors.is_empty()) else {
            return Err(errors.into());
        };
        let now = self.gate.now();
        let message = Message {
            id: MessageId::generate(),
            conversation_id: id,
            sender_id: actor.user_id(),
            sender_name: None,
            body,
            sent_at: now,
            attachments,
        };
        let title = format!(
            "Message from {}",
            name_of(self.users.as_ref(), actor.user_id()).await?
        );
        let events = self
            .events_for_others(
                &conversation,
                actor.user_id(),
                NotificationKind::MessageReceived,
                &title,
                message.id,
            )
            .await?;
        let jobs = JobChanges::add(self.timings.unread_job(&message).into_iter().collect());
        let audit = self.gate.event(
            actor,
            Some(conversation.subject.patient_id()),
            AuditAction::MessageSend,
            Some(basis),
            now,
        );
        let stored = self
            .messages
            .send(NewMessage {
                message: &message,
                audit: &audit,
                events: &events,
                jobs: &jobs,
                attachments: attachment_ids,
            })
            .await
            .map_err(|e| match e {
                SendMessageError::AttachmentsGone => {
                    let mut errors = ValidationErrors::new();
                    errors.add("attachment_ids", UNSENT_ONLY);
                    MessagingError::Invalid(errors)
                }
                SendMessageError::Repository(e) => e.into(),
            })?;
        publish_committed(self.publisher.as_ref(), &stored).await;
        Ok(self.messages.message(message.id).await?.unwrap_or(message))
    }

    /// An event of `kind` about `message` for each participant but `from` who may take part.
    async fn events_for_others(
        &self,
        conversation: &Conversation,
        from: UserId,
        kind: NotificationKind,
        title: &str,
        message: MessageId,
    ) -> Result<Vec<NewNotification>, RepositoryError> {
        let takers = self.takers(conversation).await?;
        let mut events = Vec::new();
        for participant in &conversation.participants {
            if participant.user_id != from && takers.contains(&participant.user_id) {
                events.push(NewNotification {
                    recipient: Recipient::User(participant.user_id),
                    kind,
                    data: NotificationData {
                        title: title.to_owned(),
                        actor_id: Some(*from.as_uuid()),
                        conversation_id: Some(*conversation.id.as_uuid()),
                        message_id: Some(*message.as_uuid()),
                        ..NotificationData::default()
                    },
                });
            }
        }
        Ok(events)
    }

    /// Marks the conversation read by the caller up to `upto`, one of its messages; the
    /// others who may take part are told (`message.read`) when the mark moved.
    ///
    /// # Errors
    /// `Forbidden`, `ConversationNotFound`, `MessageNotFound`, `Internal`.
    pub async fn mark_read(
        &self,
        actor: &Actor,
        id: ConversationId,
        upto: MessageId,
    ) -> Result<(), MessagingError> {
        let (conversation, _) = self
            .authorized(actor, id, AuditAction::ConversationRead)
            .await?;
        let found = self.messages.message(upto).await?;
        if found.is_none_or(|m| m.conversation_id != id) {
            return Err(MessagingError::MessageNotFound);
        }
        let title = format!(
            "{} read the conversation",
            name_of(self.users.as_ref(), actor.user_id()).await?
        );
        let events = self
            .events_for_others(
                &conversation,
                actor.user_id(),
                NotificationKind::MessageRead,
                &title,
                upto,
            )
            .await?;
        if let Some(stored) = self
            .messages
            .mark_read(id, actor.user_id(), upto, &events, self.gate.now())
            .await?
        {
            publish_committed(self.publisher.as_ref(), &stored).await;
        }
        Ok(())
    }
}
