//! The audit trail over HTTP: one event per attempt on a patient's record (allowed or denied),
//! the administrators' trail with its filters and pages, a patient's own access log, and no way
//! to change or delete any of it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use carehub_tests::clinic::{
    AUDIT, Body, Call, Clinic, EMERGENCY_ACCESSES, Person, access_log_path, care_team_path, ids,
    medical_input, medical_path, member_path, notes_path, patient_input, patient_path,
};
use carehub_tests::{
    TestApp, assert_forbidden, assert_problem_type, assert_unauthorized, backend_tests, header,
    id_of,
};

fn time_of(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(value.as_str().expect("a time"), &Rfc3339)
        .unwrap_or_else(|_| panic!("{value} is not RFC 3339"))
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

fn assert_event_view(event: &Value) {
    let keys: BTreeSet<&str> = event
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "at",
            "actor",
            "patient_id",
            "action",
            "outcome",
            "basis",
            "request_id"
        ]
        .into(),
        "{event}"
    );
    let actor: BTreeSet<&str> = event["actor"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(actor, ["id", "full_name", "role"].into(), "{event}");
    time_of(&event["at"]);
    assert!(event["id"].as_str().unwrap().parse::<Uuid>().is_ok());
}

/// Asserts newest first: times never increase, and no event appears twice.
fn assert_newest_first(events: &[Value]) {
    for pair in events.windows(2) {
        assert!(
            time_of(&pair[0]["at"]) >= time_of(&pair[1]["at"]),
            "newest first: {} then {}",
            pair[0],
            pair[1]
        );
    }
    let distinct: BTreeSet<Uuid> = ids(events).into_iter().collect();
    assert_eq!(distinct.len(), events.len(), "no event twice");
}

/// Sends `call` as `who`, asserting `status`; returns the request's id.
async fn send(app: &TestApp, call: &Call, who: &Person, status: u16) -> String {
    let response = app.call(call, who.token()).await;
    assert_eq!(
        response.status(),
        status,
        "{} {} as {}",
        call.method,
        call.path,
        who.username
    );
    header(&response, "x-request-id").expect("a request id")
}

