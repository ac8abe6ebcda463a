//! The laboratory from outside: the catalogue; doctors of the care team order tests; the
//! laboratory works its queue, records results and attaches files (reports, images, ECG
//! recordings analysed by a job); results reach the ordering doctor at once (a critical value
//! as urgent, escalated to the rest of the care team while unread) and the patient once a
//! doctor, or the delay, releases them. Every read and change is audited, and every caller who
//! must be refused is.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::Response;
use serde_json::{Value, json};
use uuid::Uuid;

use carehub_tests::clinic::{Body, Call, Clinic, Person, access_log_path};
use carehub_tests::lab::{
    LAB_ORDERS, LAB_TESTS, MULTIPART, Part, QUESTION, Rhythm, csv_parts, ecg_path, file_path,
    files_path, id_text, multipart, order_input, order_path, pdf, png, sha256_hex, step_path,
    value, wfdb_parts,
};
use carehub_tests::{
    TestApp, assert_forbidden, assert_problem_type, assert_unauthorized, backend_tests,
    backend_tests_with, header, problem_fields,
};

/// How long a job may take to run in these tests.
const WAIT: Duration = Duration::from_secs(20);

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

/// The ids of a list of documents, as text.
fn id_texts(items: &[Value]) -> Vec<String> {
    items.iter().map(id_text).collect()
}

/// Asserts the shape of an order: exactly the documented fields (with `files` when one order
/// is read), and of the patient only what tells patients apart.
fn assert_order_view(view: &Value, with_files: bool) {
    let mut expected: BTreeSet<&str> = [
        "id",
        "patient",
        "ordered_by",
        "tests",
        "priority",
        "clinical_question",
        "status",
        "scheduled_for",
        "collected_at",
        "results",
        "findings",
        "resulted_at",
        "released_by",
        "released_at",
        "cancelled_at",
        "created_at",
        "updated_at",
    ]
    .into();
    if with_files {
        expected.insert("files");
    }
    assert_eq!(keys(view), expected, "{view}");
    assert_eq!(
        keys(&view["patient"]),
        ["date_of_birth", "full_name", "id", "mrn", "sex"].into(),
        "{view}"
    );
    assert_eq!(
        keys(&view["ordered_by"]),
        ["full_name", "id"].into(),
        "{view}"
    );
}

/// Asserts a laboratory notification: its kind, the order it points to, whether it is urgent,
/// and no patient name or clinical text in it.
fn assert_lab_notification(notification: &Value, kind: &str, order: &str, urgent: bool) {
    assert_eq!(notification["kind"], kind, "{notification}");
    assert_eq!(
        notification["data"]["lab_order_id"], order,
        "{notification}"
    );
    if urgent {
        assert_eq!(notification["data"]["urgent"], true, "{notification}");
    } else {
        assert!(notification["data"]["urgent"].is_null(), "{notification}");
    }
    let text = notification["data"].to_string();
    for secret in ["Ann", "Archer", "Bob", "anaemia", "Fatigue"] {
        assert!(!text.contains(secret), "{secret} in {notification}");
    }
}

/// The problem of a refused request, asserting its status and type.
async fn refused(response: Response, status: u16) -> Value {
    let slug = match status {
        400 => "bad-request",
        403 => "forbidden",
        404 => "not-found",
        409 => "conflict",
        413 => "payload-too-large",
        415 => "unsupported-media-type",
        422 => "validation",
        other => panic!("{other} is not a refusal here"),
    };
    assert_problem_type(response, status, slug).await
}

/// The order `id` as `who` reads it, asserting a 200.
async fn read_order(app: &TestApp, who: &Person, id: &str) -> Value {
    let response = app.get(&order_path(id), who.token()).await;
    assert_eq!(response.status(), 200, "{} reads order {id}", who.username);
    response.json().await.unwrap()
}

/// Every order `who` lists with `filter`, one page of two at a time.
async fn listed(app: &TestApp, who: &Person, filter: &str) -> Vec<String> {
    let items = app.all_pages(LAB_ORDERS, &who.token, filter, 2).await;
    for item in &items {
        assert_order_view(item, false);
    }
    id_texts(&items)
}

/// Records `values` as the order's results, as `lab`.
async fn record(app: &TestApp, lab: &Person, id: &str, values: &[Value]) -> Value {
    app.lab_step(lab, id, "results", &json!({ "values": values }))
        .await
}

/// A doctor hired and put on Ann's care team beside the doctor who registered her.
async fn colleague(app: &TestApp, clinic: &Clinic) -> Person {
    let chase = clinic.hire(app, "dr.chase", "doctor").await;
    app.add_member(&clinic.admin.token, clinic.ann_record, chase.id)
        .await;
    chase
}

/// A call that uploads a PDF to the order, for refusals that never read it.
fn upload_call(id: &str) -> Call {
    let body = multipart(&[Part::file("report.pdf", pdf())]);
    Call::new(
        reqwest::Method::POST,
        files_path(id),
        Body::Raw {
            content_type: MULTIPART,
            text: String::from_utf8(body).unwrap(),
        },
    )
}

