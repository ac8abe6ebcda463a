//! The access policy: one pure function decides who may do what to a patient's data, from the
//! caller's role and their relationship to the patient. Nothing else grants access.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::identity::Role;
use crate::kernel::{PatientId, RepositoryError, UserId};

mod actor;

pub use actor::*;

/// What links a user to a patient at one instant, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccessFacts {
    /// The patient record is the user's own.
    pub is_own_record: bool,
    /// The user is currently on the patient's care team.
    pub on_care_team: bool,
    /// The user holds an unexpired emergency access to the patient.
    pub emergency_access: bool,
}

/// Reads how a user relates to a patient, for the policy to decide on.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AccessFactsRepository: Send + Sync {
    /// What links `user_id` to the patient at `at`; `None` when there is no such patient.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn access_facts(
        &self,
        patient_id: PatientId,
        user_id: UserId,
        at: OffsetDateTime,
    ) -> Result<Option<AccessFacts>, RepositoryError>;
}

/// What a caller attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Register a new patient.
    CreatePatient,
    /// List or search patients (what is returned is scoped separately, see [`search_scope`]).
    SearchPatients,
    /// Demographics, contact, identifiers, insurance, emergency contact, location.
    ReadProfile,
    UpdateProfile,
    ReadMedical,
    UpdateMedical,
    ReadNotes,
    WriteNote,
    ReadCareTeam,
    AddCareTeamMember,
    EndCareTeamMembership,
    /// Break the glass: take time-limited read access to a patient outside one's care team.
    RequestEmergencyAccess,
    /// Who accessed the patient's record.
    ReadAccessLog,
    /// Refer the patient to another doctor, sharing their record as it is.
    SendReferral,
    /// Book an appointment for the patient (which puts its doctor on the care team until it is
    /// over).
    BookAppointment,
}

impl Action {
    pub const ALL: [Action; 15] = [
        Action::CreatePatient,
        Action::SearchPatients,
        Action::ReadProfile,
        Action::UpdateProfile,
        Action::ReadMedical,
        Action::UpdateMedical,
        Action::ReadNotes,
        Action::WriteNote,
        Action::ReadCareTeam,
        Action::AddCareTeamMember,
        Action::EndCareTeamMembership,
        Action::RequestEmergencyAccess,
        Action::ReadAccessLog,
        Action::SendReferral,
        Action::BookAppointment,
    ];
}

/// How the caller relates to the patient, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Relationship {
    /// The record is the caller's own.
    OwnRecord,
    /// The caller is currently on the patient's care team.
    CareTeam,
    /// The caller holds an unexpired emergency access.
    EmergencyAccess,
    /// None of the above.
    None,
}

impl Relationship {
    pub const ALL: [Relationship; 4] = [
        Relationship::OwnRecord,
        Relationship::CareTeam,
        Relationship::EmergencyAccess,
        Relationship::None,
    ];

    /// The strongest relationship the stored facts establish.
    pub fn from_facts(facts: AccessFacts) -> Self {
        if facts.is_own_record {
            Relationship::OwnRecord
        } else if facts.on_care_team {
            Relationship::CareTeam
        } else if facts.emergency_access {
            Relationship::EmergencyAccess
        } else {
            Relationship::None
        }
    }
}

/// Why access was allowed; kept with each audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The role alone allows it (a secretary registering, an administrator managing teams).
    Role,
    OwnRecord,
    CareTeam,
    EmergencyAccess,
    /// The caller is a party to a referral of the patient (reading the referral and what it
    /// shared).
    Referral,
    /// The caller is the doctor of an appointment of the patient (reading and changing it).
    Appointment,
}

impl Basis {
    pub const fn as_str(self) -> &'static str {
        match self {
            Basis::Role => "role",
            Basis::OwnRecord => "own_record",
            Basis::CareTeam => "care_team",
            Basis::EmergencyAccess => "emergency_access",
            Basis::Referral => "referral",
            Basis::Appointment => "appointment",
        }
    }
}

impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Basis {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Basis::Role,
            Basis::OwnRecord,
            Basis::CareTeam,
            Basis::EmergencyAccess,
            Basis::Referral,
            Basis::Appointment,
        ]
        .into_iter()
        .find(|b| b.as_str() == s)
        .ok_or_else(|| format!("unknown basis: {s}"))
    }
}

