//! Conversations, their participants and messages on SQLite and PostgreSQL. A message is
//! written with its audit event, its stream events (numbered with each recipient's
//! notifications) and its unread job in one transaction; a read mark only moves forward.

mod attachments;

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::{Executor, FromRow, Pool};
use uuid::Uuid;

use carehub_domain::audit::AuditEvent;
use carehub_domain::identity::UserId;
use carehub_domain::kernel::{
    AttachmentId, ConversationId, MessageId, Page, PageRequest, PatientId, ReferralId,
    RepositoryError, Text,
};
use carehub_domain::messages::{
    Attachment, Conversation, ConversationSummary, CreateConversationError, Message,
    MessageRepository, NewMessage, Participant, SendMessageError, Subject,
};
use carehub_domain::notifications::{NewNotification, Notification};

use crate::audit::InsertAuditEvent;
use crate::db::backend::{
    Backend, Constraint, Param, RowsAffected as _, corrupt, joined_name, storage,
};
use crate::db::sql_time::DbTime;
use crate::jobs::InsertJobs;
use crate::notifications::StoreNotifications;
use attachments::{ATTACH, AttachmentRow, INSERT_ATTACHMENT, SELECT_ATTACHMENTS, of_messages};

/// Stored text was bounded when it was validated on the way in.
const STORED: usize = usize::MAX;

/// A referral has one conversation.
const ONE_PER_REFERRAL: Constraint = Constraint {
    name: "conversations_referral_id_key",
    sqlite_columns: "conversations.referral_id",
};

/// Conversations and messages.
#[derive(Debug, Clone)]
pub struct SqlMessageRepository<DB: sqlx::Database> {
    pool: Pool<DB>,
}

