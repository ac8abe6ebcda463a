//! The caller's own notifications: listing them, marking them read, counting the unread. Any
//! signed-in user has notifications, and only ever reads their own, so nothing here is refused
//! beyond authentication. Live delivery is the WebSocket hub's; this is the catch-up and the
//! bookkeeping.

pub mod preferences;
pub mod socket;
pub mod views;

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::IntoParams;

use carehub_domain::notifications::DEFAULT_LIST_LIMIT;

use crate::extract::{Authenticated, parse_query};
use crate::problem::{ApiError, Problem, Unauthenticated};
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;
use views::{MarkedRead, NotificationList, NotificationView, UnreadCount};

/// Registers the notification resources: the REST ones, then the socket's.
pub fn services(cfg: &mut ServiceConfig) {
    cfg.service(list_notifications)
        .service(mark_all_read)
        .service(unread_count)
        .service(mark_read)
        .service(preferences::get_preferences)
        .service(preferences::put_preferences)
        .service(socket::issue_ticket)
        .service(socket::open_socket);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationListQuery {
    /// Only notifications with an id above this one (0 or more): the `next_after` of the
    /// previous listing, or the last id a client has seen.
    #[param(value_type = Option<i64>, minimum = 0)]
    pub after: Option<String>,
    /// `true`: only unread notifications; `false` or absent: all.
    #[param(value_type = Option<bool>)]
    pub unread: Option<String>,
    /// At most this many, 1 to 500 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    pub limit: Option<String>,
}

/// What a listing asks for, once parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Listing {
    after: Option<i64>,
    unread_only: bool,
    limit: Option<u32>,
}

impl NotificationListQuery {
    fn parse(&self) -> Result<Listing, ApiError> {
        let after = self
            .after
            .as_deref()
            .map(|raw| raw.parse::<i64>().ok().filter(|after| *after >= 0))
            .map(|after| {
                after.ok_or_else(|| {
                    ApiError::BadRequest("after: must be a non-negative integer".into())
                })
            })
            .transpose()?;
        let unread_only = match self.unread.as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                return Err(ApiError::BadRequest("unread: must be true or false".into()));
            }
        };
        let limit = self
            .limit
            .as_deref()
            .map(|raw| {
                raw.parse::<u32>().map_err(|_| {
                    ApiError::BadRequest("limit: must be an integer between 1 and 500".into())
                })
            })
            .transpose()?;
        Ok(Listing {
            after,
            unread_only,
            limit,
        })
    }
}

/// The caller's notifications above `after`, oldest first.
#[utoipa::path(
    tag = "notifications",
    params(NotificationListQuery),
    responses(
        (status = 200, description = "The notifications, in id order", body = NotificationList),
        (status = 400, description = "`after`, `unread` or `limit` invalid", body = Problem, content_type = "application/problem+json"),
        Unauthenticated,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/notifications")]
pub async fn list_notifications(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let listing = parse_query::<NotificationListQuery>(&request)?.parse()?;
    let items = state
        .notifications
        .list(
            principal.id(),
            listing.after,
            listing.unread_only,
            listing.limit,
        )
        .await?;
    Ok(HttpResponse::Ok().json(NotificationList::new(
        items,
        listing.limit.unwrap_or(DEFAULT_LIST_LIMIT),
    )))
}

/// Mark one of the caller's notifications read. One already read keeps its first reading time.
#[utoipa::path(
    tag = "notifications",
    params(("id" = i64, Path, description = "The notification's id")),
    responses(
        (status = 200, description = "The notification, read", body = NotificationView),
        (status = 400, description = "The id is not an integer", body = Problem, content_type = "application/problem+json"),
        Unauthenticated,
        (status = 404, description = "The caller has no notification with this id", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/notifications/{id}/read")]
pub async fn mark_read(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::BadRequest("id: must be an integer".into()))?;
    let notification = state.notifications.mark_read(principal.id(), id).await?;
    Ok(HttpResponse::Ok().json(NotificationView::from(notification)))
}

/// Mark every unread notification of the caller read.
#[utoipa::path(
    tag = "notifications",
    responses(
        (status = 200, description = "How many were marked", body = MarkedRead),
        Unauthenticated,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/notifications/read-all")]
pub async fn mark_all_read(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let marked = state.notifications.mark_all_read(principal.id()).await?;
    Ok(HttpResponse::Ok().json(MarkedRead { marked }))
}

/// How many of the caller's notifications are unread.
#[utoipa::path(
    tag = "notifications",
    responses(
        (status = 200, description = "The number unread", body = UnreadCount),
        Unauthenticated,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/notifications/unread-count")]
pub async fn unread_count(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let unread = state.notifications.unread_count(principal.id()).await?;
    Ok(HttpResponse::Ok().json(UnreadCount { unread }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(raw: &str) -> Result<Listing, ApiError> {
        web::Query::<NotificationListQuery>::from_query(raw)
            .expect("a query")
            .into_inner()
            .parse()
    }

    #[test]
    fn a_listing_reads_after_unread_and_limit() {
        assert_eq!(
            listing("after=5&unread=true&limit=20").ok(),
            Some(Listing {
                after: Some(5),
                unread_only: true,
                limit: Some(20),
            })
        );
        assert_eq!(
            listing("").ok(),
            Some(Listing {
                after: None,
                unread_only: false,
                limit: None,
            })
        );
        assert_eq!(
            listing("after=0&unread=false").ok().and_then(|l| l.after),
            Some(0)
        );
    }

    #[test]
    fn negative_or_non_numeric_values_are_refused() {
        for raw in [
            "after=-1",
            "after=x",
            "unread=yes",
            "unread=1",
            "limit=-3",
            "limit=ten",
        ] {
            assert!(listing(raw).is_err(), "{raw}");
        }
    }
}
