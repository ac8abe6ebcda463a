//! Appointments over HTTP and the hub: a secretary books a free slot, the doctor joins the
//! patient's care team, overlapping bookings are refused with every appointment in the way,
//! the appointment moves through its statuses by the roles that may move it, the doctor writes
//! the visit note, and the history keeps every change. The doctor and the patient are told of
//! bookings, new times and cancellations on their sockets, never the one who made the change;
//! twenty bookings racing for one slot leave exactly one; every refusal is audited.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime, Time};
use uuid::Uuid;

use carehub_tests::clinic::{
    Body, Call, Clinic, Person, care_team_path, medical_path, member_path, notes_path,
    patient_input,
};
use carehub_tests::schedule::{
    APPOINTMENTS, AuditPatient, VISIT_REASON, appointment_path, assert_conflicts, assert_refused,
    assert_refused_whatever_the_body, booking, day_at, history_path, profile_path, rfc3339, span,
    status_path, uuid_of, visit_note_path, whole_minute,
};
use carehub_tests::ws::instant;
use carehub_tests::{TestApp, assert_problem_type, backend_tests, header, id_of, problem_fields};

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

/// Asserts the shape of an appointment view; `cancel_reason` only on a cancelled one.
fn assert_appointment_view(view: &Value) {
    let mut expected: BTreeSet<&str> = [
        "id",
        "doctor_id",
        "doctor_name",
        "patient_id",
        "patient_name",
        "start",
        "end",
        "reason",
        "status",
        "video",
        "created_by",
        "created_at",
        "updated_at",
    ]
    .into();
    if view["status"] == "cancelled" {
        expected.insert("cancel_reason");
    }
    assert_eq!(keys(view), expected, "{view}");
    let (start, end) = span(view);
    assert!(start < end, "{view}");
    assert!(
        instant(&view["updated_at"]) >= instant(&view["created_at"]),
        "{view}"
    );
}

/// Asserts an appointment notification: its kind, what it points to, who acted, unread, and
/// neither the patient's name nor the reason for the visit in it.
fn assert_appointment_notification(
    notification: &Value,
    kind: &str,
    appointment: &Value,
    actor: &Person,
) {
    assert_eq!(
        keys(notification),
        ["created_at", "data", "id", "kind", "read_at"].into(),
        "{notification}"
    );
    assert_eq!(notification["kind"], kind, "{notification}");
    assert!(notification["read_at"].is_null(), "{notification}");
    let data = &notification["data"];
    assert_eq!(
        keys(data),
        ["actor_id", "appointment_id", "patient_id", "title"].into(),
        "{notification}"
    );
    assert_eq!(data["appointment_id"], appointment["id"], "{notification}");
    assert_eq!(
        data["patient_id"], appointment["patient_id"],
        "{notification}"
    );
    assert_eq!(data["actor_id"], json!(actor.id), "{notification}");
    let title = data["title"].as_str().unwrap();
    assert!(title.starts_with("Appointment on "), "{notification}");
    for secret in ["Ann Archer", "Bob Baker", VISIT_REASON, "blood pressure"] {
        assert!(
            !title.contains(secret),
            "{secret:?} must not be in {notification}"
        );
    }
}

/// `GET path` as `who`, asserting 200; returns the body.
async fn read(app: &TestApp, path: &str, who: &Person) -> Value {
    let response = app.get(path, who.token()).await;
    assert_eq!(response.status(), 200, "GET {path} as {}", who.username);
    response.json().await.unwrap()
}

/// An appointment as `who` reads it.
async fn appointment(app: &TestApp, who: &Person, view: &Value) -> Value {
    let read = app.appointment(&who.token, uuid_of(view)).await;
    assert_appointment_view(&read);
    read
}

/// The ids of appointments `who` lists with `filter`.
async fn listed(app: &TestApp, who: &Person, filter: &str) -> Vec<Uuid> {
    let items = app.appointments(&who.token, filter).await;
    for item in &items {
        assert_appointment_view(item);
    }
    items.iter().map(id_of).collect()
}

/// The care-team membership of `doctor` opened by `appointment`, as the administrator sees it.
async fn membership(app: &TestApp, clinic: &Clinic, patient: Uuid, appointment: &Value) -> Value {
    let team = read(app, &care_team_path(patient), &clinic.admin).await;
    team["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m.get("appointment_id") == Some(&appointment["id"]))
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "no membership of appointment {} in {team}",
                appointment["id"]
            )
        })
}

/// A time that is bookable in a doctor's 00:00–23:59 day and starts in less than two hours,
/// with its end (ten minutes later).
fn soon() -> (OffsetDateTime, OffsetDateTime) {
    let mut start = whole_minute(OffsetDateTime::now_utc()) + Duration::minutes(70);
    if start.time() >= Time::from_hms(23, 40, 0).unwrap() {
        start = start.replace_time(Time::from_hms(0, 5, 0).unwrap()) + Duration::days(1);
    }
    (start, start + Duration::minutes(10))
}

/// A hired doctor who works 08:00–18:00 every day.
async fn working_doctor(app: &TestApp, clinic: &Clinic, username: &str) -> Person {
    let doctor = clinic.hire(app, username, "doctor").await;
    app.work_every_day(&clinic.secretary.token, doctor.id, "08:00", "18:00")
        .await;
    doctor
}

/// Sends `body` to the status endpoint of `id` as `who` and asserts a 422 on `reason` (or
/// `status`).
async fn invalid_status(app: &TestApp, who: &Person, id: Uuid, body: Body, field: &str) {
    let response = app
        .call(
            &Call::new(Method::POST, status_path(id), body.clone()),
            who.token(),
        )
        .await;
    let problem = assert_problem_type(response, 422, "validation").await;
    assert_eq!(fields(&problem), strings(&[field]), "{body:?}: {problem}");
}

/// The status endpoint of `id` as `who` with `status`: asserts a 409 `invalid-transition`.
async fn invalid_transition(
    app: &TestApp,
    who: &Person,
    id: Uuid,
    status: &str,
    reason: Option<&str>,
) {
    let response = app.try_set_status(&who.token, id, status, reason).await;
    let problem = assert_problem_type(response, 409, "invalid-transition").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains(status),
        "{problem}"
    );
}

/// Books `body` as `who` and asserts a 422 `not-bookable` with `detail`, which neither names the
/// time off nor says why the doctor is off.
async fn assert_unavailable(app: &TestApp, who: &Person, body: Value, detail: &str) {
    let response = app.try_book(&who.token, &body).await;
    let problem = assert_problem_type(response, 422, "not-bookable").await;
    assert_eq!(problem["detail"], detail, "{body}: {problem}");
    assert!(!problem.to_string().contains("time_off_id"), "{problem}");
    assert!(!problem.to_string().contains("Dentist"), "{problem}");
}

/// Books `body` as `who` and asserts a 422 `validation`; returns its fields.
async fn invalid_booking(app: &TestApp, who: &Person, body: Value) -> BTreeSet<String> {
    let response = app.try_book(&who.token, &body).await;
    let problem = assert_problem_type(response, 422, "validation").await;
    fields(&problem)
}

fn status_call(id: Uuid, status: &str) -> Call {
    let mut body = json!({ "status": status });
    if status == "cancelled" {
        body["reason"] = json!("The patient is unwell");
    }
    Call::post(status_path(id), body)
}

