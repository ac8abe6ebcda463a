//! A prescription and its life: `active` until a doctor marks it `completed` or `stopped` (with
//! a reason), or until its last day has passed and it is `expired`. It never changes otherwise:
//! a new dose is a new prescription that replaces it, and the replaced one is stopped, both
//! kept and readable.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{AllergyMatch, allergy_matches};
use crate::identity::UserId;
use crate::kernel::{PatientId, PrescriptionId, Text, string_enum};
use crate::patients::Allergy;

/// The longest medication name.
pub const MAX_MEDICATION_CHARS: usize = 200;
/// The longest dose or frequency ("500 mg", "three times a day").
pub const MAX_DOSE_CHARS: usize = 100;
/// The longest instructions.
pub const MAX_INSTRUCTIONS_CHARS: usize = 2_000;
/// The longest reason for stopping or for overriding an allergy.
pub const MAX_REASON_CHARS: usize = 500;
/// The longest course, in days.
pub const MAX_DURATION_DAYS: u16 = 365;
/// The most refills.
pub const MAX_REFILLS: u8 = 12;
/// The largest quantity dispensed.
pub const MAX_QUANTITY: u32 = 10_000;

/// The reason a replaced prescription is stopped with.
pub const REPLACED_REASON: &str = "Replaced by a new prescription";

string_enum!(
    /// Where a prescription stands.
    PrescriptionStatus, "prescription status" {
        Active => "active",
        /// The course is over, as the doctor says.
        Completed => "completed",
        /// A doctor stopped it, with a reason (or replaced it).
        Stopped => "stopped",
        /// Its last day has passed.
        Expired => "expired",
    }
);

string_enum!(
    /// How the medication is taken.
    Route, "route" {
        Oral => "oral",
        Sublingual => "sublingual",
        Buccal => "buccal",
        Intravenous => "intravenous",
        Intramuscular => "intramuscular",
        Subcutaneous => "subcutaneous",
        Topical => "topical",
        Transdermal => "transdermal",
        Inhaled => "inhaled",
        Nasal => "nasal",
        Ophthalmic => "ophthalmic",
        Otic => "otic",
        Rectal => "rectal",
        Vaginal => "vaginal",
    }
);

/// A prescription written despite a recorded allergy: why, and what it matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllergyOverride {
    pub reason: Text,
    pub matches: Vec<AllergyMatch>,
}

/// What a doctor prescribes, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPrescription {
    pub patient_id: PatientId,
    pub medication: Text,
    pub dose: Text,
    pub route: Route,
    pub frequency: Text,
    /// 1 to [`MAX_DURATION_DAYS`]; `None` for an open-ended prescription.
    pub duration_days: Option<u16>,
    pub quantity: Option<u32>,
    pub refills: u8,
    pub instructions: Text,
    /// Why it is prescribed although it matches a recorded allergy.
    pub override_reason: Option<Text>,
    /// The active prescription this one replaces.
    pub replaces: Option<PrescriptionId>,
}

/// Why a prescription is not written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrescribeError {
    /// The medication matches recorded allergies, and no override reason was given (409).
    #[error("the medication matches {} recorded allergies", .0.len())]
    AllergyConflict(Vec<AllergyMatch>),
}

/// A change the life of a prescription refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PrescriptionTransitionError {
    /// Only an active prescription ends or is replaced (409).
    #[error("the prescription is {0}")]
    NotActive(PrescriptionStatus),
    /// It expires only after its last day.
    #[error("the prescription has not reached its last day")]
    NotDue,
}

