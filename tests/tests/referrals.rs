//! Referrals over HTTP and the hub: a care-team doctor refers a patient to another doctor, who
//! is told on their socket, reads what was shared (as it was when sent), and takes the patient
//! on, declines, or finishes; the sender may withdraw it. Every change notifies the other
//! doctor, every read is audited, and every caller who must be refused is.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use carehub_tests::clinic::{
    Body, Call, Clinic, Person, REFERRAL_REASON, REFERRAL_SUMMARY, REFERRALS, care_team_path,
    full_patient_input, medical_input, medical_path, notes_path, patient_input, patient_path,
    referral_change_path, referral_input, referral_path,
};
use carehub_tests::ws::{Credentials, HubSocket, instant};
use carehub_tests::{TestApp, assert_problem_type, backend_tests, header, id_of, problem_fields};

/// Every status change, the party that may ask for it, and a valid body for it.
const CHANGES: [(&str, Party); 4] = [
    ("accept", Party::Recipient),
    ("decline", Party::Recipient),
    ("cancel", Party::Sender),
    ("complete", Party::Recipient),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Party {
    Sender,
    Recipient,
}

/// The audit action of a status change.
fn action_of(change: &str) -> &'static str {
    match change {
        "accept" => "referral.accept",
        "decline" => "referral.decline",
        "cancel" => "referral.cancel",
        "complete" => "referral.complete",
        other => panic!("no change {other}"),
    }
}

/// A valid body for a status change.
fn body_of(change: &str) -> Body {
    match change {
        "decline" => Body::Json(json!({ "reason": "Outside my specialty" })),
        "complete" => Body::Json(json!({ "outcome": "Echo normal; back to your care" })),
        _ => Body::Empty,
    }
}

fn change_call(id: Uuid, change: &str) -> Call {
    Call::new(
        Method::POST,
        referral_change_path(id, change),
        body_of(change),
    )
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("an object was expected, got {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn fields(problem: &Value) -> BTreeSet<String> {
    problem_fields(problem).into_iter().collect()
}

fn strings(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|&s| s.to_owned()).collect()
}

/// Asserts the shape of a referral view: exactly the documented fields, with `snapshot` when
/// `with_snapshot` (an object, or `null` where withheld) and without it otherwise.
fn assert_referral_view(view: &Value, with_snapshot: bool) {
    let mut expected: BTreeSet<&str> = [
        "id",
        "patient_id",
        "patient_name",
        "from_doctor",
        "to_doctor",
        "reason",
        "urgency",
        "status",
        "decline_reason",
        "outcome",
        "created_at",
        "updated_at",
    ]
    .into();
    if with_snapshot {
        expected.insert("snapshot");
    }
    assert_eq!(keys(view), expected, "{view}");
    for doctor in ["from_doctor", "to_doctor"] {
        assert_eq!(keys(&view[doctor]), ["full_name", "id"].into(), "{view}");
    }
    assert!(instant(&view["updated_at"]) >= instant(&view["created_at"]));
    if with_snapshot && !view["snapshot"].is_null() {
        assert_eq!(
            keys(&view["snapshot"]),
            ["clinical_summary", "medical", "patient"].into(),
            "{view}"
        );
    }
}

/// The view without its snapshot, as listings and status changes show it.
fn summary(view: &Value) -> Value {
    let mut summary = view.clone();
    summary.as_object_mut().unwrap().remove("snapshot");
    summary
}

/// Asserts a referral notification: its kind, what it points to, unread, and no clinical
/// text or patient name in it.
fn assert_referral_notification(
    notification: &Value,
    kind: &str,
    referral: &Value,
    actor: &Person,
) {
    assert_eq!(
        keys(notification),
        ["created_at", "data", "id", "kind", "read_at"].into(),
        "{notification}"
    );
    assert_eq!(notification["kind"], kind, "{notification}");
    assert!(notification["read_at"].is_null(), "{notification}");
    instant(&notification["created_at"]);
    let data = &notification["data"];
    assert_eq!(data["referral_id"], referral["id"], "{notification}");
    assert_eq!(data["patient_id"], referral["patient_id"], "{notification}");
    assert_eq!(data["actor_id"], json!(actor.id), "{notification}");
    assert!(
        data["title"].as_str().is_some_and(|t| !t.trim().is_empty()),
        "a notification has a title: {notification}"
    );
    for key in keys(data) {
        assert!(
            [
                "title",
                "referral_id",
                "patient_id",
                "actor_id",
                "emergency_access_id"
            ]
            .contains(&key),
            "unexpected {key} in {notification}"
        );
    }
    let text = data.to_string();
    for secret in [
        REFERRAL_REASON,
        REFERRAL_SUMMARY,
        "Palpitations",
        referral["patient_name"].as_str().unwrap(),
    ] {
        assert!(
            !text.contains(secret),
            "{secret:?} must not be in a notification: {notification}"
        );
    }
}

