//! Notifications by e-mail, against a real SMTP server started by each test: preferences,
//! the e-mail of a referral (its title and a link, never clinical text), retries while the
//! mail server is down with the notification itself never delayed, the approval e-mail, and
//! `.eml` files when no mail server is configured.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use carehub_tests::clinic::{Clinic, REFERRAL_REASON, REFERRAL_SUMMARY, referral_input};
use carehub_tests::smtp::SmtpSink;
use carehub_tests::{Backend, TestApp, assert_problem, assert_unauthorized, problem_fields};
use serde_json::{Value, json};

const PREFERENCES: &str = "/api/v1/users/me/notification-preferences";
const WAIT: Duration = Duration::from_secs(20);

carehub_tests::on_both_backends!(
    preferences_are_the_callers_own_and_invalid_ones_are_refused_whole,
    a_doctor_who_chose_email_gets_the_referral_by_email_without_clinical_text,
    while_the_mail_server_is_down_the_email_waits_and_the_notification_does_not,
    a_mail_servers_refusal_is_kept_without_the_address_it_repeats,
    staff_hear_by_email_that_their_account_was_approved,
    without_a_mail_server_emails_are_written_as_files,
);

async fn spawn(backend: Backend, smtp_url: &str) -> Option<TestApp> {
    TestApp::spawn_with(
        backend,
        &[
            "--smtp-url",
            smtp_url,
            "--job-poll-ms",
            "50",
            "--job-retry-base-ms",
            "200",
            "--job-retry-max-secs",
            "1",
        ],
    )
    .await
}