/// A prescription, as written and as it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prescription {
    pub id: PrescriptionId,
    pub patient_id: PatientId,
    pub prescribed_by: UserId,
    pub medication: Text,
    pub dose: Text,
    pub route: Route,
    pub frequency: Text,
    pub duration_days: Option<u16>,
    pub quantity: Option<u32>,
    pub refills: u8,
    pub instructions: Text,
    pub allergy_override: Option<AllergyOverride>,
    pub replaces: Option<PrescriptionId>,
    pub status: PrescriptionStatus,
    /// Why it was stopped.
    pub stop_reason: Option<Text>,
    /// The prescription that replaced it.
    pub replaced_by: Option<PrescriptionId>,
    /// Who completed or stopped it; `None` when it expired.
    pub ended_by: Option<UserId>,
    pub ended_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl Prescription {
    /// Writes `new` for `by` at `at`, checked against the patient's recorded `allergies`: a
    /// match needs an override reason, which is kept with what it matched. A reason given
    /// when nothing matches is not kept: there is nothing to override.
    ///
    /// # Errors
    /// `AllergyConflict`, listing every match.
    pub fn write(
        new: NewPrescription,
        by: UserId,
        allergies: &[Allergy],
        at: Timestamp,
    ) -> Result<Self, PrescribeError> {
        let matches = allergy_matches(new.medication.as_str(), allergies);
        let allergy_override = match (matches.is_empty(), new.override_reason) {
            (true, _) => None,
            (false, Some(reason)) => Some(AllergyOverride { reason, matches }),
            (false, None) => return Err(PrescribeError::AllergyConflict(matches)),
        };
        Ok(Self {
            id: PrescriptionId::generate(),
            patient_id: new.patient_id,
            prescribed_by: by,
            medication: new.medication,
            dose: new.dose,
            route: new.route,
            frequency: new.frequency,
            duration_days: new.duration_days,
            quantity: new.quantity,
            refills: new.refills,
            instructions: new.instructions,
            allergy_override,
            replaces: new.replaces,
            status: PrescriptionStatus::Active,
            stop_reason: None,
            replaced_by: None,
            ended_by: None,
            ended_at: None,
            created_at: at,
        })
    }

    /// When its last day is over: `duration_days` after it was written; `None` when it is
    /// open-ended.
    pub fn expires_at(&self) -> Option<Timestamp> {
        let days = self.duration_days?;
        self.created_at
            .checked_add(SignedDuration::from_hours(24 * i64::from(days)))
            .ok()
    }

    fn end(
        &mut self,
        status: PrescriptionStatus,
        by: Option<UserId>,
        now: Timestamp,
    ) -> Result<(), PrescriptionTransitionError> {
        if self.status != PrescriptionStatus::Active {
            return Err(PrescriptionTransitionError::NotActive(self.status));
        }
        self.status = status;
        self.ended_by = by;
        self.ended_at = Some(now);
        Ok(())
    }

    /// The course is over.
    ///
    /// # Errors
    /// `NotActive`.
    pub fn complete(
        &mut self,
        by: UserId,
        now: Timestamp,
    ) -> Result<(), PrescriptionTransitionError> {
        self.end(PrescriptionStatus::Completed, Some(by), now)
    }

    /// Stops it, for `reason`.
    ///
    /// # Errors
    /// `NotActive`.
    pub fn stop(
        &mut self,
        reason: Text,
        by: UserId,
        now: Timestamp,
    ) -> Result<(), PrescriptionTransitionError> {
        self.end(PrescriptionStatus::Stopped, Some(by), now)?;
        self.stop_reason = Some(reason);
        Ok(())
    }

    /// Stops it because `replacement` replaces it.
    ///
    /// # Errors
    /// `NotActive`.
    pub fn replace_with(
        &mut self,
        replacement: PrescriptionId,
        by: UserId,
        now: Timestamp,
    ) -> Result<(), PrescriptionTransitionError> {
        let reason = Text::line(REPLACED_REASON, MAX_REASON_CHARS)
            .unwrap_or_else(|_| unreachable!("the replacement reason is a valid line"));
        self.stop(reason, by, now)?;
        self.replaced_by = Some(replacement);
        Ok(())
    }

    /// Marks it expired, once its last day is over.
    ///
    /// # Errors
    /// `NotActive`; `NotDue` before [`Self::expires_at`] or when it is open-ended.
    pub fn expire(&mut self, now: Timestamp) -> Result<(), PrescriptionTransitionError> {
        if self.status != PrescriptionStatus::Active {
            return Err(PrescriptionTransitionError::NotActive(self.status));
        }
        match self.expires_at() {
            Some(at) if now >= at => self.end(PrescriptionStatus::Expired, None, now),
            _ => Err(PrescriptionTransitionError::NotDue),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prescriptions::MatchReason;

    fn text(raw: &str) -> Text {
        Text::line(raw, 2_000).expect("a line")
    }

    fn new(medication: &str) -> NewPrescription {
        NewPrescription {
            patient_id: PatientId::generate(),
            medication: text(medication),
            dose: text("500 mg"),
            route: Route::Oral,
            frequency: text("three times a day"),
            duration_days: Some(7),
            quantity: Some(21),
            refills: 0,
            instructions: text("After meals."),
            override_reason: None,
            replaces: None,
        }
    }

    fn allergies(substances: &[&str]) -> Vec<Allergy> {
        substances
            .iter()
            .map(|s| Allergy {
                substance: text(s),
                reaction: None,
                severity: None,
            })
            .collect()
    }

    fn at(day: i64) -> Timestamp {
        Timestamp::from_second(1_790_000_000 + day * 86_400).expect("an instant")
    }

    #[test]
    fn a_prescription_is_written_active_with_what_was_prescribed() {
        let doctor = UserId::generate();
        let input = new("Amoxicillin");
        let written =
            Prescription::write(input.clone(), doctor, &allergies(&["latex"]), at(0)).unwrap();
        assert_eq!(written.status, PrescriptionStatus::Active);
        assert_eq!(written.prescribed_by, doctor);
        assert_eq!(written.patient_id, input.patient_id);
        assert_eq!(written.medication, input.medication);
        assert_eq!(
            (written.duration_days, written.quantity, written.refills),
            (Some(7), Some(21), 0)
        );
        assert_eq!(written.allergy_override, None);
        assert_eq!(written.expires_at(), Some(at(7)));
    }

    #[test]
    fn a_medication_matching_an_allergy_needs_a_reason_that_is_kept_with_the_matches() {
        let doctor = UserId::generate();
        let recorded = allergies(&["penicillin", "latex", "Amoxicillin"]);
        let refused = Prescription::write(new("amoxicillin 500 mg"), doctor, &recorded, at(0));
        let expected = vec![
            AllergyMatch {
                substance: "penicillin".to_owned(),
                reason: MatchReason::DrugClass("penicillins".to_owned()),
            },
            AllergyMatch {
                substance: "Amoxicillin".to_owned(),
                reason: MatchReason::SameSubstance,
            },
        ];
        assert_eq!(
            refused,
            Err(PrescribeError::AllergyConflict(expected.clone()))
        );

        let overridden = Prescription::write(
            NewPrescription {
                override_reason: Some(text("Rash only, years ago; benefit outweighs the risk.")),
                ..new("amoxicillin 500 mg")
            },
            doctor,
            &recorded,
            at(0),
        )
        .unwrap();
        let kept = overridden.allergy_override.expect("the override is kept");
        assert_eq!(kept.matches, expected);
        assert_eq!(
            kept.reason.as_str(),
            "Rash only, years ago; benefit outweighs the risk."
        );

        let needless = Prescription::write(
            NewPrescription {
                override_reason: Some(text("Just in case.")),
                ..new("paracetamol")
            },
            doctor,
            &recorded,
            at(0),
        )
        .unwrap();
        assert_eq!(needless.allergy_override, None, "nothing to override");
    }

    #[test]
    fn only_an_active_prescription_is_completed_stopped_or_replaced() {
        let doctor = UserId::generate();
        let mut completed = Prescription::write(new("ibuprofen"), doctor, &[], at(0)).unwrap();
        completed.complete(doctor, at(3)).unwrap();
        assert_eq!(completed.status, PrescriptionStatus::Completed);
        assert_eq!(
            (completed.ended_by, completed.ended_at),
            (Some(doctor), Some(at(3)))
        );

        let mut stopped = Prescription::write(new("ibuprofen"), doctor, &[], at(0)).unwrap();
        stopped.stop(text("Stomach pain."), doctor, at(1)).unwrap();
        assert_eq!(stopped.status, PrescriptionStatus::Stopped);
        assert_eq!(
            stopped.stop_reason.as_ref().map(Text::as_str),
            Some("Stomach pain.")
        );

        let mut replaced = Prescription::write(new("ibuprofen"), doctor, &[], at(0)).unwrap();
        let replacement = PrescriptionId::generate();
        replaced.replace_with(replacement, doctor, at(2)).unwrap();
        assert_eq!(replaced.status, PrescriptionStatus::Stopped);
        assert_eq!(replaced.replaced_by, Some(replacement));
        assert_eq!(
            replaced.stop_reason.as_ref().map(Text::as_str),
            Some(REPLACED_REASON)
        );

        for mut ended in [completed, stopped, replaced] {
            let status = ended.status;
            let before = ended.clone();
            let refused = PrescriptionTransitionError::NotActive(status);
            assert_eq!(ended.complete(doctor, at(4)), Err(refused));
            assert_eq!(ended.stop(text("Again."), doctor, at(4)), Err(refused));
            assert_eq!(
                ended.replace_with(PrescriptionId::generate(), doctor, at(4)),
                Err(refused)
            );
            assert_eq!(ended.expire(at(30)), Err(refused));
            assert_eq!(ended, before, "a refused change changes nothing");
        }
    }

    #[test]
    fn a_prescription_expires_only_after_its_last_day_and_never_when_open_ended() {
        let doctor = UserId::generate();
        let mut course = Prescription::write(new("doxycycline"), doctor, &[], at(0)).unwrap();
        let before_end = at(7).checked_sub(SignedDuration::from_secs(1)).unwrap();
        assert_eq!(
            course.expire(before_end),
            Err(PrescriptionTransitionError::NotDue)
        );
        assert_eq!(course.status, PrescriptionStatus::Active);
        course.expire(at(7)).unwrap();
        assert_eq!(course.status, PrescriptionStatus::Expired);
        assert_eq!((course.ended_by, course.ended_at), (None, Some(at(7))));

        let mut open = Prescription::write(
            NewPrescription {
                duration_days: None,
                ..new("lisinopril")
            },
            doctor,
            &[],
            at(0),
        )
        .unwrap();
        assert_eq!(open.expires_at(), None);
        assert_eq!(
            open.expire(at(3_650)),
            Err(PrescriptionTransitionError::NotDue)
        );
    }
}
