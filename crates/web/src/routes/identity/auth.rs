//! Registration, sign-in (JSON and the OAuth 2.0 token endpoint), refresh and sign-out.

use actix_web::cookie::time::Duration;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, CacheDirective};
use actix_web::{HttpRequest, HttpResponse, post, web};
use serde::Deserialize;
use utoipa::ToSchema;

use carehub_domain::identity::{
    DeviceToken, LoginError, NewAccount, RefreshError, RefreshToken, SignInClient, SignedIn,
};
use carehub_domain::kernel::ValidationErrors;

use super::views::{TokenResponse, UserView};
use crate::client::Client;
use crate::extract::{Authenticated, JsonBody, RawJson, merge_missing, required};
use crate::openapi::{enums, rules};
use crate::problem::{ApiError, BodyProblems, Problem, Unauthenticated};
use crate::state::AppState;

/// A new account.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// 3 to 32 of `a-z 0-9 . _ -`; unique regardless of case.
    #[schema(example = "dr.house", schema_with = rules::username, required = true)]
    pub username: Option<String>,
    /// 12 to 128 characters, not containing the username.
    #[schema(schema_with = rules::password, required = true)]
    pub password: Option<String>,
    /// One line of at most 200 characters.
    #[schema(schema_with = rules::full_name, required = true)]
    pub full_name: Option<String>,
    #[schema(schema_with = rules::email)]
    pub email: Option<String>,
    /// `patient` is active at once; `doctor`, `secretary` and `laboratory` wait for an
    /// administrator's approval; `admin` cannot register.
    #[schema(value_type = enums::Role, required = true)]
    pub role: Option<String>,
}

impl RegisterRequest {
    /// Validates every field, listing all that are missing or invalid.
    ///
    /// # Errors
    /// [`ApiError::Invalid`].
    pub fn into_account(self) -> Result<NewAccount, ApiError> {
        let mut missing = ValidationErrors::new();
        let username = required(&mut missing, "username", self.username.as_deref());
        let password = required(&mut missing, "password", self.password.as_deref());
        let full_name = required(&mut missing, "full_name", self.full_name.as_deref());
        let role = required(&mut missing, "role", self.role.as_deref());
        let parsed = NewAccount::parse(username, password, full_name, self.email.as_deref(), role);
        match parsed {
            Ok(account) if missing.is_empty() => Ok(account),
            Ok(_) => Err(missing.into()),
            Err(found) => Err(merge_missing(missing, Some(found)).into()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    #[schema(value_type = String, required = true)]
    pub username: Option<String>,
    #[schema(format = Password, value_type = String, required = true)]
    pub password: Option<String>,
    /// The `device_token` of this client's last sign-in to this account: failed sign-ins from
    /// elsewhere do not pause it. Browsers send the `carehub_device` cookie instead.
    pub device_token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct LogoutRequest {
    /// Also revoke the session of this refresh token, if it is the caller's.
    pub refresh_token: Option<String>,
}

/// An OAuth 2.0 token request (RFC 6749 sections 4.3 and 6), form-encoded.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenForm {
    /// `password` or `refresh_token`.
    pub grant_type: String,
    pub username: Option<String>,
    #[schema(format = Password)]
    pub password: Option<String>,
    pub refresh_token: Option<String>,
    /// Accepted and ignored: CareHub has no scopes.
    pub scope: Option<String>,
    /// Accepted and ignored: CareHub's clients are public.
    pub client_id: Option<String>,
    /// With `grant_type=password`: as in `/auth/login`.
    pub device_token: Option<String>,
}

/// The cookie that carries a browser's device tokens, one per account signed in on it.
pub const DEVICE_COOKIE: &str = "carehub_device";

/// How the device cookie is set.
#[derive(Debug, Clone, Copy)]
pub struct DeviceCookie {
    /// `Secure`: the clinic is reached over HTTPS.
    pub secure: bool,
    pub max_age_secs: i64,
}

impl DeviceCookie {
    /// Who signs in: the caller's address and the device tokens it holds, the body's first.
    fn client(request: &HttpRequest, address: Client, in_body: Option<&str>) -> SignInClient {
        let cookie = request.cookie(DEVICE_COOKIE);
        let held = cookie.as_ref().map_or("", |c| c.value());
        SignInClient {
            address: address.0,
            device_tokens: in_body
                .into_iter()
                .chain(held.split('.'))
                .filter_map(DeviceToken::parse)
                .take(SignInClient::MAX_DEVICE_TOKENS)
                .collect(),
        }
    }

    /// The tokens of a sign-in, with the cookie that keeps the device's token for next time:
    /// HttpOnly, for the sign-in routes only, the signed-in account's token first.
    fn signed_in(self, client: &SignInClient, signed_in: SignedIn) -> HttpResponse {
        let device = &signed_in.device_token;
        let value = std::iter::once(device)
            .chain(client.device_tokens.iter().filter(|held| *held != device))
            .take(SignInClient::MAX_DEVICE_TOKENS)
            .map(DeviceToken::expose)
            .collect::<Vec<_>>()
            .join(".");
        let cookie = Cookie::build(DEVICE_COOKIE, value)
            .path("/api/v1/auth")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Strict)
            .max_age(Duration::seconds(self.max_age_secs))
            .finish();
        let mut response = tokens(signed_in.into());
        // A cookie built from base64url tokens and '.' always makes a valid header.
        if let Err(error) = response.add_cookie(&cookie) {
            tracing::error!(%error, "the device cookie could not be set");
        }
        response
    }
}

fn tokens(response: TokenResponse) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(header::CacheControl(vec![CacheDirective::NoStore]))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(response)
}

/// Register an account.
#[utoipa::path(
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The new account", body = UserView),
        (status = 403, description = "Administrators cannot self-register", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The username is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, all listed", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many registrations from this address; see Retry-After", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    )
)]
#[post("/auth/register")]
pub async fn register(
    state: web::Data<AppState>,
    client: Client,
    JsonBody(body): JsonBody<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let user = state
        .identity
        .register(body.into_account()?, client.0)
        .await?;
    Ok(HttpResponse::Created().json(UserView::from(user)))
}

