//! The shapes of scheduling as the API shows it: doctors' profiles, weekly availability, time
//! off, free slots, appointments and their history. The bodies clients send are in [`inputs`].
//!
//! Times of appointments, slots and time off are RFC 3339 at the clinic's UTC offset for that
//! instant (`2027-03-29T09:00:00+02:00` in Paris in summer), so that a reader sees the clinic's
//! wall clock; the records' own timestamps (`created_at`...) stay in UTC as everywhere else.
//! Rules are wall-clock times of the clinic's time zone, `HH:MM`.

use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::openapi::enums;
use carehub_domain::identity::FullName;
use carehub_domain::kernel::Text;
use carehub_domain::scheduling::{
    Appointment, AppointmentStatus, AvailabilityRule, DoctorProfile, HistoryChange, HistoryEntry,
    Interval, TimeOff, Weekday, clinic_time, is_schedulable,
};

fn text(value: Option<&Text>) -> Option<String> {
    value.map(|t| t.as_str().to_owned())
}

fn name(value: Option<&FullName>) -> Option<String> {
    value.map(|n| n.as_str().to_owned())
}

/// An instant given in a query: RFC 3339 (any offset), or a date `YYYY-MM-DD`, which means the
/// start of that day in the clinic (`tz`). `None` when it is neither.
pub fn parse_instant(raw: &str, tz: &TimeZone) -> Option<Timestamp> {
    if let Ok(at) = carehub_domain::scheduling::parse_instant(raw) {
        return Some(at);
    }
    // Only the plain date form: jiff would also take `2027-03-29T10:00`, a time without zone.
    if raw.len() != 10 {
        return None;
    }
    let date: jiff::civil::Date = raw.parse().ok()?;
    let start = date.to_zoned(tz.clone()).ok()?;
    Some(start.timestamp()).filter(|at| is_schedulable(*at))
}

/// The clinic's time zone as the API names it (an IANA name).
pub fn zone_name(tz: &TimeZone) -> String {
    tz.iana_name().unwrap_or("UTC").to_owned()
}

/// A doctor, as anyone signed in may see them.
#[derive(Debug, Serialize, ToSchema)]
pub struct DoctorProfileView {
    /// The doctor's account id.
    pub id: Uuid,
    #[schema(example = "Dr Alice Adams")]
    pub full_name: String,
    /// As the doctor wrote them; matched regardless of case by `?specialization=`.
    #[schema(example = json!(["Cardiology"]))]
    pub specializations: Vec<String>,
    pub bio: Option<String>,
    /// The length of the slots offered and of an appointment booked without an `end`.
    #[schema(example = 30)]
    pub appointment_minutes: u16,
}

impl From<DoctorProfile> for DoctorProfileView {
    fn from(profile: DoctorProfile) -> Self {
        Self {
            id: *profile.doctor_id.as_uuid(),
            full_name: profile.full_name.as_str().to_owned(),
            specializations: profile
                .specializations
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            bio: text(profile.bio.as_ref()),
            appointment_minutes: profile.appointment_minutes,
        }
    }
}

/// A period a doctor does not work, whatever their weekly rules say.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimeOffView {
    pub id: Uuid,
    #[schema(example = "2027-08-02T00:00:00+02:00")]
    #[serde(serialize_with = "crate::clinic_time::serialize")]
    pub start: Zoned,
    #[schema(example = "2027-08-16T00:00:00+02:00")]
    #[serde(serialize_with = "crate::clinic_time::serialize")]
    pub end: Zoned,
    /// Shown only to those who may change the doctor's schedule.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, example = "Annual leave")]
    pub reason: Option<String>,
}

impl TimeOffView {
    pub fn new(time_off: &TimeOff, tz: &TimeZone) -> Self {
        Self {
            id: *time_off.id.as_uuid(),
            start: clinic_time(tz, time_off.start),
            end: clinic_time(tz, time_off.end),
            reason: text(time_off.reason.as_ref()),
        }
    }
}

/// A doctor's weekly availability and upcoming time off.
#[derive(Debug, Serialize, ToSchema)]
pub struct AvailabilityView {
    /// The clinic's time zone (IANA), in which the rules' times are read.
    #[schema(example = "Europe/Paris")]
    pub time_zone: String,
    /// By weekday (Monday first), then start.
    pub rules: Vec<RuleView>,
    /// Time off not yet over, by start.
    pub time_off: Vec<TimeOffView>,
}

