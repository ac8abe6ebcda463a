//! The OpenAPI 3.1 document: its fixed parts ([`ApiDoc`]), the document built from the
//! registered routes and its post-processing, and the method list each path answers. The
//! domain's enums ([`enums`]) and text rules ([`rules`]) are published from here.

pub mod enums;
pub mod rules;

use std::collections::HashMap;

use utoipa::openapi::security::{
    Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityScheme,
};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt as _;

use crate::problem::{Problem, ProblemConflict, ProblemField};
use crate::routes::{api_v1, root};

/// The OpenAPI 3.1 document, computed once from the registered routes.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let (_, openapi) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .service(utoipa_actix_web::scope("/api/v1").configure(api_v1))
        .configure(root)
        .split_for_parts();
    let mut openapi = openapi;
    optional_bodies_are_never_null(&mut openapi);
    bodies_may_be_refused_at_the_edge(&mut openapi);
    openapi
}

/// Every operation that takes a body may have it refused before it runs (see
/// [`crate::edges::body`]): 413 over its limit, 408 when it is not sent in time.
fn bodies_may_be_refused_at_the_edge(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

    let problem = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    crate::problem::PROBLEM_JSON,
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build(),
        )
    };
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            if operation.request_body.is_none() {
                continue;
            }
            let responses = &mut operation.responses.responses;
            responses
                .entry("408".into())
                .or_insert_with(|| problem("The body was not sent in time"));
            responses
                .entry("413".into())
                .or_insert_with(|| problem("The body is too large"));
        }
    }
}

/// An optional request body may be left out, but is never JSON `null`: utoipa publishes an
/// `Option<T>` body as "T or null", which the server refuses.
fn optional_bodies_are_never_null(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{Schema, SchemaType, Type};

    let is_null = |schema: &RefOr<Schema>| matches!(schema, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null));
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let Some(RefOr::T(body)) = operation.request_body.as_mut() else {
                continue;
            };
            for content in body.content.values_mut() {
                let RefOr::T(content) = content else { continue };
                if let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema
                    && one_of.items.len() == 2
                    && let Some(i) = one_of.items.iter().position(is_null)
                {
                    content.schema = Some(one_of.items[1 - i].clone());
                }
            }
        }
    }
}

/// The methods each documented route pattern answers, as an `Allow` header value.
pub fn allowed_methods(openapi: &utoipa::openapi::OpenApi) -> HashMap<String, String> {
    openapi
        .paths
        .paths
        .iter()
        .filter_map(|(pattern, item)| {
            let value = serde_json::to_value(item).ok()?;
            let methods: Vec<String> = [
                "get", "put", "post", "delete", "options", "head", "patch", "trace",
            ]
            .into_iter()
            .filter(|method| value.get(method).is_some())
            .map(str::to_ascii_uppercase)
            .collect();
            Some((pattern.clone(), methods.join(", ")))
        })
        .collect()
}

