//! Referral escalation: an urgent referral still unanswered after its time tells its sender and
//! every active administrator, once, even with two instances; an answered one tells no one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use carehub_tests::clinic::{Clinic, Person, referral_change_path, referral_input};
use carehub_tests::{Backend, TestApp};
use serde_json::{Value, json};

carehub_tests::on_both_backends!(
    an_unanswered_urgent_referral_escalates_once_to_its_sender_and_the_administrators,
    a_referral_answered_in_time_or_routine_never_escalates,
);

async fn spawn(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(
        backend,
        &["--escalation-urgent-secs", "2", "--job-poll-ms", "50"],
    )
    .await
}

async fn escalations_of(app: &TestApp, who: &Person) -> Vec<Value> {
    app.all_notifications(&who.token)
        .await
        .into_iter()
        .filter(|n| n["kind"] == "referral.escalated")
        .collect()
}

async fn send(app: &TestApp, clinic: &Clinic, urgency: &str) -> Value {
    let mut input = referral_input(clinic.ann_record, clinic.outsider.id);
    input["urgency"] = json!(urgency);
    let sent = app
        .post_json("/api/v1/referrals", clinic.doctor.token(), &input)
        .await;
    assert_eq!(sent.status(), 201);
    sent.json().await.unwrap()
}

async fn an_unanswered_urgent_referral_escalates_once_to_its_sender_and_the_administrators(
    backend: Backend,
) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let _second = app.another_instance().await;
    let clinic = Clinic::open(&app).await;
    let referral = send(&app, &clinic, "urgent").await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while escalations_of(&app, &clinic.doctor).await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "never escalated");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sender = escalations_of(&app, &clinic.doctor).await;
    let admin = escalations_of(&app, &clinic.admin).await;
    assert_eq!(
        (sender.len(), admin.len()),
        (1, 1),
        "once each: {sender:?} {admin:?}"
    );
    assert_eq!(sender[0]["data"]["referral_id"], referral["id"]);
    let title = sender[0]["data"]["title"].as_str().unwrap();
    assert!(title.starts_with("Urgent referral to Dr "), "{title}");
    assert!(title.contains("unanswered after"), "{title}");
    assert!(
        !title.contains("Ann") && !title.contains("arrhythmia"),
        "{title}"
    );
    assert!(
        escalations_of(&app, &clinic.outsider).await.is_empty(),
        "not the recipient"
    );
}

async fn a_referral_answered_in_time_or_routine_never_escalates(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let clinic = Clinic::open(&app).await;
    let answered = send(&app, &clinic, "urgent").await;
    let accepted = app
        .post_json(
            &referral_change_path(answered["id"].as_str().unwrap(), "accept"),
            clinic.outsider.token(),
            &json!({}),
        )
        .await;
    assert_eq!(accepted.status(), 200);
    send(&app, &clinic, "routine").await;
    let jobs = app
        .all_pages(
            "/api/v1/admin/jobs",
            &clinic.admin.token,
            "kind=referral.escalation",
            10,
        )
        .await;
    assert_eq!(
        jobs.len(),
        1,
        "routine referrals have no escalation: {jobs:?}"
    );
    let id = jobs[0]["id"].as_str().unwrap().parse().unwrap();
    app.wait_for_job(
        &clinic.admin.token,
        id,
        "succeeded",
        Duration::from_secs(30),
    )
    .await;
    assert!(escalations_of(&app, &clinic.doctor).await.is_empty());
    assert!(escalations_of(&app, &clinic.admin).await.is_empty());
}
