//! Referrals: a doctor sends a patient, with the clinical information that matters, to another
//! doctor. This module holds what a referral is and how its status may change.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::audit::AuditEvent;
use crate::identity::{FullName, UserId};
use crate::jobs::NewJob;
use crate::kernel::{Page, PageRequest, RepositoryError, Text, string_enum};
use crate::notifications::{NewNotification, Notification};
use crate::patients::{CareTeamMember, MedicalRecord, Patient, PatientId};

pub use crate::kernel::ReferralId;

/// The longest reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// The longest clinical summary, in characters.
pub const MAX_SUMMARY_CHARS: usize = 20_000;
/// The longest decline reason or outcome note, in characters.
pub const MAX_NOTE_CHARS: usize = 5_000;

string_enum!(
    /// How soon the receiving doctor should act.
    Urgency, "urgency" {
        Routine => "routine",
        Urgent => "urgent",
        Emergency => "emergency",
    }
);

string_enum!(
    /// Where a referral stands.
    ReferralStatus, "referral status" {
        /// Sent and waiting for the recipient.
        Sent => "sent",
        /// The recipient took the patient on.
        Accepted => "accepted",
        /// The recipient turned it down, with a reason.
        Declined => "declined",
        /// The sender withdrew it before the recipient answered.
        Cancelled => "cancelled",
        /// The recipient finished with the patient, with an outcome note.
        Completed => "completed",
    }
);

impl ReferralStatus {
    /// Whether no further change is possible.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            ReferralStatus::Declined | ReferralStatus::Cancelled | ReferralStatus::Completed
        )
    }
}

/// Which side of a referral a doctor is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Party {
    Sender,
    Recipient,
}

/// A change of status someone asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transition {
    Accept,
    Decline,
    Cancel,
    Complete,
}

impl Transition {
    pub const ALL: [Transition; 4] = [
        Transition::Accept,
        Transition::Decline,
        Transition::Cancel,
        Transition::Complete,
    ];

    /// The only party that may ask for this change.
    pub const fn party(self) -> Party {
        match self {
            Transition::Cancel => Party::Sender,
            Transition::Accept | Transition::Decline | Transition::Complete => Party::Recipient,
        }
    }
}

/// Why a status change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The caller is on the wrong side of the referral for this change.
    #[error("only the referral's {} may do this", if matches!(.0, Party::Sender) { "sender" } else { "recipient" })]
    WrongParty(Party),
    /// The referral's status does not allow this change.
    #[error("the referral is {from}: it cannot be {to_verb}")]
    NotFrom {
        from: ReferralStatus,
        to_verb: &'static str,
    },
}

/// The state machine: `sent` → `accepted` | `declined` | `cancelled`; `accepted` →
/// `completed`. Only the recipient accepts, declines and completes; only the sender cancels.
///
/// # Errors
/// [`TransitionError::WrongParty`] when `party` may never ask for `transition`;
/// [`TransitionError::NotFrom`] when the current status does not allow it.
pub fn apply(
    from: ReferralStatus,
    party: Party,
    transition: Transition,
) -> Result<ReferralStatus, TransitionError> {
    if transition.party() != party {
        return Err(TransitionError::WrongParty(transition.party()));
    }
    let (to, verb) = match transition {
        Transition::Accept => (ReferralStatus::Accepted, "accepted"),
        Transition::Decline => (ReferralStatus::Declined, "declined"),
        Transition::Cancel => (ReferralStatus::Cancelled, "cancelled"),
        Transition::Complete => (ReferralStatus::Completed, "completed"),
    };
    let allowed = match transition {
        Transition::Accept | Transition::Decline | Transition::Cancel => {
            from == ReferralStatus::Sent
        }
        Transition::Complete => from == ReferralStatus::Accepted,
    };
    if allowed {
        Ok(to)
    } else {
        Err(TransitionError::NotFrom {
            from,
            to_verb: verb,
        })
    }
}

/// A new referral, every field valid, before it is checked against the care team and stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReferral {
    pub patient_id: PatientId,
    pub to_doctor_id: UserId,
    pub reason: Text,
    pub clinical_summary: Text,
    pub urgency: Urgency,
}

/// Why a patient is referred: 1 to 500 characters.
///
/// # Errors
/// The rule the text breaks.
pub fn parse_reason(raw: &str) -> Result<Text, crate::kernel::TextError> {
    Text::multiline(raw, MAX_REASON_CHARS)
}

