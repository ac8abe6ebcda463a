//! Request extractors: JSON bodies with field-level errors, the authenticated caller, and the
//! error handlers that turn actix's own extraction failures into problem details.

use actix_web::dev::Payload;
use actix_web::error::{InternalError, JsonPayloadError, PayloadError};
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use tracing_actix_web::{RequestId, RootSpan};

use carehub_domain::access::Actor;
use carehub_domain::identity::Principal;
use carehub_domain::kernel::ValidationErrors;
use uuid::Uuid;

use crate::problem::{ApiError, missing_credentials};
use crate::state::AppState;

/// The largest JSON body accepted.
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// A JSON request body. Unlike `web::Json`, a type or missing-field error names the field's
/// path (422), malformed JSON is a 400, and a body that is not JSON a 415.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let raw = RawJson::from_request(req, payload);
        Box::pin(async move { raw.await?.parse().map(JsonBody) })
    }
}

/// A request body read but not yet parsed, for handlers that must refuse a caller before they
/// look at what the caller sent.
#[derive(Debug)]
pub struct RawJson {
    bytes: web::Bytes,
    is_json: bool,
}

impl RawJson {
    /// Parses the body as [`JsonBody`] would.
    ///
    /// # Errors
    /// 415 when the body is not JSON, 400 when malformed, 422 naming a field of the wrong type.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if !self.is_json {
            return Err(ApiError::UnsupportedMediaType(
                "the body must be JSON (Content-Type: application/json)".into(),
            ));
        }
        parse_json(&self.bytes)
    }

    /// Like [`RawJson::parse`], but when the body does not parse, the refusal `check` (the
    /// domain's access decision for this caller) gives comes first: a caller who may not do
    /// this learns nothing about what the body should be. `check` runs only then.
    ///
    /// # Errors
    /// The refusal, else as [`RawJson::parse`].
    pub async fn parse_unless_refused<T, E>(
        &self,
        check: impl Future<Output = Result<(), E>>,
    ) -> Result<T, ApiError>
    where
        T: DeserializeOwned,
        ApiError: From<E>,
    {
        match self.parse() {
            Ok(parsed) => Ok(parsed),
            Err(malformed) => {
                check.await?;
                Err(malformed)
            }
        }
    }

    /// Like [`RawJson::parse`], but an empty body is `None`, whatever its content type.
    ///
    /// # Errors
    /// As [`RawJson::parse`].
    pub fn parse_optional<T: DeserializeOwned>(&self) -> Result<Option<T>, ApiError> {
        if self.bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        self.parse().map(Some)
    }
}

/// A body converted into what its use case takes, unless `check` (the refusals the use case
/// gives before it looks at what was asked) refuses the caller: invalid fields are listed only
/// to a caller the use case would not have refused first. `check` runs only then.
///
/// # Errors
/// The refusal, else the invalid fields (422).
pub async fn valid_unless_refused<T, E>(
    converted: Result<T, ValidationErrors>,
    check: impl Future<Output = Result<(), E>>,
) -> Result<T, ApiError>
where
    ApiError: From<E>,
{
    match converted {
        Ok(valid) => Ok(valid),
        Err(invalid) => {
            check.await?;
            Err(invalid.into())
        }
    }
}

impl FromRequest for RawJson {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .is_some_and(|essence| essence == "application/json" || essence.ends_with("+json"));
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = body.await.map_err(|e| match e.as_error::<PayloadError>() {
                Some(PayloadError::Overflow) => ApiError::body_too_large(MAX_JSON_BODY),
                _ => ApiError::BadRequest("the request body could not be read".into()),
            })?;
            Ok(Self { bytes, is_json })
        })
    }
}

/// The value of a required field, or `""` after recording that it is missing, so that the
/// domain's rules still check every other field and the client learns of all problems at once.
pub fn required<'a>(
    missing: &mut ValidationErrors,
    field: &str,
    value: Option<&'a str>,
) -> &'a str {
    value.unwrap_or_else(|| {
        missing.add(field, "is required");
        ""
    })
}

