//! The test catalogue: what a doctor may order, and for numeric analytes the unit and the
//! reference range that a result is flagged against.

use serde::{Deserialize, Serialize};

use crate::kernel::{Text, TextError, string_enum};

/// The longest test or analyte code.
pub const MAX_CODE_LEN: usize = 40;
/// The longest test or analyte name.
pub const MAX_NAME_LEN: usize = 120;
/// The longest unit.
pub const MAX_UNIT_LEN: usize = 20;
/// The most analytes one test measures.
pub const MAX_ANALYTES: usize = 50;

/// A test's or an analyte's code: a lowercase letter, then lowercase letters, digits or `_`
/// (`cbc`, `lipid_panel`, `hba1c`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct LabCode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "must be 1 to {MAX_CODE_LEN} characters: a lowercase letter, then lowercase letters, digits or underscores"
)]
pub struct InvalidLabCode;

impl LabCode {
    /// # Errors
    /// [`InvalidLabCode`].
    pub fn parse(raw: &str) -> Result<Self, InvalidLabCode> {
        let mut chars = raw.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if first_ok && rest_ok && raw.len() <= MAX_CODE_LEN {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidLabCode)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for LabCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

string_enum!(
    /// What kind of test it is.
    LabTestKind, "lab test kind" {
        /// Numeric analytes (blood counts, lipids).
        Panel => "panel",
        /// An electrocardiogram recording, analysed automatically.
        Ecg => "ecg",
        Imaging => "imaging",
        Other => "other",
    }
);

string_enum!(
    /// How a numeric result compares with its reference range.
    ResultFlag, "result flag" {
        Normal => "normal",
        Low => "low",
        High => "high",
        /// Beyond a critical limit: the ordering doctor is told at once, as urgent.
        Critical => "critical",
    }
);

/// The range of normal values of an analyte, with optional critical limits beyond it. Every
/// bound is optional; those given are finite and in order: critical low ≤ low < high ≤
/// critical high.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ReferenceRange {
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub critical_low: Option<f64>,
    pub critical_high: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRange {
    #[error("bounds must be finite numbers")]
    NotFinite,
    #[error("bounds must be in order: critical_low <= low < high <= critical_high")]
    OutOfOrder,
}

impl ReferenceRange {
    /// # Errors
    /// [`InvalidRange`].
    pub fn parse(
        low: Option<f64>,
        high: Option<f64>,
        critical_low: Option<f64>,
        critical_high: Option<f64>,
    ) -> Result<Self, InvalidRange> {
        let bounds = [critical_low, low, high, critical_high];
        if bounds.iter().flatten().any(|b| !b.is_finite()) {
            return Err(InvalidRange::NotFinite);
        }
        let given: Vec<f64> = bounds.iter().flatten().copied().collect();
        let ordered = given.windows(2).all(|w| w[0] <= w[1]);
        let strict_normal = match (low, high) {
            (Some(l), Some(h)) => l < h,
            _ => true,
        };
        if ordered && strict_normal {
            Ok(Self {
                low,
                high,
                critical_low,
                critical_high,
            })
        } else {
            Err(InvalidRange::OutOfOrder)
        }
    }

    /// The flag of `value`: critical beyond a critical limit, low or high outside the normal
    /// range, normal inside it (bounds included).
    pub fn flag(&self, value: f64) -> ResultFlag {
        if self.critical_low.is_some_and(|l| value < l)
            || self.critical_high.is_some_and(|h| value > h)
        {
            ResultFlag::Critical
        } else if self.low.is_some_and(|l| value < l) {
            ResultFlag::Low
        } else if self.high.is_some_and(|h| value > h) {
            ResultFlag::High
        } else {
            ResultFlag::Normal
        }
    }
}

/// One measured quantity of a test.
#[derive(Debug, Clone, PartialEq)]
pub struct Analyte {
    pub code: LabCode,
    pub name: Text,
    pub unit: Option<Text>,
    pub range: Option<ReferenceRange>,
}

/// A test of the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct LabTest {
    pub code: LabCode,
    pub name: Text,
    pub kind: LabTestKind,
    /// What it measures as numbers; empty for tests reported as findings and files only.
    pub analytes: Vec<Analyte>,
}

impl LabTest {
    pub fn analyte(&self, code: &LabCode) -> Option<&Analyte> {
        self.analytes.iter().find(|a| &a.code == code)
    }
}

/// A name or unit of the catalogue.
///
/// # Errors
/// [`TextError`].
pub fn catalogue_text(raw: &str, max: usize) -> Result<Text, TextError> {
    Text::line(raw, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_lowercase_words() {
        for ok in ["cbc", "lipid_panel", "hba1c", "a"] {
            assert!(LabCode::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "CBC",
            "1cbc",
            "_cbc",
            "cbc-x",
            "../x",
            "a b",
            &"a".repeat(41),
        ] {
            assert!(LabCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_range_flags_values_against_its_bounds() {
        let range = ReferenceRange::parse(Some(4.0), Some(10.0), Some(2.0), Some(30.0))
            .expect("valid range");
        assert_eq!(range.flag(1.9), ResultFlag::Critical);
        assert_eq!(range.flag(2.0), ResultFlag::Low);
        assert_eq!(range.flag(3.9), ResultFlag::Low);
        assert_eq!(range.flag(4.0), ResultFlag::Normal);
        assert_eq!(range.flag(10.0), ResultFlag::Normal);
        assert_eq!(range.flag(10.1), ResultFlag::High);
        assert_eq!(range.flag(30.1), ResultFlag::Critical);
    }

    #[test]
    fn a_one_sided_range_flags_one_side() {
        let range = ReferenceRange::parse(None, Some(5.6), None, None).expect("valid range");
        assert_eq!(range.flag(-100.0), ResultFlag::Normal);
        assert_eq!(range.flag(5.7), ResultFlag::High);
    }

    #[test]
    fn ranges_out_of_order_or_not_finite_are_refused() {
        assert_eq!(
            ReferenceRange::parse(Some(10.0), Some(4.0), None, None),
            Err(InvalidRange::OutOfOrder)
        );
        assert_eq!(
            ReferenceRange::parse(Some(4.0), Some(4.0), None, None),
            Err(InvalidRange::OutOfOrder)
        );
        assert_eq!(
            ReferenceRange::parse(Some(4.0), Some(10.0), Some(5.0), None),
            Err(InvalidRange::OutOfOrder)
        );
        assert_eq!(
            ReferenceRange::parse(Some(f64::NAN), None, None, None),
            Err(InvalidRange::NotFinite)
        );
    }
}