/// What the receiving doctor needs to know: 1 to 20,000 characters.
///
/// # Errors
/// The rule the text breaks.
pub fn parse_summary(raw: &str) -> Result<Text, crate::kernel::TextError> {
    Text::multiline(raw, MAX_SUMMARY_CHARS)
}

/// A decline reason or an outcome note: 1 to 5,000 characters.
///
/// # Errors
/// The rule the text breaks.
pub fn parse_note(raw: &str) -> Result<Text, crate::kernel::TextError> {
    Text::multiline(raw, MAX_NOTE_CHARS)
}

/// A referral as both its doctors see it in their boxes. What was shared with it is in its
/// [`ReferralSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referral {
    pub id: ReferralId,
    pub patient_id: PatientId,
    /// The patient's name as it was when the referral was sent (from the snapshot), so that a
    /// box can be read without opening every referral.
    pub patient_name: String,
    pub from_doctor_id: UserId,
    /// Filled in when read back.
    pub from_doctor_name: Option<FullName>,
    pub to_doctor_id: UserId,
    /// Filled in when read back.
    pub to_doctor_name: Option<FullName>,
    pub reason: Text,
    pub urgency: Urgency,
    pub status: ReferralStatus,
    /// Why the recipient declined (status `declined`).
    pub decline_reason: Option<Text>,
    /// The recipient's outcome note (status `completed`).
    pub outcome: Option<Text>,
    pub created_at: Timestamp,
    /// When the status last changed (the sending time while `sent`).
    pub updated_at: Timestamp,
}

impl Referral {
    /// Which side of the referral `user` is on, if any.
    pub fn party_of(&self, user: UserId) -> Option<Party> {
        if user == self.from_doctor_id {
            Some(Party::Sender)
        } else if user == self.to_doctor_id {
            Some(Party::Recipient)
        } else {
            None
        }
    }
}

/// What the sender shared, frozen when the referral was sent: what the recipient reads is what
/// the sender sent, whatever changes in the record later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralSnapshot {
    pub clinical_summary: Text,
    /// The patient's profile as it was.
    pub patient: Patient,
    /// The patient's medical information as it was.
    pub medical: MedicalRecord,
}

/// A referral with what was shared; `snapshot` is `None` where the reader may no longer see it
/// (a recipient, once the referral was declined or cancelled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralDetail {
    pub referral: Referral,
    pub snapshot: Option<ReferralSnapshot>,
}

string_enum!(
    /// Which of a doctor's referrals to list.
    ReferralBox, "referral box" {
        /// Referrals sent to the doctor.
        Inbox => "inbox",
        /// Referrals the doctor sent.
        Outbox => "outbox",
    }
);

/// A listing of one doctor's referrals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReferralQuery {
    pub doctor_id: UserId,
    pub referral_box: ReferralBox,
    pub status: Option<ReferralStatus>,
}

/// A status change to store: it applies only if the referral is still `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub id: ReferralId,
    pub from: ReferralStatus,
    pub to: ReferralStatus,
    pub at: Timestamp,
    /// The decline reason or the outcome note.
    pub note: Option<Text>,
    /// On acceptance: the recipient's care-team membership to open, with the referral as its
    /// reason; not opened when the recipient already has a current membership.
    pub membership: Option<CareTeamMember>,
}

