//! The caller's e-mail preferences: which notification kinds also come by e-mail, and where.

use actix_web::{HttpResponse, get, put, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use carehub_domain::identity::Email;
use carehub_domain::kernel::ValidationErrors;
use carehub_domain::notifications::{EmailPreferences, NotificationKind};

use crate::extract::{Authenticated, RawJson, present};
use crate::openapi::{enums, rules};
use crate::problem::{ApiError, BodyProblems, Problem, Unauthenticated};
use crate::state::AppState;

/// The most kinds one request may list (repeats included).
const MAX_KINDS: usize = 64;

/// Which notifications also come by e-mail, and to which address.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesInput {
    /// The address, taken on the user's word (nothing confirms it); `null` for no e-mails.
    /// It is the account's e-mail address, which administrators see.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = rules::email, required = true)]
    pub email: Option<Option<String>>,
    /// The notification kinds also sent by e-mail; `[]` for none. Repeats count once.
    #[schema(value_type = Vec<enums::NotificationKind>, max_items = 64, required = true)]
    pub email_kinds: Option<Vec<String>>,
}

impl TryFrom<PreferencesInput> for EmailPreferences {
    type Error = ValidationErrors;

    fn try_from(input: PreferencesInput) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::new();
        let email = match input.email {
            None => {
                errors.add("email", "is required (null for no e-mails)");
                None
            }
            Some(None) => None,
            Some(Some(raw)) => errors.check("email", Email::parse(&raw)),
        };
        let mut kinds = Vec::new();
        match input.email_kinds {
            None => errors.add("email_kinds", "is required"),
            Some(raw) if raw.len() > MAX_KINDS => {
                errors.add(
                    "email_kinds",
                    format!("must hold at most {MAX_KINDS} kinds"),
                );
            }
            Some(raw) => {
                for (index, kind) in raw.iter().enumerate() {
                    match kind.parse::<NotificationKind>() {
                        Ok(kind) => kinds.push(kind),
                        Err(_) => errors.add(
                            format!("email_kinds[{index}]"),
                            "must be a notification kind",
                        ),
                    }
                }
            }
        }
        errors.into_result()?;
        Ok(EmailPreferences::new(email, kinds))
    }
}

/// The caller's e-mail preferences.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreferencesView {
    /// `null`: nothing is e-mailed.
    pub email: Option<String>,
    #[schema(value_type = Vec<enums::NotificationKind>)]
    pub email_kinds: Vec<NotificationKind>,
}

impl From<EmailPreferences> for PreferencesView {
    fn from(preferences: EmailPreferences) -> Self {
        Self {
            email: preferences.email.map(|e| e.as_str().to_owned()),
            email_kinds: preferences.email_kinds,
        }
    }
}

/// Which of the caller's notifications also come by e-mail.
#[utoipa::path(
    tag = "notifications",
    responses(
        (status = 200, description = "The caller's preferences", body = PreferencesView),
        Unauthenticated,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/users/me/notification-preferences")]
pub async fn get_preferences(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let preferences = state.emails.preferences(principal.id()).await?;
    Ok(HttpResponse::Ok().json(PreferencesView::from(preferences)))
}

/// Replaces the caller's e-mail preferences. Each later notification of a chosen kind is also
/// e-mailed to the address: its title and a link to the app, never clinical text or a
/// patient's name. The address becomes the account's e-mail address.
#[utoipa::path(
    tag = "notifications",
    request_body = PreferencesInput,
    responses(
        (status = 200, description = "The preferences as stored", body = PreferencesView),
        Unauthenticated,
        (status = 422, description = "Invalid or unknown fields, all listed: an address that is not one, an unknown kind, more than 64 kinds", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[put("/users/me/notification-preferences")]
pub async fn put_preferences(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    let input: PreferencesInput = body.parse()?;
    let preferences = EmailPreferences::try_from(input)?;
    let stored = state
        .emails
        .set_preferences(principal.id(), preferences)
        .await?;
    Ok(HttpResponse::Ok().json(PreferencesView::from(stored)))
}
