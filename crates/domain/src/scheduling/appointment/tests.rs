//! The appointment status machine and who may see and change an appointment.

use super::*;
use crate::test_support::ts;

use AppointmentStatus as S;

/// The tests' now: `2026-11-23T09:00:00Z`, a Monday.
const NOW: Timestamp = Timestamp::constant(1795424400, 0);

/// Every move of the state machine; any pair not listed is refused.
const MOVES: &[(AppointmentStatus, AppointmentStatus)] = &[
    (S::Booked, S::CheckedIn),
    (S::Booked, S::Cancelled),
    (S::Booked, S::NoShow),
    (S::CheckedIn, S::InProgress),
    (S::CheckedIn, S::Cancelled),
    (S::InProgress, S::Completed),
];

#[test]
fn the_state_machine_is_exactly_the_listed_moves() {
    for from in S::ALL {
        for to in S::ALL {
            assert_eq!(
                from.may_become(*to),
                MOVES.contains(&(*from, *to)),
                "{from} -> {to}"
            );
        }
    }
}

#[test]
fn only_booked_checked_in_and_in_progress_hold_their_time() {
    let active: Vec<_> = S::ALL.iter().filter(|s| s.is_active()).copied().collect();
    assert_eq!(active, [S::Booked, S::CheckedIn, S::InProgress]);
    for status in S::ALL.iter().filter(|s| !s.is_active()) {
        assert!(
            S::ALL.iter().all(|to| !status.may_become(*to)),
            "{status} is final"
        );
    }
}

#[test]
fn each_role_sets_only_its_statuses() {
    #[rustfmt::skip]
    let table: &[(Role, &[AppointmentStatus])] = &[
        (Role::Secretary,  &[S::CheckedIn, S::Cancelled, S::NoShow]),
        (Role::Doctor,     &[S::InProgress, S::Completed, S::Cancelled]),
        (Role::Patient,    &[S::Cancelled]),
        (Role::Admin,      &[]),
        (Role::Laboratory, &[]),
    ];
    assert_eq!(table.len(), Role::ALL.len());
    for (role, allowed) in table {
        for to in S::ALL {
            assert_eq!(
                role_may_set(*role, *to),
                allowed.contains(to),
                "{role} sets {to}"
            );
        }
    }
}

#[test]
fn a_change_is_checked_for_role_then_state_then_notice_then_reason() {
    let start = NOW + SignedDuration::from_hours(5);
    let check = |role, from, to, reason| check_status_change(role, from, to, reason, start, NOW);

    // The role first: a laboratory is refused even a move the machine refuses too.
    assert_eq!(
        check(Role::Laboratory, S::Completed, S::CheckedIn, None),
        Err(StatusChangeError::Role(S::CheckedIn))
    );
    assert_eq!(
        check(Role::Secretary, S::CheckedIn, S::InProgress, None),
        Err(StatusChangeError::Role(S::InProgress))
    );
    // Then the machine.
    assert_eq!(
        check(Role::Doctor, S::Booked, S::Completed, None),
        Err(StatusChangeError::NotFrom {
            from: S::Booked,
            to: S::Completed
        })
    );
    assert_eq!(
        check(Role::Secretary, S::Cancelled, S::Cancelled, Some("twice")),
        Err(StatusChangeError::NotFrom {
            from: S::Cancelled,
            to: S::Cancelled
        })
    );
    // Then the reason: required to cancel, refused otherwise.
    assert_eq!(
        check(Role::Secretary, S::Booked, S::Cancelled, None),
        Err(StatusChangeError::Reason(ReasonError::Missing))
    );
    assert!(matches!(
        check(Role::Secretary, S::Booked, S::Cancelled, Some("   ")),
        Err(StatusChangeError::Reason(ReasonError::Text(_)))
    ));
    assert_eq!(
        check(Role::Secretary, S::Booked, S::CheckedIn, Some("early")),
        Err(StatusChangeError::UnexpectedReason)
    );
    // And what passes.
    assert_eq!(
        check(Role::Secretary, S::Booked, S::CheckedIn, None),
        Ok(None)
    );
    assert_eq!(
        check(Role::Doctor, S::CheckedIn, S::InProgress, None),
        Ok(None)
    );
    assert_eq!(
        check(Role::Doctor, S::InProgress, S::Completed, None),
        Ok(None)
    );
    let reason = check(Role::Doctor, S::CheckedIn, S::Cancelled, Some(" Ill \n"))
        .expect("a doctor cancels")
        .expect("with its reason");
    assert_eq!(reason.as_str(), "Ill");
}

