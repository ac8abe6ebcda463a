//! Clinical data over HTTP: medical information, notes (newest first, by kind, corrected by
//! amendments), care teams (added, ended, kept as history) and emergency access (reading for a
//! while, never writing, expiring), with every caller who must be refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use carehub_tests::clinic::{
    Body, Call, Clinic, EMERGENCY_ACCESSES, EMERGENCY_REASON, Person, care_team_path,
    emergency_path, ids, medical_input, medical_path, member_path, notes_path, patient_input,
    patient_path,
};
use carehub_tests::{TestApp, assert_problem_type, backend_tests, header, id_of, problem_fields};

fn time_of(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(value.as_str().expect("a time"), &Rfc3339)
        .unwrap_or_else(|_| panic!("{value} is not RFC 3339"))
}

fn fields(problem: &Value) -> BTreeSet<String> {
    problem_fields(problem).into_iter().collect()
}

fn strings(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|&s| s.to_owned()).collect()
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("an object was expected, got {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn assert_note_view(note: &Value) {
    assert_eq!(
        keys(note),
        [
            "id",
            "patient_id",
            "author",
            "kind",
            "body",
            "amends",
            "created_at"
        ]
        .into(),
        "{note}"
    );
    assert_eq!(keys(&note["author"]), ["id", "full_name"].into(), "{note}");
    time_of(&note["created_at"]);
}

fn assert_member_view(member: &Value) {
    assert_eq!(
        keys(member),
        [
            "id",
            "doctor",
            "started_at",
            "ended_at",
            "added_by",
            "ended_by",
            "current",
            "referral_id"
        ]
        .into(),
        "{member}"
    );
    assert_eq!(
        keys(&member["doctor"]),
        ["id", "full_name"].into(),
        "{member}"
    );
    time_of(&member["started_at"]);
}

fn assert_access_view(access: &Value) {
    assert_eq!(
        keys(access),
        [
            "id",
            "patient_id",
            "doctor",
            "reason",
            "granted_at",
            "expires_at",
            "active"
        ]
        .into(),
        "{access}"
    );
    assert_eq!(
        keys(&access["doctor"]),
        ["id", "full_name"].into(),
        "{access}"
    );
}

/// The items of a list response read as `who`, asserting 200.
async fn items(app: &TestApp, path: &str, who: &Person) -> Vec<Value> {
    let response = app.get(path, who.token()).await;
    assert_eq!(response.status(), 200, "GET {path} as {}", who.username);
    let page: Value = response.json().await.unwrap();
    page["items"].as_array().expect("items").clone()
}

/// The care team of `patient` as the administrator reads it.
async fn team(app: &TestApp, clinic: &Clinic, patient: Uuid) -> Vec<Value> {
    items(app, &care_team_path(patient), &clinic.admin).await
}

