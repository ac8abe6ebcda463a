//! The scheduling bodies converted into what the use cases take: every missing or invalid
//! field listed, with its path and message, in the order of the fields.

use crate::test_support::ts;
use serde_json::json;

use carehub_domain::kernel::Text;
use carehub_domain::scheduling::{
    MAX_APPOINTMENT_MINUTES, MAX_APPOINTMENT_REASON_CHARS, MAX_BIO_CHARS, MAX_SPECIALIZATION_CHARS,
    MAX_TIME_OFF_REASON_CHARS, MIN_APPOINTMENT_MINUTES,
};

use super::*;

fn fields(errors: &ValidationErrors) -> Vec<&str> {
    errors.errors().iter().map(|e| e.field.as_str()).collect()
}

fn fields_and_messages(errors: &ValidationErrors) -> Vec<(&str, &str)> {
    errors
        .errors()
        .iter()
        .map(|e| (e.field.as_str(), e.message.as_str()))
        .collect()
}

fn message<'a>(errors: &'a ValidationErrors, field: &str) -> &'a str {
    errors
        .errors()
        .iter()
        .find(|e| e.field == field)
        .map(|e| e.message.as_str())
        .unwrap_or_else(|| panic!("no error on {field}: {errors:?}"))
}

// Profiles

#[test]
fn a_profile_needs_its_specializations_and_appointment_length() {
    let errors = ProfileUpdate::try_from(ProfileInput::default()).expect_err("empty");
    assert_eq!(fields(&errors), ["specializations", "appointment_minutes"]);

    let errors = ProfileUpdate::try_from(ProfileInput {
        specializations: Some(vec![
            "Cardiology".into(),
            "  ".into(),
            " cardiology ".into(),
            "x".repeat(MAX_SPECIALIZATION_CHARS + 1),
            "Neurology".into(),
        ]),
        bio: Some("b".repeat(MAX_BIO_CHARS + 1)),
        appointment_minutes: Some(MIN_APPOINTMENT_MINUTES - 1),
    })
    .expect_err("invalid");
    assert_eq!(
        fields(&errors),
        [
            "specializations[1]",
            "specializations[2]",
            "specializations[3]",
            "bio",
            "appointment_minutes"
        ]
    );
    assert_eq!(
        message(&errors, "specializations[2]"),
        "repeats specializations[0]"
    );
    assert_eq!(
        message(&errors, "appointment_minutes"),
        "must be between 5 and 480"
    );

    let too_many = ProfileInput {
        specializations: Some((0..=MAX_SPECIALIZATIONS).map(|i| format!("S{i}")).collect()),
        appointment_minutes: Some(MAX_APPOINTMENT_MINUTES + 1),
        bio: None,
    };
    assert_eq!(
        fields(&ProfileUpdate::try_from(too_many).expect_err("invalid")),
        ["specializations", "appointment_minutes"]
    );

    // A repeat in other case, and a length one below the shortest.
    let errors = ProfileUpdate::try_from(ProfileInput {
        specializations: Some(vec!["Cardiology".into(), "CARDIOLOGY".into()]),
        bio: None,
        appointment_minutes: Some(4),
    })
    .expect_err("invalid");
    assert_eq!(
        fields(&errors),
        ["specializations[1]", "appointment_minutes"]
    );
}

#[test]
fn a_valid_profile_is_trimmed_and_keyed_in_lowercase() {
    let update = ProfileUpdate::try_from(ProfileInput {
        specializations: Some(vec![" Cardiology ".into(), "Sports Medicine".into()]),
        bio: Some(" Twenty years in practice.\nSpeaks French. ".into()),
        appointment_minutes: Some(MAX_APPOINTMENT_MINUTES),
    })
    .expect("valid");
    let names: Vec<&str> = update
        .specializations
        .iter()
        .map(Specialization::as_str)
        .collect();
    assert_eq!(names, ["Cardiology", "Sports Medicine"]);
    assert_eq!(update.specializations[1].key(), "sports medicine");
    assert_eq!(
        update.bio.as_ref().map(Text::as_str),
        Some("Twenty years in practice.\nSpeaks French.")
    );
    assert_eq!(update.appointment_minutes, 480);

    // `bio` absent or null is none; no specializations is allowed.
    let bare: ProfileInput = serde_json::from_value(
        json!({"specializations": [], "bio": null, "appointment_minutes": 5}),
    )
    .expect("deserializes");
    let update = ProfileUpdate::try_from(bare).expect("valid");
    assert!(update.specializations.is_empty());
    assert_eq!(update.bio, None);
    assert!(
        serde_json::from_value::<ProfileInput>(json!({"specializations": [], "photo": "x"}))
            .is_err(),
        "unknown fields are refused"
    );
}

// Availability

