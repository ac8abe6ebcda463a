//! Administration: accounts (listing, creating staff, approving and changing them), the audit
//! trail and emergency accesses.

use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use serde::{Deserialize, Deserializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use carehub_domain::access::{Action, Relationship};
use carehub_domain::audit::{AuditEventId, AuditFilter};
use carehub_domain::identity::{Role, UserFilter, UserId, UserStatus, parse_user_changes};
use carehub_domain::patients::{EmergencyAccessId, PatientId};

use crate::api::records::{AuditEventView, EmergencyAccessView};
use crate::api::{ListPage, PageQuery, UserView};
use crate::api::{enums, rules};
use crate::extract::{Authenticated, Caller, RawJson, parse_query, path_uuid};
use crate::problem::{ApiError, BodyProblems, Problem};
use crate::routes::auth::RegisterRequest;
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    #[param(value_type = Option<enums::Role>)]
    pub role: Option<Role>,
    #[param(value_type = Option<enums::UserStatus>)]
    pub status: Option<UserStatus>,
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
}

/// Changes to an account; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateUserRequest {
    /// One line of at most 200 characters; absent or `null`: unchanged.
    #[schema(schema_with = rules::full_name_change)]
    pub full_name: Option<String>,
    /// `null` clears the address.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = rules::email)]
    pub email: Option<Option<String>>,
    /// Staff roles only change among themselves; patients stay patients.
    #[schema(value_type = Option<enums::Role>)]
    pub role: Option<String>,
    /// `active` or `suspended`. Suspending revokes every token of the account at once.
    #[schema(value_type = Option<enums::UserStatus>)]
    pub status: Option<String>,
}

