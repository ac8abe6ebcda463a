//! Feedback in the web app (headless Chromium over WebDriver): the patient rates a completed
//! visit from her appointments; the doctor reads it in My feedback, unnamed; an administrator
//! hides the comment, and the doctor no longer sees it. Each test runs on SQLite and on
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use thirtyfour::prelude::*;

use carehub_tests::browser::Browser;
use carehub_tests::clinic::Clinic;
use carehub_tests::schedule::{booking, day_at, uuid_of};
use carehub_tests::{PASSWORD, TestApp, backend_tests};

backend_tests! {
    async fn the_patient_rates_a_visit_and_the_doctor_reads_it(app: TestApp) {
        let Some(browser) = Browser::open().await else {
            return;
        };
        let clinic = Clinic::open(&app).await;
        app.work_every_day(&clinic.admin.token, clinic.doctor.id, "08:00", "18:00").await;
        let booked = app
            .book(&clinic.secretary.token, &booking(clinic.doctor.id, clinic.ann_record, day_at(3, 9, 0), None))
            .await;
        let id = uuid_of(&booked);
        app.set_status(&clinic.secretary.token, id, "checked_in", None).await;
        app.set_status(&clinic.doctor.token, id, "in_progress", None).await;
        app.set_status(&clinic.doctor.token, id, "completed", None).await;

        browser.sign_in(&app.url("/"), &clinic.ann.username, PASSWORD).await;
        browser.heading("Patient home").await;
        browser.click_on(By::Css("summary[aria-label^='Rate this visit']")).await;
        browser.choose("rating", "4").await;
        browser.fill("comment", "Clear explanations, a short wait.").await;
        browser.click("Send the rating").await;
        browser.wait_for_text(By::Id("notice"), "your rating is sent").await;
        let violations = browser.serious_accessibility_violations().await;
        assert!(violations.is_empty(), "{violations:#?}");
        browser.click("Sign out").await;
        browser.heading("Sign in to CareHub").await;

        browser.sign_in(&app.url("/"), &clinic.doctor.username, PASSWORD).await;
        browser.heading("Doctor home").await;
        browser.follow("My feedback").await;
        browser.heading("My feedback").await;
        let page = browser
            .wait_until_text(By::Id("main"), |t| t.contains("Clear explanations"))
            .await;
        assert!(page.contains("Average 4.0 of 5, from 1 rating"), "{page}");
        assert!(!page.contains("Ann"), "no patient named: {page}");
        browser.click("Sign out").await;
        browser.heading("Sign in to CareHub").await;

        // The administrator hides the comment, with a reason; the rating still counts.
        browser.sign_in(&app.url("/"), &clinic.admin.username, PASSWORD).await;
        browser.follow("Feedback").await;
        browser.heading("Feedback").await;
        browser.choose("doctor_id", &clinic.doctor.id.to_string()).await;
        browser.click("Show the ratings").await;
        browser.wait_for_text(By::Id("main"), "Clear explanations").await;
        browser.click_on(By::Css("summary[aria-label^='Hide']")).await;
        browser.fill("reason", "It names a member of staff.").await;
        browser.click("Hide the comment").await;
        browser.wait_for_text(By::Id("main"), "Hidden").await;
        let violations = browser.serious_accessibility_violations().await;
        assert!(violations.is_empty(), "{violations:#?}");
        browser.click("Sign out").await;
        browser.heading("Sign in to CareHub").await;
        browser.sign_in(&app.url("/"), &clinic.doctor.username, PASSWORD).await;
        browser.follow("My feedback").await;
        let page = browser
            .wait_until_text(By::Id("main"), |t| t.contains("Average 4.0 of 5"))
            .await;
        assert!(!page.contains("Clear explanations"), "the hidden comment: {page}");
        browser.close().await;
    }
}