/// The policy's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Allow(Basis),
    /// The role may never do this: answered 403.
    Forbidden,
    /// The role could, but not on this patient: answered 404, so that whether the patient
    /// exists is not disclosed.
    Hidden,
}

impl Decision {
    pub const fn is_allowed(self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

/// Decides whether a caller of `role`, related to the patient by `relationship`, may do
/// `action`. For [`Action::CreatePatient`] and [`Action::SearchPatients`] the relationship is
/// irrelevant (pass [`Relationship::None`]).
///
/// - Secretary: registers patients and reads and updates their profile (demographics, contact,
///   identifiers, insurance), and books their appointments, any patient; never medical
///   information or notes.
/// - Doctor: registers patients; reads and updates everything, writes notes and sends referrals
///   for patients whose care team they are on, and adds other doctors to it. With an emergency access,
///   reads only. Books appointments with themself for their care-team patients. Other patients
///   only through search on an exact record number or identifier.
/// - Laboratory: nothing here.
/// - Patient: reads their own profile, medical information, notes and access log, and books
///   their own appointments.
/// - Admin: lists patients, manages care teams, reads access logs; never medical information
///   or notes.
pub fn decide(role: Role, relationship: Relationship, action: Action) -> Decision {
    use Action as A;
    use Relationship as R;
    match role {
        Role::Secretary => match action {
            A::CreatePatient
            | A::SearchPatients
            | A::ReadProfile
            | A::UpdateProfile
            | A::BookAppointment => Decision::Allow(Basis::Role),
            _ => Decision::Forbidden,
        },
        Role::Doctor => match action {
            A::CreatePatient | A::SearchPatients | A::RequestEmergencyAccess => {
                Decision::Allow(Basis::Role)
            }
            A::ReadProfile | A::ReadMedical | A::ReadNotes | A::ReadCareTeam => {
                match relationship {
                    R::CareTeam => Decision::Allow(Basis::CareTeam),
                    R::EmergencyAccess => Decision::Allow(Basis::EmergencyAccess),
                    R::OwnRecord | R::None => Decision::Hidden,
                }
            }
            A::UpdateProfile | A::UpdateMedical | A::WriteNote | A::AddCareTeamMember => {
                match relationship {
                    R::CareTeam => Decision::Allow(Basis::CareTeam),
                    // The doctor already sees the patient: saying "not found" would be a lie,
                    // and an emergency access only ever grants reading.
                    R::EmergencyAccess => Decision::Forbidden,
                    R::OwnRecord | R::None => Decision::Hidden,
                }
            }
            // Referring shares the whole record: only a care-team doctor may, never under an
            // emergency access. Booking puts the doctor on the care team: an emergency access
            // is no way onto it.
            A::SendReferral | A::BookAppointment => match relationship {
                R::CareTeam => Decision::Allow(Basis::CareTeam),
                R::EmergencyAccess => Decision::Forbidden,
                R::OwnRecord | R::None => Decision::Hidden,
            },
            A::EndCareTeamMembership | A::ReadAccessLog => Decision::Forbidden,
        },
        Role::Patient => match action {
            A::ReadProfile
            | A::ReadMedical
            | A::ReadNotes
            | A::ReadAccessLog
            | A::BookAppointment => match relationship {
                R::OwnRecord => Decision::Allow(Basis::OwnRecord),
                R::CareTeam | R::EmergencyAccess | R::None => Decision::Hidden,
            },
            _ => Decision::Forbidden,
        },
        Role::Admin => match action {
            A::SearchPatients
            | A::ReadCareTeam
            | A::AddCareTeamMember
            | A::EndCareTeamMembership
            | A::ReadAccessLog => Decision::Allow(Basis::Role),
            _ => Decision::Forbidden,
        },
        Role::Laboratory => Decision::Forbidden,
    }
}

/// Which patients a search by a caller of `role` may return, or `None` when the role may not
/// search at all. Doctors see their care-team patients, and others only on an exact record
/// number or identifier match; secretaries and administrators see every patient (a search
/// result shows only what tells patients apart: record number, name, date of birth, sex).
pub const fn search_scope(role: Role) -> Option<SearchAccess> {
    match role {
        Role::Secretary | Role::Admin => Some(SearchAccess::All),
        Role::Doctor => Some(SearchAccess::CareTeamOrExactMatch),
        Role::Laboratory | Role::Patient => None,
    }
}

/// Whether a caller of `role` may edit a doctor's profile (specializations, biography,
/// appointment length): the doctor themself (`is_the_doctor`) or an administrator. Profiles are
/// not patient data.
pub const fn may_edit_profile(role: Role, is_the_doctor: bool) -> bool {
    match role {
        Role::Doctor => is_the_doctor,
        Role::Admin => true,
        Role::Secretary | Role::Laboratory | Role::Patient => false,
    }
}

/// Whether a caller of `role` may edit a doctor's weekly availability and time off: the doctor
/// themself (`is_the_doctor`), a secretary (who runs the calendars) or an administrator.
pub const fn may_edit_schedule(role: Role, is_the_doctor: bool) -> bool {
    match role {
        Role::Doctor => is_the_doctor,
        Role::Secretary | Role::Admin => true,
        Role::Laboratory | Role::Patient => false,
    }
}

/// See [`search_scope`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchAccess {
    All,
    CareTeamOrExactMatch,
}

#[cfg(test)]
mod tests {
    use super::*;

