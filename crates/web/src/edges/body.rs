//! Request bodies: how large each route takes them, and how long a client has to send one.
//!
//! One rule, [`BodyRules::kind_of`], sorts every request: sign-in and the other token routes,
//! and every method that carries no body (GET, DELETE...), take a small body; uploads their
//! configured size; any other route a JSON body. A declared `Content-Length` over the limit is
//! answered 413 before the body is read. Otherwise the body is read through a guard that cuts
//! it at the limit (a chunked body says no length) and at the deadline: the answer is then 413
//! or 408, whatever the route made of the cut, and the connection is closed rather than
//! drained. The notification socket is left alone: its frames are no request body, and it has
//! its own heartbeat.

use std::cell::{Cell, RefCell};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::HttpMessage as _;
use actix_web::body::{BodySize, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::{ConnectionType, Method, header};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, HttpResponse, ResponseError as _};
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

use crate::problem::ApiError;

/// The body of sign-in, registration, the token endpoint, refresh and sign-out, and of every
/// request whose method takes none.
pub const SMALL_BODY: usize = 4 * 1024;

/// What multipart framing (boundaries, part headers) may add to an upload's parts.
pub const MULTIPART_FRAMING: usize = 64 * 1024;

/// The slowest rate an upload is given time for, on top of the body timeout: 128 KiB/s, about
/// one megabit per second.
pub const UPLOAD_RATE: u64 = 128 * 1024;

/// Routes that take a small body though they are POSTs: the ones anyone may call unsigned.
const SMALL_ROUTES: [&str; 5] = [
    "/api/v1/auth/login",
    "/api/v1/auth/register",
    "/api/v1/auth/token",
    "/api/v1/auth/refresh",
    "/api/v1/auth/logout",
];

/// Routes that take files (`multipart/form-data`).
const UPLOAD_ROUTES: [&str; 2] = [
    "/api/v1/lab-orders/{id}/files",
    "/api/v1/conversations/{id}/attachments",
];

/// The notification socket: once upgraded, the connection's bytes are its frames.
const SOCKET_ROUTE: &str = "/api/v1/ws";

/// What kind of body a request may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Small,
    Json,
    Upload,
    /// No body: a WebSocket.
    Socket,
}

/// The limits and the time allowed for bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyRules {
    /// The largest JSON body.
    pub json: usize,
    /// The largest upload request, multipart framing included.
    pub upload: usize,
    /// The time to send a body; uploads get more (see [`BodyRules::time_for`]).
    pub timeout: Duration,
}

impl BodyRules {
    /// The kind of body a request takes, by its method and the route pattern it matches.
    pub fn kind_of(method: &Method, pattern: Option<&str>) -> BodyKind {
        match pattern {
            Some(SOCKET_ROUTE) if method == Method::GET => BodyKind::Socket,
            _ if [
                Method::GET,
                Method::HEAD,
                Method::DELETE,
                Method::OPTIONS,
                Method::TRACE,
            ]
            .contains(method) =>
            {
                BodyKind::Small
            }
            Some(route) if SMALL_ROUTES.contains(&route) => BodyKind::Small,
            Some(route) if UPLOAD_ROUTES.contains(&route) => BodyKind::Upload,
            Some(_) => BodyKind::Json,
            // No route takes it: it will be a 404, with no need of a body.
            None => BodyKind::Small,
        }
    }

    /// The largest body of `kind`; `None` for no limit.
    pub fn limit(&self, kind: BodyKind) -> Option<usize> {
        match kind {
            BodyKind::Small => Some(SMALL_BODY),
            BodyKind::Json => Some(self.json),
            BodyKind::Upload => Some(self.upload),
            BodyKind::Socket => None,
        }
    }

    /// The time to send a body of `kind`, `length` bytes long if known: the body timeout, and
    /// for an upload as long again as sending it at [`UPLOAD_RATE`] takes (the length sent,
    /// else the limit).
    pub fn time_for(&self, kind: BodyKind, length: Option<u64>) -> Duration {
        match kind {
            BodyKind::Upload => {
                let bytes = length.unwrap_or(self.upload as u64);
                self.timeout + Duration::from_secs(bytes.div_ceil(UPLOAD_RATE))
            }
            _ => self.timeout,
        }
    }
}

/// Why a body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    TooLarge { limit: usize },
    TimedOut { allowed: Duration },
}

impl Refusal {
    /// The answer: a problem, and the connection closed, since the rest of the body is unread.
    fn response(self) -> HttpResponse {
        let error = match self {
            Self::TooLarge { limit } => ApiError::body_too_large(limit),
            Self::TimedOut { allowed } => ApiError::RequestTimeout(format!(
                "the request body was not sent within {} seconds",
                allowed.as_secs()
            )),
        };
        let mut response = error.error_response();
        response
            .head_mut()
            .set_connection_type(ConnectionType::Close);
        response
    }
}

/// What the guard tells the middleware: a refusal, and the unread rest of the body, kept until
/// the response is sent (see [`Holding`]) so that the server closes the connection instead of
/// reading on.
#[derive(Default)]
struct Watch {
    refusal: Cell<Option<Refusal>>,
    unread: RefCell<Option<Payload>>,
}

/// A response body holding the unread rest of the request's body until it is sent: actix
/// closes the connection after a response when the request's body is unread but still wanted,
/// and drains a chunked one otherwise, at whatever pace the client sends it.
struct Holding {
    body: BoxBody,
    _unread: Payload,
}

