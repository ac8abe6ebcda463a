//! Doctors' schedules over HTTP: the directory with specializations, profiles edited by the
//! doctor or an administrator, weekly availability in the clinic's time zone (edited by the
//! doctor, a secretary or an administrator), time off (refused while appointments are booked
//! then), and the free slots that follow from all of it, including across the next daylight
//! saving changes of Paris and New York, found with jiff rather than written down.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use reqwest::Method;

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use carehub_tests::clinic::{Body, Call, Clinic, Person};
use carehub_tests::schedule::{
    DOCTORS, assert_conflicts, assert_forbidden_whatever_the_body, availability_path, booking,
    day_at, doctor_path, every_day, profile_path, query_time, rfc3339, slots_path, span,
    time_off_item_path, time_off_path, today, uuid_of,
};
use carehub_tests::ws::instant;
use carehub_tests::{
    TestApp, assert_problem, assert_problem_type, assert_unauthorized, backend_tests, header,
    id_of, problem_fields,
};

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

/// Asserts a doctor as the directory shows them, and returns it.
fn assert_profile_view(view: &Value) -> &Value {
    assert_eq!(
        keys(view),
        [
            "id",
            "full_name",
            "specializations",
            "bio",
            "appointment_minutes"
        ]
        .into(),
        "{view}"
    );
    assert!(view["specializations"].is_array(), "{view}");
    assert!(view["appointment_minutes"].is_u64(), "{view}");
    view
}

/// Every doctor in the directory with `filter`, page by page of `limit`.
async fn directory(app: &TestApp, who: &Person, filter: &str, limit: u32) -> Vec<Value> {
    let items = app.all_pages(DOCTORS, &who.token, filter, limit).await;
    for item in &items {
        assert_profile_view(item);
    }
    items
}

fn ids_of(items: &[Value]) -> Vec<Uuid> {
    items.iter().map(id_of).collect()
}

/// The ids in id order, as the directory lists them.
fn sorted(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort();
    ids
}

/// `PUT path` with `body` as `who`.
async fn put(app: &TestApp, path: &str, who: &Person, body: Value) -> reqwest::Response {
    app.call(&Call::put(path, body), who.token()).await
}

/// A doctor's profile read from `GET /doctors/{id}`, as `who`.
async fn profile(app: &TestApp, who: &Person, doctor: Uuid) -> Value {
    let response = app.get(&doctor_path(doctor), who.token()).await;
    assert_eq!(response.status(), 200, "GET {}", doctor_path(doctor));
    let view: Value = response.json().await.unwrap();
    assert_profile_view(&view);
    view
}

/// `GET /doctors/{id}/availability` as `who`.
async fn availability(app: &TestApp, who: &Person, doctor: Uuid) -> Value {
    let response = app.get(&availability_path(doctor), who.token()).await;
    assert_eq!(
        response.status(),
        200,
        "GET availability as {}",
        who.username
    );
    let view: Value = response.json().await.unwrap();
    assert_eq!(
        keys(&view),
        ["time_zone", "rules", "time_off"].into(),
        "{view}"
    );
    view
}

/// The 422 of `PUT path` with `body` as `who`: its field names.
async fn invalid_fields(app: &TestApp, path: &str, who: &Person, body: Value) -> BTreeSet<String> {
    let response = put(app, path, who, body.clone()).await;
    let problem = assert_problem_type(response, 422, "validation").await;
    let found = fields(&problem);
    assert!(!found.is_empty(), "{body}: {problem}");
    found
}

/// The 422 of `POST /doctors/{id}/time-off` with `body`: its field names.
async fn invalid_time_off(
    app: &TestApp,
    doctor: Uuid,
    who: &Person,
    body: Value,
) -> BTreeSet<String> {
    let response = app
        .post_json(&time_off_path(doctor), who.token(), &body)
        .await;
    let problem = assert_problem_type(response, 422, "validation").await;
    fields(&problem)
}

fn rule(weekday: &str, start: &str, end: &str) -> Value {
    json!({ "weekday": weekday, "start": start, "end": end })
}

/// The time off items of an availability, as `(id, reason)`.
fn time_off_items(view: &Value) -> Vec<(Uuid, Value)> {
    view["time_off"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (uuid_of(t), t.get("reason").cloned().unwrap_or(Value::Null)))
        .collect()
}

