//! The `carehub` binary as an operator runs it: what it logs, how it fails, how it stops.
//! Each test starts the real binary on a free port, on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use carehub_infra::testing::ScratchDatabase;
use serde_json::{Value, json};

use support::{Server, get, post, sign_in};

macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                if let Some(db) = carehub_infra::testing::ScratchDatabase::create(carehub_infra::testing::Backend::Sqlite).await {
                    super::$name(db).await;
                }
            })+
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                if let Some(db) = carehub_infra::testing::ScratchDatabase::create(carehub_infra::testing::Backend::Postgres).await {
                    super::$name(db).await;
                }
            })+
        }
    };
}

on_both_backends!(
    logs_carry_request_ids_and_nothing_that_identifies_a_patient,
    an_internal_failure_is_logged_with_its_cause_and_answered_generically,
    a_job_whose_instance_was_killed_runs_again_after_its_lease_and_completes_once,
    keys_rotate_and_list_reach_a_running_server_and_never_show_a_private_key,
);

/// The `kid` in an access token's header.
fn kid_of(token: &str) -> String {
    use base64::Engine as _;
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

async fn keys_rotate_and_list_reach_a_running_server_and_never_show_a_private_key(
    database: ScratchDatabase,
) {
    let server = Server::start_with(&database, &[("CAREHUB_KEYS_RELOAD_SECS", "1")]).await;
    let client = reqwest::Client::new();
    server
        .create_admin(&database, "keeper", "rotating brass lantern")
        .await;
    let old = kid_of(&sign_in(&client, &server, "keeper", "rotating brass lantern").await);
    // The body of the generated private key: it must show nowhere.
    let pem = std::fs::read_to_string(server.data_dir().path().join("jwt-ed25519.pem")).unwrap();
    let secret = pem.lines().nth(1).unwrap().to_owned();

    let (status, listed, _) = server.keys(&database, &["list"]).await;
    assert!(status.success());
    assert!(
        listed.contains(&format!("{old}  ")) && listed.contains("signing"),
        "{listed}"
    );

    let (status, rotated, rotate_logs) = server.keys(&database, &["rotate"]).await;
    assert!(status.success(), "{rotate_logs}");
    let new = rotated
        .strip_prefix("added signing key ")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("{rotated}"))
        .to_owned();
    assert!(
        rotated.contains(&format!("key {old} verifies the tokens it signed until")),
        "{rotated}"
    );

    let (status, listed, list_logs) = server.keys(&database, &["list"]).await;
    assert!(status.success(), "{list_logs}");
    let statuses: Vec<(&str, &str)> = listed
        .lines()
        .skip(1)
        .map(|line| {
            let mut columns = line.split_whitespace();
            (columns.next().unwrap(), columns.nth(1).unwrap())
        })
        .collect();
    assert_eq!(
        statuses,
        vec![(new.as_str(), "signing"), (old.as_str(), "verifying")],
        "{listed}"
    );

    let mut signed_with = old.clone();
    for _ in 0..50 {
        signed_with = kid_of(&sign_in(&client, &server, "keeper", "rotating brass lantern").await);
        if signed_with == new {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        signed_with, new,
        "the running server signs with the new key"
    );

    let (_, logs) = server.terminate().await;
    for output in [&listed, &rotated, &rotate_logs, &list_logs, &logs] {
        assert!(
            !output.contains(&secret),
            "a private key was printed: {output}"
        );
        assert!(
            !output.contains("PRIVATE KEY"),
            "a private key was printed: {output}"
        );
    }
}

async fn logs_carry_request_ids_and_nothing_that_identifies_a_patient(database: ScratchDatabase) {
    let server = Server::start(&database).await;
    let client = reqwest::Client::new();
    // Distinctive values, so any trace of them in the logs is found.
    let username = "zebulon.quartz";
    let full_name = "Zebulon Quartzfield";
    let email = "zebulon.quartz@patients.example";
    let password = "marmalade typewriter 42";
    let registered = post(
        &client,
        server.url("/api/v1/auth/register"),
        &json!({"username": username, "password": password, "full_name": full_name, "email": email, "role": "patient"}),
        None,
    )
    .await;
    assert_eq!(registered.status(), 201);
    let patient: Value = registered.json().await.unwrap();
    let patient_id = patient["id"].as_str().unwrap().to_owned();

    let bad_login = post(
        &client,
        server.url("/api/v1/auth/login"),
        &json!({"username": username, "password": "not the password"}),
        None,
    )
    .await;
    assert_eq!(bad_login.status(), 401);
    let tokens: Value = post(
        &client,
        server.url("/api/v1/auth/login"),
        &json!({"username": username, "password": password}),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let access_token = tokens["access_token"].as_str().unwrap();
    let me = client
        .get(server.url(&format!("/api/v1/users/me?who={username}")))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let request_id = me
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap()
        .to_owned();
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    // A secretary registers the patient's record, links it to the account, and finds it by
    // name, record number and identifier; the patient reads it.
    server
        .create_admin(&database, "root", "process admin passphrase")
        .await;
    let admin = sign_in(&client, &server, "root", "process admin passphrase").await;
    let secretary = json!({"username": "reception", "password": "front desk passphrase",
        "full_name": "Front Desk", "role": "secretary"});
    let created = post(
        &client,
        server.url("/api/v1/admin/users"),
        &secretary,
        Some(&admin),
    )
    .await;
    assert_eq!(created.status(), 201);
    let secretary = sign_in(&client, &server, "reception", "front desk passphrase").await;
    let national_id = "ZQ-998877-X";
    let record = post(
        &client,
        server.url("/api/v1/patients"),
        &json!({"full_name": full_name, "date_of_birth": "1977-07-07", "sex": "other",
            "contact": {"email": email, "phone": "+41 79 555 01 23"},
            "identifiers": [{"system": "national_id", "value": national_id}],
            "user_id": patient_id}),
        Some(&secretary),
    )
    .await;
    assert_eq!(record.status(), 201);
    let record: Value = record.json().await.unwrap();
    let record_id = record["id"].as_str().unwrap().to_owned();
    let mrn = record["mrn"].as_str().unwrap().to_owned();
    for q in ["Quartzfield", mrn.as_str(), national_id] {
        let found = get(
            &client,
            server.url(&format!("/api/v1/patients?q={q}")),
            &secretary,
        )
        .await;
        assert_eq!(found.status(), 200);
        let found: Value = found.json().await.unwrap();
        assert_eq!(
            found["items"][0]["id"],
            record_id.as_str(),
            "search for {q}"
        );
    }
    let own = get(
        &client,
        server.url("/api/v1/users/me/patient"),
        access_token,
    )
    .await;
    assert_eq!(own.status(), 200);

    let (status, logs) = server.terminate().await;
    assert!(
        status.success(),
        "the server stops cleanly on SIGTERM: {status}"
    );

    // Requests are logged, structured, with their id and route pattern.
    let lines: Vec<Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).expect("every log line is JSON"))
        .collect();
    assert!(
        lines
            .iter()
            .any(|line| line["span"]["request_id"] == request_id.as_str()
                && line["span"]["route"] == "/api/v1/users/me"
                && line["fields"]["status"] == 200),
        "the request to /users/me is logged with its id"
    );
    assert!(logs.contains("stopped"), "the shutdown is logged");
    // Nothing that identifies the patient, nor any secret.
    for secret in [
        username,
        full_name,
        email,
        password,
        &patient_id,
        access_token,
        refresh_token,
        "Quartzfield",
        &record_id,
        &mrn,
        national_id,
        "555 01 23",
        "1977-07-07",
    ] {
        assert!(!logs.contains(secret), "the logs contain {secret:?}");
    }
}

