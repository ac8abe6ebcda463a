//! Fixtures for the scheduling tests: the doctor and appointment endpoints, a doctor's week
//! (the same hours on all seven days), booking, status changes and rescheduling that panic
//! unless they succeed, times as the API writes them, and refusals checked with their audit
//! event when the caller's attempt may or may not be tied to a patient yet.

use std::sync::OnceLock;

use reqwest::Response;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, Time};
use uuid::Uuid;

use crate::clinic::{Call, Clinic, Person};
use crate::ws::{encode, instant};
use crate::{TestApp, assert_problem_type, header};

/// `/api/v1/doctors`.
pub const DOCTORS: &str = "/api/v1/doctors";
/// `/api/v1/appointments`.
pub const APPOINTMENTS: &str = "/api/v1/appointments";

/// The weekdays as the API names them, Monday first.
pub const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// The reason [`booking`] gives.
pub const VISIT_REASON: &str = "Follow-up of blood pressure";

pub fn doctor_path(id: impl std::fmt::Display) -> String {
    format!("{DOCTORS}/{id}")
}

pub fn profile_path(id: impl std::fmt::Display) -> String {
    format!("{DOCTORS}/{id}/profile")
}

pub fn availability_path(id: impl std::fmt::Display) -> String {
    format!("{DOCTORS}/{id}/availability")
}

pub fn time_off_path(id: impl std::fmt::Display) -> String {
    format!("{DOCTORS}/{id}/time-off")
}

pub fn time_off_item_path(id: impl std::fmt::Display, time_off: impl std::fmt::Display) -> String {
    format!("{DOCTORS}/{id}/time-off/{time_off}")
}

/// `/doctors/{id}/slots`, with `query` (already encoded) when not empty.
pub fn slots_path(id: impl std::fmt::Display, query: &str) -> String {
    if query.is_empty() {
        format!("{DOCTORS}/{id}/slots")
    } else {
        format!("{DOCTORS}/{id}/slots?{query}")
    }
}

pub fn appointment_path(id: impl std::fmt::Display) -> String {
    format!("{APPOINTMENTS}/{id}")
}

pub fn status_path(id: impl std::fmt::Display) -> String {
    format!("{APPOINTMENTS}/{id}/status")
}

pub fn history_path(id: impl std::fmt::Display) -> String {
    format!("{APPOINTMENTS}/{id}/history")
}

pub fn visit_note_path(id: impl std::fmt::Display) -> String {
    format!("{APPOINTMENTS}/{id}/visit-note")
}

/// An instant in RFC 3339, as requests send it.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).expect("an RFC 3339 instant")
}

/// An instant in RFC 3339, percent-encoded for a query string.
pub fn query_time(at: OffsetDateTime) -> String {
    encode(&rfc3339(at))
}

/// Midnight UTC of the day the tests started: fixed once, so that a test running over
/// midnight still means the same instants by the same `day_at` call.
fn first_day() -> OffsetDateTime {
    static FIRST_DAY: OnceLock<OffsetDateTime> = OnceLock::new();
    *FIRST_DAY.get_or_init(|| OffsetDateTime::now_utc().replace_time(Time::MIDNIGHT))
}

/// `hour:minute` UTC, `days` days from the day the tests started (UTC).
pub fn day_at(days: i64, hour: u8, minute: u8) -> OffsetDateTime {
    let time = Time::from_hms(hour, minute, 0).expect("a valid time of day");
    (first_day() + Duration::days(days)).replace_time(time)
}

/// Midnight UTC of the day the tests started.
pub fn today() -> OffsetDateTime {
    day_at(0, 0, 0)
}

/// `now` rounded down to the minute.
pub fn whole_minute(now: OffsetDateTime) -> OffsetDateTime {
    now.replace_second(0)
        .and_then(|t| t.replace_nanosecond(0))
        .expect("a whole minute")
}

/// The same `start`–`end` hours on all seven days.
pub fn every_day(start: &str, end: &str) -> Value {
    json!({
        "rules": WEEKDAYS
            .iter()
            .map(|day| json!({ "weekday": day, "start": start, "end": end }))
            .collect::<Vec<_>>()
    })
}

/// A booking of `patient` with `doctor` at `start` (until `end` when given).
pub fn booking(
    doctor: Uuid,
    patient: Uuid,
    start: OffsetDateTime,
    end: Option<OffsetDateTime>,
) -> Value {
    let mut body = json!({
        "doctor_id": doctor,
        "patient_id": patient,
        "start": rfc3339(start),
        "reason": VISIT_REASON,
    });
    if let Some(end) = end {
        body["end"] = json!(rfc3339(end));
    }
    body
}