impl MessageBody for Holding {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

/// Refuses bodies over their route's limit or too slow to come.
///
/// # Errors
/// The inner service's.
pub async fn guard(
    rules: BodyRules,
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let kind = BodyRules::kind_of(request.method(), request.match_pattern().as_deref());
    let Some(limit) = rules.limit(kind) else {
        return Ok(next.call(request).await?.map_into_left_body());
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        let refusal = Refusal::TooLarge { limit }.response().map_into_boxed_body();
        return Ok(request.into_response(refusal).map_into_right_body());
    }
    let payload = request.take_payload();
    if matches!(payload, Payload::None) {
        return Ok(next.call(request).await?.map_into_left_body());
    }
    let allowed = rules.time_for(kind, declared);
    let watch = Rc::new(Watch::default());
    request.set_payload(Payload::Stream {
        payload: Box::pin(Guarded {
            inner: Some(payload),
            watch: Rc::clone(&watch),
            limit,
            read: 0,
            allowed,
            deadline: Box::pin(tokio::time::sleep_until(Instant::now() + allowed)),
            finished: false,
        }),
    });
    let response = next.call(request).await?;
    let response = match watch.refusal.get() {
        Some(refusal) => {
            let (request, _) = response.into_parts();
            ServiceResponse::new(request, refusal.response().map_into_boxed_body())
        }
        None if watch.unread.borrow().is_some() => response.map_into_boxed_body(),
        None => return Ok(response.map_into_left_body()),
    };
    let unread = watch.unread.borrow_mut().take();
    Ok(match unread {
        Some(unread) => response.map_body(|_, body| {
            BoxBody::new(Holding {
                body,
                _unread: unread,
            })
        }),
        None => response,
    }
    .map_into_right_body())
}

/// A body as the route reads it: cut at the limit and at the deadline.
struct Guarded {
    inner: Option<Payload>,
    watch: Rc<Watch>,
    limit: usize,
    read: usize,
    allowed: Duration,
    deadline: Pin<Box<Sleep>>,
    finished: bool,
}

impl Guarded {
    fn refuse(&mut self, refusal: Refusal) -> Poll<Option<Result<Bytes, PayloadError>>> {
        self.watch.refusal.set(Some(refusal));
        self.keep_unread();
        let error = match refusal {
            Refusal::TooLarge { .. } => PayloadError::Overflow,
            Refusal::TimedOut { .. } => PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request body was not sent in time",
            )),
        };
        Poll::Ready(Some(Err(error)))
    }

    fn keep_unread(&mut self) {
        if let Some(rest) = self.inner.take() {
            self.watch.unread.replace(Some(rest));
        }
    }
}

impl Stream for Guarded {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.read += chunk.len();
                if this.read > this.limit {
                    return this.refuse(Refusal::TooLarge { limit: this.limit });
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) => {
                this.finished = true;
                this.inner = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error))),
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    let allowed = this.allowed;
                    return this.refuse(Refusal::TimedOut { allowed });
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for Guarded {
    /// A body the route left unread is kept for the response, so that the connection is closed
    /// rather than the rest read and thrown away at the client's pace.
    fn drop(&mut self) {
        if !self.finished {
            self.keep_unread();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: BodyRules = BodyRules {
        json: 64 * 1024,
        upload: 50 * 1024 * 1024,
        timeout: Duration::from_secs(30),
    };

    #[test]
    fn each_route_takes_the_body_of_its_kind() {
        let post = Method::POST;
        for (method, pattern, kind) in [
            (&post, Some("/api/v1/auth/login"), BodyKind::Small),
            (&post, Some("/api/v1/auth/token"), BodyKind::Small),
            (&post, Some("/api/v1/auth/logout"), BodyKind::Small),
            (&post, Some("/api/v1/patients"), BodyKind::Json),
            (
                &Method::PATCH,
                Some("/api/v1/patients/{id}"),
                BodyKind::Json,
            ),
            (&Method::GET, Some("/api/v1/patients/{id}"), BodyKind::Small),
            (
                &Method::DELETE,
                Some("/api/v1/patients/{id}/care-team/{doctor_id}"),
                BodyKind::Small,
            ),
            (
                &post,
                Some("/api/v1/lab-orders/{id}/files"),
                BodyKind::Upload,
            ),
            (
                &post,
                Some("/api/v1/conversations/{id}/attachments"),
                BodyKind::Upload,
            ),
            (&Method::GET, Some("/api/v1/ws"), BodyKind::Socket),
            (&post, Some("/api/v1/ws"), BodyKind::Json),
            (&post, None, BodyKind::Small),
        ] {
            assert_eq!(
                BodyRules::kind_of(method, pattern),
                kind,
                "{method} {pattern:?}"
            );
        }
        assert_eq!(RULES.limit(BodyKind::Small), Some(4096));
        assert_eq!(RULES.limit(BodyKind::Socket), None);
    }

    #[test]
    fn uploads_get_time_for_their_size_on_top_of_the_body_timeout() {
        assert_eq!(
            RULES.time_for(BodyKind::Json, Some(60_000)),
            Duration::from_secs(30)
        );
        assert_eq!(
            RULES.time_for(BodyKind::Upload, Some(1024 * 1024)),
            Duration::from_secs(38)
        );
        assert_eq!(
            RULES.time_for(BodyKind::Upload, None),
            Duration::from_secs(30 + 400)
        );
    }
}
