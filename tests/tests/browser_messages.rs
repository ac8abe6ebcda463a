//! Messages in the web app, two browsers at once (headless Chromium over WebDriver): a doctor
//! starts a conversation from the patient's page; a message sent in one browser appears in the
//! other without a reload, the answer comes back the same way, and the doctor sees that the
//! patient read it; each sees the other typing; a file sent with a message reaches the other's
//! thread. Each test runs on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use thirtyfour::prelude::*;

use carehub_tests::browser::Browser;
use carehub_tests::clinic::Clinic;
use carehub_tests::{PASSWORD, TestApp, backend_tests};

/// Asserts that axe-core finds nothing serious on the page as it is.
async fn accessible(browser: &Browser, page: &str) {
    let violations = browser.serious_accessibility_violations().await;
    assert!(violations.is_empty(), "{page}: {violations:#?}");
}

backend_tests! {
    async fn a_message_sent_in_one_browser_appears_in_the_other(app: TestApp) {
        let Some(house) = Browser::open().await else {
            return;
        };
        let Some(ann) = Browser::open().await else {
            return;
        };
        let clinic = Clinic::open(&app).await;

        // Dr House starts a conversation from Ann's page.
        house.sign_in(&app.url("/"), &clinic.doctor.username, PASSWORD).await;
        house.heading("Doctor home").await;
        house.follow("My patients").await;
        house.follow("Ann Archer").await;
        house.heading("Ann Archer").await;
        house.click("Message the patient").await;
        house.heading("Conversation with Test ann.patient").await;

        // Ann opens it from her Messages.
        ann.sign_in(&app.url("/"), &clinic.ann.username, PASSWORD).await;
        ann.heading("Patient home").await;
        ann.follow("Messages").await;
        ann.heading("Messages").await;
        ann.follow("Test dr.house").await;
        ann.heading("Conversation with Test dr.house").await;

        // What he sends appears in her browser, live; while he types, she sees it.
        house.fill("body", "How is the cough since Monday?").await;
        ann.wait_for_text(By::Css("p.typing"), "Test dr.house is typing").await;
        house.click("Send").await;
        ann.wait_for_text(By::Css("ol.thread"), "How is the cough since Monday?").await;
        accessible(&ann, "a conversation").await;
        // She has seen it: his browser says so.
        house.wait_for_text(By::Css("p.receipt"), "Your last message was seen by Test ann.patient").await;

        // Her answer comes back the same way, with a photo of the rash.
        let photo = std::env::temp_dir().join(format!("rash-{}.png", uuid::Uuid::new_v4().simple()));
        std::fs::write(&photo, carehub_tests::lab::png()).unwrap();
        ann.fill("body", "Much better, thank you.").await;
        ann.element(By::Name("files")).await.send_keys(photo.display().to_string()).await.unwrap();
        ann.click("Send").await;
        house.wait_for_text(By::Css("ol.thread"), "Much better, thank you.").await;
        let photo_name = photo.file_name().unwrap().to_string_lossy().into_owned();
        house.wait_for_text(By::Css("ol.thread ul.attachments"), &photo_name).await;
        accessible(&house, "a conversation with a file").await;
        let _ = std::fs::remove_file(&photo);
        let thread = house.wait_until_text(By::Css("ol.thread"), |t| t.contains("Much better")).await;
        let first = thread.find("How is the cough").unwrap();
        let second = thread.find("Much better").unwrap();
        assert!(first < second, "oldest first: {thread}");
        house
            .screenshot(&format!("{:?}-conversation", app.backend).to_lowercase())
            .await;
        house.close().await;
        ann.close().await;
    }
}
