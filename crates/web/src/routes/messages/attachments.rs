//! Files that go with messages: a participant uploads one (`multipart/form-data`, one part
//! named `file`: a PDF, PNG or JPEG image, checked by its content), then names it in
//! `attachment_ids` when sending; participants read it back. The name is a label, never a
//! path, and the bytes are served as a download.

use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType};
use actix_web::{HttpRequest, HttpResponse, get, post, web};

use carehub_domain::audit::AuditAction;
use carehub_domain::kernel::{AttachmentId, FileName, ValidationErrors};
use carehub_domain::messages::Upload;

use super::conversation_id;
use super::views::AttachmentView;
use crate::extract::{Caller, path_uuid};
use crate::problem::{ApiError, Problem, Unauthenticated};
use crate::state::AppState;
use crate::upload::{Part, multipart_parts, sha256_hex};

/// The multipart body of an attachment upload: one part named `file`. (`Deserialize` only so
/// that the schema states that no other part is taken.)
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct AttachmentForm {
    /// A PDF document (`.pdf`), or a PNG or JPEG image.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Uploads a file to the conversation, to send with a message (name its id in
/// `attachment_ids`). Unsent, only its uploader sees it, and it is deleted after a day; at most
/// 20 of one user's wait in a conversation at once.
#[utoipa::path(
    tag = "messages",
    params(("id" = Uuid, Path, description = "The conversation's id")),
    request_body(content = AttachmentForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The file, unsent", body = AttachmentView),
        (status = 400, description = "Not one part named file, or malformed", body = Problem, content_type = "application/problem+json"),
        Unauthenticated,
        (status = 403, description = "Secretaries, the laboratory and administrators take part in no conversation", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation, or not one the caller takes part in", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The caller has 20 files here not sent yet", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The file is too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not multipart/form-data", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A name with a directory part; an empty file; content that is not a PDF, PNG or JPEG", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/conversations/{id}/attachments")]
pub async fn upload_attachment(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<String>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    state
        .conversations
        .check_role(&actor, AuditAction::AttachmentUpload)
        .await?;
    let id = conversation_id(&path)?;
    let (mut parts, _) = multipart_parts(&request, payload, state.upload_limits, &[]).await?;
    let (Some(part), None) = (parts.pop(), parts.pop()) else {
        return Err(ApiError::BadRequest(
            "send exactly one part named file".into(),
        ));
    };
    let upload = check(part).map_err(|message| {
        let mut errors = ValidationErrors::new();
        errors.add("file", message);
        ApiError::Invalid(errors)
    })?;
    let attachment = state.conversations.attach(&actor, id, upload).await?;
    Ok(HttpResponse::Created().json(AttachmentView::from(attachment)))
}

/// A file of the conversation, as a download, for a participant who may take part: one sent
/// with a message, or the caller's own unsent upload. Audited (`attachment.read`).
#[utoipa::path(
    tag = "messages",
    params(
        ("id" = Uuid, Path, description = "The conversation's id"),
        ("attachment_id" = Uuid, Path, description = "The file's id"),
    ),
    responses(
        (status = 200, description = "The file's bytes, with its type and name", content_type = "application/octet-stream"),
        Unauthenticated,
        (status = 403, description = "Secretaries, the laboratory and administrators take part in no conversation", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation or file in it, or not one the caller may read", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/conversations/{id}/attachments/{attachment_id}")]
pub async fn read_attachment(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    state
        .conversations
        .check_role(&actor, AuditAction::AttachmentRead)
        .await?;
    let id = conversation_id(&path.0)?;
    let attachment_id = path_uuid(&path.1).map(AttachmentId::from_uuid)?;
    let (attachment, bytes) = state
        .conversations
        .attachment(&actor, id, attachment_id)
        .await?;
    let disposition = ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters: vec![DispositionParam::Filename(
            attachment.name.as_str().to_owned(),
        )],
    };
    Ok(HttpResponse::Ok()
        .content_type(attachment.content_type)
        .insert_header(disposition)
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .body(bytes))
}

/// What the file is, by its content: a PDF, PNG or JPEG, agreeing with its name's extension
/// and its declared type.
fn check(part: Part) -> Result<Upload, String> {
    let name = FileName::parse(&part.name).map_err(|e| format!("{:?}: {e}", part.name))?;
    let shown = name.as_str().to_owned();
    if part.bytes.is_empty() {
        return Err(format!("{shown}: is empty"));
    }
    let sniffed = infer::get(&part.bytes).map(|t| t.mime_type());
    let content_type = match (name.extension().as_deref(), sniffed) {
        (Some("pdf"), Some(mime @ "application/pdf"))
        | (Some("png"), Some(mime @ "image/png"))
        | (Some("jpg" | "jpeg"), Some(mime @ "image/jpeg")) => mime,
        (Some("pdf" | "png" | "jpg" | "jpeg"), _) => {
            return Err(format!("{shown}: its content does not match its name"));
        }
        _ => {
            return Err(format!(
                "{shown}: only .pdf, .png, .jpg and .jpeg files are accepted"
            ));
        }
    };
    if let Some(declared) = part
        .declared
        .as_deref()
        .filter(|d| *d != "application/octet-stream" && *d != content_type)
    {
        return Err(format!(
            "{shown}: is declared {declared} but is {content_type}"
        ));
    }
    Ok(Upload {
        name,
        content_type: content_type.to_owned(),
        sha256: sha256_hex(&part.bytes),
        bytes: part.bytes,
    })
}
