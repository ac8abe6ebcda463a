//! The audited read: seeding a doctor and a patient on that doctor's care team, then checking
//! that the server kept one `patient.read` audit event for every 200 it answered.
//!
//! The administrator exists before the server starts ([`crate::server`] runs
//! `carehub admin create`); it creates the doctor as an active staff account
//! (`POST /api/v1/admin/users`), and the doctor registers the patient (`POST /api/v1/patients`),
//! which puts the doctor on the patient's care team. After the load, the administrator pages
//! through `GET /api/v1/admin/audit?patient_id=...` and counts the patient's read events.
//!
//! Part of `carehub-bench`; run with
//! `cargo build --release -p carehub-web -p carehub-bench && "$CARGO_TARGET_DIR"/release/carehub-bench`.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::load::{PASSWORD, SETUP_TIMEOUT, client};
use crate::server::ADMIN_USERNAME;

const DOCTOR_USERNAME: &str = "bench.doctor";
/// The audit trail's largest page.
const AUDIT_PAGE: u32 = 100;
/// The audit action of a profile read.
const PATIENT_READ: &str = "patient.read";
/// How long counting the audit trail may take, whatever its length.
const COUNT_TIMEOUT: Duration = Duration::from_secs(600);

/// What the measure needs: the patient to read, and a token of a doctor on its care team.
#[derive(Debug)]
pub struct Seeded {
    pub patient_id: Uuid,
    pub doctor_token: String,
}

/// A patient as a registration desk would enter one: every part of the record filled in.
fn patient_body() -> serde_json::Value {
    serde_json::json!({
        "full_name": "Margaret Elaine Whitfield",
        "date_of_birth": "1958-03-14",
        "sex": "female",
        "contact": {
            "phone": "+44 20 7946 0321",
            "email": "m.whitfield@example.org",
            "address": {
                "lines": ["Flat 4", "27 Harrowby Street"],
                "city": "London",
                "postal_code": "W1H 5PQ",
                "country": "United Kingdom"
            }
        },
        "identifiers": [
            {"system": "national_id", "value": "QQ 12 34 56 C"},
            {"system": "nhs_number", "value": "943 476 5919"}
        ],
        "insurance": {
            "provider": "Bupa",
            "policy_number": "BUP-77310422",
            "group": "CORP-0419",
            "valid_until": "2027-12-31"
        },
        "emergency_contact": {
            "name": "Thomas Whitfield",
            "relationship": "son",
            "phone": "+44 7700 900123"
        },
        "location": {"room": "3.14", "bed": "B"}
    })
}

#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
}

/// The id of something the server created.
#[derive(Deserialize)]
pub(crate) struct Created {
    pub(crate) id: Uuid,
}

/// Sends `request` and decodes its body as `T` when the status is `expect`.
pub(crate) async fn expect_json<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
    expect: reqwest::StatusCode,
    what: &str,
) -> anyhow::Result<T> {
    let response = request.send().await.with_context(|| what.to_owned())?;
    let status = response.status();
    if status != expect {
        let text = response.text().await.unwrap_or_default();
        bail!("{what}: {status}: {text}");
    }
    response
        .json()
        .await
        .with_context(|| format!("{what}: unexpected body"))
}

/// Signs `username` in with the benchmark's password; returns the access token.
pub(crate) async fn sign_in(
    client: &reqwest::Client,
    base_url: &str,
    username: &str,
) -> anyhow::Result<String> {
    let request = client
        .post(format!("{base_url}/api/v1/auth/login"))
        .json(&serde_json::json!({ "username": username, "password": PASSWORD }));
    let tokens: TokenResponse = expect_json(
        request,
        reqwest::StatusCode::OK,
        &format!("signing in {username}"),
    )
    .await?;
    Ok(tokens.access_token)
}

