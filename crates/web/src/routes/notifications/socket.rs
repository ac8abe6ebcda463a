//! The notification socket: tickets for browsers, and the WebSocket upgrade. The protocol
//! spoken on the socket is in [`crate::hub`] and `docs/notifications.md`.

use actix_web::http::header;
use actix_web::{HttpMessage as _, HttpRequest, HttpResponse, get, post, web};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tracing_actix_web::RootSpan;
use utoipa::{IntoParams, ToSchema};

use carehub_domain::identity::Principal;

use crate::extract::{Authenticated, bearer_token, parse_query};
use crate::hub::session::{self, MAX_CLIENT_FRAME};
use crate::problem::{ApiError, Problem, Unauthenticated, missing_credentials};
use crate::state::AppState;

/// A single-use ticket that opens a socket as its holder.
#[derive(Debug, Serialize, ToSchema)]
pub struct SocketTicket {
    /// Pass as `ticket` to `GET /api/v1/ws`.
    pub ticket: String,
    /// Unused after this, it no longer opens a socket (30 seconds, or the access token's expiry
    /// if sooner).
    pub expires_at: Timestamp,
}

/// Get a ticket to open the notification socket with, for clients that cannot send an
/// `Authorization` header on a WebSocket upgrade (browsers). Single use, valid 30 seconds.
#[utoipa::path(
    tag = "notifications",
    responses(
        (status = 201, description = "A ticket", body = SocketTicket),
        Unauthenticated,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/ws/tickets")]
pub async fn issue_ticket(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let (ticket, expires_at) = state.identity.issue_socket_ticket(&principal).await?;
    Ok(HttpResponse::Created().json(SocketTicket { ticket, expires_at }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SocketQuery {
    /// The last notification id the client has seen: every later one is replayed first. Absent:
    /// only notifications from now on.
    #[param(value_type = Option<i64>, minimum = 0)]
    pub after: Option<String>,
    /// A ticket from `POST /api/v1/ws/tickets`, instead of an `Authorization` header.
    pub ticket: Option<String>,
}

/// Open the notification socket (WebSocket). Authenticate with `Authorization: Bearer` or
/// `?ticket=`. The server sends `notification` frames (replaying those after `after` first),
/// then `ready`, then live ones as they happen; see `docs/notifications.md` for every frame and
/// close code.
#[utoipa::path(
    tag = "notifications",
    params(SocketQuery),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket upgrade, or `after` is not a non-negative integer", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid, expired or revoked token, or an unknown, used or expired ticket", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []), ())
)]
#[get("/ws")]
pub async fn open_socket(
    request: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query: SocketQuery = parse_query(&request)?;
    let authorization = request.headers().get(header::AUTHORIZATION).cloned();
    if authorization.is_none() && query.ticket.is_none() {
        return Ok(missing_credentials());
    }
    // Checked before the ticket is used up, so that a malformed request does not waste it.
    let after = query
        .after
        .as_deref()
        .map(|raw| {
            raw.parse::<i64>()
                .ok()
                .filter(|after| *after >= 0)
                .ok_or_else(|| ApiError::BadRequest("after: must be a non-negative integer".into()))
        })
        .transpose()?;
    let principal = match (authorization, query.ticket.as_deref()) {
        (Some(value), _) => {
            let token = value
                .to_str()
                .ok()
                .and_then(bearer_token)
                .ok_or_else(|| {
                    ApiError::Unauthorized(
                        "the Authorization header must be `Bearer <token>`".into(),
                    )
                })?
                .to_owned();
            state.identity.authenticate(&token).await?
        }
        (None, Some(ticket)) => state.identity.redeem_socket_ticket(ticket).await?,
        (None, None) => return Ok(missing_credentials()),
    };
    record_caller(&request, &principal);

    let (response, socket, stream) = actix_ws::handle(&request, body)
        .map_err(|e| ApiError::BadRequest(format!("a WebSocket upgrade is required: {e}")))?;
    let stream = stream
        .max_frame_size(MAX_CLIENT_FRAME)
        .aggregate_continuations()
        .max_continuation_size(MAX_CLIENT_FRAME);
    actix_web::rt::spawn(session::run(
        state.hub.clone(),
        principal,
        after,
        socket,
        stream,
    ));
    Ok(response)
}

/// Notes the caller's role in the request's span, and a staff member's id (a patient's account
/// id would identify a patient), as the `Authenticated` extractor does.
fn record_caller(request: &HttpRequest, principal: &Principal) {
    if let Some(span) = request.extensions().get::<RootSpan>() {
        span.record("role", principal.role().as_str());
        if principal.role().is_staff() {
            span.record("user_id", tracing::field::display(principal.id()));
        }
    }
}