impl AvailabilityView {
    pub fn new(rules: &[AvailabilityRule], time_off: &[TimeOff], tz: &TimeZone) -> Self {
        Self {
            time_zone: zone_name(tz),
            rules: rules.iter().map(RuleView::from).collect(),
            time_off: time_off.iter().map(|t| TimeOffView::new(t, tz)).collect(),
        }
    }
}

/// A doctor's weekly rules, as replaced.
#[derive(Debug, Serialize, ToSchema)]
pub struct RulesView {
    /// The clinic's time zone (IANA), in which the rules' times are read.
    #[schema(example = "Europe/Paris")]
    pub time_zone: String,
    /// By weekday (Monday first), then start.
    pub rules: Vec<RuleView>,
}

/// One weekly availability rule: the doctor works on `weekday` from `start` to `end`, local
/// time in the clinic's time zone. `start < end`, both on whole minutes.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AvailabilityRule)]
pub struct RuleView {
    #[schema(value_type = enums::Weekday)]
    pub weekday: Weekday,
    /// `HH:MM`, 24-hour.
    #[schema(example = "09:00")]
    pub start: String,
    /// `HH:MM`, 24-hour; after `start`.
    #[schema(example = "17:00")]
    pub end: String,
}

impl From<&AvailabilityRule> for RuleView {
    fn from(rule: &AvailabilityRule) -> Self {
        Self {
            weekday: rule.weekday,
            start: rule.start_hhmm(),
            end: rule.end_hhmm(),
        }
    }
}

impl RulesView {
    pub fn new(rules: &[AvailabilityRule], tz: &TimeZone) -> Self {
        Self {
            time_zone: zone_name(tz),
            rules: rules.iter().map(RuleView::from).collect(),
        }
    }
}

/// A span of time, `[start, end)`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlotView {
    #[schema(example = "2027-03-29T09:00:00+02:00")]
    #[serde(serialize_with = "crate::clinic_time::serialize")]
    pub start: Zoned,
    #[schema(example = "2027-03-29T09:30:00+02:00")]
    #[serde(serialize_with = "crate::clinic_time::serialize")]
    pub end: Zoned,
}

impl SlotView {
    pub fn new(slot: Interval, tz: &TimeZone) -> Self {
        Self {
            start: clinic_time(tz, slot.start),
            end: clinic_time(tz, slot.end),
        }
    }
}

/// A doctor's free slots in a range.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlotsView {
    pub doctor_id: Uuid,
    /// The clinic's time zone (IANA), whose offsets the times carry.
    #[schema(example = "Europe/Paris")]
    pub time_zone: String,
    /// The length of each slot.
    #[schema(example = 30)]
    pub appointment_minutes: u16,
    /// In order; each may be booked as it is.
    pub slots: Vec<SlotView>,
}

/// A patient's booked time with a doctor.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppointmentView {
    pub id: Uuid,
    pub doctor_id: Uuid,
    /// `null` only if the account no longer exists.
    #[schema(example = "Dr Alice Adams")]
    pub doctor_name: Option<String>,
    pub patient_id: Uuid,
    /// `null` only if the record no longer exists.
    #[schema(example = "Ann Smith")]
    pub patient_name: Option<String>,
    #[schema(example = "2027-03-29T09:00:00+02:00")]
    #[serde(serialize_with = "crate::clinic_time::serialize")]
    pub start: Zoned,
    #[schema(example = "2027-03-29T09:30:00+02:00")]
    #[serde(serialize_with = "crate::clinic_time::serialize")]
    pub end: Zoned,
    #[schema(example = "Follow-up of blood pressure")]
    pub reason: String,
    #[schema(value_type = enums::AppointmentStatus)]
    pub status: AppointmentStatus,
    /// Why it was cancelled; only on a cancelled appointment.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub cancel_reason: Option<String>,
    /// A video consultation: its doctor and patient meet in its call
    /// (`GET /appointments/{id}/call`).
    pub video: bool,
    /// Who booked it.
    pub created_by: Uuid,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl AppointmentView {
    pub fn new(appointment: &Appointment, tz: &TimeZone) -> Self {
        Self {
            id: *appointment.id.as_uuid(),
            doctor_id: *appointment.doctor_id.as_uuid(),
            doctor_name: name(appointment.doctor_name.as_ref()),
            patient_id: *appointment.patient_id.as_uuid(),
            patient_name: name(appointment.patient_name.as_ref()),
            start: clinic_time(tz, appointment.start),
            end: clinic_time(tz, appointment.end),
            reason: appointment.reason.as_str().to_owned(),
            status: appointment.status,
            cancel_reason: text(appointment.cancel_reason.as_ref()),
            video: appointment.video,
            created_by: *appointment.created_by.as_uuid(),
            created_at: appointment.created_at,
            updated_at: appointment.updated_at,
        }
    }
}