    use Action as A;
    use Decision::{Allow, Forbidden, Hidden};
    use Relationship as R;

    const SELF_: Decision = Allow(Basis::OwnRecord);
    const TEAM: Decision = Allow(Basis::CareTeam);
    const GLASS: Decision = Allow(Basis::EmergencyAccess);
    const ROLE: Decision = Allow(Basis::Role);

    /// Every (role, action) row, with the decision for each relationship in the order
    /// own record, care team, emergency access, none.
    #[rustfmt::skip]
    const TABLE: &[(Role, Action, [Decision; 4])] = &[
        // Secretary: profiles of anyone, nothing clinical.
        (Role::Secretary, A::CreatePatient,          [ROLE, ROLE, ROLE, ROLE]),
        (Role::Secretary, A::SearchPatients,         [ROLE, ROLE, ROLE, ROLE]),
        (Role::Secretary, A::ReadProfile,            [ROLE, ROLE, ROLE, ROLE]),
        (Role::Secretary, A::UpdateProfile,          [ROLE, ROLE, ROLE, ROLE]),
        (Role::Secretary, A::ReadMedical,            [Forbidden; 4]),
        (Role::Secretary, A::UpdateMedical,          [Forbidden; 4]),
        (Role::Secretary, A::ReadNotes,              [Forbidden; 4]),
        (Role::Secretary, A::WriteNote,              [Forbidden; 4]),
        (Role::Secretary, A::ReadCareTeam,           [Forbidden; 4]),
        (Role::Secretary, A::AddCareTeamMember,      [Forbidden; 4]),
        (Role::Secretary, A::EndCareTeamMembership,  [Forbidden; 4]),
        (Role::Secretary, A::RequestEmergencyAccess, [Forbidden; 4]),
        (Role::Secretary, A::ReadAccessLog,          [Forbidden; 4]),
        (Role::Secretary, A::SendReferral,           [Forbidden; 4]),
        (Role::Secretary, A::BookAppointment,        [ROLE, ROLE, ROLE, ROLE]),
        // Doctor: everything for their care team, reading under emergency access.
        (Role::Doctor, A::CreatePatient,          [ROLE, ROLE, ROLE, ROLE]),
        (Role::Doctor, A::SearchPatients,         [ROLE, ROLE, ROLE, ROLE]),
        (Role::Doctor, A::ReadProfile,            [Hidden, TEAM, GLASS, Hidden]),
        (Role::Doctor, A::UpdateProfile,          [Hidden, TEAM, Forbidden, Hidden]),
        (Role::Doctor, A::ReadMedical,            [Hidden, TEAM, GLASS, Hidden]),
        (Role::Doctor, A::UpdateMedical,          [Hidden, TEAM, Forbidden, Hidden]),
        (Role::Doctor, A::ReadNotes,              [Hidden, TEAM, GLASS, Hidden]),
        (Role::Doctor, A::WriteNote,              [Hidden, TEAM, Forbidden, Hidden]),
        (Role::Doctor, A::ReadCareTeam,           [Hidden, TEAM, GLASS, Hidden]),
        (Role::Doctor, A::AddCareTeamMember,      [Hidden, TEAM, Forbidden, Hidden]),
        (Role::Doctor, A::EndCareTeamMembership,  [Forbidden; 4]),
        (Role::Doctor, A::RequestEmergencyAccess, [ROLE, ROLE, ROLE, ROLE]),
        (Role::Doctor, A::ReadAccessLog,          [Forbidden; 4]),
        (Role::Doctor, A::SendReferral,           [Hidden, TEAM, Forbidden, Hidden]),
        (Role::Doctor, A::BookAppointment,        [Hidden, TEAM, Forbidden, Hidden]),
        // Laboratory: nothing.
        (Role::Laboratory, A::CreatePatient,          [Forbidden; 4]),
        (Role::Laboratory, A::SearchPatients,         [Forbidden; 4]),
        (Role::Laboratory, A::ReadProfile,            [Forbidden; 4]),
        (Role::Laboratory, A::UpdateProfile,          [Forbidden; 4]),
        (Role::Laboratory, A::ReadMedical,            [Forbidden; 4]),
        (Role::Laboratory, A::UpdateMedical,          [Forbidden; 4]),
        (Role::Laboratory, A::ReadNotes,              [Forbidden; 4]),
        (Role::Laboratory, A::WriteNote,              [Forbidden; 4]),
        (Role::Laboratory, A::ReadCareTeam,           [Forbidden; 4]),
        (Role::Laboratory, A::AddCareTeamMember,      [Forbidden; 4]),
        (Role::Laboratory, A::EndCareTeamMembership,  [Forbidden; 4]),
        (Role::Laboratory, A::RequestEmergencyAccess, [Forbidden; 4]),
        (Role::Laboratory, A::ReadAccessLog,          [Forbidden; 4]),
        (Role::Laboratory, A::SendReferral,           [Forbidden; 4]),
        (Role::Laboratory, A::BookAppointment,        [Forbidden; 4]),
        // Patient: reads their own record.
        (Role::Patient, A::CreatePatient,          [Forbidden; 4]),
        (Role::Patient, A::SearchPatients,         [Forbidden; 4]),
        (Role::Patient, A::ReadProfile,            [SELF_, Hidden, Hidden, Hidden]),
        (Role::Patient, A::UpdateProfile,          [Forbidden; 4]),
        (Role::Patient, A::ReadMedical,            [SELF_, Hidden, Hidden, Hidden]),
        (Role::Patient, A::UpdateMedical,          [Forbidden; 4]),
        (Role::Patient, A::ReadNotes,              [SELF_, Hidden, Hidden, Hidden]),
        (Role::Patient, A::WriteNote,              [Forbidden; 4]),
        (Role::Patient, A::ReadCareTeam,           [Forbidden; 4]),
        (Role::Patient, A::AddCareTeamMember,      [Forbidden; 4]),
        (Role::Patient, A::EndCareTeamMembership,  [Forbidden; 4]),
        (Role::Patient, A::RequestEmergencyAccess, [Forbidden; 4]),
        (Role::Patient, A::ReadAccessLog,          [SELF_, Hidden, Hidden, Hidden]),
        (Role::Patient, A::SendReferral,           [Forbidden; 4]),
        (Role::Patient, A::BookAppointment,        [SELF_, Hidden, Hidden, Hidden]),
        // Admin: care teams and the audit trail, never clinical data.
        (Role::Admin, A::CreatePatient,          [Forbidden; 4]),
        (Role::Admin, A::SearchPatients,         [ROLE, ROLE, ROLE, ROLE]),
        (Role::Admin, A::ReadProfile,            [Forbidden; 4]),
        (Role::Admin, A::UpdateProfile,          [Forbidden; 4]),
        (Role::Admin, A::ReadMedical,            [Forbidden; 4]),
        (Role::Admin, A::UpdateMedical,          [Forbidden; 4]),
        (Role::Admin, A::ReadNotes,              [Forbidden; 4]),
        (Role::Admin, A::WriteNote,              [Forbidden; 4]),
        (Role::Admin, A::ReadCareTeam,           [ROLE, ROLE, ROLE, ROLE]),
        (Role::Admin, A::AddCareTeamMember,      [ROLE, ROLE, ROLE, ROLE]),
        (Role::Admin, A::EndCareTeamMembership,  [ROLE, ROLE, ROLE, ROLE]),
        (Role::Admin, A::RequestEmergencyAccess, [Forbidden; 4]),
        (Role::Admin, A::ReadAccessLog,          [ROLE, ROLE, ROLE, ROLE]),
        (Role::Admin, A::SendReferral,           [Forbidden; 4]),
        (Role::Admin, A::BookAppointment,        [Forbidden; 4]),
    ];

