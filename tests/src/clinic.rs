//! Fixtures for the patient-record tests: a small clinic (an administrator, a secretary, three
//! doctors, a laboratory user, two patients with accounts and records), requests to the record
//! endpoints, the audit trail as an administrator reads it, and the checks every refusal must
//! pass: its status and problem document, an audit event of the denied attempt, and nothing
//! changed.

use reqwest::{Method, Response};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{TestApp, assert_problem_type, assert_unauthorized, header, id_of};

/// `/api/v1/patients`.
pub const PATIENTS: &str = "/api/v1/patients";
/// `/api/v1/admin/audit`.
pub const AUDIT: &str = "/api/v1/admin/audit";
/// `/api/v1/admin/emergency-accesses`.
pub const EMERGENCY_ACCESSES: &str = "/api/v1/admin/emergency-accesses";
/// `/api/v1/users/me/patient`.
pub const MY_RECORD: &str = "/api/v1/users/me/patient";
/// `/api/v1/referrals`.
pub const REFERRALS: &str = "/api/v1/referrals";

pub fn referral_path(id: impl std::fmt::Display) -> String {
    format!("{REFERRALS}/{id}")
}

/// The path of a referral's status change: `accept`, `decline`, `cancel` or `complete`.
pub fn referral_change_path(id: impl std::fmt::Display, change: &str) -> String {
    format!("{REFERRALS}/{id}/{change}")
}

/// The reason [`referral_input`] gives.
pub const REFERRAL_REASON: &str = "Suspected arrhythmia; please assess";
/// The clinical summary [`referral_input`] gives.
pub const REFERRAL_SUMMARY: &str = "Palpitations for two weeks.\nECG attached; QT 480 ms.";

/// A valid urgent referral of `patient` to `to_doctor`.
pub fn referral_input(patient: Uuid, to_doctor: Uuid) -> Value {
    json!({
        "patient_id": patient,
        "to_doctor_id": to_doctor,
        "reason": REFERRAL_REASON,
        "clinical_summary": REFERRAL_SUMMARY,
        "urgency": "urgent",
    })
}

pub fn patient_path(id: impl std::fmt::Display) -> String {
    format!("{PATIENTS}/{id}")
}

pub fn medical_path(id: impl std::fmt::Display) -> String {
    format!("{PATIENTS}/{id}/medical")
}

pub fn notes_path(id: impl std::fmt::Display) -> String {
    format!("{PATIENTS}/{id}/notes")
}

pub fn care_team_path(id: impl std::fmt::Display) -> String {
    format!("{PATIENTS}/{id}/care-team")
}

pub fn member_path(id: impl std::fmt::Display, doctor_id: impl std::fmt::Display) -> String {
    format!("{PATIENTS}/{id}/care-team/{doctor_id}")
}

pub fn emergency_path(id: impl std::fmt::Display) -> String {
    format!("{PATIENTS}/{id}/emergency-access")
}

pub fn access_log_path(id: impl std::fmt::Display) -> String {
    format!("{PATIENTS}/{id}/access-log")
}

/// The smallest valid registration.
pub fn patient_input(full_name: &str) -> Value {
    json!({ "full_name": full_name, "date_of_birth": "1985-12-10", "sex": "female" })
}

/// A registration with every part filled in.
pub fn full_patient_input(full_name: &str) -> Value {
    json!({
        "full_name": full_name,
        "date_of_birth": "1990-02-28",
        "sex": "other",
        "contact": {
            "phone": "+44 20 7946 0958",
            "email": "someone@example.org",
            "address": {
                "lines": ["12 St James's Square", "Flat 3"],
                "city": "London",
                "postal_code": "SW1Y 4JH",
                "country": "GB"
            }
        },
        "identifiers": [
            { "system": "National_ID", "value": format!("NI-{}", Uuid::new_v4().simple()) },
            { "system": "passport", "value": format!("P-{}", Uuid::new_v4().simple()) }
        ],
        "insurance": {
            "provider": "Helvetia",
            "policy_number": "P-123",
            "group": "G-7",
            "valid_until": "2027-12-31"
        },
        "emergency_contact": {
            "name": "Annabella Byron",
            "relationship": "mother",
            "phone": "+44 20 7946 0000"
        },
        "location": { "room": "3.14", "bed": "B" }
    })
}

