use crate::test_support::ts;
use Weekday as D;
use jiff::tz::Offset;
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::scheduling::*;

fn zone(name: &str) -> TimeZone {
    TimeZone::get(name).expect("the bundled tzdb has the zone")
}

fn hhmm(raw: &str) -> Time {
    parse_hhmm(raw).expect("a valid time")
}

fn rule(weekday: Weekday, start: &str, end: &str) -> AvailabilityRule {
    AvailabilityRule::new(weekday, hhmm(start), hhmm(end)).expect("start before end")
}

fn interval(start: Timestamp, end: Timestamp) -> Interval {
    Interval::new(start, end).expect("start before end")
}

fn doctor() -> UserId {
    UserId::from_uuid(Uuid::from_u128(7))
}

fn time_off(n: u128, start: Timestamp, end: Timestamp) -> TimeOff {
    TimeOff {
        id: TimeOffId::from_uuid(Uuid::from_u128(n)),
        doctor_id: doctor(),
        start,
        end,
        reason: None,
        created_by: doctor(),
        created_at: ts("2027-01-01T00:00:00Z"),
    }
}

fn schedule(rules: Vec<AvailabilityRule>, minutes: u16, time_off: Vec<TimeOff>) -> Schedule {
    Schedule {
        doctor_id: doctor(),
        appointment_minutes: minutes,
        rules,
        time_off,
        version: 1,
    }
}

/// The local wall time of an instant in `tz`, as `HH:MM`.
fn local_hhmm(tz: &TimeZone, at: Timestamp) -> String {
    format_hhmm(tz.to_datetime(at).time())
}

// Profiles, weekly rules and time off

#[test]
fn a_profile_bounds_its_biography_and_appointment_length() {
    assert_eq!(
        parse_bio(" Twenty years in practice.\nSpeaks French. ").map(|t| t.as_str().to_owned()),
        Ok("Twenty years in practice.\nSpeaks French.".to_owned())
    );
    assert!(parse_bio(&"b".repeat(MAX_BIO_CHARS)).is_ok());
    assert!(parse_bio(&"b".repeat(MAX_BIO_CHARS + 1)).is_err());
    for minutes in [MIN_APPOINTMENT_MINUTES, 30, MAX_APPOINTMENT_MINUTES] {
        assert_eq!(parse_appointment_minutes(minutes), Ok(minutes));
    }
    for minutes in [0, MIN_APPOINTMENT_MINUTES - 1, MAX_APPOINTMENT_MINUTES + 1] {
        assert_eq!(
            parse_appointment_minutes(minutes),
            Err(AppointmentMinutesError),
            "{minutes}"
        );
    }
    assert_eq!(
        AppointmentMinutesError.to_string(),
        "must be between 5 and 480"
    );
    let cardiology = Specialization::parse(" Cardiology ").expect("valid");
    assert_eq!(cardiology.as_str(), "Cardiology");
    assert_eq!(
        Specialization::parse(" cardiology ").expect("valid").key(),
        cardiology.key()
    );
    assert!(Specialization::parse(&"x".repeat(MAX_SPECIALIZATION_CHARS + 1)).is_err());
}

#[test]
fn rules_of_one_weekday_overlap_when_they_share_time_and_not_when_they_touch() {
    let morning = rule(D::Monday, "09:00", "12:00");
    assert!(morning.overlaps(&rule(D::Monday, "11:00", "13:00")));
    assert!(rule(D::Monday, "11:00", "13:00").overlaps(&morning));
    assert!(morning.overlaps(&rule(D::Monday, "10:00", "11:00")));
    assert!(
        !morning.overlaps(&rule(D::Monday, "12:00", "17:00")),
        "touching"
    );
    assert!(!rule(D::Monday, "12:00", "17:00").overlaps(&morning));
    assert!(!morning.overlaps(&rule(D::Tuesday, "09:00", "12:00")));
}