/// One change of an appointment.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntryView {
    pub at: Timestamp,
    pub actor_id: Uuid,
    /// `null` only if the account no longer exists.
    pub actor_name: Option<String>,
    #[schema(value_type = enums::HistoryChange)]
    pub change: HistoryChange,
    /// The status after the change.
    #[schema(value_type = enums::AppointmentStatus)]
    pub status: AppointmentStatus,
    /// The times after the change.
    #[schema(example = "2027-03-29T09:00:00+02:00")]
    #[serde(serialize_with = "crate::clinic_time::serialize")]
    pub start: Zoned,
    #[schema(example = "2027-03-29T09:30:00+02:00")]
    #[serde(serialize_with = "crate::clinic_time::serialize")]
    pub end: Zoned,
    /// The cancellation reason, on a cancellation.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub reason: Option<String>,
}

impl HistoryEntryView {
    pub fn new(entry: &HistoryEntry, tz: &TimeZone) -> Self {
        Self {
            at: entry.at,
            actor_id: *entry.actor_id.as_uuid(),
            actor_name: name(entry.actor_name.as_ref()),
            change: entry.change,
            status: entry.status,
            start: clinic_time(tz, entry.start),
            end: clinic_time(tz, entry.end),
            reason: text(entry.reason.as_ref()),
        }
    }
}

