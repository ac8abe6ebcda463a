//! A lab order and its state machine: `ordered` → `scheduled` → `collected` → `resulted` →
//! `released`, or `cancelled` by the doctor who ordered it before it is resulted.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{LabCode, ReferenceRange, ResultFlag};
use crate::identity::UserId;
use crate::kernel::{LabOrderId, PatientId, Text, string_enum};

/// The longest clinical question.
pub const MAX_QUESTION_CHARS: usize = 2_000;
/// The longest free-text findings.
pub const MAX_FINDINGS_CHARS: usize = 10_000;
/// The most tests one order asks for.
pub const MAX_TESTS_PER_ORDER: usize = 20;

string_enum!(
    /// Where an order stands.
    LabOrderStatus, "lab order status" {
        Ordered => "ordered",
        /// The laboratory gave it an appointment time.
        Scheduled => "scheduled",
        /// The sample was taken, or the recording made.
        Collected => "collected",
        /// Results are in: the ordering doctor sees them, the patient not yet.
        Resulted => "resulted",
        /// The patient sees the results too.
        Released => "released",
        Cancelled => "cancelled",
    }
);

impl LabOrderStatus {
    /// The statuses the laboratory still has work in.
    pub const OPEN: [LabOrderStatus; 3] = [
        LabOrderStatus::Ordered,
        LabOrderStatus::Scheduled,
        LabOrderStatus::Collected,
    ];

    pub fn is_open(self) -> bool {
        Self::OPEN.contains(&self)
    }
}

string_enum!(
    /// How soon the laboratory should do it; urgent orders stand out in its queue.
    LabPriority, "lab priority" {
        Routine => "routine",
        Urgent => "urgent",
    }
);

/// One numeric result, with the unit and range it was judged against at the time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyteResult {
    pub test: LabCode,
    pub analyte: LabCode,
    pub name: String,
    pub value: f64,
    pub unit: Option<String>,
    pub range: Option<ReferenceRange>,
    pub flag: ResultFlag,
}

impl<'de> Deserialize<'de> for LabCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        LabCode::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A lab order.
#[derive(Debug, Clone, PartialEq)]
pub struct LabOrder {
    pub id: LabOrderId,
    pub patient_id: PatientId,
    pub ordered_by: UserId,
    pub tests: Vec<LabCode>,
    pub priority: LabPriority,
    pub clinical_question: Text,
    pub status: LabOrderStatus,
    /// The laboratory appointment, once scheduled.
    pub scheduled_for: Option<Timestamp>,
    pub collected_at: Option<Timestamp>,
    pub results: Vec<AnalyteResult>,
    pub findings: Option<Text>,
    pub resulted_by: Option<UserId>,
    pub resulted_at: Option<Timestamp>,
    /// Who released the results to the patient; `None` with a release time when the delay
    /// released them.
    pub released_by: Option<UserId>,
    pub released_at: Option<Timestamp>,
    pub cancelled_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A doctor's order, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLabOrder {
    pub patient_id: PatientId,
    pub tests: Vec<LabCode>,
    pub priority: LabPriority,
    pub clinical_question: Text,
}

/// A change the state machine refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LabTransitionError {
    /// The order's status does not allow it (409).
    #[error("the order is {0}")]
    NotFrom(LabOrderStatus),
    /// Only the doctor who ordered it may cancel it (403).
    #[error("only the doctor who ordered it may cancel it")]
    NotOrderer,
}

impl LabOrder {
    /// A new order of `new`, placed by `ordered_by` at `at`.
    pub fn place(new: NewLabOrder, ordered_by: UserId, at: Timestamp) -> Self {
        Self {
            id: LabOrderId::generate(),
            patient_id: new.patient_id,
            ordered_by,
            tests: new.tests,
            priority: new.priority,
            clinical_question: new.clinical_question,
            status: LabOrderStatus::Ordered,
            scheduled_for: None,
            collected_at: None,
            results: Vec::new(),
            findings: None,
            resulted_by: None,
            resulted_at: None,
            released_by: None,
            released_at: None,
            cancelled_at: None,
            created_at: at,
            updated_at: at,
        }
    }

    fn require(&self, allowed: &[LabOrderStatus]) -> Result<(), LabTransitionError> {
        if allowed.contains(&self.status) {
            Ok(())
        } else {
            Err(LabTransitionError::NotFrom(self.status))
        }
    }

    /// Gives (or moves) the laboratory appointment.
    ///
    /// # Errors
    /// `NotFrom` unless ordered or scheduled.
    pub fn schedule(&mut self, at: Timestamp, now: Timestamp) -> Result<(), LabTransitionError> {
        self.require(&[LabOrderStatus::Ordered, LabOrderStatus::Scheduled])?;
        self.status = LabOrderStatus::Scheduled;
        self.scheduled_for = Some(at);
        self.updated_at = now;
        Ok(())
    }

    /// The sample was taken, or the recording made.
    ///
    /// # Errors
    /// `NotFrom` unless ordered or scheduled.
    pub fn collect(&mut self, now: Timestamp) -> Result<(), LabTransitionError> {
        self.require(&[LabOrderStatus::Ordered, LabOrderStatus::Scheduled])?;
        self.status = LabOrderStatus::Collected;
        self.collected_at = Some(now);
        self.updated_at = now;
        Ok(())
    }