#[test]
fn availability_is_sorted_by_weekday_then_start() {
    let mut rules = vec![
        rule(D::Sunday, "08:00", "10:00"),
        rule(D::Monday, "13:00", "17:00"),
        rule(D::Wednesday, "00:00", "23:59"),
        rule(D::Monday, "09:00", "13:00"),
    ];
    sort_rules(&mut rules);
    assert_eq!(
        rules,
        [
            rule(D::Monday, "09:00", "13:00"),
            rule(D::Monday, "13:00", "17:00"),
            rule(D::Wednesday, "00:00", "23:59"),
            rule(D::Sunday, "08:00", "10:00"),
        ]
    );
}

#[test]
fn rules_read_and_print_as_hh_mm() {
    let monday = rule(D::Monday, "09:05", "17:30");
    assert_eq!(
        serde_json::to_value(monday).expect("serializes"),
        json!({"weekday": "monday", "start": "09:05", "end": "17:30"})
    );
    assert_eq!(
        serde_json::from_value::<AvailabilityRule>(
            json!({"weekday": "monday", "start": "09:05", "end": "17:30"})
        )
        .expect("deserializes"),
        monday
    );
    for bad in [
        json!({"weekday": "monday", "start": "17:30", "end": "09:05"}),
        json!({"weekday": "monday", "start": "9:05", "end": "17:30"}),
        json!({"weekday": "someday", "start": "09:05", "end": "17:30"}),
    ] {
        assert!(
            serde_json::from_value::<AvailabilityRule>(bad.clone()).is_err(),
            "{bad}"
        );
    }
    assert_eq!(monday.to_string(), "monday 09:05-17:30");
    assert_eq!((monday.start_minute(), monday.end_minute()), (545, 1050));
    assert_eq!(
        AvailabilityRule::from_minutes(D::Monday, 545, 1050),
        Some(monday)
    );
    assert_eq!(AvailabilityRule::from_minutes(D::Monday, 545, 1440), None);
    assert_eq!(AvailabilityRule::from_minutes(D::Monday, 600, 545), None);
    for day in D::ALL {
        assert_eq!(D::from_number(i64::from(day.number())), Some(*day));
    }
    assert_eq!(D::from(jiff::civil::Weekday::Sunday).number(), 7);
    assert_eq!(D::from_number(0), None);
}