backend_tests! {
    async fn a_secretary_books_a_free_slot_and_the_visit_runs_to_its_note(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let (secretary, ann) = (&clinic.secretary, clinic.ann_record);
        let adams = working_doctor(&app, &clinic, "dr.adams").await;

        // The doctor, the patient and the secretary are online.
        let mut doctor_socket = app.socket(&adams.token).await;
        let mut ann_socket = app.socket(&clinic.ann.token).await;
        let mut secretary_socket = app.socket(&secretary.token).await;

        // Not yet on Ann's care team.
        assert_eq!(app.get(&medical_path(ann), adams.token()).await.status(), 404);

        // Ann finds 09:00 free on day 3.
        let nine = day_at(3, 9, 0);
        let slots = app.free_slots(&clinic.ann.token, adams.id, day_at(3, 0, 0), day_at(4, 0, 0)).await;
        assert_eq!(slots.len(), 20);
        assert!(slots.contains(&(nine, nine + Duration::minutes(30))));

        // The secretary books it; the end follows from the doctor's appointment length.
        let response = app.try_book(&secretary.token, &booking(adams.id, ann, nine, None)).await;
        assert_eq!(response.status(), 201);
        let request_id = header(&response, "x-request-id").unwrap();
        let location = header(&response, "location").expect("a Location header");
        let booked: Value = response.json().await.unwrap();
        assert_appointment_view(&booked);
        assert_eq!(location, appointment_path(uuid_of(&booked)));
        assert_eq!(booked["doctor_id"], json!(adams.id));
        assert_eq!(booked["doctor_name"], "Test dr.adams");
        assert_eq!(booked["patient_id"], json!(ann));
        assert_eq!(span(&booked), (nine, nine + Duration::minutes(30)));
        assert_eq!(booked["reason"], VISIT_REASON);
        assert_eq!(booked["status"], "booked");
        assert_eq!(booked["created_by"], json!(secretary.id));
        assert_eq!(booked["created_at"], booked["updated_at"]);
        clinic.assert_allowed(&app, &request_id, secretary, "appointment.create", "role", ann).await;
        let id = uuid_of(&booked);

        // The doctor and Ann are told; the secretary is not.
        let told = doctor_socket.notification().await;
        assert_eq!(told["id"], 1);
        assert_appointment_notification(&told, "appointment.booked", &booked, secretary);
        assert!(told["data"]["title"].as_str().unwrap().contains("Test sec.sarah"), "{told}");
        let told = ann_socket.notification().await;
        assert_appointment_notification(&told, "appointment.booked", &booked, secretary);
        secretary_socket.assert_quiet().await;

        // The booking put the doctor on the care team: they read Ann's record now.
        let member = membership(&app, &clinic, ann, &booked).await;
        assert_eq!(member["doctor"]["id"], json!(adams.id));
        assert_eq!(member["current"], true);
        assert!(member["ended_at"].is_null());
        assert_eq!(member["added_by"], json!(secretary.id));
        clinic.assert_read(&app, &medical_path(ann), &adams, "medical.read", "care_team", ann).await;
        // An administrator cannot end a membership an appointment opened.
        let response = app.call(&Call::delete(member_path(ann, adams.id)), clinic.admin.token()).await;
        assert_problem_type(response, 409, "conflict").await;
        assert_eq!(membership(&app, &clinic, ann, &booked).await, member);
        assert_eq!(app.get(&notes_path(ann), adams.token()).await.status(), 200);

        // The slot is gone.
        let slots = app.free_slots(&clinic.ann.token, adams.id, day_at(3, 0, 0), day_at(4, 0, 0)).await;
        assert_eq!(slots.len(), 19);
        assert!(!slots.iter().any(|(s, _)| *s == nine));

        // Each of them reads it, audited on their own basis.
        for (who, basis) in [(&adams, "appointment"), (&clinic.ann, "own_record"), (secretary, "role")] {
            let view = clinic
                .assert_read(&app, &appointment_path(id), who, "appointment.read", basis, ann)
                .await;
            assert_eq!(view, booked, "as {}", who.username);
        }

        // The secretary moves it to 11:00: the length is kept.
        let eleven = day_at(3, 11, 0);
        let response = app.try_reschedule(&secretary.token, id, eleven, None).await;
        assert_eq!(response.status(), 200);
        let request_id = header(&response, "x-request-id").unwrap();
        let moved: Value = response.json().await.unwrap();
        clinic.assert_allowed(&app, &request_id, secretary, "appointment.reschedule", "role", ann).await;
        assert_appointment_view(&moved);
        assert_eq!(span(&moved), (eleven, eleven + Duration::minutes(30)));
        assert_eq!(moved["status"], "booked");
        assert!(instant(&moved["updated_at"]) >= instant(&booked["updated_at"]));
        let told = doctor_socket.notification().await;
        assert_appointment_notification(&told, "appointment.rescheduled", &booked, secretary);
        let told = ann_socket.notification().await;
        assert_appointment_notification(&told, "appointment.rescheduled", &booked, secretary);
        secretary_socket.assert_quiet().await;
        let slots = app.free_slots(&clinic.ann.token, adams.id, day_at(3, 0, 0), day_at(4, 0, 0)).await;
        assert!(slots.contains(&(nine, nine + Duration::minutes(30))), "09:00 is free again");

        // A new time in the way of another appointment is refused with it; one overlapping only
        // its own old time is fine.
        let other = app
            .book(&secretary.token, &booking(adams.id, clinic.bob_record, day_at(3, 12, 0), None))
            .await;
        doctor_socket.notification().await;
        let response = app
            .try_reschedule(&secretary.token, id, day_at(3, 11, 45), Some(day_at(3, 12, 15)))
            .await;
        let conflicts = assert_conflicts(response).await;
        assert_eq!(
            conflicts,
            vec![(uuid_of(&other), day_at(3, 12, 0), day_at(3, 12, 30), "doctor".to_owned())]
        );
        let response = app.try_reschedule(&secretary.token, id, day_at(3, 18, 0), None).await;
        let problem = assert_problem_type(response, 422, "not-bookable").await;
        assert_eq!(problem["detail"], "the doctor does not work at that time");
        assert!(problem.get("time_off_id").is_none());
        let response = app.try_reschedule(&secretary.token, id, day_at(-1, 11, 0), None).await;
        let problem = assert_problem_type(response, 422, "not-bookable").await;
        assert_eq!(problem["detail"], "the appointment must start in the future");
        assert_eq!(appointment(&app, secretary, &moved).await, moved, "nothing changed");
        let moved = app.reschedule(&secretary.token, id, day_at(3, 11, 15), None).await;
        assert_eq!(span(&moved), (day_at(3, 11, 15), day_at(3, 11, 45)));
        for socket in [&mut doctor_socket, &mut ann_socket] {
            let told = socket.notification().await;
            assert_appointment_notification(&told, "appointment.rescheduled", &booked, secretary);
        }

        // Ann moves it herself, well ahead: the doctor is told, she is not.
        let moved = app.reschedule(&clinic.ann.token, id, day_at(3, 14, 0), Some(day_at(3, 14, 20))).await;
        assert_eq!(span(&moved), (day_at(3, 14, 0), day_at(3, 14, 20)));
        let told = doctor_socket.notification().await;
        assert_appointment_notification(&told, "appointment.rescheduled", &booked, &clinic.ann);
        ann_socket.assert_quiet().await;

        // No visit note before the patient is seen, and a note that is not valid either is told
        // so only once the visit is under way.
        let note = json!({ "body": "BP 130/85. Continue treatment." });
        let response = app.post_json(&visit_note_path(id), adams.token(), &note).await;
        assert_problem_type(response, 409, "conflict").await;
        let invalid = json!({ "body": " ", "amends": Uuid::now_v7() });
        let response = app.post_json(&visit_note_path(id), adams.token(), &invalid).await;
        assert_problem_type(response, 409, "conflict").await;

        // The secretary checks Ann in; the doctor may not, nor may Ann.
        for who in [&adams, &clinic.ann] {
            assert_refused(&app, &clinic, &status_call(id, "checked_in"), who, 403, "appointment.status", AuditPatient::Exactly(Some(ann))).await;
        }
        let response = app.try_set_status(&secretary.token, id, "checked_in", None).await;
        assert_eq!(response.status(), 200);
        let request_id = header(&response, "x-request-id").unwrap();
        let checked_in: Value = response.json().await.unwrap();
        assert_appointment_view(&checked_in);
        assert_eq!(checked_in["status"], "checked_in");
        clinic.assert_allowed(&app, &request_id, secretary, "appointment.status", "role", ann).await;
        let response = app.post_json(&visit_note_path(id), adams.token(), &note).await;
        assert_problem_type(response, 409, "conflict").await;
        // A checked-in appointment keeps its time.
        let response = app.try_reschedule(&secretary.token, id, day_at(3, 15, 0), None).await;
        assert_problem_type(response, 409, "conflict").await;

        // The doctor starts the visit (the secretary may not) and writes the note.
        assert_refused(&app, &clinic, &status_call(id, "in_progress"), secretary, 403, "appointment.status", AuditPatient::Exactly(Some(ann))).await;
        app.set_status(&adams.token, id, "in_progress", None).await;
        let response = app
            .post_json(&visit_note_path(id), adams.token(), &json!({ "body": "x", "amends": Uuid::now_v7() }))
            .await;
        let problem = assert_problem_type(response, 422, "validation").await;
        assert!(fields(&problem).contains("amends"), "{problem}");
        let response = app.post_json(&visit_note_path(id), adams.token(), &json!({})).await;
        let problem = assert_problem_type(response, 422, "validation").await;
        assert_eq!(fields(&problem), strings(&["body"]));
        let response = app.post_json(&visit_note_path(id), adams.token(), &note).await;
        assert_eq!(response.status(), 201);
        let request_id = header(&response, "x-request-id").unwrap();
        let written: Value = response.json().await.unwrap();
        clinic.assert_allowed(&app, &request_id, &adams, "note.create", "care_team", ann).await;
        assert_eq!(written["appointment_id"], json!(id));
        assert_eq!(written["patient_id"], json!(ann));
        assert_eq!(written["author"]["id"], json!(adams.id));
        assert_eq!(written["kind"], "consultation");
        assert_eq!(written["body"], note["body"]);
        assert!(written["amends"].is_null());
        // One note per appointment.
        let response = app.post_json(&visit_note_path(id), adams.token(), &note).await;
        assert_problem_type(response, 409, "conflict").await;
        // Another doctor, even on Ann's care team, is told there is no such appointment.
        assert_refused(&app, &clinic, &Call::post(visit_note_path(id), note.clone()), &clinic.doctor, 404, "note.create", AuditPatient::Exactly(Some(ann))).await;
        // The note is in Ann's record, linked to the appointment.
        let notes = read(&app, &format!("{}?limit=100", notes_path(ann)), &adams).await;
        let listed_notes = notes["items"].as_array().unwrap();
        assert_eq!(listed_notes.len(), 2, "{notes}");
        assert_eq!(listed_notes[0], written, "newest first");
        assert!(listed_notes[1].get("appointment_id").is_none_or(Value::is_null), "{notes}");

        // The doctor completes the visit: nobody is told; the doctor stays on the care team
        // for thirty days.
        let completed = app.set_status(&adams.token, id, "completed", None).await;
        let member = membership(&app, &clinic, ann, &booked).await;
        let until = instant(&member["ended_at"]);
        let expected = instant(&completed["updated_at"]) + Duration::days(30);
        assert!((until - expected).abs() <= Duration::seconds(1), "{member} vs {completed}");
        assert_eq!(member["current"], true);
        assert_eq!(app.get(&medical_path(ann), adams.token()).await.status(), 200);
        // A completed appointment is final.
        for (who, status) in [(&adams, "cancelled"), (secretary, "no_show"), (secretary, "checked_in")] {
            invalid_transition(&app, who, id, status, (status == "cancelled").then_some("late")).await;
        }
        let response = app.try_reschedule(&secretary.token, id, day_at(3, 15, 0), None).await;
        assert_problem_type(response, 409, "conflict").await;
        // The visit note may still be written after completion, but there is one already.
        let response = app.post_json(&visit_note_path(id), adams.token(), &note).await;
        assert_problem_type(response, 409, "conflict").await;

        // The history keeps every change, oldest first.
        let response = app.get(&history_path(id), adams.token()).await;
        assert_eq!(response.status(), 200);
        let request_id = header(&response, "x-request-id").unwrap();
        let history: Value = response.json().await.unwrap();
        clinic.assert_allowed(&app, &request_id, &adams, "appointment.history", "appointment", ann).await;
        assert_eq!(keys(&history), ["items"].into());
        let items = history["items"].as_array().unwrap();
        let summary: Vec<(String, String, Value, OffsetDateTime, OffsetDateTime)> = items
            .iter()
            .map(|item| {
                let mut expected_keys: BTreeSet<&str> =
                    ["at", "actor_id", "actor_name", "change", "status", "start", "end"].into();
                if item.get("reason").is_some() {
                    expected_keys.insert("reason");
                }
                assert_eq!(keys(item), expected_keys, "{item}");
                let (start, end) = span(item);
                (
                    item["change"].as_str().unwrap().to_owned(),
                    item["status"].as_str().unwrap().to_owned(),
                    item["actor_id"].clone(),
                    start,
                    end,
                )
            })
            .collect();
        let (s, a, d) = (json!(secretary.id), json!(clinic.ann.id), json!(adams.id));
        assert_eq!(
            summary,
            vec![
                ("booked".into(), "booked".into(), s.clone(), nine, nine + Duration::minutes(30)),
                ("rescheduled".into(), "booked".into(), s.clone(), eleven, day_at(3, 11, 30)),
                ("rescheduled".into(), "booked".into(), s.clone(), day_at(3, 11, 15), day_at(3, 11, 45)),
                ("rescheduled".into(), "booked".into(), a, day_at(3, 14, 0), day_at(3, 14, 20)),
                ("status".into(), "checked_in".into(), s.clone(), day_at(3, 14, 0), day_at(3, 14, 20)),
                ("status".into(), "in_progress".into(), d.clone(), day_at(3, 14, 0), day_at(3, 14, 20)),
                ("status".into(), "completed".into(), d, day_at(3, 14, 0), day_at(3, 14, 20)),
            ]
        );
        assert_eq!(items[0]["actor_name"], "Test sec.sarah");
        for pair in items.windows(2) {
            assert!(instant(&pair[0]["at"]) <= instant(&pair[1]["at"]));
        }
        for who in [&clinic.ann, secretary] {
            assert_eq!(read(&app, &history_path(id), who).await, history, "as {}", who.username);
        }

        // What the sockets received is what the notification lists hold; nothing more came.
        doctor_socket.assert_quiet().await;
        ann_socket.assert_quiet().await;
        secretary_socket.assert_quiet().await;
        assert_eq!(app.all_notifications(&adams.token).await, doctor_socket.received());
        assert_eq!(app.all_notifications(&clinic.ann.token).await, ann_socket.received());
        assert_eq!(doctor_socket.received().len(), 5);
        assert_eq!(ann_socket.received().len(), 3);
        assert!(app.all_notifications(&secretary.token).await.is_empty());
    }

    async fn a_booking_in_the_way_of_others_lists_every_one_of_them(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let secretary = &clinic.secretary;
        let (adams, baker) = (
            working_doctor(&app, &clinic, "dr.adams").await,
            working_doctor(&app, &clinic, "dr.baker").await,
        );
        let carol = id_of(&app.create_patient(&secretary.token, &patient_input("Carol Clark")).await);
        let (ann, bob) = (clinic.ann_record, clinic.bob_record);
        let t = |h: u8, m: u8| day_at(2, h, m);

        // Adams sees Ann at 09:00–09:30; Bob sees Baker at 09:30–10:00.
        let with_adams = app.book(&secretary.token, &booking(adams.id, ann, t(9, 0), None)).await;
        let with_baker = app.book(&secretary.token, &booking(baker.id, bob, t(9, 30), None)).await;
        let a = (uuid_of(&with_adams), t(9, 0), t(9, 30));
        let b = (uuid_of(&with_baker), t(9, 30), t(10, 0));
        let with = |c: (Uuid, OffsetDateTime, OffsetDateTime), w: &str| (c.0, c.1, c.2, w.to_owned());

        // Adams with Bob at 09:15–09:45: the doctor is busy, and so is the patient.
        let response = app.try_book(&secretary.token, &booking(adams.id, bob, t(9, 15), Some(t(9, 45)))).await;
        assert_eq!(assert_conflicts(response).await, vec![with(a, "doctor"), with(b, "patient")]);
        // Adams with Ann inside her own appointment: both.
        let response = app.try_book(&secretary.token, &booking(adams.id, ann, t(9, 10), Some(t(9, 20)))).await;
        assert_eq!(assert_conflicts(response).await, vec![with(a, "both")]);
        // Every way of overlapping Adams' 09:00–09:30 with Carol.
        for (start, end) in [
            (t(9, 0), t(9, 30)),
            (t(9, 5), t(9, 25)),
            (t(8, 45), t(9, 15)),
            (t(9, 15), t(9, 45)),
            (t(8, 30), t(10, 0)),
            (t(9, 29), t(9, 59)),
        ] {
            let response = app.try_book(&secretary.token, &booking(adams.id, carol, start, Some(end))).await;
            assert_eq!(assert_conflicts(response).await, vec![with(a, "doctor")], "{start}–{end}");
        }
        // A patient booking herself is told of her own appointments only by time.
        let response = app.try_book(&clinic.ann.token, &booking(baker.id, ann, t(9, 0), None)).await;
        assert_eq!(assert_conflicts(response).await, vec![with(a, "patient")]);

        // Nothing was written, and nobody was told of the refusals.
        assert_eq!(listed(&app, secretary, "").await, vec![a.0, b.0]);
        assert_eq!(app.all_notifications(&adams.token).await.len(), 1);
        assert_eq!(app.all_notifications(&baker.token).await.len(), 1, "Bob's booking only");

        // Touching is not overlapping.
        let before = app.book(&secretary.token, &booking(adams.id, carol, t(8, 30), None)).await;
        let after = app.book(&secretary.token, &booking(adams.id, carol, t(10, 0), Some(t(10, 10)))).await;
        app.book(&secretary.token, &booking(adams.id, ann, t(9, 30), None)).await;
        assert_eq!(span(&before), (t(8, 30), t(9, 0)));
        assert_eq!(span(&after), (t(10, 0), t(10, 10)));

        // Cancelled and missed appointments hold no time.
        app.set_status(&secretary.token, a.0, "cancelled", Some("Feeling better")).await;
        app.set_status(&secretary.token, b.0, "no_show", None).await;
        app.book(&secretary.token, &booking(adams.id, bob, t(9, 0), None)).await;
        let taken = app.book(&secretary.token, &booking(baker.id, carol, t(9, 30), Some(t(9, 45)))).await;
        // A conflict lists only active appointments, each once, by start.
        let response = app.try_book(&secretary.token, &booking(baker.id, bob, t(8, 0), Some(t(10, 0)))).await;
        let conflicts = assert_conflicts(response).await;
        let starts: Vec<_> = conflicts.iter().map(|c| c.1).collect();
        assert_eq!(starts, vec![t(9, 0), t(9, 30)], "{conflicts:?}");
        assert_eq!(conflicts[0].3, "patient");
        assert_eq!(conflicts[1], with((uuid_of(&taken), t(9, 30), t(9, 45)), "doctor"));
    }

    async fn twenty_bookings_racing_for_one_slot_leave_exactly_one(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let adams = working_doctor(&app, &clinic, "dr.adams").await;
        let mut patients = Vec::new();
        for i in 0..20 {
            let input = patient_input(&format!("Patient Number{i}"));
            patients.push(id_of(&app.create_patient(&clinic.secretary.token, &input).await));
        }
        let slot = day_at(5, 10, 0);
        let inputs: Vec<Value> = patients.iter().map(|p| booking(adams.id, *p, slot, None)).collect();
        let responses = join_all(inputs.iter().map(|input| app.try_book(&clinic.secretary.token, input))).await;

        let mut won = Vec::new();
        let mut lost = Vec::new();
        for response in responses {
            match response.status().as_u16() {
                201 => won.push(response.json::<Value>().await.unwrap()),
                409 => lost.push(assert_conflicts(response).await),
                other => panic!("a booking answered {other}: {}", response.text().await.unwrap()),
            }
        }
        assert_eq!(won.len(), 1, "exactly one booking wins");
        assert_eq!(lost.len(), 19);
        let winner = uuid_of(&won[0]);
        for conflicts in &lost {
            assert_eq!(
                conflicts,
                &vec![(winner, slot, slot + Duration::minutes(30), "doctor".to_owned())]
            );
        }
        assert_eq!(listed(&app, &clinic.secretary, &format!("doctor_id={}", adams.id)).await, vec![winner]);
        let slots = app.free_slots(&adams.token, adams.id, day_at(5, 0, 0), day_at(6, 0, 0)).await;
        assert!(!slots.iter().any(|(s, _)| *s == slot));
        assert_eq!(app.all_notifications(&adams.token).await.len(), 1);
    }

    async fn bookings_must_fit_the_doctors_working_time(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let secretary = &clinic.secretary;
        let adams = working_doctor(&app, &clinic, "dr.adams").await;
        let ann = clinic.ann_record;
        app.work_every_day(&secretary.token, adams.id, "08:00", "12:00").await;
        app.add_time_off(&adams.token, adams.id, day_at(2, 10, 0), day_at(2, 11, 0), Some("Dentist")).await;

        let unavailable = |start: OffsetDateTime, end: Option<OffsetDateTime>, detail: &'static str| {
            assert_unavailable(&app, &clinic.secretary, booking(adams.id, ann, start, end), detail)
        };
        unavailable(day_at(-1, 9, 0), None, "the appointment must start in the future").await;
        unavailable(whole_minute(OffsetDateTime::now_utc()) - Duration::minutes(1), None, "the appointment must start in the future").await;
        unavailable(day_at(367, 9, 0), None, "the appointment must start within 366 days").await;
        unavailable(day_at(2, 7, 30), None, "the doctor does not work at that time").await;
        unavailable(day_at(2, 11, 45), None, "the doctor does not work at that time").await;
        unavailable(day_at(2, 11, 50), Some(day_at(2, 12, 5)), "the doctor does not work at that time").await;
        unavailable(day_at(2, 12, 0), None, "the doctor does not work at that time").await;
        unavailable(day_at(2, 10, 0), None, "the doctor is off at that time").await;
        unavailable(day_at(2, 9, 45), None, "the doctor is off at that time").await;
        unavailable(day_at(2, 10, 50), Some(day_at(2, 11, 10)), "the doctor is off at that time").await;
        assert!(listed(&app, secretary, "").await.is_empty());
        assert!(app.all_notifications(&adams.token).await.is_empty());

        // Right up to the edges is fine; the end defaults to the doctor's length.
        let first = app.book(&secretary.token, &booking(adams.id, ann, day_at(2, 8, 0), None)).await;
        assert_eq!(span(&first), (day_at(2, 8, 0), day_at(2, 8, 30)));
        let response = app
            .call(&Call::put(profile_path(adams.id), json!({ "specializations": [], "appointment_minutes": 45 })), adams.token())
            .await;
        assert_eq!(response.status(), 200);
        let second = app.book(&secretary.token, &booking(adams.id, ann, day_at(2, 9, 15), None)).await;
        assert_eq!(span(&second), (day_at(2, 9, 15), day_at(2, 10, 0)));
        let third = app.book(&secretary.token, &booking(adams.id, ann, day_at(2, 11, 0), Some(day_at(2, 12, 0)))).await;
        assert_eq!(span(&third), (day_at(2, 11, 0), day_at(2, 12, 0)));
        // Up to 366 days ahead.
        app.work_every_day(&secretary.token, adams.id, "00:00", "23:59").await;
        app.book(&secretary.token, &booking(adams.id, ann, day_at(365, 9, 0), None)).await;
        unavailable(whole_minute(OffsetDateTime::now_utc()) + Duration::days(366) + Duration::minutes(2), None, "the appointment must start within 366 days").await;
        // A time that is soon is still in the future.
        let (start, end) = soon();
        app.book(&secretary.token, &booking(adams.id, clinic.bob_record, start, Some(end))).await;
    }

    async fn a_booking_is_validated_whole(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let secretary = &clinic.secretary;
        let adams = working_doctor(&app, &clinic, "dr.adams").await;
        let ann = clinic.ann_record;
        let suspended = working_doctor(&app, &clinic, "dr.gone").await;
        app.update_user(&clinic.admin.token, suspended.id, &json!({ "status": "suspended" })).await;
        let invalid = |body: Value| invalid_booking(&app, &clinic.secretary, body);
        assert_eq!(invalid(json!({})).await, strings(&["doctor_id", "patient_id", "start", "reason"]));
        assert_eq!(
            invalid(json!({ "start": "tomorrow at nine", "end": "later", "reason": "  " })).await,
            strings(&["doctor_id", "patient_id", "start", "end", "reason"])
        );
        let nine = day_at(2, 9, 0);
        let mut body = booking(adams.id, ann, nine, None);
        body["start"] = json!(rfc3339(nine + Duration::seconds(30)));
        assert_eq!(invalid(body).await, strings(&["start"]));
        for end in [nine, nine - Duration::minutes(5), nine + Duration::minutes(481)] {
            assert_eq!(invalid(booking(adams.id, ann, nine, Some(end))).await, strings(&["end"]), "{end}");
        }
        // Times at the ends of the calendar are refused, not computed with.
        for far in ["9999-12-31T23:59:00Z", "0001-01-01T00:00:00Z", "1899-12-31T23:59:00Z"] {
            let mut body = booking(adams.id, ann, nine, None);
            body["start"] = json!(far);
            assert_eq!(invalid(body).await, strings(&["start"]), "{far}");
        }
        let mut body = booking(adams.id, ann, nine, None);
        body["reason"] = json!("r".repeat(501));
        assert_eq!(invalid(body).await, strings(&["reason"]));
        for doctor in [suspended.id, secretary.id, clinic.ann.id, Uuid::now_v7()] {
            assert_eq!(invalid(booking(doctor, ann, nine, None)).await, strings(&["doctor_id"]), "{doctor}");
        }
        let mut body = booking(adams.id, ann, nine, None);
        body["status"] = json!("completed");
        invalid(body).await;
        let call = Call::post(APPOINTMENTS, booking(adams.id, ann, nine, None));
        assert_problem_type(app.call(&call.with_body(Body::broken_json()), secretary.token()).await, 400, "bad-request").await;
        assert_problem_type(app.call(&call.with_body(Body::not_json()), secretary.token()).await, 415, "unsupported-media-type").await;
        clinic.assert_needs_token(&app, &call).await;
        assert!(listed(&app, secretary, "").await.is_empty());
        assert!(app.all_notifications(&adams.token).await.is_empty());

        // A new time is validated the same way.
        let booked = app.book(&secretary.token, &booking(adams.id, ann, nine, None)).await;
        let path = appointment_path(uuid_of(&booked));
        for (body, expected) in [
            (json!({}), vec!["start"]),
            (json!({ "start": "soon" }), vec!["start"]),
            (json!({ "start": rfc3339(nine + Duration::seconds(1)) }), vec!["start"]),
            (json!({ "start": "9999-12-31T23:59:00Z" }), vec!["start"]),
            (json!({ "start": rfc3339(nine), "end": rfc3339(nine) }), vec!["end"]),
            (json!({ "start": rfc3339(nine), "end": rfc3339(nine + Duration::minutes(481)) }), vec!["end"]),
        ] {
            let response = app.patch_json(&path, secretary.token(), &body).await;
            let problem = assert_problem_type(response, 422, "validation").await;
            assert_eq!(fields(&problem), strings(&expected), "{body}: {problem}");
        }
        let response = app.patch_json(&path, secretary.token(), &json!({ "start": rfc3339(nine), "doctor_id": adams.id })).await;
        assert_problem_type(response, 422, "validation").await;
        let patch = Call::patch(path.clone(), json!({ "start": rfc3339(nine) }));
        assert_problem_type(app.call(&patch.with_body(Body::broken_json()), secretary.token()).await, 400, "bad-request").await;
        clinic.assert_needs_token(&app, &patch).await;
        assert_eq!(app.appointment(&secretary.token, uuid_of(&booked)).await, booked, "nothing changed");
        app.set_status(&secretary.token, uuid_of(&booked), "cancelled", Some("Booked by mistake")).await;

        // Other offsets are the same instant; the longest appointment is fine.
        let mut body = booking(adams.id, ann, nine, Some(nine + Duration::minutes(480)));
        body["start"] = json!(rfc3339(nine.to_offset(time::UtcOffset::from_hms(5, 30, 0).unwrap())));
        app.work_every_day(&secretary.token, adams.id, "00:00", "23:59").await;
        let booked = app.book(&secretary.token, &body).await;
        assert_eq!(span(&booked), (nine, nine + Duration::hours(8)));
    }

    async fn patients_book_for_themselves_and_doctors_for_themselves_and_their_patients(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let (house, ann, bob) = (&clinic.doctor, clinic.ann_record, clinic.bob_record);
        app.work_every_day(&clinic.secretary.token, house.id, "08:00", "18:00").await;
        let adams = working_doctor(&app, &clinic, "dr.adams").await;
        let slot = |h: u8| day_at(2, h, 0);
        let create = "appointment.create";

        // A patient books for their own record only; another's is not found.
        for patient in [bob, Uuid::now_v7()] {
            let call = Call::post(APPOINTMENTS, booking(adams.id, patient, slot(9), None));
            assert_refused(&app, &clinic, &call, &clinic.ann, 404, create, AuditPatient::Exactly(Some(patient))).await;
        }
        let no_record = app.patient_account("cy.patient").await;
        let call = Call::post(APPOINTMENTS, booking(adams.id, ann, slot(9), None));
        assert_refused(&app, &clinic, &call, &no_record, 404, create, AuditPatient::Exactly(Some(ann))).await;
        let response = app.try_book(&clinic.ann.token, &booking(adams.id, ann, slot(9), None)).await;
        assert_eq!(response.status(), 201);
        let request_id = header(&response, "x-request-id").unwrap();
        let own: Value = response.json().await.unwrap();
        clinic.assert_allowed(&app, &request_id, &clinic.ann, create, "own_record", ann).await;
        assert_eq!(own["created_by"], json!(clinic.ann.id));
        let told = app.all_notifications(&adams.token).await;
        assert_eq!(told.len(), 1);
        assert_appointment_notification(&told[0], "appointment.booked", &own, &clinic.ann);
        assert!(app.all_notifications(&clinic.ann.token).await.is_empty(), "not the one who booked");

        // A doctor books only with themself...
        let call = Call::post(APPOINTMENTS, booking(adams.id, ann, slot(10), None));
        assert_refused(&app, &clinic, &call, house, 403, create, AuditPatient::Exactly(Some(ann))).await;
        // ...and only for a patient of their care team.
        for (who, patient) in [(house, bob), (&clinic.former, ann), (&clinic.outsider, ann)] {
            app.work_every_day(&clinic.secretary.token, who.id, "08:00", "18:00").await;
            let call = Call::post(APPOINTMENTS, booking(who.id, patient, slot(10), None));
            assert_refused(&app, &clinic, &call, who, 404, create, AuditPatient::Exactly(Some(patient))).await;
        }
        // An emergency access reads a record; it books nothing.
        app.emergency_access(&clinic.outsider.token, ann).await;
        let call = Call::post(APPOINTMENTS, booking(clinic.outsider.id, ann, slot(10), None));
        assert_refused(&app, &clinic, &call, &clinic.outsider, 403, create, AuditPatient::Exactly(Some(ann))).await;
        let response = app.try_book(&house.token, &booking(house.id, ann, slot(10), None)).await;
        assert_eq!(response.status(), 201);
        let request_id = header(&response, "x-request-id").unwrap();
        let by_doctor: Value = response.json().await.unwrap();
        clinic.assert_allowed(&app, &request_id, house, create, "care_team", ann).await;
        let told = app.all_notifications(&clinic.ann.token).await;
        assert_eq!(told.len(), 1);
        assert_appointment_notification(&told[0], "appointment.booked", &by_doctor, house);
        assert!(app.all_notifications(&house.token).await.is_empty(), "not the one who booked");

        // Laboratory staff and administrators never book, whatever they send.
        let call = Call::post(APPOINTMENTS, booking(adams.id, ann, slot(11), None));
        for who in [&clinic.lab, &clinic.admin] {
            assert_refused_whatever_the_body(&app, &clinic, &call, who, 403, create, AuditPatient::Exactly(None)).await;
        }
        assert_eq!(listed(&app, &clinic.secretary, "").await, vec![uuid_of(&own), uuid_of(&by_doctor)]);
    }

    async fn status_changes_follow_the_machine_and_the_roles(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let secretary = &clinic.secretary;
        let adams = working_doctor(&app, &clinic, "dr.adams").await;
        let ann = clinic.ann_record;
        let mut hour = 8;
        let mut next = || {
            hour += 1;
            booking(adams.id, ann, day_at(2, hour, 0), None)
        };
        let first = uuid_of(&app.book(&secretary.token, &next()).await);
        let status = "appointment.status";

        // What a role never sets is refused, and audited.
        for (who, to) in [
            (&adams, "checked_in"),
            (&adams, "no_show"),
            (&adams, "booked"),
            (&clinic.ann, "checked_in"),
            (&clinic.ann, "no_show"),
            (&clinic.ann, "completed"),
            (secretary, "in_progress"),
            (secretary, "completed"),
            (secretary, "booked"),
        ] {
            assert_refused(&app, &clinic, &status_call(first, to), who, 403, status, AuditPatient::Exactly(Some(ann))).await;
        }
        // What the machine does not allow from here is a conflict.
        invalid_transition(&app, &adams, first, "in_progress", None).await;
        invalid_transition(&app, &adams, first, "completed", None).await;
        // The body: a known status; a reason to cancel, and only then.
        invalid_status(&app, secretary, first, Body::Json(json!({})), "status").await;
        invalid_status(&app, secretary, first, Body::Json(json!({ "status": "done" })), "status").await;
        invalid_status(&app, secretary, first, Body::Json(json!({ "status": 3 })), "status").await;
        invalid_status(&app, secretary, first, Body::Json(json!({ "status": "checked_in", "reason": "early" })), "reason").await;
        for reason in [None, Some(json!("   ")), Some(json!("r".repeat(1001)))] {
            let mut body = json!({ "status": "cancelled" });
            if let Some(reason) = reason {
                body["reason"] = reason;
            }
            invalid_status(&app, secretary, first, Body::Json(body), "reason").await;
        }
        let response = app
            .post_json(&status_path(first), secretary.token(), &json!({ "status": "checked_in", "note": "x" }))
            .await;
        assert_problem_type(response, 422, "validation").await;
        let call = status_call(first, "checked_in");
        assert_problem_type(app.call(&call.with_body(Body::broken_json()), secretary.token()).await, 400, "bad-request").await;
        clinic.assert_needs_token(&app, &call).await;
        assert_eq!(app.appointment(&secretary.token, first).await["status"], "booked", "nothing changed");

        // booked → no_show, by the secretary; final.
        app.set_status(&secretary.token, first, "no_show", None).await;
        invalid_transition(&app, secretary, first, "checked_in", None).await;
        invalid_transition(&app, secretary, first, "cancelled", Some("x")).await;
        let response = app.try_reschedule(&secretary.token, first, day_at(2, 15, 0), None).await;
        let problem = assert_problem_type(response, 409, "conflict").await;
        assert!(problem["detail"].as_str().unwrap().contains("no_show"), "{problem}");

        // booked → checked_in → cancelled, by the secretary, with the reason kept.
        let second = uuid_of(&app.book(&secretary.token, &next()).await);
        app.set_status(&secretary.token, second, "checked_in", None).await;
        invalid_transition(&app, secretary, second, "no_show", None).await;
        invalid_transition(&app, secretary, second, "checked_in", None).await;
        let cancelled = app.set_status(&secretary.token, second, "cancelled", Some("Fire alarm")).await;
        assert_appointment_view(&cancelled);
        assert_eq!(cancelled["cancel_reason"], "Fire alarm");

        // booked → cancelled by its doctor; by its patient.
        for who in [&adams, &clinic.ann] {
            let id = uuid_of(&app.book(&secretary.token, &next()).await);
            let cancelled = app.set_status(&who.token, id, "cancelled", Some("Cannot make it")).await;
            assert_eq!(cancelled["cancel_reason"], "Cannot make it");
            invalid_transition(&app, who, id, "cancelled", Some("again")).await;
        }
        // checked_in → in_progress → completed by the doctor.
        let third = uuid_of(&app.book(&secretary.token, &next()).await);
        app.set_status(&secretary.token, third, "checked_in", None).await;
        invalid_transition(&app, &adams, third, "completed", None).await;
        app.set_status(&adams.token, third, "in_progress", None).await;
        invalid_transition(&app, &adams, third, "cancelled", Some("x")).await;
        invalid_transition(&app, &adams, third, "in_progress", None).await;
        invalid_transition(&app, &clinic.ann, third, "cancelled", Some("x")).await;
        app.set_status(&adams.token, third, "completed", None).await;
        for (who, to) in [(&adams, "cancelled"), (&clinic.ann, "cancelled"), (secretary, "no_show")] {
            invalid_transition(&app, who, third, to, (to == "cancelled").then_some("x")).await;
        }
    }

    async fn a_patient_changes_their_appointment_only_two_hours_ahead(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let secretary = &clinic.secretary;
        let adams = clinic.hire(&app, "dr.adams", "doctor").await;
        app.work_every_day(&secretary.token, adams.id, "00:00", "23:59").await;
        let ann = clinic.ann_record;
        let mut doctor_socket = app.socket(&adams.token).await;
        let mut ann_socket = app.socket(&clinic.ann.token).await;

        // Soon: Ann can neither cancel nor move it; the secretary can.
        let (start, end) = soon();
        let free_before = app.free_slots(&clinic.ann.token, adams.id, start - Duration::hours(1), start + Duration::hours(1)).await;
        let near = app.book(&secretary.token, &booking(adams.id, ann, start, Some(end))).await;
        doctor_socket.notification().await;
        ann_socket.notification().await;
        let response = app.try_set_status(&clinic.ann.token, uuid_of(&near), "cancelled", Some("Stuck in traffic")).await;
        let problem = assert_problem_type(response, 422, "too-late").await;
        assert!(problem["detail"].as_str().unwrap().contains("2 hours"), "{problem}");
        let response = app.try_reschedule(&clinic.ann.token, uuid_of(&near), day_at(3, 9, 0), None).await;
        assert_problem_type(response, 422, "too-late").await;
        assert_eq!(appointment(&app, &clinic.ann, &near).await, near, "nothing changed");
        doctor_socket.assert_quiet().await;

        let cancelled = app.set_status(&secretary.token, uuid_of(&near), "cancelled", Some("Ann phoned")).await;
        for socket in [&mut doctor_socket, &mut ann_socket] {
            let told = socket.notification().await;
            assert_appointment_notification(&told, "appointment.cancelled", &near, secretary);
        }
        // The doctor stays on the care team for thirty days after a cancellation.
        let member = membership(&app, &clinic, ann, &near).await;
        let expected = instant(&cancelled["updated_at"]) + Duration::days(30);
        assert!((instant(&member["ended_at"]) - expected).abs() <= Duration::seconds(1), "{member}");
        // Its time is free again.
        let after_cancelling = app.free_slots(&clinic.ann.token, adams.id, start - Duration::hours(1), start + Duration::hours(1)).await;
        assert_eq!(after_cancelling, free_before);

        // Well ahead, Ann cancels her own: the doctor is told, she is not.
        let later = app.book(&secretary.token, &booking(adams.id, ann, day_at(3, 9, 0), None)).await;
        doctor_socket.notification().await;
        ann_socket.notification().await;
        let cancelled = app.set_status(&clinic.ann.token, uuid_of(&later), "cancelled", Some("Feeling better")).await;
        assert_eq!(cancelled["cancel_reason"], "Feeling better");
        let told = doctor_socket.notification().await;
        assert_appointment_notification(&told, "appointment.cancelled", &later, &clinic.ann);
        ann_socket.assert_quiet().await;

        // The doctor cancels: Ann is told, the doctor is not.
        let third = app.book(&secretary.token, &booking(adams.id, ann, day_at(3, 10, 0), None)).await;
        doctor_socket.notification().await;
        ann_socket.notification().await;
        app.set_status(&adams.token, uuid_of(&third), "cancelled", Some("Called away")).await;
        let told = ann_socket.notification().await;
        assert_appointment_notification(&told, "appointment.cancelled", &third, &adams);
        doctor_socket.assert_quiet().await;
        // The doctor moves one: Ann is told, the doctor is not.
        let moving = app.book(&secretary.token, &booking(adams.id, ann, day_at(3, 13, 0), None)).await;
        doctor_socket.notification().await;
        ann_socket.notification().await;
        let moved = app.reschedule(&adams.token, uuid_of(&moving), day_at(3, 13, 30), None).await;
        assert_eq!(span(&moved), (day_at(3, 13, 30), day_at(3, 14, 0)));
        let told = ann_socket.notification().await;
        assert_appointment_notification(&told, "appointment.rescheduled", &moving, &adams);
        doctor_socket.assert_quiet().await;
        // Status changes other than cancelling tell nobody.
        let fourth = app.book(&secretary.token, &booking(adams.id, ann, day_at(3, 11, 0), None)).await;
        doctor_socket.notification().await;
        ann_socket.notification().await;
        app.set_status(&secretary.token, uuid_of(&fourth), "checked_in", None).await;
        app.set_status(&adams.token, uuid_of(&fourth), "in_progress", None).await;
        app.set_status(&adams.token, uuid_of(&fourth), "completed", None).await;
        let fifth = app.book(&secretary.token, &booking(adams.id, ann, day_at(3, 12, 0), None)).await;
        doctor_socket.notification().await;
        ann_socket.notification().await;
        app.set_status(&secretary.token, uuid_of(&fifth), "no_show", None).await;
        doctor_socket.assert_quiet().await;
        ann_socket.assert_quiet().await;
        assert_eq!(app.all_notifications(&adams.token).await, doctor_socket.received());
        assert_eq!(app.all_notifications(&clinic.ann.token).await, ann_socket.received());
        assert!(app.all_notifications(&secretary.token).await.is_empty());
    }

    async fn listings_show_each_caller_only_their_own(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let secretary = &clinic.secretary;
        let (house, wilson) = (&clinic.doctor, &clinic.outsider);
        for doctor in [house, wilson] {
            app.work_every_day(&secretary.token, doctor.id, "08:00", "18:00").await;
        }
        let (ann, bob) = (clinic.ann_record, clinic.bob_record);
        let a1 = uuid_of(&app.book(&secretary.token, &booking(house.id, ann, day_at(2, 9, 0), None)).await);
        let a2 = uuid_of(&app.book(&secretary.token, &booking(house.id, bob, day_at(2, 10, 0), None)).await);
        let a3 = uuid_of(&app.book(&secretary.token, &booking(wilson.id, ann, day_at(3, 9, 0), None)).await);
        let a4 = uuid_of(&app.book(&secretary.token, &booking(wilson.id, bob, day_at(1, 9, 0), None)).await);
        app.set_status(&secretary.token, a4, "cancelled", Some("Moved away")).await;

        // The secretary sees all, by start, and filters.
        assert_eq!(listed(&app, secretary, "").await, vec![a4, a1, a2, a3]);
        assert_eq!(app.all_pages(APPOINTMENTS, &secretary.token, "", 1).await.iter().map(id_of).collect::<Vec<_>>(), vec![a4, a1, a2, a3]);
        assert_eq!(listed(&app, secretary, &format!("doctor_id={}", house.id)).await, vec![a1, a2]);
        assert_eq!(listed(&app, secretary, &format!("patient_id={bob}")).await, vec![a4, a2]);
        assert_eq!(listed(&app, secretary, "status=cancelled").await, vec![a4]);
        assert_eq!(listed(&app, secretary, "status=booked").await, vec![a1, a2, a3]);
        let (d2, d3) = (day_at(2, 0, 0).date(), day_at(3, 0, 0).date());
        assert_eq!(listed(&app, secretary, &format!("from={d2}&to={d3}")).await, vec![a1, a2]);
        assert_eq!(
            listed(&app, secretary, &format!("from={}&to={}", carehub_tests::schedule::query_time(day_at(2, 9, 15)), carehub_tests::schedule::query_time(day_at(3, 9, 1)))).await,
            vec![a1, a2, a3],
            "overlapping the range"
        );
        // Each patient on the page is one audited read.
        let response = app.get(APPOINTMENTS, secretary.token()).await;
        let request_id = header(&response, "x-request-id").unwrap();
        let events = app.audit_of_request(&clinic.admin.token, &request_id).await;
        let mut patients: Vec<String> = events
            .iter()
            .map(|e| {
                assert_eq!(e["action"], "appointment.list", "{e}");
                assert_eq!(e["outcome"], "allowed", "{e}");
                assert_eq!(e["basis"], "role", "{e}");
                e["patient_id"].as_str().unwrap().to_owned()
            })
            .collect();
        patients.sort();
        let mut expected = vec![ann.to_string(), bob.to_string()];
        expected.sort();
        assert_eq!(patients, expected);

        // A doctor sees their own only, and may not ask for another's.
        assert_eq!(listed(&app, house, "").await, vec![a1, a2]);
        assert_eq!(listed(&app, house, &format!("doctor_id={}", house.id)).await, vec![a1, a2]);
        assert_eq!(listed(&app, house, &format!("patient_id={ann}")).await, vec![a1]);
        assert_eq!(listed(&app, wilson, "").await, vec![a4, a3]);
        assert!(listed(&app, &clinic.former, "").await.is_empty());
        let list = "appointment.list";
        let call = Call::get(format!("{APPOINTMENTS}?doctor_id={}", wilson.id));
        assert_refused(&app, &clinic, &call, house, 403, list, AuditPatient::Exactly(None)).await;
        // A patient sees their own only, and may not ask for another's.
        assert_eq!(listed(&app, &clinic.ann, "").await, vec![a1, a3]);
        assert_eq!(listed(&app, &clinic.ann, &format!("patient_id={ann}")).await, vec![a1, a3]);
        assert_eq!(listed(&app, &clinic.ann, &format!("doctor_id={}", wilson.id)).await, vec![a3]);
        assert_eq!(listed(&app, &clinic.bob, "").await, vec![a4, a2]);
        let call = Call::get(format!("{APPOINTMENTS}?patient_id={bob}"));
        assert_refused(&app, &clinic, &call, &clinic.ann, 403, list, AuditPatient::Exactly(Some(bob))).await;
        let nobody = app.patient_account("cy.patient").await;
        assert!(listed(&app, &nobody, "").await.is_empty());
        // Laboratory staff and administrators list nothing.
        for who in [&clinic.lab, &clinic.admin] {
            assert_refused(&app, &clinic, &Call::get(APPOINTMENTS), who, 403, list, AuditPatient::Exactly(None)).await;
        }
        for query in ["status=late", "doctor_id=x", "patient_id=1", "from=soon", "limit=0", "limit=101", "cursor=nope"] {
            let response = app.get(&format!("{APPOINTMENTS}?{query}"), secretary.token()).await;
            assert_problem_type(response, 400, "bad-request").await;
        }

        // Reading, changing or writing on an appointment of someone else: not found.
        let unrelated = [(&clinic.former, a1), (wilson, a1), (house, a3), (&clinic.bob, a1), (&clinic.ann, a2), (&nobody, a1)];
        for (who, id) in unrelated {
            let patient = if id == a1 || id == a3 { ann } else { bob };
            let p = AuditPatient::Exactly(Some(patient));
            assert_refused(&app, &clinic, &Call::get(appointment_path(id)), who, 404, "appointment.read", p).await;
            assert_refused(&app, &clinic, &Call::get(history_path(id)), who, 404, "appointment.history", p).await;
            let patch = Call::patch(appointment_path(id), json!({ "start": rfc3339(day_at(4, 9, 0)) }));
            assert_refused_whatever_the_body(&app, &clinic, &patch, who, 404, "appointment.reschedule", p).await;
            assert_refused_whatever_the_body(&app, &clinic, &status_call(id, "cancelled"), who, 404, "appointment.status", p).await;
        }
        // An appointment that does not exist.
        let missing = Uuid::now_v7();
        for who in [house, &clinic.ann, secretary] {
            assert_refused(&app, &clinic, &Call::get(appointment_path(missing)), who, 404, "appointment.read", AuditPatient::Exactly(None)).await;
            assert_refused(&app, &clinic, &status_call(missing, "cancelled"), who, 404, "appointment.status", AuditPatient::Exactly(None)).await;
        }
        assert_problem_type(app.get(&appointment_path("nope"), secretary.token()).await, 404, "not-found").await;
        assert_eq!(listed(&app, secretary, "").await, vec![a4, a1, a2, a3], "nothing changed");
    }

    async fn laboratories_and_administrators_are_refused_everything_on_appointments(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let secretary = &clinic.secretary;
        let house = &clinic.doctor;
        app.work_every_day(&secretary.token, house.id, "08:00", "18:00").await;
        let ann = clinic.ann_record;
        let booked = app.book(&secretary.token, &booking(house.id, ann, day_at(2, 9, 0), None)).await;
        let id = uuid_of(&booked);
        let p = AuditPatient::Exactly(Some(ann));
        let calls = [
            (Call::post(APPOINTMENTS, booking(house.id, ann, day_at(2, 10, 0), None)), "appointment.create", AuditPatient::Exactly(None)),
            (Call::get(APPOINTMENTS), "appointment.list", AuditPatient::Exactly(None)),
            (Call::get(appointment_path(id)), "appointment.read", p),
            (Call::get(history_path(id)), "appointment.history", p),
            (Call::patch(appointment_path(id), json!({ "start": rfc3339(day_at(2, 11, 0)) })), "appointment.reschedule", p),
            (status_call(id, "checked_in"), "appointment.status", p),
            (status_call(id, "cancelled"), "appointment.status", p),
            (Call::post(visit_note_path(id), json!({ "body": "Seen." })), "note.create", p),
        ];
        for who in [&clinic.lab, &clinic.admin] {
            for (call, action, patient) in &calls {
                assert_refused_whatever_the_body(&app, &clinic, call, who, 403, action, *patient).await;
            }
            // Whether or not the appointment exists.
            let missing = Uuid::now_v7();
            assert_refused(&app, &clinic, &Call::get(appointment_path(missing)), who, 403, "appointment.read", AuditPatient::Exactly(None)).await;
        }
        // The secretary, the patient and another doctor never write the visit note.
        let note = Call::post(visit_note_path(id), json!({ "body": "Seen." }));
        for who in [secretary, &clinic.ann] {
            assert_refused_whatever_the_body(&app, &clinic, &note, who, 403, "note.create", p).await;
        }
        for (call, _, _) in &calls {
            clinic.assert_needs_token(&app, call).await;
        }
        assert_eq!(appointment(&app, secretary, &booked).await, booked, "nothing changed");
        assert_eq!(app.all_notifications(&house.token).await.len(), 1, "the booking only");
    }
}
