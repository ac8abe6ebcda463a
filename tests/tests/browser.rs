//! The web app in a real browser (headless Chromium over WebDriver): each role signs in and
//! gets its home, a refused sign-in says why on the page, and signing out ends the session.
//! Screenshots of each home are saved under `target/screenshots/`. Each test runs on SQLite and
//! on PostgreSQL, where notifications cross the database's NOTIFY.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use thirtyfour::prelude::*;

use carehub_tests::browser::Browser;
use carehub_tests::clinic::{Clinic, referral_input};
use carehub_tests::schedule::{APPOINTMENTS, VISIT_REASON, booking, day_at};
use carehub_tests::{PASSWORD, TestApp, backend_tests};

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
    async fn each_role_signs_in_to_its_own_home_and_it_passes_an_accessibility_scan(app: TestApp) {
        let Some(browser) = Browser::open().await else {
            return;
        };
        let clinic = Clinic::open(&app).await;
        // Ann has an appointment tomorrow with the doctor, and a referral waits for Wilson.
        app.work_every_day(&clinic.admin.token, clinic.doctor.id, "08:00", "18:00").await;
        let booked = app
            .post_json(
                APPOINTMENTS,
                clinic.secretary.token(),
                &booking(clinic.doctor.id, clinic.ann_record, day_at(1, 10, 0), None),
            )
            .await;
        assert_eq!(booked.status(), 201);
        let sent = app
            .post_json(
                "/api/v1/referrals",
                clinic.doctor.token(),
                &referral_input(clinic.ann_record, clinic.outsider.id),
            )
            .await;
        assert_eq!(sent.status(), 201);
        for (person, home) in [
            (&clinic.admin, "Administrator home"),
            (&clinic.secretary, "Secretary home"),
            (&clinic.doctor, "Doctor home"),
            (&clinic.outsider, "Doctor home"),
            (&clinic.lab, "Laboratory home"),
            (&clinic.ann, "Patient home"),
        ] {
            browser.sign_in(&app.url("/"), &person.username, PASSWORD).await;
            browser.heading(home).await;
            // The bar names who is signed in, and the bell shows the unread count.
            let account = browser.driver.find(By::Id("account")).await.unwrap();
            assert!(account.text().await.unwrap().contains("Sign out"));
            browser.element(By::Css("#nav[data-live=on] #unread")).await;
            browser
                .screenshot(&shot(&app, &format!("home-{}", person.username)))
                .await;
            let violations = browser.serious_accessibility_violations().await;
            assert!(
                violations.is_empty(),
                "{home} of {}: {violations:#?}",
                person.username
            );
            // At a phone's width nothing runs off the side of the screen.
            browser.driver.set_window_rect(0, 0, 390, 844).await.unwrap();
            let overflow = browser
                .driver
                .execute(
                    "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(overflow.json(), &serde_json::json!(0), "{home} at 390 pixels");
            browser
                .screenshot(&shot(&app, &format!("phone-{}", person.username)))
                .await;
            browser.driver.set_window_rect(0, 0, 1280, 900).await.unwrap();
            match person.role {
                // The administrator's home lists the users.
                "admin" => browser.wait_for_text(By::Id("main"), "sec.sarah").await,
                // The patient's home is their record, with the appointment and the access log.
                "patient" => {
                    browser.wait_for_text(By::Id("main"), "Who accessed my record").await;
                    browser.wait_for_text(By::Id("main"), VISIT_REASON).await;
                }
                // The secretary's home has the register form; the doctor's, the referral.
                "secretary" => browser.wait_for_text(By::Id("main"), "Register a patient").await,
                "doctor" if person.id == clinic.outsider.id => {
                    browser.wait_for_text(By::Id("main"), "Ann Archer").await;
                }
                _ => {}
            }
            browser.click("Sign out").await;
            browser.heading("Sign in to CareHub").await;
            assert_eq!(session_storage_refresh_token(&browser).await, Value::Null);
        }
        browser.close().await;
    }

    async fn a_refused_sign_in_says_why_and_signing_out_revokes_the_session(app: TestApp) {
        let Some(browser) = Browser::open().await else {
            return;
        };
        app.admin("root").await;
        browser.sign_in(&app.url("/"), "root", "not the password").await;
        // The refusal is said on the page, in the alert under the form.
        let said = browser.wait_until_text(By::Css("[role=alert]"), |t| !t.is_empty()).await;
        assert!(said.contains("username or password"), "{said}");
        browser.heading("Sign in to CareHub").await;

        // By keyboard alone: the username field has the focus, Tab reaches the password, Enter
        // signs in.
        browser.driver.goto(app.url("/")).await.unwrap();
        browser.heading("Sign in to CareHub").await;
        let focused = browser.driver.active_element().await.unwrap();
        assert_eq!(focused.attr("name").await.unwrap().as_deref(), Some("username"));
        focused.send_keys("root" + Key::Tab).await.unwrap();
        browser
            .driver
            .active_element()
            .await
            .unwrap()
            .send_keys(PASSWORD.to_owned() + Key::Enter)
            .await
            .unwrap();
        browser.heading("Administrator home").await;
        let refresh_token = session_storage_refresh_token(&browser).await;
        let refresh_token = refresh_token
            .as_str()
            .expect("a refresh token kept in the tab")
            .to_owned();
        browser.click("Sign out").await;
        browser.heading("Sign in to CareHub").await;
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
        browser.sign_in(&app.url("/"), &clinic.outsider.username, PASSWORD).await;
        browser.heading("Doctor home").await;
        // The socket is up (its replay done) before anything is sent.
        browser
            .driver
            .query(By::Css("#nav[data-live=on]"))
            .first()
            .await
            .unwrap();
        browser.wait_for_text(By::Id("unread"), "0").await;

        let response = app
            .post_json(
                "/api/v1/referrals",
                clinic.doctor.token(),
                &referral_input(clinic.ann_record, clinic.outsider.id),
            )
            .await;
        assert_eq!(response.status(), 201);

        // Without a reload: the bell counts it, and the inbox lists it.
        browser.wait_for_text(By::Id("unread"), "1").await;
        browser.wait_for_text(By::Id("main"), "Ann Archer").await;
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
        browser.sign_in(&app.url("/"), "sam.secretary", PASSWORD).await;
        browser.heading("Secretary home").await;
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
        browser.choose("sex", "female").await;
        fill("contact.phone", "12").await;
        browser.click("Register").await;

        // The server's 422 names the phone: its message sits under the phone input, marked invalid.
        let said = browser.wait_until_text(By::Id("error-contact-phone"), |t| !t.is_empty()).await;
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
        browser.click("Register").await;
        browser.wait_for_text(By::Id("notice"), "Registered Dora Dunn").await;
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