/// Tells a field that is present (maybe `null`) from one that is absent.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// List accounts, filtered by role and status.
#[utoipa::path(
    tag = "admin",
    params(UserListQuery),
    responses(
        (status = 200, description = "A page of accounts", body = ListPage<UserView>),
        (status = 400, description = "Invalid filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an administrator", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/admin/users")]
pub async fn list_users(
    state: web::Data<AppState>,
    Authenticated(admin): Authenticated,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    admin.permit(Action::ManageAccounts)?;
    let query: UserListQuery = parse_query(&request)?;
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .to_request(UserId::from_uuid)?;
    let filter = UserFilter {
        role: query.role,
        status: query.status,
    };
    let users = state.identity.list_users(&admin, filter, page).await?;
    Ok(HttpResponse::Ok().json(ListPage::of(users, |id| *id.as_uuid(), UserView::from)))
}

/// Create an active staff account.
#[utoipa::path(
    tag = "admin",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The new account", body = UserView),
        (status = 401, description = "No valid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The username is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, all listed; patients register themselves", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/admin/users")]
pub async fn create_user(
    state: web::Data<AppState>,
    Authenticated(admin): Authenticated,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    admin.permit(Action::ManageAccounts)?;
    let account = body.parse::<RegisterRequest>()?.into_account()?;
    let user = state.identity.create_staff(&admin, account).await?;
    Ok(HttpResponse::Created().json(UserView::from(user)))
}

/// Approve a pending account.
#[utoipa::path(
    tag = "admin",
    params(("id" = Uuid, Path, description = "The account's id")),
    responses(
        (status = 200, description = "The approved account", body = UserView),
        (status = 401, description = "No valid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The account is not pending", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/admin/users/{id}/approve")]
pub async fn approve_user(
    state: web::Data<AppState>,
    Authenticated(admin): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    admin.permit(Action::ManageAccounts)?;
    let id = UserId::from_uuid(path_uuid(&id)?);
    let user = state.identity.approve(&admin, id).await?;
    Ok(HttpResponse::Ok().json(UserView::from(user)))
}

/// Change an account's name, e-mail, role or status.
#[utoipa::path(
    tag = "admin",
    params(("id" = Uuid, Path, description = "The account's id")),
    request_body = UpdateUserRequest,
    responses(
        (status = 200, description = "The account as it now is", body = UserView),
        (status = 401, description = "No valid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Administrators cannot change their own role or status", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, all listed", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[patch("/admin/users/{id}")]
pub async fn update_user(
    state: web::Data<AppState>,
    Authenticated(admin): Authenticated,
    id: web::Path<String>,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    admin.permit(Action::ManageAccounts)?;
    let id = UserId::from_uuid(path_uuid(&id)?);
    let body: UpdateUserRequest = body.parse()?;
    let changes = parse_user_changes(
        body.full_name.as_deref(),
        body.email.as_ref().map(Option::as_deref),
        body.role.as_deref(),
        body.status.as_deref(),
    )?;
    let user = state.identity.update_user(&admin, id, changes).await?;
    Ok(HttpResponse::Ok().json(UserView::from(user)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only events about this patient.
    pub patient_id: Option<Uuid>,
    /// Only events of this actor.
    pub user_id: Option<Uuid>,
    /// Only events at or after this instant (RFC 3339).
    #[param(format = DateTime, example = "2026-11-22T00:00:00Z")]
    pub from: Option<String>,
    /// Only events before this instant (RFC 3339).
    #[param(format = DateTime, example = "2026-11-23T00:00:00Z")]
    pub to: Option<String>,
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
}

fn instant(name: &str, raw: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    raw.map(|raw| {
        OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| {
            ApiError::BadRequest(format!(
                "{name}: must be an RFC 3339 instant such as 2026-11-22T08:00:00Z"
            ))
        })
    })
    .transpose()
}

/// The audit trail: every attempt on patients' data, allowed or denied, newest first.
#[utoipa::path(
    tag = "admin",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of audit events", body = ListPage<AuditEventView>),
        (status = 400, description = "Invalid filter, limit or cursor, or `from` after `to`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an administrator", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/admin/audit")]
pub async fn audit_trail(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    actor.permit(Action::ReadAuditTrail, Relationship::None)?;
    let query: AuditQuery = parse_query(&request)?;
    let from = instant("from", query.from.as_deref())?;
    let to = instant("to", query.to.as_deref())?;
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(ApiError::BadRequest("from: must not be after `to`".into()));
    }
    let filter = AuditFilter {
        patient_id: query.patient_id.map(PatientId::from_uuid),
        actor_id: query.user_id.map(UserId::from_uuid),
        from,
        to,
    };
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .to_request(AuditEventId::from_uuid)?;
    let entries = state.audit.audit_trail(&actor, filter, page).await?;
    Ok(HttpResponse::Ok().json(ListPage::of(
        entries,
        |id| *id.as_uuid(),
        AuditEventView::from,
    )))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EmergencyAccessQuery {
    /// Only accesses to this patient.
    pub patient_id: Option<Uuid>,
    /// Only accesses this doctor took.
    pub doctor_id: Option<Uuid>,
    /// `true`: only accesses that have not expired; `false`: only expired ones; absent: all.
    pub active: Option<bool>,
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
}

/// Emergency ("break-the-glass") accesses doctors took, newest first.
#[utoipa::path(
    tag = "admin",
    params(EmergencyAccessQuery),
    responses(
        (status = 200, description = "A page of emergency accesses", body = ListPage<EmergencyAccessView>),
        (status = 400, description = "Invalid filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an administrator", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/admin/emergency-accesses")]
pub async fn emergency_accesses(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    actor.permit(Action::ReadEmergencyAccesses, Relationship::None)?;
    let query: EmergencyAccessQuery = parse_query(&request)?;
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .to_request(EmergencyAccessId::from_uuid)?;
    let accesses = state
        .emergency_accesses
        .list_emergency_accesses(
            &actor,
            query.patient_id.map(PatientId::from_uuid),
            query.doctor_id.map(UserId::from_uuid),
            query.active,
            page,
        )
        .await?;
    let now = OffsetDateTime::now_utc();
    Ok(HttpResponse::Ok().json(ListPage::of(
        accesses,
        |id| *id.as_uuid(),
        |access| EmergencyAccessView::at(&access, now),
    )))
}
