//! What reaches participants outside a request: a message delivered on a socket, and the
//! notice of a message left unread.

use super::{ConversationService, participant_basis};
use crate::access::Actor;
use crate::audit::AuditAction;
use crate::identity::name_of;
use crate::kernel::{MessageId, RepositoryError};
use crate::messages::Message;
use crate::notifications::{
    NewNotification, NotificationData, NotificationKind, Recipient, publish_committed,
};

/// What the unread-message job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnreadOutcome {
    /// This many participants were notified.
    Notified(usize),
    /// Nothing to do, and why.
    Moot(&'static str),
}

impl ConversationService {
    /// The message behind a `message.received` event, for delivery on `actor`'s socket: only
    /// while they may take part in its conversation. The delivery is audited as a read.
    ///
    /// # Errors
    /// [`RepositoryError`].
    pub async fn deliverable(
        &self,
        actor: &Actor,
        id: MessageId,
    ) -> Result<Option<Message>, RepositoryError> {
        let Some(message) = self.messages.message(id).await? else {
            return Ok(None);
        };
        let Some(conversation) = self.messages.find(message.conversation_id).await? else {
            return Ok(None);
        };
        if !self.may_take_part(&conversation, actor.user_id()).await? {
            return Ok(None);
        }
        let basis = participant_basis(conversation.subject, actor.role());
        self.gate
            .allowed(
                actor,
                conversation.subject.patient_id(),
                AuditAction::ConversationRead,
                basis,
            )
            .await?;
        Ok(Some(message))
    }

    /// The unread-message job: notifies each participant (but the sender) who may take part
    /// and has not read the message (`message.unread`, e-mailed to those who chose it).
    ///
    /// # Errors
    /// [`RepositoryError`]: the job retries.
    pub async fn notify_unread(&self, id: MessageId) -> Result<UnreadOutcome, RepositoryError> {
        let Some(message) = self.messages.message(id).await? else {
            return Ok(UnreadOutcome::Moot("the message is gone"));
        };
        let Some(conversation) = self.messages.find(message.conversation_id).await? else {
            return Ok(UnreadOutcome::Moot("the conversation is gone"));
        };
        let title = format!(
            "Unread message from {}",
            name_of(self.users.as_ref(), message.sender_id).await?
        );
        let takers = self.takers(&conversation).await?;
        let mut notices = Vec::new();
        for participant in &conversation.participants {
            let read = participant.last_read.is_some_and(|r| r >= message.id);
            if participant.user_id != message.sender_id
                && !read
                && takers.contains(&participant.user_id)
            {
                notices.push(NewNotification {
                    recipient: Recipient::User(participant.user_id),
                    kind: NotificationKind::MessageUnread,
                    data: NotificationData {
                        title: title.clone(),
                        actor_id: Some(*message.sender_id.as_uuid()),
                        conversation_id: Some(*conversation.id.as_uuid()),
                        message_id: Some(*message.id.as_uuid()),
                        ..NotificationData::default()
                    },
                });
            }
        }
        if notices.is_empty() {
            return Ok(UnreadOutcome::Moot("everyone read it"));
        }
        let stored = self.messages.notify(&notices, self.gate.now()).await?;
        publish_committed(self.publisher.as_ref(), &stored).await;
        Ok(UnreadOutcome::Notified(notices.len()))
    }
}
