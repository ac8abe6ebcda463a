//! Appointment reminders: at their lead time before an appointment, once, even with two
//! instances; moved with the appointment and gone with its cancellation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use carehub_tests::clinic::{Clinic, Person};
use carehub_tests::schedule::booking;
use carehub_tests::{Backend, TestApp};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

carehub_tests::on_both_backends!(
    a_reminder_fires_once_at_its_time_on_two_instances,
    a_moved_appointment_takes_its_reminders_along_and_a_cancelled_one_loses_them,
);

/// When the reminder should fire, the appointment's start (a whole minute, away from
/// midnight) and the lead that joins them.
struct Plan {
    fires: jiff::Timestamp,
    start: jiff::Timestamp,
    lead_secs: i64,
}

/// A reminder firing `after` from now, before an appointment an hour or more later.
fn plan(after: jiff::SignedDuration) -> Plan {
    let fires = jiff::Timestamp::now() + after;
    let mut start = fires + jiff::SignedDuration::from_hours(1);
    let minute = |t: jiff::Timestamp| t.to_zoned(jiff::tz::TimeZone::UTC);
    while !(1..23).contains(&minute(start).hour()) {
        start += jiff::SignedDuration::from_hours(2);
    }
    let start = jiff::Timestamp::from_second((start.as_second() / 60 + 1) * 60).unwrap();
    Plan {
        fires,
        start,
        lead_secs: start.duration_since(fires).as_secs(),
    }
}

fn offset(at: jiff::Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(at.as_second()).unwrap()
}

async fn spawn(backend: Backend, leads: &str) -> Option<TestApp> {
    TestApp::spawn_with(backend, &["--reminder-leads", leads, "--job-poll-ms", "50"]).await
}

async fn reminders_of(app: &TestApp, who: &Person) -> Vec<Value> {
    app.all_notifications(&who.token)
        .await
        .into_iter()
        .filter(|n| n["kind"] == "appointment.reminder")
        .collect()
}

async fn reminder_jobs(app: &TestApp, admin: &Person, state: &str) -> Vec<Value> {
    app.all_pages(
        "/api/v1/admin/jobs",
        &admin.token,
        &format!("kind=appointment.reminder&state={state}"),
        100,
    )
    .await
}

async fn a_doctor_who_works_all_day(app: &TestApp, clinic: &Clinic) -> Person {
    let doctor = clinic.hire(app, "dr.reminded", "doctor").await;
    app.work_every_day(&clinic.secretary.token, doctor.id, "00:00", "23:59")
        .await;
    doctor
}

async fn a_reminder_fires_once_at_its_time_on_two_instances(backend: Backend) {
    let plan = plan(jiff::SignedDuration::from_secs(25));
    // A second lead an hour further back is already past when booking: no job for it.
    let leads = format!("{}s,{}s", plan.lead_secs, plan.lead_secs + 3_600);
    let Some(app) = spawn(backend, &leads).await else {
        return;
    };
    let _second = app.another_instance().await;
    let clinic = Clinic::open(&app).await;
    let doctor = a_doctor_who_works_all_day(&app, &clinic).await;
    let start = offset(plan.start);
    let booked = app
        .book(
            &clinic.secretary.token,
            &booking(
                doctor.id,
                clinic.ann_record,
                start,
                Some(start + time::Duration::minutes(10)),
            ),
        )
        .await;
    let id: Uuid = booked["id"].as_str().unwrap().parse().unwrap();
    assert!(
        jiff::Timestamp::now() < plan.fires,
        "the test's setup took longer than the reminder's lead allows"
    );
    let scheduled = reminder_jobs(&app, &clinic.admin, "scheduled").await;
    assert_eq!(scheduled.len(), 1, "{scheduled:?}");
    assert_eq!(scheduled[0]["args"]["appointment"], id.to_string());
    let run_at: jiff::Timestamp = scheduled[0]["run_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        run_at,
        plan.start - jiff::SignedDuration::from_secs(plan.lead_secs)
    );
    assert!(
        reminders_of(&app, &clinic.ann).await.is_empty(),
        "not before its time"
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while reminders_of(&app, &clinic.ann).await.is_empty() {
        if tokio::time::Instant::now() >= deadline {
            let jobs = app
                .all_pages(
                    "/api/v1/admin/jobs",
                    &clinic.admin.token,
                    "kind=appointment.reminder",
                    100,
                )
                .await;
            panic!("the reminder never came: {jobs:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let came = jiff::Timestamp::now();
    assert!(came >= run_at, "not before its time");
    // Both instances had every chance to run it again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let patient = reminders_of(&app, &clinic.ann).await;
    assert_eq!(patient.len(), 1, "once: {patient:?}");
    let title = patient[0]["data"]["title"].as_str().unwrap();
    assert!(
        title.starts_with("Reminder: your appointment with Dr "),
        "{title}"
    );
    assert!(!title.contains("Ann"), "no patient's name: {title}");
    let doctors = reminders_of(&app, &doctor).await;
    assert_eq!(
        doctors.len(),
        1,
        "the doctor's first of the day: {doctors:?}"
    );
    assert_eq!(doctors[0]["data"]["appointment_id"], id.to_string());
    let done = reminder_jobs(&app, &clinic.admin, "succeeded").await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["attempts"], 1);
}

async fn a_moved_appointment_takes_its_reminders_along_and_a_cancelled_one_loses_them(
    backend: Backend,
) {
    let Some(app) = spawn(backend, "24h,2h").await else {
        return;
    };
    let clinic = Clinic::open(&app).await;
    let doctor = a_doctor_who_works_all_day(&app, &clinic).await;
    let plan = plan(jiff::SignedDuration::from_hours(30));
    let start = offset(plan.start);
    let booked = app
        .book(
            &clinic.secretary.token,
            &booking(
                doctor.id,
                clinic.ann_record,
                start,
                Some(start + time::Duration::minutes(10)),
            ),
        )
        .await;
    let id: Uuid = booked["id"].as_str().unwrap().parse().unwrap();
    let run_ats = |jobs: &[Value]| {
        let mut at: Vec<jiff::Timestamp> = jobs
            .iter()
            .map(|j| j["run_at"].as_str().unwrap().parse().unwrap())
            .collect();
        at.sort();
        at
    };
    let hours = jiff::SignedDuration::from_hours;
    let scheduled = reminder_jobs(&app, &clinic.admin, "scheduled").await;
    assert_eq!(
        run_ats(&scheduled),
        [plan.start - hours(24), plan.start - hours(2)]
    );

    let later = plan.start + hours(24);
    app.reschedule(&clinic.secretary.token, id, offset(later), None)
        .await;
    let moved = reminder_jobs(&app, &clinic.admin, "scheduled").await;
    assert_eq!(
        run_ats(&moved),
        [later - hours(24), later - hours(2)],
        "the old ones are gone"
    );
    for job in &moved {
        let start_at: jiff::Timestamp = job["args"]["start_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(start_at, later);
    }

    app.set_status(
        &clinic.secretary.token,
        id,
        "cancelled",
        Some("The patient is away"),
    )
    .await;
    assert!(
        reminder_jobs(&app, &clinic.admin, "scheduled")
            .await
            .is_empty()
    );
}