async fn an_internal_failure_is_logged_with_its_cause_and_answered_generically(
    database: ScratchDatabase,
) {
    let server = Server::start(&database).await;
    // Break the storage behind the server's back: sign-in can no longer count failures.
    match database.connect_migrated().await.unwrap() {
        carehub_infra::Database::Sqlite(pool) => {
            sqlx::query("DROP TABLE login_failures")
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        carehub_infra::Database::Postgres(pool) => {
            sqlx::query("DROP TABLE login_failures")
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
    let response = post(
        &reqwest::Client::new(),
        server.url("/api/v1/auth/login"),
        &json!({"username": "someone", "password": "whatever it is"}),
        None,
    )
    .await;
    assert_eq!(response.status(), 500);
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "application/problem+json"
    );
    let body = response.text().await.unwrap();
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["type"], "urn:carehub:problem:internal");
    assert_eq!(
        problem["detail"],
        "the server could not complete the request"
    );
    assert!(
        !body.contains("login_failures"),
        "the cause is not sent: {body}"
    );

    let (_, logs) = server.terminate().await;
    assert!(
        logs.lines()
            .any(|line| line.contains("\"level\":\"ERROR\"") && line.contains("login_failures")),
        "the cause is logged"
    );
}

async fn a_job_whose_instance_was_killed_runs_again_after_its_lease_and_completes_once(
    database: ScratchDatabase,
) {
    use carehub_domain::jobs::{JobState, NewJob, Task};

    let settings = [
        ("CAREHUB_JOB_LEASE_SECS", "2"),
        ("CAREHUB_JOB_POLL_MS", "50"),
    ];
    let mut first = Server::start_with(&database, &settings).await;
    let db = database.connect_migrated().await.unwrap();
    let jobs = db.repositories().jobs;
    let job = NewJob::new(
        Task::Probe {
            hold_ms: 3_000,
            fail_attempts: 0,
        },
        jiff::Timestamp::now(),
    );
    jobs.enqueue(std::slice::from_ref(&job), jiff::Timestamp::now())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let wait_for = |state: JobState| {
        let jobs = std::sync::Arc::clone(&jobs);
        async move {
            loop {
                let stored = jobs.get(job.id).await.unwrap().unwrap();
                if stored.state == state {
                    return stored;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "not {state}: {stored:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let held = wait_for(JobState::Running).await;
    assert_eq!(held.attempts, 1);

    first.child.start_kill().unwrap();
    first.child.wait().await.unwrap();
    let second = Server::start_with(&database, &settings).await;
    let done = wait_for(JobState::Succeeded).await;
    assert_eq!(
        done.attempts, 2,
        "run again once, after the lost attempt's lease expired"
    );
    assert!(done.started_at.unwrap() >= held.locked_until.unwrap());
    assert_ne!(done.worker, held.worker);
    let (status, _) = second.terminate().await;
    assert!(status.success());
    db.close().await;
}