/// Every read endpoint of a patient, with its audit action.
fn reads(patient: Uuid) -> [(String, &'static str); 4] {
    [
        (patient_path(patient), "patient.read"),
        (medical_path(patient), "medical.read"),
        (notes_path(patient), "notes.read"),
        (care_team_path(patient), "care_team.read"),
    ]
}

/// Every write a doctor on the care team may do, with its audit action.
fn writes(patient: Uuid, doctor_id: Uuid) -> [(Call, &'static str); 4] {
    [
        (
            Call::patch(
                patient_path(patient),
                json!({ "full_name": "Changed Name" }),
            ),
            "patient.update",
        ),
        (
            Call::put(medical_path(patient), json!({ "blood_type": "O-" })),
            "medical.update",
        ),
        (
            Call::post(
                notes_path(patient),
                json!({ "body": "Written without right." }),
            ),
            "note.create",
        ),
        (
            Call::post(care_team_path(patient), json!({ "doctor_id": doctor_id })),
            "care_team.add",
        ),
    ]
}

backend_tests! {
    async fn the_care_team_writes_medical_information_that_it_and_the_patient_read(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let id = clinic.ann_record;
        let input = json!({
            "blood_type": "ab-",
            "allergies": [
                {
                    "substance": "penicillin",
                    "reaction": "anaphylaxis",
                    "severity": "life_threatening"
                },
                { "substance": "latex" }
            ],
            "medications": [{ "name": "insulin", "dose": "10 units", "frequency": "before meals" }]
        });
        let response = app
            .call(&Call::put(medical_path(id), input), clinic.doctor.token())
            .await;
        assert_eq!(response.status(), 200);
        let request_id = header(&response, "x-request-id").unwrap();
        let written: Value = response.json().await.unwrap();
        clinic
            .assert_allowed(
                &app,
                &request_id,
                &clinic.doctor,
                "medical.update",
                "care_team",
                id,
            )
            .await;
        assert_eq!(written["patient_id"], json!(id));
        assert_eq!(written["blood_type"], "AB-");
        assert_eq!(
            written["allergies"],
            json!([
                {
                    "substance": "penicillin",
                    "reaction": "anaphylaxis",
                    "severity": "life_threatening"
                },
                { "substance": "latex", "reaction": null, "severity": null }
            ])
        );
        assert_eq!(
            written["conditions"],
            json!([]),
            "the information is replaced whole"
        );
        assert_eq!(
            written["medications"],
            json!([{ "name": "insulin", "dose": "10 units", "frequency": "before meals" }])
        );
        assert_eq!(written["updated_by"], json!(clinic.doctor.id));
        time_of(&written["updated_at"]);

        let by_doctor = clinic
            .assert_read(
                &app,
                &medical_path(id),
                &clinic.doctor,
                "medical.read",
                "care_team",
                id,
            )
            .await;
        let by_patient = clinic
            .assert_read(
                &app,
                &medical_path(id),
                &clinic.ann,
                "medical.read",
                "own_record",
                id,
            )
            .await;
        assert_eq!(by_doctor, written);
        assert_eq!(by_patient, written);

        // Another doctor joins the team and writes: the record names them.
        app.add_member(&clinic.admin.token, id, clinic.outsider.id)
            .await;
        let response = app
            .call(
                &Call::put(medical_path(id), medical_input()),
                clinic.outsider.token(),
            )
            .await;
        assert_eq!(response.status(), 200);
        let rewritten: Value = response.json().await.unwrap();
        assert_eq!(rewritten["updated_by"], json!(clinic.outsider.id));
        assert_eq!(rewritten["blood_type"], "A+");
        assert_eq!(
            rewritten["conditions"],
            json!([{ "name": "type 2 diabetes", "code": "E11.9", "since": "2019-04-01" }])
        );
        assert!(time_of(&rewritten["updated_at"]) >= time_of(&written["updated_at"]));
        // Emptied: the record says who emptied it.
        let response = app
            .call(
                &Call::put(medical_path(id), json!({})),
                clinic.doctor.token(),
            )
            .await;
        assert_eq!(response.status(), 200);
        let emptied: Value = response.json().await.unwrap();
        assert!(emptied["blood_type"].is_null());
        assert_eq!(emptied["allergies"], json!([]));
        assert_eq!(emptied["medications"], json!([]));
        assert_eq!(emptied["updated_by"], json!(clinic.doctor.id));
        assert_eq!(
            app.get(&medical_path(id), clinic.ann.token())
                .await
                .json::<Value>()
                .await
                .unwrap(),
            emptied
        );
    }

    async fn medical_information_is_validated_whole_and_nothing_is_written_when_invalid(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let id = clinic.ann_record;
        let before = clinic.ann_snapshot(&app).await;
        let token = clinic.doctor.token();
        let body = json!({
            "blood_type": "C+",
            "allergies": [{ "reaction": "rash" }, { "substance": "latex", "severity": "deadly" }],
            "conditions": [
                { "name": "asthma", "since": "2999-01-01" },
                { "name": "flu", "since": "2023-02-30" }
            ],
            "medications": [{ "name": "aspirin" }]
        });
        let call = Call::put(medical_path(id), body);
        let problem = assert_problem_type(app.call(&call, token).await, 422, "validation").await;
        assert_eq!(
            fields(&problem),
            strings(&[
                "blood_type",
                "allergies[0].substance",
                "allergies[1].severity",
                "conditions[0].since",
                "conditions[1].since",
                "medications[0].dose",
                "medications[0].frequency",
            ]),
            "{problem}"
        );
        let too_many: Vec<Value> = (0..101)
            .map(|i| json!({ "substance": format!("s{i}") }))
            .collect();
        let problem = assert_problem_type(
            app.call(
                &Call::put(medical_path(id), json!({ "allergies": too_many })),
                token,
            )
            .await,
            422,
            "validation",
        )
        .await;
        assert_eq!(fields(&problem), strings(&["allergies"]));
        for body in [
            json!({ "blood_type": "A+", "weight": 70 }),
            json!({ "allergies": [{ "substance": "x", "since": "2020-01-01" }] }),
        ] {
            assert_problem_type(
                app.call(&Call::put(medical_path(id), body), token).await,
                422,
                "validation",
            )
            .await;
        }
        assert_problem_type(
            app.call(&call.with_body(Body::broken_json()), token).await,
            400,
            "bad-request",
        )
        .await;
        assert_problem_type(
            app.call(&call.with_body(Body::not_json()), token).await,
            415,
            "unsupported-media-type",
        )
        .await;
        assert_eq!(clinic.ann_snapshot(&app).await, before);
    }

    async fn reading_medical_information_is_refused_to_everyone_else(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let id = clinic.ann_record;
        let before = clinic.ann_snapshot(&app).await;
        let call = Call::get(medical_path(id));
        for (who, status) in [
            (&clinic.secretary, 403),
            (&clinic.admin, 403),
            (&clinic.lab, 403),
            (&clinic.outsider, 404),
            (&clinic.former, 404),
            (&clinic.bob, 404),
        ] {
            clinic
                .assert_refused(&app, &call, who, status, "medical.read", Some(id))
                .await;
        }
        clinic.assert_needs_token(&app, &call).await;
        // Bob reads his own, and only his own.
        clinic
            .assert_read(
                &app,
                &medical_path(clinic.bob_record),
                &clinic.bob,
                "medical.read",
                "own_record",
                clinic.bob_record,
            )
            .await;
        let missing = Uuid::now_v7();
        clinic
            .assert_refused(
                &app,
                &Call::get(medical_path(missing)),
                &clinic.doctor,
                404,
                "medical.read",
                Some(missing),
            )
            .await;
        assert_problem_type(
            app.get(&medical_path("nope"), clinic.doctor.token()).await,
            404,
            "not-found",
        )
        .await;
        assert_eq!(clinic.ann_snapshot(&app).await, before);
    }

    async fn writing_medical_information_is_refused_to_everyone_else(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let id = clinic.ann_record;
        app.emergency_access(&clinic.outsider.token, id).await;
        let before = clinic.ann_snapshot(&app).await;
        let call = Call::put(medical_path(id), json!({ "blood_type": "O-" }));
        for (who, status) in [
            (&clinic.secretary, 403),
            (&clinic.admin, 403),
            (&clinic.lab, 403),
            (&clinic.ann, 403),
            (&clinic.bob, 403),
            (&clinic.outsider, 403),
            (&clinic.former, 404),
        ] {
            clinic
                .assert_refused_whatever_the_body(
                    &app,
                    &call,
                    who,
                    status,
                    "medical.update",
                    Some(id),
                )
                .await;
        }
        // The doctor on Ann's team is outside Bob's.
        let bob_call = Call::put(
            medical_path(clinic.bob_record),
            json!({ "blood_type": "O-" }),
        );
        clinic
            .assert_refused_whatever_the_body(
                &app,
                &bob_call,
                &clinic.doctor,
                404,
                "medical.update",
                Some(clinic.bob_record),
            )
            .await;
        clinic.assert_needs_token(&app, &call).await;
        assert_eq!(clinic.ann_snapshot(&app).await, before);
        let bob_medical = document(&app, &medical_path(clinic.bob_record), &clinic.bob).await;
        assert!(bob_medical["updated_at"].is_null(), "{bob_medical}");
    }

    async fn notes_are_listed_newest_first_and_filtered_by_kind(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let id = clinic.ann_record;
        let token = &clinic.doctor.token;
        let first = items(&app, &notes_path(id), &clinic.doctor).await;
        assert_eq!(first.len(), 1, "the clinic wrote one note");

        let response = app
            .post_json(
                &notes_path(id),
                Some(token),
                &json!({ "body": "BP 120/80.\nPulse 64.", "kind": "check_up" }),
            )
            .await;
        assert_eq!(response.status(), 201);
        let request_id = header(&response, "x-request-id").unwrap();
        let check_up: Value = response.json().await.unwrap();
        clinic
            .assert_allowed(
                &app,
                &request_id,
                &clinic.doctor,
                "note.create",
                "care_team",
                id,
            )
            .await;
        assert_note_view(&check_up);
        assert_eq!(check_up["patient_id"], json!(id));
        assert_eq!(
            check_up["author"],
            json!({ "id": clinic.doctor.id, "full_name": "Test dr.house" })
        );
        assert_eq!(check_up["kind"], "check_up");
        assert_eq!(check_up["body"], "BP 120/80.\nPulse 64.");
        assert!(check_up["amends"].is_null());
        let annotation = app
            .write_note(
                token,
                id,
                &json!({ "body": "Prefers morning visits.", "kind": "annotation" }),
            )
            .await;
        let plain = app
            .write_note(token, id, &json!({ "body": "Slept well." }))
            .await;
        assert!(plain["kind"].is_null());

        let expected = vec![
            plain.clone(),
            annotation.clone(),
            check_up.clone(),
            first[0].clone(),
        ];
        let by_doctor = clinic
            .assert_read(
                &app,
                &notes_path(id),
                &clinic.doctor,
                "notes.read",
                "care_team",
                id,
            )
            .await;
        assert_eq!(by_doctor["items"], json!(expected), "newest first");
        assert!(by_doctor["next_cursor"].is_null());
        let by_patient = clinic
            .assert_read(
                &app,
                &notes_path(id),
                &clinic.ann,
                "notes.read",
                "own_record",
                id,
            )
            .await;
        assert_eq!(by_patient["items"], json!(expected));
        for note in &expected {
            assert_note_view(note);
        }
        for limit in [1, 3] {
            assert_eq!(
                app.all_pages(&notes_path(id), token, "", limit).await,
                expected,
                "limit {limit}"
            );
        }
        assert_eq!(
            app.all_pages(&notes_path(id), token, "kind=check_up", 1)
                .await,
            vec![check_up]
        );
        assert_eq!(
            app.all_pages(&notes_path(id), token, "kind=progress", 10)
                .await,
            vec![first[0].clone()]
        );
        assert_eq!(
            app.all_pages(&notes_path(id), &clinic.ann.token, "kind=annotation", 10)
                .await,
            vec![annotation]
        );
        assert!(
            app.all_pages(&notes_path(id), token, "kind=discharge", 10)
                .await
                .is_empty()
        );
        for query in ["kind=bogus", "limit=0", "limit=101", "cursor=nope"] {
            let response = app
                .get(&format!("{}?{query}", notes_path(id)), Some(token))
                .await;
            assert_problem_type(response, 400, "bad-request").await;
        }

        // What a note must be.
        let before = clinic.ann_snapshot(&app).await;
        for (body, expected_fields) in [
            (json!({}), vec!["body"]),
            (json!({ "body": "   " }), vec!["body"]),
            (json!({ "body": "x".repeat(20_001) }), vec!["body"]),
            (json!({ "kind": "gossip" }), vec!["body", "kind"]),
            (
                json!({ "body": "fine", "amends": "not-a-uuid" }),
                vec!["amends"],
            ),
        ] {
            let response = app.post_json(&notes_path(id), Some(token), &body).await;
            let problem = assert_problem_type(response, 422, "validation").await;
            assert_eq!(fields(&problem), strings(&expected_fields), "{problem}");
        }
        let response = app
            .post_json(
                &notes_path(id),
                Some(token),
                &json!({ "body": "x", "author": clinic.outsider.id }),
            )
            .await;
        assert_problem_type(response, 422, "validation").await;
        assert_eq!(clinic.ann_snapshot(&app).await, before);
    }

    async fn a_note_is_corrected_by_an_amendment_and_never_changed(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let id = clinic.ann_record;
        let token = &clinic.doctor.token;
        let original = app
            .write_note(
                token,
                id,
                &json!({ "body": "Dose 50 mg.", "kind": "progress" }),
            )
            .await;
        let amendment = app
            .write_note(
                token,
                id,
                &json!({
                    "body": "Correction: dose 5 mg.",
                    "kind": "progress",
                    "amends": id_of(&original),
                }),
            )
            .await;
        assert_eq!(amendment["amends"], json!(id_of(&original)));
        let notes = items(
            &app,
            &format!("{}?limit=100", notes_path(id)),
            &clinic.doctor,
        )
        .await;
        assert_eq!(notes[0], amendment);
        assert_eq!(notes[1], original, "the amended note is kept as it was");

        // Only an earlier note of the same patient can be amended.
        let other = id_of(
            &app.create_patient(token, &patient_input("Other Patient"))
                .await,
        );
        let elsewhere = app
            .write_note(token, other, &json!({ "body": "Other patient's note." }))
            .await;
        let before = clinic.ann_snapshot(&app).await;
        for amends in [id_of(&elsewhere), Uuid::now_v7()] {
            let response = app
                .post_json(
                    &notes_path(id),
                    Some(token),
                    &json!({ "body": "Amending.", "amends": amends }),
                )
                .await;
            let problem = assert_problem_type(response, 422, "validation").await;
            assert_eq!(fields(&problem), strings(&["amends"]));
        }
        assert_eq!(clinic.ann_snapshot(&app).await, before);

        // Notes have no address to change or remove them at, and their list takes no change.
        for method in [
            reqwest::Method::PUT,
            reqwest::Method::PATCH,
            reqwest::Method::DELETE,
        ] {
            let response = app
                .call(
                    &Call::new(
                        method.clone(),
                        notes_path(id),
                        Body::Json(json!({ "body": "x" })),
                    ),
                    Some(token),
                )
                .await;
            assert_problem_type(response, 405, "method-not-allowed").await;
            let response = app
                .call(
                    &Call::new(
                        method,
                        format!("{}/{}", notes_path(id), id_of(&original)),
                        Body::Empty,
                    ),
                    Some(token),
                )
                .await;
            assert!(
                matches!(response.status().as_u16(), 404 | 405),
                "{}",
                response.status()
            );
        }
        assert_eq!(clinic.ann_snapshot(&app).await, before);
    }

    async fn reading_notes_is_refused_to_everyone_else(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let id = clinic.ann_record;
        let before = clinic.ann_snapshot(&app).await;
        for call in [
            Call::get(notes_path(id)),
            Call::get(format!("{}?kind=bogus&limit=0", notes_path(id))),
        ] {
            for (who, status) in [
                (&clinic.secretary, 403),
                (&clinic.admin, 403),
                (&clinic.lab, 403),
                (&clinic.outsider, 404),
                (&clinic.former, 404),
                (&clinic.bob, 404),
            ] {
                clinic
                    .assert_refused(&app, &call, who, status, "notes.read", Some(id))
                    .await;
            }
            clinic.assert_needs_token(&app, &call).await;
        }
        assert_eq!(clinic.ann_snapshot(&app).await, before);
    }

    async fn writing_notes_is_refused_to_everyone_else(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let id = clinic.ann_record;
        app.emergency_access(&clinic.outsider.token, id).await;
        let before = clinic.ann_snapshot(&app).await;
        let call = Call::post(notes_path(id), json!({ "body": "Not mine to write." }));
        for (who, status) in [
            (&clinic.secretary, 403),
            (&clinic.admin, 403),
            (&clinic.lab, 403),
            (&clinic.ann, 403),
            (&clinic.bob, 403),
            (&clinic.outsider, 403),
            (&clinic.former, 404),
        ] {
            clinic
                .assert_refused_whatever_the_body(&app, &call, who, status, "note.create", Some(id))
                .await;
        }
        // The doctor on Ann's team is outside Bob's.
        let bob = clinic.bob_record;
        let bob_call = Call::post(notes_path(bob), json!({ "body": "Not mine to write." }));
        clinic
            .assert_refused_whatever_the_body(
                &app,
                &bob_call,
                &clinic.doctor,
                404,
                "note.create",
                Some(bob),
            )
            .await;
        clinic.assert_needs_token(&app, &call).await;
        assert_eq!(clinic.ann_snapshot(&app).await, before);
        assert!(items(&app, &notes_path(bob), &clinic.bob).await.is_empty());
    }

    async fn the_care_team_grows_shrinks_and_keeps_its_history(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let id = clinic.ann_record;
        let history = team(&app, &clinic, id).await;
        assert_eq!(
            history.len(),
            2,
            "the registering doctor and the former one"
        );
        assert_eq!(
            history[0]["doctor"],
            json!({ "id": clinic.doctor.id, "full_name": "Test dr.house" })
        );
        assert_eq!(history[0]["current"], true);
        assert_eq!(history[1]["doctor"]["id"], json!(clinic.former.id));
        assert_eq!(history[1]["current"], false);
        assert_eq!(history[1]["added_by"], json!(clinic.admin.id));
        assert_eq!(history[1]["ended_by"], json!(clinic.admin.id));
        for member in &history {
            assert_member_view(member);
        }

        // The administrator adds a doctor, who reads the patient at once.
        clinic
            .assert_refused(
                &app,
                &Call::get(medical_path(id)),
                &clinic.outsider,
                404,
                "medical.read",
                Some(id),
            )
            .await;
        let response = app
            .post_json(
                &care_team_path(id),
                clinic.admin.token(),
                &json!({ "doctor_id": clinic.outsider.id }),
            )
            .await;
        assert_eq!(response.status(), 201);
        let request_id = header(&response, "x-request-id").unwrap();
        let added: Value = response.json().await.unwrap();
        clinic
            .assert_allowed(
                &app,
                &request_id,
                &clinic.admin,
                "care_team.add",
                "role",
                id,
            )
            .await;
        assert_member_view(&added);
        assert_eq!(
            added["doctor"],
            json!({ "id": clinic.outsider.id, "full_name": "Test dr.wilson" })
        );
        assert_eq!(added["added_by"], json!(clinic.admin.id));
        assert_eq!(added["current"], true);
        assert!(added["ended_at"].is_null() && added["ended_by"].is_null());
        clinic
            .assert_read(
                &app,
                &medical_path(id),
                &clinic.outsider,
                "medical.read",
                "care_team",
                id,
            )
            .await;
        // So does a doctor on the team; twice is a conflict.
        let newcomer = app
            .create_staff(&clinic.admin.token, "dr.newcomer", "doctor")
            .await;
        let by_doctor = app
            .add_member(&clinic.doctor.token, id, id_of(&newcomer))
            .await;
        assert_eq!(by_doctor["added_by"], json!(clinic.doctor.id));
        for who in [&clinic.admin, &clinic.doctor] {
            let response = app
                .post_json(
                    &care_team_path(id),
                    who.token(),
                    &json!({ "doctor_id": clinic.outsider.id }),
                )
                .await;
            assert_problem_type(response, 409, "conflict").await;
        }

        // Ending a membership keeps it; the doctor reads no more.
        let response = app
            .call(
                &Call::delete(member_path(id, clinic.outsider.id)),
                clinic.admin.token(),
            )
            .await;
        assert_eq!(response.status(), 200);
        let request_id = header(&response, "x-request-id").unwrap();
        let ended: Value = response.json().await.unwrap();
        clinic
            .assert_allowed(
                &app,
                &request_id,
                &clinic.admin,
                "care_team.end",
                "role",
                id,
            )
            .await;
        assert_member_view(&ended);
        assert_eq!(ended["id"], added["id"]);
        assert_eq!(ended["current"], false);
        assert_eq!(ended["ended_by"], json!(clinic.admin.id));
        assert!(time_of(&ended["ended_at"]) >= time_of(&ended["started_at"]));
        for (path, action) in reads(id) {
            clinic
                .assert_refused(
                    &app,
                    &Call::get(path),
                    &clinic.outsider,
                    404,
                    action,
                    Some(id),
                )
                .await;
        }
        // Ending what is not current: a conflict, and nothing is written.
        let before = team(&app, &clinic, id).await;
        for doctor in [
            clinic.outsider.id,
            clinic.former.id,
            clinic.lab.id,
            Uuid::now_v7(),
        ] {
            let response = app
                .call(&Call::delete(member_path(id, doctor)), clinic.admin.token())
                .await;
            assert_problem_type(response, 409, "conflict").await;
        }
        assert_eq!(team(&app, &clinic, id).await, before);

        // Rejoining starts a new membership; the history holds every one, oldest first.
        let again = app
            .add_member(&clinic.admin.token, id, clinic.outsider.id)
            .await;
        assert_ne!(again["id"], added["id"]);
        let history = clinic
            .assert_read(
                &app,
                &care_team_path(id),
                &clinic.doctor,
                "care_team.read",
                "care_team",
                id,
            )
            .await;
        let history = history["items"].as_array().unwrap().clone();
        let doctors: Vec<Value> = history.iter().map(|m| m["doctor"]["id"].clone()).collect();
        assert_eq!(
            doctors,
            vec![
                json!(clinic.doctor.id),
                json!(clinic.former.id),
                json!(clinic.outsider.id),
                json!(id_of(&newcomer)),
                json!(clinic.outsider.id)
            ]
        );
        assert_eq!(history[2], ended);
        assert_eq!(history[4], again);
        let current: Vec<bool> = history
            .iter()
            .map(|m| m["current"].as_bool().unwrap())
            .collect();
        assert_eq!(current, [true, false, false, true, true]);
        assert_eq!(team(&app, &clinic, id).await, history);
    }

    async fn care_team_membership_decides_whom_a_doctor_finds_by_name(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let id = clinic.ann_record;
        let by_name = |who: &Person| {
            let (app, token) = (&app, who.token.clone());
            async move {
                ids(&app
                    .all_pages(carehub_tests::clinic::PATIENTS, &token, "q=ann", 100)
                    .await)
            }
        };
        assert_eq!(by_name(&clinic.doctor).await, vec![id]);
        assert!(by_name(&clinic.outsider).await.is_empty());
        assert!(by_name(&clinic.former).await.is_empty());
        // An emergency access is for reading the record, not for finding patients.
        app.emergency_access(&clinic.outsider.token, id).await;
        assert!(by_name(&clinic.outsider).await.is_empty());
        app.add_member(&clinic.admin.token, id, clinic.outsider.id)
            .await;
        assert_eq!(by_name(&clinic.outsider).await, vec![id]);
        let response = app
            .call(
                &Call::delete(member_path(id, clinic.outsider.id)),
                clinic.admin.token(),
            )
            .await;
        assert_eq!(response.status(), 200);
        assert!(by_name(&clinic.outsider).await.is_empty());
        // The administrator re-adds the former doctor.
        app.add_member(&clinic.admin.token, id, clinic.former.id)
            .await;
        assert_eq!(by_name(&clinic.former).await, vec![id]);
    }

    async fn only_active_doctors_join_a_care_team(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let id = clinic.ann_record;
        let pending = app
            .register("dr.pending", "doctor")
            .await
            .json::<Value>()
            .await
            .unwrap();
        assert_eq!(pending["status"], "pending");
        let suspended = app
            .create_staff(&clinic.admin.token, "dr.suspended", "doctor")
            .await;
        app.update_user(
            &clinic.admin.token,
            id_of(&suspended),
            &json!({ "status": "suspended" }),
        )
        .await;
        let before = clinic.ann_snapshot(&app).await;
        for doctor_id in [
            json!(clinic.lab.id),
            json!(clinic.secretary.id),
            json!(clinic.admin.id),
            json!(clinic.ann.id),
            json!(id_of(&pending)),
            json!(id_of(&suspended)),
            json!(Uuid::now_v7()),
            json!("not-a-uuid"),
            json!(null),
        ] {
            let response = app
                .post_json(
                    &care_team_path(id),
                    clinic.admin.token(),
                    &json!({ "doctor_id": doctor_id }),
                )
                .await;
            let problem = assert_problem_type(response, 422, "validation").await;
            assert_eq!(
                fields(&problem),
                strings(&["doctor_id"]),
                "{doctor_id}: {problem}"
            );
        }
        let response = app
            .post_json(&care_team_path(id), clinic.admin.token(), &json!({}))
            .await;
        let problem = assert_problem_type(response, 422, "validation").await;
        assert_eq!(fields(&problem), strings(&["doctor_id"]));
        let call = Call::post(care_team_path(id), json!({}));
        assert_problem_type(
            app.call(&call.with_body(Body::broken_json()), clinic.admin.token())
                .await,
            400,
            "bad-request",
        )
        .await;
        assert_problem_type(
            app.call(&call.with_body(Body::not_json()), clinic.admin.token())
                .await,
            415,
            "unsupported-media-type",
        )
        .await;
        assert_eq!(clinic.ann_snapshot(&app).await, before);
        // Nobody is added to a patient that does not exist.
        let missing = Uuid::now_v7();
        let response = app
            .post_json(
                &care_team_path(missing),
                clinic.admin.token(),
                &json!({ "doctor_id": clinic.outsider.id }),
            )
            .await;
        assert_problem_type(response, 404, "not-found").await;
        assert_problem_type(
            app.get(&care_team_path(missing), clinic.admin.token())
                .await,
            404,
            "not-found",
        )
        .await;
    }

    async fn reading_the_care_team_is_refused_to_everyone_else(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let id = clinic.ann_record;
        let before = clinic.ann_snapshot(&app).await;
        let call = Call::get(care_team_path(id));
        for (who, status) in [
            (&clinic.secretary, 403),
            (&clinic.lab, 403),
            (&clinic.ann, 403),
            (&clinic.bob, 403),
            (&clinic.outsider, 404),
            (&clinic.former, 404),
        ] {
            clinic
                .assert_refused(&app, &call, who, status, "care_team.read", Some(id))
                .await;
        }
        clinic.assert_needs_token(&app, &call).await;
        assert_eq!(clinic.ann_snapshot(&app).await, before);
    }

    async fn changing_the_care_team_is_refused_to_everyone_else(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let id = clinic.ann_record;
        app.emergency_access(&clinic.outsider.token, id).await;
        let before = clinic.ann_snapshot(&app).await;
        let bob_team = team(&app, &clinic, clinic.bob_record).await;

        let add = Call::post(
            care_team_path(id),
            json!({ "doctor_id": clinic.outsider.id }),
        );
        for (who, status) in [
            (&clinic.secretary, 403),
            (&clinic.lab, 403),
            (&clinic.ann, 403),
            (&clinic.bob, 403),
            (&clinic.outsider, 403),
            (&clinic.former, 404),
        ] {
            clinic
                .assert_refused_whatever_the_body(
                    &app,
                    &add,
                    who,
                    status,
                    "care_team.add",
                    Some(id),
                )
                .await;
        }
        let add_to_bob = Call::post(
            care_team_path(clinic.bob_record),
            json!({ "doctor_id": clinic.doctor.id }),
        );
        clinic
            .assert_refused_whatever_the_body(
                &app,
                &add_to_bob,
                &clinic.doctor,
                404,
                "care_team.add",
                Some(clinic.bob_record),
            )
            .await;
        clinic.assert_needs_token(&app, &add).await;

        // Only an administrator ends a membership: not even the doctor concerned.
        let end = Call::delete(member_path(id, clinic.doctor.id));
        for who in [
            &clinic.secretary,
            &clinic.doctor,
            &clinic.outsider,
            &clinic.former,
            &clinic.lab,
            &clinic.ann,
            &clinic.bob,
        ] {
            clinic
                .assert_refused(&app, &end, who, 403, "care_team.end", Some(id))
                .await;
        }
        clinic.assert_needs_token(&app, &end).await;
        assert_eq!(clinic.ann_snapshot(&app).await, before);
        assert_eq!(team(&app, &clinic, clinic.bob_record).await, bob_team);
    }

    async fn an_emergency_access_lets_a_doctor_read_but_never_write(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let id = clinic.ann_record;
        let response = app
            .post_json(
                &emergency_path(id),
                clinic.outsider.token(),
                &json!({ "reason": EMERGENCY_REASON }),
            )
            .await;
        assert_eq!(response.status(), 201);
        let request_id = header(&response, "x-request-id").unwrap();
        let access: Value = response.json().await.unwrap();
        clinic
            .assert_allowed(
                &app,
                &request_id,
                &clinic.outsider,
                "emergency_access.grant",
                "role",
                id,
            )
            .await;
        assert_access_view(&access);
        assert_eq!(access["patient_id"], json!(id));
        assert_eq!(
            access["doctor"],
            json!({ "id": clinic.outsider.id, "full_name": "Test dr.wilson" })
        );
        assert_eq!(access["reason"], EMERGENCY_REASON);
        assert_eq!(access["active"], true);
        assert_eq!(
            time_of(&access["expires_at"]) - time_of(&access["granted_at"]),
            time::Duration::hours(1),
            "an access lasts an hour by default"
        );

        for (path, action) in reads(id) {
            clinic
                .assert_read(
                    &app,
                    &path,
                    &clinic.outsider,
                    action,
                    "emergency_access",
                    id,
                )
                .await;
        }
        let before = clinic.ann_snapshot(&app).await;
        for (call, action) in writes(id, clinic.outsider.id) {
            clinic
                .assert_refused_whatever_the_body(
                    &app,
                    &call,
                    &clinic.outsider,
                    403,
                    action,
                    Some(id),
                )
                .await;
        }
        // The access is to this patient only.
        for (path, action) in reads(clinic.bob_record) {
            clinic
                .assert_refused(
                    &app,
                    &Call::get(path),
                    &clinic.outsider,
                    404,
                    action,
                    Some(clinic.bob_record),
                )
                .await;
        }
        assert_eq!(clinic.ann_snapshot(&app).await, before);

        // A doctor whose membership ended breaks the glass like any doctor.
        clinic
            .assert_refused(
                &app,
                &Call::get(medical_path(id)),
                &clinic.former,
                404,
                "medical.read",
                Some(id),
            )
            .await;
        app.emergency_access(&clinic.former.token, id).await;
        clinic
            .assert_read(
                &app,
                &medical_path(id),
                &clinic.former,
                "medical.read",
                "emergency_access",
                id,
            )
            .await;
    }

    async fn an_emergency_access_needs_a_reason_and_a_patient(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let id = clinic.ann_record;
        let token = clinic.outsider.token();
        for body in [
            json!({}),
            json!({ "reason": "too short" }),
            json!({ "reason": "          x         " }),
            json!({ "reason": "x".repeat(1001) }),
            json!({ "reason": 42 }),
        ] {
            let response = app.post_json(&emergency_path(id), token, &body).await;
            let problem = assert_problem_type(response, 422, "validation").await;
            assert_eq!(fields(&problem), strings(&["reason"]), "{body}");
        }
        let call = Call::post(emergency_path(id), json!({}));
        assert_problem_type(
            app.call(&call.with_body(Body::broken_json()), token).await,
            400,
            "bad-request",
        )
        .await;
        assert_problem_type(
            app.call(&call.with_body(Body::not_json()), token).await,
            415,
            "unsupported-media-type",
        )
        .await;
        assert!(
            items(
                &app,
                &format!("{EMERGENCY_ACCESSES}?patient_id={id}"),
                &clinic.admin
            )
            .await
            .is_empty()
        );
        clinic
            .assert_refused(
                &app,
                &Call::get(medical_path(id)),
                &clinic.outsider,
                404,
                "medical.read",
                Some(id),
            )
            .await;

        // Ten characters and a thousand are enough.
        for reason in ["Reason why".to_owned(), "y".repeat(1000)] {
            let response = app
                .post_json(&emergency_path(id), token, &json!({ "reason": reason }))
                .await;
            assert_eq!(response.status(), 201);
        }
        // A patient that does not exist: 404, audited.
        let missing = Uuid::now_v7();
        let call = Call::post(
            emergency_path(missing),
            json!({ "reason": EMERGENCY_REASON }),
        );
        clinic
            .assert_refused(
                &app,
                &call,
                &clinic.outsider,
                404,
                "emergency_access.grant",
                Some(missing),
            )
            .await;
        assert_problem_type(
            app.call(
                &Call::post(
                    emergency_path("nope"),
                    json!({ "reason": EMERGENCY_REASON }),
                ),
                token,
            )
            .await,
            404,
            "not-found",
        )
        .await;
    }

    async fn emergency_access_is_refused_to_every_role_but_doctors(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let id = clinic.ann_record;
        let before = clinic.ann_snapshot(&app).await;
        let call = Call::post(emergency_path(id), json!({ "reason": EMERGENCY_REASON }));
        for who in [
            &clinic.secretary,
            &clinic.admin,
            &clinic.lab,
            &clinic.ann,
            &clinic.bob,
        ] {
            clinic
                .assert_refused_whatever_the_body(
                    &app,
                    &call,
                    who,
                    403,
                    "emergency_access.grant",
                    Some(id),
                )
                .await;
        }
        clinic.assert_needs_token(&app, &call).await;
        assert_eq!(clinic.ann_snapshot(&app).await, before);
        assert!(
            items(&app, EMERGENCY_ACCESSES, &clinic.admin)
                .await
                .is_empty()
        );
    }

    async fn administrators_review_emergency_accesses(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let (ann, bob) = (clinic.ann_record, clinic.bob_record);
        let first = app.emergency_access(&clinic.outsider.token, ann).await;
        let second = app.emergency_access(&clinic.former.token, ann).await;
        let third = app.emergency_access(&clinic.outsider.token, bob).await;
        let token = &clinic.admin.token;
        for access in [&first, &second, &third] {
            assert_access_view(access);
        }

        let all = app.all_pages(EMERGENCY_ACCESSES, token, "", 1).await;
        assert_eq!(
            all,
            vec![third.clone(), second.clone(), first.clone()],
            "newest first"
        );
        assert_eq!(app.all_pages(EMERGENCY_ACCESSES, token, "", 2).await, all);
        let filtered = |filter: String| {
            let app = &app;
            async move { app.all_pages(EMERGENCY_ACCESSES, token, &filter, 100).await }
        };
        assert_eq!(
            filtered(format!("patient_id={ann}")).await,
            vec![second.clone(), first.clone()]
        );
        assert_eq!(
            filtered(format!("doctor_id={}", clinic.outsider.id)).await,
            vec![third.clone(), first.clone()]
        );
        assert_eq!(
            filtered(format!("patient_id={ann}&doctor_id={}", clinic.former.id)).await,
            vec![second.clone()]
        );
        assert_eq!(
            filtered(format!("patient_id={}", Uuid::now_v7())).await,
            Vec::<Value>::new()
        );
        assert_eq!(ids(&filtered("active=true".into()).await), ids(&all));
        for query in [
            "patient_id=nope",
            "doctor_id=1",
            "active=maybe",
            "limit=0",
            "limit=101",
            "cursor=nope",
        ] {
            let response = app
                .get(&format!("{EMERGENCY_ACCESSES}?{query}"), Some(token))
                .await;
            assert_problem_type(response, 400, "bad-request").await;
        }

        for who in [
            &clinic.secretary,
            &clinic.doctor,
            &clinic.outsider,
            &clinic.lab,
            &clinic.ann,
        ] {
            carehub_tests::assert_forbidden(app.get(EMERGENCY_ACCESSES, who.token()).await).await;
        }
        carehub_tests::assert_unauthorized(app.get(EMERGENCY_ACCESSES, None).await).await;
    }
}

/// A single JSON document read as `who`, asserting 200.
async fn document(app: &TestApp, path: &str, who: &Person) -> Value {
    let response = app.get(path, who.token()).await;
    assert_eq!(response.status(), 200, "GET {path} as {}", who.username);
    response.json().await.unwrap()
}

mod short_emergency_access {
    use super::*;

    /// How long an emergency access lasts on these servers, in seconds.
    const LIFETIME_SECS: i64 = 2;

    carehub_tests::backend_tests_with! {
        ["--emergency-access-secs", "2"];

        async fn an_expired_emergency_access_reads_nothing(app: TestApp) {
            let clinic = Clinic::open(&app).await;
            let id = clinic.ann_record;
            let access = app.emergency_access(&clinic.outsider.token, id).await;
            assert_eq!(
                time_of(&access["expires_at"]) - time_of(&access["granted_at"]),
                time::Duration::seconds(LIFETIME_SECS)
            );
            clinic
                .assert_read(
                    &app,
                    &medical_path(id),
                    &clinic.outsider,
                    "medical.read",
                    "emergency_access",
                    id,
                )
                .await;
            let active = app
                .all_pages(EMERGENCY_ACCESSES, &clinic.admin.token, "active=true", 10)
                .await;
            assert_eq!(ids(&active), vec![id_of(&access)]);
            assert!(
                app.all_pages(EMERGENCY_ACCESSES, &clinic.admin.token, "active=false", 10)
                    .await
                    .is_empty(),
                "an unexpired access is not listed as expired"
            );

            let wait = time_of(&access["expires_at"]) - OffsetDateTime::now_utc()
                + time::Duration::milliseconds(300);
            if wait.is_positive() {
                tokio::time::sleep(wait.unsigned_abs()).await;
            }

            let before = clinic.ann_snapshot(&app).await;
            for (path, action) in reads(id) {
                clinic
                    .assert_refused(
                        &app,
                        &Call::get(path),
                        &clinic.outsider,
                        404,
                        action,
                        Some(id),
                    )
                    .await;
            }
            for (call, action) in writes(id, clinic.outsider.id) {
                clinic
                    .assert_refused_whatever_the_body(
                        &app,
                        &call,
                        &clinic.outsider,
                        404,
                        action,
                        Some(id),
                    )
                    .await;
            }
            assert_eq!(clinic.ann_snapshot(&app).await, before);
            assert!(
                app.all_pages(EMERGENCY_ACCESSES, &clinic.admin.token, "active=true", 10)
                    .await
                    .is_empty()
            );
            let all = app
                .all_pages(EMERGENCY_ACCESSES, &clinic.admin.token, "", 10)
                .await;
            assert_eq!(all.len(), 1);
            assert_eq!(all[0]["active"], false);
            assert_eq!(all[0]["id"], access["id"]);
            let expired = app
                .all_pages(EMERGENCY_ACCESSES, &clinic.admin.token, "active=false", 10)
                .await;
            assert_eq!(ids(&expired), vec![id_of(&access)]);

            // Breaking the glass again opens reading again.
            app.emergency_access(&clinic.outsider.token, id).await;
            clinic
                .assert_read(
                    &app,
                    &patient_path(id),
                    &clinic.outsider,
                    "patient.read",
                    "emergency_access",
                    id,
                )
                .await;
        }
    }
}
