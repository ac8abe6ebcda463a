//! Appointments: a patient's booked time with a doctor. This module holds what an appointment's
//! status is, how it may change, and who may change it.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::audit::string_enum;
use crate::id::time_ordered_id;
use crate::text::{Text, TextError};
use crate::user::Role;

/// How long before the start a patient may still cancel their own appointment.
pub const PATIENT_CANCEL_NOTICE: Duration = Duration::hours(2);
/// The longest cancellation reason, in characters.
pub const MAX_CANCEL_REASON_CHARS: usize = 1_000;

time_ordered_id!(
    /// An appointment's identifier.
    AppointmentId
);

string_enum!(
    /// Where an appointment stands.
    AppointmentStatus, "appointment status" {
        /// Booked, the patient not yet arrived.
        Booked => "booked",
        /// The patient arrived.
        CheckedIn => "checked_in",
        /// The doctor is seeing the patient.
        InProgress => "in_progress",
        Completed => "completed",
        /// Called off, with a reason.
        Cancelled => "cancelled",
        /// The patient did not come.
        NoShow => "no_show",
    }
);

impl AppointmentStatus {
    /// Whether the appointment still holds its time: only these block the doctor's and the
    /// patient's calendars.
    pub const fn is_active(self) -> bool {
        matches!(
            self,
            AppointmentStatus::Booked
                | AppointmentStatus::CheckedIn
                | AppointmentStatus::InProgress
        )
    }

    /// Whether `self` may move to `to`: `booked` → `checked_in` → `in_progress` → `completed`;
    /// `booked` → `cancelled` | `no_show`; `checked_in` → `cancelled`.
    pub const fn may_become(self, to: AppointmentStatus) -> bool {
        use AppointmentStatus as S;
        matches!(
            (self, to),
            (S::Booked, S::CheckedIn | S::Cancelled | S::NoShow)
                | (S::CheckedIn, S::InProgress | S::Cancelled)
                | (S::InProgress, S::Completed)
        )
    }
}

/// Which statuses a role may set, whatever the appointment: a secretary checks patients in,
/// cancels and records no-shows; a doctor starts, completes and cancels; a patient only
/// cancels (their own, early enough: see [`check_status_change`]).
pub const fn role_may_set(role: Role, to: AppointmentStatus) -> bool {
    use AppointmentStatus as S;
    match role {
        Role::Secretary => matches!(to, S::CheckedIn | S::Cancelled | S::NoShow),
        Role::Doctor => matches!(to, S::InProgress | S::Completed | S::Cancelled),
        Role::Patient => matches!(to, S::Cancelled),
        Role::Admin | Role::Laboratory => false,
    }
}

/// Why a status change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusChangeError {
    /// The caller's role never sets this status (403).
    #[error("your role may not set an appointment to {0}")]
    Role(AppointmentStatus),
    /// The current status does not lead there (409).
    #[error("the appointment is {from}: it cannot become {to}")]
    NotFrom {
        from: AppointmentStatus,
        to: AppointmentStatus,
    },
    /// A patient cancels at least [`PATIENT_CANCEL_NOTICE`] before the start (422).
    #[error("an appointment can be cancelled online until 2 hours before it starts")]
    TooLate,
    /// Cancelling needs a reason (422).
    #[error("reason: {0}")]
    Reason(ReasonError),
    /// Only cancelling takes a reason (422).
    #[error("reason: only a cancellation takes a reason")]
    UnexpectedReason,
}

/// What is wrong with a cancellation reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReasonError {
    #[error("is required")]
    Missing,
    #[error(transparent)]
    Text(#[from] TextError),
}