/// Creates the doctor and the patient; any failure aborts the run.
pub async fn seed_doctor_and_patient(base_url: &str) -> anyhow::Result<Seeded> {
    let client = client(SETUP_TIMEOUT)?;
    let admin = sign_in(&client, base_url, ADMIN_USERNAME).await?;
    let doctor = serde_json::json!({
        "username": DOCTOR_USERNAME,
        "password": PASSWORD,
        "full_name": "Bench Doctor",
        "role": "doctor",
    });
    let request = client
        .post(format!("{base_url}/api/v1/admin/users"))
        .bearer_auth(&admin)
        .json(&doctor);
    let _: Created = expect_json(
        request,
        reqwest::StatusCode::CREATED,
        "creating the doctor as the administrator",
    )
    .await?;
    let doctor_token = sign_in(&client, base_url, DOCTOR_USERNAME).await?;
    let request = client
        .post(format!("{base_url}/api/v1/patients"))
        .bearer_auth(&doctor_token)
        .json(&patient_body());
    let patient: Created = expect_json(
        request,
        reqwest::StatusCode::CREATED,
        "registering the patient as the doctor",
    )
    .await?;
    Ok(Seeded {
        patient_id: patient.id,
        doctor_token,
    })
}

/// The fields of an `AuditEventView` the count needs.
#[derive(Debug, Deserialize)]
struct AuditItem {
    patient_id: Option<Uuid>,
    action: String,
    outcome: String,
}

#[derive(Debug, Deserialize)]
struct AuditPage {
    items: Vec<AuditItem>,
    next_cursor: Option<String>,
}

/// The patient's `patient.read` events, by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReadEvents {
    pub allowed: u64,
    pub denied: u64,
}

impl ReadEvents {
    /// Counts the `patient.read` events of `patient` in one page of the trail.
    fn add_page(&mut self, patient: Uuid, items: &[AuditItem]) {
        for item in items {
            if item.patient_id != Some(patient) || item.action != PATIENT_READ {
                continue;
            }
            match item.outcome.as_str() {
                "allowed" => self.allowed += 1,
                _ => self.denied += 1,
            }
        }
    }
}

/// Pages through the patient's audit trail as the administrator (signed in afresh: the load may
/// have outlived an earlier token) and counts its read events. The trail should hold about
/// `expected` of them; paging stops with an error well past that, or after [`COUNT_TIMEOUT`].
pub async fn count_reads(
    base_url: &str,
    patient: Uuid,
    expected: u64,
) -> anyhow::Result<ReadEvents> {
    let client = client(SETUP_TIMEOUT)?;
    let admin = sign_in(&client, base_url, ADMIN_USERNAME).await?;
    let max_pages = max_pages(expected);
    let deadline = Instant::now() + COUNT_TIMEOUT;
    let mut events = ReadEvents::default();
    let mut cursor: Option<String> = None;
    for page in 0.. {
        if page >= max_pages {
            bail!(
                "the patient's audit trail holds more than {max_pages} pages of {AUDIT_PAGE} for \
                 {expected} reads answered 200"
            );
        }
        if Instant::now() >= deadline {
            bail!("counting the audit trail took more than {COUNT_TIMEOUT:?}");
        }
        let url = audit_url(base_url, patient, cursor.as_deref())?;
        let request = client.get(url).bearer_auth(&admin);
        let body: AuditPage = expect_json(
            request,
            reqwest::StatusCode::OK,
            "listing the patient's audit trail as the administrator",
        )
        .await?;
        events.add_page(patient, &body.items);
        match body.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(events)
}

/// Enough pages for twice the expected events plus a margin (the registration, refusals).
fn max_pages(expected: u64) -> u64 {
    expected.saturating_mul(2).div_ceil(u64::from(AUDIT_PAGE)) + 10
}

fn audit_url(base_url: &str, patient: Uuid, cursor: Option<&str>) -> anyhow::Result<reqwest::Url> {
    let mut url = reqwest::Url::parse(&format!("{base_url}/api/v1/admin/audit"))
        .context("cannot build the audit URL")?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("patient_id", &patient.to_string())
            .append_pair("limit", &AUDIT_PAGE.to_string());
        if let Some(cursor) = cursor {
            query.append_pair("cursor", cursor);
        }
    }
    Ok(url)
}