/// Complete medical information.
pub fn medical_input() -> Value {
    json!({
        "blood_type": "A+",
        "allergies": [{ "substance": "penicillin", "reaction": "rash", "severity": "moderate" }],
        "conditions": [{ "name": "type 2 diabetes", "code": "E11.9", "since": "2019-04-01" }],
        "medications": [{ "name": "metformin", "dose": "500 mg", "frequency": "twice daily" }]
    })
}

/// A reason long enough to break the glass.
pub const EMERGENCY_REASON: &str = "Unconscious in the emergency room, allergies unknown";

/// What a request sends.
#[derive(Debug, Clone)]
pub enum Body {
    Empty,
    Json(Value),
    /// A body with its content type, sent as is.
    Raw {
        content_type: &'static str,
        text: String,
    },
}

impl Body {
    /// JSON that does not parse.
    pub fn broken_json() -> Self {
        Self::Raw {
            content_type: "application/json",
            text: "{,}".into(),
        }
    }

    /// A body that is not JSON at all.
    pub fn not_json() -> Self {
        Self::Raw {
            content_type: "text/plain",
            text: "hello".into(),
        }
    }

    /// JSON with fields no endpoint takes.
    pub fn nonsense() -> Self {
        Self::Json(json!({ "what": ["is", "this"], "reason": 7, "body": false }))
    }
}

/// A request, to send as different callers.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub body: Body,
}

impl Call {
    pub fn new(method: Method, path: impl Into<String>, body: Body) -> Self {
        Self {
            method,
            path: path.into(),
            body,
        }
    }

    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path, Body::Empty)
    }

    pub fn delete(path: impl Into<String>) -> Self {
        Self::new(Method::DELETE, path, Body::Empty)
    }

    pub fn post(path: impl Into<String>, body: Value) -> Self {
        Self::new(Method::POST, path, Body::Json(body))
    }

    pub fn put(path: impl Into<String>, body: Value) -> Self {
        Self::new(Method::PUT, path, Body::Json(body))
    }

    pub fn patch(path: impl Into<String>, body: Value) -> Self {
        Self::new(Method::PATCH, path, Body::Json(body))
    }

    /// The same request with another body.
    pub fn with_body(&self, body: Body) -> Self {
        Self {
            body,
            ..self.clone()
        }
    }

    /// This request, then the same with broken JSON, with a body that is not JSON, and with
    /// fields nobody takes (a refused caller gets the same answer whatever they send).
    pub fn with_bad_bodies(&self) -> Vec<Self> {
        if matches!(self.body, Body::Empty) {
            return vec![self.clone()];
        }
        vec![
            self.clone(),
            self.with_body(Body::broken_json()),
            self.with_body(Body::not_json()),
            self.with_body(Body::nonsense()),
        ]
    }
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct Person {
    pub id: Uuid,
    pub username: String,
    pub role: &'static str,
    pub token: String,
}

impl Person {
    pub fn token(&self) -> Option<&str> {
        Some(&self.token)
    }
}

/// The people of a small clinic and two patients' records.
#[derive(Debug, Clone)]
pub struct Clinic {
    pub admin: Person,
    pub secretary: Person,
    /// On Ann's care team: they registered her.
    pub doctor: Person,
    /// On no care team.
    pub outsider: Person,
    /// Was on Ann's care team until the administrator ended the membership.
    pub former: Person,
    pub lab: Person,
    /// The patient whose account is linked to `ann_record`.
    pub ann: Person,
    /// The patient whose account is linked to `bob_record`.
    pub bob: Person,
    /// Registered by `doctor`, with medical information and one note; Ann's own record.
    pub ann_record: Uuid,
    /// Registered by `secretary` with Bob's account; on no care team.
    pub bob_record: Uuid,
}

