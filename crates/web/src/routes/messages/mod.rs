//! Messages: conversations between a patient and doctors of their care team, and between the
//! two doctors of a referral; their messages and read marks. Messages reach the other
//! participants' sockets live (`message` and `message_read` frames); one left unread becomes a
//! `message.unread` notification.
//!
//! A role that may never take part (secretaries, the laboratory, administrators) is refused,
//! and the refusal audited, before the path or the body is looked at. A conversation the
//! caller does not take part in, or no longer may, is "not found".

mod attachments;
pub mod views;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::IntoParams;

use carehub_domain::audit::AuditAction;
use carehub_domain::kernel::{AttachmentId, ConversationId, MessageId};
use carehub_domain::messages::NewConversation;

use crate::extract::{Caller, RawJson, parse_query, path_uuid};
use crate::paging::{ListPage, PageQuery};
use crate::problem::{ApiError, BodyProblems, Problem, Unauthenticated};
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;
use views::{ConversationInput, ConversationView, MessageInput, MessageView, ReadInput};

/// Registers the conversations' resources.
pub fn services(cfg: &mut ServiceConfig) {
    cfg.service(start_conversation)
        .service(list_conversations)
        .service(get_conversation)
        .service(list_messages)
        .service(send_message)
        .service(mark_read)
        .service(attachments::upload_attachment)
        .service(attachments::read_attachment);
}

fn conversation_id(raw: &str) -> Result<ConversationId, ApiError> {
    path_uuid(raw).map(ConversationId::from_uuid)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
}