/// The audited read's events against its 200 responses; they must be equal.
#[derive(Debug, Clone, Serialize)]
pub struct AuditCheck {
    pub patient_id: Uuid,
    /// 200 responses to `GET /patients/{id}`, warm-up included: each must leave one event.
    pub ok_responses: u64,
    /// The patient's `patient.read` events with outcome `allowed`, from `GET /admin/audit`.
    pub read_events_allowed: u64,
    /// The same with outcome `denied` (refusals, answered 403 or 404: counted as errors).
    pub read_events_denied: u64,
    /// `ok_responses == read_events_allowed`.
    pub complete: bool,
}

impl AuditCheck {
    pub fn new(patient_id: Uuid, ok_responses: u64, events: ReadEvents) -> Self {
        Self {
            patient_id,
            ok_responses,
            read_events_allowed: events.allowed,
            read_events_denied: events.denied,
            complete: ok_responses == events.allowed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(patient: Uuid, action: &str, outcome: &str) -> AuditItem {
        AuditItem {
            patient_id: Some(patient),
            action: action.to_owned(),
            outcome: outcome.to_owned(),
        }
    }

    #[test]
    fn only_the_patients_read_events_count_by_outcome() {
        let patient = Uuid::new_v4();
        let other = Uuid::new_v4();
        let mut events = ReadEvents::default();
        events.add_page(
            patient,
            &[
                item(patient, "patient.read", "allowed"),
                item(patient, "patient.create", "allowed"),
                item(patient, "medical.read", "allowed"),
                item(other, "patient.read", "allowed"),
                AuditItem {
                    patient_id: None,
                    action: "patient.read".to_owned(),
                    outcome: "allowed".to_owned(),
                },
                item(patient, "patient.read", "denied"),
            ],
        );
        events.add_page(patient, &[item(patient, "patient.read", "allowed")]);
        assert_eq!(
            events,
            ReadEvents {
                allowed: 2,
                denied: 1
            }
        );
    }

    #[test]
    fn a_page_of_the_api_decodes_with_its_other_fields_ignored() -> anyhow::Result<()> {
        let patient = Uuid::new_v4();
        let page: AuditPage = serde_json::from_value(serde_json::json!({
            "items": [{
                "id": Uuid::new_v4(), "at": "2026-11-22T10:00:00Z",
                "actor": {"id": Uuid::new_v4(), "full_name": "Bench Doctor", "role": "doctor"},
                "patient_id": patient, "action": "patient.read", "outcome": "allowed",
                "basis": "care_team", "request_id": "abc"
            }],
            "next_cursor": null
        }))?;
        let mut events = ReadEvents::default();
        events.add_page(patient, &page.items);
        assert_eq!(events.allowed, 1);
        assert!(page.next_cursor.is_none());
        Ok(())
    }

    #[test]
    fn a_lost_event_or_a_stray_one_fails_the_check() {
        let patient = Uuid::new_v4();
        let all = |allowed| ReadEvents { allowed, denied: 0 };
        assert!(AuditCheck::new(patient, 1000, all(1000)).complete);
        assert!(!AuditCheck::new(patient, 1000, all(999)).complete);
        assert!(!AuditCheck::new(patient, 1000, all(1001)).complete);
    }

    #[test]
    fn the_cursor_is_escaped_in_the_audit_url() -> anyhow::Result<()> {
        let patient = Uuid::nil();
        let url = audit_url("http://127.0.0.1:1234", patient, Some("a+b/c="))?;
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:1234/api/v1/admin/audit?patient_id=00000000-0000-0000-0000-000000000000&limit=100&cursor=a%2Bb%2Fc%3D"
        );
        Ok(())
    }

    #[test]
    fn paging_allows_twice_the_expected_events() {
        assert_eq!(max_pages(0), 10);
        assert_eq!(max_pages(1000), 30);
        assert!(max_pages(u64::MAX) > 10);
    }
}