impl Clinic {
    /// Builds the clinic on a fresh server.
    pub async fn open(app: &TestApp) -> Self {
        let admin_tokens = app.admin("clinic.admin").await;
        let admin = person(app, "clinic.admin", "admin", admin_tokens.access_token).await;
        let secretary = staff(app, &admin, "sec.sarah", "secretary").await;
        let doctor = staff(app, &admin, "dr.house", "doctor").await;
        let outsider = staff(app, &admin, "dr.wilson", "doctor").await;
        let former = staff(app, &admin, "dr.cuddy", "doctor").await;
        let lab = staff(app, &admin, "lab.lee", "laboratory").await;
        let ann = app.patient_account("ann.patient").await;
        let bob = app.patient_account("bob.patient").await;

        let ann_record = id_of(
            &app.create_patient(&doctor.token, &full_patient_input("Ann Archer"))
                .await,
        );
        app.link_account(&secretary.token, ann_record, ann.id).await;
        let mut bob_input = patient_input("Bob Baker");
        bob_input["user_id"] = json!(bob.id);
        let bob_record = id_of(&app.create_patient(&secretary.token, &bob_input).await);

        let response = app
            .call(
                &Call::put(medical_path(ann_record), medical_input()),
                doctor.token(),
            )
            .await;
        assert_eq!(
            response.status(),
            200,
            "Ann's medical information is written"
        );
        app.write_note(
            &doctor.token,
            ann_record,
            &json!({ "body": "Admitted for observation.", "kind": "progress" }),
        )
        .await;

        app.add_member(&admin.token, ann_record, former.id).await;
        let response = app
            .call(
                &Call::delete(member_path(ann_record, former.id)),
                admin.token(),
            )
            .await;
        assert_eq!(response.status(), 200, "the membership of dr.cuddy ends");

        Self {
            admin,
            secretary,
            doctor,
            outsider,
            former,
            lab,
            ann,
            bob,
            ann_record,
            bob_record,
        }
    }

    /// Everything stored about `patient`, as the callers allowed to read it see it: to compare
    /// before and after attempts that must change nothing. Reads as the secretary (profile),
    /// `doctor` (medical information, notes; on the patient's care team) and the administrator
    /// (care team, emergency accesses).
    pub async fn snapshot(&self, app: &TestApp, patient: Uuid, doctor: &Person) -> Value {
        let read = |path: String, token: String| async move {
            let response = app.get(&path, Some(&token)).await;
            assert_eq!(response.status(), 200, "reading {path} for a snapshot");
            response.json::<Value>().await.expect("JSON")
        };
        json!({
            "profile": read(patient_path(patient), self.secretary.token.clone()).await,
            "medical": read(medical_path(patient), doctor.token.clone()).await,
            "notes": read(format!("{}?limit=100", notes_path(patient)), doctor.token.clone()).await,
            "care_team": read(care_team_path(patient), self.admin.token.clone()).await,
            "emergency_accesses": read(
                format!("{EMERGENCY_ACCESSES}?patient_id={patient}&limit=100"),
                self.admin.token.clone(),
            )
            .await,
        })
    }

    /// Ann's record as [`Clinic::snapshot`] reads it.
    pub async fn ann_snapshot(&self, app: &TestApp) -> Value {
        self.snapshot(app, self.ann_record, &self.doctor).await
    }

    /// Sends `call` as `who` and asserts the refusal: `status` (403 or 404) as a problem
    /// document, and one audit event for this request (matched by its `x-request-id`): `action`
    /// by `who` on `patient`, denied, without a basis. Returns the problem.
    pub async fn assert_refused(
        &self,
        app: &TestApp,
        call: &Call,
        who: &Person,
        status: u16,
        action: &str,
        patient: Option<Uuid>,
    ) -> Value {
        let context = format!("{} {} as {}", call.method, call.path, who.username);
        let response = app.call(call, who.token()).await;
        assert_eq!(response.status(), status, "{context}");
        let request_id = header(&response, "x-request-id")
            .unwrap_or_else(|| panic!("no x-request-id on {context}"));
        let slug = match status {
            403 => "forbidden",
            404 => "not-found",
            other => panic!("{other} is not a refusal"),
        };
        let problem = assert_problem_type(response, status, slug).await;

        let mut filter = format!("user_id={}", who.id);
        if let Some(patient) = patient {
            filter = format!("{filter}&patient_id={patient}");
        }
        let events: Vec<Value> = app
            .audit(&self.admin.token, &filter)
            .await
            .into_iter()
            .filter(|e| e["request_id"] == request_id.as_str())
            .collect();
        assert_eq!(
            events.len(),
            1,
            "one audit event of the refused {context} (request {request_id}), got {events:?}"
        );
        let event = &events[0];
        assert_eq!(event["action"], action, "{context}: {event}");
        assert_eq!(event["outcome"], "denied", "{context}: {event}");
        assert!(event["basis"].is_null(), "{context}: {event}");
        assert_eq!(event["actor"]["id"], json!(who.id), "{context}: {event}");
        assert_eq!(event["actor"]["role"], who.role, "{context}: {event}");
        assert_eq!(event["patient_id"], json!(patient), "{context}: {event}");
        problem
    }