/// A referral read by `who`, asserting 200.
async fn read(app: &TestApp, id: &Value, who: &Person) -> Value {
    let path = referral_path(id.as_str().unwrap());
    let response = app.get(&path, who.token()).await;
    assert_eq!(response.status(), 200, "GET {path} as {}", who.username);
    let view: Value = response.json().await.unwrap();
    assert_referral_view(&view, true);
    view
}

/// Every item of a doctor's box (`inbox` or `outbox`, with `filter` such as `status=sent`).
async fn listed(app: &TestApp, who: &Person, referral_box: &str, filter: &str) -> Vec<Value> {
    let filter = if filter.is_empty() {
        format!("box={referral_box}")
    } else {
        format!("box={referral_box}&{filter}")
    };
    let items = app.all_pages(REFERRALS, &who.token, &filter, 100).await;
    for item in &items {
        assert_referral_view(item, false);
    }
    items
}

fn uuid(value: &Value) -> Uuid {
    value.as_str().unwrap().parse().unwrap()
}

/// Sends `change` of referral `id` as `who` with `body`, asserting `status`; returns the body.
async fn attempt(
    app: &TestApp,
    who: &Person,
    id: Uuid,
    change: &str,
    body: Body,
    status: u16,
) -> Value {
    let call = Call::new(Method::POST, referral_change_path(id, change), body);
    let response = app.call(&call, who.token()).await;
    assert_eq!(
        response.status(),
        status,
        "{change} of {id} as {} with {:?}",
        who.username,
        call.body
    );
    response.json().await.unwrap()
}

