//! Video calls in the web app, with real browsers (headless Chromium with a fake camera and
//! microphone, over WebDriver): a doctor and a patient open their video visit's call page from
//! their appointment lists, join, and their browsers connect to each other through CareHub's
//! signalling; another patient and a secretary are refused; hanging up tells the other side;
//! a join the server refuses (the visit cancelled) is said on the page; a patient books a video
//! visit with the booking form, and its call says it is not open yet. Each test runs on SQLite
//! and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration as StdDuration, Instant};

use serde_json::{Value, json};
use thirtyfour::prelude::*;
use time::{Duration, OffsetDateTime, Time};
use uuid::Uuid;

use carehub_tests::browser::{Browser, FAKE_MEDIA};
use carehub_tests::clinic::Clinic;
use carehub_tests::schedule::{booking, uuid_of, whole_minute};
use carehub_tests::{PASSWORD, TestApp, backend_tests};

/// How long two browsers on one machine may take to connect.
const CONNECT_TIMEOUT: StdDuration = StdDuration::from_secs(30);

/// Asserts that axe-core finds nothing serious on the page as it is.
async fn accessible(browser: &Browser, page: &str) {
    let violations = browser.serious_accessibility_violations().await;
    assert!(violations.is_empty(), "{page}: {violations:#?}");
}

/// A visit whose call is open now, within the doctor's day (00:00–23:59 UTC): it starts in two
/// minutes and lasts ten, or less to end at 23:59; when that leaves under five minutes, it is
/// at the next midnight instead, whose call opened at 23:50.
fn a_visit_open_now() -> (OffsetDateTime, OffsetDateTime) {
    let start = whole_minute(OffsetDateTime::now_utc()) + Duration::minutes(2);
    let day_end = start.replace_time(Time::from_hms(23, 59, 0).unwrap());
    if day_end - start >= Duration::minutes(5) {
        return (start, (start + Duration::minutes(10)).min(day_end));
    }
    let midnight = (start + Duration::days(1)).replace_time(Time::MIDNIGHT);
    (midnight, midnight + Duration::minutes(10))
}

/// Books a video visit of Ann with Dr House, as the secretary; returns its id.
async fn book_video(
    app: &TestApp,
    clinic: &Clinic,
    start: OffsetDateTime,
    end: OffsetDateTime,
) -> Uuid {
    let mut body = booking(clinic.doctor.id, clinic.ann_record, start, Some(end));
    body["reason"] = json!("Palpitations at night");
    body["video"] = json!(true);
    let booked = app.book(&clinic.secretary.token, &body).await;
    assert_eq!(booked["video"], true, "{booked}");
    uuid_of(&booked)
}

/// What the call page shows: where this side stands (`idle`, `joined`...), the peer
/// connection's state, where the other party stands, the refusal if any.
async fn call_state(browser: &Browser) -> Value {
    browser
        .driver
        .execute(
            "const of = (id) => document.getElementById(id); \
             return { state: document.querySelector('[data-call-state]')?.dataset.callState ?? null, \
                      connection: of('call-connection')?.dataset.connectionState ?? null, \
                      peer: of('call-peer')?.dataset.peerStatus ?? null, \
                      peer_text: of('call-peer')?.textContent ?? null, \
                      error: of('call-error')?.textContent ?? null };",
            vec![],
        )
        .await
        .expect("the call page's state")
        .json()
        .clone()
}

/// Waits until both pages' peer connections are `connected`; panics with what they show after
/// [`CONNECT_TIMEOUT`].
async fn both_connected(one: &Browser, other: &Browser) {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        let (a, b) = (call_state(one).await, call_state(other).await);
        if a["connection"] == "connected" && b["connection"] == "connected" {
            return;
        }
        assert!(Instant::now() < deadline, "not connected: {a} and {b}");
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
}