/// Checks a status change by a caller of `role` (already known to be allowed to see the
/// appointment: its doctor, its patient, a secretary) and returns the validated reason, if the
/// change is a cancellation. Checked in this order: the role (403), the state machine (409),
/// the patient's notice (422), the reason (422).
///
/// # Errors
/// [`StatusChangeError`].
pub fn check_status_change(
    role: Role,
    from: AppointmentStatus,
    to: AppointmentStatus,
    reason: Option<&str>,
    start: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<Option<Text>, StatusChangeError> {
    if !role_may_set(role, to) {
        return Err(StatusChangeError::Role(to));
    }
    if !from.may_become(to) {
        return Err(StatusChangeError::NotFrom { from, to });
    }
    if role == Role::Patient && now > start - PATIENT_CANCEL_NOTICE {
        return Err(StatusChangeError::TooLate);
    }
    match (to, reason) {
        (AppointmentStatus::Cancelled, Some(raw)) => Text::multiline(raw, MAX_CANCEL_REASON_CHARS)
            .map(Some)
            .map_err(|e| StatusChangeError::Reason(e.into())),
        (AppointmentStatus::Cancelled, None) => {
            Err(StatusChangeError::Reason(ReasonError::Missing))
        }
        (_, Some(_)) => Err(StatusChangeError::UnexpectedReason),
        (_, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use time::macros::datetime;

    use AppointmentStatus as S;

    const NOW: OffsetDateTime = datetime!(2026-11-23 09:00 UTC);

    /// Every move of the state machine; any pair not listed is refused.
    const MOVES: &[(AppointmentStatus, AppointmentStatus)] = &[
        (S::Booked, S::CheckedIn),
        (S::Booked, S::Cancelled),
        (S::Booked, S::NoShow),
        (S::CheckedIn, S::InProgress),
        (S::CheckedIn, S::Cancelled),
        (S::InProgress, S::Completed),
    ];

    #[test]
    fn the_state_machine_is_exactly_the_listed_moves() {
        for from in S::ALL {
            for to in S::ALL {
                assert_eq!(
                    from.may_become(*to),
                    MOVES.contains(&(*from, *to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn only_booked_checked_in_and_in_progress_hold_their_time() {
        let active: Vec<_> = S::ALL.iter().filter(|s| s.is_active()).copied().collect();
        assert_eq!(active, [S::Booked, S::CheckedIn, S::InProgress]);
        for status in S::ALL.iter().filter(|s| !s.is_active()) {
            assert!(
                S::ALL.iter().all(|to| !status.may_become(*to)),
                "{status} is final"
            );
        }
    }

    #[test]
    fn each_role_sets_only_its_statuses() {
        #[rustfmt::skip]
        let table: &[(Role, &[AppointmentStatus])] = &[
            (Role::Secretary,  &[S::CheckedIn, S::Cancelled, S::NoShow]),
            (Role::Doctor,     &[S::InProgress, S::Completed, S::Cancelled]),
            (Role::Patient,    &[S::Cancelled]),
            (Role::Admin,      &[]),
            (Role::Laboratory, &[]),
        ];
        assert_eq!(table.len(), Role::ALL.len());
        for (role, allowed) in table {
            for to in S::ALL {
                assert_eq!(
                    role_may_set(*role, *to),
                    allowed.contains(to),
                    "{role} sets {to}"
                );
            }
        }
    }

    #[test]
    fn a_change_is_checked_for_role_then_state_then_notice_then_reason() {
        let start = NOW + Duration::hours(5);
        let check =
            |role, from, to, reason| check_status_change(role, from, to, reason, start, NOW);

        // The role first: a laboratory is refused even a move the machine refuses too.
        assert_eq!(
            check(Role::Laboratory, S::Completed, S::CheckedIn, None),
            Err(StatusChangeError::Role(S::CheckedIn))
        );
        assert_eq!(
            check(Role::Secretary, S::CheckedIn, S::InProgress, None),
            Err(StatusChangeError::Role(S::InProgress))
        );
        // Then the machine.
        assert_eq!(
            check(Role::Doctor, S::Booked, S::Completed, None),
            Err(StatusChangeError::NotFrom {
                from: S::Booked,
                to: S::Completed
            })
        );
        assert_eq!(
            check(Role::Secretary, S::Cancelled, S::Cancelled, Some("twice")),
            Err(StatusChangeError::NotFrom {
                from: S::Cancelled,
                to: S::Cancelled
            })
        );
        // Then the reason: required to cancel, refused otherwise.
        assert_eq!(
            check(Role::Secretary, S::Booked, S::Cancelled, None),
            Err(StatusChangeError::Reason(ReasonError::Missing))
        );
        assert!(matches!(
            check(Role::Secretary, S::Booked, S::Cancelled, Some("   ")),
            Err(StatusChangeError::Reason(ReasonError::Text(_)))
        ));
        assert_eq!(
            check(Role::Secretary, S::Booked, S::CheckedIn, Some("early")),
            Err(StatusChangeError::UnexpectedReason)
        );
        // And what passes.
        assert_eq!(
            check(Role::Secretary, S::Booked, S::CheckedIn, None),
            Ok(None)
        );
        assert_eq!(
            check(Role::Doctor, S::CheckedIn, S::InProgress, None),
            Ok(None)
        );
        assert_eq!(
            check(Role::Doctor, S::InProgress, S::Completed, None),
            Ok(None)
        );
        let reason = check(Role::Doctor, S::CheckedIn, S::Cancelled, Some(" Ill \n"))
            .expect("a doctor cancels")
            .expect("with its reason");
        assert_eq!(reason.as_str(), "Ill");
    }

    #[test]
    fn a_patient_cancels_until_two_hours_before_the_start() {
        let start = NOW + PATIENT_CANCEL_NOTICE;
        let cancel = |now| {
            check_status_change(
                Role::Patient,
                S::Booked,
                S::Cancelled,
                Some("Away"),
                start,
                now,
            )
        };
        assert!(cancel(NOW).is_ok(), "exactly two hours before");
        assert_eq!(
            cancel(NOW + Duration::seconds(1)),
            Err(StatusChangeError::TooLate)
        );
        assert_eq!(
            cancel(start + Duration::hours(1)),
            Err(StatusChangeError::TooLate)
        );
        // Staff are not bound by the notice.
        assert!(
            check_status_change(
                Role::Secretary,
                S::Booked,
                S::Cancelled,
                Some("Doctor ill"),
                start,
                start
            )
            .is_ok()
        );
        // A patient sets nothing else, however early.
        assert_eq!(
            check_status_change(Role::Patient, S::Booked, S::CheckedIn, None, start, NOW),
            Err(StatusChangeError::Role(S::CheckedIn))
        );
    }

    #[test]
    fn statuses_read_and_print_as_the_api_spells_them() {
        for status in S::ALL {
            assert_eq!(status.as_str().parse::<AppointmentStatus>(), Ok(*status));
        }
        assert_eq!(S::CheckedIn.to_string(), "checked_in");
        assert_eq!(S::NoShow.as_str(), "no_show");
        assert!("noshow".parse::<AppointmentStatus>().is_err());
    }
}
