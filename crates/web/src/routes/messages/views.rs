//! Conversations and messages as the API shows them, and the bodies that start and write them.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use carehub_domain::identity::UserId;
use carehub_domain::kernel::{PatientId, ReferralId, ValidationErrors};
use carehub_domain::messages::{
    Attachment, Conversation, ConversationSummary, MAX_PARTICIPANTS, Message, NewConversation,
    Subject,
};

use crate::openapi::rules;

/// A conversation to start: about a patient (`patient_id`, with `participant_ids`, doctors of
/// the care team; the patient's account joins by itself), or about a referral (`referral_id`
/// alone, between its two doctors). Exactly one of `patient_id` and `referral_id` is given.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversationInput {
    pub patient_id: Option<Uuid>,
    /// Up to 10: doctors of the patient's care team, or the patient's own account.
    #[schema(max_items = 10)]
    pub participant_ids: Option<Vec<Uuid>>,
    pub referral_id: Option<Uuid>,
}

impl TryFrom<ConversationInput> for NewConversation {
    type Error = ValidationErrors;

    fn try_from(input: ConversationInput) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::new();
        match (input.patient_id, input.referral_id) {
            (Some(patient_id), None) => {
                let ids = input.participant_ids.unwrap_or_default();
                if ids.len() > MAX_PARTICIPANTS {
                    errors.add(
                        "participant_ids",
                        format!("name at most {MAX_PARTICIPANTS} participants"),
                    );
                    return Err(errors);
                }
                Ok(NewConversation::Patient {
                    patient_id: PatientId::from_uuid(patient_id),
                    participant_ids: ids.into_iter().map(UserId::from_uuid).collect(),
                })
            }
            (None, Some(referral_id)) if input.participant_ids.is_none() => Ok(
                NewConversation::Referral(ReferralId::from_uuid(referral_id)),
            ),
            (None, Some(_)) => {
                errors.add(
                    "participant_ids",
                    "a referral's conversation is between its two doctors",
                );
                Err(errors)
            }
            _ => {
                errors.add("patient_id", "give either patient_id or referral_id");
                Err(errors)
            }
        }
    }
}

/// A message to send.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageInput {
    /// 1 to 4,000 characters.
    #[schema(schema_with = rules::text_4000, required = true, example = "Is the cough better since Monday?")]
    pub body: Option<String>,
    /// Up to 5 files uploaded to the conversation (`POST /conversations/{id}/attachments`) by
    /// the caller and not sent yet, to go with the message in this order.
    #[serde(default)]
    #[schema(max_items = 5)]
    pub attachment_ids: Option<Vec<Uuid>>,
}

/// How far the caller has read.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadInput {
    /// A message of the conversation: everything up to it counts as read.
    #[schema(value_type = Uuid, required = true)]
    pub message_id: Option<Uuid>,
}

/// A participant and how far they have read.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParticipantView {
    pub id: Uuid,
    /// `null` only if the account no longer exists.
    pub full_name: Option<String>,
    /// The last message they marked read.
    pub last_read: Option<Uuid>,
}

/// A conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationView {
    pub id: Uuid,
    /// The patient it is about.
    pub patient_id: Uuid,
    /// The referral it is about, if it is a referral's.
    pub referral_id: Option<Uuid>,
    pub participants: Vec<ParticipantView>,
    pub created_by: Uuid,
    pub created_at: Timestamp,
    pub last_message_at: Option<Timestamp>,
    /// In a listing: the caller's unread messages in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub unread: Option<u32>,
}

impl From<Conversation> for ConversationView {
    fn from(c: Conversation) -> Self {
        let referral_id = match c.subject {
            Subject::Referral { referral_id, .. } => Some(*referral_id.as_uuid()),
            Subject::Patient(_) => None,
        };
        Self {
            id: *c.id.as_uuid(),
            patient_id: *c.subject.patient_id().as_uuid(),
            referral_id,
            participants: c
                .participants
                .into_iter()
                .map(|p| ParticipantView {
                    id: *p.user_id.as_uuid(),
                    full_name: p.full_name.map(|n| n.as_str().to_owned()),
                    last_read: p.last_read.map(|m| *m.as_uuid()),
                })
                .collect(),
            created_by: *c.created_by.as_uuid(),
            created_at: c.created_at,
            last_message_at: c.last_message_at,
            unread: None,
        }
    }
}

impl From<ConversationSummary> for ConversationView {
    fn from(s: ConversationSummary) -> Self {
        Self {
            unread: Some(s.unread),
            ..Self::from(s.conversation)
        }
    }
}

/// A file uploaded to a conversation, sent with a message or waiting to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AttachmentView {
    pub id: Uuid,
    pub conversation_id: Uuid,
    /// The message it went with; `null` while unsent.
    pub message_id: Option<Uuid>,
    /// As its uploader named it.
    #[schema(example = "ecg-at-home.pdf")]
    pub name: String,
    #[schema(example = "application/pdf")]
    pub content_type: String,
    pub size: u64,
    /// Lowercase hexadecimal SHA-256 of the bytes.
    pub sha256: String,
    pub uploaded_at: Timestamp,
    /// Where participants read it.
    #[schema(
        example = "/api/v1/conversations/0193a4c2-7f1e-7c3a-9b1d-2f4e6a8c0b12/attachments/0193a4c3-0000-7000-8000-000000000000"
    )]
    pub href: String,
}

impl From<Attachment> for AttachmentView {
    fn from(a: Attachment) -> Self {
        Self {
            href: format!(
                "/api/v1/conversations/{}/attachments/{}",
                a.conversation_id, a.id
            ),
            id: *a.id.as_uuid(),
            conversation_id: *a.conversation_id.as_uuid(),
            message_id: a.message_id.map(|m| *m.as_uuid()),
            name: a.name.as_str().to_owned(),
            content_type: a.content_type,
            size: a.size,
            sha256: a.sha256,
            uploaded_at: a.uploaded_at,
        }
    }
}

/// A message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MessageView {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub sender_id: Uuid,
    /// `null` only if the account no longer exists.
    pub sender_name: Option<String>,
    pub body: String,
    pub sent_at: Timestamp,
    /// The files that went with it, in the order given.
    pub attachments: Vec<AttachmentView>,
}

impl From<Message> for MessageView {
    fn from(m: Message) -> Self {
        Self {
            id: *m.id.as_uuid(),
            conversation_id: *m.conversation_id.as_uuid(),
            sender_id: *m.sender_id.as_uuid(),
            sender_name: m.sender_name.map(|n| n.as_str().to_owned()),
            body: m.body.as_str().to_owned(),
            sent_at: m.sent_at,
            attachments: m
                .attachments
                .into_iter()
                .map(AttachmentView::from)
                .collect(),
        }
    }
}