    #[test]
    fn the_policy_is_exactly_the_table() {
        for (role, action, expected) in TABLE {
            for (relationship, want) in Relationship::ALL.iter().zip(expected) {
                assert_eq!(
                    decide(*role, *relationship, *action),
                    *want,
                    "{role} {action:?} with relationship {relationship:?}"
                );
            }
        }
    }

    #[test]
    fn the_table_covers_every_role_and_action() {
        assert_eq!(TABLE.len(), Role::ALL.len() * Action::ALL.len());
        for role in Role::ALL {
            for action in Action::ALL {
                assert_eq!(
                    TABLE
                        .iter()
                        .filter(|(r, a, _)| *r == role && *a == action)
                        .count(),
                    1,
                    "{role} {action:?}"
                );
            }
        }
    }

    #[test]
    fn no_role_but_doctor_and_patient_ever_reads_clinical_data() {
        for role in [Role::Secretary, Role::Laboratory, Role::Admin] {
            for action in [A::ReadMedical, A::ReadNotes, A::UpdateMedical, A::WriteNote] {
                for relationship in Relationship::ALL {
                    assert!(!decide(role, relationship, action).is_allowed());
                }
            }
        }
    }

    #[test]
    fn the_strongest_relationship_wins() {
        let all = AccessFacts {
            is_own_record: true,
            on_care_team: true,
            emergency_access: true,
        };
        assert_eq!(Relationship::from_facts(all), R::OwnRecord);
        let team_and_glass = AccessFacts {
            is_own_record: false,
            ..all
        };
        assert_eq!(Relationship::from_facts(team_and_glass), R::CareTeam);
        let glass = AccessFacts {
            emergency_access: true,
            ..AccessFacts::default()
        };
        assert_eq!(Relationship::from_facts(glass), R::EmergencyAccess);
        assert_eq!(Relationship::from_facts(AccessFacts::default()), R::None);
    }

