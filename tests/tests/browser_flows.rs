//! The web app's flows across roles and browsers (headless Chromium over WebDriver): the
//! brief's referral (a secretary registers and books, one doctor refers, the other sees it live,
//! accepts and reads the record), a taken slot refused with what is in the way, and a patient
//! seeing who read their record. Each test runs on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::Instant;

use serde_json::{Value, json};
use thirtyfour::prelude::*;

use carehub_tests::browser::Browser;
use carehub_tests::clinic::{Clinic, EMERGENCY_REASON, emergency_path, patient_path};
use carehub_tests::schedule::{APPOINTMENTS, booking, day_at, status_path};
use carehub_tests::{PASSWORD, TestApp, backend_tests};

/// A screenshot's name, prefixed with the backend so the two runs of a test keep their own.
fn shot(app: &TestApp, name: &str) -> String {
    format!("{:?}-{name}", app.backend).to_lowercase()
}

/// Tomorrow in the browser's calendar, as a date input holds it.
async fn tomorrow(browser: &Browser) -> String {
    let day = browser
        .driver
        .execute(
            "const d = new Date(); d.setDate(d.getDate() + 1); \
             return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;",
            vec![],
        )
        .await
        .unwrap();
    day.json().as_str().unwrap().to_owned()
}

/// The page's section headed by the heading `id`.
fn section(id: &str) -> By {
    By::XPath(format!("//section[h2[@id='{id}']]"))
}

/// Waits until the select named `name` offers `value` (the lists load after the page).
async fn offered(browser: &Browser, name: &str, value: &str) {
    browser
        .driver
        .query(By::Css(format!(
            "select[name={name}] option[value='{value}']"
        )))
        .first()
        .await
        .unwrap_or_else(|e| panic!("{name} does not offer {value}: {e}"));
}

/// The slot the first free-time choice holds: `start|end`.
async fn first_slot(browser: &Browser, day: &str) -> (String, String) {
    let shown = browser
        .wait_until_text(By::Css("fieldset.slots"), |t| t.contains(day))
        .await;
    let slot = browser.element(By::Css("input[name=slot]")).await;
    let value = slot.value().await.unwrap().unwrap();
    let (start, end) = value.split_once('|').unwrap();
    assert!(start.starts_with(day), "{shown}");
    (start.to_owned(), end.to_owned())
}