backend_tests! {
    async fn the_directory_shows_profiles_and_finds_doctors_by_specialization(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let (house, wilson, cuddy) = (&clinic.doctor, &clinic.outsider, &clinic.former);
        let everyone = sorted(vec![house.id, wilson.id, cuddy.id]);

        // Never set: no specialization, no bio, the default length.
        let listed = directory(&app, &clinic.ann, "", 50).await;
        assert_eq!(ids_of(&listed), everyone);
        for item in &listed {
            assert_eq!(item["specializations"], json!([]), "{item}");
            assert!(item["bio"].is_null(), "{item}");
            assert_eq!(item["appointment_minutes"], 30, "{item}");
        }
        let by_house = listed.iter().find(|d| id_of(d) == house.id).unwrap();
        assert_eq!(by_house["full_name"], "Test dr.house");

        // The doctor writes their own profile; an administrator writes another's.
        let response = put(
            &app,
            &profile_path(house.id),
            house,
            json!({
                "specializations": ["Cardiology", "Internal medicine"],
                "bio": "Twenty years of diagnostics.\nLikes puzzles.",
                "appointment_minutes": 20,
            }),
        )
        .await;
        assert_eq!(response.status(), 200);
        let saved: Value = response.json().await.unwrap();
        assert_eq!(
            saved,
            json!({
                "id": house.id,
                "full_name": "Test dr.house",
                "specializations": ["Cardiology", "Internal medicine"],
                "bio": "Twenty years of diagnostics.\nLikes puzzles.",
                "appointment_minutes": 20,
            })
        );
        let response = put(
            &app,
            &profile_path(wilson.id),
            &clinic.admin,
            json!({ "specializations": ["  cardiology "], "appointment_minutes": 45 }),
        )
        .await;
        assert_eq!(response.status(), 200);
        let wilson_view: Value = response.json().await.unwrap();
        assert_eq!(wilson_view["specializations"], json!(["cardiology"]), "trimmed");
        assert!(wilson_view["bio"].is_null());
        assert_eq!(wilson_view["appointment_minutes"], 45);

        // Everyone signed in reads a profile as the directory shows it.
        for who in [&clinic.ann, &clinic.lab, &clinic.secretary, &clinic.admin, cuddy] {
            assert_eq!(profile(&app, who, house.id).await, saved, "as {}", who.username);
        }

        // The specialization matches whatever its case.
        for query in ["CARDIOLOGY", "cardiology", "Cardiology"] {
            let found = directory(&app, &clinic.ann, &format!("specialization={query}"), 50).await;
            assert_eq!(ids_of(&found), sorted(vec![house.id, wilson.id]), "{query}");
        }
        let found = directory(&app, &clinic.lab, "specialization=internal%20MEDICINE", 50).await;
        assert_eq!(found, vec![saved.clone()]);
        assert!(directory(&app, &clinic.ann, "specialization=Oncology", 50).await.is_empty());
        assert!(directory(&app, &clinic.ann, "specialization=cardio", 50).await.is_empty());
        for limit in [1, 2] {
            let paged = directory(&app, &clinic.ann, "specialization=cardiology", limit).await;
            assert_eq!(ids_of(&paged), sorted(vec![house.id, wilson.id]), "limit {limit}");
            assert_eq!(ids_of(&directory(&app, &clinic.ann, "", limit).await), everyone);
        }

        // A new profile replaces the old one.
        let response = put(
            &app,
            &profile_path(house.id),
            house,
            json!({ "specializations": [], "bio": null, "appointment_minutes": 30 }),
        )
        .await;
        assert_eq!(response.status(), 200);
        let found = directory(&app, &clinic.ann, "specialization=cardiology", 50).await;
        assert_eq!(ids_of(&found), vec![wilson.id]);
        let now = profile(&app, &clinic.ann, house.id).await;
        assert_eq!(now["specializations"], json!([]));
        assert!(now["bio"].is_null());

        // Only active doctors are there.
        app.update_user(&clinic.admin.token, wilson.id, &json!({ "status": "suspended" }))
            .await;
        assert!(directory(&app, &clinic.ann, "specialization=cardiology", 50).await.is_empty());
        assert_eq!(ids_of(&directory(&app, &clinic.ann, "", 50).await), sorted(vec![house.id, cuddy.id]));
        for id in [wilson.id, clinic.secretary.id, clinic.ann.id, Uuid::now_v7()] {
            let response = app.get(&doctor_path(id), clinic.ann.token()).await;
            assert_problem_type(response, 404, "not-found").await;
        }
        assert_unauthorized(app.get(DOCTORS, None).await).await;
        assert_unauthorized(app.get(&doctor_path(house.id), None).await).await;
    }

    async fn only_the_doctor_or_an_administrator_edits_a_profile(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let house = &clinic.doctor;
        let body = json!({ "specializations": ["Nephrology"], "appointment_minutes": 15 });
        let call = Call::put(profile_path(house.id), body.clone());
        let before = profile(&app, &clinic.ann, house.id).await;
        for who in [&clinic.outsider, &clinic.secretary, &clinic.ann, &clinic.lab] {
            assert_forbidden_whatever_the_body(&app, &call, who).await;
        }
        clinic.assert_needs_token(&app, &call).await;
        assert_eq!(profile(&app, &clinic.ann, house.id).await, before, "nothing changed");

        // Not a doctor, or no one: nobody to write a profile for.
        for id in [clinic.secretary.id, Uuid::now_v7()] {
            let response = put(&app, &profile_path(id), &clinic.admin, body.clone()).await;
            assert_problem_type(response, 404, "not-found").await;
        }
        // The doctor themself and an administrator may.
        for who in [house, &clinic.admin] {
            let response = put(&app, &profile_path(house.id), who, body.clone()).await;
            assert_eq!(response.status(), 200, "as {}", who.username);
        }
        assert_eq!(profile(&app, &clinic.ann, house.id).await["specializations"], json!(["Nephrology"]));
    }

    async fn a_profile_is_validated_whole(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let house = &clinic.doctor;
        let path = profile_path(house.id);
        let before = profile(&app, &clinic.ann, house.id).await;

        assert_eq!(
            invalid_fields(&app, &path, house, json!({})).await,
            strings(&["specializations", "appointment_minutes"])
        );
        assert_eq!(
            invalid_fields(
                &app,
                &path,
                house,
                json!({ "specializations": ["Cardiology", "CARDIOLOGY"], "appointment_minutes": 4 }),
            )
            .await,
            strings(&["specializations[1]", "appointment_minutes"])
        );
        assert_eq!(
            invalid_fields(
                &app,
                &path,
                house,
                json!({ "specializations": ["   ", "x".repeat(81), "ok"], "appointment_minutes": 481 }),
            )
            .await,
            strings(&["specializations[0]", "specializations[1]", "appointment_minutes"])
        );
        let eleven: Vec<String> = (0..11).map(|i| format!("Specialty {i}")).collect();
        assert_eq!(
            invalid_fields(&app, &path, house, json!({ "specializations": eleven, "appointment_minutes": 30 }))
                .await,
            strings(&["specializations"])
        );
        assert_eq!(
            invalid_fields(
                &app,
                &path,
                house,
                json!({ "specializations": [], "bio": "b".repeat(2001), "appointment_minutes": 30 }),
            )
            .await,
            strings(&["bio"])
        );
        for minutes in [json!(0), json!(-5), json!("thirty"), json!(null)] {
            let found = invalid_fields(
                &app,
                &path,
                house,
                json!({ "specializations": [], "appointment_minutes": minutes }),
            )
            .await;
            assert_eq!(found, strings(&["appointment_minutes"]), "{minutes}");
        }
        // Unknown fields, broken JSON and other media types.
        let response = put(
            &app,
            &path,
            house,
            json!({ "specializations": [], "appointment_minutes": 30, "fee": 100 }),
        )
        .await;
        assert_problem_type(response, 422, "validation").await;
        let call = Call::put(path.clone(), json!({}));
        assert_problem_type(app.call(&call.with_body(Body::broken_json()), house.token()).await, 400, "bad-request")
            .await;
        assert_problem_type(
            app.call(&call.with_body(Body::not_json()), house.token()).await,
            415,
            "unsupported-media-type",
        )
        .await;
        assert_eq!(profile(&app, &clinic.ann, house.id).await, before, "nothing changed");

        // The limits themselves are fine.
        let ten: Vec<String> = (0..10).map(|i| format!("Specialty {i}")).collect();
        let long_bio = format!("{}\n{}", "a".repeat(1000), "b".repeat(999));
        for minutes in [5, 480] {
            let response = put(
                &app,
                &path,
                house,
                json!({ "specializations": ten, "bio": long_bio, "appointment_minutes": minutes }),
            )
            .await;
            assert_eq!(response.status(), 200, "{minutes} minutes");
            let view: Value = response.json().await.unwrap();
            assert_eq!(view["specializations"], json!(ten));
            assert_eq!(view["bio"], json!(long_bio));
            assert_eq!(view["appointment_minutes"], minutes);
        }
    }

    async fn availability_is_set_by_the_doctor_a_secretary_or_an_administrator(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let house = &clinic.doctor;
        let path = availability_path(house.id);
        assert_eq!(
            availability(&app, &clinic.ann, house.id).await,
            json!({ "time_zone": "UTC", "rules": [], "time_off": [] })
        );

        // Given in any order, kept sorted by weekday and start; a day's rules may touch.
        let rules = json!({ "rules": [
            rule("friday", "14:00", "18:00"),
            rule("monday", "13:00", "17:30"),
            rule("monday", "08:00", "13:00"),
            rule("sunday", "00:00", "23:59"),
        ] });
        let response = put(&app, &path, house, rules).await;
        assert_eq!(response.status(), 200);
        let saved: Value = response.json().await.unwrap();
        let expected_rules = json!([
            rule("monday", "08:00", "13:00"),
            rule("monday", "13:00", "17:30"),
            rule("friday", "14:00", "18:00"),
            rule("sunday", "00:00", "23:59"),
        ]);
        assert_eq!(saved, json!({ "time_zone": "UTC", "rules": expected_rules }));
        for who in [&clinic.ann, &clinic.lab, &clinic.outsider, &clinic.secretary] {
            let view = availability(&app, who, house.id).await;
            assert_eq!(view["rules"], expected_rules, "as {}", who.username);
        }

        // Refused callers change nothing, whatever they send.
        let call = Call::put(path.clone(), every_day("09:00", "10:00"));
        for who in [&clinic.outsider, &clinic.ann, &clinic.bob, &clinic.lab] {
            assert_forbidden_whatever_the_body(&app, &call, who).await;
        }
        clinic.assert_needs_token(&app, &call).await;
        assert_eq!(availability(&app, &clinic.ann, house.id).await["rules"], expected_rules);

        // The secretary and the administrator replace them.
        for (who, hours) in [(&clinic.secretary, ("09:00", "12:00")), (&clinic.admin, ("10:00", "11:00"))] {
            let response = put(&app, &path, who, every_day(hours.0, hours.1)).await;
            assert_eq!(response.status(), 200, "as {}", who.username);
            let rules = availability(&app, &clinic.ann, house.id).await["rules"].clone();
            assert_eq!(rules.as_array().unwrap().len(), 7);
            assert_eq!(rules[0], rule("monday", hours.0, hours.1));
            assert_eq!(rules[6], rule("sunday", hours.0, hours.1));
        }
        // No rules: no availability at all.
        let response = put(&app, &path, house, json!({ "rules": [] })).await;
        assert_eq!(response.status(), 200);
        assert_eq!(availability(&app, &clinic.ann, house.id).await["rules"], json!([]));
        let slots = app
            .slots(&clinic.ann.token, house.id, &format!("from={}", day_at(1, 0, 0).date()))
            .await;
        assert_eq!(slots["slots"], json!([]));

        // Not a doctor: nobody's availability.
        for id in [clinic.secretary.id, Uuid::now_v7()] {
            let response = put(&app, &availability_path(id), &clinic.admin, every_day("09:00", "10:00")).await;
            assert_problem_type(response, 404, "not-found").await;
            let response = app.get(&availability_path(id), clinic.ann.token()).await;
            assert_problem_type(response, 404, "not-found").await;
        }
        assert_unauthorized(app.get(&path, None).await).await;
    }

    async fn bad_rules_are_refused_with_their_fields(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let house = &clinic.doctor;
        let path = availability_path(house.id);
        app.work_every_day(&house.token, house.id, "09:00", "17:00").await;
        let before = availability(&app, &clinic.ann, house.id).await;

        let cases = [
            (json!({}), vec!["rules"]),
            (json!({ "rules": null }), vec!["rules"]),
            (
                json!({ "rules": [{ "weekday": "funday", "start": "9am" }] }),
                vec!["rules[0].weekday", "rules[0].start", "rules[0].end"],
            ),
            (json!({ "rules": [rule("monday", "10:00", "10:00")] }), vec!["rules[0].end"]),
            (
                json!({ "rules": [rule("monday", "08:00", "09:00"), rule("tuesday", "12:00", "11:00")] }),
                vec!["rules[1].end"],
            ),
            (json!({ "rules": [rule("monday", "25:00", "26:00")] }), vec!["rules[0].start", "rules[0].end"]),
            (json!({ "rules": [rule("monday", "09:00:00", "10:00")] }), vec!["rules[0].start"]),
            (
                json!({ "rules": [rule("monday", "09:00", "12:00"), rule("monday", "11:00", "13:00")] }),
                vec!["rules[1]"],
            ),
            (
                json!({ "rules": [
                    rule("wednesday", "08:00", "18:00"),
                    rule("monday", "09:00", "10:00"),
                    rule("wednesday", "12:00", "13:00"),
                ] }),
                vec!["rules[2]"],
            ),
        ];
        for (body, expected) in cases {
            let found = invalid_fields(&app, &path, house, body.clone()).await;
            assert_eq!(found, strings(&expected), "{body}");
        }
        // At most 70 rules.
        let many: Vec<Value> = (0..71)
            .map(|i| {
                let hour = i / 7;
                rule(carehub_tests::schedule::WEEKDAYS[i % 7], &format!("{hour:02}:00"), &format!("{hour:02}:30"))
            })
            .collect();
        assert_eq!(
            invalid_fields(&app, &path, house, json!({ "rules": many })).await,
            strings(&["rules"])
        );
        let response = put(&app, &path, house, json!({ "rules": [], "time_zone": "UTC" })).await;
        assert_problem_type(response, 422, "validation").await;
        let call = Call::put(path.clone(), json!({}));
        assert_problem_type(app.call(&call.with_body(Body::broken_json()), house.token()).await, 400, "bad-request")
            .await;
        assert_eq!(availability(&app, &clinic.ann, house.id).await, before, "nothing changed");

        let response = put(&app, &path, house, json!({ "rules": many[..70] })).await;
        assert_eq!(response.status(), 200, "70 rules are fine");
        let view = availability(&app, &clinic.ann, house.id).await;
        assert_eq!(view["rules"].as_array().unwrap().len(), 70);
    }

    async fn time_off_is_added_and_removed_by_whoever_edits_the_schedule(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let house = &clinic.doctor;
        app.work_every_day(&house.token, house.id, "08:00", "18:00").await;
        let (start, end) = (day_at(2, 12, 0), day_at(2, 14, 0));

        // The doctor takes an afternoon off.
        let body = json!({ "start": rfc3339(start), "end": rfc3339(end), "reason": "Conference" });
        let response = app.post_json(&time_off_path(house.id), house.token(), &body).await;
        assert_eq!(response.status(), 201);
        let location = header(&response, "location").expect("a Location header");
        let off: Value = response.json().await.unwrap();
        assert_eq!(keys(&off), ["id", "start", "end", "reason"].into(), "{off}");
        assert_eq!(span(&off), (start, end));
        assert_eq!(off["reason"], "Conference");
        assert_eq!(location, time_off_item_path(house.id, uuid_of(&off)));

        // Editors see why; everyone else only when.
        for who in [house, &clinic.secretary, &clinic.admin] {
            let view = availability(&app, who, house.id).await;
            assert_eq!(time_off_items(&view), vec![(uuid_of(&off), json!("Conference"))], "as {}", who.username);
            assert_eq!(span(&view["time_off"][0]), (start, end));
        }
        for who in [&clinic.ann, &clinic.lab, &clinic.outsider] {
            let view = availability(&app, who, house.id).await;
            assert_eq!(time_off_items(&view), vec![(uuid_of(&off), Value::Null)], "as {}", who.username);
            assert_eq!(span(&view["time_off"][0]), (start, end));
        }

        // The secretary and the administrator add some too (a reason is optional).
        let by_secretary = app.add_time_off(&clinic.secretary.token, house.id, day_at(3, 8, 0), day_at(3, 9, 0), None).await;
        assert!(by_secretary.get("reason").is_none_or(Value::is_null), "{by_secretary}");
        let by_admin = app.add_time_off(&clinic.admin.token, house.id, day_at(1, 8, 0), day_at(1, 9, 0), Some("Training")).await;
        let view = availability(&app, house, house.id).await;
        assert_eq!(
            view["time_off"].as_array().unwrap().iter().map(uuid_of).collect::<Vec<_>>(),
            vec![uuid_of(&by_admin), uuid_of(&off), uuid_of(&by_secretary)],
            "upcoming, by start"
        );

        // Refused callers change nothing, whatever they send.
        let add = Call::post(time_off_path(house.id), body.clone());
        let remove = Call::delete(time_off_item_path(house.id, uuid_of(&off)));
        for who in [&clinic.outsider, &clinic.ann, &clinic.lab] {
            assert_forbidden_whatever_the_body(&app, &add, who).await;
            assert_forbidden_whatever_the_body(&app, &remove, who).await;
        }
        clinic.assert_needs_token(&app, &add).await;
        clinic.assert_needs_token(&app, &remove).await;
        assert_eq!(availability(&app, house, house.id).await, view, "nothing changed");

        // Time off is no working time.
        let slots = app.free_slots(&clinic.ann.token, house.id, day_at(2, 0, 0), day_at(3, 0, 0)).await;
        assert_eq!(slots.len(), 20 - 4, "{slots:?}");
        assert!(slots.iter().all(|(s, e)| *e <= start || *s >= end), "{slots:?}");

        // Removed by the doctor, the secretary, the administrator; then it is gone.
        for (who, item) in [(house, &off), (&clinic.secretary, &by_secretary), (&clinic.admin, &by_admin)] {
            let response = app.call(&Call::delete(time_off_item_path(house.id, uuid_of(item))), who.token()).await;
            assert_eq!(response.status(), 204, "as {}", who.username);
            let response = app.call(&Call::delete(time_off_item_path(house.id, uuid_of(item))), who.token()).await;
            assert_problem_type(response, 404, "not-found").await;
        }
        assert_eq!(availability(&app, house, house.id).await["time_off"], json!([]));
        let slots = app.free_slots(&clinic.ann.token, house.id, day_at(2, 0, 0), day_at(3, 0, 0)).await;
        assert_eq!(slots.len(), 20);

        // Another doctor's time off is not found under this one, nor an unknown id.
        let theirs = app.add_time_off(&clinic.outsider.token, clinic.outsider.id, start, end, None).await;
        for path in [
            time_off_item_path(house.id, uuid_of(&theirs)),
            time_off_item_path(house.id, Uuid::now_v7()),
        ] {
            let response = app.call(&Call::delete(path), clinic.admin.token()).await;
            assert_problem_type(response, 404, "not-found").await;
        }
        let response = app
            .post_json(&time_off_path(clinic.secretary.id), clinic.admin.token(), &body)
            .await;
        assert_problem_type(response, 404, "not-found").await;
        assert_eq!(time_off_items(&availability(&app, &clinic.outsider, clinic.outsider.id).await).len(), 1);
    }

    async fn time_off_is_validated_and_refused_while_appointments_are_booked_then(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let house = &clinic.doctor;
        app.work_every_day(&house.token, house.id, "08:00", "18:00").await;

        let at = |start: OffsetDateTime, end: OffsetDateTime| json!({ "start": rfc3339(start), "end": rfc3339(end) });
        assert_eq!(invalid_time_off(&app, house.id, house, json!({})).await, strings(&["start", "end"]));
        assert_eq!(
            invalid_time_off(&app, house.id, house, json!({ "start": "tomorrow", "end": "2027-13-01T00:00:00Z" })).await,
            strings(&["start", "end"])
        );
        assert_eq!(invalid_time_off(&app, house.id, house, at(day_at(2, 10, 0), day_at(2, 9, 0))).await, strings(&["end"]));
        assert_eq!(invalid_time_off(&app, house.id, house, at(day_at(2, 10, 0), day_at(2, 10, 0))).await, strings(&["end"]));
        assert_eq!(invalid_time_off(&app, house.id, house, at(day_at(-3, 10, 0), day_at(-2, 10, 0))).await, strings(&["end"]));
        assert_eq!(invalid_time_off(&app, house.id, house, at(day_at(1, 0, 0), day_at(368, 0, 0))).await, strings(&["end"]));
        assert_eq!(
            invalid_time_off(&app, house.id, house, json!({ "start": "9999-12-30T00:00:00Z", "end": "9999-12-31T00:00:00Z" }))
                .await,
            strings(&["start", "end"])
        );
        let mut long_reason = at(day_at(1, 0, 0), day_at(2, 0, 0));
        long_reason["reason"] = json!("r".repeat(501));
        assert_eq!(invalid_time_off(&app, house.id, house, long_reason).await, strings(&["reason"]));
        let mut extra = at(day_at(1, 0, 0), day_at(2, 0, 0));
        extra["kind"] = json!("holiday");
        assert_problem_type(app.post_json(&time_off_path(house.id), house.token(), &extra).await, 422, "validation").await;
        assert_eq!(availability(&app, house, house.id).await["time_off"], json!([]));

        // Two booked appointments on day 4, at 09:00 and 10:00.
        let first = app
            .book(&clinic.secretary.token, &booking(house.id, clinic.ann_record, day_at(4, 9, 0), None))
            .await;
        let second = app
            .book(&clinic.secretary.token, &booking(house.id, clinic.bob_record, day_at(4, 10, 0), None))
            .await;
        // Time off over both lists both.
        let response = app
            .post_json(&time_off_path(house.id), house.token(), &at(day_at(4, 8, 0), day_at(4, 12, 0)))
            .await;
        let conflicts = assert_conflicts(response).await;
        assert_eq!(
            conflicts.iter().map(|c| (c.0, c.1, c.2)).collect::<Vec<_>>(),
            vec![
                (uuid_of(&first), day_at(4, 9, 0), day_at(4, 9, 30)),
                (uuid_of(&second), day_at(4, 10, 0), day_at(4, 10, 30)),
            ]
        );
        // Over one of them (overlapping, not equal) lists that one.
        let response = app
            .post_json(&time_off_path(house.id), clinic.secretary.token(), &at(day_at(4, 10, 15), day_at(4, 11, 0)))
            .await;
        let conflicts = assert_conflicts(response).await;
        assert_eq!(conflicts.iter().map(|c| c.0).collect::<Vec<_>>(), vec![uuid_of(&second)]);
        assert_eq!(availability(&app, house, house.id).await["time_off"], json!([]), "nothing written");

        // Between them, touching both, is fine; and a cancelled appointment is in nobody's way.
        app.add_time_off(&house.token, house.id, day_at(4, 9, 30), day_at(4, 10, 0), None).await;
        app.set_status(&clinic.secretary.token, uuid_of(&second), "cancelled", Some("The patient is away")).await;
        app.add_time_off(&house.token, house.id, day_at(4, 10, 0), day_at(4, 11, 0), None).await;
        assert_eq!(availability(&app, house, house.id).await["time_off"].as_array().unwrap().len(), 2);
    }

    async fn slots_are_the_free_working_time_cut_to_the_appointment_length(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let house = &clinic.doctor;
        app.work_every_day(&house.token, house.id, "08:00", "12:00").await;
        let day = day_at(2, 0, 0);
        let hm = |h: u8, m: u8| day_at(2, h, m);
        let starts = |slots: &[(OffsetDateTime, OffsetDateTime)]| slots.iter().map(|s| s.0).collect::<Vec<_>>();

        // A whole morning of the default 30 minutes, the day given as a date.
        let body = app.slots(&clinic.ann.token, house.id, &format!("from={}&to={}", day.date(), (day + Duration::days(1)).date())).await;
        assert_eq!(keys(&body), ["doctor_id", "time_zone", "appointment_minutes", "slots"].into(), "{body}");
        assert_eq!(body["doctor_id"], json!(house.id));
        assert_eq!(body["time_zone"], "UTC");
        assert_eq!(body["appointment_minutes"], 30);
        let slots: Vec<_> = body["slots"].as_array().unwrap().iter().map(|s| {
            assert_eq!(keys(s), ["start", "end"].into(), "{s}");
            span(s)
        }).collect();
        let expected: Vec<_> = (0..8).map(|i| (hm(8, 0) + Duration::minutes(30 * i), hm(8, 30) + Duration::minutes(30 * i))).collect();
        assert_eq!(slots, expected);
        // Every signed-in role reads them.
        for who in [&clinic.lab, &clinic.admin, &clinic.secretary, &clinic.outsider] {
            assert_eq!(app.free_slots(&who.token, house.id, day, day + Duration::days(1)).await, expected);
        }

        // Booked times are taken out; what is left of a gap is cut from its start, and a rest
        // shorter than a slot is dropped.
        app.book(&clinic.secretary.token, &booking(house.id, clinic.ann_record, hm(9, 0), None)).await;
        app.book(&clinic.secretary.token, &booking(house.id, clinic.bob_record, hm(10, 15), Some(hm(10, 45)))).await;
        let slots = app.free_slots(&clinic.ann.token, house.id, day, day + Duration::days(1)).await;
        assert_eq!(starts(&slots), vec![hm(8, 0), hm(8, 30), hm(9, 30), hm(10, 45), hm(11, 15)]);
        // So is time off.
        app.add_time_off(&house.token, house.id, hm(11, 0), hm(13, 0), None).await;
        let slots = app.free_slots(&clinic.ann.token, house.id, day, day + Duration::days(1)).await;
        assert_eq!(starts(&slots), vec![hm(8, 0), hm(8, 30), hm(9, 30)]);
        // A narrower range keeps the slots that lie inside it: the same slots, whatever the range.
        let slots = app.free_slots(&clinic.ann.token, house.id, hm(8, 10), hm(9, 50)).await;
        assert_eq!(slots, vec![(hm(8, 30), hm(9, 0))]);
        let slots = app.free_slots(&clinic.ann.token, house.id, hm(8, 30), hm(10, 0)).await;
        assert_eq!(slots, vec![(hm(8, 30), hm(9, 0)), (hm(9, 30), hm(10, 0))]);

        // The doctor's own length.
        put(&app, &profile_path(house.id), house, json!({ "specializations": [], "appointment_minutes": 20 })).await;
        let body = app.slots(&clinic.ann.token, house.id, &format!("from={}", query_time(day))).await;
        assert_eq!(body["appointment_minutes"], 20);
        let slots: Vec<_> = body["slots"].as_array().unwrap().iter().map(span).collect();
        assert!(slots.iter().all(|(s, e)| *e - *s == Duration::minutes(20)), "{slots:?}");
        assert_eq!(
            starts(&slots[..6]),
            vec![hm(8, 0), hm(8, 20), hm(8, 40), hm(9, 30), hm(9, 50), day_at(3, 8, 0)]
        );

        // At most 31 days, and `to` after `from`.
        let range = |from: OffsetDateTime, to: OffsetDateTime| format!("from={}&to={}", query_time(from), query_time(to));
        let month = app.slots(&clinic.ann.token, house.id, &range(day, day + Duration::days(31))).await;
        assert_eq!(month["slots"].as_array().unwrap().len(), 30 * 12 + 5, "31 days are fine");
        for query in [
            range(day, day + Duration::days(31) + Duration::minutes(1)),
            range(day, day + Duration::days(40)),
            range(day, day),
            range(day, day - Duration::hours(1)),
            format!("from={}&to={}", day.date(), (day + Duration::days(32)).date()),
        ] {
            let response = app.get(&slots_path(house.id, &query), clinic.ann.token()).await;
            let problem = assert_problem_type(response, 422, "validation").await;
            assert_eq!(fields(&problem), strings(&["to"]), "{query}: {problem}");
        }
        for query in [
            "from=yesterday",
            "to=12:00",
            "from=2027-02-30",
            "from=9999-12-30T00:00:00Z",
            "from=9999-12-30",
            "from=0001-01-01T00:00:00Z",
        ] {
            let response = app.get(&slots_path(house.id, query), clinic.ann.token()).await;
            let status = response.status().as_u16();
            assert!(status == 400 || status == 422, "{query}: {status}");
            assert_problem(response, status).await;
        }
        for id in [clinic.secretary.id, Uuid::now_v7()] {
            let response = app.get(&slots_path(id, ""), clinic.ann.token()).await;
            assert_problem_type(response, 404, "not-found").await;
        }
        assert_unauthorized(app.get(&slots_path(house.id, ""), None).await).await;
    }

    async fn slots_in_the_past_are_dropped_and_the_range_defaults_to_a_week_from_now(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let wilson = &clinic.outsider;
        app.work_every_day(&wilson.token, wilson.id, "00:00", "23:59").await;

        // Yesterday and today, by date: only what starts from now on.
        let yesterday = today() - Duration::days(1);
        let query = format!("from={}&to={}", yesterday.date(), (today() + Duration::days(1)).date());
        let before = OffsetDateTime::now_utc();
        let body = app.slots(&clinic.ann.token, wilson.id, &query).await;
        let after = OffsetDateTime::now_utc();
        let slots: Vec<_> = body["slots"].as_array().unwrap().iter().map(span).collect();
        // Each day 00:00 to 23:59 holds 47 slots (the last 29 minutes are too short).
        let expected = |now: OffsetDateTime| -> Vec<(OffsetDateTime, OffsetDateTime)> {
            [yesterday, today()]
                .iter()
                .flat_map(|day| (0..47).map(move |i| (*day + Duration::minutes(30 * i), *day + Duration::minutes(30 * i + 30))))
                .filter(|(start, _)| *start >= now)
                .collect()
        };
        assert!(
            slots == expected(before) || slots == expected(after),
            "only slots starting from now: {slots:?}"
        );
        assert!(slots.iter().all(|(start, _)| *start >= before));

        // Without a range: a week from now.
        let before = OffsetDateTime::now_utc();
        let body = app.slots(&clinic.ann.token, wilson.id, "").await;
        let after = OffsetDateTime::now_utc();
        let slots: Vec<_> = body["slots"].as_array().unwrap().iter().map(span).collect();
        assert!(slots.len() > 6 * 47, "{}", slots.len());
        assert!(slots.windows(2).all(|w| w[0].1 <= w[1].0), "in order");
        assert!(slots.iter().all(|(s, e)| *e - *s == Duration::minutes(30)));
        // The next half hour, or the one after: a day worked until 23:59 has no 23:30 slot,
        // so from 23:00 on the first one may start at midnight.
        assert!(slots[0].0 >= before && slots[0].0 <= after + Duration::hours(1), "{:?}", slots[0]);
        assert!(slots.last().unwrap().1 <= after + Duration::days(7), "{:?}", slots.last());
        assert!(slots.last().unwrap().1 >= before + Duration::days(7) - Duration::hours(1), "{:?}", slots.last());
        // From a time, a week on.
        let from = day_at(3, 6, 0);
        let slots = app.slots(&clinic.ann.token, wilson.id, &format!("from={}", query_time(from))).await["slots"].clone();
        let slots: Vec<_> = slots.as_array().unwrap().iter().map(span).collect();
        assert_eq!(slots[0], (from, from + Duration::minutes(30)));
        assert_eq!(slots.len(), 7 * 47, "a week from 06:00: {}", slots.len());
    }
    async fn every_scheduling_path_takes_only_its_methods_and_is_documented(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let (d, x) = (clinic.doctor.id, Uuid::now_v7());
        let routes: Vec<(String, &str, &[&str])> = vec![
            (DOCTORS.to_owned(), "/api/v1/doctors", &["GET"]),
            (doctor_path(d), "/api/v1/doctors/{id}", &["GET"]),
            (profile_path(d), "/api/v1/doctors/{id}/profile", &["PUT"]),
            (availability_path(d), "/api/v1/doctors/{id}/availability", &["GET", "PUT"]),
            (time_off_path(d), "/api/v1/doctors/{id}/time-off", &["POST"]),
            (time_off_item_path(d, x), "/api/v1/doctors/{id}/time-off/{time_off_id}", &["DELETE"]),
            (slots_path(d, ""), "/api/v1/doctors/{id}/slots", &["GET"]),
            ("/api/v1/appointments".to_owned(), "/api/v1/appointments", &["GET", "POST"]),
            (format!("/api/v1/appointments/{x}"), "/api/v1/appointments/{id}", &["GET", "PATCH"]),
            (format!("/api/v1/appointments/{x}/status"), "/api/v1/appointments/{id}/status", &["POST"]),
            (format!("/api/v1/appointments/{x}/history"), "/api/v1/appointments/{id}/history", &["GET"]),
            (format!("/api/v1/appointments/{x}/visit-note"), "/api/v1/appointments/{id}/visit-note", &["POST"]),
        ];
        let response = app.get("/api/v1/openapi.json", None).await;
        assert_eq!(response.status(), 200);
        let doc: Value = response.json().await.unwrap();
        for (path, documented, methods) in &routes {
            for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
                let operation = &doc["paths"][documented][method.to_lowercase()];
                if methods.contains(&method) {
                    assert!(operation.is_object(), "{method} {documented} is missing from the document");
                    for status in ["401", "403"] {
                        if *documented == "/api/v1/doctors" && status == "403" {
                            continue;
                        }
                        if status == "403" && method == "GET" && documented.starts_with("/api/v1/doctors") {
                            continue;
                        }
                        assert!(
                            operation["responses"][status].is_object(),
                            "{method} {documented} documents {status}"
                        );
                    }
                    continue;
                }
                assert!(operation.is_null(), "{method} {documented} is not an operation");
                let response = app
                    .client
                    .request(Method::from_bytes(method.as_bytes()).unwrap(), app.url(path))
                    .bearer_auth(&clinic.secretary.token)
                    .send()
                    .await
                    .unwrap();
                let allow = header(&response, "allow").unwrap_or_default();
                let allowed: BTreeSet<&str> = allow.split(',').map(str::trim).collect();
                assert_eq!(allowed, methods.iter().copied().collect(), "{method} {path}: Allow {allow:?}");
                assert_problem_type(response, 405, "method-not-allowed").await;
            }
        }
        for (documented, status) in [
            ("/api/v1/appointments", "409"),
            ("/api/v1/appointments", "422"),
            ("/api/v1/doctors/{id}/time-off", "409"),
            ("/api/v1/doctors/{id}/slots", "422"),
        ] {
            let method = if documented.ends_with("slots") { "get" } else { "post" };
            assert!(
                doc["paths"][documented][method]["responses"][status].is_object(),
                "{method} {documented} documents {status}"
            );
        }
    }
}

