//! Instants shown at the clinic's offset, as the API writes them: RFC 3339 with the offset, or
//! `Z` when it is zero (jiff would write `+00:00`). The domain's `clinic_time` gives the offset.

use jiff::Zoned;
use jiff::tz::Offset;
use serde::Serializer;

/// Serializes `at` as RFC 3339 at its offset.
///
/// # Errors
/// The serializer's.
pub fn serialize<S: Serializer>(at: &Zoned, serializer: S) -> Result<S::Ok, S::Error> {
    let instant = at.timestamp();
    if at.offset() == Offset::UTC {
        serializer.collect_str(&instant)
    } else {
        serializer.collect_str(&instant.display_with_offset(at.offset()))
    }
}

#[cfg(test)]
mod tests {
    use carehub_domain::scheduling::clinic_time;
    use jiff::Timestamp;
    use jiff::tz::TimeZone;

    fn shown(zone: &str, at: &str) -> String {
        let tz = TimeZone::get(zone).expect("a bundled zone");
        let at: Timestamp = at.parse().expect("an instant");
        let mut out = serde_json::Serializer::new(Vec::new());
        super::serialize(&clinic_time(&tz, at), &mut out).expect("serializable");
        String::from_utf8(out.into_inner()).expect("UTF-8")
    }

    #[test]
    fn instants_are_written_at_the_clinics_offset_with_z_for_zero() {
        assert_eq!(
            shown("Europe/Paris", "2027-03-29T07:00:00Z"),
            r#""2027-03-29T09:00:00+02:00""#
        );
        assert_eq!(
            shown("America/New_York", "2026-11-02T14:00:00.123456Z"),
            r#""2026-11-02T09:00:00.123456-05:00""#
        );
        assert_eq!(
            shown("UTC", "2027-03-29T07:00:00Z"),
            r#""2027-03-29T07:00:00Z""#
        );
        assert_eq!(
            shown("Europe/London", "2027-01-04T09:30:00Z"),
            r#""2027-01-04T09:30:00Z""#
        );
    }
}
