//! `carehub demo`: the clinic it seeds, seen over HTTP by the users it prints, and how it keeps
//! to its own data directory and to empty databases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use carehub_web::demo::{self, DemoClinic, MARKER_FILE, PASSWORD, USERS};
use carehub_web::startup::Stopper;
use carehub_web::{Application, Settings};
use jiff::{SignedDuration, Timestamp};
use reqwest::Client;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("carehub-demo-{}", uuid::Uuid::new_v4().simple())))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Settings as `carehub demo --data-dir DIR` reads them, with `extra` arguments.
fn demo_settings(data_dir: &Path, extra: &[&str]) -> Settings {
    let dir = data_dir.display().to_string();
    let mut args = vec!["carehub", "--bind", "127.0.0.1:0", "--data-dir", &dir];
    args.extend_from_slice(&["--workers", "1", "--shutdown-timeout-secs", "1"]);
    args.extend_from_slice(extra);
    let mut settings = Settings::parse_from_args(args).expect("valid settings");
    if !extra.contains(&"--database-url") {
        // The demo's own SQLite file, whatever the environment names.
        settings.database_url = None;
    }
    demo::settings(settings, true)
}

/// A demo server, running.
struct Demo {
    address: String,
    clinic: DemoClinic,
    client: Client,
    stopper: Stopper,
    running: JoinHandle<std::io::Result<()>>,
}

impl Demo {
    async fn start(settings: Settings) -> Self {
        let (application, clinic) = demo::launch(settings).await.expect("the demo starts");
        Self::run(application, clinic)
    }

    fn run(application: Application, clinic: DemoClinic) -> Self {
        let address = format!("http://127.0.0.1:{}", application.port());
        let stopper = application.stopper();
        Self {
            address,
            clinic,
            client: Client::new(),
            stopper,
            running: tokio::spawn(application.run_until_stopped()),
        }
    }

    /// Stops the server and waits until its database is closed.
    async fn stop(self) {
        self.stopper.stop().await;
        self.running.await.unwrap().unwrap();
    }

