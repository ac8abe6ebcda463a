//! The web app in a real browser (headless Chromium over WebDriver): each role signs in and
//! gets its home, a refused sign-in says why on the page, and signing out ends the session.
//! Screenshots of each home are saved under `target/screenshots/`. Each test runs on SQLite and
//! on PostgreSQL, where notifications cross the database's NOTIFY.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use thirtyfour::prelude::*;

use carehub_tests::browser::Browser;
use carehub_tests::clinic::{Clinic, referral_input};
use carehub_tests::{PASSWORD, TestApp, backend_tests};

async fn sign_in(browser: &Browser, app: &TestApp, username: &str, password: &str) {
    let driver = &browser.driver;
    driver.goto(app.url("/")).await.unwrap();
    let name = driver.query(By::Name("username")).first().await.unwrap();
    name.send_keys(username).await.unwrap();
    driver
        .find(By::Name("password"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    click(browser, "Sign in").await;
}

async fn heading(browser: &Browser, text: &str) -> WebElement {
    browser
        .driver
        .query(By::XPath(format!("//h1[normalize-space()='{text}']")))
        .first()
        .await
        .unwrap_or_else(|e| panic!("no heading {text:?}: {e}"))
}

/// Waits up to ten seconds until the text of the element `by` satisfies `done`, and returns it.
async fn wait_until_text(browser: &Browser, by: By, done: impl Fn(&str) -> bool) -> String {
    let element = browser.driver.query(by).first().await.unwrap();
    let mut shown = String::new();
    for _ in 0..200 {
        shown = element.text().await.unwrap();
        if done(&shown) {
            return shown;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the page shows {shown:?}");
}

/// Waits until the element `by` shows `text`.
async fn wait_for_text(browser: &Browser, by: By, text: &str) {
    wait_until_text(browser, by, |shown| shown.contains(text)).await;
}

/// Clicks the button labelled `label`.
async fn click(browser: &Browser, label: &str) {
    browser
        .driver
        .find(By::XPath(format!("//button[normalize-space()='{label}']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn session_storage_refresh_token(browser: &Browser) -> Value {
    browser
        .driver
        .execute("return sessionStorage.getItem('carehub.refresh');", vec![])
        .await
        .unwrap()
        .json()
        .clone()
}

/// A screenshot's name, prefixed with the backend so the two runs of a test keep their own.
fn shot(app: &TestApp, name: &str) -> String {
    format!("{:?}-{name}", app.backend).to_lowercase()
}

backend_tests! {
    async fn each_role_signs_in_to_its_own_home(app: TestApp) {
        let Some(browser) = Browser::open().await else {
            return;
        };
        let admin = app.admin("root").await;
        for (username, role, home) in [
            ("root", "admin", "Administrator home"),
            ("sam.secretary", "secretary", "Secretary home"),
            ("dr.adams", "doctor", "Doctor home"),
            ("lab.lee", "laboratory", "Laboratory home"),
            ("pat.jones", "patient", "Patient home"),
        ] {
            if role != "admin" {
                app.active_user(username, role, &admin.access_token).await;
            }
            sign_in(&browser, &app, username, PASSWORD).await;
            heading(&browser, home).await;
            // The bar names who is signed in, and the bell shows the unread count.
            let account = browser.driver.find(By::Id("account")).await.unwrap();
            assert!(account.text().await.unwrap().contains("Sign out"));
            browser
                .driver
                .query(By::Id("unread"))
                .first()
                .await
                .unwrap();
            browser.screenshot(&shot(&app, &format!("home-{role}"))).await;
            if role == "admin" {
                // The administrator's home lists the users.
                browser
                    .driver
                    .query(By::XPath("//td[normalize-space()='root']"))
                    .first()
                    .await
                    .unwrap();
            }
            click(&browser, "Sign out").await;
            heading(&browser, "Sign in to CareHub").await;
            assert_eq!(session_storage_refresh_token(&browser).await, Value::Null);
        }
        browser.close().await;
    }

    async fn a_refused_sign_in_says_why_and_signing_out_revokes_the_session(app: TestApp) {
        let Some(browser) = Browser::open().await else {
            return;
        };
        app.admin("root").await;
        sign_in(&browser, &app, "root", "not the password").await;
        // The refusal is said on the page, in the alert under the form.
        let said = wait_until_text(&browser, By::Css("[role=alert]"), |t| !t.is_empty()).await;
        assert!(said.contains("username or password"), "{said}");
        heading(&browser, "Sign in to CareHub").await;

        sign_in(&browser, &app, "root", PASSWORD).await;
        heading(&browser, "Administrator home").await;
        let refresh_token = session_storage_refresh_token(&browser).await;
        let refresh_token = refresh_token
            .as_str()
            .expect("a refresh token kept in the tab")
            .to_owned();
        click(&browser, "Sign out").await;
        heading(&browser, "Sign in to CareHub").await;
        // The server revoked the session: the refresh token the tab held no longer works.
        let response = app.refresh(&refresh_token).await;
        assert_eq!(response.status(), 401);
        browser.close().await;
    }

    async fn a_referral_sent_elsewhere_appears_live_in_the_recipients_browser(app: TestApp) {
        let Some(browser) = Browser::open().await else {
            return;
        };
        let clinic = Clinic::open(&app).await;
        sign_in(&browser, &app, &clinic.outsider.username, PASSWORD).await;
        heading(&browser, "Doctor home").await;
        // The socket is up (its replay done) before anything is sent.
        browser
            .driver
            .query(By::Css("#nav[data-live=on]"))
            .first()
            .await
            .unwrap();
        wait_for_text(&browser, By::Id("unread"), "0").await;

        let response = app
            .post_json(
                "/api/v1/referrals",
                clinic.doctor.token(),
                &referral_input(clinic.ann_record, clinic.outsider.id),
            )
            .await;
        assert_eq!(response.status(), 201);

        // Without a reload: the bell counts it, and the inbox lists it.
        wait_for_text(&browser, By::Id("unread"), "1").await;
        wait_for_text(&browser, By::Id("main"), "Ann Archer").await;
        browser.screenshot(&shot(&app, "live-referral")).await;
        browser.close().await;
    }

    async fn a_secretary_registers_a_patient_and_a_refusal_shows_on_its_field(app: TestApp) {
        let Some(browser) = Browser::open().await else {
            return;
        };
        let admin = app.admin("root").await;
        app.active_user("sam.secretary", "secretary", &admin.access_token)
            .await;
        sign_in(&browser, &app, "sam.secretary", PASSWORD).await;
        heading(&browser, "Secretary home").await;
        let driver = &browser.driver;
        let fill = |name: &'static str, value: &'static str| async move {
            let input = driver.find(By::Name(name)).await.unwrap();
            input.clear().await.unwrap();
            input.send_keys(value).await.unwrap();
        };
        fill("full_name", "Dora Dunn").await;
        driver
            .execute(
                "document.querySelector('[name=date_of_birth]').value = '1980-04-02';",
                vec![],
            )
            .await
            .unwrap();
        fill("contact.phone", "12").await;
        click(&browser, "Register").await;

        // The server's 422 names the phone: its message sits under the phone input, marked invalid.
        let said = wait_until_text(&browser, By::Id("error-contact-phone"), |t| !t.is_empty()).await;
        assert!(
            said.contains("telephone"),
            "the phone's error is shown next to it: {said}"
        );
        let phone = driver.find(By::Name("contact.phone")).await.unwrap();
        assert_eq!(
            phone.attr("aria-invalid").await.unwrap().as_deref(),
            Some("true")
        );
        assert_eq!(
            driver
                .find(By::Id("error-full_name"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
            "",
            "the valid name has no error"
        );
        browser.screenshot(&shot(&app, "register-refused")).await;

        fill("contact.phone", "+41 44 123 45 67").await;
        click(&browser, "Register").await;
        wait_for_text(&browser, By::Id("notice"), "Registered Dora Dunn").await;
        let patients = app
            .get("/api/v1/patients?q=Dora", Some(&admin.access_token))
            .await;
        assert_eq!(patients.status(), 200);
        let body: Value = patients.json().await.unwrap();
        assert_eq!(body["items"][0]["full_name"], "Dora Dunn");
        assert_eq!(body["items"][0]["date_of_birth"], "1980-04-02");
        browser.close().await;
    }
}