    /// Records the results; the ordering doctor sees them from now on.
    ///
    /// # Errors
    /// `NotFrom` unless collected.
    pub fn record_results(
        &mut self,
        results: Vec<AnalyteResult>,
        findings: Option<Text>,
        by: UserId,
        now: Timestamp,
    ) -> Result<(), LabTransitionError> {
        self.require(&[LabOrderStatus::Collected])?;
        self.status = LabOrderStatus::Resulted;
        self.results = results;
        self.findings = findings;
        self.resulted_by = Some(by);
        self.resulted_at = Some(now);
        self.updated_at = now;
        Ok(())
    }

    /// Releases the results to the patient; `by` is `None` for the automatic release.
    ///
    /// # Errors
    /// `NotFrom` unless resulted.
    pub fn release(
        &mut self,
        by: Option<UserId>,
        now: Timestamp,
    ) -> Result<(), LabTransitionError> {
        self.require(&[LabOrderStatus::Resulted])?;
        self.status = LabOrderStatus::Released;
        self.released_by = by;
        self.released_at = Some(now);
        self.updated_at = now;
        Ok(())
    }

    /// Withdraws the order; only its doctor may, before it is resulted.
    ///
    /// # Errors
    /// `NotOrderer`, `NotFrom`.
    pub fn cancel(&mut self, by: UserId, now: Timestamp) -> Result<(), LabTransitionError> {
        if by != self.ordered_by {
            return Err(LabTransitionError::NotOrderer);
        }
        self.require(&LabOrderStatus::OPEN)?;
        self.status = LabOrderStatus::Cancelled;
        self.cancelled_at = Some(now);
        self.updated_at = now;
        Ok(())
    }

    /// Whether files may still be added: from collection until the results are released.
    pub fn accepts_files(&self) -> bool {
        matches!(
            self.status,
            LabOrderStatus::Collected | LabOrderStatus::Resulted
        )
    }

    /// Whether any result is beyond a critical limit.
    pub fn has_critical(&self) -> bool {
        self.results.iter().any(|r| r.flag == ResultFlag::Critical)
    }

    /// Whether it asks for an electrocardiogram.
    pub fn has_test(&self, code: &str) -> bool {
        self.tests.iter().any(|t| t.as_str() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LabOrderStatus as S;

    const T0: Timestamp = Timestamp::constant(1_796_000_000, 0);

    fn order(status: LabOrderStatus) -> LabOrder {
        let new = NewLabOrder {
            patient_id: PatientId::generate(),
            tests: vec![LabCode::parse("cbc").expect("valid")],
            priority: LabPriority::Routine,
            clinical_question: Text::line("Anaemia?", 100).expect("valid"),
        };
        LabOrder {
            status,
            ..LabOrder::place(new, UserId::generate(), T0)
        }
    }

    type Step = fn(&mut LabOrder) -> Result<(), LabTransitionError>;

    /// Each step, with the statuses it may start from and the status it leads to.
    fn steps() -> Vec<(&'static str, Step, Vec<LabOrderStatus>, LabOrderStatus)> {
        vec![
            (
                "schedule",
                |o| o.schedule(T0, T0),
                vec![S::Ordered, S::Scheduled],
                S::Scheduled,
            ),
            (
                "collect",
                |o| o.collect(T0),
                vec![S::Ordered, S::Scheduled],
                S::Collected,
            ),
            (
                "record results",
                |o| o.record_results(Vec::new(), None, UserId::generate(), T0),
                vec![S::Collected],
                S::Resulted,
            ),
            (
                "release",
                |o| o.release(None, T0),
                vec![S::Resulted],
                S::Released,
            ),
            (
                "cancel",
                |o| o.cancel(o.ordered_by, T0),
                vec![S::Ordered, S::Scheduled, S::Collected],
                S::Cancelled,
            ),
        ]
    }

    #[test]
    fn every_step_is_allowed_from_its_statuses_only() {
        for (name, step, from, to) in steps() {
            for status in S::ALL.iter().copied() {
                let mut o = order(status);
                let outcome = step(&mut o);
                if from.contains(&status) {
                    assert_eq!(outcome, Ok(()), "{name} from {status}");
                    assert_eq!(o.status, to, "{name} from {status}");
                } else {
                    assert_eq!(
                        outcome,
                        Err(LabTransitionError::NotFrom(status)),
                        "{name} from {status}"
                    );
                    assert_eq!(o.status, status, "{name} from {status} changed nothing");
                }
            }
        }
    }

    #[test]
    fn only_the_ordering_doctor_may_cancel() {
        let mut o = order(S::Ordered);
        assert_eq!(
            o.cancel(UserId::generate(), T0),
            Err(LabTransitionError::NotOrderer)
        );
        assert_eq!(o.status, S::Ordered);
    }

    #[test]
    fn a_release_by_the_delay_names_nobody() {
        let mut o = order(S::Resulted);
        o.release(None, T0).expect("resulted");
        assert_eq!((o.released_by, o.released_at), (None, Some(T0)));
    }

    #[test]
    fn files_are_accepted_from_collection_until_release() {
        for status in S::ALL.iter().copied() {
            assert_eq!(
                order(status).accepts_files(),
                matches!(status, S::Collected | S::Resulted),
                "{status}"
            );
        }
    }
}