/// Stores referrals. Each change is written with its audit event and its notifications (and a
/// new referral with its jobs), in one transaction, and returns the notifications as stored
/// (numbered).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ReferralRepository: Send + Sync {
    /// # Errors
    /// [`RepositoryError`].
    async fn create(
        &self,
        referral: &Referral,
        snapshot: &ReferralSnapshot,
        audit: &AuditEvent,
        notifications: &[NewNotification],
        jobs: &[NewJob],
    ) -> Result<Vec<Notification>, RepositoryError>;

    /// The referral with the doctors' names, without its snapshot.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn find(&self, id: ReferralId) -> Result<Option<Referral>, RepositoryError>;

    /// The referral with the doctors' names, and its snapshot.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn find_detail(
        &self,
        id: ReferralId,
    ) -> Result<Option<(Referral, ReferralSnapshot)>, RepositoryError>;

    /// One doctor's referrals, newest first (by id, descending), with the doctors' names.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn list(
        &self,
        query: ReferralQuery,
        page: PageRequest<ReferralId>,
    ) -> Result<Page<Referral, ReferralId>, RepositoryError>;

    /// Applies `change` if the referral is still `change.from` (with the membership, audit
    /// event and notifications, in one transaction), and returns the stored notifications;
    /// `None` when its status is no longer `change.from` (and nothing was written).
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn change_status(
        &self,
        change: &StatusChange,
        audit: &AuditEvent,
        notifications: &[NewNotification],
    ) -> Result<Option<Vec<Notification>>, RepositoryError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    use ReferralStatus as S;
    use Transition as T;

    /// Every (status, transition) pair asked by the right party, and where it leads.
    #[rustfmt::skip]
    const TABLE: &[(ReferralStatus, Transition, Option<ReferralStatus>)] = &[
        (S::Sent,      T::Accept,   Some(S::Accepted)),
        (S::Sent,      T::Decline,  Some(S::Declined)),
        (S::Sent,      T::Cancel,   Some(S::Cancelled)),
        (S::Sent,      T::Complete, None),
        (S::Accepted,  T::Accept,   None),
        (S::Accepted,  T::Decline,  None),
        (S::Accepted,  T::Cancel,   None),
        (S::Accepted,  T::Complete, Some(S::Completed)),
        (S::Declined,  T::Accept,   None),
        (S::Declined,  T::Decline,  None),
        (S::Declined,  T::Cancel,   None),
        (S::Declined,  T::Complete, None),
        (S::Cancelled, T::Accept,   None),
        (S::Cancelled, T::Decline,  None),
        (S::Cancelled, T::Cancel,   None),
        (S::Cancelled, T::Complete, None),
        (S::Completed, T::Accept,   None),
        (S::Completed, T::Decline,  None),
        (S::Completed, T::Cancel,   None),
        (S::Completed, T::Complete, None),
    ];

    #[test]
    fn the_state_machine_is_exactly_the_table() {
        assert_eq!(
            TABLE.len(),
            ReferralStatus::ALL.len() * Transition::ALL.len()
        );
        for (from, transition, to) in TABLE {
            let outcome = apply(*from, transition.party(), *transition);
            match to {
                Some(to) => assert_eq!(outcome, Ok(*to), "{from} {transition:?}"),
                None => assert!(
                    matches!(outcome, Err(TransitionError::NotFrom { from: f, .. }) if f == *from),
                    "{from} {transition:?}: {outcome:?}"
                ),
            }
        }
    }

    #[test]
    fn only_the_recipient_answers_and_only_the_sender_cancels() {
        for from in ReferralStatus::ALL {
            for transition in Transition::ALL {
                let wrong = match transition.party() {
                    Party::Sender => Party::Recipient,
                    Party::Recipient => Party::Sender,
                };
                assert_eq!(
                    apply(*from, wrong, transition),
                    Err(TransitionError::WrongParty(transition.party())),
                    "{from} {transition:?} by {wrong:?}"
                );
            }
        }
        assert_eq!(T::Cancel.party(), Party::Sender);
        for answer in [T::Accept, T::Decline, T::Complete] {
            assert_eq!(answer.party(), Party::Recipient);
        }
    }

    #[test]
    fn final_statuses_allow_nothing() {
        for from in ReferralStatus::ALL.iter().filter(|s| s.is_final()) {
            for transition in Transition::ALL {
                assert!(apply(*from, transition.party(), transition).is_err());
            }
        }
        assert!(!S::Sent.is_final());
        assert!(!S::Accepted.is_final());
        let refused = apply(S::Accepted, Party::Sender, T::Cancel).expect_err("too late");
        assert_eq!(
            refused.to_string(),
            "the referral is accepted: it cannot be cancelled"
        );
        let wrong = apply(S::Sent, Party::Sender, T::Accept).expect_err("not theirs");
        assert_eq!(
            wrong.to_string(),
            "only the referral's recipient may do this"
        );
    }

    #[test]
    fn reasons_summaries_and_notes_have_their_lengths() {
        assert!(parse_reason("  ").is_err());
        assert!(parse_reason(&"r".repeat(MAX_REASON_CHARS)).is_ok());
        assert!(parse_reason(&"r".repeat(MAX_REASON_CHARS + 1)).is_err());
        assert!(parse_summary(&"x".repeat(MAX_SUMMARY_CHARS)).is_ok());
        assert!(parse_summary(&"x".repeat(MAX_SUMMARY_CHARS + 1)).is_err());
        assert!(parse_note("").is_err());
        assert!(parse_note(&"n".repeat(MAX_NOTE_CHARS)).is_ok());
    }
}