/// Missing fields, then the domain's findings on the fields that were present.
pub fn merge_missing(
    missing: ValidationErrors,
    found: Option<ValidationErrors>,
) -> ValidationErrors {
    let reported: Vec<String> = missing.errors().iter().map(|e| e.field.clone()).collect();
    let mut all = missing;
    for error in found.into_iter().flat_map(|f| f.0) {
        if !reported.contains(&error.field) {
            all.0.push(error);
        }
    }
    all
}

/// A path id that is not a UUID names nothing: 404.
/// For `#[serde(default, deserialize_with = "present")]`: tells a field that is present
/// (maybe `null`, `Some(None)`) from one that is absent (`None`).
///
/// # Errors
/// When the value present does not deserialize.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}

pub fn path_uuid(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound("no such resource".into()))
}

/// A query string parsed after the caller was authorised.
///
/// # Errors
/// 400 naming what does not parse.
pub fn parse_query<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::BadRequest(format!("invalid query string: {e}")))
}

/// Deserialises `bytes`, naming the offending field on a data error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    let value = parsed.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::BadRequest(format!("malformed JSON: {inner}"));
        }
        ApiError::Invalid(data_error(&path, &inner))
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// Converts a JSON value (such as a document a merge patch produced) into `T`, naming the
/// offending field on an error as [`parse_json`] does.
///
/// # Errors
/// The field that is missing, unknown or of the wrong type.
pub fn from_json_value<T: DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, ValidationErrors> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        data_error(&path, e.inner())
    })
}

/// A data error (wrong type, missing or unknown field) at `path` (`.` for the whole body), as
/// the field it names and what is wrong with it.
fn data_error(path: &str, error: &serde_json::Error) -> ValidationErrors {
    let message = error.to_string();
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_owned();
    let field = match message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        Some(missing) if path == "." => missing.to_owned(),
        Some(missing) => format!("{path}.{missing}"),
        None if path == "." => "(body)".to_owned(),
        None => path.to_owned(),
    };
    let mut errors = ValidationErrors::new();
    errors.add(field, message);
    errors
}

/// The caller, authenticated by an `Authorization: Bearer` access token.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl FromRequest for Authenticated {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().map(str::to_owned));
        let root_span = req.extensions().get::<RootSpan>().cloned();
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("application state missing"))?;
            let Some(authorization) = authorization else {
                return Err(
                    InternalError::from_response("no credentials", missing_credentials()).into(),
                );
            };
            let token = authorization
                .ok()
                .and_then(|value| bearer_token(&value).map(str::to_owned))
                .ok_or_else(|| {
                    ApiError::Unauthorized(
                        "the Authorization header must be `Bearer <token>`".into(),
                    )
                })?;
            let principal = state
                .identity
                .authenticate(&token)
                .await
                .map_err(ApiError::from)?;
            if let Some(span) = root_span {
                span.record("role", principal.role().as_str());
                // A patient's account id would identify a patient: only staff ids are logged.
                if principal.role().is_staff() {
                    span.record("user_id", tracing::field::display(principal.id()));
                }
            }
            Ok(Self(principal))
        })
    }
}

/// The authenticated caller as the patient-record rules see them: an [`Actor`] carrying the
/// request's id (the `x-request-id` sent back), so audit events can be matched with logs.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub actor: Actor,
}

impl FromRequest for Caller {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request_id = req.extensions().get::<RequestId>().map(ToString::to_string);
        let authenticated = Authenticated::from_request(req, payload);
        Box::pin(async move {
            let Authenticated(principal) = authenticated.await?;
            let actor = principal.actor(request_id);
            Ok(Self { principal, actor })
        })
    }
}

/// The token of an `Authorization: Bearer <token>` value (scheme matched regardless of case).
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

// actix's `error_handler` hooks take their error by value.

/// Query strings that do not parse: 400 with the reason.
#[allow(clippy::needless_pass_by_value)]
pub fn query_error(
    error: actix_web::error::QueryPayloadError,
    _: &HttpRequest,
) -> actix_web::Error {
    ApiError::BadRequest(format!("invalid query string: {error}")).into()
}

