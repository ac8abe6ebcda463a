//! Prescriptions from outside: a doctor of the care team prescribes against the patient's
//! recorded allergies (refused with each match unless overridden, the override audited and
//! shown), replaces, completes and stops; the patient reads their own and is told; a printable
//! page gives one on paper. Every caller who must be refused is, and audited.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use reqwest::Response;
use serde_json::{Value, json};
use uuid::Uuid;

use carehub_tests::clinic::{Call, Clinic, Person};
use carehub_tests::{
    TestApp, assert_problem_type, assert_unauthorized, backend_tests, header, problem_fields,
};

fn prescriptions_path(patient: Uuid) -> String {
    format!("/api/v1/patients/{patient}/prescriptions")
}

fn prescription_path(id: &str) -> String {
    format!("/api/v1/prescriptions/{id}")
}

/// A week of ibuprofen, unless `medication` says otherwise.
fn input(medication: &str) -> Value {
    json!({
        "medication": medication,
        "dose": "400 mg",
        "route": "oral",
        "frequency": "three times a day",
        "duration_days": 7,
        "quantity": 21,
        "refills": 0,
        "instructions": "Take with food.\nStop if your stomach hurts."
    })
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("an object was expected, got {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn id_text(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

/// Asserts exactly the documented fields of a prescription.
fn assert_view(view: &Value) {
    let expected: BTreeSet<&str> = [
        "id",
        "patient",
        "prescribed_by",
        "medication",
        "dose",
        "route",
        "frequency",
        "duration_days",
        "quantity",
        "refills",
        "instructions",
        "allergy_override",
        "replaces",
        "status",
        "stop_reason",
        "replaced_by",
        "ended_by",
        "ended_at",
        "expires_at",
        "created_at",
    ]
    .into();
    assert_eq!(keys(view), expected, "{view}");
    assert_eq!(
        keys(&view["patient"]),
        ["date_of_birth", "full_name", "id", "mrn", "sex"].into()
    );
}

/// `doctor` prescribes `body` for `patient`, asserting a 201; returns the prescription and the
/// request's id.
async fn prescribe(app: &TestApp, doctor: &Person, patient: Uuid, body: &Value) -> (Value, String) {
    let response = app
        .post_json(&prescriptions_path(patient), doctor.token(), body)
        .await;
    assert_eq!(response.status(), 201, "{}", doctor.username);
    let location = header(&response, "location").expect("a Location");
    let request_id = header(&response, "x-request-id").expect("a request id");
    let view: Value = response.json().await.unwrap();
    assert_view(&view);
    assert_eq!(location, prescription_path(&id_text(&view)));
    (view, request_id)
}

/// The ids of every prescription of `patient` that `who` lists with `filter`, two a page.
async fn listed(app: &TestApp, who: &Person, patient: Uuid, filter: &str) -> Vec<String> {
    app.all_pages(&prescriptions_path(patient), &who.token, filter, 2)
        .await
        .iter()
        .map(|v| {
            assert_view(v);
            id_text(v)
        })
        .collect()
}

async fn refused(response: Response, status: u16, slug: &str) -> Value {
    assert_problem_type(response, status, slug).await
}

backend_tests! {
    async fn a_care_team_doctor_prescribes_and_the_patient_reads_it_and_is_told(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let (view, request_id) =
            prescribe(&app, &clinic.doctor, clinic.ann_record, &input("Ibuprofen")).await;
        let id = id_text(&view);
        assert_eq!(view["status"], "active");
        assert_eq!(view["medication"], "Ibuprofen");
        assert_eq!(view["route"], "oral");
        assert_eq!((view["duration_days"].clone(), view["quantity"].clone()), (json!(7), json!(21)));
        assert_eq!(view["instructions"], "Take with food.\nStop if your stomach hurts.");
        assert_eq!(view["patient"]["full_name"], "Ann Archer");
        assert_eq!(view["prescribed_by"]["id"], json!(clinic.doctor.id));
        assert_eq!(view["prescribed_by"]["full_name"], "Test dr.house");
        assert!(view["allergy_override"].is_null());
        let created: jiff::Timestamp = view["created_at"].as_str().unwrap().parse().unwrap();
        let expires: jiff::Timestamp = view["expires_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(expires.duration_since(created).as_hours(), 7 * 24);
        clinic
            .assert_allowed(&app, &request_id, &clinic.doctor, "prescription.create", "care_team", clinic.ann_record)
            .await;

        let path = prescription_path(&id);
        let by_doctor = clinic
            .assert_read(&app, &path, &clinic.doctor, "prescription.read", "care_team", clinic.ann_record)
            .await;
        assert_eq!(by_doctor, view);
        let by_ann = clinic
            .assert_read(&app, &path, &clinic.ann, "prescription.read", "own_record", clinic.ann_record)
            .await;
        assert_eq!(by_ann, view);
        let page = clinic
            .assert_read(
                &app,
                &prescriptions_path(clinic.ann_record),
                &clinic.ann,
                "prescription.list",
                "own_record",
                clinic.ann_record,
            )
            .await;
        assert_eq!(page["items"], json!([view]));

        let told: Vec<Value> = app
            .all_notifications(&clinic.ann.token)
            .await
            .into_iter()
            .filter(|n| n["kind"] == "prescription.created")
            .collect();
        assert_eq!(told.len(), 1, "{told:?}");
        assert_eq!(told[0]["data"]["prescription_id"], id.as_str());
        let data = told[0]["data"].to_string();
        for secret in ["Ibuprofen", "Ann", "400 mg"] {
            assert!(!data.contains(secret), "{secret} in {data}");
        }

        // The expiry job waits for the end of the last day; administrators see it by its ids
        // only.
        let jobs = app
            .all_pages("/api/v1/admin/jobs", &clinic.admin.token, "kind=prescription.expire", 10)
            .await;
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        assert_eq!(jobs[0]["args"]["prescription"], id.as_str());
        let run_at: jiff::Timestamp = jobs[0]["run_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(run_at, expires);
    }

    async fn the_printable_page_names_the_clinic_the_doctor_and_the_date(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let (view, _) = prescribe(
            &app,
            &clinic.doctor,
            clinic.ann_record,
            &input("Ibuprofen <b>forte</b>"),
        )
        .await;
        let path = format!("{}/print", prescription_path(&id_text(&view)));
        for who in [&clinic.doctor, &clinic.ann] {
            let response = app.get(&path, who.token()).await;
            assert_eq!(response.status(), 200, "{}", who.username);
            assert_eq!(header(&response, "content-type").unwrap(), "text/html; charset=utf-8");
            assert_eq!(header(&response, "cache-control").unwrap(), "no-store");
            let policy = header(&response, "content-security-policy").unwrap();
            assert!(policy.starts_with("default-src 'none'"), "{policy}");
            let request_id = header(&response, "x-request-id").unwrap();
            let page = response.text().await.unwrap();
            let created: jiff::Timestamp = view["created_at"].as_str().unwrap().parse().unwrap();
            let day = created.to_zoned(jiff::tz::TimeZone::UTC).strftime("%-d %B %Y").to_string();
            for expected in [
                "CareHub Clinic",
                "Test dr.house",
                "Ann Archer",
                "1990-02-28",
                "Ibuprofen &lt;b&gt;forte&lt;/b&gt;",
                "400 mg",
                "7 days",
                day.as_str(),
            ] {
                assert!(page.contains(expected), "{expected} in {page}");
            }
            assert!(!page.contains("<b>forte"), "escaped: {page}");
            let basis = if who.role == "patient" { "own_record" } else { "care_team" };
            clinic
                .assert_allowed(&app, &request_id, who, "prescription.read", basis, clinic.ann_record)
                .await;
        }
        for who in [&clinic.secretary, &clinic.lab, &clinic.admin] {
            clinic
                .assert_refused(&app, &Call::get(&path), who, 403, "prescription.read", None)
                .await;
        }
        for who in [&clinic.outsider, &clinic.former, &clinic.bob] {
            clinic
                .assert_refused(&app, &Call::get(&path), who, 404, "prescription.read", Some(clinic.ann_record))
                .await;
        }
        assert_unauthorized(app.get(&path, None).await).await;
    }

    async fn a_medication_matching_a_recorded_allergy_is_refused_unless_overridden(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        // Ann's recorded allergy is to penicillin.
        let path = prescriptions_path(clinic.ann_record);
        for medication in ["Amoxicillin 500 mg", "PENICILLIN V"] {
            let response = app.post_json(&path, clinic.doctor.token(), &input(medication)).await;
            let problem = refused(response, 409, "allergy-conflict").await;
            let expected = if medication.starts_with("Amox") {
                json!([{ "substance": "penicillin", "reason": "drug_class", "drug_class": "penicillins" }])
            } else {
                json!([{ "substance": "penicillin", "reason": "same_substance", "drug_class": null }])
            };
            assert_eq!(problem["allergy_matches"], expected, "{problem}");
            assert!(problem["detail"].as_str().unwrap().contains("override_reason"), "{problem}");
        }
        assert!(listed(&app, &clinic.doctor, clinic.ann_record, "").await.is_empty());

        let mut body = input("Amoxicillin 500 mg");
        body["override_reason"] = json!("Tolerated amoxicillin in 2024; rash was to something else.");
        let (view, request_id) = prescribe(&app, &clinic.doctor, clinic.ann_record, &body).await;
        assert_eq!(
            view["allergy_override"],
            json!({
                "reason": "Tolerated amoxicillin in 2024; rash was to something else.",
                "matches": [{ "substance": "penicillin", "reason": "drug_class", "drug_class": "penicillins" }]
            })
        );
        let events = app.audit_of_request(&clinic.admin.token, &request_id).await;
        let actions: BTreeSet<&str> = events.iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["prescription.allergy_override", "prescription.create"].into(), "{events:?}");
        assert!(events.iter().all(|e| e["outcome"] == "allowed" && e["basis"] == "care_team"));

        // No allergy, no override kept.
        let mut body = input("Paracetamol");
        body["override_reason"] = json!("Just in case.");
        let (view, _) = prescribe(&app, &clinic.doctor, clinic.ann_record, &body).await;
        assert!(view["allergy_override"].is_null(), "{view}");
    }

    async fn only_doctors_of_the_care_team_prescribe(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let path = prescriptions_path(clinic.ann_record);
        let call = Call::post(&path, input("Ibuprofen"));
        for who in [&clinic.secretary, &clinic.lab, &clinic.ann, &clinic.admin] {
            clinic
                .assert_refused_whatever_the_body(&app, &call, who, 403, "prescription.create", None)
                .await;
        }
        for who in [&clinic.outsider, &clinic.former] {
            clinic
                .assert_refused(&app, &call, who, 404, "prescription.create", Some(clinic.ann_record))
                .await;
        }
        let bob = Call::post(prescriptions_path(clinic.bob_record), input("Ibuprofen"));
        clinic
            .assert_refused(&app, &bob, &clinic.doctor, 404, "prescription.create", Some(clinic.bob_record))
            .await;
        // Emergency access lets a doctor read, never prescribe.
        app.emergency_access(&clinic.outsider.token, clinic.ann_record).await;
        clinic
            .assert_refused(&app, &call, &clinic.outsider, 403, "prescription.create", Some(clinic.ann_record))
            .await;
        clinic.assert_needs_token(&app, &call).await;
        let nobody = app
            .post_json(&prescriptions_path(Uuid::now_v7()), clinic.doctor.token(), &input("Ibuprofen"))
            .await;
        refused(nobody, 404, "not-found").await;
        assert!(listed(&app, &clinic.doctor, clinic.ann_record, "").await.is_empty());
    }

    async fn secretaries_the_laboratory_and_administrators_never_see_prescriptions(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let (view, _) = prescribe(&app, &clinic.doctor, clinic.ann_record, &input("Ibuprofen")).await;
        let one = Call::get(prescription_path(&id_text(&view)));
        let list = Call::get(prescriptions_path(clinic.ann_record));
        for who in [&clinic.secretary, &clinic.lab, &clinic.admin] {
            clinic.assert_refused(&app, &one, who, 403, "prescription.read", None).await;
            clinic.assert_refused(&app, &list, who, 403, "prescription.list", None).await;
        }
        for who in [&clinic.outsider, &clinic.former, &clinic.bob] {
            clinic
                .assert_refused(&app, &one, who, 404, "prescription.read", Some(clinic.ann_record))
                .await;
            clinic
                .assert_refused(&app, &list, who, 404, "prescription.list", Some(clinic.ann_record))
                .await;
        }
        assert_unauthorized(app.get(&one.path, None).await).await;
        assert_unauthorized(app.get(&list.path, None).await).await;
        let unknown = app.get(&prescription_path(&Uuid::now_v7().to_string()), clinic.doctor.token()).await;
        refused(unknown, 404, "not-found").await;

        // Under emergency access, a doctor reads them, audited as such.
        app.emergency_access(&clinic.outsider.token, clinic.ann_record).await;
        let read = clinic
            .assert_read(&app, &one.path, &clinic.outsider, "prescription.read", "emergency_access", clinic.ann_record)
            .await;
        assert_eq!(read, view);
    }

    async fn a_prescription_is_never_edited_but_replaced_completed_or_stopped(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let (first, _) = prescribe(&app, &clinic.doctor, clinic.ann_record, &input("Ibuprofen")).await;
        let first_id = id_text(&first);
        let mut body = input("Ibuprofen");
        body["dose"] = json!("200 mg");
        body["replaces"] = json!(first_id);
        let (second, request_id) = prescribe(&app, &clinic.doctor, clinic.ann_record, &body).await;
        let second_id = id_text(&second);
        assert_eq!(second["replaces"], first_id.as_str());
        let events = app.audit_of_request(&clinic.admin.token, &request_id).await;
        let actions: BTreeSet<&str> = events.iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["prescription.create", "prescription.end"].into());
        let old: Value = app.get(&prescription_path(&first_id), clinic.ann.token()).await.json().await.unwrap();
        assert_eq!(old["status"], "stopped");
        assert_eq!(old["replaced_by"], second_id.as_str());
        assert_eq!(old["dose"], "400 mg", "the replaced one is kept as written");
        assert_eq!(old["ended_by"], json!(clinic.doctor.id));
        // Replaced once: again is a conflict, and a prescription of another patient is not one
        // to replace.
        let again = app.post_json(&prescriptions_path(clinic.ann_record), clinic.doctor.token(), &body).await;
        refused(again, 409, "conflict").await;
        app.add_member(&clinic.admin.token, clinic.bob_record, clinic.doctor.id).await;
        let (bob_rx, _) = prescribe(&app, &clinic.doctor, clinic.bob_record, &input("Ibuprofen")).await;
        let mut cross = input("Ibuprofen");
        cross["replaces"] = json!(id_text(&bob_rx));
        let response = app.post_json(&prescriptions_path(clinic.ann_record), clinic.doctor.token(), &cross).await;
        let problem = refused(response, 422, "validation").await;
        assert_eq!(problem_fields(&problem), ["replaces"]);

        // Complete once.
        let complete = format!("{}/complete", prescription_path(&second_id));
        for who in [&clinic.secretary, &clinic.lab, &clinic.ann, &clinic.admin] {
            clinic
                .assert_refused(&app, &Call::post(&complete, json!({})), who, 403, "prescription.end", None)
                .await;
        }
        for who in [&clinic.outsider, &clinic.former] {
            clinic
                .assert_refused(&app, &Call::post(&complete, json!({})), who, 404, "prescription.end", Some(clinic.ann_record))
                .await;
        }
        let response = app.post_json(&complete, clinic.doctor.token(), &json!({})).await;
        assert_eq!(response.status(), 200);
        let done: Value = response.json().await.unwrap();
        assert_eq!(done["status"], "completed");
        assert!(done["ended_at"].is_string());
        refused(app.post_json(&complete, clinic.doctor.token(), &json!({})).await, 409, "conflict").await;

        // Stop with a reason; the expiry job goes with it.
        let (third, _) = prescribe(&app, &clinic.doctor, clinic.ann_record, &input("Naproxen")).await;
        let stop = format!("{}/stop", prescription_path(&id_text(&third)));
        for (body, fields) in [(json!({}), vec!["reason"]), (json!({ "reason": " " }), vec!["reason"])] {
            let response = app.post_json(&stop, clinic.doctor.token(), &body).await;
            let problem = refused(response, 422, "validation").await;
            assert_eq!(problem_fields(&problem), fields);
        }
        clinic
            .assert_refused_whatever_the_body(&app, &Call::post(&stop, json!({ "reason": "x" })), &clinic.ann, 403, "prescription.end", None)
            .await;
        let response = app.post_json(&stop, clinic.doctor.token(), &json!({ "reason": "Stomach pain" })).await;
        assert_eq!(response.status(), 200);
        let stopped: Value = response.json().await.unwrap();
        assert_eq!((stopped["status"].clone(), stopped["stop_reason"].clone()), (json!("stopped"), json!("Stomach pain")));
        refused(app.post_json(&stop, clinic.doctor.token(), &json!({ "reason": "Again" })).await, 409, "conflict").await;
        let pending = app
            .all_pages("/api/v1/admin/jobs", &clinic.admin.token, "kind=prescription.expire&state=scheduled", 10)
            .await;
        let pending: Vec<&str> = pending.iter().map(|j| j["args"]["prescription"].as_str().unwrap()).collect();
        assert_eq!(pending, [id_text(&bob_rx)], "only Bob's is still active");

        // All stay readable, newest first, and can be listed by status.
        assert_eq!(
            listed(&app, &clinic.ann, clinic.ann_record, "").await,
            [id_text(&third), second_id.clone(), first_id.clone()]
        );
        assert_eq!(listed(&app, &clinic.doctor, clinic.ann_record, "status=stopped").await, [id_text(&third), first_id]);
        assert_eq!(listed(&app, &clinic.doctor, clinic.ann_record, "status=completed").await, [second_id]);
        let bad = app.get(&format!("{}?status=paused", prescriptions_path(clinic.ann_record)), clinic.doctor.token()).await;
        refused(bad, 400, "bad-request").await;
    }

    async fn an_invalid_prescription_is_refused_with_every_field_listed(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let path = prescriptions_path(clinic.ann_record);
        for (body, expected) in [
            (
                json!({}),
                vec!["medication", "dose", "frequency", "route", "refills", "instructions"],
            ),
            (
                json!({
                    "medication": "x".repeat(201),
                    "dose": "",
                    "route": "by mouth",
                    "frequency": "daily\u{0007}",
                    "duration_days": 0,
                    "quantity": 10_001,
                    "refills": 13,
                    "instructions": "ok",
                    "override_reason": ""
                }),
                vec![
                    "medication", "dose", "frequency", "route", "duration_days", "quantity",
                    "refills", "override_reason",
                ],
            ),
        ] {
            let response = app.post_json(&path, clinic.doctor.token(), &body).await;
            let problem = refused(response, 422, "validation").await;
            assert_eq!(problem_fields(&problem), expected, "{body}");
        }
        let mut unknown = input("Ibuprofen");
        unknown["colour"] = json!("blue");
        let response = app.post_json(&path, clinic.doctor.token(), &unknown).await;
        assert!(matches!(response.status().as_u16(), 400 | 422), "{}", response.status());
        let broken = app.post_json("/api/v1/patients/not-a-uuid/prescriptions", clinic.doctor.token(), &input("x")).await;
        assert!(broken.status().is_client_error());
        assert!(listed(&app, &clinic.doctor, clinic.ann_record, "").await.is_empty());
    }
}