/// The document's fixed parts; utoipa-actix-web adds every registered path to it.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "CareHub API",
        description = "CareHub, a clinic backend. This version serves identity (accounts, roles, \
            sign-in and tokens) and patient records: registration and search, profiles, medical \
            information, clinical notes, care teams and emergency (break-the-glass) access; \
            referrals between doctors; doctors' profiles, weekly availability (in the clinic's \
            time zone), time off and free slots; appointments that can never be double-booked, \
            with their status, history and visit note; and each user's notifications. Who \
            may read or change what follows the caller's role and relationship to the patient; \
            every attempt on a patient's data, allowed or denied, is kept in an audit trail.\n\n\
            A patient the caller may not see is answered `404`, whether or not it exists; `403` \
            means the caller's role may never do this.\n\n\
            Errors are `application/problem+json` (RFC 9457). Sign in with `POST /api/v1/auth/login` \
            or the OAuth 2.0 password grant at `POST /api/v1/auth/token`, then send \
            `Authorization: Bearer <access_token>`.",
        license(name = "AGPL-3.0-or-later")
    ),
    components(schemas(Problem, ProblemField, ProblemConflict, enums::ReferralBox)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Registration, sign-in, tokens"),
        (name = "users", description = "The signed-in user and their own patient record"),
        (name = "doctors", description = "The doctor directory, doctors' profiles, weekly availability, time off and free slots"),
        (name = "appointments", description = "Booking, reading, listing, rescheduling and status changes of appointments, their history and visit notes"),
        (name = "patients", description = "Patient records: profiles, medical information, notes, care teams, emergency access and access logs"),
        (name = "referrals", description = "Doctors referring patients to each other, with a snapshot of what was shared"),
        (name = "prescriptions", description = "Prescriptions: written by the care team against the patient's recorded allergies, read by the care team and the patient, printed"),
        (name = "messages", description = "Conversations between a patient and their care-team doctors, and between a referral's doctors; messages and read marks, delivered live on the socket"),
        (name = "feedback", description = "Patients' ratings of completed appointments; doctors read their own, administrators all"),
        (name = "notifications", description = "The caller's own notifications: listing, marking read, counting the unread"),
        (name = "admin", description = "Account administration, the audit trail and emergency accesses (administrators only)"),
        (name = "operations", description = "Health, metrics and public keys"),
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "oauth2",
            SecurityScheme::OAuth2(OAuth2::new([Flow::Password(Password::new(
                "/api/v1/auth/token",
                Scopes::new(),
            ))])),
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::openapi_document;

    fn document() -> Value {
        serde_json::to_value(openapi_document()).expect("the document is JSON")
    }

    fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                for (key, item) in map {
                    match (key.as_str(), item) {
                        ("$ref", Value::String(target)) => found.push(target),
                        _ => refs(item, found),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| refs(item, found)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_in_the_document_names_a_schema_it_defines() {
        let document = document();
        let mut found = Vec::new();
        refs(&document, &mut found);
        assert!(!found.is_empty());
        for target in found {
            let name = target
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("an unexpected reference: {target}"));
            assert!(
                document["components"]["schemas"].get(name).is_some(),
                "{target} is not defined"
            );
        }
    }

    /// The values a schema publishes, in order.
    fn published(document: &Value, schema: &str) -> Vec<String> {
        document["components"]["schemas"][schema]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{schema} is not an enum"))
            .iter()
            .map(|v| v.as_str().expect("a string").to_owned())
            .collect()
    }

    #[test]
    fn every_operation_with_a_body_may_answer_408_and_413_with_a_problem() {
        let document = document();
        let mut bodies = 0;
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("an item") {
                if operation.get("requestBody").is_none() {
                    continue;
                }
                bodies += 1;
                for status in ["408", "413"] {
                    let content = &operation["responses"][status]["content"];
                    assert!(
                        content["application/problem+json"].is_object(),
                        "{method} {path} {status}"
                    );
                }
            }
        }
        assert!(bodies >= 40, "{bodies}");
    }

    #[test]
    fn enums_are_published_as_the_server_writes_them() {
        let document = document();
        let all = super::enums::all();
        assert_eq!(all.len(), 27);
        for (schema, written) in all {
            assert_eq!(published(&document, schema), written, "{schema}");
        }
        assert_eq!(published(&document, "ReferralBox"), ["inbox", "outbox"]);
        assert_eq!(
            published(&document, "Role"),
            ["admin", "secretary", "doctor", "laboratory", "patient"]
        );
    }

    #[test]
    fn the_server_writes_each_published_enum_value_as_published() {
        use carehub_domain::audit::AuditAction;
        use carehub_domain::scheduling::AppointmentStatus;
        // serde and as_str agree, so what the document publishes is what goes on the wire.
        for action in AuditAction::ALL {
            assert_eq!(
                serde_json::to_value(action).expect("JSON"),
                Value::String(action.as_str().to_owned())
            );
        }
        for status in AppointmentStatus::ALL {
            assert_eq!(
                serde_json::to_value(status).expect("JSON"),
                Value::String(status.as_str().to_owned())
            );
        }
        for state in carehub_domain::jobs::JobState::ALL {
            assert_eq!(
                serde_json::to_value(state).expect("JSON"),
                Value::String(state.as_str().to_owned())
            );
        }
    }
}
