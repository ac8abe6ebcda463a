//! `FeedbackRepository`: one rating per appointment, stored with its audit event and read back
//! whole; a doctor's ratings newest first; a hidden comment kept with why, by whom and when;
//! on both backends.

use carehub_domain::audit::AuditAction;
use carehub_domain::feedback::{CreateFeedbackError, Feedback, Hidden, Rating};
use carehub_domain::kernel::{AppointmentId, Text};
use carehub_domain::scheduling::Appointment;
use carehub_infra::Repositories;

use crate::fixtures::patients::audit;
use crate::fixtures::scheduling::{
    appointment_audit, base, booking, new_appointment, notice, patient, secretary, span,
};
use crate::fixtures::{audited, doctor, micros, now};

contract!(
    a_rating_is_stored_once_with_its_audit_event_and_read_back_whole,
    a_doctors_ratings_are_listed_newest_first_and_a_hidden_comment_is_kept,
);

/// An appointment of a new patient with `doctor`, booked at `minute` of the base day.
async fn booked(
    repos: &Repositories,
    desk: &carehub_domain::identity::User,
    doctor: carehub_domain::identity::UserId,
    minute: i64,
) -> Appointment {
    let patient_id = patient(repos, desk, &format!("Rated Patient {minute}")).await;
    let appointment = new_appointment(doctor, patient_id, span(base(), minute, minute + 30), desk);
    repos
        .appointments
        .book(
            &booking(&appointment, 0),
            &appointment_audit(desk, patient_id, AuditAction::AppointmentCreate),
            &[notice(
                &appointment,
                carehub_domain::notifications::NotificationKind::AppointmentBooked,
            )],
        )
        .await
        .unwrap();
    appointment
}

fn rating(appointment: &Appointment, stars: i64, comment: Option<&str>) -> Feedback {
    Feedback {
        appointment_id: appointment.id,
        doctor_id: appointment.doctor_id,
        patient_id: appointment.patient_id,
        rating: Rating::parse(stars).unwrap(),
        comment: comment.map(|c| Text::multiline(c, 2_000).unwrap()),
        created_at: micros(now()),
        hidden: None,
    }
}

async fn a_rating_is_stored_once_with_its_audit_event_and_read_back_whole(repos: Repositories) {
    let house = doctor(&repos, "dr.rated").await.id;
    let desk = secretary(&repos).await;
    let appointment = booked(&repos, &desk, house, 9 * 60).await;
    let given = rating(&appointment, 4, Some("Kind;\nclear."));
    let event = audit(house, appointment.patient_id, AuditAction::FeedbackCreate);
    repos.feedback.create(&given, &event).await.unwrap();
    assert_eq!(
        repos.feedback.find(appointment.id).await.unwrap(),
        Some(given.clone())
    );
    assert!(
        audited(&repos, appointment.patient_id)
            .await
            .contains(&AuditAction::FeedbackCreate)
    );
    let again = repos
        .feedback
        .create(&rating(&appointment, 1, None), &event)
        .await;
    assert!(
        matches!(again, Err(CreateFeedbackError::Duplicate)),
        "{again:?}"
    );
    assert_eq!(
        repos.feedback.find(appointment.id).await.unwrap(),
        Some(given),
        "the first stands"
    );
    assert!(
        repos
            .feedback
            .find(AppointmentId::generate())
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_doctors_ratings_are_listed_newest_first_and_a_hidden_comment_is_kept(
    repos: Repositories,
) {
    let house = doctor(&repos, "dr.rated").await.id;
    let other = doctor(&repos, "dr.other").await.id;
    let desk = secretary(&repos).await;
    let first = booked(&repos, &desk, house, 9 * 60).await;
    let second = booked(&repos, &desk, house, 10 * 60).await;
    let elsewhere = booked(&repos, &desk, other, 11 * 60).await;
    for (appointment, stars) in [(&first, 5), (&second, 2), (&elsewhere, 3)] {
        let feedback = rating(appointment, stars, Some("Comment"));
        repos
            .feedback
            .create(
                &feedback,
                &audit(house, appointment.patient_id, AuditAction::FeedbackCreate),
            )
            .await
            .unwrap();
    }
    let listed = repos.feedback.for_doctor(house).await.unwrap();
    let ids: Vec<AppointmentId> = listed.iter().map(|f| f.appointment_id).collect();
    assert_eq!(ids, [second.id, first.id]);
    let hidden = Hidden {
        reason: Text::line("Names another patient", 500).unwrap(),
        by: other,
        at: micros(now()),
    };
    repos
        .feedback
        .hide(
            second.id,
            &hidden,
            &audit(other, second.patient_id, AuditAction::FeedbackHide),
        )
        .await
        .unwrap();
    let read = repos.feedback.find(second.id).await.unwrap().unwrap();
    assert_eq!(read.hidden, Some(hidden));
    assert_eq!(
        read.comment.map(|c| c.as_str().to_owned()).as_deref(),
        Some("Comment"),
        "kept"
    );
    assert!(
        audited(&repos, second.patient_id)
            .await
            .contains(&AuditAction::FeedbackHide)
    );
}