/// Starts a conversation: `{patient_id, participant_ids}` with the patient's account and
/// doctors of the care team (the caller must be one of them, or the patient), or
/// `{referral_id}` between the referral's two doctors. A referral has one conversation: asking
/// again answers it (200).
#[utoipa::path(
    tag = "messages",
    request_body = ConversationInput,
    responses(
        (status = 201, description = "The conversation; `Location` names it", body = ConversationView,
            headers(("Location" = String, description = "/api/v1/conversations/{id}"))),
        (status = 200, description = "The referral's existing conversation", body = ConversationView),
        Unauthenticated,
        (status = 403, description = "Secretaries, the laboratory and administrators take part in no conversation; a doctor under emergency access alone may not start one", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such patient or referral, or not one the caller may talk about", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Participants who may not take part, no doctor, a patient without an account; all listed", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/conversations")]
pub async fn start_conversation(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    state
        .conversations
        .check_role(&actor, AuditAction::ConversationCreate)
        .await?;
    let new = NewConversation::try_from(body.parse::<ConversationInput>()?)?;
    let started = state.conversations.start(&actor, new).await?;
    let location = format!("/api/v1/conversations/{}", started.conversation.id);
    let view = ConversationView::from(started.conversation);
    Ok(if started.created {
        HttpResponse::Created()
            .insert_header((header::LOCATION, location))
            .json(view)
    } else {
        HttpResponse::Ok().json(view)
    })
}

/// The caller's conversations, newest first, with their unread counts; those the caller may
/// no longer take part in are left out. Each patient listed is audited.
#[utoipa::path(
    tag = "messages",
    params(PageParams),
    responses(
        (status = 200, description = "A page of conversations", body = ListPage<ConversationView>),
        (status = 400, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
        Unauthenticated,
        (status = 403, description = "Secretaries, the laboratory and administrators take part in no conversation", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/conversations")]
pub async fn list_conversations(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    state
        .conversations
        .check_role(&actor, AuditAction::ConversationList)
        .await?;
    let query: PageParams = parse_query(&request)?;
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .to_request(ConversationId::from_uuid)?;
    let conversations = state.conversations.list(&actor, page).await?;
    Ok(HttpResponse::Ok().json(ListPage::of(
        conversations,
        |id| *id.as_uuid(),
        ConversationView::from,
    )))
}

/// One conversation with its participants and how far each has read; the read is audited.
#[utoipa::path(
    tag = "messages",
    params(("id" = Uuid, Path, description = "The conversation's id")),
    responses(
        (status = 200, description = "The conversation", body = ConversationView),
        Unauthenticated,
        (status = 403, description = "Secretaries, the laboratory and administrators take part in no conversation", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation, or not one the caller takes part in", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/conversations/{id}")]
pub async fn get_conversation(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .conversations
        .check_role(&actor, AuditAction::ConversationRead)
        .await?;
    let conversation = state
        .conversations
        .get(&actor, conversation_id(&path)?)
        .await?;
    Ok(HttpResponse::Ok().json(ConversationView::from(conversation)))
}

/// The conversation's messages, newest first; the read is audited.
#[utoipa::path(
    tag = "messages",
    params(("id" = Uuid, Path, description = "The conversation's id"), PageParams),
    responses(
        (status = 200, description = "A page of messages, newest first", body = ListPage<MessageView>),
        (status = 400, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
        Unauthenticated,
        (status = 403, description = "Secretaries, the laboratory and administrators take part in no conversation", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation, or not one the caller takes part in", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/conversations/{id}/messages")]
pub async fn list_messages(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<String>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    state
        .conversations
        .check_role(&actor, AuditAction::ConversationRead)
        .await?;
    let id = conversation_id(&path)?;
    let query: PageParams = parse_query(&request)?;
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .to_request(MessageId::from_uuid)?;
    let messages = state.conversations.messages(&actor, id, page).await?;
    Ok(HttpResponse::Ok().json(ListPage::of(
        messages,
        |id| *id.as_uuid(),
        MessageView::from,
    )))
}

/// Sends a message; the other participants get it live on their sockets, and are notified if
/// it stays unread.
#[utoipa::path(
    tag = "messages",
    params(("id" = Uuid, Path, description = "The conversation's id")),
    request_body = MessageInput,
    responses(
        (status = 201, description = "The message", body = MessageView),
        Unauthenticated,
        (status = 403, description = "Secretaries, the laboratory and administrators take part in no conversation", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation, or not one the caller takes part in", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`body` missing, empty or over 4,000 characters; `attachment_ids` naming more than 5 files, or one that is not an unsent upload of the caller's to this conversation", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/conversations/{id}/messages")]
pub async fn send_message(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<String>,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    state
        .conversations
        .check_role(&actor, AuditAction::MessageSend)
        .await?;
    let id = conversation_id(&path)?;
    let input: MessageInput = body.parse()?;
    let Some(text) = input.body else {
        return Err(ApiError::invalid_field("body", "is required"));
    };
    let attachments: Vec<AttachmentId> = input
        .attachment_ids
        .unwrap_or_default()
        .into_iter()
        .map(AttachmentId::from_uuid)
        .collect();
    let message = state
        .conversations
        .send(&actor, id, &text, &attachments)
        .await?;
    Ok(HttpResponse::Created().json(MessageView::from(message)))
}

/// Marks the conversation read up to one of its messages (never back); the other
/// participants get a `message_read` frame.
#[utoipa::path(
    tag = "messages",
    params(("id" = Uuid, Path, description = "The conversation's id")),
    request_body = ReadInput,
    responses(
        (status = 204, description = "Marked"),
        Unauthenticated,
        (status = 403, description = "Secretaries, the laboratory and administrators take part in no conversation", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation or message in it, or not one the caller takes part in", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`message_id` missing", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/conversations/{id}/read")]
pub async fn mark_read(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<String>,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    state
        .conversations
        .check_role(&actor, AuditAction::ConversationRead)
        .await?;
    let id = conversation_id(&path)?;
    let input: ReadInput = body.parse()?;
    let Some(upto) = input.message_id else {
        return Err(ApiError::invalid_field("message_id", "is required"));
    };
    state
        .conversations
        .mark_read(&actor, id, MessageId::from_uuid(upto))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