#[test]
fn a_patient_cancels_until_two_hours_before_the_start() {
    let start = NOW + PATIENT_CANCEL_NOTICE;
    let cancel = |now| {
        check_status_change(
            Role::Patient,
            S::Booked,
            S::Cancelled,
            Some("Away"),
            start,
            now,
        )
    };
    assert!(cancel(NOW).is_ok(), "exactly two hours before");
    assert_eq!(
        cancel(NOW + SignedDuration::from_secs(1)),
        Err(StatusChangeError::TooLate)
    );
    assert_eq!(
        cancel(start + SignedDuration::from_hours(1)),
        Err(StatusChangeError::TooLate)
    );
    // Staff are not bound by the notice.
    assert!(
        check_status_change(
            Role::Secretary,
            S::Booked,
            S::Cancelled,
            Some("Doctor ill"),
            start,
            start
        )
        .is_ok()
    );
    // A patient sets nothing else, however early.
    assert_eq!(
        check_status_change(Role::Patient, S::Booked, S::CheckedIn, None, start, NOW),
        Err(StatusChangeError::Role(S::CheckedIn))
    );
}

fn fields(errors: &ValidationErrors) -> Vec<(&str, &str)> {
    errors
        .errors()
        .iter()
        .map(|e| (e.field.as_str(), e.message.as_str()))
        .collect()
}

#[test]
fn appointment_times_are_on_a_whole_minute_and_at_most_eight_hours_long() {
    assert_eq!(
        parse_minute(" 2026-11-24T09:00:00+01:00 "),
        Ok(ts("2026-11-24T08:00:00Z"))
    );
    for (raw, message) in [
        (
            "2026-11-24 09:00",
            "must be an RFC 3339 instant such as 2027-03-29T09:00:00+02:00",
        ),
        ("2026-11-24T09:00:30Z", "must be on a whole minute"),
        ("2026-11-24T09:00:00.5Z", "must be on a whole minute"),
        (
            "9999-12-31T23:59:00Z",
            "must be between the years 1900 and 9000",
        ),
    ] {
        assert_eq!(parse_minute(raw), Err(message), "{raw}");
    }

    let start = ts("2026-11-24T09:00:00Z");
    let length =
        |minutes: i64| check_appointment_length(start, start + SignedDuration::from_mins(minutes));
    assert_eq!(length(1), Ok(()));
    assert_eq!(length(480), Ok(()), "the longest appointment");
    assert_eq!(length(481), Err(AppointmentLengthError::TooLong));
    assert_eq!(length(0), Err(AppointmentLengthError::NotAfterStart));
    assert_eq!(length(-60), Err(AppointmentLengthError::NotAfterStart));
    assert_eq!(
        AppointmentLengthError::TooLong.to_string(),
        "at most 480 minutes after start"
    );
    assert_eq!(
        AppointmentLengthError::NotAfterStart.to_string(),
        "must be after start"
    );
    assert!(parse_appointment_reason(&"x".repeat(MAX_APPOINTMENT_REASON_CHARS)).is_ok());
    assert!(parse_appointment_reason(&"x".repeat(MAX_APPOINTMENT_REASON_CHARS + 1)).is_err());
}

#[test]
fn a_new_time_keeps_the_length_unless_an_end_is_given() {
    let current = Interval {
        start: ts("2026-11-24T09:00:00Z"),
        end: ts("2026-11-24T09:20:00Z"),
    };
    let moved = RescheduleRequest {
        start: ts("2026-11-25T10:00:00Z"),
        end: None,
    }
    .interval(current)
    .expect("valid");
    assert_eq!(
        moved,
        Interval {
            start: ts("2026-11-25T10:00:00Z"),
            end: ts("2026-11-25T10:20:00Z"),
        }
    );
    let longer = RescheduleRequest {
        start: ts("2026-11-25T10:00:00Z"),
        end: Some(ts("2026-11-25T11:00:00Z")),
    }
    .interval(current)
    .expect("valid");
    assert_eq!(longer.end, ts("2026-11-25T11:00:00Z"));

    let errors = RescheduleRequest {
        start: ts("2026-11-25T10:00:00Z"),
        end: Some(ts("2026-11-25T09:00:00Z")),
    }
    .interval(current)
    .expect_err("backwards");
    assert_eq!(fields(&errors), [("end", "must be after start")]);
    let errors = RescheduleRequest {
        start: ts("2026-11-25T10:00:00Z"),
        end: Some(ts("2026-11-25T18:01:00Z")),
    }
    .interval(current)
    .expect_err("too long");
    assert_eq!(
        fields(&errors),
        [("end", "at most 480 minutes after start")]
    );
}

#[test]
fn statuses_read_and_print_as_the_api_spells_them() {
    for status in S::ALL {
        assert_eq!(status.as_str().parse::<AppointmentStatus>(), Ok(*status));
    }
    assert_eq!(S::CheckedIn.to_string(), "checked_in");
    assert_eq!(S::NoShow.as_str(), "no_show");
    assert!("noshow".parse::<AppointmentStatus>().is_err());
}