backend_tests! {
    async fn a_secretary_books_a_doctor_refers_and_the_other_doctor_accepts_live(app: TestApp) {
        let Some(desk) = Browser::open().await else {
            return;
        };
        let Some(colleague) = Browser::open().await else {
            return;
        };
        let clinic = Clinic::open(&app).await;
        let (house, wilson) = (&clinic.doctor, &clinic.outsider);
        app.work_every_day(&clinic.admin.token, house.id, "08:00", "18:00").await;

        // Doctor B is signed in, live, before anything happens.
        colleague.sign_in(&app.url("/"), &wilson.username, PASSWORD).await;
        colleague.heading("Doctor home").await;
        colleague.element(By::Css("#nav[data-live=on]")).await;
        colleague.wait_for_text(By::Id("unread"), "0").await;

        // The secretary registers Cora, and lands on her record.
        desk.sign_in(&app.url("/"), &clinic.secretary.username, PASSWORD).await;
        desk.heading("Secretary home").await;
        desk.fill("full_name", "Cora Clark").await;
        desk.choose("date_of_birth", "1975-06-30").await;
        desk.choose("sex", "female").await;
        desk.fill("contact.phone", "+41 44 555 12 12").await;
        desk.fill("insurance.provider", "Helsana").await;
        desk.fill("insurance.policy_number", "H-123-456").await;
        desk.click("Register").await;
        desk.heading("Cora Clark").await;
        desk.wait_for_text(By::Id("notice"), "Registered Cora Clark").await;
        desk.wait_for_text(By::Id("main"), "Helsana, policy H-123-456").await;

        // She books Cora with Dr House tomorrow: the first free time.
        offered(&desk, "doctor_id", &house.id.to_string()).await;
        desk.choose("doctor_id", &house.id.to_string()).await;
        let day = tomorrow(&desk).await;
        desk.choose("day", &day).await;
        let (start, end) = first_slot(&desk, &day).await;
        desk.fill("reason", "Chest pain on exertion").await;

        // Meanwhile that time goes to Bob: the refusal lists what is in the way.
        let mut taken = booking(house.id, clinic.bob_record, time::OffsetDateTime::now_utc(), None);
        taken["start"] = json!(start);
        taken["end"] = json!(end);
        let response = app.post_json(APPOINTMENTS, clinic.secretary.token(), &taken).await;
        assert_eq!(response.status(), 201);
        desk.click("Book").await;
        let said = desk
            .wait_until_text(By::Css("form[aria-label=Book] [role=alert]"), |t| !t.is_empty())
            .await;
        assert!(said.contains("in the doctor's calendar"), "{said}");
        assert!(said.contains(&start[11..16]), "the time in the way: {said}");
        desk.screenshot(&shot(&app, "booking-conflict")).await;

        // The free times again, without the taken one: the next is booked.
        desk.choose("day", &day).await;
        desk.wait_until_text(By::Css("fieldset.slots"), |t| !t.contains(&start[11..16]))
            .await;
        desk.click("Book").await;
        desk.wait_for_text(By::Id("notice"), "Booked").await;
        desk.wait_for_text(By::Id("main"), "Chest pain on exertion").await;
        desk.click("Sign out").await;
        desk.heading("Sign in to CareHub").await;

        // Dr House (on Cora's care team by the booking) refers her to Dr Wilson.
        desk.sign_in(&app.url("/"), &house.username, PASSWORD).await;
        desk.heading("Doctor home").await;
        desk.follow("My patients").await;
        desk.heading("My patients").await;
        desk.follow("Cora Clark").await;
        desk.heading("Cora Clark").await;
        desk.follow("Refer this patient to another doctor").await;
        desk.heading("Send a referral").await;
        desk.fill("reason", "Suspected angina; please assess").await;
        desk.fill("clinical_summary", "Chest pain on exertion for three weeks.").await;
        desk.choose("urgency", "urgent").await;
        desk.choose("to_doctor_id", &wilson.id.to_string()).await;
        desk.click("Send the referral").await;
        let sent = Instant::now();
        desk.wait_for_text(By::Id("notice"), "Referral sent").await;

        // Dr Wilson sees it without reloading: the bell, and the inbox.
        colleague.wait_for_text(By::Id("unread"), "1").await;
        colleague.wait_for_text(By::Id("main"), "Cora Clark").await;
        println!("the referral reached the other browser {:?} after the send", sent.elapsed());
        colleague.screenshot(&shot(&app, "referral-received")).await;

        // The bell leads to the notification, and the notification to the referral: read.
        colleague.click_on(By::Css("a.bell")).await;
        colleague.heading("Notifications").await;
        colleague
            .click_on(By::XPath("//main//a[contains(., 'referral')]"))
            .await;
        colleague.heading("Referral of Cora Clark").await;
        colleague.wait_for_text(By::Id("unread"), "0").await;
        // He reads what was sent, accepts it, then opens the record itself.
        colleague.wait_for_text(By::Id("main"), "Chest pain on exertion for three weeks.").await;
        colleague.click("Accept").await;
        colleague.wait_for_text(By::Id("notice"), "The referral is accepted").await;
        colleague.follow("Open the patient's record").await;
        colleague.heading("Cora Clark").await;
        colleague.wait_for_text(By::Id("main"), "Medical information").await;
        colleague.wait_for_text(By::Id("main"), "Care team").await;
        colleague.screenshot(&shot(&app, "record-after-referral")).await;

        // The sender's outbox shows the answer.
        desk.follow("Referrals").await;
        desk.heading("Referrals").await;
        desk.wait_for_text(section("section-referrals-i-sent"), "accepted").await;
        desk.close().await;
        colleague.close().await;
    }

    async fn a_patient_sees_who_read_their_record(app: TestApp) {
        let Some(browser) = Browser::open().await else {
            return;
        };
        let clinic = Clinic::open(&app).await;
        let read = app.get(&patient_path(clinic.ann_record), clinic.doctor.token()).await;
        assert_eq!(read.status(), 200);
        // Another doctor's attempt is refused, and listed too.
        let refused = app.get(&patient_path(clinic.ann_record), clinic.outsider.token()).await;
        assert_eq!(refused.status(), 404);

        browser.sign_in(&app.url("/"), &clinic.ann.username, PASSWORD).await;
        browser.heading("Patient home").await;
        let log = section("section-who-accessed-my-record");
        browser.wait_for_text(log.clone(), "Test dr.house").await;
        browser.wait_for_text(log.clone(), "Test dr.wilson").await;
        let shown = browser.element(By::XPath(
            "//section[h2[@id='section-who-accessed-my-record']]//tr[td[normalize-space()='Test dr.wilson']]",
        )).await;
        assert!(shown.text().await.unwrap().contains("no"), "the refusal is shown as refused");
        browser.screenshot(&shot(&app, "access-log")).await;
        browser.close().await;
    }

    async fn a_doctor_outside_the_care_team_breaks_the_glass_with_a_reason(app: TestApp) {
        let Some(browser) = Browser::open().await else {
            return;
        };
        let clinic = Clinic::open(&app).await;
        browser.sign_in(&app.url("/"), &clinic.outsider.username, PASSWORD).await;
        browser.heading("Doctor home").await;
        // The record number finds the patient; her record stays closed.
        let ann: Value = app.get(&patient_path(clinic.ann_record), clinic.doctor.token()).await.json().await.unwrap();
        browser.follow("My patients").await;
        browser.fill("q", ann["mrn"].as_str().unwrap()).await;
        browser.click("Search").await;
        browser.follow("Ann Archer").await;
        browser.heading("Patient record").await;
        // A reason is required: the refusal sits on its field.
        browser.click("Open the record in an emergency").await;
        let said = browser.wait_until_text(By::Id("error-reason"), |t| !t.is_empty()).await;
        assert!(!said.is_empty());
        browser.fill("reason", "Unconscious in the emergency room").await;
        browser.click("Open the record in an emergency").await;
        browser.heading("Ann Archer").await;
        browser.wait_for_text(By::Id("notice"), "Emergency access granted").await;
        let accesses: Value = app
            .get("/api/v1/admin/emergency-accesses", clinic.admin.token())
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(accesses["items"][0]["reason"], "Unconscious in the emergency room");
        browser.close().await;
    }

    async fn a_doctor_runs_a_visit_and_keeps_the_record(app: TestApp) {
        let Some(browser) = Browser::open().await else {
            return;
        };
        let clinic = Clinic::open(&app).await;
        app.work_every_day(&clinic.admin.token, clinic.doctor.id, "08:00", "18:00").await;
        let booked: Value = app
            .post_json(
                APPOINTMENTS,
                clinic.secretary.token(),
                &booking(clinic.doctor.id, clinic.ann_record, day_at(1, 10, 0), None),
            )
            .await
            .json()
            .await
            .unwrap();
        let checked_in = app
            .post_json(
                &status_path(booked["id"].as_str().unwrap()),
                clinic.secretary.token(),
                &json!({ "status": "checked_in" }),
            )
            .await;
        assert_eq!(checked_in.status(), 200);

        browser.sign_in(&app.url("/"), &clinic.doctor.username, PASSWORD).await;
        browser.heading("Doctor home").await;
        browser.follow("My patients").await;
        browser.follow("Ann Archer").await;
        browser.heading("Ann Archer").await;
        // The visit: start it, sign its note, complete it.
        browser.click("Start visit").await;
        browser.wait_for_text(By::Id("notice"), "in progress").await;
        browser.follow("Visit note…").await;
        browser.fill("body", "Blood pressure 128/82; continue metformin.").await;
        browser.click("Sign the visit note").await;
        browser.wait_for_text(By::Id("notice"), "The visit note is signed").await;
        browser.click("Complete").await;
        browser.wait_for_text(By::Id("notice"), "completed").await;
        let notes = section("section-notes");
        browser.wait_for_text(notes.clone(), "Blood pressure 128/82").await;

        // A note, then its amendment, shown under it.
        browser.follow("Write a note…").await;
        browser.fill("body", "Feels well; walks daily.").await;
        browser.choose("kind", "progress").await;
        browser.click("Sign the note").await;
        browser.wait_for_text(By::Id("notice"), "The note is signed").await;
        browser.follow("Amend…").await;
        browser.fill("body", "Walks 30 minutes daily.").await;
        browser.click("Sign the amendment").await;
        browser.wait_for_text(By::Id("notice"), "The amendment is signed").await;
        browser.wait_for_text(notes, "Walks 30 minutes daily.").await;
        let amended = browser
            .element(By::XPath("//article[.//p[normalize-space()='Feels well; walks daily.']]//div[@class='amendment']"))
            .await;
        assert!(amended.text().await.unwrap().contains("Walks 30 minutes daily."));

        // Medical information: an allergy added.
        browser.follow("Edit medical information…").await;
        browser.fill("allergies[1].substance", "latex").await;
        browser.click("Save medical information").await;
        browser.wait_for_text(By::Id("notice"), "The medical information is saved").await;
        browser.wait_for_text(section("section-medical-information"), "latex").await;
        browser.screenshot(&shot(&app, "record-doctor")).await;
        browser.close().await;
    }

    async fn a_secretary_edits_details_and_a_patient_moves_and_cancels(app: TestApp) {
        let Some(browser) = Browser::open().await else {
            return;
        };
        let clinic = Clinic::open(&app).await;
        app.work_every_day(&clinic.admin.token, clinic.doctor.id, "08:00", "18:00").await;
        let response = app
            .post_json(
                APPOINTMENTS,
                clinic.secretary.token(),
                &booking(clinic.doctor.id, clinic.bob_record, day_at(2, 10, 0), None),
            )
            .await;
        assert_eq!(response.status(), 201);

        // The secretary changes Bob's insurance and adds an emergency contact, whose wrong
        // phone number is refused on its field.
        browser.sign_in(&app.url("/"), &clinic.secretary.username, PASSWORD).await;
        browser.heading("Secretary home").await;
        browser.fill("q", "Bob").await;
        browser.click("Search").await;
        browser.follow("Bob Baker").await;
        browser.heading("Bob Baker").await;
        browser.follow("Edit details and insurance…").await;
        browser.fill("insurance.provider", "Sanitas").await;
        browser.fill("insurance.policy_number", "S-99").await;
        browser.choose("insurance.valid_until", "2030-12-31").await;
        browser.fill("emergency_contact.name", "Ella Baker").await;
        browser.fill("emergency_contact.phone", "12").await;
        browser.click("Save details").await;
        let said = browser
            .wait_until_text(By::Id("error-emergency_contact-phone"), |t| !t.is_empty())
            .await;
        assert!(said.contains("telephone"), "{said}");
        browser.fill("emergency_contact.phone", "+41 44 123 45 67").await;
        browser.click("Save details").await;
        browser.wait_for_text(By::Id("notice"), "The details are saved").await;
        browser.wait_for_text(By::Id("main"), "Sanitas, policy S-99, valid until 2030-12-31").await;
        browser.wait_for_text(By::Id("main"), "Ella Baker, +41 44 123 45 67").await;
        browser.click("Sign out").await;

        // Bob moves his appointment to the first free time of the day after, then cancels it.
        browser.sign_in(&app.url("/"), &clinic.bob.username, PASSWORD).await;
        browser.heading("Patient home").await;
        browser.follow("Move…").await;
        // The free times are asked for once the disclosure opens.
        browser.element(By::Css("form[aria-label='Move here']")).await;
        let later = day_at(3, 0, 0).date().to_string();
        browser.choose("day", &later).await;
        browser.wait_for_text(By::Css("fieldset.slots"), &later).await;
        browser.click("Move here").await;
        browser.wait_for_text(By::Id("notice"), &format!("moved to {later} 08:00")).await;
        browser.follow("Cancel…").await;
        browser.fill("reason", "Feeling better").await;
        browser.click("Cancel the appointment").await;
        browser.wait_for_text(By::Id("notice"), "The appointment is cancelled").await;
        browser.wait_for_text(section("section-appointments"), "cancelled").await;
        browser.close().await;
    }

    async fn an_administrator_approves_suspends_and_reads_the_trails(app: TestApp) {
        let Some(browser) = Browser::open().await else {
            return;
        };
        let clinic = Clinic::open(&app).await;
        assert_eq!(app.register("dr.new", "doctor").await.status(), 201);
        let broke = app
            .post_json(
                &emergency_path(clinic.bob_record),
                clinic.outsider.token(),
                &json!({ "reason": EMERGENCY_REASON }),
            )
            .await;
        assert_eq!(broke.status(), 201);

        browser.sign_in(&app.url("/"), &clinic.admin.username, PASSWORD).await;
        browser.heading("Administrator home").await;
        // Only the pending account can be approved; then it can be suspended.
        browser.choose("status", "pending").await;
        browser.click("Filter").await;
        browser.wait_until_text(By::Css("#main table"), |t| t.contains("dr.new") && !t.contains("dr.house")).await;
        browser.click("Approve").await;
        browser.wait_for_text(By::Id("notice"), "Test dr.new is approved").await;
        browser
            .click_on(By::Css("button[aria-label='Suspend Test dr.new (dr.new)']"))
            .await;
        browser.wait_for_text(By::Id("notice"), "Test dr.new is suspended").await;
        assert_eq!(app.login("dr.new", PASSWORD).await.status(), 403);

        // The audit trail, filtered to one doctor: what they did to patients.
        browser.follow("Audit trail").await;
        browser.heading("Audit trail").await;
        offered(&browser, "user_id", &clinic.outsider.id.to_string()).await;
        browser.choose("user_id", &clinic.outsider.id.to_string()).await;
        browser.click("Show events").await;
        // Only the chosen user's events: the whole trail also holds Dr House's.
        browser
            .wait_until_text(By::Css("#main table"), |shown| {
                shown.contains("emergency_access") && !shown.contains("Test dr.house")
            })
            .await;

        // The emergency accesses, with their reasons.
        browser.follow("Emergency accesses").await;
        browser.heading("Emergency accesses").await;
        browser.wait_for_text(By::Id("main"), EMERGENCY_REASON).await;
        browser.wait_for_text(By::Id("main"), "Test dr.wilson").await;
        let violations = browser.serious_accessibility_violations().await;
        assert!(violations.is_empty(), "{violations:#?}");
        browser.screenshot(&shot(&app, "emergency-accesses")).await;
        browser.close().await;
    }
}
