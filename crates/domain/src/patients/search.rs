//! Finding patients: what a caller typed, how names are indexed, and who may find whom.

use jiff::Timestamp;

use crate::identity::UserId;

use crate::patients::Mrn;

/// What a caller typed into a patient search: matched against names (any part, regardless of
/// case), record numbers and identifier values (exactly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText {
    raw: String,
    name_fragment: String,
    mrn: Option<Mrn>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to 100 characters")]
pub struct SearchTextError;

impl SearchText {
    /// # Errors
    /// [`SearchTextError`] when empty or longer than 100 characters.
    pub fn parse(raw: &str) -> Result<Self, SearchTextError> {
        let trimmed = raw.trim();
        if trimmed.is_empty()
            || trimmed.chars().count() > 100
            || trimmed.chars().any(char::is_control)
        {
            return Err(SearchTextError);
        }
        Ok(Self {
            raw: trimmed.to_owned(),
            name_fragment: search_key(trimmed),
            mrn: Mrn::parse(trimmed).ok(),
        })
    }

    /// The text as typed, trimmed: compared exactly with identifier values.
    pub fn exact(&self) -> &str {
        &self.raw
    }

    /// The text as names are indexed for search.
    pub fn name_fragment(&self) -> &str {
        &self.name_fragment
    }

    /// The record number the text names, if it is one.
    pub fn mrn(&self) -> Option<&Mrn> {
        self.mrn.as_ref()
    }
}

/// How a name is indexed for search: lowercase, single spaces.
pub fn search_key(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Which patients a search may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchScope {
    /// Every patient (secretaries, administrators).
    All,
    /// The doctor's current care-team patients, and any other patient only on an exact record
    /// number or identifier match.
    Doctor { doctor_id: UserId, at: Timestamp },
}

/// A patient search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientQuery {
    pub text: Option<SearchText>,
    pub scope: SearchScope,
}
