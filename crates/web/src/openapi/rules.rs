//! The domain's text rules as JSON Schema, so that the OpenAPI document states what the server
//! checks: a field names one of these with `#[schema(schema_with = rules::full_name)]`.
//!
//! The domain trims text (Rust's `char::is_whitespace`) before it checks it, then counts its
//! characters and refuses control characters; the patterns say the same, with that exact set of
//! white space rather than a regex engine's own `\s`.

use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

use carehub_domain::identity::MAX_PASSWORD_CHARS;

/// What `char::is_whitespace` trims, as a character class body.
const SPACE: &str = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// Control characters (`char::is_control`, Unicode category Cc).
const CONTROL: &str = r"\x00-\x1f\x7f-\x9f";
/// Control characters, but for line breaks and tabs.
const CONTROL_BUT_BREAKS: &str = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f";

/// Text of `min` (at least 1) to `max` characters once trimmed, none of them in `forbidden`.
fn trimmed_text(min: usize, max: usize, forbidden: &str) -> String {
    let edge = format!("[^{SPACE}{CONTROL}]");
    let inner = format!("[^{forbidden}]");
    let body = match (min, max) {
        (_, 1) => edge,
        (0..=1, _) => format!("{edge}(?:{inner}{{0,{}}}{edge})?", max - 2),
        _ => format!("{edge}{inner}{{{},{}}}{edge}", min - 2, max - 2),
    };
    format!("^[{SPACE}]*{body}[{SPACE}]*$")
}

/// One line of 1 to `max` characters (the domain's `Text::line`).
pub fn line_pattern(max: usize) -> String {
    trimmed_text(1, max, CONTROL)
}

/// Text of 1 to `max` characters, line breaks and tabs allowed (the domain's
/// `Text::multiline`).
pub fn multiline_pattern(max: usize) -> String {
    trimmed_text(1, max, CONTROL_BUT_BREAKS)
}

fn string(pattern: String) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .build()
}

/// Declares, for each limit, the schema of a required text (`string`) and of an optional one
/// (`string` or `null`, which the server takes as absent).
macro_rules! text_rules {
    ($($required:ident, $optional:ident: $kind:ident($max:expr);)+) => {
        $(
            #[doc = concat!("Text by `", stringify!($kind), "` rules, 1 to ", stringify!($max), " characters.")]
            pub fn $required() -> Object {
                string($kind($max))
            }

            #[doc = concat!("As [`", stringify!($required), "`], or `null`.")]
            pub fn $optional() -> Object {
                nullable(string($kind($max)))
            }
        )+
    };
}

text_rules! {
    line_20, optional_line_20: line_pattern(20);
    line_32, optional_line_32: line_pattern(32);
    line_64, optional_line_64: line_pattern(64);
    line_80, optional_line_80: line_pattern(80);
    line_100, optional_line_100: line_pattern(100);
    line_120, optional_line_120: line_pattern(120);
    line_200, optional_line_200: line_pattern(200);
    line_500, optional_line_500: line_pattern(500);
    text_500, optional_text_500: multiline_pattern(500);
    text_1000, optional_text_1000: multiline_pattern(1_000);
    text_2000, optional_text_2000: multiline_pattern(2_000);
    text_4000, optional_text_4000: multiline_pattern(4_000);
    text_5000, optional_text_5000: multiline_pattern(5_000);
    text_10000, optional_text_10000: multiline_pattern(10_000);
    text_20000, optional_text_20000: multiline_pattern(20_000);
}

/// A telephone number: 3 to 32 of `0-9 + - ( ) .` and spaces, with at least 3 digits.
pub fn phone() -> Object {
    string(PHONE.to_owned())
}

/// As [`phone`], or `null`.
pub fn optional_phone() -> Object {
    nullable(phone())
}

const PHONE: &str = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?=(?:[^0-9]*[0-9]){3})[0-9+().-](?:[0-9 +().-]{1,30}[0-9+().-])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$";

/// An address: 1 to 4 lines of at most 200 characters each.
pub fn address_lines() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(line_200())
        .min_items(Some(1))
        .max_items(Some(carehub_domain::patients::MAX_ADDRESS_LINES))
        .build()
}

/// A time of day `HH:MM`, 00:00 to 23:59.
pub fn hhmm() -> Object {
    string(r"^([01][0-9]|2[0-3]):[0-5][0-9]$".to_owned())
}

/// Years 1900 to 9000, as the domain schedules (strictly inside, whatever the offset).
const SCHEDULABLE_YEAR: &str = "(190[1-9]|19[1-9][0-9]|[2-8][0-9]{3})";

fn date_time(pattern: String) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::DateTime,
        )))
        .pattern(Some(pattern))
        .build()
}

/// An RFC 3339 instant, any offset, between the years 1900 and 9000.
pub fn instant() -> Object {
    date_time(format!("^{SCHEDULABLE_YEAR}-"))
}

/// An RFC 3339 instant on a whole minute (seconds `00`), any offset, between the years 1900
/// and 9000.
pub fn minute() -> Object {
    date_time(format!(
        r"^{SCHEDULABLE_YEAR}-[0-9]{{2}}-[0-9]{{2}}T[0-9]{{2}}:[0-9]{{2}}:00(\.0+)?(Z|[+-][0-9]{{2}}:[0-9]{{2}})$"
    ))
}

/// As [`minute`], or `null`.
pub fn optional_minute() -> Object {
    nullable(minute())
}