/// An appointment's changes, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryView {
    pub items: Vec<HistoryEntryView>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::ts;

    use carehub_domain::identity::UserId;
    use carehub_domain::patients::PatientId;
    use carehub_domain::scheduling::AppointmentId;
    use carehub_domain::scheduling::{Specialization, TimeOffId};
    use serde_json::{Value, json};

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).expect("a zone of the bundled database")
    }

    fn user() -> UserId {
        UserId::from_uuid(Uuid::now_v7())
    }

    fn appointment(start: Timestamp) -> Appointment {
        let at = ts("2026-11-23T08:00:00Z");
        Appointment {
            id: AppointmentId::generate(),
            doctor_id: user(),
            patient_id: PatientId::generate(),
            start,
            end: start + jiff::SignedDuration::from_mins(30),
            reason: Text::multiline("Follow-up", 500).expect("a reason"),
            status: AppointmentStatus::Booked,
            cancel_reason: None,
            video: false,
            created_by: user(),
            created_at: at,
            updated_at: at,
            doctor_name: Some(FullName::parse("Alice Adams").expect("a name")),
            patient_name: Some(FullName::parse("Ann Smith").expect("a name")),
        }
    }

    #[test]
    fn a_query_instant_is_rfc_3339_or_the_start_of_a_clinic_day() {
        let paris = zone("Europe/Paris");
        assert_eq!(
            parse_instant("2027-03-29T09:00:00-04:00", &paris),
            Some(ts("2027-03-29T13:00:00Z"))
        );
        // Midnight in Paris, before and after the spring change (28 March 2027).
        assert_eq!(
            parse_instant("2027-03-28", &paris),
            Some(ts("2027-03-27T23:00:00Z"))
        );
        assert_eq!(
            parse_instant("2027-03-29", &paris),
            Some(ts("2027-03-28T22:00:00Z"))
        );
        assert_eq!(
            parse_instant("2027-03-29", &TimeZone::UTC),
            Some(ts("2027-03-29T00:00:00Z"))
        );
        for bad in [
            "",
            "tomorrow",
            "2027-02-30",
            "2027-3-29",
            "2027-03-29T09:00",
            "2027-03-29 09:00",
        ] {
            assert_eq!(parse_instant(bad, &paris), None, "{bad:?}");
        }
    }

    #[test]
    fn an_appointment_shows_its_times_in_the_clinic_and_hides_an_absent_cancel_reason() {
        let paris = zone("Europe/Paris");
        let booked = appointment(ts("2027-03-29T07:00:00Z"));
        let json = serde_json::to_value(AppointmentView::new(&booked, &paris)).expect("json");
        assert_eq!(json["start"], "2027-03-29T09:00:00+02:00");
        assert_eq!(json["end"], "2027-03-29T09:30:00+02:00");
        assert_eq!(json["created_at"], "2026-11-23T08:00:00Z");
        assert_eq!(json["status"], "booked");
        assert_eq!(json["doctor_name"], "Alice Adams");
        assert_eq!(json["patient_name"], "Ann Smith");
        assert_eq!(json["reason"], "Follow-up");
        assert!(json.get("cancel_reason").is_none());
        let keys: Vec<&str> = json
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        for key in [
            "id",
            "doctor_id",
            "doctor_name",
            "patient_id",
            "patient_name",
            "start",
            "end",
            "reason",
            "status",
            "created_by",
            "created_at",
            "updated_at",
        ] {
            assert!(keys.contains(&key), "{key} in {keys:?}");
        }

        let cancelled = Appointment {
            status: AppointmentStatus::Cancelled,
            cancel_reason: Some(Text::multiline("Ill", 1_000).expect("a reason")),
            video: false,
            doctor_name: None,
            ..booked
        };
        let json = serde_json::to_value(AppointmentView::new(&cancelled, &paris)).expect("json");
        assert_eq!(json["cancel_reason"], "Ill");
        assert_eq!(json["doctor_name"], Value::Null);
    }

    #[test]
    fn a_profile_keeps_the_old_directory_fields_and_adds_its_own() {
        let id = user();
        let profile = DoctorProfile {
            doctor_id: id,
            full_name: FullName::parse("Alice Adams").expect("a name"),
            specializations: vec![Specialization::parse("Cardiology").expect("a specialization")],
            bio: None,
            appointment_minutes: 20,
            updated_at: None,
        };
        let json = serde_json::to_value(DoctorProfileView::from(profile)).expect("json");
        assert_eq!(
            json,
            json!({
                "id": id.as_uuid(),
                "full_name": "Alice Adams",
                "specializations": ["Cardiology"],
                "bio": null,
                "appointment_minutes": 20,
            })
        );
    }

    #[test]
    fn availability_names_the_zone_and_hides_absent_time_off_reasons() {
        let paris = zone("Europe/Paris");
        let rule = AvailabilityRule::new(
            carehub_domain::scheduling::Weekday::Monday,
            jiff::civil::time(9, 0, 0, 0),
            jiff::civil::time(17, 30, 0, 0),
        )
        .expect("a rule");
        let time_off = TimeOff {
            id: TimeOffId::generate(),
            doctor_id: user(),
            start: ts("2027-08-01T22:00:00Z"),
            end: ts("2027-08-15T22:00:00Z"),
            reason: None,
            created_by: user(),
            created_at: ts("2027-01-01T00:00:00Z"),
        };
        let json = serde_json::to_value(AvailabilityView::new(&[rule], &[time_off], &paris))
            .expect("json");
        assert_eq!(json["time_zone"], "Europe/Paris");
        assert_eq!(
            json["rules"],
            json!([{"weekday": "monday", "start": "09:00", "end": "17:30"}])
        );
        let off = &json["time_off"][0];
        assert_eq!(off["start"], "2027-08-02T00:00:00+02:00");
        assert_eq!(off["end"], "2027-08-16T00:00:00+02:00");
        assert!(off.get("reason").is_none());

        let json = serde_json::to_value(RulesView::new(&[], &TimeZone::UTC)).expect("json");
        assert_eq!(json, json!({"time_zone": "UTC", "rules": []}));
    }

    #[test]
    fn a_history_entry_shows_the_new_times_in_the_clinic() {
        let entry = HistoryEntry {
            at: ts("2027-03-20T10:00:00Z"),
            actor_id: user(),
            actor_name: None,
            change: HistoryChange::Rescheduled,
            status: AppointmentStatus::Booked,
            start: ts("2027-03-29T07:00:00Z"),
            end: ts("2027-03-29T07:30:00Z"),
            reason: None,
        };
        let json = serde_json::to_value(HistoryEntryView::new(&entry, &zone("Europe/Paris")))
            .expect("json");
        assert_eq!(json["change"], "rescheduled");
        assert_eq!(json["at"], "2027-03-20T10:00:00Z");
        assert_eq!(json["start"], "2027-03-29T09:00:00+02:00");
        assert_eq!(json["actor_name"], Value::Null);
        assert!(json.get("reason").is_none());
    }
}
