//! Files that go with messages: a participant uploads one to the conversation, sends it with
//! a message, and every participant who may take part reads it; an upload never sent is
//! deleted after [`UNSENT_ATTACHMENT_TTL`].

use std::collections::BTreeSet;

use jiff::Timestamp;

use super::{ConversationService, MessagingError};
use crate::access::Actor;
use crate::audit::AuditAction;
use crate::kernel::{AttachmentId, ConversationId, RepositoryError, ValidationErrors};
use crate::messages::{
    ATTACHMENT_TYPES, Attachment, MAX_ATTACHMENTS, MAX_UNSENT_ATTACHMENTS, UNSENT_ATTACHMENT_TTL,
    Upload,
};

/// Why an attachment cannot go with a message.
pub(super) const UNSENT_ONLY: &str =
    "each must be a file you uploaded to this conversation and have not sent yet";

/// How many unsent uploads one purge deletes at most.
const PURGE_BATCH: u32 = 500;

impl ConversationService {
    /// A participant uploads a file to the conversation, to send with a message: its
    /// description is stored unsent with its audit event (`attachment.upload`), then its bytes
    /// go to the file store. A description whose bytes could not be stored is deleted, here
    /// or by the purge: bytes are never left without one.
    ///
    /// # Errors
    /// `Forbidden`, `ConversationNotFound`, `Invalid` (a type other than
    /// [`ATTACHMENT_TYPES`]), `TooManyUnsent` (at most [`MAX_UNSENT_ATTACHMENTS`] wait at once;
    /// two uploads at the same instant may both pass), `Internal`.
    pub async fn attach(
        &self,
        actor: &Actor,
        id: ConversationId,
        upload: Upload,
    ) -> Result<Attachment, MessagingError> {
        let (conversation, basis) = self
            .authorized(actor, id, AuditAction::AttachmentUpload)
            .await?;
        if !ATTACHMENT_TYPES.contains(&upload.content_type.as_str()) {
            let mut errors = ValidationErrors::new();
            errors.add("file", "must be a PDF document, or a PNG or JPEG image");
            return Err(errors.into());
        }
        let waiting = self.messages.unsent_count(id, actor.user_id()).await?;
        if waiting >= MAX_UNSENT_ATTACHMENTS {
            return Err(MessagingError::TooManyUnsent);
        }
        let now = self.gate.now();
        let attachment = Attachment {
            id: AttachmentId::generate(),
            conversation_id: id,
            message_id: None,
            name: upload.name,
            content_type: upload.content_type,
            size: u64::try_from(upload.bytes.len()).unwrap_or(u64::MAX),
            sha256: upload.sha256,
            uploaded_by: actor.user_id(),
            uploaded_at: now,
        };
        let audit = self.gate.event(
            actor,
            Some(conversation.subject.patient_id()),
            AuditAction::AttachmentUpload,
            Some(basis),
            now,
        );
        self.messages.add_attachment(&attachment, &audit).await?;
        if let Err(e) = self.files.put(&attachment.key(), upload.bytes).await {
            // Unsent, it is the purge's to delete if this fails too.
            let _ = self.messages.delete_unsent_attachment(attachment.id).await;
            return Err(e.into());
        }
        Ok(attachment)
    }

    /// A file of the conversation with its bytes, for a participant who may take part: one
    /// sent with a message, or their own unsent upload. Audited (`attachment.read`).
    ///
    /// # Errors
    /// `Forbidden`, `ConversationNotFound`, `AttachmentNotFound`, `Internal` (also when its
    /// bytes are missing from the store).
    pub async fn attachment(
        &self,
        actor: &Actor,
        id: ConversationId,
        attachment_id: AttachmentId,
    ) -> Result<(Attachment, Vec<u8>), MessagingError> {
        let (conversation, basis) = self
            .authorized(actor, id, AuditAction::AttachmentRead)
            .await?;
        let attachment = self
            .messages
            .attachment(attachment_id)
            .await?
            .filter(|a| {
                a.conversation_id == id
                    && (a.message_id.is_some() || a.uploaded_by == actor.user_id())
            })
            .ok_or(MessagingError::AttachmentNotFound)?;
        let Some(bytes) = self.files.get(&attachment.key()).await? else {
            return Err(RepositoryError::new(format!(
                "the bytes of attachment {} are missing from the file store",
                attachment.id
            ))
            .into());
        };
        self.gate
            .allowed(
                actor,
                conversation.subject.patient_id(),
                AuditAction::AttachmentRead,
                basis,
            )
            .await?;
        Ok((attachment, bytes))
    }

    /// The attachments named to go with a message: at most [`MAX_ATTACHMENTS`], each an
    /// unsent upload of the actor's to this conversation. What is wrong is added to `errors`.
    pub(super) async fn unsent_of(
        &self,
        actor: &Actor,
        id: ConversationId,
        ids: &[AttachmentId],
        errors: &mut ValidationErrors,
    ) -> Result<Vec<Attachment>, RepositoryError> {
        let distinct: BTreeSet<&AttachmentId> = ids.iter().collect();
        if ids.len() > MAX_ATTACHMENTS || distinct.len() != ids.len() {
            errors.add(
                "attachment_ids",
                format!("at most {MAX_ATTACHMENTS} files, each named once"),
            );
            return Ok(Vec::new());
        }
        let mut attachments = Vec::with_capacity(ids.len());
        for attachment_id in ids {
            let usable = self.messages.attachment(*attachment_id).await?.filter(|a| {
                a.conversation_id == id
                    && a.uploaded_by == actor.user_id()
                    && a.message_id.is_none()
            });
            match usable {
                Some(attachment) => attachments.push(attachment),
                None => {
                    errors.add("attachment_ids", UNSENT_ONLY);
                    return Ok(Vec::new());
                }
            }
        }
        Ok(attachments)
    }

    /// Deletes uploads never sent within [`UNSENT_ATTACHMENT_TTL`], their bytes first; returns
    /// how many. For the purge job.
    ///
    /// # Errors
    /// [`RepositoryError`]; what was deleted before stays deleted.
    pub async fn purge_unsent(&self, now: Timestamp) -> Result<u64, RepositoryError> {
        let before = now - UNSENT_ATTACHMENT_TTL;
        let mut deleted = 0;
        for attachment in self
            .messages
            .unsent_attachments(before, PURGE_BATCH)
            .await?
        {
            // The description goes first: once it is gone, nobody can send the file, and
            // bytes without one are only space.
            if self
                .messages
                .delete_unsent_attachment(attachment.id)
                .await?
            {
                self.files.delete(&attachment.key()).await?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}
