//! `CallRepository`: a video appointment stored as one; a call's joins and leaves stored with
//! their audit events and read back in order, on both backends.

use jiff::SignedDuration;

use carehub_domain::audit::AuditAction;
use carehub_domain::calls::{CallEvent, CallEventKind};
use carehub_domain::kernel::AppointmentId;
use carehub_domain::notifications::NotificationKind;
use carehub_domain::scheduling::Appointment;
use carehub_infra::Repositories;

use crate::fixtures::patients::audit;
use crate::fixtures::scheduling::{
    appointment_audit, base, booking, new_appointment, notice, patient, secretary, span,
};
use crate::fixtures::{audited, doctor, micros, now};

contract!(a_video_appointments_call_events_are_stored_with_their_audit_events_in_order,);

async fn video_visit(repos: &Repositories) -> Appointment {
    let house = doctor(repos, "dr.video").await.id;
    let desk = secretary(repos).await;
    let patient_id = patient(repos, &desk, "Video Patient").await;
    let appointment = Appointment {
        video: true,
        ..new_appointment(house, patient_id, span(base(), 9 * 60, 9 * 60 + 30), &desk)
    };
    repos
        .appointments
        .book(
            &booking(&appointment, 0),
            &appointment_audit(&desk, patient_id, AuditAction::AppointmentCreate),
            &[notice(&appointment, NotificationKind::AppointmentBooked)],
        )
        .await
        .unwrap();
    appointment
}

async fn a_video_appointments_call_events_are_stored_with_their_audit_events_in_order(
    repos: Repositories,
) {
    let visit = video_visit(&repos).await;
    let stored = repos.appointments.get(visit.id).await.unwrap().unwrap();
    assert!(stored.video, "booked as a video consultation");
    let event = |user, kind, secs| CallEvent {
        appointment_id: visit.id,
        user_id: user,
        kind,
        at: micros(now()) + SignedDuration::from_secs(secs),
    };
    // Recorded out of time order on purpose: the order of recording is what counts.
    let events = [
        event(visit.doctor_id, CallEventKind::Join, 0),
        event(visit.doctor_id, CallEventKind::Leave, 90),
        event(visit.doctor_id, CallEventKind::Join, 60),
    ];
    for (e, action) in events.iter().zip([
        AuditAction::CallJoin,
        AuditAction::CallLeave,
        AuditAction::CallJoin,
    ]) {
        repos
            .calls
            .record(e, &audit(visit.doctor_id, visit.patient_id, action))
            .await
            .unwrap();
    }
    assert_eq!(repos.calls.events(visit.id).await.unwrap(), events.to_vec());
    assert!(
        repos
            .calls
            .events(AppointmentId::generate())
            .await
            .unwrap()
            .is_empty()
    );
    let trail = audited(&repos, visit.patient_id).await;
    assert_eq!(
        trail
            .iter()
            .filter(|a| **a == AuditAction::CallJoin)
            .count(),
        2
    );
    assert!(trail.contains(&AuditAction::CallLeave));
}