/// The next daylight saving changes of `zone` from now (at least a day away, so that the day
/// before is still ahead), as `(local date before, local date of the change, its offsets)`.
fn next_changes(zone: &str, count: usize) -> Vec<(jiff::civil::Date, jiff::civil::Date)> {
    let tz = jiff::tz::TimeZone::get(zone).unwrap();
    let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(36);
    tz.following(soon)
        .take(count)
        .map(|transition| {
            let day = transition.timestamp().to_zoned(tz.clone()).date();
            (day.yesterday().unwrap(), day)
        })
        .collect()
}

/// `date` at `hour`:00 in `zone`: the instant, and how the API writes it (at that instant's offset).
fn local(zone: &str, date: jiff::civil::Date, hour: i8) -> (OffsetDateTime, String) {
    let tz = jiff::tz::TimeZone::get(zone).unwrap();
    let zoned = date.at(hour, 0, 0, 0).to_zoned(tz).unwrap();
    let seconds = zoned.offset().seconds();
    let sign = if seconds < 0 { '-' } else { '+' };
    let (hours, minutes) = (seconds.abs() / 3600, seconds.abs() % 3600 / 60);
    let text = format!("{date}T{hour:02}:00:00{sign}{hours:02}:{minutes:02}");
    let at = OffsetDateTime::from_unix_timestamp(zoned.timestamp().as_second()).unwrap();
    (at, text)
}