/// The `start` and `end` of a view (appointment, slot, time off) as instants.
pub fn span(view: &Value) -> (OffsetDateTime, OffsetDateTime) {
    (instant(&view["start"]), instant(&view["end"]))
}

/// The id of a view as a UUID.
pub fn uuid_of(view: &Value) -> Uuid {
    view["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no id in {view}"))
}

impl TestApp {
    /// Replaces a doctor's weekly rules (`body` is `{"rules": [...]}`), panicking unless it
    /// succeeds; returns the answer.
    pub async fn set_availability(&self, token: &str, doctor: Uuid, body: &Value) -> Value {
        let response = self
            .client
            .put(self.url(&availability_path(doctor)))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request sent");
        assert_eq!(
            response.status(),
            200,
            "the availability {body} of {doctor} is set"
        );
        response.json().await.expect("an availability")
    }

    /// The doctor works `start`–`end` on all seven days.
    pub async fn work_every_day(&self, token: &str, doctor: Uuid, start: &str, end: &str) {
        self.set_availability(token, doctor, &every_day(start, end))
            .await;
    }

    /// Adds time off, panicking unless it succeeds; returns the view.
    pub async fn add_time_off(
        &self,
        token: &str,
        doctor: Uuid,
        start: OffsetDateTime,
        end: OffsetDateTime,
        reason: Option<&str>,
    ) -> Value {
        let mut body = json!({ "start": rfc3339(start), "end": rfc3339(end) });
        if let Some(reason) = reason {
            body["reason"] = json!(reason);
        }
        let response = self
            .post_json(&time_off_path(doctor), Some(token), &body)
            .await;
        assert_eq!(response.status(), 201, "the time off {body} is added");
        response.json().await.expect("a time off")
    }

    /// `GET /doctors/{id}/slots?{query}`, panicking unless it succeeds; returns the body.
    pub async fn slots(&self, token: &str, doctor: Uuid, query: &str) -> Value {
        let path = slots_path(doctor, query);
        let response = self.get(&path, Some(token)).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("slots")
    }