#[test]
fn time_off_needs_a_future_range_of_at_most_a_year() {
    let now = ts("2027-03-01T12:00:00Z");
    let span = |start, end| check_time_off_span(start, end, now);
    assert_eq!(
        span(ts("2027-03-03T00:00:00Z"), ts("2027-03-03T00:00:00Z")),
        Err(TimeOffSpanError::NotAfterStart)
    );
    assert_eq!(
        span(ts("2027-02-01T00:00:00Z"), now),
        Err(TimeOffSpanError::Past)
    );
    assert_eq!(
        span(ts("2027-03-02T00:00:00Z"), ts("2028-03-02T00:00:01Z")),
        Err(TimeOffSpanError::TooLong)
    );
    // In this order: past comes before too long.
    assert_eq!(
        span(ts("2025-01-01T00:00:00Z"), ts("2027-01-01T00:00:00Z")),
        Err(TimeOffSpanError::Past)
    );
    // Started in the past is fine if it has not ended.
    assert_eq!(
        span(ts("2027-02-26T23:00:00Z"), ts("2027-03-04T23:00:00Z")),
        Ok(())
    );
    assert_eq!(
        span(ts("2027-03-02T00:00:00Z"), ts("2028-03-02T00:00:00Z")),
        Ok(()),
        "exactly 366 days"
    );
    let messages: Vec<String> = [
        TimeOffSpanError::NotAfterStart,
        TimeOffSpanError::Past,
        TimeOffSpanError::TooLong,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(
        messages,
        [
            "must be after start",
            "is in the past",
            "must be at most 366 days after start"
        ]
    );
    assert!(parse_time_off_reason(&"r".repeat(MAX_TIME_OFF_REASON_CHARS)).is_ok());
    assert!(parse_time_off_reason(&"r".repeat(MAX_TIME_OFF_REASON_CHARS + 1)).is_err());
}

// Intervals and instants

#[test]
fn intervals_are_half_open() {
    let a = interval(ts("2027-03-01T09:00:00Z"), ts("2027-03-01T10:00:00Z"));
    let touching = interval(ts("2027-03-01T10:00:00Z"), ts("2027-03-01T11:00:00Z"));
    let inside = interval(ts("2027-03-01T09:15:00Z"), ts("2027-03-01T10:00:00Z"));
    assert!(!a.overlaps(&touching) && !touching.overlaps(&a));
    assert!(a.overlaps(&inside) && a.contains(&inside) && a.contains(&a));
    assert!(!inside.contains(&a));
    assert_eq!(a.duration(), SignedDuration::from_hours(1));
    assert_eq!(Interval::new(a.start, a.start), None);
    assert_eq!(Interval::new(a.end, a.start), None);
}

// Working windows

#[test]
fn windows_follow_the_rules_across_a_week_merging_touching_ones() {
    let rules = [
        rule(D::Monday, "12:00", "17:00"),
        rule(D::Monday, "09:00", "12:00"),
        rule(D::Monday, "18:00", "19:00"),
        rule(D::Wednesday, "08:00", "10:00"),
        rule(D::Sunday, "22:00", "23:59"),
    ];
    let utc = TimeZone::UTC;
    // 2027-03-01 is a Monday.
    let week = working_windows(
        &rules,
        &utc,
        ts("2027-03-01T00:00:00Z"),
        ts("2027-03-08T00:00:00Z"),
    );
    assert_eq!(
        week,
        [
            interval(ts("2027-03-01T09:00:00Z"), ts("2027-03-01T17:00:00Z")),
            interval(ts("2027-03-01T18:00:00Z"), ts("2027-03-01T19:00:00Z")),
            interval(ts("2027-03-03T08:00:00Z"), ts("2027-03-03T10:00:00Z")),
            interval(ts("2027-03-07T22:00:00Z"), ts("2027-03-07T23:59:00Z")),
        ]
    );
    // Clipped to the range.
    let part = working_windows(
        &rules,
        &utc,
        ts("2027-03-01T10:00:00Z"),
        ts("2027-03-03T09:00:00Z"),
    );
    assert_eq!(
        part,
        [
            interval(ts("2027-03-01T10:00:00Z"), ts("2027-03-01T17:00:00Z")),
            interval(ts("2027-03-01T18:00:00Z"), ts("2027-03-01T19:00:00Z")),
            interval(ts("2027-03-03T08:00:00Z"), ts("2027-03-03T09:00:00Z")),
        ]
    );
    // An empty or reversed range has no windows.
    let at = ts("2027-03-01T10:00:00Z");
    assert!(working_windows(&rules, &utc, at, at).is_empty());
    assert!(working_windows(&rules, &utc, at, at - SignedDuration::from_hours(1)).is_empty());
}

#[test]
fn windows_are_local_times_of_the_clinic_zone_even_across_utc_dates() {
    // Tokyo is UTC+9 all year: Monday 08:00-10:00 there is Sunday 23:00 to Monday 01:00 UTC.
    let tokyo = zone("Asia/Tokyo");
    let rules = [rule(D::Monday, "08:00", "10:00")];
    let windows = working_windows(
        &rules,
        &tokyo,
        ts("2027-03-01T00:00:00Z"),
        ts("2027-03-02T00:00:00Z"),
    );
    assert_eq!(
        windows,
        [interval(
            ts("2027-03-01T00:00:00Z"),
            ts("2027-03-01T01:00:00Z")
        )]
    );
    let whole = working_windows(
        &rules,
        &tokyo,
        ts("2027-02-28T00:00:00Z"),
        ts("2027-03-01T00:00:00Z"),
    );
    assert_eq!(
        whole,
        [interval(
            ts("2027-02-28T23:00:00Z"),
            ts("2027-03-01T00:00:00Z")
        )]
    );
}

// Free slots

#[test]
fn free_slots_skip_time_off_busy_times_and_the_past() {
    let monday = schedule(
        vec![rule(D::Monday, "09:00", "12:00")],
        30,
        vec![time_off(
            1,
            ts("2027-03-01T10:00:00Z"),
            ts("2027-03-01T10:45:00Z"),
        )],
    );
    let busy = [interval(
        ts("2027-03-01T11:10:00Z"),
        ts("2027-03-01T11:30:00Z"),
    )];
    let slots = free_slots(
        &monday,
        &busy,
        &TimeZone::UTC,
        ts("2027-03-01T00:00:00Z"),
        ts("2027-03-02T00:00:00Z"),
        ts("2027-03-01T09:15:00Z"),
    );
    // 09:00 is past; 10:45-11:10 is too short for a slot.
    assert_eq!(
        slots,
        [
            interval(ts("2027-03-01T09:30:00Z"), ts("2027-03-01T10:00:00Z")),
            interval(ts("2027-03-01T11:30:00Z"), ts("2027-03-01T12:00:00Z")),
        ]
    );
    // A slot starting right now is still offered.
    let from_nine = free_slots(
        &monday,
        &busy,
        &TimeZone::UTC,
        ts("2027-03-01T00:00:00Z"),
        ts("2027-03-02T00:00:00Z"),
        ts("2027-03-01T09:00:00Z"),
    );
    assert_eq!(from_nine.len(), 3);
    assert_eq!(from_nine[0].start, ts("2027-03-01T09:00:00Z"));
}

#[test]
fn gaps_are_cut_into_slots_from_their_start_and_the_range_only_filters() {
    let rules = vec![
        rule(D::Monday, "09:00", "11:00"),
        rule(D::Tuesday, "09:00", "10:00"),
    ];
    let twenty_five = schedule(rules, 30, Vec::new());
    // Overlapping busy intervals; the gap after them starts at 09:10.
    let busy = [
        interval(ts("2027-03-01T09:00:00Z"), ts("2027-03-01T09:05:00Z")),
        interval(ts("2027-03-01T09:02:00Z"), ts("2027-03-01T09:10:00Z")),
    ];
    let now = ts("2027-02-01T00:00:00Z");
    let all = free_slots(
        &twenty_five,
        &busy,
        &TimeZone::UTC,
        ts("2027-03-01T00:00:00Z"),
        ts("2027-03-03T00:00:00Z"),
        now,
    );
    assert_eq!(
        all,
        [
            interval(ts("2027-03-01T09:10:00Z"), ts("2027-03-01T09:40:00Z")),
            interval(ts("2027-03-01T09:40:00Z"), ts("2027-03-01T10:10:00Z")),
            interval(ts("2027-03-01T10:10:00Z"), ts("2027-03-01T10:40:00Z")),
            interval(ts("2027-03-02T09:00:00Z"), ts("2027-03-02T09:30:00Z")),
            interval(ts("2027-03-02T09:30:00Z"), ts("2027-03-02T10:00:00Z")),
        ],
        "10:40-11:00 is shorter than a slot"
    );
    // A narrower range keeps the slots' places: only those wholly inside it remain.
    let part = free_slots(
        &twenty_five,
        &busy,
        &TimeZone::UTC,
        ts("2027-03-01T09:20:00Z"),
        ts("2027-03-01T10:30:00Z"),
        now,
    );
    assert_eq!(
        part,
        [interval(
            ts("2027-03-01T09:40:00Z"),
            ts("2027-03-01T10:10:00Z")
        )]
    );
    // Slots of another length.
    let hour = schedule(vec![rule(D::Monday, "09:00", "11:30")], 60, Vec::new());
    let long = free_slots(
        &hour,
        &[],
        &TimeZone::UTC,
        ts("2027-03-01T00:00:00Z"),
        ts("2027-03-02T00:00:00Z"),
        now,
    );
    assert_eq!(long.len(), 2);
    assert!(
        long.iter()
            .all(|s| s.duration() == SignedDuration::from_hours(1))
    );
}

#[test]
fn time_off_spanning_days_removes_every_slot_under_it() {
    let week = schedule(
        vec![
            rule(D::Monday, "09:00", "10:00"),
            rule(D::Tuesday, "09:00", "10:00"),
            rule(D::Wednesday, "09:00", "10:00"),
        ],
        30,
        vec![time_off(
            1,
            ts("2027-03-01T09:30:00Z"),
            ts("2027-03-02T23:00:00Z"),
        )],
    );
    let slots = free_slots(
        &week,
        &[],
        &TimeZone::UTC,
        ts("2027-03-01T00:00:00Z"),
        ts("2027-03-04T00:00:00Z"),
        ts("2027-02-01T00:00:00Z"),
    );
    let starts: Vec<_> = slots.iter().map(|s| s.start).collect();
    assert_eq!(
        starts,
        [
            ts("2027-03-01T09:00:00Z"),
            ts("2027-03-03T09:00:00Z"),
            ts("2027-03-03T09:30:00Z"),
        ]
    );
}

// Bookability

#[test]
fn bookability_is_checked_past_then_horizon_then_availability_then_time_off() {
    let now = ts("2027-03-01T08:00:00Z");
    let doctor = schedule(
        vec![
            rule(D::Monday, "09:00", "12:00"),
            rule(D::Monday, "12:00", "17:00"),
            rule(D::Tuesday, "09:00", "12:00"),
            rule(D::Tuesday, "12:30", "17:00"),
        ],
        30,
        vec![
            time_off(2, ts("2027-03-01T14:00:00Z"), ts("2027-03-01T15:00:00Z")),
            time_off(1, ts("2027-03-01T14:15:00Z"), ts("2027-03-01T18:00:00Z")),
        ],
    );
    let check = |start: Timestamp, minutes: i64| {
        check_bookable(
            &doctor,
            &TimeZone::UTC,
            interval(start, start + SignedDuration::from_mins(minutes)),
            now,
        )
    };
    // Past wins over everything (last Monday is outside nothing but the time).
    assert_eq!(
        check(ts("2027-02-22T10:00:00Z"), 30),
        Err(Unavailable::Past)
    );
    // Too far ahead wins over availability.
    assert_eq!(
        check(now + BOOKING_HORIZON + SignedDuration::from_mins(1), 30),
        Err(Unavailable::TooFarAhead)
    );
    assert_eq!(
        check(now + BOOKING_HORIZON, 30),
        Err(Unavailable::OutsideAvailability),
        "the horizon itself is not too far"
    );
    // Availability wins over time off: 16:45-17:15 crosses both the end of work and time off.
    assert_eq!(
        check(ts("2027-03-01T16:45:00Z"), 30),
        Err(Unavailable::OutsideAvailability)
    );
    assert_eq!(
        check(ts("2027-03-01T08:45:00Z"), 30),
        Err(Unavailable::OutsideAvailability)
    );
    assert_eq!(
        check(ts("2027-03-03T10:00:00Z"), 30),
        Err(Unavailable::OutsideAvailability),
        "no rule on Wednesday"
    );
    // The earliest time off in the way is named.
    assert_eq!(
        check(ts("2027-03-01T14:30:00Z"), 30),
        Err(Unavailable::TimeOff {
            time_off_id: TimeOffId::from_uuid(Uuid::from_u128(2))
        })
    );
    assert_eq!(
        check(ts("2027-03-01T15:30:00Z"), 30),
        Err(Unavailable::TimeOff {
            time_off_id: TimeOffId::from_uuid(Uuid::from_u128(1))
        })
    );
    // Touching time off is fine.
    assert_eq!(check(ts("2027-03-01T13:30:00Z"), 30), Ok(()));
    // Adjacent rules make one window; rules with a gap between them do not.
    assert_eq!(check(ts("2027-03-01T11:30:00Z"), 60), Ok(()));
    assert_eq!(check(ts("2027-03-01T09:00:00Z"), 300), Ok(()));
    assert_eq!(
        check(ts("2027-03-02T11:45:00Z"), 60),
        Err(Unavailable::OutsideAvailability)
    );
    // Starting exactly now is allowed.
    let at_nine = check_bookable(
        &doctor,
        &TimeZone::UTC,
        interval(ts("2027-03-01T09:00:00Z"), ts("2027-03-01T09:30:00Z")),
        ts("2027-03-01T09:00:00Z"),
    );
    assert_eq!(at_nine, Ok(()));
}

// Daylight saving time

/// Nine to five every day, and the night shift 01:30-03:30 on Sundays (over the change).
fn dst_rules() -> Vec<AvailabilityRule> {
    let mut rules: Vec<AvailabilityRule> = D::ALL
        .iter()
        .map(|day| rule(*day, "09:00", "17:00"))
        .collect();
    rules.push(rule(D::Sunday, "01:30", "03:30"));
    rules
}

/// Checks the windows from Saturday to Monday around a DST change where the clocks jump by
/// `jump` (+1 h in spring, -1 h in fall): the windows' UTC starts and lengths are `expected`,
/// and the local times are 09:00-17:00 each day and 01:30-03:30 on the night of the change.
fn assert_dst_weekend(
    tz_name: &str,
    from: Timestamp,
    to: Timestamp,
    expected: [(Timestamp, i64); 4],
    jump: SignedDuration,
) {
    let tz = zone(tz_name);
    let windows = working_windows(&dst_rules(), &tz, from, to);
    let got: Vec<(Timestamp, i64)> = windows
        .iter()
        .map(|w| (w.start, w.duration().as_mins()))
        .collect();
    assert_eq!(got, expected, "{tz_name}");
    let (saturday, night, sunday, monday) = (windows[0], windows[1], windows[2], windows[3]);
    for day in [saturday, sunday, monday] {
        assert_eq!(local_hhmm(&tz, day.start), "09:00", "{tz_name}");
        assert_eq!(local_hhmm(&tz, day.end), "17:00", "{tz_name}");
        assert_eq!(day.duration(), SignedDuration::from_hours(8), "{tz_name}");
    }
    assert_eq!(local_hhmm(&tz, night.start), "01:30", "{tz_name}");
    assert_eq!(local_hhmm(&tz, night.end), "03:30", "{tz_name}");
    // The same wall time two days apart is 48 h minus the jump; the night 2 h minus it.
    assert_eq!(
        monday.start.duration_since(saturday.start),
        SignedDuration::from_hours(48) - jump,
        "{tz_name}"
    );
    assert_eq!(
        night.duration(),
        SignedDuration::from_hours(2) - jump,
        "{tz_name}"
    );
}

#[test]
fn paris_spring_forward_keeps_nine_o_clock_and_shortens_the_night() {
    // Sunday 2027-03-28: 02:00 CET (+01:00) becomes 03:00 CEST (+02:00).
    assert_dst_weekend(
        "Europe/Paris",
        ts("2027-03-27T00:00:00+01:00"),
        ts("2027-03-30T00:00:00+02:00"),
        [
            (ts("2027-03-27T08:00:00Z"), 480),
            (ts("2027-03-28T00:30:00Z"), 60),
            (ts("2027-03-28T07:00:00Z"), 480),
            (ts("2027-03-29T07:00:00Z"), 480),
        ],
        SignedDuration::from_hours(1),
    );
}

#[test]
fn paris_fall_back_keeps_nine_o_clock_and_lengthens_the_night() {
    // Sunday 2026-10-25: 03:00 CEST (+02:00) becomes 02:00 CET (+01:00).
    assert_dst_weekend(
        "Europe/Paris",
        ts("2026-10-24T00:00:00+02:00"),
        ts("2026-10-27T00:00:00+01:00"),
        [
            (ts("2026-10-24T07:00:00Z"), 480),
            (ts("2026-10-24T23:30:00Z"), 180),
            (ts("2026-10-25T08:00:00Z"), 480),
            (ts("2026-10-26T08:00:00Z"), 480),
        ],
        SignedDuration::from_hours(-1),
    );
}

#[test]
fn new_york_spring_forward_keeps_nine_o_clock_and_shortens_the_night() {
    // Sunday 2027-03-14: 02:00 EST (-05:00) becomes 03:00 EDT (-04:00).
    assert_dst_weekend(
        "America/New_York",
        ts("2027-03-13T00:00:00-05:00"),
        ts("2027-03-16T00:00:00-04:00"),
        [
            (ts("2027-03-13T14:00:00Z"), 480),
            (ts("2027-03-14T06:30:00Z"), 60),
            (ts("2027-03-14T13:00:00Z"), 480),
            (ts("2027-03-15T13:00:00Z"), 480),
        ],
        SignedDuration::from_hours(1),
    );
}

#[test]
fn new_york_fall_back_keeps_nine_o_clock_and_lengthens_the_night() {
    // Sunday 2026-11-01: 02:00 EDT (-04:00) becomes 01:00 EST (-05:00); 01:30 happens twice
    // and the earlier one counts.
    assert_dst_weekend(
        "America/New_York",
        ts("2026-10-31T00:00:00-04:00"),
        ts("2026-11-03T00:00:00-05:00"),
        [
            (ts("2026-10-31T13:00:00Z"), 480),
            (ts("2026-11-01T05:30:00Z"), 180),
            (ts("2026-11-01T14:00:00Z"), 480),
            (ts("2026-11-02T14:00:00Z"), 480),
        ],
        SignedDuration::from_hours(-1),
    );
}

#[test]
fn a_rule_starting_in_the_spring_gap_starts_when_the_gap_ends() {
    // 02:30 does not exist in Paris on 2027-03-28: it moves forward by the gap, to 03:30 CEST.
    let tz = zone("Europe/Paris");
    let windows = working_windows(
        &[rule(D::Sunday, "02:30", "04:00")],
        &tz,
        ts("2027-03-28T00:00:00+01:00"),
        ts("2027-03-29T00:00:00+02:00"),
    );
    assert_eq!(
        windows,
        [interval(
            ts("2027-03-28T01:30:00Z"),
            ts("2027-03-28T02:00:00Z")
        )]
    );
}

#[test]
fn half_hour_slots_follow_the_clock_change_in_paris() {
    let tz = zone("Europe/Paris");
    let night = schedule(vec![rule(D::Sunday, "01:30", "03:30")], 30, Vec::new());
    let long_ago = ts("2026-01-01T00:00:00Z");
    let slots = |from: Timestamp, to: Timestamp| free_slots(&night, &[], &tz, from, to, long_ago);

    let spring = slots(
        ts("2027-03-28T00:00:00+01:00"),
        ts("2027-03-29T00:00:00+02:00"),
    );
    assert_eq!(
        spring,
        [
            interval(ts("2027-03-28T00:30:00Z"), ts("2027-03-28T01:00:00Z")),
            interval(ts("2027-03-28T01:00:00Z"), ts("2027-03-28T01:30:00Z")),
        ]
    );
    let local: Vec<String> = spring.iter().map(|s| local_hhmm(&tz, s.start)).collect();
    assert_eq!(local, ["01:30", "03:00"]);

    let fall = slots(
        ts("2026-10-25T00:00:00+02:00"),
        ts("2026-10-26T00:00:00+01:00"),
    );
    assert_eq!(fall.len(), 6);
    assert_eq!(fall[0].start, ts("2026-10-24T23:30:00Z"));
    assert_eq!(fall[5].end, ts("2026-10-25T02:30:00Z"));
    assert!(fall.windows(2).all(|pair| pair[0].end == pair[1].start));
    let local: Vec<String> = fall.iter().map(|s| local_hhmm(&tz, s.start)).collect();
    assert_eq!(
        local,
        ["01:30", "02:00", "02:30", "02:00", "02:30", "03:00"]
    );
}

#[test]
fn bookability_follows_the_clock_change() {
    let tz = zone("Europe/Paris");
    let doctor = schedule(dst_rules(), 30, Vec::new());
    let now = ts("2026-10-01T00:00:00Z");
    let check = |start: Timestamp| {
        check_bookable(
            &doctor,
            &tz,
            interval(start, start + SignedDuration::from_mins(30)),
            now,
        )
    };
    // Spring: the night ends at 03:30 CEST = 01:30 UTC (not 02:30 UTC as at a fixed +01:00).
    assert_eq!(check(ts("2027-03-28T01:00:00Z")), Ok(()));
    assert_eq!(
        check(ts("2027-03-28T01:30:00Z")),
        Err(Unavailable::OutsideAvailability)
    );
    // Monday after: 09:00 CEST is 07:00 UTC; 08:00 UTC would be 10:00.
    assert_eq!(check(ts("2027-03-29T07:00:00Z")), Ok(()));
    assert_eq!(
        check(ts("2027-03-29T14:45:00Z")),
        Err(Unavailable::OutsideAvailability),
        "16:45-17:15 CEST"
    );
    // Fall: the second 02:30 (CET, 01:30 UTC) is still in the night window.
    assert_eq!(check(ts("2026-10-25T01:30:00Z")), Ok(()));
    assert_eq!(check(ts("2026-10-25T02:00:00Z")), Ok(()));
    assert_eq!(
        check(ts("2026-10-25T02:30:00Z")),
        Err(Unavailable::OutsideAvailability)
    );
    // Saturday before: 09:00 CEST is 07:00 UTC.
    assert_eq!(
        check(ts("2026-10-24T06:30:00Z")),
        Err(Unavailable::OutsideAvailability)
    );
    assert_eq!(check(ts("2026-10-24T07:00:00Z")), Ok(()));
}

#[test]
fn instants_are_read_in_utc_and_only_far_from_the_ends_of_the_calendar() {
    assert_eq!(
        parse_instant(" 2027-03-29T09:00:00+02:00 "),
        Ok(ts("2027-03-29T07:00:00Z"))
    );
    assert_eq!(parse_instant("1900-01-01T00:00:00Z"), Ok(EARLIEST_INSTANT));
    assert_eq!(parse_instant("9000-01-01T00:00:00Z"), Ok(LATEST_INSTANT));
    for far in [
        "9999-12-31T23:59:00Z",
        "9000-01-01T00:00:01Z",
        "1899-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
    ] {
        assert_eq!(
            parse_instant(far),
            Err("must be between the years 1900 and 9000"),
            "{far}"
        );
    }
    assert!(parse_instant("2027-03-29 09:00").is_err());
}

#[test]
fn times_are_shown_at_the_clinics_offset_of_that_instant() {
    let paris = zone("Europe/Paris");
    let summer = clinic_time(&paris, ts("2027-03-29T07:00:00Z"));
    assert_eq!(summer.timestamp(), ts("2027-03-29T09:00:00+02:00"));
    assert_eq!(summer.offset(), Offset::constant(2));
    let winter = clinic_time(&paris, ts("2027-03-26T08:00:00Z"));
    assert_eq!(winter.timestamp(), ts("2027-03-26T09:00:00+01:00"));
    assert_eq!(winter.offset(), Offset::constant(1));
    let new_york = clinic_time(&zone("America/New_York"), ts("2026-11-02T14:00:00Z"));
    assert_eq!(new_york.timestamp(), ts("2026-11-02T09:00:00-05:00"));
    assert_eq!(new_york.offset(), Offset::constant(-5));
    let utc = clinic_time(&TimeZone::UTC, ts("2027-03-29T07:00:00+02:00"));
    assert_eq!(utc.timestamp(), ts("2027-03-29T05:00:00Z"));
    assert_eq!(utc.offset(), Offset::UTC);
    // Before standard time, Paris ran on local mean time (+00:09:21): shown in UTC instead.
    let mean_time = clinic_time(&paris, ts("1890-01-01T12:00:00Z"));
    assert_eq!(mean_time.offset(), Offset::UTC);
}