/// (action, outcome, basis, actor) of each event.
fn summary(events: &[Value]) -> Vec<(String, String, Value, Uuid)> {
    events
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
                e["basis"].clone(),
                e["actor"]["id"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

backend_tests! {
    async fn every_attempt_on_a_record_leaves_one_audit_event(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let (admin, secretary, doctor) = (&clinic.admin, &clinic.secretary, &clinic.doctor);
        let response = app
            .post_json(
                carehub_tests::clinic::PATIENTS,
                doctor.token(),
                &patient_input("Audited Patient"),
            )
            .await;
        assert_eq!(response.status(), 201);
        let mut requests = vec![header(&response, "x-request-id").unwrap()];
        let created: Value = response.json().await.unwrap();
        let id = id_of(&created);
        let mrn = created["mrn"].as_str().unwrap().to_owned();

        let steps: Vec<(Call, &Person, u16)> = vec![
            (Call::get(patient_path(id)), secretary, 200),
            (
                Call::patch(patient_path(id), json!({ "sex": "unknown" })),
                doctor,
                200,
            ),
            (Call::put(medical_path(id), medical_input()), doctor, 200),
            (Call::get(medical_path(id)), doctor, 200),
            (
                Call::post(notes_path(id), json!({ "body": "Seen today." })),
                doctor,
                201,
            ),
            (Call::get(notes_path(id)), doctor, 200),
            (Call::get(care_team_path(id)), admin, 200),
            (
                Call::post(
                    care_team_path(id),
                    json!({ "doctor_id": clinic.outsider.id }),
                ),
                admin,
                201,
            ),
            (
                Call::delete(member_path(id, clinic.outsider.id)),
                admin,
                200,
            ),
            (
                Call::post(
                    carehub_tests::clinic::emergency_path(id),
                    json!({ "reason": carehub_tests::clinic::EMERGENCY_REASON }),
                ),
                &clinic.former,
                201,
            ),
            (Call::get(medical_path(id)), &clinic.former, 200),
            (Call::get(patient_path(id)), &clinic.lab, 403),
            (Call::get(notes_path(id)), &clinic.outsider, 404),
            (
                Call::get(format!("{}?q={mrn}", carehub_tests::clinic::PATIENTS)),
                secretary,
                200,
            ),
            (Call::get(access_log_path(id)), admin, 200),
        ];
        for (call, who, status) in &steps {
            requests.push(send(&app, call, who, *status).await);
        }
        let role = json!("role");
        let team = json!("care_team");
        let glass = json!("emergency_access");
        let expected = vec![
            ("patient.create", "allowed", role.clone(), doctor.id),
            ("patient.read", "allowed", role.clone(), secretary.id),
            ("patient.update", "allowed", team.clone(), doctor.id),
            ("medical.update", "allowed", team.clone(), doctor.id),
            ("medical.read", "allowed", team.clone(), doctor.id),
            ("note.create", "allowed", team.clone(), doctor.id),
            ("notes.read", "allowed", team.clone(), doctor.id),
            ("care_team.read", "allowed", role.clone(), admin.id),
            ("care_team.add", "allowed", role.clone(), admin.id),
            ("care_team.end", "allowed", role.clone(), admin.id),
            (
                "emergency_access.grant",
                "allowed",
                role.clone(),
                clinic.former.id,
            ),
            ("medical.read", "allowed", glass, clinic.former.id),
            ("patient.read", "denied", Value::Null, clinic.lab.id),
            ("notes.read", "denied", Value::Null, clinic.outsider.id),
            ("patient.list", "allowed", role.clone(), secretary.id),
            ("access_log.read", "allowed", role, admin.id),
        ];
        let mut expected: Vec<(String, String, Value, Uuid)> = expected
            .into_iter()
            .map(|(a, o, b, u)| (a.to_owned(), o.to_owned(), b, u))
            .collect();
        expected.reverse();
        requests.reverse();

        let events = app.audit(&admin.token, &format!("patient_id={id}")).await;
        assert_eq!(summary(&events), expected, "newest first");
        assert_newest_first(&events);
        for (event, request_id) in events.iter().zip(&requests) {
            assert_event_view(event);
            assert_eq!(event["patient_id"], json!(id));
            assert_eq!(&event["request_id"], request_id, "{event}");
        }
        let names: BTreeSet<(String, String)> = events
            .iter()
            .map(|e| {
                (
                    e["actor"]["full_name"].as_str().unwrap().to_owned(),
                    e["actor"]["role"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let expected_names: BTreeSet<(String, String)> = [
            ("Admin clinic.admin", "admin"),
            ("Test sec.sarah", "secretary"),
            ("Test dr.house", "doctor"),
            ("Test dr.wilson", "doctor"),
            ("Test dr.cuddy", "doctor"),
            ("Test lab.lee", "laboratory"),
        ]
        .iter()
        .map(|(n, r)| ((*n).to_owned(), (*r).to_owned()))
        .collect();
        assert_eq!(names, expected_names);

        // Refusals with no patient (registering, searching, one's own record) are audited too.
        let lab = &clinic.lab;
        let create = send(
            &app,
            &Call::post(carehub_tests::clinic::PATIENTS, patient_input("X")),
            lab,
            403,
        )
        .await;
        let list = send(&app, &Call::get(carehub_tests::clinic::PATIENTS), lab, 403).await;
        let own = send(&app, &Call::get(carehub_tests::clinic::MY_RECORD), lab, 403).await;
        let lab_events = app
            .audit(&admin.token, &format!("user_id={}", lab.id))
            .await;
        let by_request = |request_id: &str| -> Vec<Value> {
            lab_events
                .iter()
                .filter(|e| e["request_id"] == request_id)
                .cloned()
                .collect()
        };
        for (request_id, action) in [
            (create, "patient.create"),
            (list, "patient.list"),
            (own, "patient.read"),
        ] {
            let events = by_request(&request_id);
            assert_eq!(events.len(), 1, "{action}: {events:?}");
            assert_eq!(events[0]["action"], action);
            assert_eq!(events[0]["outcome"], "denied");
            assert!(events[0]["patient_id"].is_null());
            assert!(events[0]["basis"].is_null());
        }
    }

    async fn the_audit_trail_filters_by_patient_user_and_time(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let token = &clinic.admin.token;
        for who in [&clinic.secretary, &clinic.doctor, &clinic.ann] {
            send(&app, &Call::get(patient_path(clinic.ann_record)), who, 200).await;
        }
        send(
            &app,
            &Call::get(patient_path(clinic.bob_record)),
            &clinic.secretary,
            200,
        )
        .await;
        send(
            &app,
            &Call::get(patient_path(clinic.bob_record)),
            &clinic.doctor,
            404,
        )
        .await;

        let all = app.audit(token, "").await;
        assert_newest_first(&all);
        for event in &all {
            assert_event_view(event);
        }
        let of = |filter: &dyn Fn(&Value) -> bool| -> Vec<Value> {
            all.iter().filter(|e| filter(e)).cloned().collect()
        };

        let ann = json!(clinic.ann_record);
        let by_patient = app
            .audit(token, &format!("patient_id={}", clinic.ann_record))
            .await;
        assert_eq!(by_patient, of(&|e| e["patient_id"] == ann));
        let secretary = json!(clinic.secretary.id);
        let by_user = app
            .audit(token, &format!("user_id={}", clinic.secretary.id))
            .await;
        assert_eq!(by_user, of(&|e| e["actor"]["id"] == secretary));
        let doctor = json!(clinic.doctor.id);
        let bob = json!(clinic.bob_record);
        let both = app
            .audit(
                token,
                &format!(
                    "patient_id={}&user_id={}",
                    clinic.bob_record, clinic.doctor.id
                ),
            )
            .await;
        assert_eq!(
            both,
            of(&|e| e["patient_id"] == bob && e["actor"]["id"] == doctor)
        );
        assert_eq!(both.len(), 1);
        assert_eq!(both[0]["outcome"], "denied");
        assert!(
            app.audit(token, &format!("patient_id={}", Uuid::now_v7()))
                .await
                .is_empty()
        );
        assert!(
            app.audit(token, &format!("user_id={}", clinic.lab.id))
                .await
                .is_empty()
        );

        // `from` is inclusive, `to` exclusive.
        let middle = time_of(&all[all.len() / 2]["at"]);
        let later = time_of(&all[2]["at"]);
        let stamp = |t: OffsetDateTime| encode(&t.format(&Rfc3339).unwrap());
        let from = app.audit(token, &format!("from={}", stamp(middle))).await;
        assert_eq!(from, of(&|e| time_of(&e["at"]) >= middle));
        assert!(!from.is_empty());
        let to = app.audit(token, &format!("to={}", stamp(middle))).await;
        assert_eq!(to, of(&|e| time_of(&e["at"]) < middle));
        assert_eq!(from.len() + to.len(), all.len());
        let window = app
            .audit(
                token,
                &format!(
                    "from={}&to={}&patient_id={}",
                    stamp(middle),
                    stamp(later),
                    clinic.ann_record
                ),
            )
            .await;
        assert_eq!(
            window,
            of(&|e| time_of(&e["at"]) >= middle
                && time_of(&e["at"]) < later
                && e["patient_id"] == ann)
        );
        let offset = middle.to_offset(time::UtcOffset::from_hms(2, 0, 0).unwrap());
        assert_eq!(
            app.audit(token, &format!("from={}", stamp(offset))).await,
            from,
            "any offset"
        );
        let tomorrow = OffsetDateTime::now_utc() + time::Duration::days(1);
        assert!(
            app.audit(token, &format!("from={}", stamp(tomorrow)))
                .await
                .is_empty()
        );

        for query in [
            "patient_id=nope",
            "user_id=42",
            "from=yesterday",
            "to=2026-13-01T00:00:00Z",
            "limit=0",
            "limit=101",
            "cursor=nope",
        ] {
            let response = app.get(&format!("{AUDIT}?{query}"), Some(token)).await;
            assert_problem_type(response, 400, "bad-request").await;
        }
    }

    async fn the_audit_trail_pages_newest_first_without_gaps_or_repeats(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let token = &clinic.admin.token;
        for _ in 0..16 {
            send(
                &app,
                &Call::get(patient_path(clinic.ann_record)),
                &clinic.secretary,
                200,
            )
            .await;
        }
        let all = app.audit(token, "").await;
        assert!(all.len() > 20, "{} events", all.len());
        assert_newest_first(&all);
        for limit in [1, 4, 7] {
            assert_eq!(
                app.all_pages(AUDIT, token, "", limit).await,
                all,
                "limit {limit}"
            );
        }
        let page: Value = app.get(AUDIT, Some(token)).await.json().await.unwrap();
        assert_eq!(
            page["items"].as_array().unwrap().len(),
            all.len().min(50),
            "50 by default"
        );

        // Paging on while new events arrive: the new ones are newer and never slip in.
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let query = match &cursor {
                Some(c) => format!("{AUDIT}?limit=5&cursor={c}"),
                None => format!("{AUDIT}?limit=5"),
            };
            let page: Value = app.get(&query, Some(token)).await.json().await.unwrap();
            seen.extend(page["items"].as_array().unwrap().iter().cloned());
            send(
                &app,
                &Call::get(patient_path(clinic.bob_record)),
                &clinic.secretary,
                200,
            )
            .await;
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, all);
        let now = app.audit(token, "").await;
        assert_eq!(now.len(), all.len() + seen.len().div_ceil(5));
        assert_eq!(now[now.len() - all.len()..], all[..]);
    }

    async fn a_patient_sees_who_accessed_their_record(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let id = clinic.ann_record;
        send(&app, &Call::get(patient_path(id)), &clinic.secretary, 200).await;
        send(&app, &Call::get(medical_path(id)), &clinic.doctor, 200).await;
        send(&app, &Call::get(medical_path(id)), &clinic.outsider, 404).await;

        let before = app
            .audit(&clinic.admin.token, &format!("patient_id={id}"))
            .await;
        let response = app.get(&access_log_path(id), clinic.ann.token()).await;
        assert_eq!(response.status(), 200);
        let request_id = header(&response, "x-request-id").unwrap();
        let log: Value = response.json().await.unwrap();
        assert_eq!(
            log["items"],
            json!(before),
            "the patient sees every event of their record"
        );
        assert!(log["next_cursor"].is_null());
        let refused = &log["items"][0];
        assert_eq!(refused["actor"]["id"], json!(clinic.outsider.id));
        assert_eq!(refused["outcome"], "denied");
        clinic
            .assert_allowed(
                &app,
                &request_id,
                &clinic.ann,
                "access_log.read",
                "own_record",
                id,
            )
            .await;

        // Paged by 2: each page read is audited, newer, and never slips into the pages.
        let snapshot = app
            .audit(&clinic.admin.token, &format!("patient_id={id}"))
            .await;
        assert_eq!(
            app.all_pages(&access_log_path(id), &clinic.ann.token, "", 2)
                .await,
            snapshot
        );
        let admin_read = clinic
            .assert_read(
                &app,
                &format!("{}?limit=100", access_log_path(id)),
                &clinic.admin,
                "access_log.read",
                "role",
                id,
            )
            .await;
        let items = admin_read["items"].as_array().unwrap();
        assert_eq!(items[items.len() - snapshot.len()..], snapshot[..]);
        for event in items {
            assert_event_view(event);
            assert_eq!(event["patient_id"], json!(id));
        }

        // Bob's log holds only Bob's record.
        let bob_log = app
            .all_pages(
                &access_log_path(clinic.bob_record),
                &clinic.bob.token,
                "",
                100,
            )
            .await;
        assert!(!bob_log.is_empty());
        assert!(
            bob_log
                .iter()
                .all(|e| e["patient_id"] == json!(clinic.bob_record))
        );

        // Everyone else is refused, and the refusals show in Ann's log.
        let call = Call::get(access_log_path(id));
        for (who, status) in [
            (&clinic.bob, 404),
            (&clinic.secretary, 403),
            (&clinic.doctor, 403),
            (&clinic.outsider, 403),
            (&clinic.former, 403),
            (&clinic.lab, 403),
        ] {
            clinic
                .assert_refused(&app, &call, who, status, "access_log.read", Some(id))
                .await;
        }
        clinic.assert_needs_token(&app, &call).await;
        let log = app
            .all_pages(&access_log_path(id), &clinic.ann.token, "", 100)
            .await;
        let refusals: Vec<Uuid> = log
            .iter()
            .filter(|e| e["action"] == "access_log.read" && e["outcome"] == "denied")
            .map(|e| e["actor"]["id"].as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(
            refusals,
            vec![
                clinic.lab.id,
                clinic.former.id,
                clinic.outsider.id,
                clinic.doctor.id,
                clinic.secretary.id,
                clinic.bob.id
            ]
        );
        let missing = Uuid::now_v7();
        clinic
            .assert_refused(
                &app,
                &Call::get(access_log_path(missing)),
                &clinic.ann,
                404,
                "access_log.read",
                Some(missing),
            )
            .await;
        assert_problem_type(
            app.get(&access_log_path(missing), clinic.admin.token())
                .await,
            404,
            "not-found",
        )
        .await;
    }

    async fn a_patient_sees_when_the_glass_was_broken_on_their_record(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let id = clinic.ann_record;
        let access = app.emergency_access(&clinic.outsider.token, id).await;
        send(&app, &Call::get(medical_path(id)), &clinic.outsider, 200).await;
        send(&app, &Call::get(notes_path(id)), &clinic.outsider, 200).await;
        let log = app
            .all_pages(&access_log_path(id), &clinic.ann.token, "", 100)
            .await;
        let glass: Vec<(String, Value)> = log
            .iter()
            .filter(|e| e["actor"]["id"] == json!(clinic.outsider.id))
            .map(|e| {
                assert_eq!(e["actor"]["full_name"], "Test dr.wilson");
                assert_eq!(e["actor"]["role"], "doctor");
                assert_eq!(e["outcome"], "allowed");
                (e["action"].as_str().unwrap().to_owned(), e["basis"].clone())
            })
            .collect();
        assert_eq!(
            glass,
            vec![
                ("notes.read".to_owned(), json!("emergency_access")),
                ("medical.read".to_owned(), json!("emergency_access")),
                ("emergency_access.grant".to_owned(), json!("role")),
            ]
        );
        let grant = log
            .iter()
            .find(|e| e["action"] == "emergency_access.grant")
            .unwrap();
        assert_eq!(time_of(&grant["at"]), time_of(&access["granted_at"]));
        let listed = app
            .all_pages(
                EMERGENCY_ACCESSES,
                &clinic.admin.token,
                &format!("patient_id={id}"),
                100,
            )
            .await;
        assert_eq!(listed, vec![access]);
    }

    async fn only_administrators_read_the_audit_trail(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let before = app.audit(&clinic.admin.token, "").await;
        for who in [&clinic.secretary, &clinic.doctor, &clinic.lab, &clinic.ann] {
            for query in [
                "",
                "?patient_id=nope",
                &format!("?patient_id={}", clinic.ann_record),
                &format!("?user_id={}", who.id),
            ] {
                assert_forbidden(app.get(&format!("{AUDIT}{query}"), who.token()).await).await;
            }
        }
        assert_unauthorized(app.get(AUDIT, None).await).await;
        let after = app.audit(&clinic.admin.token, "").await;
        assert_eq!(
            after.len(),
            before.len(),
            "reading the trail is no access to a record"
        );
    }

    async fn the_audit_trail_cannot_be_changed_or_deleted(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let token = clinic.admin.token();
        let before = app.audit(&clinic.admin.token, "").await;
        let event_id = id_of(&before[0]);
        let body = Body::Json(json!({ "outcome": "allowed" }));
        for path in [
            AUDIT.to_owned(),
            access_log_path(clinic.ann_record),
            EMERGENCY_ACCESSES.to_owned(),
        ] {
            for method in [Method::PUT, Method::PATCH, Method::DELETE, Method::POST] {
                let response = app
                    .call(
                        &Call::new(method.clone(), path.clone(), body.clone()),
                        token,
                    )
                    .await;
                assert_eq!(
                    header(&response, "allow").as_deref(),
                    Some("GET"),
                    "{method} {path}"
                );
                assert_problem_type(response, 405, "method-not-allowed").await;
            }
        }
        for method in [Method::GET, Method::PUT, Method::PATCH, Method::DELETE] {
            let path = format!("{AUDIT}/{event_id}");
            let response = app
                .call(
                    &Call::new(method.clone(), path.clone(), body.clone()),
                    token,
                )
                .await;
            assert!(
                matches!(response.status().as_u16(), 404 | 405),
                "{method} {path}: {}",
                response.status()
            );
        }
        assert_eq!(app.audit(&clinic.admin.token, "").await, before);
    }
}