impl<DB: sqlx::Database> SqlMessageRepository<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ConversationRow {
    id: Uuid,
    patient_id: Uuid,
    referral_id: Option<Uuid>,
    created_by: Uuid,
    created_at: DbTime,
    last_message_at: Option<DbTime>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct ParticipantRow {
    user_id: Uuid,
    full_name: Option<String>,
    last_read: Option<Uuid>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct MessageRow {
    id: Uuid,
    conversation_id: Uuid,
    sender_id: Uuid,
    sender_name: Option<String>,
    body: String,
    sent_at: DbTime,
}

impl TryFrom<MessageRow> for Message {
    type Error = RepositoryError;

    fn try_from(row: MessageRow) -> Result<Self, Self::Error> {
        Ok(Message {
            id: MessageId::from_uuid(row.id),
            conversation_id: ConversationId::from_uuid(row.conversation_id),
            sender_id: UserId::from_uuid(row.sender_id),
            sender_name: joined_name(row.sender_name.as_deref())?,
            body: Text::multiline(&row.body, STORED).map_err(|e| corrupt("messages", e))?,
            sent_at: row.sent_at.0,
            attachments: Vec::new(),
        })
    }
}

const SELECT_CONVERSATIONS: &str = "SELECT c.id, c.patient_id, c.referral_id, c.created_by, \
     c.created_at, c.last_message_at FROM conversations c ";

const SELECT_MESSAGES: &str = "SELECT m.id, m.conversation_id, m.sender_id, \
     u.full_name AS sender_name, m.body, m.sent_at FROM messages m \
     LEFT JOIN users u ON u.id = m.sender_id ";

fn conversation_of(
    row: &ConversationRow,
    participants: Vec<ParticipantRow>,
) -> Result<Conversation, RepositoryError> {
    let patient_id = PatientId::from_uuid(row.patient_id);
    let subject = match row.referral_id {
        Some(referral) => Subject::Referral {
            referral_id: ReferralId::from_uuid(referral),
            patient_id,
        },
        None => Subject::Patient(patient_id),
    };
    Ok(Conversation {
        id: ConversationId::from_uuid(row.id),
        subject,
        participants: participants
            .into_iter()
            .map(|p| {
                Ok(Participant {
                    user_id: UserId::from_uuid(p.user_id),
                    full_name: joined_name(p.full_name.as_deref())?,
                    last_read: p.last_read.map(MessageId::from_uuid),
                })
            })
            .collect::<Result<_, RepositoryError>>()?,
        created_by: UserId::from_uuid(row.created_by),
        created_at: row.created_at.0,
        last_message_at: row.last_message_at.map(|t| t.0),
    })
}

/// The conversation of `row` with its participants, in the order they were named.
async fn whole<DB>(pool: &Pool<DB>, row: ConversationRow) -> Result<Conversation, RepositoryError>
where
    DB: Backend,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'r> ParticipantRow: FromRow<'r, DB::Row>,
{
    let participants = sqlx::query_as::<_, ParticipantRow>(
        "SELECT p.user_id, u.full_name, p.last_read FROM conversation_participants p \
         LEFT JOIN users u ON u.id = p.user_id \
         WHERE p.conversation_id = $1 ORDER BY p.position",
    )
    .bind(row.id)
    .fetch_all(pool)
    .await
    .map_err(storage)?;
    conversation_of(&row, participants)
}

#[async_trait]
impl<DB> MessageRepository for SqlMessageRepository<DB>
where
    DB: InsertAuditEvent + StoreNotifications + InsertJobs,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'a> &'a str: Param<'a, DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> Option<Uuid>: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'a> i64: Param<'a, DB>,
    for<'r> ConversationRow: FromRow<'r, DB::Row>,
    for<'r> ParticipantRow: FromRow<'r, DB::Row>,
    for<'r> MessageRow: FromRow<'r, DB::Row>,
    for<'r> AttachmentRow: FromRow<'r, DB::Row>,
    for<'r> (Uuid,): FromRow<'r, DB::Row>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
{
    async fn create(
        &self,
        conversation: &Conversation,
        audit: &AuditEvent,
    ) -> Result<(), CreateConversationError> {
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        let referral = conversation.subject.referral_id();
        let inserted = sqlx::query(
            "INSERT INTO conversations (id, patient_id, referral_id, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(*conversation.id.as_uuid())
        .bind(*conversation.subject.patient_id().as_uuid())
        .bind(referral.map(|r| *r.as_uuid()))
        .bind(*conversation.created_by.as_uuid())
        .bind(DbTime(conversation.created_at))
        .execute(&mut *tx)
        .await;
        if let Err(error) = inserted {
            if let (true, Some(referral)) = (ONE_PER_REFERRAL.violated_by(&error), referral) {
                tx.rollback().await.map_err(storage)?;
                let (existing,): (Uuid,) =
                    sqlx::query_as("SELECT id FROM conversations WHERE referral_id = $1")
                        .bind(*referral.as_uuid())
                        .fetch_one(&self.pool)
                        .await
                        .map_err(storage)?;
                return Err(CreateConversationError::Exists(ConversationId::from_uuid(
                    existing,
                )));
            }
            return Err(storage(error).into());
        }
        for (position, participant) in (0_i64..).zip(&conversation.participants) {
            sqlx::query(
                "INSERT INTO conversation_participants (conversation_id, user_id, position) \
                 VALUES ($1, $2, $3)",
            )
            .bind(*conversation.id.as_uuid())
            .bind(*participant.user_id.as_uuid())
            .bind(position)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        }
        DB::insert_audit_event(&mut tx, audit)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(())
    }

    async fn find(&self, id: ConversationId) -> Result<Option<Conversation>, RepositoryError> {
        let row = sqlx::query_as::<_, ConversationRow>(sqlx::AssertSqlSafe(format!(
            "{SELECT_CONVERSATIONS}WHERE c.id = $1"
        )))
        .bind(*id.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(storage)?;
        match row {
            Some(row) => Ok(Some(whole(&self.pool, row).await?)),
            None => Ok(None),
        }
    }

    async fn list(
        &self,
        user: UserId,
        page: PageRequest<ConversationId>,
    ) -> Result<Page<ConversationSummary, ConversationId>, RepositoryError> {
        let rows = sqlx::query_as::<_, ConversationRow>(sqlx::AssertSqlSafe(format!(
            "{SELECT_CONVERSATIONS}JOIN conversation_participants me \
             ON me.conversation_id = c.id AND me.user_id = $1 \
             WHERE ($2 IS NULL OR c.id < $2) ORDER BY c.id DESC LIMIT $3"
        )))
        .bind(*user.as_uuid())
        .bind(page.after().map(|id| *id.as_uuid()))
        .bind(i64::from(page.limit()) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        let mut summaries = Vec::with_capacity(rows.len());
        for row in rows {
            let conversation = whole(&self.pool, row).await?;
            let last_read = conversation
                .participant(user)
                .and_then(|p| p.last_read)
                .map(|m| *m.as_uuid());
            let (unread,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM messages WHERE conversation_id = $1 \
                 AND sender_id <> $2 AND ($3 IS NULL OR id > $3)",
            )
            .bind(*conversation.id.as_uuid())
            .bind(*user.as_uuid())
            .bind(last_read)
            .fetch_one(&self.pool)
            .await
            .map_err(storage)?;
            summaries.push(ConversationSummary {
                conversation,
                unread: u32::try_from(unread).unwrap_or(u32::MAX),
            });
        }
        Ok(Page::from_overfetch(summaries, page.limit(), |s| {
            s.conversation.id
        }))
    }

    async fn send<'a>(&self, new: NewMessage<'a>) -> Result<Vec<Notification>, SendMessageError> {
        let message = new.message;
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        sqlx::query(
            "INSERT INTO messages (id, conversation_id, sender_id, body, sent_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(*message.id.as_uuid())
        .bind(*message.conversation_id.as_uuid())
        .bind(*message.sender_id.as_uuid())
        .bind(message.body.as_str())
        .bind(DbTime(message.sent_at))
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        sqlx::query("UPDATE conversations SET last_message_at = $2 WHERE id = $1")
            .bind(*message.conversation_id.as_uuid())
            .bind(DbTime(message.sent_at))
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        DB::insert_audit_event(&mut tx, new.audit)
            .await
            .map_err(storage)?;
        DB::apply_job_changes(&mut tx, new.jobs, message.sent_at)
            .await
            .map_err(storage)?;
        for (position, attachment) in (0_i64..).zip(new.attachments) {
            let attached = sqlx::query(ATTACH)
                .bind(*message.id.as_uuid())
                .bind(position)
                .bind(*attachment.as_uuid())
                .bind(*message.conversation_id.as_uuid())
                .bind(*message.sender_id.as_uuid())
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
            if attached.rows_affected() != 1 {
                tx.rollback().await.map_err(storage)?;
                return Err(SendMessageError::AttachmentsGone);
            }
        }
        let stored = DB::store_notifications(&mut tx, new.events, message.sent_at)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(stored)
    }

    async fn add_attachment(
        &self,
        attachment: &Attachment,
        audit: &AuditEvent,
    ) -> Result<(), RepositoryError> {
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        sqlx::query(INSERT_ATTACHMENT)
            .bind(*attachment.id.as_uuid())
            .bind(*attachment.conversation_id.as_uuid())
            .bind(attachment.name.as_str())
            .bind(attachment.content_type.as_str())
            .bind(i64::try_from(attachment.size).map_err(RepositoryError::new)?)
            .bind(attachment.sha256.as_str())
            .bind(*attachment.uploaded_by.as_uuid())
            .bind(DbTime(attachment.uploaded_at))
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        DB::insert_audit_event(&mut tx, audit)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)
    }

    async fn attachment(&self, id: AttachmentId) -> Result<Option<Attachment>, RepositoryError> {
        sqlx::query_as::<_, AttachmentRow>(sqlx::AssertSqlSafe(format!(
            "{SELECT_ATTACHMENTS}WHERE id = $1"
        )))
        .bind(*id.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(storage)?
        .map(Attachment::try_from)
        .transpose()
    }

    async fn unsent_count(
        &self,
        conversation: ConversationId,
        uploader: UserId,
    ) -> Result<u32, RepositoryError> {
        let (count,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM message_attachments \
             WHERE conversation_id = $1 AND uploaded_by = $2 AND message_id IS NULL",
        )
        .bind(*conversation.as_uuid())
        .bind(*uploader.as_uuid())
        .fetch_one(&self.pool)
        .await
        .map_err(storage)?;
        u32::try_from(count).map_err(RepositoryError::new)
    }

    async fn unsent_attachments(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<Attachment>, RepositoryError> {
        sqlx::query_as::<_, AttachmentRow>(sqlx::AssertSqlSafe(format!(
            "{SELECT_ATTACHMENTS}WHERE message_id IS NULL AND uploaded_at < $1 \
             ORDER BY uploaded_at LIMIT $2"
        )))
        .bind(DbTime(before))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?
        .into_iter()
        .map(Attachment::try_from)
        .collect()
    }

    async fn delete_unsent_attachment(&self, id: AttachmentId) -> Result<bool, RepositoryError> {
        let deleted =
            sqlx::query("DELETE FROM message_attachments WHERE id = $1 AND message_id IS NULL")
                .bind(*id.as_uuid())
                .execute(&self.pool)
                .await
                .map_err(storage)?;
        Ok(deleted.rows_affected() == 1)
    }

    async fn messages(
        &self,
        conversation: ConversationId,
        page: PageRequest<MessageId>,
    ) -> Result<Page<Message, MessageId>, RepositoryError> {
        let rows = sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(format!(
            "{SELECT_MESSAGES}WHERE m.conversation_id = $1 AND ($2 IS NULL OR m.id < $2) \
             ORDER BY m.id DESC LIMIT $3"
        )))
        .bind(*conversation.as_uuid())
        .bind(page.after().map(|id| *id.as_uuid()))
        .bind(i64::from(page.limit()) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        let mut attached = of_messages(
            &self.pool,
            "SELECT id FROM messages WHERE conversation_id = $1 AND ($2 IS NULL OR id < $2) \
             ORDER BY id DESC LIMIT $3",
            (
                *conversation.as_uuid(),
                page.after().map(|id| *id.as_uuid()),
                i64::from(page.limit()) + 1,
            ),
        )
        .await?;
        let messages = rows
            .into_iter()
            .map(|row| {
                let files = attached.remove(&row.id).unwrap_or_default();
                Message::try_from(row).map(|m| Message {
                    attachments: files,
                    ..m
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(messages, page.limit(), |m| m.id))
    }

    async fn message(&self, id: MessageId) -> Result<Option<Message>, RepositoryError> {
        let Some(row) = sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(format!(
            "{SELECT_MESSAGES}WHERE m.id = $1"
        )))
        .bind(*id.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(storage)?
        else {
            return Ok(None);
        };
        let attachments = sqlx::query_as::<_, AttachmentRow>(sqlx::AssertSqlSafe(format!(
            "{SELECT_ATTACHMENTS}WHERE message_id = $1 ORDER BY position"
        )))
        .bind(*id.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?
        .into_iter()
        .map(Attachment::try_from)
        .collect::<Result<Vec<_>, _>>()?;
        Message::try_from(row).map(|m| Some(Message { attachments, ..m }))
    }

    async fn mark_read(
        &self,
        conversation: ConversationId,
        user: UserId,
        upto: MessageId,
        events: &[NewNotification],
        at: Timestamp,
    ) -> Result<Option<Vec<Notification>>, RepositoryError> {
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        let moved = sqlx::query(
            "UPDATE conversation_participants SET last_read = $3 \
             WHERE conversation_id = $1 AND user_id = $2 \
             AND (last_read IS NULL OR last_read < $3)",
        )
        .bind(*conversation.as_uuid())
        .bind(*user.as_uuid())
        .bind(*upto.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        if moved.rows_affected() == 0 {
            tx.rollback().await.map_err(storage)?;
            return Ok(None);
        }
        let stored = DB::store_notifications(&mut tx, events, at)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(Some(stored))
    }

    async fn notify(
        &self,
        notifications: &[NewNotification],
        at: Timestamp,
    ) -> Result<Vec<Notification>, RepositoryError> {
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        let stored = DB::store_notifications(&mut tx, notifications, at)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(stored)
    }
}