/// Waits up to ten seconds until the call page's state satisfies `done`; returns it.
async fn wait_state(browser: &Browser, done: impl Fn(&Value) -> bool) -> Value {
    let mut state = Value::Null;
    for _ in 0..100 {
        state = call_state(browser).await;
        if done(&state) {
            return state;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    panic!("the call page shows {state}");
}

/// The remote video's size, once frames from the other side play in it.
async fn remote_video_size(browser: &Browser) -> (u64, u64) {
    for _ in 0..100 {
        let size = browser
            .driver
            .execute(
                "const v = document.getElementById('call-remote'); \
                 return [v.videoWidth, v.videoHeight, v.readyState];",
                vec![],
            )
            .await
            .expect("the remote video")
            .json()
            .clone();
        let (width, height, ready) = (size[0].as_u64(), size[1].as_u64(), size[2].as_u64());
        if let (Some(width @ 1..), Some(height @ 1..), Some(2..)) = (width, height, ready) {
            return (width, height);
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    panic!("no video from the other side");
}

/// Opens the app's page `hash` in the tab, as following a link would.
async fn open_hash(browser: &Browser, hash: &str) {
    browser
        .driver
        .execute("location.hash = arguments[0];", vec![json!(hash)])
        .await
        .expect("the page opens");
}

backend_tests! {
    async fn a_doctor_and_a_patient_connect_a_video_call_through_carehub(app: TestApp) {
        let Some(house) = Browser::open_with(FAKE_MEDIA).await else {
            return;
        };
        let Some(ann) = Browser::open_with(FAKE_MEDIA).await else {
            return;
        };
        let clinic = Clinic::open(&app).await;
        app.work_every_day(&clinic.secretary.token, clinic.doctor.id, "00:00", "23:59").await;
        let (start, end) = a_visit_open_now();
        let id = book_video(&app, &clinic, start, end).await;

        // Dr House finds the visit in his list, marked as a video consultation, and opens its call.
        house.sign_in(&app.url("/"), &clinic.doctor.username, PASSWORD).await;
        house.heading("Doctor home").await;
        house.wait_for_text(By::Css("main"), "Video consultation").await;
        accessible(&house, "a doctor's home with a video visit").await;
        house.follow("Join video call").await;
        house.heading("Video call with Ann Archer").await;
        house.wait_for_text(By::Id("call-window"), "The call is open until").await;
        house.wait_for_text(By::Id("call-peer"), "Ann Archer has not joined yet.").await;
        accessible(&house, "the call page before joining").await;
        house.click("Join the call").await;
        wait_state(&house, |s| s["state"] == "joined").await;

        // Ann opens it from her home and sees him waiting.
        ann.sign_in(&app.url("/"), &clinic.ann.username, PASSWORD).await;
        ann.heading("Patient home").await;
        ann.follow("Join video call").await;
        ann.heading("Video call with Test dr.house").await;
        ann.wait_for_text(By::Id("call-peer"), "Test dr.house is in the call.").await;
        ann.click("Join the call").await;

        // The two browsers connect to each other, and each plays the other's camera.
        both_connected(&house, &ann).await;
        let (width, height) = remote_video_size(&ann).await;
        assert!(width > 0 && height > 0);
        remote_video_size(&house).await;
        house.wait_for_text(By::Id("call-peer"), "Ann Archer is in the call.").await;
        accessible(&ann, "a call in progress").await;
        ann.click("Mute microphone").await;
        ann.element(By::XPath("//button[normalize-space()='Unmute microphone']")).await;
        ann.click("Turn camera off").await;
        ann.element(By::XPath("//button[normalize-space()='Turn camera on']")).await;
        ann.click("Unmute microphone").await;
        ann.click("Turn camera on").await;
        house
            .screenshot(&format!("{:?}-video-call", app.backend).to_lowercase())
            .await;

        // Another patient is refused the call, and so is a secretary; nothing connects for them.
        let Some(bob) = Browser::open().await else {
            return;
        };
        bob.sign_in(&app.url("/"), &clinic.bob.username, PASSWORD).await;
        bob.heading("Patient home").await;
        open_hash(&bob, &format!("#/calls/{id}")).await;
        bob.heading("Video call").await;
        let refusal = bob.wait_until_text(By::Id("call-refusal"), |t| !t.is_empty()).await;
        assert!(refusal.starts_with("Call refused: "), "{refusal}");
        accessible(&bob, "a refused call").await;
        let state = call_state(&bob).await;
        assert!(state["connection"].is_null() && state["peer"].is_null(), "{state}");
        assert!(bob.driver.find(By::XPath("//button[normalize-space()='Join the call']")).await.is_err());
        bob.click("Sign out").await;
        bob.fill("username", &clinic.secretary.username).await;
        bob.fill("password", PASSWORD).await;
        bob.click("Sign in").await;
        bob.heading("Secretary home").await;
        open_hash(&bob, &format!("#/calls/{id}")).await;
        bob.heading("Video call").await;
        let refusal = bob.wait_until_text(By::Id("call-refusal"), |t| !t.is_empty()).await;
        assert!(refusal.starts_with("Call refused: "), "{refusal}");
        bob.close().await;
        for browser in [&house, &ann] {
            let state = call_state(browser).await;
            assert_eq!(state["connection"], "connected", "{state}");
            assert_eq!(state["peer"], "joined", "{state}");
        }

        // Ann hangs up: Dr House's page says she left, and his connection ends.
        ann.click("Hang up").await;
        let shown = wait_state(&house, |s| s["peer"] == "left" && s["connection"] == "none").await;
        assert_eq!(shown["peer_text"], "Ann Archer left the call.", "{shown}");
        assert_eq!(call_state(&ann).await["connection"], "none");
        ann.element(By::XPath("//button[normalize-space()='Join the call']")).await;
        // The server recorded it: he is in the call, she came and went.
        let call: Value = app
            .get(&format!("/api/v1/appointments/{id}/call"), Some(&clinic.doctor.token))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(call["present"], json!([clinic.doctor.id]), "{call}");
        assert!(!call["started_at"].is_null(), "{call}");
        let last = call["events"].as_array().unwrap().last().unwrap().clone();
        assert_eq!((&last["user_id"], &last["kind"]), (&json!(clinic.ann.id), &json!("leave")), "{call}");

        // The visit is cancelled meanwhile: the server refuses her next join, and her page says so.
        app.set_status(&clinic.secretary.token, id, "cancelled", Some("Doctor unwell")).await;
        ann.click("Join the call").await;
        let state = wait_state(&ann, |s| s["error"].as_str().is_some_and(|e| !e.is_empty())).await;
        let error = state["error"].as_str().unwrap();
        assert!(error.starts_with("Call refused: the appointment is cancelled"), "{state}");
        ann.element(By::XPath("//button[normalize-space()='Join the call']")).await;
        assert_eq!(call_state(&ann).await["connection"], "none");
        assert_eq!(call_state(&house).await["connection"], "none");

        // She books another video visit herself, two days later, and opens its call: it says
        // when it opens, and cannot be joined yet.
        ann.follow("Home").await;
        ann.heading("Patient home").await;
        let doctor = clinic.doctor.id.to_string();
        ann.element(By::Css(format!("select[name=doctor_id] option[value='{doctor}']"))).await;
        ann.choose("doctor_id", &doctor).await;
        let day = (start + Duration::days(2)).date().to_string();
        ann.choose("day", &day).await;
        ann.element(By::Css("input[name=slot]")).await;
        ann.fill("reason", "Results of the Holter monitor").await;
        ann.click_on(By::Name("video")).await;
        ann.click("Book").await;
        ann.wait_for_text(By::Id("notice"), "by video").await;
        let booked = app.appointments(&clinic.ann.token, "").await;
        let later = booked.iter().find(|a| a["reason"] == "Results of the Holter monitor").unwrap();
        assert_eq!(later["video"], true, "{later}");
        assert!(later["start"].as_str().unwrap().starts_with(&day), "{later}");
        ann.follow("Join video call").await;
        ann.heading("Video call with Test dr.house").await;
        ann.wait_for_text(By::Id("call-window"), "The call opens at").await;
        let join = ann.element(By::XPath("//button[normalize-space()='Join the call']")).await;
        assert!(!join.is_enabled().await.unwrap(), "a call not open yet cannot be joined");
        accessible(&ann, "a call not open yet").await;

        house.close().await;
        ann.close().await;
    }
}
