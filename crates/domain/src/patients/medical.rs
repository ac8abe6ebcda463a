//! A patient's medical information: blood type, allergies, conditions and current medications.

use async_trait::async_trait;
use jiff::{Timestamp, civil::Date};
use serde::{Deserialize, Serialize};

use crate::audit::AuditEvent;
use crate::identity::UserId;
use crate::kernel::{RepositoryError, Text, parse_date, string_enum};
use crate::patients::PatientId;

/// The most entries each list may hold.
pub const MAX_ENTRIES: usize = 100;

string_enum!(
    /// ABO group and Rh factor.
    BloodType, "blood type" {
        APositive => "A+",
        ANegative => "A-",
        BPositive => "B+",
        BNegative => "B-",
        AbPositive => "AB+",
        AbNegative => "AB-",
        OPositive => "O+",
        ONegative => "O-",
    }
);

string_enum!(
    /// How bad a reaction is.
    Severity, "severity" {
        Mild => "mild",
        Moderate => "moderate",
        Severe => "severe",
        LifeThreatening => "life_threatening",
    }
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allergy {
    pub substance: Text,
    pub reaction: Option<Text>,
    pub severity: Option<Severity>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub name: Text,
    /// A code such as ICD-10 `E11.9`.
    pub code: Option<Text>,
    pub since: Option<Date>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Medication {
    pub name: Text,
    pub dose: Text,
    pub frequency: Text,
}

/// The medical information, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MedicalInfo {
    pub blood_type: Option<BloodType>,
    pub allergies: Vec<Allergy>,
    pub conditions: Vec<Condition>,
    pub medications: Vec<Medication>,
}

/// The medical information as stored: when and by whom it was last written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MedicalRecord {
    pub patient_id: PatientId,
    pub info: MedicalInfo,
    /// `None` while nothing was ever recorded.
    pub updated_at: Option<Timestamp>,
    pub updated_by: Option<UserId>,
}

/// When a condition began, written `YYYY-MM-DD`: a real day, not after `today`.
///
/// # Errors
/// The rule `raw` breaks.
pub fn parse_condition_since(raw: &str, today: Date) -> Result<Date, &'static str> {
    parse_date(raw).and_then(|d| {
        if d > today {
            Err("must not be in the future")
        } else {
            Ok(d)
        }
    })
}

/// Stores medical information. A write is stored with its audit event, in one transaction.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait MedicalRepository: Send + Sync {
    /// The patient's medical information; an empty record when none was ever written.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn get(&self, patient_id: PatientId) -> Result<MedicalRecord, RepositoryError>;

    /// Replaces the patient's medical information and returns it as stored.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn put(
        &self,
        patient_id: PatientId,
        info: &MedicalInfo,
        by: UserId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<MedicalRecord, RepositoryError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_began_on_a_real_day_not_in_the_future() {
        let today = jiff::civil::date(2026, 11, 22);
        assert_eq!(parse_condition_since("2026-11-22", today), Ok(today));
        assert!(parse_condition_since("2026-11-23", today).is_err());
        assert!(parse_condition_since("2019-02-29", today).is_err());
    }
}
