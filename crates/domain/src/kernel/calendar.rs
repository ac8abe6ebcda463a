//! Dates and instants as clients write them: `YYYY-MM-DD` dates and RFC 3339 instants, read
//! strictly (jiff alone would also take ISO 8601's other forms, such as a time without seconds).

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::Offset;

/// A calendar date written `YYYY-MM-DD` that exists.
///
/// # Errors
/// A message saying what a date must look like.
pub fn parse_date(raw: &str) -> Result<Date, &'static str> {
    let raw = raw.trim();
    // Ten characters: jiff also reads the basic form `YYYYMMDD` and six-digit signed years.
    raw.parse()
        .ok()
        .filter(|_| raw.len() == 10)
        .ok_or("must be a real date written YYYY-MM-DD")
}

/// The date in UTC at `at`.
pub fn utc_date(at: Timestamp) -> Date {
    Offset::UTC.to_datetime(at).date()
}

/// Formats a date as `YYYY-MM-DD`.
pub fn format_date(date: Date) -> String {
    date.strftime("%Y-%m-%d").to_string()
}

/// Why text is not an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstantError {
    /// Not RFC 3339, or a date or time that does not exist.
    Malformed,
    /// A real date and time, but beyond the instants jiff represents (about years -9999 to 9999).
    OutOfRange,
}

/// An instant written as RFC 3339 requires: `YYYY-MM-DDTHH:MM:SS`, an optional fraction of up
/// to nine digits, then `Z` or an offset `±HH:MM` below 24 hours (`T` and `Z` in either case,
/// or a space for the `T`).
///
/// # Errors
/// [`InstantError`].
pub fn parse_rfc3339(raw: &str) -> Result<Timestamp, InstantError> {
    let bytes = raw.as_bytes();
    let (head, rest) = bytes.split_at_checked(19).ok_or(InstantError::Malformed)?;
    let fraction = match rest.first() {
        Some(b'.') => 1 + rest[1..].iter().take_while(|b| b.is_ascii_digit()).count(),
        _ => 0,
    };
    let (fraction, zone) = rest.split_at(fraction);
    let shaped = fits(head, b"dddd-dd-dd?dd:dd:dd")
        && matches!(head[10], b'T' | b't' | b' ')
        && head[17] <= b'5'
        && (fraction.is_empty() || (2..=10).contains(&fraction.len()))
        && (matches!(zone, b"Z" | b"z")
            || (fits(zone, b"?dd:dd") && matches!(zone[0], b'+' | b'-') && zone[1..3] < b"24"[..]));
    if !shaped {
        return Err(InstantError::Malformed);
    }
    raw.parse().map_err(|_| {
        // Shaped, so the date and time parse alone unless they do not exist.
        let civil = format!("{}T{}", &raw[..10], &raw[11..19]);
        match civil.parse::<DateTime>() {
            Ok(_) => InstantError::OutOfRange,
            Err(_) => InstantError::Malformed,
        }
    })
}

/// Whether `bytes` has `shape`'s length, with an ASCII digit wherever `shape` has `d`, any byte
/// wherever it has `?`, and `shape`'s byte everywhere else.
fn fits(bytes: &[u8], shape: &[u8]) -> bool {
    bytes.len() == shape.len()
        && bytes.iter().zip(shape).all(|(b, s)| match s {
            b'd' => b.is_ascii_digit(),
            b'?' => true,
            _ => b == s,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_must_exist() {
        assert!(parse_date("2024-02-29").is_ok());
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "01/02/2024",
            "2024-1-1",
            "20240101",
            "+002024-01-01",
            "",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
        let date = parse_date(" 0987-03-04 ").expect("valid");
        assert_eq!(format_date(date), "0987-03-04");
    }

    #[test]
    fn instants_are_rfc_3339_with_an_offset_and_seconds() {
        for (raw, utc) in [
            ("2027-03-29T09:00:00Z", "2027-03-29T09:00:00Z"),
            ("2027-03-29t09:00:00z", "2027-03-29T09:00:00Z"),
            ("2027-03-29 09:00:00Z", "2027-03-29T09:00:00Z"),
            ("2027-03-29T09:00:00.5+02:00", "2027-03-29T07:00:00.5Z"),
            (
                "2027-03-29T09:00:00.123456789-00:00",
                "2027-03-29T09:00:00.123456789Z",
            ),
            ("2027-03-29T09:00:00+23:59", "2027-03-28T09:01:00Z"),
        ] {
            assert_eq!(
                parse_rfc3339(raw).map(|at| at.to_string()).as_deref(),
                Ok(utc),
                "{raw}"
            );
        }
        for bad in [
            "2027-03-29T09:00Z",
            "2027-03-29T09Z",
            "2027-03-29T09:00:00",
            "2027-03-29T09:00:00+02",
            "2027-03-29T09:00:00+0200",
            "2027-03-29T09:00:00+24:00",
            "2027-03-29T09:00:60Z",
            "2027-03-29T09:00:00.Z",
            "2027-03-29T09:00:00.1234567891Z",
            "2027-03-29T09:00:00,5Z",
            "2027-03-29X09:00:00Z",
            "20270329T090000Z",
            "+002027-03-29T09:00:00Z",
            "2027-03-29T09:00:00+02:00[Europe/Paris]",
            "2027-02-30T09:00:00Z",
            "2027-03-29T9:00:00Z",
            "",
        ] {
            assert_eq!(parse_rfc3339(bad), Err(InstantError::Malformed), "{bad}");
        }
        assert_eq!(
            parse_rfc3339("9999-12-31T23:59:00Z"),
            Err(InstantError::OutOfRange)
        );
        assert_eq!(
            parse_rfc3339("9999-12-31T23:59:00-05:00"),
            Err(InstantError::OutOfRange)
        );
    }
}
