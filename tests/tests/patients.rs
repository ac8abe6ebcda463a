//! Patients over HTTP: registration (and the doctor who registers joining the care team),
//! validation, identifiers unique per system, reading and changing a profile with a JSON merge
//! patch, search by name, record number and identifier with each role's scope, paging, a
//! patient's own record at `/users/me/patient`, and every caller who must be refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use carehub_tests::clinic::{
    Body, Call, Clinic, MY_RECORD, PATIENTS, Person, full_patient_input, ids, medical_path,
    patient_input, patient_path,
};
use carehub_tests::{
    TestApp, assert_problem_type, assert_unauthorized, backend_tests, header, id_of, problem_fields,
};

/// Searches with the text in the body.
const SEARCH: &str = "/api/v1/patients/search";

fn set<T: Ord + Clone>(items: &[T]) -> BTreeSet<T> {
    items.iter().cloned().collect()
}

fn strings(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|&s| s.to_owned()).collect()
}

fn time_of(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(value.as_str().expect("a time"), &Rfc3339)
        .unwrap_or_else(|_| panic!("{value} is not RFC 3339"))
}

/// Asserts that `view` has exactly the fields of a PatientView and a well-formed record number.
fn assert_patient_view(view: &Value) {
    let keys: BTreeSet<&str> = view
        .as_object()
        .unwrap_or_else(|| panic!("a patient object was expected, got {view}"))
        .keys()
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<&str> = [
        "id",
        "mrn",
        "full_name",
        "date_of_birth",
        "sex",
        "contact",
        "identifiers",
        "insurance",
        "emergency_contact",
        "location",
        "user_id",
        "created_at",
        "updated_at",
    ]
    .into();
    assert_eq!(keys, expected, "unexpected patient fields in {view}");
    assert_mrn(view["mrn"].as_str().expect("an mrn"));
    time_of(&view["created_at"]);
    time_of(&view["updated_at"]);
}

/// `CH-dddd-dddd-d`, the last digit the Luhn check digit of the eight before it.
fn assert_mrn(mrn: &str) {
    let digits: Vec<u32> = mrn
        .strip_prefix("CH-")
        .unwrap_or_else(|| panic!("{mrn} does not start with CH-"))
        .split('-')
        .flat_map(|group| group.chars())
        .map(|c| {
            c.to_digit(10)
                .unwrap_or_else(|| panic!("{mrn} has a non-digit"))
        })
        .collect();
    let groups: Vec<usize> = mrn[3..].split('-').map(str::len).collect();
    assert_eq!(groups, [4, 4, 1], "{mrn} is not grouped 4-4-1");
    let sum: u32 = digits[..8]
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    assert_eq!(
        digits[8],
        (10 - sum % 10) % 10,
        "{mrn} has a wrong check digit"
    );
}

fn assert_summary_view(view: &Value) {
    let keys: BTreeSet<&str> = view
        .as_object()
        .unwrap_or_else(|| panic!("a summary object was expected, got {view}"))
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["id", "mrn", "full_name", "date_of_birth", "sex"].into(),
        "unexpected summary fields in {view}"
    );
}

/// `view` without its `updated_at`.
fn unstamped(view: &Value) -> Value {
    let mut view = view.clone();
    view.as_object_mut().unwrap().remove("updated_at");
    view
}

/// One page of a patient search as `who`: its items and the request's id.
async fn search_page(
    app: &TestApp,
    who: &Person,
    query: &str,
) -> (Vec<Value>, Option<String>, String) {
    let response = app.get(&format!("{PATIENTS}?{query}"), who.token()).await;
    assert_eq!(
        response.status(),
        200,
        "searching {query} as {}",
        who.username
    );
    let request_id = header(&response, "x-request-id").expect("a request id");
    let page: Value = response.json().await.unwrap();
    let items = page["items"].as_array().expect("items").clone();
    for item in &items {
        assert_summary_view(item);
    }
    (
        items,
        page["next_cursor"].as_str().map(str::to_owned),
        request_id,
    )
}

/// The ids a search of `q` returns to `who` (every page).
async fn search(app: &TestApp, who: &Person, q: &str) -> Vec<Uuid> {
    let filter = if q.is_empty() {
        String::new()
    } else {
        format!("q={}", encode(q))
    };
    let items = app.all_pages(PATIENTS, &who.token, &filter, 100).await;
    for item in &items {
        assert_summary_view(item);
    }
    ids(&items)
}

/// Percent-encodes a query value.
fn encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Every patient, as the secretary lists them.
async fn every_patient(app: &TestApp, clinic: &Clinic) -> Vec<Uuid> {
    search(app, &clinic.secretary, "").await
}

