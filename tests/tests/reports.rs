//! The clinic's report from outside: a clinic's activity built through the API, and the report
//! read back as JSON and as CSV, every figure checked; periods that are refused; and everyone
//! but administrators turned away.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jiff::Timestamp;
use reqwest::Response;
use serde_json::{Value, json};
use time::Duration;
use uuid::Uuid;

use carehub_domain::jobs::{AfterFailure, Claim, NewJob, Task};
use carehub_domain::kernel::UserId;
use carehub_tests::clinic::{Clinic, Person, patient_input, referral_input};
use carehub_tests::schedule::{booking, day_at, today};
use carehub_tests::{
    TestApp, assert_forbidden, assert_problem_type, assert_unauthorized, backend_tests, header,
    id_of,
};

const SUMMARY: &str = "/api/v1/admin/reports/summary";

/// The report of `from` to `to` (`YYYY-MM-DD`), asked for as `token`, accepting `accept`.
async fn report(app: &TestApp, token: Option<&str>, query: &str, accept: Option<&str>) -> Response {
    let mut request = app.client.get(app.url(&format!("{SUMMARY}?{query}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    request.send().await.expect("request sent")
}

/// `from=...&to=...` for the days `from_day` to `to_day` after the day the tests started.
fn days(from_day: i64, to_day: i64) -> String {
    let date = |days: i64| (today() + Duration::days(days)).date().to_string();
    format!("from={}&to={}", date(from_day), date(to_day))
}

backend_tests! {
    async fn everyone_but_administrators_is_refused_the_report_whatever_they_ask(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        for query in [days(-1, 1), String::new(), "from=yesterday&to=soon".into()] {
            assert_unauthorized(report(&app, None, &query, None).await).await;
            assert_unauthorized(report(&app, None, &query, Some("text/csv")).await).await;
            for who in [
                &clinic.secretary,
                &clinic.doctor,
                &clinic.lab,
                &clinic.ann,
                &clinic.bob,
            ] {
                for accept in [None, Some("text/csv")] {
                    let refused = report(&app, who.token(), &query, accept).await;
                    let problem = assert_forbidden(refused).await;
                    assert!(problem["detail"].is_string(), "{} {problem}", who.username);
                }
            }
        }
        let allowed = report(&app, clinic.admin.token(), &days(-1, 1), None).await;
        assert_eq!(allowed.status(), 200);
    }

    async fn a_period_is_whole_days_from_before_to_at_most_366_days_apart(app: TestApp) {
        let admin = app.admin("report.admin").await;
        let token = Some(admin.access_token.as_str());
        for (query, field) in [
            (String::new(), "query"),
            ("from=2027-03-01".to_owned(), "query"),
            ("to=2027-03-01".to_owned(), "query"),
            ("from=2027-02-30&to=2027-03-08".to_owned(), "from"),
            ("from=2027-03-01T00:00:00Z&to=2027-03-08".to_owned(), "from"),
            ("from=2027-03-01&to=08/03/2027".to_owned(), "to"),
            ("from=2027-03-01&to=2027-03-01".to_owned(), "to"),
            ("from=2027-03-08&to=2027-03-01".to_owned(), "to"),
            ("from=2027-01-01&to=2028-01-03".to_owned(), "to"),
            ("from=1899-12-31&to=1900-01-02".to_owned(), "from"),
        ] {
            let refused = report(&app, token, &query, None).await;
            let problem = assert_problem_type(refused, 400, "bad-request").await;
            let detail = problem["detail"].as_str().unwrap_or_default();
            let expected = if field == "query" { "invalid query string" } else { field };
            assert!(detail.starts_with(expected), "{query}: {problem}");
        }
        // 366 days is the longest period, and an empty clinic counts nothing.
        let longest = report(&app, token, "from=2027-01-01&to=2028-01-02", None).await;
        assert_eq!(longest.status(), 200);
        let body: Value = longest.json().await.expect("JSON");
        assert_eq!(body["patients"]["registered"], 0);
        assert_eq!(body["doctors"], json!([]));
        assert_eq!(body["appointments"]["no_show_rate"], Value::Null);
        assert_eq!(body["referrals"]["time_to_accept"]["median_seconds"], Value::Null);
        assert_eq!(body["period"]["start"], "2027-01-01T00:00:00Z");
        assert_eq!(body["period"]["end"], "2028-01-02T00:00:00Z");
    }

    async fn the_report_is_documented_with_both_of_its_forms(app: TestApp) {
        let response = app.get("/api/v1/openapi.json", None).await;
        assert_eq!(response.status(), 200);
        let doc: Value = response.json().await.expect("JSON");
        let operation = &doc["paths"][SUMMARY]["get"];
        let content = &operation["responses"]["200"]["content"];
        assert_eq!(
            content["application/json"]["schema"]["$ref"],
            "#/components/schemas/ReportView"
        );
        assert_eq!(content["text/csv"]["schema"]["type"], "string");
        for status in ["400", "401", "403"] {
            assert!(operation["responses"][status].is_object(), "{status}");
        }
        let parameters: Vec<(&str, bool)> = operation["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .map(|p| (p["name"].as_str().unwrap(), p["required"] == true))
            .collect();
        assert_eq!(parameters, [("from", true), ("to", true)]);
        let statuses = &doc["components"]["schemas"]["AppointmentStatusCountView"]["properties"]
            ["status"]["$ref"];
        assert_eq!(statuses, "#/components/schemas/AppointmentStatus");
    }
}

/// A staff member created by the administrator, signed in.
async fn staff(app: &TestApp, admin: &str, username: &str, role: &'static str) -> Person {
    let user = app.create_staff(admin, username, role).await;
    Person {
        id: id_of(&user),
        username: username.to_owned(),
        role,
        token: app.tokens(username).await.access_token,
    }
}

/// Seconds from a view's `created_at` to its `updated_at`.
fn wait_of(view: &Value) -> f64 {
    let at = |field: &str| -> Timestamp { view[field].as_str().unwrap().parse().unwrap() };
    at("updated_at")
        .duration_since(at("created_at"))
        .as_secs_f64()
}

fn assert_close(actual: &Value, expected: f64, what: &str) {
    let actual = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: {actual} is not a number"));
    assert!(
        (actual - expected).abs() < 1e-9,
        "{what}: {actual}, expected {expected}"
    );
}

/// The caller's notifications as `(stored, read)`.
async fn notifications_of(app: &TestApp, token: &str) -> (u64, u64) {
    let response = app
        .get("/api/v1/notifications?limit=500", Some(token))
        .await;
    assert_eq!(response.status(), 200);
    let list: Value = response.json().await.expect("JSON");
    let items = list["items"].as_array().expect("items");
    assert!(list["next_after"].is_null(), "all on one page");
    let read = items.iter().filter(|n| !n["read_at"].is_null()).count();
    (items.len() as u64, read as u64)
}

/// How many notification e-mail jobs the administrators' listing shows in `state`.
async fn email_jobs(app: &TestApp, token: &str, state: &str) -> u64 {
    app.all_pages(
        "/api/v1/admin/jobs",
        token,
        &format!("kind=email.notification&state={state}"),
        100,
    )
    .await
    .len() as u64
}

/// Notification e-mails that succeeded (one), failed (one), died (one) or are not yet due
/// (one), stored and moved through the queue's own port, as a worker would: no API adds them.
async fn email_outcomes(app: &TestApp, recipient: Uuid) {
    let database = carehub_web::startup::connect(&app.settings)
        .await
        .expect("the database");
    let jobs = database.repositories().jobs;
    let now = Timestamp::now();
    let recipient = UserId::from_uuid(recipient);
    let email = |id: i64, run_at: Timestamp| {
        NewJob::new(
            Task::NotificationEmail {
                recipient,
                notification_id: id,
            },
            run_at,
        )
    };
    let later = now + jiff::SignedDuration::from_hours(24 * 30);
    let added = jobs
        .enqueue(
            &[email(1, now), email(2, now), email(3, now), email(4, later)],
            now,
        )
        .await
        .expect("the jobs are stored");
    let claimed = jobs
        .claim(&Claim {
            worker: "reports-test/1".into(),
            now: Timestamp::now(),
            lease: jiff::SignedDuration::from_secs(60),
            limit: 100,
        })
        .await
        .expect("a claim");
    for job in &claimed {
        let done = match added.iter().position(|id| *id == job.job.id) {
            Some(0) => jobs.succeed(job, Timestamp::now()).await,
            Some(1) => {
                let retry = AfterFailure::RetryAt(later);
                jobs.fail(job, "mail server down", retry, Timestamp::now())
                    .await
            }
            Some(2) => {
                jobs.fail(job, "no such mailbox", AfterFailure::Dead, Timestamp::now())
                    .await
            }
            // Another job due now (recurring maintenance): left as it was.
            _ => jobs.release(job).await,
        };
        assert!(done.expect("the job changes"));
    }
    database.close().await;
}

/// Builds a clinic's activity through the API (and the queue's port, for e-mails), then
/// checks every figure of the report, as JSON and as CSV.
async fn the_report_matches_what_was_done(app: TestApp) {
    let admin = app.admin("report.admin").await;
    let admin_token = admin.access_token.as_str();
    let secretary = staff(&app, admin_token, "sec.sarah", "secretary").await;
    let house = staff(&app, admin_token, "dr.house", "doctor").await;
    let wilson = staff(&app, admin_token, "dr.wilson", "doctor").await;
    // A name a CSV writer must quote, and a spreadsheet must not run.
    let house_name = "=House, Gregory \"Greg\"";
    app.update_user(admin_token, house.id, &json!({ "full_name": house_name }))
        .await;

    // House works 09:00-17:00 (UTC, the clinic's zone here) every day, but for three
    // hours off; Wilson has no hours. The period runs from the day before the tests
    // started to eight days after it: ten days of eight hours, less three.
    app.work_every_day(&secretary.token, house.id, "09:00", "17:00")
        .await;
    app.add_time_off(
        &secretary.token,
        house.id,
        day_at(3, 9, 0),
        day_at(3, 12, 0),
        None,
    )
    .await;
    let available_minutes = 10 * 8 * 60 - 3 * 60;

    // Five patients, registered by House, who is on their care teams.
    let mut patients = Vec::new();
    for n in 0..5 {
        let patient = app
            .create_patient(&house.token, &patient_input(&format!("Patient Number {n}")))
            .await;
        patients.push(id_of(&patient));
    }

    // Seven half-hour visits with House; one left booked and one of each other status.
    let mut visits = Vec::new();
    for n in 0..7u8 {
        let start = day_at(1, 9 + n / 2, 30 * (n % 2));
        let visit = app
            .book(
                &secretary.token,
                &booking(house.id, patients[usize::from(n) % 5], start, None),
            )
            .await;
        visits.push(id_of(&visit));
    }
    let steps: [&[(&Person, &str)]; 7] = [
        &[],
        &[(&secretary, "checked_in")],
        &[(&secretary, "checked_in"), (&house, "in_progress")],
        &[
            (&secretary, "checked_in"),
            (&house, "in_progress"),
            (&house, "completed"),
        ],
        &[
            (&secretary, "checked_in"),
            (&house, "in_progress"),
            (&house, "completed"),
        ],
        &[(&secretary, "no_show")],
        &[(&secretary, "cancelled")],
    ];
    for (visit, steps) in visits.iter().zip(steps) {
        for (who, status) in steps {
            let reason = (*status == "cancelled").then_some("The doctor is ill");
            app.set_status(&who.token, *visit, status, reason).await;
        }
    }
    let booked_minutes = 6 * 30;

    // Five referrals from House to Wilson: two accepted (one completed since), one
    // declined, one cancelled, one waiting.
    let mut waits = Vec::new();
    for (n, patient) in patients.iter().enumerate() {
        let sent = app
            .send_referral(&house.token, &referral_input(*patient, wilson.id))
            .await;
        let id = id_of(&sent);
        match n {
            0 | 1 => {
                let accepted = app.change_referral(&wilson.token, id, "accept", None).await;
                waits.push(wait_of(&accepted));
                if n == 1 {
                    let outcome = json!({ "outcome": "Echo normal; back to your care" });
                    app.change_referral(&wilson.token, id, "complete", Some(outcome))
                        .await;
                }
            }
            2 => {
                let reason = json!({ "reason": "Outside my specialty" });
                app.change_referral(&wilson.token, id, "decline", Some(reason))
                    .await;
            }
            3 => {
                app.change_referral(&house.token, id, "cancel", None).await;
            }
            _ => {}
        }
    }
    waits.sort_by(f64::total_cmp);

    // Wilson reads all of his notifications.
    let read_all = app
        .post_json(
            "/api/v1/notifications/read-all",
            Some(&wilson.token),
            &json!({}),
        )
        .await;
    assert_eq!(read_all.status(), 200);
    let mut notifications = (0, 0);
    for token in [admin_token, &secretary.token, &house.token, &wilson.token] {
        let (stored, read) = notifications_of(&app, token).await;
        notifications = (notifications.0 + stored, notifications.1 + read);
    }
    assert!(notifications.0 > notifications.1 && notifications.1 > 0);

    email_outcomes(&app, wilson.id).await;
    assert_eq!(email_jobs(&app, admin_token, "succeeded").await, 1);
    assert_eq!(
        email_jobs(&app, admin_token, "failed").await + email_jobs(&app, admin_token, "dead").await,
        2
    );

    let query = days(-1, 9);
    let response = report(&app, Some(admin_token), &query, None).await;
    assert_eq!(response.status(), 200);
    assert!(
        header(&response, "content-type")
            .unwrap_or_default()
            .starts_with("application/json")
    );
    let body: Value = response.json().await.expect("JSON");

    let from = (today() - Duration::days(1)).date().to_string();
    let to = (today() + Duration::days(9)).date().to_string();
    assert_eq!(
        body["period"],
        json!({
            "from": from,
            "to": to,
            "time_zone": "UTC",
            "start": format!("{from}T00:00:00Z"),
            "end": format!("{to}T00:00:00Z"),
        })
    );
    assert_eq!(body["patients"], json!({ "registered": 5 }));
    assert_eq!(
        body["appointments"]["by_status"],
        json!([
            { "status": "booked", "count": 1 },
            { "status": "checked_in", "count": 1 },
            { "status": "in_progress", "count": 1 },
            { "status": "completed", "count": 2 },
            { "status": "cancelled", "count": 1 },
            { "status": "no_show", "count": 1 },
        ])
    );
    assert_close(
        &body["appointments"]["no_show_rate"],
        1.0 / 3.0,
        "no-show rate",
    );

    let mut doctors = vec![
        (house.id, house_name, booked_minutes, available_minutes),
        (wilson.id, "Test dr.wilson", 0, 0),
    ];
    doctors.sort_by_key(|d| d.0);
    let listed = body["doctors"].as_array().expect("doctors");
    assert_eq!(listed.len(), 2, "{body}");
    for (doctor, (id, name, booked, available)) in listed.iter().zip(&doctors) {
        assert_eq!(doctor["id"], json!(id));
        assert_eq!(doctor["full_name"], *name);
        assert_eq!(doctor["booked_minutes"], *booked);
        assert_eq!(doctor["available_minutes"], *available);
        if *available == 0 {
            assert_eq!(doctor["booked_share"], Value::Null);
        } else {
            assert_close(
                &doctor["booked_share"],
                f64::from(*booked) / f64::from(*available),
                "booked share",
            );
        }
    }

    assert_eq!(
        body["referrals"]["by_status"],
        json!([
            { "status": "sent", "count": 1 },
            { "status": "accepted", "count": 1 },
            { "status": "declined", "count": 1 },
            { "status": "cancelled", "count": 1 },
            { "status": "completed", "count": 1 },
        ])
    );
    let time_to_accept = &body["referrals"]["time_to_accept"];
    assert_eq!(time_to_accept["accepted"], 2);
    let median = (waits[0] + waits[1]) / 2.0;
    let p90 = waits[0] + (waits[1] - waits[0]) * 0.9;
    assert_close(&time_to_accept["median_seconds"], median, "median");
    assert_close(&time_to_accept["p90_seconds"], p90, "90th percentile");

    assert_eq!(
        body["notifications"],
        json!({
            "stored": notifications.0,
            "read": notifications.1,
            "emailed": 1,
            "email_failures": 2,
        })
    );
    // Doctors' names are the only names in it.
    let text = body.to_string();
    for patient in 0..5 {
        assert!(!text.contains(&format!("Patient Number {patient}")));
    }
    for patient in &patients {
        assert!(!text.contains(&patient.to_string()));
    }

    // The same figures as CSV, one row per figure, in the same order.
    let response = report(&app, Some(admin_token), &query, Some("text/csv")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("text/csv; charset=utf-8")
    );
    let csv = response.text().await.expect("text");
    let mut expected = vec![
        "section,name,value".to_owned(),
        format!("period,from,{from}"),
        format!("period,to,{to}"),
        "period,time_zone,UTC".to_owned(),
        format!("period,start,{from}T00:00:00Z"),
        format!("period,end,{to}T00:00:00Z"),
        "patients,registered,5".to_owned(),
    ];
    for (status, count) in [
        ("booked", 1),
        ("checked_in", 1),
        ("in_progress", 1),
        ("completed", 2),
        ("cancelled", 1),
        ("no_show", 1),
    ] {
        expected.push(format!("appointments,{status},{count}"));
    }
    expected.push(format!("appointments,no_show_rate,{}", 1.0_f64 / 3.0));
    for (id, name, booked, available) in &doctors {
        let section = format!("doctor:{id}");
        let name = if name.starts_with('=') {
            "\"'=House, Gregory \"\"Greg\"\"\"".to_owned()
        } else {
            (*name).to_owned()
        };
        expected.push(format!("{section},full_name,{name}"));
        expected.push(format!("{section},booked_minutes,{booked}"));
        expected.push(format!("{section},available_minutes,{available}"));
        let share = listed
            .iter()
            .find(|d| d["id"] == json!(id))
            .and_then(|d| d["booked_share"].as_f64())
            .map(|s| s.to_string())
            .unwrap_or_default();
        expected.push(format!("{section},booked_share,{share}"));
    }
    for (status, count) in [
        ("sent", 1),
        ("accepted", 1),
        ("declined", 1),
        ("cancelled", 1),
        ("completed", 1),
    ] {
        expected.push(format!("referrals,{status},{count}"));
    }
    expected.push("referrals,accepted_measured,2".to_owned());
    let number = |v: &Value| v.as_f64().map(|v| v.to_string()).unwrap_or_default();
    expected.push(format!(
        "referrals,median_seconds_to_accept,{}",
        number(&time_to_accept["median_seconds"])
    ));
    expected.push(format!(
        "referrals,p90_seconds_to_accept,{}",
        number(&time_to_accept["p90_seconds"])
    ));
    expected.push(format!("notifications,stored,{}", notifications.0));
    expected.push(format!("notifications,read,{}", notifications.1));
    expected.push("notifications,emailed,1".to_owned());
    expected.push("notifications,email_failures,2".to_owned());
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines, expected);
}

mod figures {
    use super::*;

    // No workers: the e-mail jobs stay as the test leaves them.
    carehub_tests::backend_tests_with! {
        ["--job-workers", "0"];

        async fn the_report_counts_exactly_what_was_done_through_the_api_as_json_and_as_csv(
            app: TestApp
        ) {
            super::the_report_matches_what_was_done(app).await;
        }
    }
}