backend_tests! {
    async fn a_doctor_refers_a_patient_and_the_recipient_takes_them_on(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let (a, b) = (&clinic.doctor, &clinic.outsider);

        // The secretary registers a patient; the administrator puts doctor A on the care team.
        let patient = id_of(
            &app.create_patient(&clinic.secretary.token, &full_patient_input("Carol Clark"))
                .await,
        );
        app.add_member(&clinic.admin.token, patient, a.id).await;
        let response = app
            .call(&Call::put(medical_path(patient), medical_input()), a.token())
            .await;
        assert_eq!(response.status(), 200);
        app.write_note(&a.token, patient, &json!({ "body": "Irregular pulse." }))
            .await;

        // Both doctors are online: A with a bearer token, B from a browser, with a ticket.
        let mut a_socket = app.socket(&a.token).await;
        assert_eq!(a_socket.last_id(), Some(1), "A was told of joining the care team");
        let ticket = app.ticket(&b.token).await;
        let (mut b_socket, replayed) =
            HubSocket::ready(&app.address, Credentials::Ticket(&ticket), None).await;
        assert!(replayed.is_empty());
        assert_eq!(b_socket.last_id(), Some(0), "B has no notification yet");

        let profile = app.patient(&a.token, patient).await;
        let medical: Value = app
            .get(&medical_path(patient), a.token())
            .await
            .json()
            .await
            .unwrap();

        // A refers the patient to B.
        let input = referral_input(patient, b.id);
        let response = app.post_json(REFERRALS, a.token(), &input).await;
        assert_eq!(response.status(), 201);
        let request_id = header(&response, "x-request-id").unwrap();
        let location = header(&response, "location").expect("a Location header");
        let sent: Value = response.json().await.unwrap();
        assert_referral_view(&sent, true);
        assert_eq!(location, referral_path(sent["id"].as_str().unwrap()));
        let id = uuid(&sent["id"]);
        clinic
            .assert_allowed(&app, &request_id, a, "referral.create", "care_team", patient)
            .await;
        assert_eq!(sent["patient_id"], json!(patient));
        assert_eq!(sent["patient_name"], "Carol Clark");
        assert_eq!(
            sent["from_doctor"],
            json!({ "id": a.id, "full_name": "Test dr.house" })
        );
        assert_eq!(
            sent["to_doctor"],
            json!({ "id": b.id, "full_name": "Test dr.wilson" })
        );
        assert_eq!(sent["reason"], REFERRAL_REASON);
        assert_eq!(sent["urgency"], "urgent");
        assert_eq!(sent["status"], "sent");
        assert!(sent["decline_reason"].is_null() && sent["outcome"].is_null());
        assert_eq!(sent["created_at"], sent["updated_at"]);
        assert_eq!(
            sent["snapshot"],
            json!({ "clinical_summary": REFERRAL_SUMMARY, "patient": profile, "medical": medical })
        );

        // B's socket is told at once.
        let received = b_socket.notification().await;
        assert_eq!(received["id"], 1);
        assert_referral_notification(&received, "referral.received", &sent, a);
        let title = received["data"]["title"].as_str().unwrap();
        assert!(title.contains("Test dr.house"), "the title names the sender: {title}");
        assert_eq!(app.all_notifications(&b.token).await, vec![received.clone()]);

        // B reads the referral and what it shared, nothing more.
        let by_b = clinic
            .assert_read(&app, &referral_path(id), b, "referral.read", "referral", patient)
            .await;
        assert_eq!(by_b, sent);
        for (path, action) in [
            (medical_path(patient), "medical.read"),
            (notes_path(patient), "notes.read"),
            (patient_path(patient), "patient.read"),
        ] {
            clinic
                .assert_refused(&app, &Call::get(path), b, 404, action, Some(patient))
                .await;
        }

        // B accepts (no body): A's socket is told, and B is on the care team.
        let response = app
            .call(
                &Call::new(Method::POST, referral_change_path(id, "accept"), Body::Empty),
                b.token(),
            )
            .await;
        assert_eq!(response.status(), 200);
        let request_id = header(&response, "x-request-id").unwrap();
        let accepted: Value = response.json().await.unwrap();
        clinic
            .assert_allowed(&app, &request_id, b, "referral.accept", "referral", patient)
            .await;
        assert_referral_view(&accepted, false);
        assert_eq!(accepted["status"], "accepted");
        assert!(instant(&accepted["updated_at"]) >= instant(&sent["updated_at"]));
        let mut expected = summary(&sent);
        expected["status"] = json!("accepted");
        expected["updated_at"] = accepted["updated_at"].clone();
        assert_eq!(accepted, expected);

        let told = a_socket.notification().await;
        assert_eq!(told["id"], 2);
        assert_referral_notification(&told, "referral.accepted", &sent, b);

        let read_medical = clinic
            .assert_read(&app, &medical_path(patient), b, "medical.read", "care_team", patient)
            .await;
        assert_eq!(read_medical, medical);
        let notes = clinic
            .assert_read(&app, &notes_path(patient), b, "notes.read", "care_team", patient)
            .await;
        assert_eq!(notes["items"][0]["body"], "Irregular pulse.");
        let team: Value = app
            .get(&care_team_path(patient), clinic.admin.token())
            .await
            .json()
            .await
            .unwrap();
        let members = team["items"].as_array().unwrap();
        let by_doctor = |doctor: Uuid| {
            members
                .iter()
                .find(|m| m["doctor"]["id"] == json!(doctor))
                .unwrap_or_else(|| panic!("{doctor} is not on the team: {team}"))
        };
        assert_eq!(by_doctor(b.id)["referral_id"], json!(id), "{team}");
        assert_eq!(by_doctor(b.id)["current"], true, "{team}");
        assert_eq!(by_doctor(b.id)["added_by"], json!(b.id), "{team}");
        assert!(by_doctor(a.id)["referral_id"].is_null(), "{team}");

        // B still reads what was shared; then finishes with an outcome.
        let now = read(&app, &sent["id"], b).await;
        assert_eq!(now["snapshot"], sent["snapshot"]);
        assert_eq!(now["status"], "accepted");
        let response = app
            .post_json(
                &referral_change_path(id, "complete"),
                b.token(),
                &json!({ "outcome": "Echo normal; back to your care" }),
            )
            .await;
        assert_eq!(response.status(), 200);
        let request_id = header(&response, "x-request-id").unwrap();
        let completed: Value = response.json().await.unwrap();
        clinic
            .assert_allowed(&app, &request_id, b, "referral.complete", "referral", patient)
            .await;
        assert_referral_view(&completed, false);
        assert_eq!(completed["status"], "completed");
        assert_eq!(completed["outcome"], "Echo normal; back to your care");
        assert!(completed["decline_reason"].is_null());
        let told = a_socket.notification().await;
        assert_eq!(told["id"], 3);
        assert_referral_notification(&told, "referral.completed", &sent, b);

        let by_a = clinic
            .assert_read(&app, &referral_path(id), a, "referral.read", "referral", patient)
            .await;
        assert_eq!(by_a["status"], "completed");
        assert_eq!(by_a["outcome"], "Echo normal; back to your care");
        assert_eq!(by_a["snapshot"], sent["snapshot"]);
        assert_eq!(summary(&by_a), completed);

        a_socket.assert_quiet().await;
        b_socket.assert_quiet().await;
        assert_eq!(app.all_notifications(&b.token).await.len(), 1);
    }

    async fn what_was_shared_stays_as_it_was_sent(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let (a, b, ann) = (&clinic.doctor, &clinic.outsider, clinic.ann_record);
        let sent = app.refer(a, ann, b.id).await;
        assert_eq!(sent["patient_name"], "Ann Archer");
        assert_eq!(sent["snapshot"]["patient"], app.patient(&a.token, ann).await);

        // The record changes after the referral was sent.
        app.patch_patient(&a.token, ann, &json!({ "full_name": "Ann Changed", "sex": "unknown" }))
            .await;
        let response = app
            .call(&Call::put(medical_path(ann), json!({ "blood_type": "O-" })), a.token())
            .await;
        assert_eq!(response.status(), 200);
        let changed_medical: Value = response.json().await.unwrap();

        for who in [a, b] {
            let view = read(&app, &sent["id"], who).await;
            assert_eq!(view, sent, "as {}", who.username);
        }
        let outbox = listed(&app, a, "outbox", "").await;
        assert_eq!(outbox, vec![summary(&sent)]);
        assert_eq!(listed(&app, b, "inbox", "").await, vec![summary(&sent)]);

        // Once on the team, B reads the record as it is now, and the referral as it was sent.
        app.change_referral(&b.token, uuid(&sent["id"]), "accept", None)
            .await;
        let medical: Value = app
            .get(&medical_path(ann), b.token())
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(medical, changed_medical);
        assert_eq!(app.patient(&b.token, ann).await["full_name"], "Ann Changed");
        let view = read(&app, &sent["id"], b).await;
        assert_eq!(view["snapshot"], sent["snapshot"]);
        assert_eq!(view["patient_name"], "Ann Archer");
    }

    async fn the_recipient_declines_with_a_reason_and_no_longer_sees_what_was_shared(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let (a, b, ann) = (&clinic.doctor, &clinic.outsider, clinic.ann_record);
        let sent = app.refer(a, ann, b.id).await;
        let id = uuid(&sent["id"]);
        let a_before = app.all_notifications(&a.token).await;

        // A decline needs a reason.
        for body in [
            Body::Empty,
            Body::Json(json!({})),
            Body::Json(json!({ "reason": "   " })),
            Body::Json(json!({ "reason": "x".repeat(5001) })),
            Body::Json(json!({ "reason": 5 })),
            Body::Json(json!({ "reason": null })),
        ] {
            let problem = attempt(&app, b, id, "decline", body.clone(), 422).await;
            assert_eq!(fields(&problem), strings(&["reason"]), "{body:?}: {problem}");
        }
        attempt(&app, b, id, "decline", Body::Json(json!({ "reason": "ok", "outcome": "x" })), 422)
            .await;
        let problem = attempt(&app, b, id, "decline", Body::broken_json(), 400).await;
        assert_eq!(problem["type"], "urn:carehub:problem:bad-request");
        assert_eq!(read(&app, &sent["id"], a).await, sent, "nothing changed");
        assert_eq!(app.all_notifications(&a.token).await, a_before);

        let response = app
            .post_json(
                &referral_change_path(id, "decline"),
                b.token(),
                &json!({ "reason": "Outside my specialty" }),
            )
            .await;
        assert_eq!(response.status(), 200);
        let request_id = header(&response, "x-request-id").unwrap();
        let declined: Value = response.json().await.unwrap();
        clinic
            .assert_allowed(&app, &request_id, b, "referral.decline", "referral", ann)
            .await;
        assert_referral_view(&declined, false);
        assert_eq!(declined["status"], "declined");
        assert_eq!(declined["decline_reason"], "Outside my specialty");
        assert!(declined["outcome"].is_null());

        let told = app.all_notifications(&a.token).await;
        assert_eq!(told.len(), a_before.len() + 1);
        let last = told.last().unwrap();
        assert_eq!(last["id"], json!(a_before.len() + 1));
        assert_referral_notification(last, "referral.declined", &sent, b);

        // The recipient keeps the referral, without what it shared; the sender keeps both.
        let by_b = read(&app, &sent["id"], b).await;
        assert!(by_b["snapshot"].is_null(), "{by_b}");
        assert_eq!(by_b["status"], "declined");
        assert_eq!(by_b["decline_reason"], "Outside my specialty");
        let by_a = read(&app, &sent["id"], a).await;
        assert_eq!(by_a["snapshot"], sent["snapshot"]);
        assert_eq!(summary(&by_a), declined);
        assert_eq!(summary(&by_b), declined);
        clinic
            .assert_refused(&app, &Call::get(medical_path(ann)), b, 404, "medical.read", Some(ann))
            .await;
    }

    async fn the_sender_cancels_and_the_recipient_is_told(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let (a, b, ann) = (&clinic.doctor, &clinic.outsider, clinic.ann_record);
        let mut b_socket = app.socket(&b.token).await;
        let first = app.refer(a, ann, b.id).await;
        let second = app.refer(a, ann, b.id).await;
        let third = app.refer(a, ann, b.id).await;
        let received = b_socket.notifications(3).await;
        for (notification, referral) in received.iter().zip([&first, &second, &third]) {
            assert_referral_notification(notification, "referral.received", referral, a);
        }

        // A cancel takes no note.
        let problem = attempt(
            &app,
            a,
            uuid(&first["id"]),
            "cancel",
            Body::Json(json!({ "reason": "changed my mind" })),
            422,
        )
        .await;
        assert_eq!(problem["type"], "urn:carehub:problem:validation");
        assert_eq!(read(&app, &first["id"], a).await, first);

        // No body, then an empty object.
        let response = app
            .call(
                &Call::new(Method::POST, referral_change_path(uuid(&first["id"]), "cancel"), Body::Empty),
                a.token(),
            )
            .await;
        assert_eq!(response.status(), 200);
        let request_id = header(&response, "x-request-id").unwrap();
        let cancelled: Value = response.json().await.unwrap();
        clinic
            .assert_allowed(&app, &request_id, a, "referral.cancel", "referral", ann)
            .await;
        assert_referral_view(&cancelled, false);
        assert_eq!(cancelled["status"], "cancelled");
        assert!(cancelled["decline_reason"].is_null() && cancelled["outcome"].is_null());
        let again = app
            .change_referral(&a.token, uuid(&second["id"]), "cancel", Some(json!({})))
            .await;
        assert_eq!(again["status"], "cancelled");
        // Accepting takes an empty object too.
        let accepted = app
            .change_referral(&b.token, uuid(&third["id"]), "accept", Some(json!({})))
            .await;
        assert_eq!(accepted["status"], "accepted");

        for referral in [&first, &second] {
            let told = b_socket.notification().await;
            assert_referral_notification(&told, "referral.cancelled", referral, a);
            let by_b = read(&app, &referral["id"], b).await;
            assert!(by_b["snapshot"].is_null(), "{by_b}");
            assert_eq!(by_b["status"], "cancelled");
            let by_a = read(&app, &referral["id"], a).await;
            assert_eq!(by_a["snapshot"], referral["snapshot"]);
        }
        b_socket.assert_quiet().await;
        let a_told = app.all_notifications(&a.token).await;
        assert_eq!(a_told.len(), 1, "A is told of the acceptance only: {a_told:?}");
        assert_referral_notification(&a_told[0], "referral.accepted", &third, b);
    }

    async fn a_change_the_status_does_not_allow_is_a_conflict(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let (a, b, ann) = (&clinic.doctor, &clinic.outsider, clinic.ann_record);
        let sent = app.refer(a, ann, b.id).await;
        let accepted = app.refer(a, ann, b.id).await;
        app.change_referral(&b.token, uuid(&accepted["id"]), "accept", None).await;
        let declined = app.refer(a, ann, b.id).await;
        app.change_referral(
            &b.token,
            uuid(&declined["id"]),
            "decline",
            Some(json!({ "reason": "No" })),
        )
        .await;
        let cancelled = app.refer(a, ann, b.id).await;
        app.change_referral(&a.token, uuid(&cancelled["id"]), "cancel", None).await;
        let completed = app.refer(a, ann, b.id).await;
        app.change_referral(&b.token, uuid(&completed["id"]), "accept", None).await;
        app.change_referral(
            &b.token,
            uuid(&completed["id"]),
            "complete",
            Some(json!({ "outcome": "Done" })),
        )
        .await;

        let referrals = [
            (&sent, "sent"),
            (&accepted, "accepted"),
            (&declined, "declined"),
            (&cancelled, "cancelled"),
            (&completed, "completed"),
        ];
        let mut before = Vec::new();
        for (referral, status) in referrals {
            let view = read(&app, &referral["id"], a).await;
            assert_eq!(view["status"], status);
            before.push(view);
        }
        let a_told = app.all_notifications(&a.token).await;
        let b_told = app.all_notifications(&b.token).await;

        for (referral, status) in referrals {
            let id = uuid(&referral["id"]);
            for (change, party) in CHANGES {
                let allowed = matches!(
                    (status, change),
                    ("sent", "accept" | "decline" | "cancel") | ("accepted", "complete")
                );
                if allowed {
                    continue;
                }
                let who = if party == Party::Sender { a } else { b };
                let response = app.call(&change_call(id, change), who.token()).await;
                let problem = assert_problem_type(response, 409, "conflict").await;
                let detail = problem["detail"].as_str().unwrap_or_default();
                assert!(
                    detail.contains(status),
                    "{change} of a {status} referral: the detail names the status: {problem}"
                );
            }
        }
        for ((referral, _), view) in referrals.iter().zip(&before) {
            assert_eq!(&read(&app, &referral["id"], a).await, view, "nothing changed");
        }
        assert_eq!(app.all_notifications(&a.token).await, a_told);
        assert_eq!(app.all_notifications(&b.token).await, b_told);
    }

    async fn only_the_party_a_change_belongs_to_may_make_it(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let (a, b, ann) = (&clinic.doctor, &clinic.outsider, clinic.ann_record);
        let sent = app.refer(a, ann, b.id).await;
        let accepted = app.refer(a, ann, b.id).await;
        app.change_referral(&b.token, uuid(&accepted["id"]), "accept", None).await;
        let views = [
            read(&app, &sent["id"], a).await,
            read(&app, &accepted["id"], a).await,
        ];
        let a_told = app.all_notifications(&a.token).await;
        let b_told = app.all_notifications(&b.token).await;

        for view in &views {
            let id = uuid(&view["id"]);
            for (change, party) in CHANGES {
                // The side that may never ask for this change.
                let who = if party == Party::Sender { b } else { a };
                clinic
                    .assert_refused(&app, &change_call(id, change), who, 403, action_of(change), Some(ann))
                    .await;
            }
        }
        for view in &views {
            assert_eq!(&read(&app, &view["id"], a).await, view, "nothing changed");
        }
        assert_eq!(app.all_notifications(&a.token).await, a_told);
        assert_eq!(app.all_notifications(&b.token).await, b_told);
    }

    async fn nobody_but_its_two_doctors_sees_a_referral(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let (a, b, ann) = (&clinic.doctor, &clinic.outsider, clinic.ann_record);
        let sent = app.refer(a, ann, b.id).await;
        let id = uuid(&sent["id"]);
        // A third doctor, even on the patient's care team, and one whose membership ended.
        let third = clinic.hire(&app, "dr.third", "doctor").await;
        app.add_member(&clinic.admin.token, ann, third.id).await;

        for who in [&third, &clinic.former] {
            clinic
                .assert_refused(&app, &Call::get(referral_path(id)), who, 404, "referral.read", Some(ann))
                .await;
            for (change, _) in CHANGES {
                clinic
                    .assert_refused(&app, &change_call(id, change), who, 404, action_of(change), Some(ann))
                    .await;
            }
            for referral_box in ["inbox", "outbox"] {
                assert!(listed(&app, who, referral_box, "").await.is_empty());
            }
        }
        // A referral that does not exist.
        let missing = Uuid::now_v7();
        clinic
            .assert_refused(&app, &Call::get(referral_path(missing)), a, 404, "referral.read", None)
            .await;
        for (change, _) in CHANGES {
            clinic
                .assert_refused(&app, &change_call(missing, change), b, 404, action_of(change), None)
                .await;
        }
        assert_problem_type(app.get(&referral_path("nope"), a.token()).await, 404, "not-found")
            .await;
        assert_eq!(read(&app, &sent["id"], a).await, sent, "nothing changed");
    }

    async fn only_doctors_take_part_in_referrals(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let (a, b, ann) = (&clinic.doctor, &clinic.outsider, clinic.ann_record);
        let sent = app.refer(a, ann, b.id).await;
        let id = uuid(&sent["id"]);
        let b_told = app.all_notifications(&b.token).await;

        let send = Call::post(REFERRALS, referral_input(ann, b.id));
        let mut calls = vec![
            (send.clone(), "referral.create"),
            (Call::get(format!("{REFERRALS}?box=inbox")), "referral.list"),
            (Call::get(format!("{REFERRALS}?box=outbox&status=sent")), "referral.list"),
            (Call::get(referral_path(id)), "referral.read"),
        ];
        for (change, _) in CHANGES {
            calls.push((change_call(id, change), action_of(change)));
        }
        for who in [
            &clinic.secretary,
            &clinic.lab,
            &clinic.admin,
            &clinic.ann,
            &clinic.bob,
        ] {
            for (call, action) in &calls {
                clinic
                    .assert_refused_whatever_the_body(&app, call, who, 403, action, None)
                    .await;
            }
        }
        for (call, _) in &calls {
            clinic.assert_needs_token(&app, call).await;
        }
        assert_eq!(read(&app, &sent["id"], a).await, sent, "nothing changed");
        assert_eq!(listed(&app, a, "outbox", "").await, vec![summary(&sent)]);
        assert_eq!(app.all_notifications(&b.token).await, b_told);
    }

    async fn only_a_doctor_on_the_care_team_may_refer_a_patient(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let ann = clinic.ann_record;
        let target = clinic.hire(&app, "dr.target", "doctor").await;
        let call = Call::post(REFERRALS, referral_input(ann, target.id));
        // Not on the team, or no longer.
        for who in [&clinic.outsider, &clinic.former] {
            clinic
                .assert_refused(&app, &call, who, 404, "referral.create", Some(ann))
                .await;
        }
        // Not Bob's doctor.
        let bob_call = Call::post(REFERRALS, referral_input(clinic.bob_record, target.id));
        clinic
            .assert_refused(&app, &bob_call, &clinic.doctor, 404, "referral.create", Some(clinic.bob_record))
            .await;
        // A patient who does not exist.
        let missing = Uuid::now_v7();
        let missing_call = Call::post(REFERRALS, referral_input(missing, target.id));
        clinic
            .assert_refused(&app, &missing_call, &clinic.doctor, 404, "referral.create", Some(missing))
            .await;
        // An emergency access reads the record; it does not share it.
        app.emergency_access(&clinic.outsider.token, ann).await;
        clinic
            .assert_refused(&app, &call, &clinic.outsider, 403, "referral.create", Some(ann))
            .await;

        for who in [&clinic.outsider, &clinic.former, &clinic.doctor] {
            assert!(listed(&app, who, "outbox", "").await.is_empty());
        }
        assert!(listed(&app, &target, "inbox", "").await.is_empty());
        assert!(app.all_notifications(&target.token).await.is_empty());
    }

    async fn a_referral_goes_to_another_active_doctor_and_is_validated_whole(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let (a, ann) = (&clinic.doctor, clinic.ann_record);
        let pending = app
            .register("dr.pending", "doctor")
            .await
            .json::<Value>()
            .await
            .unwrap();
        assert_eq!(pending["status"], "pending");
        let suspended = clinic.hire(&app, "dr.suspended", "doctor").await;
        app.update_user(&clinic.admin.token, suspended.id, &json!({ "status": "suspended" }))
            .await;

        for to in [
            json!(a.id),
            json!(clinic.secretary.id),
            json!(clinic.lab.id),
            json!(clinic.admin.id),
            json!(clinic.ann.id),
            json!(id_of(&pending)),
            json!(suspended.id),
            json!(Uuid::now_v7()),
            json!("not-a-uuid"),
        ] {
            let mut input = referral_input(ann, clinic.outsider.id);
            input["to_doctor_id"] = to.clone();
            let response = app.post_json(REFERRALS, a.token(), &input).await;
            let problem = assert_problem_type(response, 422, "validation").await;
            assert_eq!(fields(&problem), strings(&["to_doctor_id"]), "{to}: {problem}");
        }

        let problem = assert_problem_type(
            app.post_json(REFERRALS, a.token(), &json!({})).await,
            422,
            "validation",
        )
        .await;
        assert_eq!(
            fields(&problem),
            strings(&["patient_id", "to_doctor_id", "reason", "clinical_summary", "urgency"]),
            "{problem}"
        );
        let problem = assert_problem_type(
            app.post_json(
                REFERRALS,
                a.token(),
                &json!({
                    "to_doctor_id": clinic.outsider.id,
                    "reason": "   ",
                    "clinical_summary": "x".repeat(20_001),
                    "urgency": "soon",
                }),
            )
            .await,
            422,
            "validation",
        )
        .await;
        assert_eq!(
            fields(&problem),
            strings(&["patient_id", "reason", "clinical_summary", "urgency"]),
            "{problem}"
        );
        let mut too_long = referral_input(ann, clinic.outsider.id);
        too_long["reason"] = json!("r".repeat(501));
        let problem = assert_problem_type(
            app.post_json(REFERRALS, a.token(), &too_long).await,
            422,
            "validation",
        )
        .await;
        assert_eq!(fields(&problem), strings(&["reason"]));
        let mut extra = referral_input(ann, clinic.outsider.id);
        extra["priority"] = json!("high");
        assert_problem_type(app.post_json(REFERRALS, a.token(), &extra).await, 422, "validation")
            .await;
        let call = Call::post(REFERRALS, referral_input(ann, clinic.outsider.id));
        assert_problem_type(
            app.call(&call.with_body(Body::broken_json()), a.token()).await,
            400,
            "bad-request",
        )
        .await;
        assert_problem_type(
            app.call(&call.with_body(Body::not_json()), a.token()).await,
            415,
            "unsupported-media-type",
        )
        .await;

        assert!(listed(&app, a, "outbox", "").await.is_empty());
        assert!(app.all_notifications(&clinic.outsider.token).await.is_empty());

        // Every urgency, and the longest texts, are fine.
        for urgency in ["routine", "urgent", "emergency"] {
            let mut input = referral_input(ann, clinic.outsider.id);
            input["urgency"] = json!(urgency);
            input["reason"] = json!("r".repeat(500));
            input["clinical_summary"] = json!("s".repeat(20_000));
            let sent = app.send_referral(&a.token, &input).await;
            assert_eq!(sent["urgency"], urgency);
        }
    }

    async fn boxes_list_newest_first_by_status_and_page(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let (a, b, ann) = (&clinic.doctor, &clinic.outsider, clinic.ann_record);
        let other = id_of(&app.create_patient(&a.token, &patient_input("Dora Dale")).await);
        let c = clinic.hire(&app, "dr.third", "doctor").await;
        app.add_member(&clinic.admin.token, ann, c.id).await;

        let r1 = app.refer(a, ann, b.id).await;
        let r2 = app.refer(a, other, b.id).await;
        let r3 = app.refer(a, ann, b.id).await;
        let r4 = app.refer(&c, ann, b.id).await;
        let r1 = app.change_referral(&b.token, uuid(&r1["id"]), "accept", None).await;
        let r2 = app
            .change_referral(&b.token, uuid(&r2["id"]), "decline", Some(json!({ "reason": "No" })))
            .await;
        let (r3, r4) = (summary(&r3), summary(&r4));

        let inbox = vec![r4.clone(), r3.clone(), r2.clone(), r1.clone()];
        assert_eq!(listed(&app, b, "inbox", "").await, inbox, "newest first");
        for limit in [1, 3] {
            assert_eq!(
                app.all_pages(REFERRALS, &b.token, "box=inbox", limit).await,
                inbox,
                "limit {limit}"
            );
        }
        assert_eq!(listed(&app, b, "inbox", "status=sent").await, vec![r4.clone(), r3.clone()]);
        assert_eq!(
            app.all_pages(REFERRALS, &b.token, "box=inbox&status=sent", 1).await,
            vec![r4.clone(), r3.clone()]
        );
        assert_eq!(listed(&app, b, "inbox", "status=accepted").await, vec![r1.clone()]);
        assert_eq!(listed(&app, b, "inbox", "status=declined").await, vec![r2.clone()]);
        assert!(listed(&app, b, "inbox", "status=completed").await.is_empty());
        assert!(listed(&app, b, "inbox", "status=cancelled").await.is_empty());
        assert!(listed(&app, b, "outbox", "").await.is_empty());
        assert_eq!(
            listed(&app, a, "outbox", "").await,
            vec![r3.clone(), r2.clone(), r1.clone()]
        );
        assert_eq!(listed(&app, a, "outbox", "status=declined").await, vec![r2.clone()]);
        assert!(listed(&app, a, "inbox", "").await.is_empty());
        assert_eq!(listed(&app, &c, "outbox", "").await, vec![r4.clone()]);

        // Each listed referral is an audited read of its patient.
        let response = app.get(&format!("{REFERRALS}?box=inbox"), b.token()).await;
        assert_eq!(response.status(), 200);
        let request_id = header(&response, "x-request-id").unwrap();
        let events = app.audit_of_request(&clinic.admin.token, &request_id).await;
        let mut patients: Vec<String> = events
            .iter()
            .map(|e| {
                assert_eq!(e["action"], "referral.list", "{e}");
                assert_eq!(e["outcome"], "allowed", "{e}");
                assert_eq!(e["basis"], "referral", "{e}");
                assert_eq!(e["actor"]["id"], json!(b.id), "{e}");
                e["patient_id"].as_str().unwrap().to_owned()
            })
            .collect();
        patients.sort();
        let mut expected = vec![ann.to_string(), other.to_string(), ann.to_string(), ann.to_string()];
        expected.sort();
        assert_eq!(patients, expected);
        // An empty box reads nothing.
        let response = app.get(&format!("{REFERRALS}?box=outbox"), b.token()).await;
        let request_id = header(&response, "x-request-id").unwrap();
        assert!(app.audit_of_request(&clinic.admin.token, &request_id).await.is_empty());

        for query in [
            "",
            "box=sideways",
            "box=inbox&status=bogus",
            "box=inbox&limit=0",
            "box=inbox&limit=101",
            "box=inbox&cursor=nope",
        ] {
            let response = app.get(&format!("{REFERRALS}?{query}"), b.token()).await;
            assert_problem_type(response, 400, "bad-request").await;
        }
    }
}