/// Across the next two changes of `zone` (one forward, one back): a 09:00–17:00 rule gives
/// 16 slots from 09:00 local on the day before and on the day of the change, written at each
/// instant's offset, and 09:00 falls an hour apart in UTC on the two days. Booking 09:00 on the
/// day of the change stores 09:00 local.
async fn nine_oclock_stays_nine_oclock(app: TestApp, zone: &str) {
    let clinic = Clinic::open(&app).await;
    let house = &clinic.doctor;
    app.work_every_day(&house.token, house.id, "09:00", "17:00")
        .await;
    let view = availability(&app, &clinic.ann, house.id).await;
    assert_eq!(view["time_zone"], zone);

    let changes = next_changes(zone, 2);
    let mut shifts = BTreeSet::new();
    for (before, day) in &changes {
        let query = format!("from={before}&to={}", day.tomorrow().unwrap());
        let body = app.slots(&clinic.ann.token, house.id, &query).await;
        assert_eq!(body["time_zone"], zone);
        let slots = body["slots"].as_array().unwrap();
        assert_eq!(slots.len(), 32, "16 slots on each day around {day}: {body}");
        for (index, date) in [(0, before), (16, day)] {
            let (nine, text) = local(zone, *date, 9);
            let (five, five_text) = local(zone, *date, 17);
            assert_eq!(slots[index]["start"], text, "{zone} {date}");
            assert_eq!(instant(&slots[index]["start"]), nine);
            assert_eq!(slots[index + 15]["end"], five_text, "{zone} {date}");
            assert_eq!(instant(&slots[index + 15]["end"]), five);
            assert_eq!(five - nine, Duration::hours(8), "eight hours on {date}");
        }
        let (nine_before, _) = local(zone, *before, 9);
        let (nine_on, _) = local(zone, *day, 9);
        let shift = nine_on - nine_before - Duration::days(1);
        assert_eq!(
            shift.whole_hours().abs(),
            1,
            "09:00 moves by an hour in UTC around {day}"
        );
        shifts.insert(shift.whole_hours());
    }
    assert_eq!(shifts, [-1, 1].into(), "one change forward, one back");

    // Booked at 09:00 local on the day of the change (sent in UTC), it is shown at 09:00 local.
    let (_, day) = changes[0];
    let (nine, text) = local(zone, day, 9);
    let booked = app
        .book(
            &clinic.secretary.token,
            &booking(house.id, clinic.ann_record, nine, None),
        )
        .await;
    assert_eq!(booked["start"], text);
    assert_eq!(instant(&booked["end"]), nine + Duration::minutes(30));
    // 08:00 local that day is outside the rule, whatever the offset.
    let (eight, _) = local(zone, day, 8);
    let response = app
        .try_book(
            &clinic.secretary.token,
            &booking(house.id, clinic.bob_record, eight, None),
        )
        .await;
    assert_problem_type(response, 422, "not-bookable").await;
    let query = format!("from={day}&to={}", day.tomorrow().unwrap());
    let slots = app.slots(&clinic.ann.token, house.id, &query).await;
    assert_eq!(slots["slots"].as_array().unwrap().len(), 15);
    assert_eq!(
        slots["slots"][0]["start"],
        local(zone, day, 9).1.replace("T09:00", "T09:30")
    );
}