fn rule_input(weekday: Option<&str>, start: Option<&str>, end: Option<&str>) -> RuleInput {
    RuleInput {
        weekday: weekday.map(Into::into),
        start: start.map(Into::into),
        end: end.map(Into::into),
    }
}

fn rules(input: AvailabilityInput) -> Result<Vec<AvailabilityRule>, ValidationErrors> {
    input.try_into()
}

#[test]
fn availability_names_every_bad_rule_field() {
    let input = rule_input;
    let errors = rules(AvailabilityInput {
        rules: Some(vec![
            input(Some("monday"), Some("09:00"), Some("12:00")),
            input(Some("funday"), Some("9:00"), None),
            input(Some("tuesday"), Some("17:00"), Some("09:00")),
            input(Some("monday"), Some("11:00"), Some("13:00")),
            // Touches rules[0]: allowed.
            input(Some("monday"), Some("12:00"), Some("17:00")),
            input(Some("friday"), Some("17:00"), Some("24:00")),
            input(Some("friday"), Some("10:00"), Some("10:00")),
            input(Some("Monday"), Some("07:60"), Some("08:00")),
        ]),
    })
    .expect_err("invalid");
    assert_eq!(
        fields(&errors),
        [
            "rules[1].weekday",
            "rules[1].start",
            "rules[1].end",
            "rules[2].end",
            "rules[3]",
            "rules[5].end",
            "rules[6].end",
            "rules[7].weekday",
            "rules[7].start",
        ]
    );
    assert_eq!(message(&errors, "rules[1].end"), "is required");
    assert_eq!(message(&errors, "rules[2].end"), "must be after start");
    assert_eq!(message(&errors, "rules[3]"), "overlaps rules[0]");
    assert_eq!(
        message(&errors, "rules[5].end"),
        "must be a time written HH:MM, 00:00 to 23:59"
    );
    assert_eq!(
        message(&errors, "rules[1].weekday"),
        "must be one of monday, tuesday, wednesday, thursday, friday, saturday, sunday"
    );

    let missing = rules(AvailabilityInput { rules: None }).expect_err("missing");
    assert_eq!(fields_and_messages(&missing), [("rules", "is required")]);
    let too_many = AvailabilityInput {
        rules: Some(vec![
            input(Some("monday"), Some("09:00"), Some("10:00"));
            MAX_RULES + 1
        ]),
    };
    assert_eq!(
        fields_and_messages(&rules(too_many).expect_err("too many")),
        [("rules", "must hold at most 70 rules")]
    );
    assert_eq!(
        rules(AvailabilityInput {
            rules: Some(Vec::new())
        }),
        Ok(Vec::new()),
        "no rules is no availability"
    );

    // An overlap is named against the earlier rule, once that one is valid.
    let errors = rules(AvailabilityInput {
        rules: Some(vec![
            input(Some("monday"), Some("09:00"), Some("12:00")),
            input(Some("monday"), Some("11:00"), Some("13:00")),
            input(Some("funday"), Some("10:00"), Some("09:00")),
        ]),
    })
    .expect_err("invalid");
    assert_eq!(fields(&errors), ["rules[1]", "rules[2].weekday"]);
}

#[test]
fn availability_keeps_every_valid_rule_for_the_use_case_to_sort() {
    let input: AvailabilityInput = serde_json::from_value(json!({"rules": [
        {"weekday": "sunday", "start": "08:00", "end": "10:00"},
        {"weekday": "monday", "start": "13:00", "end": "17:00"},
        {"weekday": "wednesday", "start": "00:00", "end": "23:59"},
        {"weekday": "monday", "start": "09:00", "end": "13:00"},
    ]}))
    .expect("deserializes");
    let written: Vec<String> = rules(input)
        .expect("valid")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        written,
        [
            "sunday 08:00-10:00",
            "monday 13:00-17:00",
            "wednesday 00:00-23:59",
            "monday 09:00-13:00",
        ]
    );
    assert!(
        serde_json::from_value::<AvailabilityInput>(
            json!({"rules": [{"weekday": "monday", "start": "09:00", "end": "10:00", "room": 1}]})
        )
        .is_err(),
        "unknown fields of a rule are refused"
    );
}

// Time off