    /// Asserts that the request `request_id` left exactly one audit event: `action` by `who` on
    /// `patient`, allowed on `basis`.
    pub async fn assert_allowed(
        &self,
        app: &TestApp,
        request_id: &str,
        who: &Person,
        action: &str,
        basis: &str,
        patient: Uuid,
    ) {
        let events = app.audit_of_request(&self.admin.token, request_id).await;
        assert_eq!(
            events.len(),
            1,
            "one audit event of {action} by {} (request {request_id}), got {events:?}",
            who.username
        );
        let event = &events[0];
        assert_eq!(event["action"], action, "{event}");
        assert_eq!(event["outcome"], "allowed", "{event}");
        assert_eq!(event["basis"], basis, "{event}");
        assert_eq!(event["actor"]["id"], json!(who.id), "{event}");
        assert_eq!(event["actor"]["role"], who.role, "{event}");
        assert_eq!(event["patient_id"], json!(patient), "{event}");
    }

    /// Reads `path` as `who`, asserting a 200 and its audit event (`action` on `patient`,
    /// allowed on `basis`); returns the body.
    pub async fn assert_read(
        &self,
        app: &TestApp,
        path: &str,
        who: &Person,
        action: &str,
        basis: &str,
        patient: Uuid,
    ) -> Value {
        let response = app.get(path, who.token()).await;
        assert_eq!(response.status(), 200, "GET {path} as {}", who.username);
        let request_id = header(&response, "x-request-id").expect("a request id");
        let body: Value = response.json().await.expect("JSON");
        self.assert_allowed(app, &request_id, who, action, basis, patient)
            .await;
        body
    }

    /// [`Clinic::assert_refused`] for `call` and for each of its bad-body variants.
    pub async fn assert_refused_whatever_the_body(
        &self,
        app: &TestApp,
        call: &Call,
        who: &Person,
        status: u16,
        action: &str,
        patient: Option<Uuid>,
    ) {
        for variant in call.with_bad_bodies() {
            self.assert_refused(app, &variant, who, status, action, patient)
                .await;
        }
    }

    /// Asserts that `call` without a token is a 401 (for each body variant).
    pub async fn assert_needs_token(&self, app: &TestApp, call: &Call) {
        for variant in call.with_bad_bodies() {
            assert_unauthorized(app.call(&variant, None).await).await;
        }
    }

    /// A new active staff member of `role`, created by the administrator, signed in.
    pub async fn hire(&self, app: &TestApp, username: &str, role: &'static str) -> Person {
        staff(app, &self.admin, username, role).await
    }
}

async fn person(app: &TestApp, username: &str, role: &'static str, token: String) -> Person {
    let response = app.me(&token).await;
    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.expect("a user");
    Person {
        id: id_of(&me),
        username: username.to_owned(),
        role,
        token,
    }
}

async fn staff(app: &TestApp, admin: &Person, username: &str, role: &'static str) -> Person {
    let user = app.create_staff(&admin.token, username, role).await;
    let tokens = app.tokens(username).await;
    Person {
        id: id_of(&user),
        username: username.to_owned(),
        role,
        token: tokens.access_token,
    }
}

