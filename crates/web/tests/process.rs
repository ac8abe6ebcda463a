//! The `carehub` binary as an operator runs it: what it logs, how it fails, how it stops.
//! Each test starts the real binary on a free port, on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::Duration;

use carehub_infra::testing::ScratchDatabase;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;
use tokio::process::{Child, Command};

/// A running `carehub serve` child process.
struct Server {
    child: Child,
    base: String,
    _data_dir: tempdir::Dir,
}

mod tempdir {
    /// A directory removed when dropped.
    pub struct Dir(pub std::path::PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Server {
    async fn start(database: &ScratchDatabase) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data_dir = std::env::temp_dir().join(format!("carehub-process-{}", uuid_like()));
        let child = Command::new(env!("CARGO_BIN_EXE_carehub"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("CAREHUB_BIND", format!("127.0.0.1:{port}"))
            .env("CAREHUB_DATABASE_URL", &database.url)
            .env("CAREHUB_DATA_DIR", &data_dir)
            .env("CAREHUB_WORKERS", "1")
            .env("CAREHUB_LOG", "info")
            .env("CAREHUB_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the carehub binary starts");
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _data_dir: tempdir::Dir(data_dir),
        };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(response) = client.get(server.url("/api/v1/health/ready")).send().await
                && response.status() == 200
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server did not become ready");
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM and returns the exit status and everything the server logged.
    async fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().expect("a running child");
        let sent = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .unwrap();
        assert!(sent.success());
        // Bounded so a hang fails the test instead of stalling the suite; not a speed check.
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the server exits after SIGTERM")
            .unwrap();
        let mut logs = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut logs)
            .await
            .unwrap();
        (status, logs)
    }
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

async fn post(
    client: &reqwest::Client,
    url: String,
    body: &Value,
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = client.post(url).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

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
);

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