backend_tests! {
    async fn the_catalogue_is_read_by_doctors_the_laboratory_and_administrators_only(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let mut catalogues = Vec::new();
        for who in [&clinic.doctor, &clinic.lab, &clinic.admin] {
            let response = app.get(LAB_TESTS, who.token()).await;
            assert_eq!(response.status(), 200, "{}", who.username);
            catalogues.push(response.json::<Value>().await.unwrap());
        }
        assert_eq!(catalogues[0], catalogues[1]);
        assert_eq!(catalogues[0], catalogues[2]);
        let tests = catalogues[0].as_array().unwrap();
        let codes: Vec<&str> = tests.iter().map(|t| t["code"].as_str().unwrap()).collect();
        assert_eq!(
            codes,
            ["cbc", "chest_xray", "ecg", "hba1c", "lipid_panel", "potassium", "troponin"]
        );
        for test in tests {
            assert_eq!(keys(test), ["analytes", "code", "kind", "name"].into(), "{test}");
        }
        let cbc = &tests[0];
        assert_eq!(cbc["kind"], "panel");
        assert_eq!(
            cbc["analytes"][0],
            json!({
                "code": "hemoglobin",
                "name": "Haemoglobin",
                "unit": "g/dL",
                "range": { "low": 12.0, "high": 17.5, "critical_low": 7.0, "critical_high": 20.0 }
            })
        );
        let analytes: Vec<&str> = cbc["analytes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["code"].as_str().unwrap())
            .collect();
        assert_eq!(analytes, ["hemoglobin", "wbc", "platelets"]);
        assert_eq!(tests[2]["kind"], "ecg");
        assert_eq!(tests[2]["analytes"], json!([]));
        assert_eq!(tests[1]["kind"], "imaging");

        for who in [&clinic.secretary, &clinic.ann] {
            assert_forbidden(app.get(LAB_TESTS, who.token()).await).await;
        }
        assert_unauthorized(app.get(LAB_TESTS, None).await).await;
    }

    async fn only_administrators_add_tests_and_each_code_is_taken_once(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let tsh = json!({
            "code": "tsh",
            "name": "Thyroid-stimulating hormone",
            "kind": "panel",
            "analytes": [{
                "code": "tsh",
                "name": "TSH",
                "unit": "mIU/L",
                "range": { "low": 0.4, "high": 4.0 }
            }]
        });
        for who in [&clinic.secretary, &clinic.doctor, &clinic.lab, &clinic.ann] {
            assert_forbidden(app.post_json(LAB_TESTS, who.token(), &tsh).await).await;
            let call = Call::post(LAB_TESTS, tsh.clone()).with_body(Body::broken_json());
            assert_forbidden(app.call(&call, who.token()).await).await;
        }
        assert_unauthorized(app.post_json(LAB_TESTS, None, &tsh).await).await;

        let added = app.post_json(LAB_TESTS, clinic.admin.token(), &tsh).await;
        assert_eq!(added.status(), 201);
        let added: Value = added.json().await.unwrap();
        assert_eq!(added["code"], "tsh");
        assert_eq!(added["kind"], "panel");
        assert_eq!(
            added["analytes"][0]["range"],
            json!({ "low": 0.4, "high": 4.0, "critical_low": null, "critical_high": null })
        );

        for duplicate in [tsh.clone(), json!({ "code": "cbc", "name": "Again", "kind": "panel" })] {
            let response = app.post_json(LAB_TESTS, clinic.admin.token(), &duplicate).await;
            refused(response, 409).await;
        }
        for (body, expected) in [
            (json!({}), strings(&["code", "name", "kind"])),
            (
                json!({
                    "code": "TSH",
                    "name": "",
                    "kind": "blood",
                    "analytes": [
                        { "code": "a", "name": "A" },
                        { "code": "a", "name": "A again" },
                        { "code": "b", "name": "B", "range": { "low": 5.0, "high": 1.0 } }
                    ]
                }),
                strings(&["code", "name", "kind", "analytes[1].code", "analytes[2].range"]),
            ),
        ] {
            let response = app.post_json(LAB_TESTS, clinic.admin.token(), &body).await;
            let problem = refused(response, 422).await;
            assert_eq!(fields(&problem), expected, "{body}: {problem}");
        }

        let catalogue: Value = app.get(LAB_TESTS, clinic.doctor.token()).await.json().await.unwrap();
        let tsh_listed: Vec<&Value> =
            catalogue.as_array().unwrap().iter().filter(|t| t["code"] == "tsh").collect();
        assert_eq!(tsh_listed, [&added], "listed once, as added");
        let order = app
            .order_tests(&clinic.doctor, &order_input(clinic.ann_record, &["tsh"], "routine"))
            .await;
        assert_eq!(order["tests"], json!(["tsh"]));
    }

    async fn a_care_team_doctor_orders_tests_and_the_order_is_audited(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let input = order_input(clinic.ann_record, &["cbc", "ecg"], "urgent");
        let response = app.post_json(LAB_ORDERS, clinic.doctor.token(), &input).await;
        assert_eq!(response.status(), 201);
        let location = header(&response, "location").expect("a Location");
        let request_id = header(&response, "x-request-id").unwrap();
        let order: Value = response.json().await.unwrap();
        assert_order_view(&order, true);
        let id = id_text(&order);
        assert_eq!(location, order_path(&id));
        assert_eq!(order["status"], "ordered");
        assert_eq!(order["tests"], json!(["cbc", "ecg"]));
        assert_eq!(order["priority"], "urgent");
        assert_eq!(order["clinical_question"], QUESTION);
        assert_eq!(order["patient"]["id"], json!(clinic.ann_record));
        assert_eq!(order["patient"]["full_name"], "Ann Archer");
        assert_eq!(order["patient"]["date_of_birth"], "1990-02-28");
        assert_eq!(order["patient"]["sex"], "other");
        assert!(order["patient"]["mrn"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(order["ordered_by"]["id"], json!(clinic.doctor.id));
        assert_eq!(order["ordered_by"]["full_name"], "Test dr.house");
        assert_eq!(order["results"], json!([]));
        assert_eq!(order["files"], json!([]));
        for unset in [
            "scheduled_for", "collected_at", "findings", "resulted_at", "released_by",
            "released_at", "cancelled_at",
        ] {
            assert!(order[unset].is_null(), "{unset} in {order}");
        }
        let events = app.audit_of_request(&clinic.admin.token, &request_id).await;
        let created: Vec<&Value> = events.iter().filter(|e| e["action"] == "lab_order.create").collect();
        assert_eq!(created.len(), 1, "{events:?}");
        assert_eq!(created[0]["outcome"], "allowed");
        assert_eq!(created[0]["basis"], "care_team");
        assert_eq!(created[0]["actor"]["id"], json!(clinic.doctor.id));
        assert_eq!(created[0]["patient_id"], json!(clinic.ann_record));

        let by_doctor = clinic
            .assert_read(&app, &location, &clinic.doctor, "lab_order.read", "care_team", clinic.ann_record)
            .await;
        assert_eq!(by_doctor, order);
        let by_lab = clinic
            .assert_read(&app, &location, &clinic.lab, "lab_order.read", "role", clinic.ann_record)
            .await;
        assert_eq!(by_lab, order);
    }

    async fn a_doctor_outside_the_care_team_cannot_order_tests(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let call = Call::post(LAB_ORDERS, order_input(clinic.ann_record, &["cbc"], "routine"));
        for who in [&clinic.outsider, &clinic.former] {
            clinic
                .assert_refused(&app, &call, who, 404, "lab_order.create", Some(clinic.ann_record))
                .await;
        }
        let bob = Call::post(LAB_ORDERS, order_input(clinic.bob_record, &["cbc"], "routine"));
        clinic
            .assert_refused(&app, &bob, &clinic.doctor, 404, "lab_order.create", Some(clinic.bob_record))
            .await;
        let nobody = order_input(Uuid::now_v7(), &["cbc"], "routine");
        refused(app.post_json(LAB_ORDERS, clinic.doctor.token(), &nobody).await, 404).await;

        assert!(listed(&app, &clinic.lab, "status=ordered").await.is_empty());
        for who in [&clinic.doctor, &clinic.outsider, &clinic.former] {
            assert!(listed(&app, who, "").await.is_empty(), "{}", who.username);
        }
    }

    async fn only_doctors_order_tests(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let call = Call::post(LAB_ORDERS, order_input(clinic.ann_record, &["cbc"], "routine"));
        for who in [&clinic.secretary, &clinic.lab, &clinic.ann, &clinic.admin] {
            clinic
                .assert_refused_whatever_the_body(&app, &call, who, 403, "lab_order.create", None)
                .await;
        }
        clinic.assert_needs_token(&app, &call).await;
        assert!(listed(&app, &clinic.lab, "status=ordered").await.is_empty());
    }

    async fn an_order_of_unknown_or_repeated_tests_or_missing_fields_is_refused(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let with = |field: &str, value: Value| {
            let mut input = order_input(clinic.ann_record, &["cbc"], "routine");
            input[field] = value;
            input
        };
        for (body, expected) in [
            (with("tests", json!(["cbc", "cbc"])), strings(&["tests"])),
            (with("tests", json!(["cbc", "mri"])), strings(&["tests"])),
            (with("tests", json!([])), strings(&["tests"])),
            (with("tests", json!(["CBC"])), strings(&["tests[0]"])),
            (with("priority", json!("asap")), strings(&["priority"])),
            (with("clinical_question", json!("")), strings(&["clinical_question"])),
            (json!({}), strings(&["patient_id", "tests", "priority", "clinical_question"])),
        ] {
            let response = app.post_json(LAB_ORDERS, clinic.doctor.token(), &body).await;
            let problem = refused(response, 422).await;
            assert_eq!(fields(&problem), expected, "{body}: {problem}");
        }
        let problem = refused(
            app.call(&Call::post(LAB_ORDERS, json!({})).with_body(Body::broken_json()), clinic.doctor.token()).await,
            400,
        )
        .await;
        assert!(problem["detail"].is_string());
        assert!(listed(&app, &clinic.doctor, "").await.is_empty(), "nothing was ordered");
    }

    async fn the_laboratory_queue_lists_open_orders_with_only_who_the_patient_is(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        app.add_member(&clinic.admin.token, clinic.bob_record, clinic.doctor.id).await;
        let doctor = &clinic.doctor;
        let first = id_text(&app.order_tests(doctor, &order_input(clinic.ann_record, &["cbc"], "routine")).await);
        let second = id_text(&app.order_tests(doctor, &order_input(clinic.bob_record, &["potassium"], "urgent")).await);
        let resulted = app.collected_order(doctor, &clinic.lab, clinic.ann_record, &["hba1c"]).await;
        record(&app, &clinic.lab, &resulted, &[value("hba1c", "hba1c", 5.0)]).await;
        let cancelled = id_text(&app.order_tests(doctor, &order_input(clinic.ann_record, &["troponin"], "urgent")).await);
        app.lab_step(doctor, &cancelled, "cancel", &json!({})).await;

        // The laboratory: open orders by default, newest first; any one status on request.
        assert_eq!(listed(&app, &clinic.lab, "").await, [second.clone(), first.clone()]);
        assert_eq!(listed(&app, &clinic.lab, "status=resulted").await, [resulted.as_str()]);
        assert_eq!(listed(&app, &clinic.lab, "status=cancelled").await, [cancelled.as_str()]);
        assert_eq!(
            listed(&app, &clinic.lab, &format!("patient_id={}", clinic.bob_record)).await,
            [second.as_str()]
        );
        let response = app.get(&format!("{LAB_ORDERS}?limit=10"), clinic.lab.token()).await;
        let request_id = header(&response, "x-request-id").unwrap();
        let page: Value = response.json().await.unwrap();
        let bob_item = &page["items"][0];
        assert_eq!(bob_item["patient"]["full_name"], "Bob Baker");
        assert_eq!(bob_item["patient"]["sex"], "female");
        assert_eq!(bob_item["priority"], "urgent");
        let events = app.audit_of_request(&clinic.admin.token, &request_id).await;
        let audited: BTreeSet<String> = events
            .iter()
            .map(|e| {
                assert_eq!(e["action"], "lab_order.list", "{e}");
                assert_eq!(e["outcome"], "allowed", "{e}");
                assert_eq!(e["basis"], "role", "{e}");
                e["patient_id"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(
            audited,
            [clinic.ann_record.to_string(), clinic.bob_record.to_string()].into(),
            "each patient listed is audited once: {events:?}"
        );
        for bad in ["status=done", "limit=0", "limit=101", "cursor=nope"] {
            let response = app.get(&format!("{LAB_ORDERS}?{bad}"), clinic.lab.token()).await;
            refused(response, 400).await;
        }

        // A doctor: their own orders, or one care-team patient's.
        assert_eq!(
            listed(&app, doctor, "").await,
            [cancelled.clone(), resulted.clone(), second.clone(), first.clone()]
        );
        assert_eq!(
            listed(&app, doctor, &format!("patient_id={}", clinic.ann_record)).await,
            [cancelled, resulted, first]
        );
        assert!(listed(&app, &clinic.outsider, "").await.is_empty());
        let theirs = format!("{LAB_ORDERS}?patient_id={}", clinic.ann_record);
        refused(app.get(&theirs, clinic.outsider.token()).await, 404).await;

        // A patient: their own released results only; nothing is released yet.
        assert!(listed(&app, &clinic.ann, "").await.is_empty());
        assert!(listed(&app, &clinic.bob, "").await.is_empty());
        let bobs = format!("{LAB_ORDERS}?patient_id={}", clinic.bob_record);
        refused(app.get(&bobs, clinic.ann.token()).await, 404).await;

        for who in [&clinic.secretary, &clinic.admin] {
            clinic
                .assert_refused(&app, &Call::get(LAB_ORDERS), who, 403, "lab_order.list", None)
                .await;
        }
        clinic.assert_needs_token(&app, &Call::get(LAB_ORDERS)).await;
    }

    async fn the_laboratory_schedules_collects_and_records_results_flagged_against_the_ranges(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let lab = &clinic.lab;
        let id = id_text(
            &app.order_tests(&clinic.doctor, &order_input(clinic.ann_record, &["cbc"], "routine")).await,
        );
        let when = json!({ "scheduled_for": "2030-01-02T09:30:00+01:00" });
        for (step, body, action) in [
            ("schedule", when.clone(), "lab_order.update"),
            ("collect", json!({}), "lab_order.update"),
            ("results", json!({ "values": [value("cbc", "hemoglobin", 13.0)] }), "lab_result.record"),
        ] {
            let call = Call::post(step_path(&id, step), body);
            for who in [&clinic.doctor, &clinic.secretary, &clinic.ann, &clinic.admin] {
                clinic.assert_refused(&app, &call, who, 403, action, None).await;
            }
        }

        for bad in [json!({}), json!({ "scheduled_for": "tomorrow at nine" })] {
            let response = app.post_json(&step_path(&id, "schedule"), lab.token(), &bad).await;
            let problem = refused(response, 422).await;
            assert_eq!(fields(&problem), strings(&["scheduled_for"]), "{problem}");
        }
        let response = app.post_json(&step_path(&id, "results"), lab.token(), &json!({ "findings": "Early." })).await;
        refused(response, 409).await;

        let response = app.post_json(&step_path(&id, "schedule"), lab.token(), &when).await;
        assert_eq!(response.status(), 200);
        let request_id = header(&response, "x-request-id").unwrap();
        let scheduled: Value = response.json().await.unwrap();
        assert_order_view(&scheduled, true);
        assert_eq!(scheduled["status"], "scheduled");
        assert_eq!(scheduled["scheduled_for"], "2030-01-02T08:30:00Z");
        clinic
            .assert_allowed(&app, &request_id, lab, "lab_order.update", "role", clinic.ann_record)
            .await;

        let collected = app.lab_step(lab, &id, "collect", &json!({})).await;
        assert_eq!(collected["status"], "collected");
        assert!(collected["collected_at"].is_string());
        for step in ["collect", "schedule"] {
            let response = app.post_json(&step_path(&id, step), lab.token(), &when).await;
            refused(response, 409).await;
        }

        for (values, expected) in [
            (json!([value("potassium", "potassium", 4.0)]), strings(&["values[0].test"])),
            (json!([value("cbc", "sodium", 140.0)]), strings(&["values[0].analyte"])),
            (
                json!([value("cbc", "wbc", 5.0), value("cbc", "wbc", 6.0)]),
                strings(&["values[1].analyte"]),
            ),
            (json!([]), strings(&["values"])),
        ] {
            let response = app
                .post_json(&step_path(&id, "results"), lab.token(), &json!({ "values": values }))
                .await;
            let problem = refused(response, 422).await;
            assert_eq!(fields(&problem), expected, "{values}: {problem}");
        }

        let results = json!({
            "values": [
                value("cbc", "hemoglobin", 13.1),
                value("cbc", "wbc", 12.5),
                value("cbc", "platelets", 120.0),
            ],
            "findings": "Mild leukocytosis.",
        });
        let response = app.post_json(&step_path(&id, "results"), lab.token(), &results).await;
        assert_eq!(response.status(), 200);
        let request_id = header(&response, "x-request-id").unwrap();
        let resulted: Value = response.json().await.unwrap();
        assert_order_view(&resulted, true);
        assert_eq!(resulted["status"], "resulted");
        assert_eq!(resulted["findings"], "Mild leukocytosis.");
        assert!(resulted["resulted_at"].is_string());
        assert!(resulted["released_at"].is_null());
        let flags: Vec<(&str, &str)> = resulted["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["analyte"].as_str().unwrap(), r["flag"].as_str().unwrap()))
            .collect();
        assert_eq!(flags, [("hemoglobin", "normal"), ("wbc", "high"), ("platelets", "low")]);
        assert_eq!(
            resulted["results"][0],
            json!({
                "test": "cbc",
                "analyte": "hemoglobin",
                "name": "Haemoglobin",
                "value": 13.1,
                "unit": "g/dL",
                "range": { "low": 12.0, "high": 17.5, "critical_low": 7.0, "critical_high": 20.0 },
                "flag": "normal"
            })
        );
        clinic
            .assert_allowed(&app, &request_id, lab, "lab_result.record", "role", clinic.ann_record)
            .await;
        assert_eq!(read_order(&app, &clinic.doctor, &id).await, resulted);
        let again = app.post_json(&step_path(&id, "results"), lab.token(), &results).await;
        refused(again, 409).await;
    }

    async fn results_tell_the_ordering_doctor_at_once_and_a_critical_value_as_urgent(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let (doctor, lab) = (&clinic.doctor, &clinic.lab);
        let normal = app.collected_order(doctor, lab, clinic.ann_record, &["cbc"]).await;
        record(&app, lab, &normal, &[value("cbc", "hemoglobin", 13.0)]).await;
        let critical = app.collected_order(doctor, lab, clinic.ann_record, &["cbc"]).await;
        let order = record(&app, lab, &critical, &[value("cbc", "hemoglobin", 6.0)]).await;
        assert_eq!(order["results"][0]["flag"], "critical");

        let resulted = app.lab_notifications(doctor, "lab.resulted", &normal).await;
        assert_eq!(resulted.len(), 1, "{resulted:?}");
        assert_lab_notification(&resulted[0], "lab.resulted", &normal, false);
        assert!(resulted[0]["read_at"].is_null());
        assert!(app.lab_notifications(doctor, "lab.critical", &normal).await.is_empty());

        let resulted = app.lab_notifications(doctor, "lab.resulted", &critical).await;
        assert_eq!(resulted.len(), 1, "{resulted:?}");
        assert_lab_notification(&resulted[0], "lab.resulted", &critical, true);
        let alarms = app.lab_notifications(doctor, "lab.critical", &critical).await;
        assert_eq!(alarms.len(), 1, "{alarms:?}");
        assert_lab_notification(&alarms[0], "lab.critical", &critical, true);
        assert_eq!(alarms[0]["data"]["patient_id"], json!(clinic.ann_record));
        assert!(!alarms[0]["data"].to_string().contains("6.0"), "no value in {}", alarms[0]);

        for who in [&clinic.ann, &clinic.lab, &clinic.outsider, &clinic.admin] {
            let lab_notices: Vec<Value> = app
                .all_notifications(&who.token)
                .await
                .into_iter()
                .filter(|n| n["data"]["lab_order_id"].is_string())
                .collect();
            assert!(lab_notices.is_empty(), "{}: {lab_notices:?}", who.username);
        }
    }

    async fn a_care_team_doctor_releases_results_to_the_patient_who_is_told_and_may_read_them(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let chase = colleague(&app, &clinic).await;
        let (doctor, lab, ann) = (&clinic.doctor, &clinic.lab, &clinic.ann);
        let id = app.collected_order(doctor, lab, clinic.ann_record, &["cbc"]).await;
        let release = Call::post(step_path(&id, "release"), json!({}));
        refused(app.call(&release, doctor.token()).await, 409).await;
        let resulted = record(&app, lab, &id, &[value("cbc", "hemoglobin", 12.5)]).await;

        // Before the release the patient sees nothing of it.
        clinic
            .assert_refused(&app, &Call::get(order_path(&id)), ann, 404, "lab_order.read", Some(clinic.ann_record))
            .await;
        assert!(listed(&app, ann, "").await.is_empty());

        for who in [lab, &clinic.secretary, ann, &clinic.admin] {
            clinic.assert_refused(&app, &release, who, 403, "lab_result.release", None).await;
        }
        clinic
            .assert_refused(&app, &release, &clinic.outsider, 404, "lab_result.release", Some(clinic.ann_record))
            .await;
        assert_eq!(read_order(&app, doctor, &id).await, resulted, "nothing changed");

        // Any doctor of the care team may release, not only the one who ordered.
        let response = app.call(&release, chase.token()).await;
        assert_eq!(response.status(), 200);
        let request_id = header(&response, "x-request-id").unwrap();
        let released: Value = response.json().await.unwrap();
        assert_eq!(released["status"], "released");
        assert_eq!(released["released_by"], json!(chase.id));
        assert!(released["released_at"].is_string());
        assert_eq!(released["results"], resulted["results"]);
        clinic
            .assert_allowed(&app, &request_id, &chase, "lab_result.release", "care_team", clinic.ann_record)
            .await;
        refused(app.call(&release, doctor.token()).await, 409).await;

        let told = app.lab_notifications(ann, "lab.released", &id).await;
        assert_eq!(told.len(), 1, "{told:?}");
        assert_lab_notification(&told[0], "lab.released", &id, false);

        let seen = clinic
            .assert_read(&app, &order_path(&id), ann, "lab_order.read", "own_record", clinic.ann_record)
            .await;
        assert_eq!(seen, released);
        assert_eq!(listed(&app, ann, "").await, [id.as_str()]);
        clinic
            .assert_refused(&app, &Call::get(order_path(&id)), &clinic.bob, 404, "lab_order.read", Some(clinic.ann_record))
            .await;
        assert!(listed(&app, &clinic.bob, "").await.is_empty());
    }

    async fn only_the_ordering_doctor_cancels_an_order_and_only_before_its_results(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let chase = colleague(&app, &clinic).await;
        let (doctor, lab) = (&clinic.doctor, &clinic.lab);
        let id = id_text(&app.order_tests(doctor, &order_input(clinic.ann_record, &["cbc"], "routine")).await);
        let cancel = Call::post(step_path(&id, "cancel"), json!({}));

        clinic
            .assert_refused(&app, &cancel, &chase, 403, "lab_order.cancel", Some(clinic.ann_record))
            .await;
        refused(app.call(&cancel, clinic.outsider.token()).await, 404).await;
        for who in [lab, &clinic.secretary, &clinic.ann, &clinic.admin] {
            clinic.assert_refused(&app, &cancel, who, 403, "lab_order.cancel", None).await;
        }
        assert_eq!(read_order(&app, doctor, &id).await["status"], "ordered");

        let response = app.call(&cancel, doctor.token()).await;
        assert_eq!(response.status(), 200);
        let request_id = header(&response, "x-request-id").unwrap();
        let cancelled: Value = response.json().await.unwrap();
        assert_eq!(cancelled["status"], "cancelled");
        assert!(cancelled["cancelled_at"].is_string());
        clinic
            .assert_allowed(&app, &request_id, doctor, "lab_order.cancel", "care_team", clinic.ann_record)
            .await;
        refused(app.call(&cancel, doctor.token()).await, 409).await;
        for step in ["collect", "schedule"] {
            let body = json!({ "scheduled_for": "2030-01-02T09:30:00Z" });
            refused(app.post_json(&step_path(&id, step), lab.token(), &body).await, 409).await;
        }

        // Collected is not too late; resulted is.
        let collected = app.collected_order(doctor, lab, clinic.ann_record, &["cbc"]).await;
        assert_eq!(app.lab_step(doctor, &collected, "cancel", &json!({})).await["status"], "cancelled");
        let resulted = app.collected_order(doctor, lab, clinic.ann_record, &["cbc"]).await;
        record(&app, lab, &resulted, &[value("cbc", "wbc", 6.0)]).await;
        let problem = refused(app.post_json(&step_path(&resulted, "cancel"), doctor.token(), &json!({})).await, 409).await;
        assert!(problem["detail"].as_str().unwrap().contains("resulted"), "{problem}");
        assert_eq!(read_order(&app, doctor, &resulted).await["status"], "resulted");
    }

    async fn the_laboratory_attaches_reports_and_images_that_read_back_byte_for_byte(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let (doctor, lab, ann) = (&clinic.doctor, &clinic.lab, &clinic.ann);
        let id = app.collected_order(doctor, lab, clinic.ann_record, &["chest_xray"]).await;
        let (report, film) = (pdf(), png());
        let response = app
            .upload(
                lab.token(),
                &id,
                &[
                    Part::file("report final.pdf", report.clone()).declared("application/pdf"),
                    Part::file("film.png", film.clone()),
                ],
            )
            .await;
        assert_eq!(response.status(), 201);
        let request_id = header(&response, "x-request-id").unwrap();
        let files: Vec<Value> = response.json().await.unwrap();
        clinic
            .assert_allowed(&app, &request_id, lab, "lab_file.upload", "role", clinic.ann_record)
            .await;
        assert_eq!(files.len(), 2);
        for (file, (name, kind, content_type, bytes)) in files.iter().zip([
            ("report final.pdf", "pdf", "application/pdf", &report),
            ("film.png", "image", "image/png", &film),
        ]) {
            assert_eq!(
                keys(file),
                [
                    "content_type", "id", "kind", "name", "sampling_rate_hz", "sha256", "size",
                    "uploaded_at", "uploaded_by",
                ]
                .into(),
                "{file}"
            );
            assert_eq!(file["name"], name);
            assert_eq!(file["kind"], kind);
            assert_eq!(file["content_type"], content_type);
            assert_eq!(file["size"], bytes.len());
            assert_eq!(file["sha256"], sha256_hex(bytes));
            assert!(file["sampling_rate_hz"].is_null());
            assert_eq!(file["uploaded_by"], json!(lab.id));
        }
        assert_eq!(read_order(&app, doctor, &id).await["files"], json!(files));

        for (file, bytes) in files.iter().zip([&report, &film]) {
            let path = file_path(&id, id_text(file));
            for (who, basis) in [(lab, "role"), (doctor, "care_team")] {
                let response = app.get(&path, who.token()).await;
                assert_eq!(response.status(), 200, "{path} as {}", who.username);
                let request_id = header(&response, "x-request-id").unwrap();
                assert_eq!(header(&response, "content-type").unwrap(), file["content_type"]);
                let disposition = header(&response, "content-disposition").unwrap();
                assert!(disposition.starts_with("attachment"), "{disposition}");
                assert!(disposition.contains(file["name"].as_str().unwrap()), "{disposition}");
                assert_eq!(header(&response, "x-content-sha256").unwrap(), file["sha256"]);
                assert_eq!(&response.bytes().await.unwrap().to_vec(), bytes);
                clinic
                    .assert_allowed(&app, &request_id, who, "lab_file.read", basis, clinic.ann_record)
                    .await;
            }
        }
        let report_path = file_path(&id, id_text(&files[0]));
        refused(app.get(&report_path, clinic.outsider.token()).await, 404).await;
        refused(app.get(&file_path(&id, Uuid::now_v7()), doctor.token()).await, 404).await;
        refused(app.get(&file_path(Uuid::now_v7(), id_text(&files[0])), doctor.token()).await, 404).await;
        for who in [&clinic.secretary, &clinic.admin] {
            clinic
                .assert_refused(&app, &Call::get(report_path.clone()), who, 403, "lab_file.read", None)
                .await;
        }
        clinic
            .assert_refused(&app, &Call::get(report_path.clone()), ann, 404, "lab_file.read", Some(clinic.ann_record))
            .await;

        // Files may still come with the results, not after the release; then the patient
        // reads them.
        record(&app, lab, &id, &[]).await;
        app.uploaded(lab, &id, &[Part::file("addendum.pdf", pdf())]).await;
        app.lab_step(doctor, &id, "release", &json!({})).await;
        refused(app.upload(lab.token(), &id, &[Part::file("late.pdf", pdf())]).await, 409).await;
        assert_eq!(read_order(&app, doctor, &id).await["files"].as_array().unwrap().len(), 3);
        let response = app.get(&report_path, ann.token()).await;
        assert_eq!(response.status(), 200);
        let request_id = header(&response, "x-request-id").unwrap();
        assert_eq!(response.bytes().await.unwrap().to_vec(), report);
        clinic
            .assert_allowed(&app, &request_id, ann, "lab_file.read", "own_record", clinic.ann_record)
            .await;
        refused(app.get(&report_path, clinic.bob.token()).await, 404).await;
    }

    async fn uploads_that_are_not_what_they_say_are_refused_and_nothing_is_kept(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let (doctor, lab) = (&clinic.doctor, &clinic.lab);
        let id = app.collected_order(doctor, lab, clinic.ann_record, &["ecg", "chest_xray"]).await;
        let wfdb = wfdb_parts(Rhythm::Sinus, "rec");
        let (header_part, signal_part) = (wfdb[0].clone(), wfdb[1].clone());
        let csv = csv_parts(Rhythm::Sinus, "trace");
        let short_csv = "0.1\n0.2\n0.3\n".repeat(100);
        let cases: Vec<(&str, Vec<Part>, &str)> = vec![
            ("a path as name", vec![Part::file("../../x.csv", csv[0].bytes.clone()), csv[1].clone()], "file"),
            // Escaped in the quoted file name: the server reads `..\x.pdf`.
            ("a Windows path", vec![Part::file("..\\\\x.pdf", pdf())], "file"),
            ("an absolute path", vec![Part::file("/etc/passwd.pdf", pdf())], "file"),
            ("CSV named PDF", vec![Part::file("report.pdf", b"a,b\n1,2\n".to_vec())], "file"),
            ("PDF declared PNG", vec![Part::file("report.pdf", pdf()).declared("image/png")], "file"),
            ("PDF named PNG", vec![Part::file("film.png", pdf())], "file"),
            ("PNG named JPEG declared PDF", vec![Part::file("film.jpg", png()).declared("application/pdf")], "file"),
            ("a header alone", vec![header_part.clone()], "file"),
            ("a signal alone", vec![signal_part.clone()], "file"),
            ("a pair of two names", vec![header_part.clone(), Part::file("other.dat", signal_part.bytes.clone())], "file"),
            ("a PDF as signal", vec![header_part.clone(), Part::file("rec.dat", pdf())], "file"),
            ("an executable", vec![Part::file("run.exe", b"MZ\x90\x00".to_vec())], "file"),
            ("an empty file", vec![Part::file("empty.pdf", Vec::new())], "file"),
            ("the same name twice", vec![Part::file("a.pdf", pdf()), Part::file("a.pdf", pdf())], "file"),
            ("a recording too short", vec![Part::file("short.csv", short_csv.into_bytes()), Part::sampling_rate("250")], "file"),
            ("a CSV without its rate", vec![csv[0].clone()], "file"),
            ("a rate out of range", vec![csv[0].clone(), Part::sampling_rate("50")], "sampling_rate"),
            ("no file", Vec::new(), "file"),
        ];
        let mut unexpected = Vec::new();
        for (case, parts, field) in cases {
            let response = app.upload(lab.token(), &id, &parts).await;
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            let refused_as_expected = status == 422
                && body["type"] == "urn:carehub:problem:validation"
                && fields(&body).contains(field);
            if !refused_as_expected {
                unexpected.push(format!("{case}: {status} {body}"));
            }
        }
        assert!(unexpected.is_empty(), "not refused as invalid: {unexpected:#?}");
        let not_multipart = app.post_json(&files_path(&id), lab.token(), &json!({ "file": "x" })).await;
        refused(not_multipart, 415).await;
        let unknown_part = Part { field: "attachment".into(), ..Part::file("report.pdf", pdf()) };
        refused(app.upload(lab.token(), &id, &[unknown_part]).await, 400).await;

        let ordered = id_text(&app.order_tests(doctor, &order_input(clinic.ann_record, &["ecg"], "routine")).await);
        refused(app.upload(lab.token(), &ordered, &[Part::file("r.pdf", pdf())]).await, 409).await;
        refused(app.upload(lab.token(), &Uuid::now_v7().to_string(), &[Part::file("r.pdf", pdf())]).await, 404).await;
        for who in [doctor, &clinic.secretary, &clinic.ann, &clinic.admin] {
            clinic.assert_refused(&app, &upload_call(&id), who, 403, "lab_file.upload", None).await;
        }
        clinic.assert_needs_token(&app, &upload_call(&id)).await;

        assert_eq!(read_order(&app, lab, &id).await["files"], json!([]), "nothing was kept");
        assert_eq!(read_order(&app, lab, &ordered).await["files"], json!([]));
        let kept = app.uploaded(lab, &id, &wfdb).await;
        let kinds: Vec<&str> = kept.iter().map(|f| f["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["ecg_header", "ecg_signal"], "the pair itself is accepted");
    }

    async fn the_patient_sees_every_lab_read_and_change_in_their_access_log(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let (doctor, lab, ann) = (&clinic.doctor, &clinic.lab, &clinic.ann);
        let id = app.collected_order(doctor, lab, clinic.ann_record, &["cbc"]).await;
        let files = app.uploaded(lab, &id, &[Part::file("report.pdf", pdf())]).await;
        record(&app, lab, &id, &[value("cbc", "hemoglobin", 14.0)]).await;
        let response = app.get(&file_path(&id, id_text(&files[0])), doctor.token()).await;
        assert_eq!(response.status(), 200);
        app.lab_step(doctor, &id, "release", &json!({})).await;
        read_order(&app, ann, &id).await;

        let log = app.all_pages(&access_log_path(clinic.ann_record), &ann.token, "", 100).await;
        let seen: BTreeSet<(String, String, String)> = log
            .iter()
            .filter(|e| e["action"].as_str().unwrap().starts_with("lab_"))
            .map(|e| {
                (
                    e["action"].as_str().unwrap().to_owned(),
                    e["actor"]["id"].as_str().unwrap().to_owned(),
                    e["outcome"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let by = |action: &str, who: &Person| (action.to_owned(), who.id.to_string(), "allowed".to_owned());
        let expected: BTreeSet<(String, String, String)> = [
            by("lab_order.create", doctor),
            by("lab_order.update", lab),
            by("lab_file.upload", lab),
            by("lab_result.record", lab),
            by("lab_file.read", doctor),
            by("lab_result.release", doctor),
            by("lab_order.read", ann),
        ]
        .into();
        // (The order's creation also leaves a read by its doctor: see
        // `ordering_tests_is_audited_once_as_the_creation_of_the_order`.)
        let missing: Vec<_> = expected.difference(&seen).collect();
        assert!(missing.is_empty(), "missing {missing:?} from {log:?}");
        let lab_reads: Vec<_> = seen
            .iter()
            .filter(|(action, who, _)| action == "lab_order.read" && *who != doctor.id.to_string())
            .collect();
        assert_eq!(lab_reads.len(), 1, "only Ann read the order: {lab_reads:?}");
        assert!(
            log.iter().all(|e| e["outcome"] == "allowed"),
            "nothing was refused: {log:?}"
        );
    }

}

/// The laboratory's ECG recordings, analysed by the job workers.
mod ecg {
    use super::*;

    /// The order's ECG once its analysis is no longer pending, as `who` reads it.
    pub(super) async fn analysed(app: &TestApp, who: &Person, id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let response = app.get(&ecg_path(id), who.token()).await;
            assert_eq!(response.status(), 200, "the ECG of {id}");
            let ecg: Value = response.json().await.unwrap();
            if ecg["status"] != "pending" {
                return ecg;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not analysed in time: {ecg}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Orders an ECG for Ann, uploads `parts`, and returns the order's id, the recording's
    /// main file (header or CSV) and its analysis.
    pub(super) async fn analyse(
        app: &TestApp,
        clinic: &Clinic,
        parts: &[Part],
    ) -> (String, Value, Value) {
        let id = app
            .collected_order(&clinic.doctor, &clinic.lab, clinic.ann_record, &["ecg"])
            .await;
        let missing = app.get(&ecg_path(&id), clinic.doctor.token()).await;
        refused(missing, 404).await;
        let files = app.uploaded(&clinic.lab, &id, parts).await;
        let main = files
            .iter()
            .find(|f| f["kind"] == "ecg_header" || f["kind"] == "ecg_csv")
            .expect("a recording")
            .clone();
        let ecg = analysed(app, &clinic.doctor, &id).await;
        assert_eq!(
            keys(&ecg),
            [
                "analysis",
                "analyzed_at",
                "disclaimer",
                "failure",
                "file_id",
                "status",
                "trace"
            ]
            .into(),
            "{ecg}"
        );
        assert_eq!(ecg["status"], "analysed", "{ecg}");
        assert_eq!(ecg["file_id"], main["id"]);
        assert!(ecg["failure"].is_null());
        assert!(ecg["analyzed_at"].is_string());
        assert!(
            ecg["disclaimer"]
                .as_str()
                .unwrap()
                .contains("not a diagnosis"),
            "{ecg}"
        );
        let analysis = &ecg["analysis"];
        assert_eq!(analysis["sampling_rate_hz"], 250.0);
        let duration = analysis["duration_secs"].as_f64().unwrap();
        assert!((duration - 30.0).abs() < 0.1, "{duration}");
        let beats: Vec<u64> = analysis["beats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_u64().unwrap())
            .collect();
        assert!(beats.len() > 20, "{beats:?}");
        assert!(
            beats.windows(2).all(|w| w[0] < w[1]),
            "beats in order: {beats:?}"
        );
        assert!(beats.iter().all(|&b| b < 7_500), "{beats:?}");
        assert!(analysis["rr"]["mean_ms"].as_f64().unwrap() > 0.0);
        assert_eq!(ecg["trace"]["sampling_rate_hz"], 250.0);
        assert_eq!(
            ecg["trace"]["samples"].as_array().unwrap().len(),
            2_500,
            "ten seconds"
        );
        (id, main, ecg)
    }

    backend_tests_with! {
        ["--job-poll-ms", "50"];

        async fn an_atrial_fibrillation_recording_is_analysed_and_alerts_the_ordering_doctor_urgently(app: TestApp) {
            let clinic = Clinic::open(&app).await;
            for (format, parts) in [
                ("WFDB 212", wfdb_parts(Rhythm::AtrialFibrillation, "af01")),
                ("CSV", csv_parts(Rhythm::AtrialFibrillation, "af01")),
            ] {
                let (id, main, ecg) = analyse(&app, &clinic, &parts).await;
                let analysis = &ecg["analysis"];
                assert_eq!(analysis["rhythm"], "atrial_fibrillation_suspected", "{format}: {analysis}");
                let rate = analysis["heart_rate_bpm"].as_f64().unwrap();
                assert!((70.0..=140.0).contains(&rate), "{format}: {rate}");
                if format == "CSV" {
                    assert_eq!(main["sampling_rate_hz"], 250.0);
                }

                let alerts = app.lab_notifications(&clinic.doctor, "lab.ecg_alert", &id).await;
                assert_eq!(alerts.len(), 1, "{format}: {alerts:?}");
                assert_lab_notification(&alerts[0], "lab.ecg_alert", &id, true);
                let by_lab = app.get(&ecg_path(&id), clinic.lab.token()).await;
                assert_eq!(by_lab.status(), 200);
                assert_eq!(by_lab.json::<Value>().await.unwrap(), ecg, "{format}");
            }
            let ann_lab_notices: Vec<Value> = app
                .all_notifications(&clinic.ann.token)
                .await
                .into_iter()
                .filter(|n| n["data"]["lab_order_id"].is_string())
                .collect();
            assert!(ann_lab_notices.is_empty(), "the patient is not alarmed: {ann_lab_notices:?}");
        }

        async fn a_sinus_recording_is_analysed_as_normal_and_alerts_nobody(app: TestApp) {
            let clinic = Clinic::open(&app).await;
            for (format, parts) in [
                ("WFDB 212", wfdb_parts(Rhythm::Sinus, "sinus")),
                ("CSV", csv_parts(Rhythm::Sinus, "sinus")),
            ] {
                let (id, _, ecg) = analyse(&app, &clinic, &parts).await;
                let analysis = &ecg["analysis"];
                assert_eq!(analysis["rhythm"], "normal_sinus", "{format}: {analysis}");
                let rate = analysis["heart_rate_bpm"].as_f64().unwrap();
                assert!((65.0..=75.0).contains(&rate), "{format}: {rate}");
                assert!(app.lab_notifications(&clinic.doctor, "lab.ecg_alert", &id).await.is_empty());

                // The patient reads it once released, like the rest of the order.
                clinic
                    .assert_refused(&app, &Call::get(ecg_path(&id)), &clinic.ann, 404, "lab_order.read", Some(clinic.ann_record))
                    .await;
                record(&app, &clinic.lab, &id, &[]).await;
                app.lab_step(&clinic.doctor, &id, "release", &json!({})).await;
                let seen = clinic
                    .assert_read(&app, &ecg_path(&id), &clinic.ann, "lab_order.read", "own_record", clinic.ann_record)
                    .await;
                assert_eq!(seen, ecg, "{format}");
            }
            for who in [&clinic.secretary, &clinic.admin] {
                assert_forbidden(app.get(&ecg_path(Uuid::now_v7()), who.token()).await).await;
            }
        }
    }
}

/// A server that takes files of at most 4 KiB.
mod small_files {
    use super::*;

    backend_tests_with! {
        ["--lab-max-file-bytes", "4096"];

        async fn a_file_over_the_size_limit_is_refused_as_too_large(app: TestApp) {
            let clinic = Clinic::open(&app).await;
            let id = app
                .collected_order(&clinic.doctor, &clinic.lab, clinic.ann_record, &["chest_xray"])
                .await;
            let sized = |size: usize| {
                let mut bytes = pdf();
                bytes.resize(size, b' ');
                bytes
            };
            let response = app.upload(clinic.lab.token(), &id, &[Part::file("big.pdf", sized(4_097))]).await;
            refused(response, 413).await;
            let response = app.upload(clinic.lab.token(), &id, &[Part::file("huge.pdf", sized(64 * 1024))]).await;
            refused(response, 413).await;
            assert_eq!(read_order(&app, &clinic.lab, &id).await["files"], json!([]));

            let kept = app.uploaded(&clinic.lab, &id, &[Part::file("fits.pdf", sized(4_096))]).await;
            assert_eq!(kept[0]["size"], 4_096);
            assert_eq!(kept[0]["sha256"], sha256_hex(&sized(4_096)));
        }
    }
}

/// A server that releases results two seconds after they are recorded.
mod release_delay {
    use super::*;

    backend_tests_with! {
        ["--lab-release-delay-secs", "2", "--job-poll-ms", "50"];

        async fn results_no_doctor_releases_reach_the_patient_after_the_delay(app: TestApp) {
            let clinic = Clinic::open(&app).await;
            let (doctor, lab, ann) = (&clinic.doctor, &clinic.lab, &clinic.ann);
            let waiting = app.collected_order(doctor, lab, clinic.ann_record, &["cbc"]).await;
            let resulted = record(&app, lab, &waiting, &[value("cbc", "hemoglobin", 13.0)]).await;
            assert_eq!(resulted["status"], "resulted");
            let released_by_hand = app.collected_order(doctor, lab, clinic.ann_record, &["cbc"]).await;
            record(&app, lab, &released_by_hand, &[value("cbc", "hemoglobin", 13.0)]).await;
            app.lab_step(doctor, &released_by_hand, "release", &json!({})).await;

            let deadline = tokio::time::Instant::now() + WAIT;
            let released = loop {
                let order = read_order(&app, doctor, &waiting).await;
                if order["status"] == "released" {
                    break order;
                }
                assert_eq!(order["status"], "resulted");
                assert!(tokio::time::Instant::now() < deadline, "never released: {order}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            assert!(released["released_by"].is_null(), "nobody released it: {released}");
            assert!(released["released_at"].is_string());
            let told = app.lab_notifications(ann, "lab.released", &waiting).await;
            assert_eq!(told.len(), 1, "{told:?}");
            assert_lab_notification(&told[0], "lab.released", &waiting, false);
            assert_eq!(read_order(&app, ann, &waiting).await, released);

            // Releasing by hand withdrew that order's automatic release.
            let jobs = app
                .all_pages("/api/v1/admin/jobs", &clinic.admin.token, "kind=lab.auto_release", 10)
                .await;
            assert_eq!(jobs.len(), 1, "{jobs:?}");
            assert_eq!(jobs[0]["args"]["order"], waiting.as_str(), "{jobs:?}");
            assert_eq!(jobs[0]["state"], "succeeded", "{jobs:?}");
            let by_hand = read_order(&app, doctor, &released_by_hand).await;
            assert_eq!(by_hand["released_by"], json!(doctor.id));
            let told = app.lab_notifications(ann, "lab.released", &released_by_hand).await;
            assert_eq!(told.len(), 1, "told once: {told:?}");
        }
    }
}

/// A server that escalates a critical result left unread for two seconds.
mod critical_escalation {
    use super::*;

    /// The escalations `who` received about the order `id`.
    async fn escalations(app: &TestApp, who: &Person, id: &str) -> Vec<Value> {
        app.lab_notifications(who, "lab.critical_escalated", id)
            .await
    }

    /// Waits for the order's escalation job to finish.
    async fn escalation_done(app: &TestApp, clinic: &Clinic) {
        let jobs = app
            .all_pages(
                "/api/v1/admin/jobs",
                &clinic.admin.token,
                "kind=lab.critical_escalation",
                10,
            )
            .await;
        assert_eq!(
            jobs.len(),
            1,
            "one escalation per critical result: {jobs:?}"
        );
        let job_id = jobs[0]["id"].as_str().unwrap().parse().unwrap();
        app.wait_for_job(&clinic.admin.token, job_id, "succeeded", WAIT)
            .await;
    }

    backend_tests_with! {
        ["--lab-critical-escalation-secs", "2", "--job-poll-ms", "50"];

        async fn an_unread_critical_result_is_escalated_to_the_other_doctors_of_the_care_team(app: TestApp) {
            let clinic = Clinic::open(&app).await;
            let chase = colleague(&app, &clinic).await;
            let id = app.collected_order(&clinic.doctor, &clinic.lab, clinic.ann_record, &["cbc"]).await;
            record(&app, &clinic.lab, &id, &[value("cbc", "hemoglobin", 6.0)]).await;

            let deadline = tokio::time::Instant::now() + WAIT;
            while escalations(&app, &chase, &id).await.is_empty() {
                assert!(tokio::time::Instant::now() < deadline, "never escalated");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            escalation_done(&app, &clinic).await;
            let told = escalations(&app, &chase, &id).await;
            assert_eq!(told.len(), 1, "once: {told:?}");
            assert_lab_notification(&told[0], "lab.critical_escalated", &id, true);
            for who in [&clinic.doctor, &clinic.former, &clinic.outsider, &clinic.ann, &clinic.admin] {
                assert!(escalations(&app, who, &id).await.is_empty(), "{}", who.username);
            }
        }

        async fn a_critical_result_the_ordering_doctor_has_read_is_not_escalated(app: TestApp) {
            let clinic = Clinic::open(&app).await;
            let chase = colleague(&app, &clinic).await;
            let id = app.collected_order(&clinic.doctor, &clinic.lab, clinic.ann_record, &["cbc"]).await;
            record(&app, &clinic.lab, &id, &[value("cbc", "hemoglobin", 6.0)]).await;
            let alarm = app.lab_notifications(&clinic.doctor, "lab.critical", &id).await;
            assert_eq!(alarm.len(), 1, "{alarm:?}");
            let read = app
                .post_json(
                    &format!("/api/v1/notifications/{}/read", alarm[0]["id"]),
                    clinic.doctor.token(),
                    &json!({}),
                )
                .await;
            assert_eq!(read.status(), 200);

            escalation_done(&app, &clinic).await;
            for who in [&chase, &clinic.doctor, &clinic.former, &clinic.outsider] {
                assert!(escalations(&app, who, &id).await.is_empty(), "{}", who.username);
            }
        }
    }
}

/// What the trail calls each attempt: what was attempted, once.
mod audit_labels {
    use super::*;

    pub(super) async fn refusals_of_doctors_outside_the_care_team_are_audited_as_what_they_attempted(
        app: TestApp,
    ) {
        let clinic = Clinic::open(&app).await;
        let (doctor, lab, outsider) = (&clinic.doctor, &clinic.lab, &clinic.outsider);
        let id = app
            .collected_order(doctor, lab, clinic.ann_record, &["cbc"])
            .await;
        let files = app
            .uploaded(lab, &id, &[Part::file("report.pdf", pdf())])
            .await;
        let mut mislabelled = Vec::new();
        for (call, attempted) in [
            (Call::get(order_path(&id)), "lab_order.read"),
            (Call::get(ecg_path(&id)), "lab_order.read"),
            (
                Call::post(step_path(&id, "cancel"), json!({})),
                "lab_order.cancel",
            ),
            (
                Call::post(step_path(&id, "release"), json!({})),
                "lab_result.release",
            ),
            (
                Call::get(file_path(&id, id_text(&files[0]))),
                "lab_file.read",
            ),
            (
                Call::get(format!("{LAB_ORDERS}?patient_id={}", clinic.ann_record)),
                "lab_order.list",
            ),
        ] {
            let response = app.call(&call, outsider.token()).await;
            let request_id = header(&response, "x-request-id").unwrap();
            refused(response, 404).await;
            let events = app.audit_of_request(&clinic.admin.token, &request_id).await;
            assert_eq!(events.len(), 1, "{} {}: {events:?}", call.method, call.path);
            let event = &events[0];
            assert_eq!(event["outcome"], "denied", "{event}");
            assert_eq!(event["patient_id"], json!(clinic.ann_record), "{event}");
            if event["action"] != attempted {
                mislabelled.push(format!(
                    "{} {}: audited as {}, not {attempted}",
                    call.method, call.path, event["action"]
                ));
            }
        }
        assert!(mislabelled.is_empty(), "{mislabelled:#?}");
    }

    pub(super) async fn ordering_tests_is_audited_once_as_the_creation_of_the_order(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let input = order_input(clinic.ann_record, &["cbc"], "routine");
        let response = app
            .post_json(LAB_ORDERS, clinic.doctor.token(), &input)
            .await;
        assert_eq!(response.status(), 201);
        let request_id = header(&response, "x-request-id").unwrap();
        clinic
            .assert_allowed(
                &app,
                &request_id,
                &clinic.doctor,
                "lab_order.create",
                "care_team",
                clinic.ann_record,
            )
            .await;
    }

    mod sqlite {
        use carehub_tests::{Backend, TestApp};

        #[tokio::test]
        async fn refusals_of_doctors_outside_the_care_team_are_audited_as_what_they_attempted() {
            if let Some(app) = TestApp::spawn(Backend::Sqlite).await {
                super::refusals_of_doctors_outside_the_care_team_are_audited_as_what_they_attempted(app).await;
            }
        }

        #[tokio::test]
        async fn ordering_tests_is_audited_once_as_the_creation_of_the_order() {
            if let Some(app) = TestApp::spawn(Backend::Sqlite).await {
                super::ordering_tests_is_audited_once_as_the_creation_of_the_order(app).await;
            }
        }
    }

    mod postgres {
        use carehub_tests::{Backend, TestApp};

        #[tokio::test]
        async fn refusals_of_doctors_outside_the_care_team_are_audited_as_what_they_attempted() {
            if let Some(app) = TestApp::spawn(Backend::Postgres).await {
                super::refusals_of_doctors_outside_the_care_team_are_audited_as_what_they_attempted(app).await;
            }
        }

        #[tokio::test]
        async fn ordering_tests_is_audited_once_as_the_creation_of_the_order() {
            if let Some(app) = TestApp::spawn(Backend::Postgres).await {
                super::ordering_tests_is_audited_once_as_the_creation_of_the_order(app).await;
            }
        }
    }
}

/// Lab files in an S3 bucket (a moto server of the test's own) instead of the data directory.
mod in_a_bucket {
    use object_store::ObjectStoreExt as _;
    use object_store::aws::AmazonS3Builder;
    use object_store::path::Path;

    use carehub_infra::testing::ScratchBucket;
    use carehub_tests::Backend;

    use super::*;

    #[tokio::test]
    async fn files_and_recordings_are_kept_in_the_bucket_and_read_back_from_it() {
        let Some(bucket) = ScratchBucket::create("clinic/files").await else {
            return;
        };
        let settings = bucket.settings();
        let (region, key_id, secret) = (
            settings.region.clone().unwrap(),
            settings.access_key_id.clone().unwrap(),
            settings.secret_access_key.clone().unwrap(),
        );
        let app = TestApp::spawn_with(
            Backend::Sqlite,
            &[
                "--storage-url",
                &bucket.url,
                "--storage-endpoint",
                &bucket.endpoint,
                "--storage-region",
                &region,
                "--storage-access-key-id",
                &key_id,
                "--storage-secret-access-key",
                &secret,
                "--job-poll-ms",
                "50",
            ],
        )
        .await
        .unwrap();
        let clinic = Clinic::open(&app).await;
        let (doctor, lab) = (&clinic.doctor, &clinic.lab);

        let id = app
            .collected_order(doctor, lab, clinic.ann_record, &["chest_xray"])
            .await;
        let report = pdf();
        let files = app
            .uploaded(lab, &id, &[Part::file("report.pdf", report.clone())])
            .await;
        let response = app
            .get(&file_path(&id, id_text(&files[0])), doctor.token())
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.bytes().await.unwrap().to_vec(), report);

        // The bytes are in the bucket under the prefix, and not in the data directory.
        let s3 = AmazonS3Builder::new()
            .with_bucket_name(&bucket.bucket)
            .with_endpoint(&bucket.endpoint)
            .with_allow_http(true)
            .with_region(region)
            .with_access_key_id(key_id)
            .with_secret_access_key(secret)
            .build()
            .unwrap();
        let object = s3
            .get(&Path::from(format!(
                "clinic/files/lab/{id}/{}",
                id_text(&files[0])
            )))
            .await
            .expect("the report is in the bucket");
        assert_eq!(object.bytes().await.unwrap().to_vec(), report);
        assert!(
            !app.data_dir.join("files").exists(),
            "nothing in the data directory"
        );

        // The analysis job reads its recording back from the bucket.
        let (_, _, ecg) = ecg::analyse(&app, &clinic, &wfdb_parts(Rhythm::Sinus, "rec")).await;
        assert_eq!(ecg["analysis"]["rhythm"], "normal_sinus", "{ecg}");
    }

    #[tokio::test]
    async fn the_server_does_not_start_on_a_bucket_that_is_not_there() {
        let Some(bucket) = ScratchBucket::create("files").await else {
            return;
        };
        let settings = bucket.settings();
        let url = "s3://no-such-bucket/files";
        let data_dir =
            std::env::temp_dir().join(format!("carehub-app-{}", Uuid::new_v4().simple()));
        let data_dir = data_dir.display().to_string();
        let args = [
            "carehub",
            "--data-dir",
            &data_dir,
            "--storage-url",
            url,
            "--storage-endpoint",
            &bucket.endpoint,
            "--storage-region",
            settings.region.as_deref().unwrap(),
            "--storage-access-key-id",
            settings.access_key_id.as_deref().unwrap(),
            "--storage-secret-access-key",
            settings.secret_access_key.as_deref().unwrap(),
        ];
        let settings = carehub_web::settings::Settings::parse_from_args(args).unwrap();
        let error = carehub_web::startup::Application::build(settings)
            .await
            .expect_err("no bucket, no server");
        let message = format!("{error:#}");
        assert!(
            message.contains("file store") && message.contains("no-such-bucket"),
            "{message}"
        );
        let _ = std::fs::remove_dir_all(&data_dir);
    }
}