mod paris {
    use super::*;

    carehub_tests::backend_tests_with! {
        ["--clinic-time-zone", "Europe/Paris"];
        async fn a_nine_oclock_rule_is_nine_oclock_in_paris_on_both_sides_of_a_change(app: TestApp) {
            nine_oclock_stays_nine_oclock(app, "Europe/Paris").await;
        }
    }
}

mod new_york {
    use super::*;

    carehub_tests::backend_tests_with! {
        ["--clinic-time-zone", "America/New_York"];
        async fn a_nine_oclock_rule_is_nine_oclock_in_new_york_on_both_sides_of_a_change(app: TestApp) {
            nine_oclock_stays_nine_oclock(app, "America/New_York").await;
        }
    }
}

/// A time zone the server does not know stops it from starting.
#[tokio::test]
async fn an_unknown_clinic_time_zone_stops_the_server_from_starting() {
    let Some(database) =
        carehub_infra::testing::ScratchDatabase::create(carehub_tests::Backend::Sqlite).await
    else {
        return;
    };
    let data_dir = std::env::temp_dir().join(format!("carehub-tz-{}", Uuid::new_v4().simple()));
    let data_dir_arg = data_dir.display().to_string();
    for zone in ["Mars/Olympus_Mons", "", "UTC+25"] {
        let args = [
            "carehub",
            "--bind",
            "127.0.0.1:0",
            "--database-url",
            &database.url,
            "--data-dir",
            &data_dir_arg,
            "--clinic-time-zone",
            zone,
        ];
        match carehub_web::Settings::parse_from_args(args) {
            Err(_) => {}
            Ok(settings) => assert!(
                carehub_web::Application::build(settings).await.is_err(),
                "the server must not start in {zone:?}"
            ),
        }
    }
    let _ = std::fs::remove_dir_all(&data_dir);
}
