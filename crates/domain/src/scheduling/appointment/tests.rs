//! The appointment status machine and who may see and change an appointment.

use super::*;

use time::macros::datetime;

use AppointmentStatus as S;

const NOW: OffsetDateTime = datetime!(2026-11-23 09:00 UTC);

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
    let start = NOW + Duration::hours(5);
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
        cancel(NOW + Duration::seconds(1)),
        Err(StatusChangeError::TooLate)
    );
    assert_eq!(
        cancel(start + Duration::hours(1)),
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

fn booking_input() -> AppointmentInput {
    AppointmentInput {
        doctor_id: Some(Uuid::now_v7()),
        patient_id: Some(Uuid::now_v7()),
        start: Some("2026-11-24T09:00:00+01:00".into()),
        end: None,
        reason: Some("  Persistent cough \n".into()),
    }
}

fn fields(errors: &ValidationErrors) -> Vec<(&str, &str)> {
    errors
        .errors()
        .iter()
        .map(|e| (e.field.as_str(), e.message.as_str()))
        .collect()
}

#[test]
fn a_booking_needs_a_doctor_a_patient_a_start_and_a_reason() {
    let input = booking_input();
    let request = input.parse().expect("valid");
    assert_eq!(request.start, datetime!(2026-11-24 08:00 UTC));
    assert_eq!(request.start.offset(), time::UtcOffset::UTC, "kept in UTC");
    assert_eq!(request.end, None, "the doctor's length applies");
    assert_eq!(request.reason.as_str(), "Persistent cough");
    assert_eq!(request.doctor_id.as_uuid(), &input.doctor_id.expect("set"));
    assert_eq!(
        request.patient_id.as_uuid(),
        &input.patient_id.expect("set")
    );

    let errors = AppointmentInput::default().parse().expect_err("empty");
    assert_eq!(
        fields(&errors),
        [
            ("doctor_id", "is required"),
            ("patient_id", "is required"),
            ("start", "is required"),
            ("reason", "is required"),
        ]
    );
    let errors = AppointmentInput {
        reason: Some("x".repeat(MAX_APPOINTMENT_REASON_CHARS + 1)),
        ..booking_input()
    }
    .parse()
    .expect_err("too long");
    assert_eq!(fields(&errors)[0].0, "reason");
}

#[test]
fn booked_times_are_rfc_3339_on_a_whole_minute_and_at_most_eight_hours_long() {
    let with = |start: &str, end: Option<&str>| {
        AppointmentInput {
            start: Some(start.into()),
            end: end.map(Into::into),
            ..booking_input()
        }
        .parse()
    };
    let request = with("2026-11-24T09:00:00Z", Some("2026-11-24T09:45:00Z")).expect("valid");
    assert_eq!(request.end, Some(datetime!(2026-11-24 09:45 UTC)));
    let longest = with("2026-11-24T09:00:00Z", Some("2026-11-24T17:00:00Z"));
    assert!(longest.is_ok(), "480 minutes");

    for (start, end, field, message) in [
        ("tomorrow", None, "start", None),
        ("2026-11-24 09:00", None, "start", None),
        (
            "2026-11-24T09:00:30Z",
            None,
            "start",
            Some("must be on a whole minute"),
        ),
        (
            "2026-11-24T09:00:00.5Z",
            None,
            "start",
            Some("must be on a whole minute"),
        ),
        (
            "2026-11-24T09:00:00Z",
            Some("2026-11-24T09:10:01Z"),
            "end",
            Some("must be on a whole minute"),
        ),
        (
            "2026-11-24T09:00:00Z",
            Some("2026-11-24T09:00:00Z"),
            "end",
            Some("must be after start"),
        ),
        (
            "2026-11-24T09:00:00Z",
            Some("2026-11-24T10:00:00+02:00"),
            "end",
            Some("must be after start"),
        ),
        (
            "2026-11-24T09:00:00Z",
            Some("2026-11-24T17:01:00Z"),
            "end",
            Some("at most 480 minutes after start"),
        ),
    ] {
        let errors = with(start, end).expect_err(start);
        let found = fields(&errors);
        assert_eq!(found.len(), 1, "{start} {end:?}: {found:?}");
        assert_eq!(found[0].0, field, "{start} {end:?}");
        if let Some(message) = message {
            assert_eq!(found[0].1, message, "{start} {end:?}");
        }
    }
}

#[test]
fn a_new_time_keeps_the_length_unless_an_end_is_given() {
    let current = Interval {
        start: datetime!(2026-11-24 09:00 UTC),
        end: datetime!(2026-11-24 09:20 UTC),
    };
    let moved = RescheduleInput {
        start: Some("2026-11-25T11:00:00+01:00".into()),
        end: None,
    }
    .parse(current)
    .expect("valid");
    assert_eq!(
        moved,
        Interval {
            start: datetime!(2026-11-25 10:00 UTC),
            end: datetime!(2026-11-25 10:20 UTC),
        }
    );
    let longer = RescheduleInput {
        start: Some("2026-11-25T10:00:00Z".into()),
        end: Some("2026-11-25T11:00:00Z".into()),
    }
    .parse(current)
    .expect("valid");
    assert_eq!(longer.end, datetime!(2026-11-25 11:00 UTC));

    let errors = RescheduleInput::default()
        .parse(current)
        .expect_err("empty");
    assert_eq!(fields(&errors), [("start", "is required")]);
    let errors = RescheduleInput {
        start: Some("2026-11-25T10:00:00Z".into()),
        end: Some("2026-11-25T09:00:00Z".into()),
    }
    .parse(current)
    .expect_err("backwards");
    assert_eq!(fields(&errors), [("end", "must be after start")]);
}

#[test]
fn a_status_change_names_a_known_status() {
    let input = |status: Option<&str>| StatusInput {
        status: status.map(Into::into),
        reason: None,
    };
    assert_eq!(input(Some("checked_in")).parse_status(), Ok(S::CheckedIn));
    for bad in [None, Some("done"), Some("Cancelled")] {
        let errors = input(bad).parse_status().expect_err("invalid");
        assert_eq!(fields(&errors).len(), 1, "{bad:?}");
        assert_eq!(fields(&errors)[0].0, "status", "{bad:?}");
    }
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
