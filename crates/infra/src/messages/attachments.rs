//! Message attachments' descriptions: stored unsent, attached to a message in its
//! transaction, read back with their messages in the order given.

use std::collections::HashMap;

use sqlx::{Executor, FromRow, Pool};
use uuid::Uuid;

use carehub_domain::identity::UserId;
use carehub_domain::kernel::{AttachmentId, ConversationId, FileName, MessageId, RepositoryError};
use carehub_domain::messages::Attachment;

use crate::db::backend::{Backend, Param, corrupt, storage};
use crate::db::sql_time::DbTime;

#[derive(sqlx::FromRow)]
pub(crate) struct AttachmentRow {
    id: Uuid,
    conversation_id: Uuid,
    message_id: Option<Uuid>,
    name: String,
    content_type: String,
    size: i64,
    sha256: String,
    uploaded_by: Uuid,
    uploaded_at: DbTime,
}

impl TryFrom<AttachmentRow> for Attachment {
    type Error = RepositoryError;

    fn try_from(row: AttachmentRow) -> Result<Self, Self::Error> {
        Ok(Attachment {
            id: AttachmentId::from_uuid(row.id),
            conversation_id: ConversationId::from_uuid(row.conversation_id),
            message_id: row.message_id.map(MessageId::from_uuid),
            name: FileName::parse(&row.name).map_err(|e| corrupt("message_attachments", e))?,
            content_type: row.content_type,
            size: u64::try_from(row.size).map_err(|e| corrupt("message_attachments", e))?,
            sha256: row.sha256,
            uploaded_by: UserId::from_uuid(row.uploaded_by),
            uploaded_at: row.uploaded_at.0,
        })
    }
}

pub(crate) const SELECT_ATTACHMENTS: &str = "SELECT id, conversation_id, message_id, name, \
     content_type, size, sha256, uploaded_by, uploaded_at FROM message_attachments ";

pub(crate) const INSERT_ATTACHMENT: &str = "INSERT INTO message_attachments (id, \
     conversation_id, name, content_type, size, sha256, uploaded_by, uploaded_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Attaches an unsent upload of `sender` to `message`, at `position`; matches nothing once
/// it is sent or gone.
pub(crate) const ATTACH: &str = "UPDATE message_attachments SET message_id = $1, position = $2 \
     WHERE id = $3 AND conversation_id = $4 AND uploaded_by = $5 AND message_id IS NULL";

/// The attachments of the messages `where_messages` selects (a subquery on `messages` with
/// `$1`.. as its parameters, bound by `bind`), by message, in the order given.
pub(crate) async fn of_messages<DB>(
    pool: &Pool<DB>,
    message_ids: &str,
    binds: (Uuid, Option<Uuid>, i64),
) -> Result<HashMap<Uuid, Vec<Attachment>>, RepositoryError>
where
    DB: Backend,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> Option<Uuid>: Param<'a, DB>,
    for<'a> i64: Param<'a, DB>,
    for<'r> AttachmentRow: FromRow<'r, DB::Row>,
{
    let rows = sqlx::query_as::<_, AttachmentRow>(sqlx::AssertSqlSafe(format!(
        "{SELECT_ATTACHMENTS}WHERE message_id IN ({message_ids}) ORDER BY message_id, position"
    )))
    .bind(binds.0)
    .bind(binds.1)
    .bind(binds.2)
    .fetch_all(pool)
    .await
    .map_err(storage)?;
    let mut by_message: HashMap<Uuid, Vec<Attachment>> = HashMap::new();
    for row in rows {
        let Some(message) = row.message_id else {
            continue;
        };
        by_message
            .entry(message)
            .or_default()
            .push(Attachment::try_from(row)?);
    }
    Ok(by_message)
}
