//! Free text and the small value types patient records are made of, each valid by construction.

use std::fmt;

use serde::Serialize;

/// Text a person typed: trimmed, not empty, at most a given number of characters, and free of
/// control characters (multi-line text may hold line breaks and tabs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Text(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {0} characters long")]
    TooLong(usize),
    #[error("must not contain control characters")]
    ControlCharacters,
}

impl Text {
    /// One line of text of at most `max` characters.
    ///
    /// # Errors
    /// [`TextError`] naming the first rule `raw` breaks.
    pub fn line(raw: &str, max: usize) -> Result<Self, TextError> {
        Self::checked(raw, max, |c| c.is_control())
    }

    /// Text of at most `max` characters that may span several lines.
    ///
    /// # Errors
    /// [`TextError`] naming the first rule `raw` breaks.
    pub fn multiline(raw: &str, max: usize) -> Result<Self, TextError> {
        Self::checked(raw, max, |c| {
            c.is_control() && !matches!(c, '\n' | '\r' | '\t')
        })
    }

    fn checked(raw: &str, max: usize, forbidden: impl Fn(char) -> bool) -> Result<Self, TextError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(TextError::Empty);
        }
        if trimmed.chars().count() > max {
            return Err(TextError::TooLong(max));
        }
        if trimmed.chars().any(forbidden) {
            return Err(TextError::ControlCharacters);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A telephone number as people write it: 3 to 32 characters of digits, spaces and `+ - ( ) .`,
/// with at least three digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Phone(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "must be a telephone number: 3 to 32 characters, digits, spaces and + - ( ) ., at least 3 digits"
)]
pub struct PhoneError;

impl Phone {
    /// # Errors
    /// [`PhoneError`] when `raw` is not a telephone number.
    pub fn parse(raw: &str) -> Result<Self, PhoneError> {
        let trimmed = raw.trim();
        let allowed = trimmed
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')' | '.'));
        let digits = trimmed.chars().filter(char::is_ascii_digit).count();
        if allowed && (3..=32).contains(&trimmed.len()) && digits >= 3 {
            Ok(Self(trimmed.to_owned()))
        } else {
            Err(PhoneError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_bounded_and_free_of_control_characters() {
        assert_eq!(
            Text::line("  ward 3 ", 10).map(|t| t.0),
            Ok("ward 3".into())
        );
        assert_eq!(Text::line(" \n ", 10), Err(TextError::Empty));
        assert_eq!(Text::line("abcdef", 5), Err(TextError::TooLong(5)));
        assert_eq!(Text::line("a\nb", 5), Err(TextError::ControlCharacters));
        assert!(Text::multiline("a\nb\tc", 5).is_ok());
        assert_eq!(
            Text::multiline("a\u{7}b", 5),
            Err(TextError::ControlCharacters)
        );
        // Characters, not bytes, are counted.
        assert!(Text::line("ééééé", 5).is_ok());
    }

    #[test]
    fn phones_are_digits_and_punctuation_people_use() {
        for ok in ["+41 44 123 45 67", "(555) 010-9999", "112"] {
            assert!(Phone::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "12", "call me", "+1 555 0100 ext. 4", &"1".repeat(33)] {
            assert!(Phone::parse(bad).is_err(), "{bad}");
        }
    }
}