/// Sign in with a username and password. The answer sets the `carehub_device` cookie and
/// carries the same `device_token`: a client that sends it back passes the username's pause
/// when others have failed to sign in as this user.
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 401, description = "Wrong username or password (the same answer for both)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The account is pending approval or suspended", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing fields", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed sign-ins for this username, from this address, or with this device; see Retry-After", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    )
)]
#[post("/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    request: HttpRequest,
    address: Client,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut missing = ValidationErrors::new();
    let username = required(&mut missing, "username", body.username.as_deref());
    let password = required(&mut missing, "password", body.password.as_deref());
    missing.into_result()?;
    let client = DeviceCookie::client(&request, address, body.device_token.as_deref());
    let signed_in = state.identity.login(username, password, &client).await?;
    Ok(state.device_cookie.signed_in(&client, signed_in))
}

/// The OAuth 2.0 token endpoint: `grant_type=password` or `grant_type=refresh_token`.
/// Errors carry the RFC 6749 `error` code.
#[utoipa::path(
    tag = "auth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Tokens", body = TokenResponse),
        (status = 400, description = "`invalid_request`, `invalid_grant` or `unsupported_grant_type`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed sign-ins or refused tokens; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/token")]
pub async fn token(
    state: web::Data<AppState>,
    request: HttpRequest,
    address: Client,
    web::Form(form): web::Form<TokenForm>,
) -> Result<HttpResponse, ApiError> {
    let invalid_request = |description: &str| ApiError::OAuth {
        status: StatusCode::BAD_REQUEST,
        error: "invalid_request",
        description: description.to_owned(),
    };
    let invalid_grant = |description: String| ApiError::OAuth {
        status: StatusCode::BAD_REQUEST,
        error: "invalid_grant",
        description,
    };
    let pair = match form.grant_type.as_str() {
        "password" => {
            let (Some(username), Some(password)) = (form.username, form.password) else {
                return Err(invalid_request("username and password are required"));
            };
            let client = DeviceCookie::client(&request, address, form.device_token.as_deref());
            let signed_in = state
                .identity
                .login(&username, &password, &client)
                .await
                .map_err(|e| match e {
                    LoginError::Throttled { .. } | LoginError::Internal(_) => ApiError::from(e),
                    other => invalid_grant(other.to_string()),
                })?;
            return Ok(state.device_cookie.signed_in(&client, signed_in));
        }
        "refresh_token" => {
            let Some(refresh_token) = form.refresh_token else {
                return Err(invalid_request("refresh_token is required"));
            };
            state
                .identity
                .refresh(&RefreshToken::new(refresh_token), address.0)
                .await
                .map_err(|e| match e {
                    RefreshError::Throttled { .. } | RefreshError::Internal(_) => ApiError::from(e),
                    other => invalid_grant(other.to_string()),
                })?
        }
        _ => {
            return Err(ApiError::OAuth {
                status: StatusCode::BAD_REQUEST,
                error: "unsupported_grant_type",
                description: "grant_type must be password or refresh_token".into(),
            });
        }
    };
    Ok(tokens(pair.into()))
}

/// Trade a refresh token for a new pair. Each refresh token works once; presenting a used one
/// revokes every token of its session.
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new pair", body = TokenResponse),
        (status = 401, description = "Invalid, expired, revoked or reused token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The account is pending or suspended", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing fields", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed sign-ins or refused tokens from this address; see Retry-After", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    )
)]
#[post("/auth/refresh")]
pub async fn refresh(
    state: web::Data<AppState>,
    client: Client,
    JsonBody(body): JsonBody<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let pair = state
        .identity
        .refresh(&RefreshToken::new(body.refresh_token), client.0)
        .await?;
    Ok(tokens(pair.into()))
}

/// Sign out: the access token stops working at once and its session's refresh tokens are
/// revoked. The body is optional.
#[utoipa::path(
    tag = "auth",
    request_body(content = Option<LogoutRequest>, description = "Optional: no body signs out this session only"),
    responses(
        (status = 204, description = "Signed out"),
        (status = 422, description = "A field of the wrong type, or an unknown field", body = Problem, content_type = "application/problem+json"),
        Unauthenticated,
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/auth/logout")]
pub async fn logout(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    let body: LogoutRequest = body.parse_optional()?.unwrap_or_default();
    let refresh_token = body.refresh_token.map(RefreshToken::new);
    state
        .identity
        .logout(&principal, refresh_token.as_ref())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