#[test]
fn time_off_needs_a_future_range_of_at_most_a_year() {
    let now = ts("2027-03-01T12:00:00Z");
    let input = |start: &str, end: &str| TimeOffInput {
        start: Some(start.into()),
        end: Some(end.into()),
        reason: None,
    };
    let errors = TimeOffInput {
        reason: Some("r".repeat(MAX_TIME_OFF_REASON_CHARS + 1)),
        ..TimeOffInput::default()
    }
    .into_new_time_off(now)
    .expect_err("empty");
    assert_eq!(fields(&errors), ["start", "end", "reason"]);

    let bad = |start: &str, end: &str| {
        input(start, end)
            .into_new_time_off(now)
            .expect_err("invalid")
            .errors()
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        bad("2027-03-02", "2027-03-03T00:00:00Z"),
        ["start: must be an RFC 3339 instant such as 2027-03-29T09:00:00+02:00"]
    );
    assert_eq!(
        bad("2027-03-03T00:00:00Z", "2027-03-03T01:00:00+01:00"),
        ["end: must be after start"]
    );
    assert_eq!(
        bad("2027-02-01T00:00:00Z", "2027-03-01T12:00:00Z"),
        ["end: is in the past"]
    );
    assert_eq!(
        bad("2027-03-02T00:00:00Z", "2028-03-02T00:00:01Z"),
        ["end: must be at most 366 days after start"]
    );
    // Past comes before too long; a bad reason is listed before what is wrong with the span.
    assert_eq!(
        bad("2025-01-01T00:00:00Z", "2027-01-01T00:00:00Z"),
        ["end: is in the past"]
    );
    let errors = TimeOffInput {
        reason: Some("  ".into()),
        ..input("2027-02-01T00:00:00Z", "2027-02-02T00:00:00Z")
    }
    .into_new_time_off(now)
    .expect_err("invalid");
    assert_eq!(
        fields_and_messages(&errors),
        [("reason", "must not be empty"), ("end", "is in the past")]
    );

    // Started in the past is fine if it has not ended; any offset is accepted.
    let ok = TimeOffInput {
        reason: Some(" Conference ".into()),
        ..input("2027-02-27T00:00:00+01:00", "2027-03-05T00:00:00+01:00")
    }
    .into_new_time_off(now)
    .expect("valid");
    assert_eq!(ok.start, ts("2027-02-26T23:00:00Z"));
    assert_eq!(ok.end, ts("2027-03-04T23:00:00Z"));
    assert_eq!(ok.reason.as_ref().map(Text::as_str), Some("Conference"));
    assert!(
        input("2027-03-02T00:00:00Z", "2028-03-02T00:00:00Z")
            .into_new_time_off(now)
            .is_ok(),
        "exactly 366 days"
    );
}

#[test]
fn time_off_is_refused_far_from_the_ends_of_the_calendar() {
    let far_off = TimeOffInput {
        start: Some("9999-12-30T00:00:00Z".into()),
        end: Some("9999-12-31T00:00:00Z".into()),
        reason: None,
    }
    .into_new_time_off(ts("2026-11-23T09:00:00Z"))
    .expect_err("refused");
    assert_eq!(fields(&far_off), ["start", "end"]);
}

#[test]
fn time_off_already_over_is_refused_on_its_end() {
    let errors = TimeOffInput {
        start: Some("2026-11-20T00:00:00Z".into()),
        end: Some("2026-11-22T10:00:00Z".into()),
        reason: Some("Conference in Lyon".into()),
    }
    .into_new_time_off(ts("2026-11-22T10:15:00Z"))
    .expect_err("over");
    assert_eq!(fields(&errors), ["end"]);
}

// Bookings

fn booking_input() -> AppointmentInput {
    AppointmentInput {
        doctor_id: Some(Uuid::now_v7()),
        patient_id: Some(Uuid::now_v7()),
        start: Some("2026-11-24T09:00:00+01:00".into()),
        end: None,
        reason: Some("  Persistent cough \n".into()),
        video: false,
    }
}

#[test]
fn a_booking_needs_a_doctor_a_patient_a_start_and_a_reason() {
    let input = booking_input();
    let request = BookingRequest::try_from(input.clone()).expect("valid");
    assert_eq!(request.start, ts("2026-11-24T08:00:00Z"));
    assert_eq!(request.end, None, "the doctor's length applies");
    assert_eq!(request.reason.as_str(), "Persistent cough");
    assert_eq!(request.doctor_id.as_uuid(), &input.doctor_id.expect("set"));
    assert_eq!(
        request.patient_id.as_uuid(),
        &input.patient_id.expect("set")
    );
    assert!(!request.video, "in person unless asked");
    let video = BookingRequest::try_from(AppointmentInput {
        video: true,
        ..booking_input()
    })
    .expect("valid");
    assert!(video.video);

    let errors = BookingRequest::try_from(AppointmentInput::default()).expect_err("empty");
    assert_eq!(
        fields_and_messages(&errors),
        [
            ("doctor_id", "is required"),
            ("patient_id", "is required"),
            ("start", "is required"),
            ("reason", "is required"),
        ]
    );
    let errors = BookingRequest::try_from(AppointmentInput {
        reason: Some("x".repeat(MAX_APPOINTMENT_REASON_CHARS + 1)),
        ..booking_input()
    })
    .expect_err("too long");
    assert_eq!(fields_and_messages(&errors)[0].0, "reason");
}