impl TestApp {
    /// Sends `call` with `token`.
    pub async fn call(&self, call: &Call, token: Option<&str>) -> Response {
        let mut request = self
            .client
            .request(call.method.clone(), self.url(&call.path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request = match &call.body {
            Body::Empty => request,
            Body::Json(body) => request.json(body),
            Body::Raw { content_type, text } => request
                .header("content-type", *content_type)
                .body(text.clone()),
        };
        request.send().await.expect("request sent")
    }

    /// Registers a patient account (active at once) and signs in.
    pub async fn patient_account(&self, username: &str) -> Person {
        let response = self.register(username, "patient").await;
        assert_eq!(response.status(), 201, "registration of {username}");
        let user: Value = response.json().await.expect("a user");
        assert_eq!(user["status"], "active");
        Person {
            id: id_of(&user),
            username: username.to_owned(),
            role: "patient",
            token: self.tokens(username).await.access_token,
        }
    }

    /// Registers a patient with `POST /patients`, panicking unless it succeeds; returns the view.
    pub async fn create_patient(&self, token: &str, input: &Value) -> Value {
        let response = self.post_json(PATIENTS, Some(token), input).await;
        assert_eq!(response.status(), 201, "registration of {input}");
        response.json().await.expect("a patient")
    }

    /// The patient's profile, panicking unless `token` may read it.
    pub async fn patient(&self, token: &str, id: Uuid) -> Value {
        let response = self.get(&patient_path(id), Some(token)).await;
        assert_eq!(response.status(), 200, "reading patient {id}");
        response.json().await.expect("a patient")
    }

    /// Changes a profile with a merge patch, panicking unless it succeeds; returns the view.
    pub async fn patch_patient(&self, token: &str, id: Uuid, patch: &Value) -> Value {
        let response = self.patch_json(&patient_path(id), Some(token), patch).await;
        assert_eq!(response.status(), 200, "the change {patch} of {id}");
        response.json().await.expect("a patient")
    }

    /// Links the patient account `user_id` to the record `patient`.
    pub async fn link_account(&self, token: &str, patient: Uuid, user_id: Uuid) -> Value {
        let view = self
            .patch_patient(token, patient, &json!({ "user_id": user_id }))
            .await;
        assert_eq!(view["user_id"], json!(user_id));
        view
    }

    /// Writes a note, panicking unless it succeeds; returns the view.
    pub async fn write_note(&self, token: &str, patient: Uuid, note: &Value) -> Value {
        let response = self
            .post_json(&notes_path(patient), Some(token), note)
            .await;
        assert_eq!(response.status(), 201, "writing the note {note}");
        response.json().await.expect("a note")
    }

    /// Adds a doctor to a care team, panicking unless it succeeds; returns the membership.
    pub async fn add_member(&self, token: &str, patient: Uuid, doctor_id: Uuid) -> Value {
        let response = self
            .post_json(
                &care_team_path(patient),
                Some(token),
                &json!({ "doctor_id": doctor_id }),
            )
            .await;
        assert_eq!(
            response.status(),
            201,
            "adding {doctor_id} to the care team"
        );
        response.json().await.expect("a membership")
    }

    /// Breaks the glass, panicking unless it succeeds; returns the access.
    pub async fn emergency_access(&self, token: &str, patient: Uuid) -> Value {
        let response = self
            .post_json(
                &emergency_path(patient),
                Some(token),
                &json!({ "reason": EMERGENCY_REASON }),
            )
            .await;
        assert_eq!(response.status(), 201, "the emergency access to {patient}");
        response.json().await.expect("an emergency access")
    }

    /// Every audit event matching `filter` (a query string, maybe empty), newest first.
    pub async fn audit(&self, admin_token: &str, filter: &str) -> Vec<Value> {
        self.all_pages(AUDIT, admin_token, filter, 100).await
    }

    /// The audit events of one request, by its `x-request-id`.
    pub async fn audit_of_request(&self, admin_token: &str, request_id: &str) -> Vec<Value> {
        self.audit(admin_token, "")
            .await
            .into_iter()
            .filter(|e| e["request_id"] == request_id)
            .collect()
    }
}

impl TestApp {
    /// Sends a referral with `POST /referrals`, panicking unless it succeeds; returns the view.
    pub async fn send_referral(&self, token: &str, input: &Value) -> Value {
        let response = self.post_json(REFERRALS, Some(token), input).await;
        assert_eq!(response.status(), 201, "sending the referral {input}");
        response.json().await.expect("a referral")
    }

    /// `from` refers `patient` to the doctor `to` with [`referral_input`]; returns the view.
    pub async fn refer(&self, from: &Person, patient: Uuid, to: Uuid) -> Value {
        self.send_referral(&from.token, &referral_input(patient, to))
            .await
    }

    /// Changes a referral's status (`accept`, `decline`, `cancel`, `complete`) with `body`
    /// (none when `None`), panicking unless it succeeds; returns the view.
    pub async fn change_referral(
        &self,
        token: &str,
        id: Uuid,
        change: &str,
        body: Option<Value>,
    ) -> Value {
        let body = body.map_or(Body::Empty, Body::Json);
        let call = Call::new(Method::POST, referral_change_path(id, change), body);
        let response = self.call(&call, Some(token)).await;
        assert_eq!(response.status(), 200, "{change} of the referral {id}");
        response.json().await.expect("a referral")
    }
}

/// The ids of list items.
pub fn ids(items: &[Value]) -> Vec<Uuid> {
    items.iter().map(id_of).collect()
}
