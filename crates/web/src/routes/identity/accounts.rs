//! Administration: accounts (listing, creating staff, approving and changing them), the audit
//! trail and emergency accesses.

use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use carehub_domain::access::Action;
use carehub_domain::identity::{Role, UserFilter, UserId, UserStatus, parse_user_changes};

use super::auth::RegisterRequest;
use super::views::UserView;
use crate::extract::{Authenticated, RawJson, parse_query, path_uuid, present};
use crate::openapi::{enums, rules};
use crate::paging::{ListPage, PageQuery};
use crate::problem::{AdminOnly, ApiError, BodyProblems, Problem, Unauthenticated};
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

/// Registers account administration.
pub fn services(cfg: &mut ServiceConfig) {
    cfg.service(list_users)
        .service(create_user)
        .service(approve_user)
        .service(update_user);
}

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
    #[schema(schema_with = rules::status_change)]
    pub status: Option<String>,
}

/// List accounts, filtered by role and status.
#[utoipa::path(
    tag = "admin",
    params(UserListQuery),
    responses(
        (status = 200, description = "A page of accounts", body = ListPage<UserView>),
        (status = 400, description = "Invalid filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
        Unauthenticated,
        AdminOnly,
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
        Unauthenticated,
        AdminOnly,
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
        Unauthenticated,
        AdminOnly,
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
        Unauthenticated,
        AdminOnly,
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