#[test]
fn an_invalid_booking_lists_every_violation() {
    let errors = BookingRequest::try_from(AppointmentInput {
        doctor_id: None,
        patient_id: None,
        start: Some("next monday".into()),
        end: Some("2026-11-23T09:30:30+01:00".into()),
        reason: Some("   ".into()),
        video: true,
    })
    .expect_err("invalid");
    assert_eq!(
        fields(&errors),
        ["doctor_id", "patient_id", "start", "end", "reason"]
    );
    // The length is checked once both times are valid, and named before the reason.
    let errors = BookingRequest::try_from(AppointmentInput {
        end: Some("2026-11-24T08:00:00+01:00".into()),
        reason: None,
        ..booking_input()
    })
    .expect_err("invalid");
    assert_eq!(
        fields_and_messages(&errors),
        [("end", "must be after start"), ("reason", "is required")]
    );
}

#[test]
fn booked_times_are_rfc_3339_on_a_whole_minute_and_at_most_eight_hours_long() {
    let with = |start: &str, end: Option<&str>| {
        BookingRequest::try_from(AppointmentInput {
            start: Some(start.into()),
            end: end.map(Into::into),
            ..booking_input()
        })
    };
    let request = with("2026-11-24T09:00:00Z", Some("2026-11-24T09:45:00Z")).expect("valid");
    assert_eq!(request.end, Some(ts("2026-11-24T09:45:00Z")));
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
        let found = fields_and_messages(&errors);
        assert_eq!(found.len(), 1, "{start} {end:?}: {found:?}");
        assert_eq!(found[0].0, field, "{start} {end:?}");
        if let Some(message) = message {
            assert_eq!(found[0].1, message, "{start} {end:?}");
        }
    }
}

// New times

#[test]
fn a_new_time_is_a_start_and_an_optional_end_on_whole_minutes() {
    let moved = RescheduleRequest::try_from(RescheduleInput {
        start: Some("2026-11-25T11:00:00+01:00".into()),
        end: None,
    })
    .expect("valid");
    assert_eq!(
        moved,
        RescheduleRequest {
            start: ts("2026-11-25T10:00:00Z"),
            end: None,
        }
    );
    let longer = RescheduleRequest::try_from(RescheduleInput {
        start: Some("2026-11-25T10:00:00Z".into()),
        end: Some("2026-11-25T11:00:00Z".into()),
    })
    .expect("valid");
    assert_eq!(longer.end, Some(ts("2026-11-25T11:00:00Z")));

    let errors = RescheduleRequest::try_from(RescheduleInput::default()).expect_err("empty");
    assert_eq!(fields_and_messages(&errors), [("start", "is required")]);
    let errors = RescheduleRequest::try_from(RescheduleInput {
        start: Some("tomorrow".into()),
        end: Some("2026-11-25T11:00:30Z".into()),
    })
    .expect_err("invalid");
    assert_eq!(
        fields_and_messages(&errors),
        [
            (
                "start",
                "must be an RFC 3339 instant such as 2027-03-29T09:00:00+02:00"
            ),
            ("end", "must be on a whole minute"),
        ]
    );
    let errors = RescheduleRequest::try_from(RescheduleInput {
        start: Some("2026-11-25T10:00:00Z".into()),
        end: Some("soon".into()),
    })
    .expect_err("invalid");
    assert_eq!(fields(&errors), ["end"]);
}

// Status changes

#[test]
fn a_status_change_names_a_known_status() {
    let input = |status: Option<&str>| StatusInput {
        status: status.map(Into::into),
        reason: None,
    };
    assert_eq!(
        StatusChange::try_from(input(Some("checked_in"))),
        Ok(StatusChange {
            to: AppointmentStatus::CheckedIn,
            reason: None
        })
    );
    for bad in [None, Some("done"), Some("Cancelled")] {
        let errors = StatusChange::try_from(input(bad)).expect_err("invalid");
        assert_eq!(fields(&errors), ["status"], "{bad:?}");
    }
    let errors = StatusChange::try_from(input(Some("done"))).expect_err("invalid");
    assert_eq!(
        message(&errors, "status"),
        "must be one of booked, checked_in, in_progress, completed, cancelled, no_show"
    );
    assert_eq!(
        message(
            &StatusChange::try_from(input(None)).expect_err("missing"),
            "status"
        ),
        "is required"
    );
}

#[test]
fn a_status_change_passes_the_reason_on_as_written() {
    for reason in [
        Some("  "),
        Some("late"),
        Some("The patient is abroad"),
        None,
    ] {
        let change = StatusChange::try_from(StatusInput {
            status: Some("cancelled".into()),
            reason: reason.map(Into::into),
        })
        .expect("a known status");
        assert_eq!(change.to, AppointmentStatus::Cancelled);
        assert_eq!(change.reason.as_deref(), reason);
    }
}