async fn choose(app: &TestApp, token: &str, email: Value, kinds: Value) -> Value {
    let response = app
        .put_json(
            PREFERENCES,
            Some(token),
            &json!({"email": email, "email_kinds": kinds}),
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn preferences_are_the_callers_own_and_invalid_ones_are_refused_whole(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some(app) = spawn(backend, &sink.url()).await else {
        return;
    };
    let clinic = Clinic::open(&app).await;
    let token = clinic.outsider.token.as_str();

    let initial: Value = app
        .get(PREFERENCES, Some(token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        initial,
        json!({"email": "dr.wilson@clinic.example", "email_kinds": []})
    );

    let stored = choose(
        &app,
        token,
        json!("wilson@home.example"),
        json!([
            "referral.received",
            "appointment.booked",
            "referral.received"
        ]),
    )
    .await;
    assert_eq!(
        stored,
        json!({"email": "wilson@home.example", "email_kinds": ["referral.received", "appointment.booked"]})
    );
    let read: Value = app
        .get(PREFERENCES, Some(token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read, stored);
    let me: Value = app.me(token).await.json().await.unwrap();
    assert_eq!(
        me["email"], "wilson@home.example",
        "the address is the account's"
    );
    // Another user's preferences are their own.
    let other: Value = app
        .get(PREFERENCES, clinic.doctor.token())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(other["email_kinds"], json!([]));

    let refused = app
        .put_json(
            PREFERENCES,
            Some(token),
            &json!({"email": "not an address", "email_kinds": ["referral.received", "lunch"]}),
        )
        .await;
    let problem = assert_problem(refused, 422).await;
    assert_eq!(problem_fields(&problem), ["email", "email_kinds[1]"]);
    for bad in [
        json!({"email": null}),
        json!({"email_kinds": []}),
        json!({"email": null, "email_kinds": [], "sms": true}),
        json!({"email": null, "email_kinds": "referral.received"}),
    ] {
        let response = app.put_json(PREFERENCES, Some(token), &bad).await;
        assert!(
            [400, 422].contains(&response.status().as_u16()),
            "{bad}: {}",
            response.status()
        );
    }
    let read: Value = app
        .get(PREFERENCES, Some(token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read, stored, "a refused change writes nothing");

    // Turning e-mails off.
    let off = choose(&app, token, Value::Null, json!(["referral.received"])).await;
    assert_eq!(off["email"], Value::Null);

    assert_unauthorized(app.get(PREFERENCES, None).await).await;
    assert_unauthorized(
        app.put_json(
            PREFERENCES,
            None,
            &json!({"email": null, "email_kinds": []}),
        )
        .await,
    )
    .await;
}

async fn a_doctor_who_chose_email_gets_the_referral_by_email_without_clinical_text(
    backend: Backend,
) {
    let sink = SmtpSink::start().await;
    let Some(app) = spawn(backend, &sink.url()).await else {
        return;
    };
    let clinic = Clinic::open(&app).await;
    choose(
        &app,
        &clinic.outsider.token,
        json!("wilson@clinic.example"),
        json!(["referral.received"]),
    )
    .await;
    // The sender chose e-mail for other kinds only: they get none for this referral.
    choose(
        &app,
        &clinic.doctor.token,
        json!("house@clinic.example"),
        json!(["referral.accepted"]),
    )
    .await;

    let sent = app
        .post_json(
            "/api/v1/referrals",
            clinic.doctor.token(),
            &referral_input(clinic.ann_record, clinic.outsider.id),
        )
        .await;
    assert_eq!(sent.status(), 201);

    let received = sink.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sink.received().len(),
        1,
        "one e-mail, to the recipient only"
    );
    let email = &received[0];
    assert_eq!(email.to, ["<wilson@clinic.example>"]);
    let subject = email.header("Subject").unwrap();
    assert!(subject.contains("referral from"), "{subject}");
    assert!(
        email
            .data
            .contains(&format!("http://127.0.0.1:{}/#/notifications", app.port))
    );
    let record: Value = app
        .get(
            &format!("/api/v1/patients/{}", clinic.ann_record),
            clinic.doctor.token(),
        )
        .await
        .json()
        .await
        .unwrap();
    for secret in [
        REFERRAL_REASON,
        "Palpitations",
        REFERRAL_SUMMARY,
        "Ann Archer",
        "Archer",
        record["mrn"].as_str().unwrap(),
        &clinic.ann_record.to_string(),
    ] {
        assert!(
            !email.data.contains(secret),
            "the e-mail holds {secret:?}:\n{}",
            email.data
        );
    }
    let jobs = app
        .all_pages(
            "/api/v1/admin/jobs",
            &clinic.admin.token,
            "kind=email.notification",
            10,
        )
        .await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["state"], "succeeded");
    assert_eq!(jobs[0]["args"]["recipient"], clinic.outsider.id.to_string());
}

async fn while_the_mail_server_is_down_the_email_waits_and_the_notification_does_not(
    backend: Backend,
) {
    let address = SmtpSink::unused_address();
    let Some(app) = spawn(backend, &format!("smtp://{address}")).await else {
        return;
    };
    let clinic = Clinic::open(&app).await;
    choose(
        &app,
        &clinic.outsider.token,
        json!("wilson@clinic.example"),
        json!(["referral.received"]),
    )
    .await;

    let sent = app
        .post_json(
            "/api/v1/referrals",
            clinic.doctor.token(),
            &referral_input(clinic.ann_record, clinic.outsider.id),
        )
        .await;
    assert_eq!(sent.status(), 201);
    // The notification is there at once, whatever the mail server.
    let listed: Value = app
        .get("/api/v1/notifications", clinic.outsider.token())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"][0]["kind"], "referral.received");

    let admin = clinic.admin.token.as_str();
    let email_job = || async {
        let jobs = app
            .all_pages("/api/v1/admin/jobs", admin, "kind=email.notification", 10)
            .await;
        assert_eq!(jobs.len(), 1);
        jobs[0].clone()
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let job = email_job().await;
        if job["state"] == "failed" && job["attempts"].as_u64() >= Some(2) {
            assert!(
                job["last_error"]
                    .as_str()
                    .unwrap()
                    .contains("e-mail was not sent"),
                "{job}"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not retried: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let sink = SmtpSink::start_on(address).await;
    let received = sink.wait_for(1, WAIT).await;
    assert!(
        received[0]
            .header("Subject")
            .unwrap()
            .contains("referral from")
    );
    let id = email_job().await["id"].as_str().unwrap().parse().unwrap();
    app.wait_for_job(admin, id, "succeeded", WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.received().len(), 1, "delivered once");
}

async fn staff_hear_by_email_that_their_account_was_approved(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some(app) = spawn(backend, &sink.url()).await else {
        return;
    };
    let admin = app.admin("mail.admin").await;
    let (_, _) = app
        .active_user("dr.new", "doctor", &admin.access_token)
        .await;
    let received = sink.wait_for(1, WAIT).await;
    assert_eq!(received[0].to, ["<dr.new@clinic.example>"]);
    assert_eq!(
        received[0].header("Subject").unwrap(),
        "Your CareHub account is approved"
    );
    assert!(received[0].data.contains("\"dr.new\""));
    // Patients are active at once: nothing to approve, no e-mail.
    app.patient_account("pat.new").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.received().len(), 1);
}

async fn without_a_mail_server_emails_are_written_as_files(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &["--job-poll-ms", "50"]).await else {
        return;
    };
    let admin = app.admin("file.admin").await;
    app.active_user("sec.files", "secretary", &admin.access_token)
        .await;
    let directory = app.data_dir.join("mail");
    let deadline = tokio::time::Instant::now() + WAIT;
    let file = loop {
        let found = std::fs::read_dir(&directory)
            .ok()
            .and_then(|mut entries| entries.next())
            .and_then(Result::ok);
        if let Some(entry) = found {
            break entry.path();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no .eml file in {directory:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(file.extension().and_then(|e| e.to_str()), Some("eml"));
    let content = std::fs::read_to_string(&file).unwrap();
    assert!(
        content.contains("Subject: Your CareHub account is approved"),
        "{content}"
    );
    assert!(
        content.contains("To: \"Test sec.files\" <sec.files@clinic.example>"),
        "{content}"
    );
}

async fn a_mail_servers_refusal_is_kept_without_the_address_it_repeats(backend: Backend) {
    let sink = SmtpSink::start_refusing().await;
    let Some(app) = spawn(backend, &sink.url()).await else {
        return;
    };
    let admin = app.admin("refused.admin").await;
    app.active_user("dr.refused", "doctor", &admin.access_token)
        .await;
    let token = admin.access_token.as_str();
    let deadline = tokio::time::Instant::now() + WAIT;
    let job = loop {
        let jobs = app
            .all_pages(
                "/api/v1/admin/jobs",
                token,
                "kind=email.account_approved",
                10,
            )
            .await;
        if let Some(job) = jobs.into_iter().find(|j| j["state"] == "failed") {
            break job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the refusal was not recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let error = job["last_error"].as_str().unwrap();
    assert!(error.contains("refused it permanently (550)"), "{error}");
    assert!(
        !error.contains("dr.refused"),
        "the address stays out: {error}"
    );
    assert!(sink.received().is_empty());
}