/// A test's or an analyte's code: a lowercase letter, then lowercase letters, digits or `_`,
/// at most 40 (the domain's `LabCode`).
pub fn lab_code() -> Object {
    string(format!(
        "^[a-z][a-z0-9_]{{0,{}}}$",
        carehub_domain::lab::MAX_CODE_LEN - 1
    ))
}

/// The tests of an order: 1 to 20 codes.
pub fn lab_codes() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(lab_code())
        .min_items(Some(1))
        .max_items(Some(carehub_domain::lab::MAX_TESTS_PER_ORDER))
        .build()
}

/// A doctor's specializations: at most 10, each one line of at most 80 characters.
pub fn specializations() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(line_80())
        .max_items(Some(carehub_domain::scheduling::MAX_SPECIALIZATIONS))
        .build()
}

/// A date `YYYY-MM-DD`.
pub fn date() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Date,
        )))
        .build()
}

/// As [`date`], or `null`.
pub fn optional_date() -> Object {
    nullable(date())
}

/// The reason for an emergency access: 10 to 1,000 characters, line breaks allowed.
pub fn emergency_reason() -> Object {
    use carehub_domain::patients::{EMERGENCY_REASON_MAX_CHARS, EMERGENCY_REASON_MIN_CHARS};
    string(trimmed_text(
        EMERGENCY_REASON_MIN_CHARS,
        EMERGENCY_REASON_MAX_CHARS,
        CONTROL_BUT_BREAKS,
    ))
}

/// A person's full name: one line of at most 200 characters.
pub fn full_name() -> Object {
    string(line_pattern(200))
}

/// A change of a person's full name, or `null` for none.
pub fn full_name_change() -> Object {
    nullable(full_name())
}

fn nullable(mut object: Object) -> Object {
    object.schema_type = utoipa::openapi::schema::SchemaType::from_iter([Type::String, Type::Null]);
    object
}

/// Search text: one line of at most 100 characters.
pub fn search_text() -> Object {
    string(line_pattern(100))
}

/// Search text, or `null` for none.
pub fn optional_search_text() -> Object {
    nullable(search_text())
}

/// An instant in a query: RFC 3339 (any offset), or a date `YYYY-MM-DD` for the start of that
/// day in the clinic's time zone, between the years 1900 and 9000 (the pattern keeps to the
/// years strictly inside, whatever the offset).
pub fn instant_or_date() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::{KnownFormat, SchemaFormat};
    let format = |format| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(format)))
            .pattern(Some(r"^(190[1-9]|19[1-9][0-9]|[2-8][0-9]{3})-"))
            .build()
    };
    utoipa::openapi::schema::AnyOfBuilder::new()
        .item(format(KnownFormat::DateTime))
        .item(format(KnownFormat::Date))
        .build()
        .into()
}

/// The status an administrator sets on an account: any but `pending`, or `null` for no change.
pub fn status_change() -> Object {
    use carehub_domain::identity::UserStatus;
    let settable = UserStatus::ALL
        .iter()
        .filter(|s| **s != UserStatus::Pending)
        .map(|s| serde_json::Value::from(s.as_str()));
    nullable(
        ObjectBuilder::new()
            .enum_values(Some(settable.chain([serde_json::Value::Null])))
            .build(),
    )
}

/// A sign-in name: 3 to 32 of `a-z 0-9 . _ -`, in any case.
pub fn username() -> Object {
    string(format!("^[{SPACE}]*[A-Za-z0-9._-]{{3,32}}[{SPACE}]*$"))
}

/// A password: 12 to 128 characters (and, checked with the username, not containing it).
pub fn password() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Password,
        )))
        .min_length(Some(12))
        .max_length(Some(MAX_PASSWORD_CHARS))
        .build()
}

/// An e-mail address of at most 254 characters (`null` or absent: none).
pub fn email() -> Object {
    nullable(
        ObjectBuilder::new()
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Email,
            )))
            .max_length(Some(254))
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use carehub_domain::kernel::Text;
    use regex::Regex;

    use super::*;

    /// The pattern accepts exactly what the domain accepts.
    fn agrees(pattern: &str, domain: impl Fn(&str) -> bool, samples: &[&str]) {
        let regex = Regex::new(pattern).expect("a valid pattern");
        for sample in samples {
            assert_eq!(
                regex.is_match(sample),
                domain(sample),
                "{sample:?} against {pattern}"
            );
        }
    }

    const SAMPLES: &[&str] = &[
        "",
        " ",
        "\t\n",
        "a",
        " a ",
        "Ada Lovelace",
        "Ada\tLovelace",
        "Ada\nLovelace",
        "\x1cAda",
        "Ada\u{85}",
        "\u{3000}Ada\u{3000}",
        "Ada\u{7f}",
        "é",
        "abcde",
        "abcdef",
        " abcde ",
    ];

    #[test]
    fn the_text_patterns_accept_what_the_domain_accepts() {
        for max in [1, 2, 5] {
            agrees(&line_pattern(max), |s| Text::line(s, max).is_ok(), SAMPLES);
            agrees(
                &multiline_pattern(max),
                |s| Text::multiline(s, max).is_ok(),
                SAMPLES,
            );
        }
    }

    #[test]
    fn the_username_pattern_accepts_what_the_domain_accepts() {
        let pattern = username().pattern.expect("a pattern");
        agrees(
            &pattern,
            |s| carehub_domain::identity::Username::parse(s).is_ok(),
            &[
                "ab",
                "abc",
                " Dr.House ",
                "a b c",
                "x".repeat(32).as_str(),
                "ü-ser",
                "abc\t",
            ],
        );
    }
}
