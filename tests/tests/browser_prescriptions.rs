//! Prescriptions in the web app (headless Chromium over WebDriver): a doctor prescribes from a
//! patient's page, is shown the recorded allergy the medication matches, prescribes it with a
//! reason, opens the printable page, then stops it; the patient follows the notification to
//! the prescription and finds it in their own list. Each test runs on SQLite and on
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use thirtyfour::prelude::*;

use carehub_tests::browser::Browser;
use carehub_tests::clinic::Clinic;
use carehub_tests::{PASSWORD, TestApp, backend_tests};

/// The page's section headed by the heading `id`.
fn section(id: &str) -> By {
    By::XPath(format!("//section[h2[@id='{id}']]"))
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

backend_tests! {
    async fn a_doctor_prescribes_past_an_allergy_with_a_reason_and_the_patient_reads_it(app: TestApp) {
        let Some(browser) = Browser::open().await else {
            return;
        };
        let clinic = Clinic::open(&app).await;
        let prescriptions = section("section-prescriptions");

        // Dr House prescribes amoxicillin from Ann's page; she is allergic to penicillin.
        browser.sign_in(&app.url("/"), &clinic.doctor.username, PASSWORD).await;
        browser.heading("Doctor home").await;
        browser.follow("My patients").await;
        browser.follow("Ann Archer").await;
        browser.heading("Ann Archer").await;
        browser.wait_for_text(prescriptions.clone(), "No prescriptions.").await;
        browser.follow("Prescribe…").await;
        browser.fill("medication", "Amoxicillin").await;
        browser.fill("dose", "500 mg").await;
        browser.fill("frequency", "three times a day").await;
        browser.fill("duration_days", "7").await;
        browser.fill("quantity", "21").await;
        browser.fill("instructions", "Take with water, finish the course.").await;
        browser.click("Write the prescription").await;
        browser
            .wait_for_text(By::Css("form[aria-label='Prescribe'] [role=alert]"), "penicillin (both are penicillins)")
            .await;
        accessible(&browser, "the refused prescription").await;
        browser
            .fill("override_reason", "Took amoxicillin in 2024 without a reaction.")
            .await;
        browser.click("Write the prescription").await;
        browser.wait_for_text(By::Id("notice"), "Prescribed: Amoxicillin 500 mg, oral, three times a day, 7 days.").await;
        browser.wait_for_text(By::Id("notice"), "The allergy override is recorded").await;
        let row = browser
            .wait_until_text(prescriptions.clone(), |t| t.contains("Amoxicillin"))
            .await;
        for shown in ["active", "Allergy override: Took amoxicillin in 2024", "Test dr.house"] {
            assert!(row.contains(shown), "{shown} in {row}");
        }
        accessible(&browser, "a patient's prescriptions").await;

        // The printable page: the clinic, the patient, the doctor, the override.
        browser.follow("Open to print").await;
        let sheet = browser
            .wait_until_text(By::Css("article.printable"), |t| t.contains("Amoxicillin"))
            .await;
        for shown in ["CareHub Clinic", "Ann Archer", "1990-02-28", "500 mg", "7 days", "Test dr.house", "penicillin", "Took amoxicillin in 2024"] {
            assert!(sheet.contains(shown), "{shown} on the printed page: {sheet}");
        }
        accessible(&browser, "the printable prescription").await;
        browser
            .screenshot(&format!("{:?}-prescription-print", app.backend).to_lowercase())
            .await;

        // Back on Ann's page, the doctor stops it.
        browser.driver.back().await.unwrap();
        browser.heading("Ann Archer").await;
        browser.follow("Stop…").await;
        browser.fill("reason", "Rash on the second day").await;
        browser.click("Stop it").await;
        browser.wait_for_text(By::Id("notice"), "Amoxicillin stopped.").await;
        browser
            .wait_for_text(prescriptions.clone(), "stopped (Rash on the second day)")
            .await;
        sign_out(&browser).await;

        // Ann follows her notification to it, and finds it in her own list.
        browser.sign_in(&app.url("/"), &clinic.ann.username, PASSWORD).await;
        browser.heading("Patient home").await;
        browser.click_on(By::Css("a.bell")).await;
        browser.heading("Notifications").await;
        browser
            .click_on(By::XPath("//main//a[normalize-space()='You have a new prescription']"))
            .await;
        let sheet = browser
            .wait_until_text(By::Css("article.printable"), |t| t.contains("Amoxicillin"))
            .await;
        assert!(sheet.to_lowercase().contains("not valid: stopped"), "{sheet}");
        browser.follow("My prescriptions").await;
        browser.heading("My prescriptions").await;
        let mine = browser
            .wait_until_text(prescriptions, |t| t.contains("Amoxicillin"))
            .await;
        assert!(mine.contains("stopped"), "{mine}");
        assert!(
            browser.driver.find_all(By::XPath("//summary[normalize-space()='Prescribe…']")).await.unwrap().is_empty(),
            "a patient cannot prescribe"
        );
        accessible(&browser, "the patient's prescriptions").await;
        browser.close().await;
    }
}