    #[test]
    fn a_doctor_edits_their_own_profile_and_schedule_with_admins_and_secretaries_the_schedule() {
        // (role, profile [the doctor, another], schedule [the doctor, another])
        #[rustfmt::skip]
        let table: &[(Role, [bool; 2], [bool; 2])] = &[
            (Role::Doctor,     [true, false], [true, false]),
            (Role::Admin,      [true, true],  [true, true]),
            (Role::Secretary,  [false, false], [true, true]),
            (Role::Laboratory, [false, false], [false, false]),
            (Role::Patient,    [false, false], [false, false]),
        ];
        assert_eq!(table.len(), Role::ALL.len());
        for (role, profile, schedule) in table {
            for (i, is_the_doctor) in [true, false].into_iter().enumerate() {
                assert_eq!(
                    may_edit_profile(*role, is_the_doctor),
                    profile[i],
                    "{role} profile, the doctor: {is_the_doctor}"
                );
                assert_eq!(
                    may_edit_schedule(*role, is_the_doctor),
                    schedule[i],
                    "{role} schedule, the doctor: {is_the_doctor}"
                );
            }
        }
    }

    #[test]
    fn only_secretaries_admins_and_doctors_search() {
        assert_eq!(search_scope(Role::Secretary), Some(SearchAccess::All));
        assert_eq!(search_scope(Role::Admin), Some(SearchAccess::All));
        assert_eq!(
            search_scope(Role::Doctor),
            Some(SearchAccess::CareTeamOrExactMatch)
        );
        assert_eq!(search_scope(Role::Laboratory), None);
        assert_eq!(search_scope(Role::Patient), None);
    }
}