backend_tests! {
    async fn a_secretary_registers_a_patient_who_is_on_no_care_team(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let input = full_patient_input("Ada Lovelace");
        let response = app
            .post_json(PATIENTS, clinic.secretary.token(), &input)
            .await;
        assert_eq!(response.status(), 201);
        let request_id = header(&response, "x-request-id").unwrap();
        let location = header(&response, "location").expect("a Location header");
        let created: Value = response.json().await.unwrap();
        assert_patient_view(&created);
        let id = id_of(&created);
        assert_eq!(location, patient_path(id));

        assert_eq!(created["full_name"], "Ada Lovelace");
        assert_eq!(created["date_of_birth"], "1990-02-28");
        assert_eq!(created["sex"], "other");
        assert_eq!(created["contact"], input["contact"]);
        assert_eq!(
            created["identifiers"],
            json!([
                { "system": "national_id", "value": input["identifiers"][0]["value"] },
                { "system": "passport", "value": input["identifiers"][1]["value"] },
            ]),
            "systems are kept lowercase"
        );
        assert_eq!(created["insurance"], input["insurance"]);
        assert_eq!(created["emergency_contact"], input["emergency_contact"]);
        assert_eq!(created["location"], input["location"]);
        assert!(created["user_id"].is_null());
        assert_eq!(created["created_at"], created["updated_at"]);
        assert_ne!(
            created["mrn"],
            app.patient(&clinic.secretary.token, clinic.ann_record)
                .await["mrn"],
            "record numbers differ"
        );

        assert_eq!(app.patient(&clinic.secretary.token, id).await, created);
        clinic
            .assert_allowed(
                &app,
                &request_id,
                &clinic.secretary,
                "patient.create",
                "role",
                id,
            )
            .await;

        // No care team: no doctor reads the medical information.
        let team: Value = app
            .get(&format!("{PATIENTS}/{id}/care-team"), clinic.admin.token())
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(team["items"], json!([]));
        for doctor in [&clinic.doctor, &clinic.outsider] {
            clinic
                .assert_refused(
                    &app,
                    &Call::get(medical_path(id)),
                    doctor,
                    404,
                    "medical.read",
                    Some(id),
                )
                .await;
        }
    }

    async fn a_doctor_who_registers_a_patient_joins_its_care_team_at_once(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let response = app
            .post_json(
                PATIENTS,
                clinic.doctor.token(),
                &patient_input("Grace Hopper"),
            )
            .await;
        assert_eq!(response.status(), 201);
        let request_id = header(&response, "x-request-id").unwrap();
        let created: Value = response.json().await.unwrap();
        assert_patient_view(&created);
        let id = id_of(&created);
        assert_eq!(created["sex"], "female");
        assert_eq!(
            created["contact"],
            json!({ "phone": null, "email": null, "address": null })
        );
        assert_eq!(created["identifiers"], json!([]));
        for part in ["insurance", "emergency_contact", "location", "user_id"] {
            assert!(created[part].is_null(), "{part} in {created}");
        }
        clinic
            .assert_allowed(
                &app,
                &request_id,
                &clinic.doctor,
                "patient.create",
                "role",
                id,
            )
            .await;

        let response = app.get(&medical_path(id), clinic.doctor.token()).await;
        assert_eq!(response.status(), 200);
        let medical: Value = response.json().await.unwrap();
        assert_eq!(
            medical,
            json!({
                "patient_id": id, "blood_type": null, "allergies": [], "conditions": [],
                "medications": [], "updated_at": null, "updated_by": null,
            })
        );
        let team: Value = app
            .get(&format!("{PATIENTS}/{id}/care-team"), clinic.doctor.token())
            .await
            .json()
            .await
            .unwrap();
        let members = team["items"].as_array().unwrap();
        assert_eq!(members.len(), 1, "{team}");
        assert_eq!(members[0]["doctor"]["id"], json!(clinic.doctor.id));
        assert_eq!(members[0]["added_by"], json!(clinic.doctor.id));
        assert_eq!(members[0]["current"], true);
        assert!(members[0]["ended_at"].is_null());

        assert_eq!(app.patient(&clinic.doctor.token, id).await, created);
        assert_eq!(app.patient(&clinic.secretary.token, id).await, created);
        clinic
            .assert_refused(
                &app,
                &Call::get(patient_path(id)),
                &clinic.outsider,
                404,
                "patient.read",
                Some(id),
            )
            .await;
    }

    async fn registration_lists_every_invalid_field_and_writes_nothing(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let before = every_patient(&app, &clinic).await;
        let token = clinic.secretary.token();
        let body = json!({
            "date_of_birth": "2999-01-01",
            "sex": "f",
            "contact": { "phone": "call me", "email": "not-an-email" },
            "identifiers": [
                { "system": "passport", "value": "X1" },
                { "system": "PASSPORT", "value": "X2" },
                { "system": "national id", "value": "Y" }
            ],
            "insurance": { "policy_number": "P-1" },
            "emergency_contact": { "name": "Mum" },
            "location": { "room": "" }
        });
        let problem = assert_problem_type(
            app.post_json(PATIENTS, token, &body).await,
            422,
            "validation",
        )
        .await;
        assert_eq!(
            set(&problem_fields(&problem)),
            strings(&[
                "full_name",
                "date_of_birth",
                "sex",
                "contact.phone",
                "contact.email",
                "identifiers[1].system",
                "identifiers[2].system",
                "insurance.provider",
                "emergency_contact.phone",
                "location.room",
            ]),
            "{problem}"
        );

        let mut impossible = patient_input("Ada Lovelace");
        impossible["date_of_birth"] = json!("2023-02-30");
        let mut too_many = patient_input("Ada Lovelace");
        too_many["identifiers"] = (0..21)
            .map(|i| json!({ "system": format!("system-{i}"), "value": "v" }))
            .collect();
        let mut wrong_type = patient_input("Ada Lovelace");
        wrong_type["sex"] = json!(5);
        let mut staff_account = patient_input("Ada Lovelace");
        staff_account["user_id"] = json!(clinic.lab.id);
        let mut no_account = patient_input("Ada Lovelace");
        no_account["user_id"] = json!(Uuid::now_v7());
        let mut uninsured = patient_input("Ada Lovelace");
        uninsured["insurance"] = json!({ "policy_number": "P-1" });
        for (body, fields) in [
            (impossible, vec!["date_of_birth"]),
            (too_many, vec!["identifiers"]),
            (wrong_type, vec!["sex"]),
            (staff_account, vec!["user_id"]),
            (no_account, vec!["user_id"]),
            (uninsured, vec!["insurance.provider"]),
        ] {
            let problem = assert_problem_type(
                app.post_json(PATIENTS, token, &body).await,
                422,
                "validation",
            )
            .await;
            assert_eq!(set(&problem_fields(&problem)), strings(&fields), "{body}");
        }

        // Fields nobody takes, at the top or inside a part.
        let mut unknown = patient_input("Ada Lovelace");
        unknown["nickname"] = json!("Ada");
        let mut unknown_inside = patient_input("Ada Lovelace");
        unknown_inside["contact"] = json!({ "fax": "+44 20 7946 0001" });
        let mut with_mrn = patient_input("Ada Lovelace");
        with_mrn["mrn"] = json!("CH-4821-7730-0");
        for body in [unknown, unknown_inside, with_mrn] {
            let problem = assert_problem_type(
                app.post_json(PATIENTS, token, &body).await,
                422,
                "validation",
            )
            .await;
            assert!(!problem_fields(&problem).is_empty(), "{problem}");
        }

        // Not JSON, or JSON that does not parse.
        let call = Call::post(PATIENTS, json!({}));
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

        assert_eq!(every_patient(&app, &clinic).await, before);
    }

    async fn an_identifier_belongs_to_one_patient_per_system(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let token = &clinic.secretary.token;
        let mut first = patient_input("First Patient");
        first["identifiers"] = json!([{ "system": "national_id", "value": "756.1234" }]);
        let first = app.create_patient(token, &first).await;
        // The same value in another system is another identifier.
        let mut second = patient_input("Second Patient");
        second["identifiers"] = json!([{ "system": "passport", "value": "756.1234" }]);
        let second = app.create_patient(token, &second).await;
        let before = every_patient(&app, &clinic).await;

        for system in ["national_id", "NATIONAL_ID"] {
            let mut third = patient_input("Third Patient");
            third["identifiers"] = json!([
                { "system": "insurance_card", "value": "IC-9" },
                { "system": system, "value": "756.1234" }
            ]);
            let response = app.post_json(PATIENTS, Some(token), &third).await;
            assert_problem_type(response, 409, "conflict").await;
        }
        assert_eq!(
            every_patient(&app, &clinic).await,
            before,
            "nothing was registered"
        );
        // The identifier of the refused registration is free: it was not written.
        let mut fourth = patient_input("Fourth Patient");
        fourth["identifiers"] = json!([{ "system": "insurance_card", "value": "IC-9" }]);
        app.create_patient(token, &fourth).await;

        // Taking another patient's identifier by a change: 409, and the patient is unchanged.
        let response = app
            .patch_json(
                &patient_path(id_of(&second)),
                Some(token),
                &json!({ "identifiers": [{ "system": "national_id", "value": "756.1234" }] }),
            )
            .await;
        assert_problem_type(response, 409, "conflict").await;
        assert_eq!(app.patient(token, id_of(&second)).await, second);
        // Keeping one's own identifier through a change is no conflict.
        let renamed = app
            .patch_patient(
                token,
                id_of(&first),
                &json!({ "full_name": "First Renamed" }),
            )
            .await;
        assert_eq!(renamed["identifiers"], first["identifiers"]);

        // An account belongs to one patient record.
        let mut linked = patient_input("Another Bob");
        linked["user_id"] = json!(clinic.bob.id);
        assert_problem_type(
            app.post_json(PATIENTS, Some(token), &linked).await,
            409,
            "conflict",
        )
        .await;
        let response = app
            .patch_json(
                &patient_path(id_of(&first)),
                Some(token),
                &json!({ "user_id": clinic.ann.id }),
            )
            .await;
        assert_problem_type(response, 409, "conflict").await;
        assert_eq!(app.patient(token, id_of(&first)).await, renamed);
        assert_eq!(every_patient(&app, &clinic).await.len(), before.len() + 1);
    }

    async fn a_profile_is_read_by_the_secretary_the_care_team_and_the_patient(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let id = clinic.ann_record;
        let mut views = Vec::new();
        for (who, basis) in [
            (&clinic.secretary, "role"),
            (&clinic.doctor, "care_team"),
            (&clinic.ann, "own_record"),
        ] {
            let response = app.get(&patient_path(id), who.token()).await;
            assert_eq!(response.status(), 200, "{}", who.username);
            let request_id = header(&response, "x-request-id").unwrap();
            let view: Value = response.json().await.unwrap();
            assert_patient_view(&view);
            clinic
                .assert_allowed(&app, &request_id, who, "patient.read", basis, id)
                .await;
            views.push(view);
        }
        assert_eq!(views[0], views[1]);
        assert_eq!(views[0], views[2]);
        assert_eq!(views[0]["full_name"], "Ann Archer");
        assert_eq!(views[0]["user_id"], json!(clinic.ann.id));

        // A patient that does not exist, and a path that names none.
        for who in [&clinic.secretary, &clinic.doctor] {
            for path in [patient_path(Uuid::now_v7()), patient_path("not-a-uuid")] {
                assert_problem_type(app.get(&path, who.token()).await, 404, "not-found").await;
            }
        }
    }

    async fn reading_a_profile_is_refused_to_everyone_else(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let id = clinic.ann_record;
        let before = clinic.ann_snapshot(&app).await;
        let call = Call::get(patient_path(id));
        for (who, status) in [
            (&clinic.admin, 403),
            (&clinic.lab, 403),
            (&clinic.outsider, 404),
            (&clinic.former, 404),
            (&clinic.bob, 404),
        ] {
            clinic
                .assert_refused(&app, &call, who, status, "patient.read", Some(id))
                .await;
        }
        clinic.assert_needs_token(&app, &call).await;
        // Outside the care team, an existing patient and a missing one cannot be told apart.
        let missing = Uuid::now_v7();
        let hidden = clinic
            .assert_refused(&app, &call, &clinic.outsider, 404, "patient.read", Some(id))
            .await;
        let absent = clinic
            .assert_refused(
                &app,
                &Call::get(patient_path(missing)),
                &clinic.outsider,
                404,
                "patient.read",
                Some(missing),
            )
            .await;
        assert_eq!(hidden, absent);
        // A role that may never read profiles is refused whether or not the patient exists.
        clinic
            .assert_refused(
                &app,
                &Call::get(patient_path(missing)),
                &clinic.lab,
                403,
                "patient.read",
                Some(missing),
            )
            .await;
        assert_eq!(clinic.ann_snapshot(&app).await, before);
    }

    async fn a_merge_patch_changes_only_what_it_names(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let token = &clinic.secretary.token;
        let created = app
            .create_patient(token, &full_patient_input("Ada Lovelace"))
            .await;
        let id = id_of(&created);

        // Absent members stay, null removes, objects merge member by member.
        let response = app
            .patch_json(
                &patient_path(id),
                Some(token),
                &json!({
                    "contact": { "phone": null, "address": { "city": "Cambridge" } },
                    "insurance": null,
                    "location": { "bed": null }
                }),
            )
            .await;
        assert_eq!(response.status(), 200);
        let request_id = header(&response, "x-request-id").unwrap();
        let patched: Value = response.json().await.unwrap();
        assert_patient_view(&patched);
        let mut expected = created.clone();
        expected["contact"]["phone"] = Value::Null;
        expected["contact"]["address"]["city"] = json!("Cambridge");
        expected["insurance"] = Value::Null;
        expected["location"]["bed"] = Value::Null;
        assert_eq!(unstamped(&patched), unstamped(&expected));
        assert!(time_of(&patched["updated_at"]) >= time_of(&created["updated_at"]));
        assert_eq!(app.patient(token, id).await, patched);
        clinic
            .assert_allowed(
                &app,
                &request_id,
                &clinic.secretary,
                "patient.update",
                "role",
                id,
            )
            .await;

        // Arrays are replaced whole.
        let patched = app
            .patch_patient(
                token,
                id,
                &json!({ "identifiers": [{ "system": "old_mrn", "value": "77" }] }),
            )
            .await;
        assert_eq!(
            patched["identifiers"],
            json!([{ "system": "old_mrn", "value": "77" }])
        );
        assert_eq!(patched["contact"]["email"], created["contact"]["email"]);

        // An empty patch changes nothing.
        let same = app.patch_patient(token, id, &json!({})).await;
        assert_eq!(unstamped(&same), unstamped(&patched));

        // The doctor on the care team changes a profile too, with application/merge-patch+json.
        let ann_before = app.patient(token, clinic.ann_record).await;
        let response = app
            .call(
                &Call::new(
                    Method::PATCH,
                    patient_path(clinic.ann_record),
                    Body::Raw {
                        content_type: "application/merge-patch+json",
                        text: json!({ "location": { "room": "4.01", "bed": null } }).to_string(),
                    },
                ),
                clinic.doctor.token(),
            )
            .await;
        assert_eq!(response.status(), 200);
        let ann: Value = response.json().await.unwrap();
        let mut expected = ann_before.clone();
        expected["location"] = json!({ "room": "4.01", "bed": null });
        assert_eq!(unstamped(&ann), unstamped(&expected));
        assert_eq!(app.patient(token, clinic.ann_record).await, ann);
    }

    async fn an_invalid_patch_is_refused_whole_and_changes_nothing(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let token = &clinic.secretary.token;
        let id = id_of(
            &app.create_patient(token, &full_patient_input("Ada Lovelace"))
                .await,
        );
        // The result is validated whole; what cannot be changed is refused; nothing is written.
        let current = app.patient(token, id).await;
        for (patch, fields) in [
            (json!({ "full_name": null }), vec!["full_name"]),
            (
                json!({ "date_of_birth": "2023-02-30", "sex": "x" }),
                vec!["date_of_birth", "sex"],
            ),
            (
                json!({ "contact": { "email": "nope" } }),
                vec!["contact.email"],
            ),
            (
                json!({ "insurance": { "provider": null } }),
                vec!["insurance.provider"],
            ),
        ] {
            let response = app.patch_json(&patient_path(id), Some(token), &patch).await;
            let problem = assert_problem_type(response, 422, "validation").await;
            assert_eq!(set(&problem_fields(&problem)), strings(&fields), "{patch}");
        }
        for patch in [
            json!({ "mrn": "CH-4821-7730-0" }),
            json!({ "id": Uuid::now_v7() }),
            json!({ "created_at": "2020-01-01T00:00:00Z" }),
            json!({ "nickname": "Ada" }),
        ] {
            let response = app.patch_json(&patient_path(id), Some(token), &patch).await;
            assert_problem_type(response, 422, "validation").await;
        }
        let call = Call::patch(patient_path(id), json!({}));
        assert_problem_type(
            app.call(&call.with_body(Body::broken_json()), Some(token))
                .await,
            400,
            "bad-request",
        )
        .await;
        assert_problem_type(
            app.call(&call.with_body(Body::not_json()), Some(token))
                .await,
            415,
            "unsupported-media-type",
        )
        .await;
        assert_eq!(app.patient(token, id).await, current);
    }

    async fn changing_a_profile_is_refused_to_everyone_else(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let id = clinic.ann_record;
        app.emergency_access(&clinic.outsider.token, id).await;
        let before = clinic.ann_snapshot(&app).await;
        let call = Call::patch(
            patient_path(id),
            json!({ "full_name": "Changed By Someone" }),
        );
        for (who, status) in [
            (&clinic.admin, 403),
            (&clinic.lab, 403),
            (&clinic.ann, 403),
            (&clinic.bob, 403),
            // An emergency access only ever grants reading.
            (&clinic.outsider, 403),
            (&clinic.former, 404),
        ] {
            clinic
                .assert_refused_whatever_the_body(
                    &app,
                    &call,
                    who,
                    status,
                    "patient.update",
                    Some(id),
                )
                .await;
        }
        // A doctor outside the care team (no emergency access either).
        let stranger = app
            .create_patient(&clinic.secretary.token, &patient_input("Stranger"))
            .await;
        let stranger_id = id_of(&stranger);
        let other = Call::patch(patient_path(stranger_id), json!({ "full_name": "Changed" }));
        clinic
            .assert_refused_whatever_the_body(
                &app,
                &other,
                &clinic.doctor,
                404,
                "patient.update",
                Some(stranger_id),
            )
            .await;
        clinic.assert_needs_token(&app, &call).await;
        assert_eq!(clinic.ann_snapshot(&app).await, before);
        assert_eq!(
            app.patient(&clinic.secretary.token, stranger_id).await,
            stranger
        );
    }

    async fn a_patient_reads_their_own_record_once_it_is_linked(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        for (who, record) in [
            (&clinic.ann, clinic.ann_record),
            (&clinic.bob, clinic.bob_record),
        ] {
            let response = app.get(MY_RECORD, who.token()).await;
            assert_eq!(response.status(), 200, "{}", who.username);
            let request_id = header(&response, "x-request-id").unwrap();
            let view: Value = response.json().await.unwrap();
            assert_patient_view(&view);
            assert_eq!(view, app.patient(&clinic.secretary.token, record).await);
            clinic
                .assert_allowed(&app, &request_id, who, "patient.read", "own_record", record)
                .await;
        }

        // No record linked yet: 404, until the secretary links one.
        let carl = app.patient_account("carl.patient").await;
        assert_problem_type(app.get(MY_RECORD, carl.token()).await, 404, "not-found").await;
        let record = app
            .create_patient(&clinic.secretary.token, &patient_input("Carl Cole"))
            .await;
        let linked = app
            .link_account(&clinic.secretary.token, id_of(&record), carl.id)
            .await;
        let response = app.get(MY_RECORD, carl.token()).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Value>().await.unwrap(), linked);
        // Carl now reads his record by its id too, and still not Ann's.
        assert_eq!(app.patient(&carl.token, id_of(&record)).await, linked);
        clinic
            .assert_refused(
                &app,
                &Call::get(patient_path(clinic.ann_record)),
                &carl,
                404,
                "patient.read",
                Some(clinic.ann_record),
            )
            .await;

        // Staff have no record of their own.
        for who in [
            &clinic.admin,
            &clinic.secretary,
            &clinic.doctor,
            &clinic.lab,
        ] {
            clinic
                .assert_refused(&app, &Call::get(MY_RECORD), who, 403, "patient.read", None)
                .await;
        }
        assert_unauthorized(app.get(MY_RECORD, None).await).await;
    }

    async fn unlinking_an_account_ends_the_patients_access_to_the_record(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let id = clinic.ann_record;
        assert_eq!(app.get(MY_RECORD, clinic.ann.token()).await.status(), 200);
        let unlinked = app
            .patch_patient(&clinic.secretary.token, id, &json!({ "user_id": null }))
            .await;
        assert!(unlinked["user_id"].is_null());
        assert_eq!(unlinked["full_name"], "Ann Archer", "only the link went");
        assert_problem_type(
            app.get(MY_RECORD, clinic.ann.token()).await,
            404,
            "not-found",
        )
        .await;
        for (path, action) in [
            (patient_path(id), "patient.read"),
            (medical_path(id), "medical.read"),
        ] {
            clinic
                .assert_refused(&app, &Call::get(path), &clinic.ann, 404, action, Some(id))
                .await;
        }
        // The account is free again, for this record or another.
        let other = id_of(
            &app.create_patient(&clinic.secretary.token, &patient_input("Ann Again"))
                .await,
        );
        let linked = app
            .link_account(&clinic.secretary.token, other, clinic.ann.id)
            .await;
        let response = app.get(MY_RECORD, clinic.ann.token()).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Value>().await.unwrap(), linked);
        clinic
            .assert_refused(
                &app,
                &Call::get(patient_path(id)),
                &clinic.ann,
                404,
                "patient.read",
                Some(id),
            )
            .await;
    }

    async fn search_finds_patients_by_name_record_number_and_identifier(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let token = &clinic.secretary.token;
        let mut ada_input = patient_input("Ada   Lovelace");
        ada_input["identifiers"] = json!([{ "system": "national_id", "value": "NI-ADA-1815" }]);
        let ada = app.create_patient(token, &ada_input).await;
        let king = app.create_patient(token, &patient_input("Ada King")).await;
        let grace = app
            .create_patient(token, &patient_input("Grace Hopper"))
            .await;
        let (ada, king, grace) = (id_of(&ada), id_of(&king), id_of(&grace));
        let mrn = app.patient(token, ada).await["mrn"]
            .as_str()
            .unwrap()
            .to_owned();

        for who in [&clinic.secretary, &clinic.admin] {
            assert_eq!(
                search(&app, who, "ada").await,
                vec![ada, king],
                "{}",
                who.username
            );
            assert_eq!(search(&app, who, "LOVELACE").await, vec![ada]);
            assert_eq!(search(&app, who, "lovelace ada").await, Vec::<Uuid>::new());
            assert_eq!(
                search(&app, who, "ada lovelace").await,
                vec![ada],
                "spaces are normalised"
            );
            assert_eq!(
                search(&app, who, "opp").await,
                vec![grace],
                "any part of the name"
            );
            assert_eq!(search(&app, who, &mrn).await, vec![ada]);
            assert_eq!(
                search(&app, who, &mrn.replace('-', "").to_lowercase()).await,
                vec![ada]
            );
            assert_eq!(search(&app, who, &mrn.to_lowercase()).await, vec![ada]);
            assert_eq!(search(&app, who, "NI-ADA-1815").await, vec![ada]);
            assert_eq!(
                search(&app, who, "NI-ADA").await,
                Vec::<Uuid>::new(),
                "identifiers match exactly"
            );
            assert_eq!(search(&app, who, "nobody").await, Vec::<Uuid>::new());
            let everyone = search(&app, who, "").await;
            assert_eq!(
                set(&everyone),
                set(&[clinic.ann_record, clinic.bob_record, ada, king, grace])
            );
        }

        // Each patient listed leaves a patient.list event for that request.
        let (items, _, request_id) = search_page(&app, &clinic.secretary, "q=ada").await;
        let events = app.audit_of_request(&clinic.admin.token, &request_id).await;
        assert_eq!(events.len(), items.len());
        let listed: BTreeSet<Uuid> = events
            .iter()
            .map(|e| {
                assert_eq!(e["action"], "patient.list");
                assert_eq!(e["outcome"], "allowed");
                assert_eq!(e["basis"], "role");
                assert_eq!(e["actor"]["id"], json!(clinic.secretary.id));
                e["patient_id"].as_str().unwrap().parse().unwrap()
            })
            .collect();
        assert_eq!(listed, set(&ids(&items)));
        // A search that finds nothing leaves no event.
        let (items, _, request_id) = search_page(&app, &clinic.secretary, "q=nobody").await;
        assert!(items.is_empty());
        assert!(
            app.audit_of_request(&clinic.admin.token, &request_id)
                .await
                .is_empty()
        );

        // What may not be searched for.
        let long = "x".repeat(101);
        for query in [
            "q=",
            "q=%20%20",
            &format!("q={long}"),
            "limit=0",
            "limit=101",
            "cursor=nope",
        ] {
            let response = app.get(&format!("{PATIENTS}?{query}"), Some(token)).await;
            assert_problem_type(response, 400, "bad-request").await;
        }
        let hundred = "x".repeat(100);
        assert_eq!(
            search(&app, &clinic.secretary, &hundred).await,
            Vec::<Uuid>::new()
        );
    }

    async fn a_search_in_the_body_finds_what_the_query_finds_and_refuses_what_it_refuses(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let token = &clinic.secretary.token;
        let ada = id_of(&app.create_patient(token, &patient_input("Ada Lovelace")).await);
        let king = id_of(&app.create_patient(token, &patient_input("Ada King")).await);
        let mrn = app.patient(token, ada).await["mrn"].as_str().unwrap().to_owned();
        let post = |who: &Person, body: Value| {
            let call = Call::post(SEARCH, body);
            let token = who.token.clone();
            let app = &app;
            async move { app.call(&call, Some(&token)).await }
        };

        for who in [&clinic.secretary, &clinic.admin, &clinic.doctor] {
            for q in ["ada", "LOVELACE", mrn.as_str(), "nobody"] {
                let response = post(who, json!({ "q": q, "limit": 100 })).await;
                assert_eq!(response.status(), 200, "{q} as {}", who.username);
                let page: Value = response.json().await.unwrap();
                assert_eq!(
                    ids(page["items"].as_array().unwrap()),
                    search(&app, who, q).await,
                    "{q} as {}",
                    who.username
                );
            }
        }
        assert_eq!(
            search(&app, &clinic.secretary, "ada").await,
            vec![ada, king]
        );

        // A whole number written with a fraction is that number (JSON Schema's integers); a null
        // is the field left out.
        let response = post(&clinic.secretary, json!({ "q": null, "limit": 100.0, "cursor": null })).await;
        assert_eq!(response.status(), 200);
        let page: Value = response.json().await.unwrap();
        assert_eq!(ids(page["items"].as_array().unwrap()), every_patient(&app, &clinic).await);

        // Page by page, with the cursor in the body: every patient, once, in order.
        let mut seen = Vec::new();
        let mut cursor = Value::Null;
        loop {
            let response = post(&clinic.secretary, json!({ "limit": 2, "cursor": cursor })).await;
            assert_eq!(response.status(), 200);
            let request_id = header(&response, "x-request-id").unwrap();
            let page: Value = response.json().await.unwrap();
            let items = page["items"].as_array().unwrap();
            // Each patient listed is audited, as by the query.
            let events = app.audit_of_request(&clinic.admin.token, &request_id).await;
            assert_eq!(events.len(), items.len());
            assert!(events.iter().all(|e| e["action"] == "patient.list"));
            seen.extend(ids(items));
            cursor = page["next_cursor"].clone();
            if cursor.is_null() {
                break;
            }
        }
        assert_eq!(seen, every_patient(&app, &clinic).await);

        // Callers who may not search.
        for who in [&clinic.ann, &clinic.lab] {
            let response = post(who, json!({ "q": "ada" })).await;
            assert_problem_type(response, 403, "forbidden").await;
        }
        let anonymous = app.call(&Call::post(SEARCH, json!({ "q": "ada" })), None).await;
        assert_unauthorized(anonymous).await;

        // What may not be searched for: each field named.
        for (body, field) in [
            (json!({ "q": "" }), "q"),
            (json!({ "q": "x".repeat(101) }), "q"),
            (json!({ "limit": 0 }), "limit"),
            (json!({ "limit": 101 }), "limit"),
            (json!({ "cursor": "nope" }), "cursor"),
            (json!({ "query": "ada" }), "query"),
            (json!({ "q": 7 }), "q"),
            (json!({ "limit": 2.5 }), "limit"),
            (json!({ "limit": -1 }), "limit"),
        ] {
            let response = post(&clinic.secretary, body.clone()).await;
            let problem = assert_problem_type(response, 422, "validation").await;
            assert_eq!(problem_fields(&problem), vec![field.to_owned()], "{body}");
        }
        // The path takes only POST: any other method is told so, not taken for a patient's id.
        for method in [Method::GET, Method::PATCH, Method::PUT, Method::DELETE] {
            let call = Call::new(method.clone(), SEARCH, Body::Json(json!({ "q": "ada" })));
            let response = app.call(&call, clinic.secretary.token()).await;
            assert_eq!(header(&response, "allow").as_deref(), Some("POST"), "{method}");
            assert_problem_type(response, 405, "method-not-allowed").await;
        }
        let call = Call::post(SEARCH, json!({}));
        for (bad, status) in [(Body::broken_json(), 400), (Body::not_json(), 415)] {
            let response = app.call(&call.with_body(bad), clinic.secretary.token()).await;
            assert_eq!(response.status(), status);
        }
    }

    async fn a_doctors_search_shows_the_care_team_and_exact_matches_only(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let own = id_of(
            &app.create_patient(&clinic.doctor.token, &patient_input("Ada Own"))
                .await,
        );
        let mut stranger_input = patient_input("Ada Stranger");
        stranger_input["identifiers"] =
            json!([{ "system": "national_id", "value": "NI-STRANGER-1" }]);
        let stranger = id_of(
            &app.create_patient(&clinic.secretary.token, &stranger_input)
                .await,
        );
        let mrn = app.patient(&clinic.secretary.token, stranger).await["mrn"]
            .as_str()
            .unwrap()
            .to_owned();
        let doctor = &clinic.doctor;

        assert_eq!(search(&app, doctor, "").await, vec![clinic.ann_record, own]);
        assert_eq!(
            search(&app, doctor, "ada").await,
            vec![own],
            "never a name outside the team"
        );
        assert_eq!(search(&app, doctor, "Stranger").await, Vec::<Uuid>::new());
        assert_eq!(search(&app, doctor, "Bob Baker").await, Vec::<Uuid>::new());
        assert_eq!(search(&app, doctor, &mrn).await, vec![stranger]);
        assert_eq!(
            search(&app, doctor, &mrn.replace('-', "").to_lowercase()).await,
            vec![stranger]
        );
        assert_eq!(search(&app, doctor, "NI-STRANGER-1").await, vec![stranger]);
        assert_eq!(
            search(&app, doctor, "NI-STRANGER").await,
            Vec::<Uuid>::new()
        );
        // Finding a patient by number is no access to their record.
        clinic
            .assert_refused(
                &app,
                &Call::get(patient_path(stranger)),
                doctor,
                404,
                "patient.read",
                Some(stranger),
            )
            .await;

        // Doctors on no care team (any longer) see nobody by name.
        for who in [&clinic.outsider, &clinic.former] {
            assert_eq!(
                search(&app, who, "").await,
                Vec::<Uuid>::new(),
                "{}",
                who.username
            );
            assert_eq!(
                search(&app, who, "Ann").await,
                Vec::<Uuid>::new(),
                "{}",
                who.username
            );
        }
        assert_eq!(
            search(&app, &clinic.secretary, "ada").await,
            vec![own, stranger]
        );

        // The doctor's listing is audited too, with the role as basis.
        let (items, _, request_id) = search_page(&app, doctor, &format!("q={mrn}")).await;
        assert_eq!(ids(&items), vec![stranger]);
        let events = app.audit_of_request(&clinic.admin.token, &request_id).await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["action"], "patient.list");
        assert_eq!(events[0]["patient_id"], json!(stranger));
        assert_eq!(events[0]["outcome"], "allowed");
    }

    async fn paging_through_patients_yields_each_once_in_order_even_as_patients_are_added(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let token = &clinic.secretary.token;
        for i in 1..=30 {
            app.create_patient(token, &patient_input(&format!("Paged Patient {i:02}")))
                .await;
        }
        let mut expected = every_patient(&app, &clinic).await;
        assert_eq!(expected.len(), 32);
        let mut sorted = expected.clone();
        sorted.sort();
        assert_eq!(expected, sorted, "ordered by id");

        // Page by 7; after the first page, three more patients are registered.
        let mut seen = Vec::new();
        let mut requests = Vec::new();
        let (items, mut cursor, request_id) = search_page(&app, &clinic.secretary, "limit=7").await;
        assert_eq!(items.len(), 7);
        seen.extend(ids(&items));
        requests.push((request_id, ids(&items)));
        for i in 1..=3 {
            let added = app
                .create_patient(token, &patient_input(&format!("Late Patient {i}")))
                .await;
            expected.push(id_of(&added));
        }
        while let Some(next) = cursor {
            let (items, next_cursor, request_id) =
                search_page(&app, &clinic.secretary, &format!("limit=7&cursor={next}")).await;
            assert!(!items.is_empty(), "a cursor never leads to an empty page");
            assert!(
                items.len() == 7 || next_cursor.is_none(),
                "only the last page is short"
            );
            seen.extend(ids(&items));
            requests.push((request_id, ids(&items)));
            cursor = next_cursor;
        }
        assert_eq!(
            seen, expected,
            "each once, in order, the new ones at the end"
        );

        // Each patient of each page left one patient.list event of that request.
        let events = app
            .audit(
                &clinic.admin.token,
                &format!("user_id={}", clinic.secretary.id),
            )
            .await;
        let mut listed: BTreeMap<String, Vec<Uuid>> = BTreeMap::new();
        for event in events.iter().filter(|e| e["action"] == "patient.list") {
            listed
                .entry(event["request_id"].as_str().unwrap().to_owned())
                .or_default()
                .push(event["patient_id"].as_str().unwrap().parse().unwrap());
        }
        for (request_id, page) in &requests {
            let mut logged = listed.remove(request_id).unwrap_or_default();
            logged.sort();
            assert_eq!(&logged, page, "patient.list events of request {request_id}");
        }

        // Every page size reads the same list; a filtered list pages too.
        for limit in [1, 7, 35, 100] {
            assert_eq!(
                ids(&app.all_pages(PATIENTS, token, "", limit).await),
                expected,
                "limit {limit}"
            );
        }
        let tens: Vec<Uuid> = app
            .all_pages(PATIENTS, token, "q=paged%20patient%201", 3)
            .await
            .iter()
            .map(|p| {
                assert!(
                    p["full_name"]
                        .as_str()
                        .unwrap()
                        .starts_with("Paged Patient 1")
                );
                id_of(p)
            })
            .collect();
        assert_eq!(tens.len(), 10);
        assert_eq!(tens, expected[11..21].to_vec());
    }

    async fn registering_and_searching_are_refused_to_other_roles(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let before = every_patient(&app, &clinic).await;
        let create = Call::post(PATIENTS, patient_input("Not Registered"));
        for who in [&clinic.admin, &clinic.lab, &clinic.ann, &clinic.bob] {
            clinic
                .assert_refused_whatever_the_body(&app, &create, who, 403, "patient.create", None)
                .await;
        }
        clinic.assert_needs_token(&app, &create).await;

        for who in [&clinic.lab, &clinic.ann, &clinic.bob] {
            for query in ["", "?q=Ann", "?q=", "?limit=0"] {
                clinic
                    .assert_refused(
                        &app,
                        &Call::get(format!("{PATIENTS}{query}")),
                        who,
                        403,
                        "patient.list",
                        None,
                    )
                    .await;
            }
        }
        clinic.assert_needs_token(&app, &Call::get(PATIENTS)).await;
        assert_eq!(every_patient(&app, &clinic).await, before);
    }
}
