//! The laboratory in the web app (headless Chromium over WebDriver): a doctor orders a blood
//! count and an ECG from a patient's page; the laboratory works the order from its queue
//! (schedules, collects, records a critical haemoglobin, uploads a synthetic ECG as CSV, and is
//! told clearly when a file is refused); the doctor follows the notification to the order, sees
//! the critical flag and the ECG drawn with its beats and its disclaimer, and releases it; the
//! patient reads the released result. Each test runs on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use carehub_ecg::synth::{SynthConfig, generate, to_csv};
use serde_json::json;
use thirtyfour::prelude::*;

use carehub_tests::browser::Browser;
use carehub_tests::clinic::Clinic;
use carehub_tests::{PASSWORD, TestApp, backend_tests_with};

/// A screenshot's name, prefixed with the backend so the two runs of a test keep their own.
fn shot(app: &TestApp, name: &str) -> String {
    format!("{:?}-lab-{name}", app.backend).to_lowercase()
}

/// The page's section headed by the heading `id`.
fn section(id: &str) -> By {
    By::XPath(format!("//section[h2[@id='{id}']]"))
}

/// A folder of files to upload, removed when dropped.
struct Uploads(PathBuf);

impl Uploads {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("carehub-lab-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Uploads {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Twenty seconds of clean sinus rhythm at 72 bpm, one lead sampled at 250 Hz, as CSV without a
/// time column (so the sampling rate is given with the upload).
fn synthetic_ecg_csv() -> String {
    let record = generate(&SynthConfig {
        seed: 7,
        sampling_rate_hz: 250.0,
        duration_secs: 20.0,
        heart_rate_bpm: 72.0,
        ..SynthConfig::default()
    })
    .unwrap();
    to_csv(&record.leads, record.sampling_rate_hz, false)
}

/// Chooses `path` in the (first visible) file input named `name`.
async fn attach(browser: &Browser, name: &str, path: &Path) {
    browser
        .element(By::Name(name))
        .await
        .send_keys(path.display().to_string())
        .await
        .unwrap();
}

async fn sign_out(browser: &Browser) {
    browser.click("Sign out").await;
    browser.heading("Sign in to CareHub").await;
}

/// Asserts that axe-core finds nothing serious on the page as it is.
async fn accessible(browser: &Browser, page: &str) {
    let violations = browser.serious_accessibility_violations().await;
    assert!(violations.is_empty(), "{page}: {violations:#?}");
}

backend_tests_with! {
    ["--job-poll-ms", "100"];

    async fn a_doctor_orders_the_laboratory_results_and_the_patient_reads_the_release(app: TestApp) {
        let Some(browser) = Browser::open().await else {
            return;
        };
        let clinic = Clinic::open(&app).await;
        let uploads = Uploads::new();

        // Dr House orders an urgent blood count and ECG from Ann's page.
        browser.sign_in(&app.url("/"), &clinic.doctor.username, PASSWORD).await;
        browser.heading("Doctor home").await;
        browser.follow("My patients").await;
        browser.follow("Ann Archer").await;
        browser.heading("Ann Archer").await;
        browser.wait_for_text(section("section-lab-orders"), "No lab orders for this patient").await;
        browser.follow("Order lab tests…").await;
        // No test chosen: refused on the form, nothing sent.
        browser.fill("clinical_question", "Palpitations and fatigue; anaemia? arrhythmia?").await;
        browser.click("Order the tests").await;
        browser.wait_for_text(By::Id("error-tests"), "choose at least one test").await;
        browser.click_on(By::Css("input[name=tests][value=cbc]")).await;
        browser.click_on(By::Css("input[name=tests][value=ecg]")).await;
        browser.choose("priority", "urgent").await;
        browser.click("Order the tests").await;
        browser.heading("Lab order for Ann Archer").await;
        browser.wait_for_text(By::Id("notice"), "Tests ordered: cbc, ecg").await;
        browser.wait_for_text(By::Id("main"), "Palpitations and fatigue").await;
        // Her page lists it now; so do the doctor's own orders.
        browser.follow("Back to my lab orders").await;
        browser.heading("My lab orders").await;
        browser.wait_for_text(section("section-orders-i-placed"), "Ann Archer").await;
        sign_out(&browser).await;

        // The laboratory's queue: Ann's order, urgent, with who she is and what is asked.
        browser.sign_in(&app.url("/"), &clinic.lab.username, PASSWORD).await;
        browser.heading("Laboratory home").await;
        let queue = section("section-work-queue");
        let row = browser
            .wait_until_text(queue.clone(), |t| t.contains("Ann Archer"))
            .await;
        for shown in ["1990-02-28", "other", "cbc, ecg", "URGENT", "anaemia? arrhythmia?", "ordered"] {
            assert!(row.contains(shown), "{shown} in the queue: {row}");
        }
        let urgent = browser.element(By::Css("tr.urgent-row")).await;
        assert!(urgent.text().await.unwrap().contains("Ann Archer"));
        accessible(&browser, "the laboratory's queue").await;
        browser
            .click_on(By::Css("a[aria-label^='Open the order of Ann Archer']"))
            .await;
        browser.heading("Lab order for Ann Archer").await;

        // Scheduled, then collected.
        browser.choose("scheduled_for", "2030-01-02T09:30").await;
        browser.click("Schedule").await;
        browser.wait_for_text(By::Id("notice"), "Scheduled for 2030-01-02").await;
        browser.click("Collected").await;
        browser.wait_for_text(By::Id("notice"), "The order is collected").await;

        // The results form comes from the catalogue: each analyte with its unit and range.
        let form = browser.element(By::Css("form[aria-label='Record the results']")).await;
        let labels = form.text().await.unwrap();
        assert!(labels.contains("Haemoglobin (g/dL), reference 12–17.5"), "{labels}");
        accessible(&browser, "the laboratory's results form").await;
        browser.fill("cbc.hemoglobin", "6.1").await;
        browser.fill("cbc.wbc", "7.4").await;
        browser.fill("cbc.platelets", "260").await;
        browser.fill("findings", "Microcytic picture; film reviewed.").await;
        browser.click("Record the results").await;
        browser.wait_for_text(By::Id("notice"), "The results are recorded").await;
        browser.wait_for_text(By::Css("tr.flag-row-critical"), "CRITICAL").await;

        // A file that is not what its name says is refused, and the refusal says why.
        let fake = uploads.write("report.pdf", b"this is not a PDF");
        attach(&browser, "file", &fake).await;
        browser.click("Upload").await;
        browser.wait_for_text(By::Id("error-file"), "report.pdf: its content is not PDF").await;

        // The ECG, as CSV with its sampling rate: stored and listed.
        let csv = uploads.write("ann-ecg.csv", synthetic_ecg_csv().as_bytes());
        browser.choose("file", "").await;
        attach(&browser, "file", &csv).await;
        browser.fill("sampling_rate", "250").await;
        browser.click("Upload").await;
        browser.wait_for_text(By::Id("notice"), "Uploaded ann-ecg.csv").await;
        browser.wait_for_text(section("section-files"), "ann-ecg.csv").await;
        browser.wait_for_text(section("section-files"), "ECG recording (CSV), 250 Hz").await;
        browser.screenshot(&shot(&app, "laboratory-order")).await;
        sign_out(&browser).await;

        // Dr House follows the critical notification to the order.
        browser.sign_in(&app.url("/"), &clinic.doctor.username, PASSWORD).await;
        browser.heading("Doctor home").await;
        browser.click_on(By::Css("a.bell")).await;
        browser.heading("Notifications").await;
        browser
            .click_on(By::XPath("//main//a[normalize-space()='Critical lab result']"))
            .await;
        browser.heading("Lab order for Ann Archer").await;
        browser.wait_for_text(By::Css(".critical-alert"), "critical limit").await;
        let critical = browser.element(By::Css("tr.flag-row-critical")).await;
        let critical = critical.text().await.unwrap();
        assert!(critical.contains("Haemoglobin") && critical.contains("6.1 g/dL"), "{critical}");
        browser.wait_for_text(section("section-results"), "Microcytic picture").await;

        // The ECG: drawn with the beats detected marked, and said to be decision support.
        browser.element(By::Css("svg.ecg-trace circle.ecg-beat")).await;
        let beats = browser
            .driver
            .find_all(By::Css("svg.ecg-trace circle.ecg-beat"))
            .await
            .unwrap();
        // About twelve beats in the ten seconds drawn at 72 bpm.
        assert!((9..=14).contains(&beats.len()), "{} beats marked", beats.len());
        let disclaimer = browser.element(By::Css(".ecg .disclaimer")).await.text().await.unwrap();
        assert!(
            disclaimer.contains("decision support") && disclaimer.contains("not a diagnosis"),
            "{disclaimer}"
        );
        let ecg = browser
            .wait_until_text(section("section-ecg-analysis"), |t| t.contains("bpm"))
            .await;
        for shown in ["Normal sinus rhythm", "RR intervals", "SDNN", "Signal quality"] {
            assert!(ecg.contains(shown), "{shown} in {ecg}");
        }
        accessible(&browser, "the doctor's order with its ECG").await;
        browser.element(By::Css("figure.ecg-figure")).await.scroll_into_view().await.unwrap();
        browser.screenshot(&shot(&app, "doctor-order-ecg")).await;

        // The recording downloads with the token; then the results go to Ann.
        browser
            .click_on(By::Css("button[aria-label='Download ann-ecg.csv']"))
            .await;
        browser.wait_for_text(By::Id("notice"), "Downloaded ann-ecg.csv").await;
        browser.click("Release to the patient").await;
        browser.wait_for_text(By::Id("notice"), "released to the patient").await;
        browser.wait_for_text(By::Id("main"), "released").await;
        sign_out(&browser).await;

        // Ann reads her released results.
        browser.sign_in(&app.url("/"), &clinic.ann.username, PASSWORD).await;
        browser.heading("Patient home").await;
        browser.follow("My results").await;
        browser.heading("My results").await;
        let result = browser
            .wait_until_text(By::Css("article.lab-result"), |t| t.contains("Haemoglobin"))
            .await;
        for shown in ["cbc, ecg", "6.1 g/dL", "CRITICAL", "Microcytic picture", "ann-ecg.csv"] {
            assert!(result.contains(shown), "{shown} in {result}");
        }
        browser.element(By::Css("article.lab-result svg.ecg-trace circle.ecg-beat")).await;
        accessible(&browser, "the patient's results").await;
        browser.screenshot(&shot(&app, "patient-results")).await;
        browser.close().await;
    }

    async fn the_ordering_doctor_cancels_an_open_order_and_the_queue_filter_still_finds_it(app: TestApp) {
        let Some(browser) = Browser::open().await else {
            return;
        };
        let clinic = Clinic::open(&app).await;
        let ordered = app
            .post_json(
                "/api/v1/lab-orders",
                clinic.doctor.token(),
                &json!({
                    "patient_id": clinic.ann_record,
                    "tests": ["potassium"],
                    "priority": "routine",
                    "clinical_question": "On diuretics; potassium?",
                }),
            )
            .await;
        assert_eq!(ordered.status(), 201);

        browser.sign_in(&app.url("/"), &clinic.doctor.username, PASSWORD).await;
        browser.heading("Doctor home").await;
        browser.follow("Lab orders").await;
        browser.heading("My lab orders").await;
        browser
            .click_on(By::Css("a[aria-label^='Open the order of Ann Archer']"))
            .await;
        browser.heading("Lab order for Ann Archer").await;
        browser.wait_for_text(By::Id("main"), "On diuretics; potassium?").await;
        assert!(
            browser.driver.find_all(By::XPath("//button[normalize-space()='Release to the patient']")).await.unwrap().is_empty(),
            "nothing to release before results"
        );
        browser.click("Cancel the order").await;
        browser.wait_for_text(By::Id("notice"), "The order is cancelled").await;
        browser.wait_for_text(By::Css(".lab-status"), "cancelled").await;
        assert!(
            browser.driver.find_all(By::XPath("//button[normalize-space()='Cancel the order']")).await.unwrap().is_empty(),
            "a cancelled order cannot be cancelled again"
        );
        sign_out(&browser).await;

        // The laboratory's open queue no longer holds it; the cancelled ones do.
        browser.sign_in(&app.url("/"), &clinic.lab.username, PASSWORD).await;
        browser.heading("Laboratory home").await;
        browser
            .wait_for_text(section("section-work-queue"), "No open orders")
            .await;
        browser.choose("status", "cancelled").await;
        browser.click("Show").await;
        let shown = browser
            .wait_until_text(section("section-work-queue"), |t| t.contains("Ann Archer"))
            .await;
        assert!(shown.contains("potassium") && shown.contains("cancelled"), "{shown}");
        browser.close().await;
    }
}