    async fn sign_in(&self, username: &str) -> String {
        let response = self
            .client
            .post(format!("{}/api/v1/auth/login", self.address))
            .json(&json!({ "username": username, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{username} signs in");
        let tokens: Value = response.json().await.unwrap();
        tokens["access_token"].as_str().unwrap().to_owned()
    }

    async fn get(&self, path: &str, token: &str) -> Value {
        let response = self
            .client
            .get(format!("{}/api/v1{path}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    async fn items(&self, path: &str, token: &str) -> Vec<Value> {
        self.get(path, token).await["items"]
            .as_array()
            .unwrap()
            .clone()
    }
}

fn statuses(appointments: &[Value]) -> Vec<&str> {
    appointments
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn every_printed_user_signs_in_to_a_living_demo_clinic() {
    let dir = TempDir::new();
    let demo = Demo::start(demo_settings(&dir.0, &[])).await;
    let welcome = demo.clinic.welcome("http://127.0.0.1/");
    for user in USERS {
        assert!(welcome.contains(user.username) && welcome.contains(user.full_name));
        demo.sign_in(user.username).await;
    }
    assert!(welcome.contains(PASSWORD));
    assert!(dir.0.join(MARKER_FILE).is_file());

    let house = demo.sign_in("dr.house").await;
    let inbox = demo.items("/referrals?box=inbox&status=sent", &house).await;
    assert_eq!(inbox.len(), 1, "one referral waits: {inbox:?}");
    assert_eq!(inbox[0]["from_doctor"]["full_name"], "Meredith Grey");
    let notifications = demo.items("/notifications", &house).await;
    assert!(
        notifications
            .iter()
            .any(|n| n["kind"] == "referral.received" && n["read_at"].is_null()),
        "dr.house is told of the referral: {notifications:?}"
    );

    let grey = demo.sign_in("dr.grey").await;
    let week_ahead = Timestamp::now() + SignedDuration::from_hours(24 * 8);
    let own = demo.items("/appointments", &grey).await;
    assert!(own.len() >= 3, "dr.grey has this week's visits: {own:?}");
    for appointment in &own {
        let start: Timestamp = appointment["start"].as_str().unwrap().parse().unwrap();
        assert!(start < week_ahead, "{appointment}");
    }
    let secretary = demo.sign_in("sam.secretary").await;
    let all = demo.items("/appointments?limit=100", &secretary).await;
    assert_eq!(all.len(), demo.clinic.appointments);
    let statuses = statuses(&all);
    assert!(statuses.contains(&"checked_in") && statuses.contains(&"completed"));

    let ann = demo.sign_in("ann.patient").await;
    let record = demo.get("/users/me/patient", &ann).await;
    assert_eq!(record["full_name"], "Ann Parker");
    let notes = demo
        .items(
            &format!("/patients/{}/notes", record["id"].as_str().unwrap()),
            &grey,
        )
        .await;
    assert_eq!(notes.len(), 2);
    assert!(notes.iter().any(|n| n["amends"].is_string()), "{notes:?}");
    demo.stop().await;
}

#[tokio::test]
async fn the_demo_laboratory_has_a_queue_a_critical_result_an_ecg_alert_and_released_results() {
    let dir = TempDir::new();
    let demo = Demo::start(demo_settings(&dir.0, &[])).await;
    assert_eq!(demo.clinic.lab_orders, 5);
    assert!(
        demo.clinic
            .welcome("http://127.0.0.1/")
            .contains("5 lab orders")
    );

    let lab = demo.sign_in("lab.lee").await;
    let queue = demo.items("/lab-orders", &lab).await;
    let mut open = statuses(&queue);
    open.sort_unstable();
    assert_eq!(open, ["collected", "ordered", "scheduled"], "{queue:?}");

    let house = demo.sign_in("dr.house").await;
    let notifications = demo.items("/notifications", &house).await;
    assert!(
        notifications
            .iter()
            .any(|n| n["kind"] == "lab.critical" && n["data"]["urgent"] == true),
        "dr.house is told of the critical haemoglobin: {notifications:?}"
    );

    let ann = demo.sign_in("ann.patient").await;
    let results = demo.items("/lab-orders", &ann).await;
    assert_eq!(statuses(&results), ["released"], "{results:?}");
    let bob = demo.sign_in("bob.patient").await;
    assert!(
        demo.items("/lab-orders", &bob).await.is_empty(),
        "not released to Bob"
    );

    // The recording is analysed by the job workers once the server runs.
    let grey = demo.sign_in("dr.grey").await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let notifications = demo.items("/notifications", &grey).await;
        if notifications
            .iter()
            .any(|n| n["kind"] == "lab.ecg_alert" && n["data"]["urgent"] == true)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no ECG alert for dr.grey: {notifications:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    demo.stop().await;
}

#[tokio::test]
async fn the_demo_patients_have_their_prescriptions_and_were_told() {
    let dir = TempDir::new();
    let demo = Demo::start(demo_settings(&dir.0, &[])).await;
    assert_eq!(demo.clinic.prescriptions, 3);
    assert!(
        demo.clinic
            .welcome("http://127.0.0.1/")
            .contains("3 prescriptions")
    );
    let ann = demo.sign_in("ann.patient").await;
    let record = demo.get("/users/me/patient", &ann).await;
    let path = format!("/patients/{}/prescriptions", record["id"].as_str().unwrap());
    let mine = demo.items(&path, &ann).await;
    let medications: Vec<&str> = mine
        .iter()
        .map(|p| p["medication"].as_str().unwrap())
        .collect();
    assert_eq!(medications, ["Atorvastatin", "Lisinopril"], "newest first");
    assert!(mine.iter().all(|p| p["status"] == "active"));
    let told = demo
        .items("/notifications", &ann)
        .await
        .into_iter()
        .filter(|n| n["kind"] == "prescription.created")
        .count();
    assert_eq!(told, 2);
    let grey = demo.sign_in("dr.grey").await;
    assert_eq!(demo.items(&path, &grey).await.len(), 2);
    demo.stop().await;
}

#[tokio::test]
async fn a_second_demo_start_wipes_the_first_clinic_and_seeds_afresh() {
    let dir = TempDir::new();
    let first = Demo::start(demo_settings(&dir.0, &[])).await;
    let token = first.sign_in("ann.patient").await;
    let first_record = first.get("/users/me/patient", &token).await;
    first.stop().await;

    let second = Demo::start(demo_settings(&dir.0, &[])).await;
    let token = second.sign_in("ann.patient").await;
    let second_record = second.get("/users/me/patient", &token).await;
    assert_ne!(first_record["id"], second_record["id"]);
    let house = second.sign_in("dr.house").await;
    let inbox = second.items("/referrals?box=inbox", &house).await;
    assert_eq!(inbox.len(), 1, "one clinic, not two: {inbox:?}");
    second.stop().await;
}

#[tokio::test]
async fn the_demo_refuses_a_data_directory_it_did_not_make() {
    let dir = TempDir::new();
    std::fs::create_dir_all(&dir.0).unwrap();
    let database = dir.0.join("carehub.db");
    std::fs::write(&database, b"a real clinic").unwrap();

    let refused = demo::launch(demo_settings(&dir.0, &[])).await;
    let error = format!(
        "{:#}",
        refused.expect_err("a directory that is not the demo's")
    );
    assert!(error.contains("not a demo directory"), "{error}");
    assert_eq!(std::fs::read(&database).unwrap(), b"a real clinic");
    assert!(!dir.0.join(MARKER_FILE).exists());
}

#[tokio::test]
async fn the_demo_seeds_a_named_database_only_while_it_has_no_users() {
    let dir = TempDir::new();
    let url = format!("sqlite:{}", dir.0.join("named.db").display());
    let args = ["--database-url", url.as_str()];
    let demo = Demo::start(demo_settings(&dir.0.join("demo"), &args)).await;
    demo.stop().await;

    let refused = demo::launch(demo_settings(&dir.0.join("demo"), &args)).await;
    let error = format!("{:#}", refused.expect_err("a database with users"));
    assert!(error.contains("already has users"), "{error}");
    assert!(
        dir.0.join("named.db").is_file(),
        "a named database is never deleted"
    );
}

/// The demo in a browser: every printed user reaches their home with the demo's data on it, and
/// each home's screenshot is saved (`target/screenshots/demo-<username>.png`; the README shows
/// the doctor's).
#[tokio::test]
async fn every_printed_user_sees_a_living_home_in_a_browser() {
    let Some(browser) = carehub_tests::browser::Browser::open().await else {
        return;
    };
    let dir = TempDir::new();
    let demo = Demo::start(demo_settings(&dir.0, &[])).await;
    for user in USERS {
        browser
            .sign_in(&format!("{}/", demo.address), user.username, PASSWORD)
            .await;
        let home = match user.role {
            "admin" => "Administrator home",
            "secretary" => "Secretary home",
            "doctor" => "Doctor home",
            "laboratory" => "Laboratory home",
            _ => "Patient home",
        };
        browser.heading(home).await;
        let main = thirtyfour::By::Id("main");
        match user.username {
            // The referral waits in dr.house's inbox; his bell counts it.
            "dr.house" => {
                browser.wait_for_text(main, "Referrals to me").await;
                browser
                    .wait_until_text(thirtyfour::By::Id("unread"), |t| t != "0")
                    .await;
                browser
                    .wait_for_text(
                        thirtyfour::By::Css("#section-referrals-to-me + table"),
                        "sent",
                    )
                    .await;
            }
            "ann.patient" => browser.wait_for_text(main, "Who accessed my record").await,
            "admin" => browser.wait_for_text(main, "sam.secretary").await,
            _ => {}
        }
        browser
            .element(thirtyfour::By::Css("#nav[data-live=on]"))
            .await;
        browser.screenshot(&format!("demo-{}", user.username)).await;
        browser.click("Sign out").await;
        browser.heading("Sign in to CareHub").await;
    }
    browser.close().await;
    demo.stop().await;
}