/// Path segments that do not parse (e.g. a malformed id): 404, as no such resource exists.
#[allow(clippy::needless_pass_by_value)]
pub fn path_error(error: actix_web::error::PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::NotFound(format!("no such resource: {error}")).into()
}

/// Form bodies (the OAuth token endpoint) that do not parse: an OAuth `invalid_request`.
#[allow(clippy::needless_pass_by_value)]
pub fn form_error(error: actix_web::error::UrlencodedError, _: &HttpRequest) -> actix_web::Error {
    use actix_web::error::UrlencodedError;
    if let UrlencodedError::Overflow { limit, .. } = error {
        return ApiError::body_too_large(limit).into();
    }
    ApiError::OAuth {
        status: actix_web::http::StatusCode::BAD_REQUEST,
        error: "invalid_request",
        description: format!("the form body is invalid: {error}"),
    }
    .into()
}

/// actix's JSON extractor, should any code use it, answers with problem details too.
pub fn json_error(error: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    match error {
        JsonPayloadError::ContentType => {
            ApiError::UnsupportedMediaType("the body must be JSON".into()).into()
        }
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            ApiError::body_too_large(limit).into()
        }
        other => ApiError::BadRequest(other.to_string()).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError as _;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        nested: Nested,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Nested {
        count: u32,
    }

    fn field_of(error: &ApiError) -> String {
        error
            .problem()
            .errors
            .and_then(|e| e.first().map(|f| f.field.clone()))
            .unwrap_or_default()
    }

    #[test]
    fn a_missing_field_is_named_with_its_path() {
        let err = parse_json::<Body>(br#"{"nested": {"count": 1}}"#).expect_err("missing name");
        assert_eq!(field_of(&err), "name");
        let err = parse_json::<Body>(br#"{"name": "x", "nested": {}}"#).expect_err("missing count");
        assert_eq!(field_of(&err), "nested.count");
        assert_eq!(err.status_code().as_u16(), 422);
    }

    #[test]
    fn a_wrong_type_is_named_with_its_path() {
        let err =
            parse_json::<Body>(br#"{"name": "x", "nested": {"count": "many"}}"#).expect_err("type");
        assert_eq!(field_of(&err), "nested.count");
    }

    #[test]
    fn malformed_json_and_trailing_garbage_are_bad_requests() {
        for body in [
            &br#"{"name": "#[..],
            &br#"{"name": "x", "nested": {"count": 1}} trailing"#[..],
        ] {
            let err = parse_json::<Body>(body).expect_err("malformed");
            assert_eq!(err.status_code().as_u16(), 400);
        }
    }

    fn invalid() -> ValidationErrors {
        let mut errors = ValidationErrors::new();
        errors.add("start", "is required");
        errors
    }

    #[tokio::test]
    async fn an_invalid_body_is_answered_with_the_refusal_first_if_there_is_one() {
        let refused = valid_unless_refused::<u8, ApiError>(Err(invalid()), async {
            Err(ApiError::NotFound("no such doctor".into()))
        })
        .await
        .expect_err("refused");
        assert_eq!(refused.status_code().as_u16(), 404);

        let invalid = valid_unless_refused::<u8, ApiError>(Err(invalid()), async { Ok(()) })
            .await
            .expect_err("invalid");
        assert_eq!(invalid.status_code().as_u16(), 422);
        assert_eq!(field_of(&invalid), "start");
    }

    #[tokio::test]
    async fn a_valid_body_is_taken_without_asking_for_a_refusal() {
        let asked = std::cell::Cell::new(false);
        let valid = valid_unless_refused::<u8, ApiError>(Ok(7), async {
            asked.set(true);
            Err(ApiError::NotFound("no such doctor".into()))
        })
        .await;
        assert_eq!(valid.ok(), Some(7));
        assert!(!asked.get(), "the check is not run");
    }

    #[test]
    fn bearer_tokens_are_read_regardless_of_scheme_case() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }
}