    /// The free slots in `[from, to)` as instants.
    pub async fn free_slots(
        &self,
        token: &str,
        doctor: Uuid,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Vec<(OffsetDateTime, OffsetDateTime)> {
        let query = format!("from={}&to={}", query_time(from), query_time(to));
        self.slots(token, doctor, &query).await["slots"]
            .as_array()
            .expect("a slot list")
            .iter()
            .map(span)
            .collect()
    }

    /// `POST /appointments` with `input`.
    pub async fn try_book(&self, token: &str, input: &Value) -> Response {
        self.post_json(APPOINTMENTS, Some(token), input).await
    }

    /// Books, panicking unless it succeeds; returns the view.
    pub async fn book(&self, token: &str, input: &Value) -> Value {
        let response = self.try_book(token, input).await;
        let status = response.status();
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(status, 201, "the booking {input} should succeed: {body}");
        body
    }

    /// `GET /appointments/{id}`, panicking unless it succeeds.
    pub async fn appointment(&self, token: &str, id: Uuid) -> Value {
        let response = self.get(&appointment_path(id), Some(token)).await;
        assert_eq!(response.status(), 200, "reading appointment {id}");
        response.json().await.expect("an appointment")
    }

    /// `POST /appointments/{id}/status` with `status` (and `reason`).
    pub async fn try_set_status(
        &self,
        token: &str,
        id: Uuid,
        status: &str,
        reason: Option<&str>,
    ) -> Response {
        let mut body = json!({ "status": status });
        if let Some(reason) = reason {
            body["reason"] = json!(reason);
        }
        self.post_json(&status_path(id), Some(token), &body).await
    }

    /// Changes an appointment's status, panicking unless it succeeds; returns the view.
    pub async fn set_status(
        &self,
        token: &str,
        id: Uuid,
        status: &str,
        reason: Option<&str>,
    ) -> Value {
        let response = self.try_set_status(token, id, status, reason).await;
        let code = response.status();
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(code, 200, "{id} becomes {status}: {body}");
        assert_eq!(body["status"], status, "{body}");
        body
    }

    /// `PATCH /appointments/{id}` to `start` (and `end`).
    pub async fn try_reschedule(
        &self,
        token: &str,
        id: Uuid,
        start: OffsetDateTime,
        end: Option<OffsetDateTime>,
    ) -> Response {
        let mut body = json!({ "start": rfc3339(start) });
        if let Some(end) = end {
            body["end"] = json!(rfc3339(end));
        }
        self.patch_json(&appointment_path(id), Some(token), &body)
            .await
    }

    /// Reschedules, panicking unless it succeeds; returns the view.
    pub async fn reschedule(
        &self,
        token: &str,
        id: Uuid,
        start: OffsetDateTime,
        end: Option<OffsetDateTime>,
    ) -> Value {
        let response = self.try_reschedule(token, id, start, end).await;
        let code = response.status();
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(code, 200, "{id} moves to {start}: {body}");
        body
    }

    /// Every appointment `token` lists with `filter` (a query string, maybe empty).
    pub async fn appointments(&self, token: &str, filter: &str) -> Vec<Value> {
        self.all_pages(APPOINTMENTS, token, filter, 100).await
    }
}

/// Asserts a 409 `appointment-conflict` problem and returns its conflicts as
/// `(id, start, end, with)`, in the order given.
pub async fn assert_conflicts(
    response: Response,
) -> Vec<(Uuid, OffsetDateTime, OffsetDateTime, String)> {
    let problem = assert_problem_type(response, 409, "appointment-conflict").await;
    assert_eq!(problem["title"], "The time is taken", "{problem}");
    let conflicts = problem["conflicts"]
        .as_array()
        .unwrap_or_else(|| panic!("no conflicts in {problem}"));
    let listed: Vec<_> = conflicts
        .iter()
        .map(|c| {
            let (start, end) = span(c);
            (
                uuid_of(c),
                start,
                end,
                c["with"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let detail = match listed.len() {
        1 => "1 appointment overlaps".to_owned(),
        n => format!("{n} appointments overlap"),
    };
    assert_eq!(problem["detail"], detail, "{problem}");
    for conflict in conflicts {
        let keys: Vec<&str> = crate::ws::keys(conflict);
        assert_eq!(
            keys,
            ["end", "id", "start", "with"],
            "a conflict shows no patient: {conflict}"
        );
    }
    listed
}

/// Which patient the audit event of a refusal names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditPatient {
    /// Exactly this (`None`: no patient).
    Exactly(Option<Uuid>),
    /// This one, or none when the refusal came before the appointment was read.
    NoneOr(Uuid),
}

/// Sends `call` as `who` and asserts the refusal (`status`, 403 or 404, as a problem) and its
/// one audit event, found by the request's id: `action` by `who`, denied, without a basis,
/// naming `patient`. Returns the problem.
pub async fn assert_refused(
    app: &TestApp,
    clinic: &Clinic,
    call: &Call,
    who: &Person,
    status: u16,
    action: &str,
    patient: AuditPatient,
) -> Value {
    let context = format!(
        "{} {} as {} with {:?}",
        call.method, call.path, who.username, call.body
    );
    let response = app.call(call, who.token()).await;
    assert_eq!(response.status(), status, "{context}");
    let request_id =
        header(&response, "x-request-id").unwrap_or_else(|| panic!("no x-request-id: {context}"));
    let slug = if status == 403 {
        "forbidden"
    } else {
        "not-found"
    };
    let problem = assert_problem_type(response, status, slug).await;
    let events = app.audit_of_request(&clinic.admin.token, &request_id).await;
    assert_eq!(
        events.len(),
        1,
        "one audit event of the refused {context}, got {events:?}"
    );
    let event = &events[0];
    assert_eq!(event["action"], action, "{context}: {event}");
    assert_eq!(event["outcome"], "denied", "{context}: {event}");
    assert!(event["basis"].is_null(), "{context}: {event}");
    assert_eq!(event["actor"]["id"], json!(who.id), "{context}: {event}");
    assert_eq!(event["actor"]["role"], who.role, "{context}: {event}");
    match patient {
        AuditPatient::Exactly(patient) => {
            assert_eq!(event["patient_id"], json!(patient), "{context}: {event}");
        }
        AuditPatient::NoneOr(patient) => assert!(
            event["patient_id"].is_null() || event["patient_id"] == json!(patient),
            "{context}: {event}"
        ),
    }
    problem
}

/// [`assert_refused`] for `call` and each of its bad-body variants.
pub async fn assert_refused_whatever_the_body(
    app: &TestApp,
    clinic: &Clinic,
    call: &Call,
    who: &Person,
    status: u16,
    action: &str,
    patient: AuditPatient,
) {
    for variant in call.with_bad_bodies() {
        assert_refused(app, clinic, &variant, who, status, action, patient).await;
    }
}

/// Sends `call` as `who` for each of its bad-body variants and asserts a plain 403 problem
/// (for the doctor endpoints, which hold no patient data and are not audited).
pub async fn assert_forbidden_whatever_the_body(app: &TestApp, call: &Call, who: &Person) {
    for variant in call.with_bad_bodies() {
        let response = app.call(&variant, who.token()).await;
        assert_eq!(
            response.status(),
            403,
            "{} {} as {} with {:?}",
            variant.method,
            variant.path,
            who.username,
            variant.body
        );
        assert_problem_type(response, 403, "forbidden").await;
    }
}
