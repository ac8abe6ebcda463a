//! The access policy as a table: every role, action and relationship.

use super::*;

use Action as A;
use Decision::{Allow, Forbidden, Hidden};
use Relationship as R;

const SELF_: Decision = Allow(Basis::OwnRecord);
const TEAM: Decision = Allow(Basis::CareTeam);
const GLASS: Decision = Allow(Basis::EmergencyAccess);
const ROLE: Decision = Allow(Basis::Role);
const APPT: Decision = Allow(Basis::Appointment);
const REF: Decision = Allow(Basis::Referral);

/// Every (role, action) row, with the decision for each relationship in the order
/// own record, care team, emergency access, party, none.
#[rustfmt::skip]
const TABLE: &[(Role, Action, [Decision; 5])] = &[
    // Secretary: profiles of anyone, nothing clinical.
    (Role::Secretary, A::CreatePatient,          [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Secretary, A::SearchPatients,         [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Secretary, A::ReadProfile,            [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Secretary, A::UpdateProfile,          [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Secretary, A::ReadMedical,            [Forbidden; 5]),
    (Role::Secretary, A::UpdateMedical,          [Forbidden; 5]),
    (Role::Secretary, A::ReadNotes,              [Forbidden; 5]),
    (Role::Secretary, A::WriteNote,              [Forbidden; 5]),
    (Role::Secretary, A::ReadCareTeam,           [Forbidden; 5]),
    (Role::Secretary, A::AddCareTeamMember,      [Forbidden; 5]),
    (Role::Secretary, A::EndCareTeamMembership,  [Forbidden; 5]),
    (Role::Secretary, A::RequestEmergencyAccess, [Forbidden; 5]),
    (Role::Secretary, A::ReadAccessLog,          [Forbidden; 5]),
    (Role::Secretary, A::SendReferral,           [Forbidden; 5]),
    (Role::Secretary, A::BookAppointment,        [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Secretary, A::FindOwnRecord,          [Forbidden; 5]),
    (Role::Secretary, A::AccessReferral,         [Forbidden; 5]),
    (Role::Secretary, A::AccessAppointment,      [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Secretary, A::ListAppointments,       [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Secretary, A::WriteVisitNote,         [Forbidden; 5]),
    (Role::Secretary, A::EditDoctorProfile,      [Forbidden; 5]),
    (Role::Secretary, A::EditDoctorSchedule,     [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Secretary, A::ManageAccounts,         [Forbidden; 5]),
    (Role::Secretary, A::ReadAuditTrail,         [Forbidden; 5]),
    (Role::Secretary, A::ReadEmergencyAccesses,  [Forbidden; 5]),
    (Role::Secretary, A::ManageJobs,             [Forbidden; 5]),
    (Role::Secretary, A::ReadReports,            [Forbidden; 5]),
    (Role::Secretary, A::OrderLabTests,          [Forbidden; 5]),
    (Role::Secretary, A::AccessLabOrder,         [Forbidden; 5]),
    (Role::Secretary, A::ProcessLabOrder,        [Forbidden; 5]),
    (Role::Secretary, A::ReleaseLabResults,      [Forbidden; 5]),
    (Role::Secretary, A::ReadLabCatalogue,       [Forbidden; 5]),
    (Role::Secretary, A::ManageLabCatalogue,     [Forbidden; 5]),
    (Role::Secretary, A::Prescribe,              [Forbidden; 5]),
    (Role::Secretary, A::ReadPrescriptions,      [Forbidden; 5]),
    (Role::Secretary, A::Message,                [Forbidden; 5]),
    (Role::Secretary, A::GiveFeedback,           [Forbidden; 5]),
    (Role::Secretary, A::ReadFeedback,           [Forbidden; 5]),
    (Role::Secretary, A::ModerateFeedback,       [Forbidden; 5]),
    (Role::Secretary, A::JoinCall,               [Forbidden; 5]),
    // Doctor: everything for their care team, reading under emergency access.
    (Role::Doctor, A::CreatePatient,          [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Doctor, A::SearchPatients,         [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Doctor, A::ReadProfile,            [Hidden, TEAM, GLASS, Hidden, Hidden]),
    (Role::Doctor, A::UpdateProfile,          [Hidden, TEAM, Forbidden, Hidden, Hidden]),
    (Role::Doctor, A::ReadMedical,            [Hidden, TEAM, GLASS, Hidden, Hidden]),
    (Role::Doctor, A::UpdateMedical,          [Hidden, TEAM, Forbidden, Hidden, Hidden]),
    (Role::Doctor, A::ReadNotes,              [Hidden, TEAM, GLASS, Hidden, Hidden]),
    (Role::Doctor, A::WriteNote,              [Hidden, TEAM, Forbidden, Hidden, Hidden]),
    (Role::Doctor, A::ReadCareTeam,           [Hidden, TEAM, GLASS, Hidden, Hidden]),
    (Role::Doctor, A::AddCareTeamMember,      [Hidden, TEAM, Forbidden, Hidden, Hidden]),
    (Role::Doctor, A::EndCareTeamMembership,  [Forbidden; 5]),
    (Role::Doctor, A::RequestEmergencyAccess, [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Doctor, A::ReadAccessLog,          [Forbidden; 5]),
    (Role::Doctor, A::SendReferral,           [Hidden, TEAM, Forbidden, Hidden, Hidden]),
    (Role::Doctor, A::BookAppointment,        [Hidden, TEAM, Forbidden, Hidden, Hidden]),
    (Role::Doctor, A::FindOwnRecord,          [Forbidden; 5]),
    (Role::Doctor, A::AccessReferral,         [Hidden, Hidden, Hidden, REF, Hidden]),
    (Role::Doctor, A::AccessAppointment,      [Hidden, Hidden, Hidden, APPT, Hidden]),
    (Role::Doctor, A::ListAppointments,       [Forbidden, Forbidden, Forbidden, APPT, Forbidden]),
    (Role::Doctor, A::WriteVisitNote,         [Hidden, Hidden, Hidden, APPT, Hidden]),
    (Role::Doctor, A::EditDoctorProfile,      [SELF_, Forbidden, Forbidden, Forbidden, Forbidden]),
    (Role::Doctor, A::EditDoctorSchedule,     [SELF_, Forbidden, Forbidden, Forbidden, Forbidden]),
    (Role::Doctor, A::ManageAccounts,         [Forbidden; 5]),
    (Role::Doctor, A::ReadAuditTrail,         [Forbidden; 5]),
    (Role::Doctor, A::ReadEmergencyAccesses,  [Forbidden; 5]),
    (Role::Doctor, A::ManageJobs,             [Forbidden; 5]),
    (Role::Doctor, A::ReadReports,            [Forbidden; 5]),
    (Role::Doctor, A::OrderLabTests,          [Hidden, TEAM, Forbidden, Hidden, Hidden]),
    (Role::Doctor, A::AccessLabOrder,         [Hidden, TEAM, GLASS, Hidden, Hidden]),
    (Role::Doctor, A::ProcessLabOrder,        [Forbidden; 5]),
    (Role::Doctor, A::ReleaseLabResults,      [Hidden, TEAM, Forbidden, Hidden, Hidden]),
    (Role::Doctor, A::ReadLabCatalogue,       [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Doctor, A::ManageLabCatalogue,     [Forbidden; 5]),
    (Role::Doctor, A::Prescribe,              [Hidden, TEAM, Forbidden, Hidden, Hidden]),
    (Role::Doctor, A::ReadPrescriptions,      [Hidden, TEAM, GLASS, Hidden, Hidden]),
    (Role::Doctor, A::Message,                [Hidden, TEAM, Forbidden, REF, Hidden]),
    (Role::Doctor, A::GiveFeedback,           [Forbidden; 5]),
    (Role::Doctor, A::ReadFeedback,           [SELF_, Forbidden, Forbidden, Forbidden, Forbidden]),
    (Role::Doctor, A::ModerateFeedback,       [Forbidden; 5]),
    (Role::Doctor, A::JoinCall,               [Hidden, Hidden, Hidden, APPT, Hidden]),
    // Laboratory: nothing.
    (Role::Laboratory, A::CreatePatient,          [Forbidden; 5]),
    (Role::Laboratory, A::SearchPatients,         [Forbidden; 5]),
    (Role::Laboratory, A::ReadProfile,            [Forbidden; 5]),
    (Role::Laboratory, A::UpdateProfile,          [Forbidden; 5]),
    (Role::Laboratory, A::ReadMedical,            [Forbidden; 5]),
    (Role::Laboratory, A::UpdateMedical,          [Forbidden; 5]),
    (Role::Laboratory, A::ReadNotes,              [Forbidden; 5]),
    (Role::Laboratory, A::WriteNote,              [Forbidden; 5]),
    (Role::Laboratory, A::ReadCareTeam,           [Forbidden; 5]),
    (Role::Laboratory, A::AddCareTeamMember,      [Forbidden; 5]),
    (Role::Laboratory, A::EndCareTeamMembership,  [Forbidden; 5]),
    (Role::Laboratory, A::RequestEmergencyAccess, [Forbidden; 5]),
    (Role::Laboratory, A::ReadAccessLog,          [Forbidden; 5]),
    (Role::Laboratory, A::SendReferral,           [Forbidden; 5]),
    (Role::Laboratory, A::BookAppointment,        [Forbidden; 5]),
    (Role::Laboratory, A::FindOwnRecord,          [Forbidden; 5]),
    (Role::Laboratory, A::AccessReferral,         [Forbidden; 5]),
    (Role::Laboratory, A::AccessAppointment,      [Forbidden; 5]),
    (Role::Laboratory, A::ListAppointments,       [Forbidden; 5]),
    (Role::Laboratory, A::WriteVisitNote,         [Forbidden; 5]),
    (Role::Laboratory, A::EditDoctorProfile,      [Forbidden; 5]),
    (Role::Laboratory, A::EditDoctorSchedule,     [Forbidden; 5]),
    (Role::Laboratory, A::ManageAccounts,         [Forbidden; 5]),
    (Role::Laboratory, A::ReadAuditTrail,         [Forbidden; 5]),
    (Role::Laboratory, A::ReadEmergencyAccesses,  [Forbidden; 5]),
    (Role::Laboratory, A::ManageJobs,             [Forbidden; 5]),
    (Role::Laboratory, A::ReadReports,            [Forbidden; 5]),
    (Role::Laboratory, A::OrderLabTests,          [Forbidden; 5]),
    (Role::Laboratory, A::AccessLabOrder,         [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Laboratory, A::ProcessLabOrder,        [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Laboratory, A::ReleaseLabResults,      [Forbidden; 5]),
    (Role::Laboratory, A::ReadLabCatalogue,       [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Laboratory, A::ManageLabCatalogue,     [Forbidden; 5]),
    (Role::Laboratory, A::Prescribe,              [Forbidden; 5]),
    (Role::Laboratory, A::ReadPrescriptions,      [Forbidden; 5]),
    (Role::Laboratory, A::Message,                [Forbidden; 5]),
    (Role::Laboratory, A::GiveFeedback,           [Forbidden; 5]),
    (Role::Laboratory, A::ReadFeedback,           [Forbidden; 5]),
    (Role::Laboratory, A::ModerateFeedback,       [Forbidden; 5]),
    (Role::Laboratory, A::JoinCall,               [Forbidden; 5]),
    // Patient: reads their own record.
    (Role::Patient, A::CreatePatient,          [Forbidden; 5]),
    (Role::Patient, A::SearchPatients,         [Forbidden; 5]),
    (Role::Patient, A::ReadProfile,            [SELF_, Hidden, Hidden, Hidden, Hidden]),
    (Role::Patient, A::UpdateProfile,          [Forbidden; 5]),
    (Role::Patient, A::ReadMedical,            [SELF_, Hidden, Hidden, Hidden, Hidden]),
    (Role::Patient, A::UpdateMedical,          [Forbidden; 5]),
    (Role::Patient, A::ReadNotes,              [SELF_, Hidden, Hidden, Hidden, Hidden]),
    (Role::Patient, A::WriteNote,              [Forbidden; 5]),
    (Role::Patient, A::ReadCareTeam,           [Forbidden; 5]),
    (Role::Patient, A::AddCareTeamMember,      [Forbidden; 5]),
    (Role::Patient, A::EndCareTeamMembership,  [Forbidden; 5]),
    (Role::Patient, A::RequestEmergencyAccess, [Forbidden; 5]),
    (Role::Patient, A::ReadAccessLog,          [SELF_, Hidden, Hidden, Hidden, Hidden]),
    (Role::Patient, A::SendReferral,           [Forbidden; 5]),
    (Role::Patient, A::BookAppointment,        [SELF_, Hidden, Hidden, Hidden, Hidden]),
    (Role::Patient, A::FindOwnRecord,          [SELF_, Hidden, Hidden, Hidden, Hidden]),
    (Role::Patient, A::AccessReferral,         [Forbidden; 5]),
    (Role::Patient, A::AccessAppointment,      [SELF_, Hidden, Hidden, Hidden, Hidden]),
    (Role::Patient, A::ListAppointments,       [SELF_, Forbidden, Forbidden, Forbidden, Forbidden]),
    (Role::Patient, A::WriteVisitNote,         [Forbidden; 5]),
    (Role::Patient, A::EditDoctorProfile,      [Forbidden; 5]),
    (Role::Patient, A::EditDoctorSchedule,     [Forbidden; 5]),
    (Role::Patient, A::ManageAccounts,         [Forbidden; 5]),
    (Role::Patient, A::ReadAuditTrail,         [Forbidden; 5]),
    (Role::Patient, A::ReadEmergencyAccesses,  [Forbidden; 5]),
    (Role::Patient, A::ManageJobs,             [Forbidden; 5]),
    (Role::Patient, A::ReadReports,            [Forbidden; 5]),
    (Role::Patient, A::OrderLabTests,          [Forbidden; 5]),
    (Role::Patient, A::AccessLabOrder,         [SELF_, Hidden, Hidden, Hidden, Hidden]),
    (Role::Patient, A::ProcessLabOrder,        [Forbidden; 5]),
    (Role::Patient, A::ReleaseLabResults,      [Forbidden; 5]),
    (Role::Patient, A::ReadLabCatalogue,       [Forbidden; 5]),
    (Role::Patient, A::ManageLabCatalogue,     [Forbidden; 5]),
    (Role::Patient, A::Prescribe,              [Forbidden; 5]),
    (Role::Patient, A::ReadPrescriptions,      [SELF_, Hidden, Hidden, Hidden, Hidden]),
    (Role::Patient, A::Message,                [SELF_, Hidden, Hidden, Hidden, Hidden]),
    (Role::Patient, A::GiveFeedback,           [SELF_, Hidden, Hidden, Hidden, Hidden]),
    (Role::Patient, A::ReadFeedback,           [Forbidden; 5]),
    (Role::Patient, A::ModerateFeedback,       [Forbidden; 5]),
    (Role::Patient, A::JoinCall,               [SELF_, Hidden, Hidden, Hidden, Hidden]),
    // Admin: care teams and the audit trail, never clinical data.
    (Role::Admin, A::CreatePatient,          [Forbidden; 5]),
    (Role::Admin, A::SearchPatients,         [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Admin, A::ReadProfile,            [Forbidden; 5]),
    (Role::Admin, A::UpdateProfile,          [Forbidden; 5]),
    (Role::Admin, A::ReadMedical,            [Forbidden; 5]),
    (Role::Admin, A::UpdateMedical,          [Forbidden; 5]),
    (Role::Admin, A::ReadNotes,              [Forbidden; 5]),
    (Role::Admin, A::WriteNote,              [Forbidden; 5]),
    (Role::Admin, A::ReadCareTeam,           [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Admin, A::AddCareTeamMember,      [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Admin, A::EndCareTeamMembership,  [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Admin, A::RequestEmergencyAccess, [Forbidden; 5]),
    (Role::Admin, A::ReadAccessLog,          [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Admin, A::SendReferral,           [Forbidden; 5]),
    (Role::Admin, A::BookAppointment,        [Forbidden; 5]),
    (Role::Admin, A::FindOwnRecord,          [Forbidden; 5]),
    (Role::Admin, A::AccessReferral,         [Forbidden; 5]),
    (Role::Admin, A::AccessAppointment,      [Forbidden; 5]),
    (Role::Admin, A::ListAppointments,       [Forbidden; 5]),
    (Role::Admin, A::WriteVisitNote,         [Forbidden; 5]),
    (Role::Admin, A::EditDoctorProfile,      [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Admin, A::EditDoctorSchedule,     [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Admin, A::ManageAccounts,         [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Admin, A::ReadAuditTrail,         [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Admin, A::ReadEmergencyAccesses,  [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Admin, A::ManageJobs,             [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Admin, A::ReadReports,            [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Admin, A::OrderLabTests,          [Forbidden; 5]),
    (Role::Admin, A::AccessLabOrder,         [Forbidden; 5]),
    (Role::Admin, A::ProcessLabOrder,        [Forbidden; 5]),
    (Role::Admin, A::ReleaseLabResults,      [Forbidden; 5]),
    (Role::Admin, A::ReadLabCatalogue,       [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Admin, A::ManageLabCatalogue,     [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Admin, A::Prescribe,              [Forbidden; 5]),
    (Role::Admin, A::ReadPrescriptions,      [Forbidden; 5]),
    (Role::Admin, A::Message,                [Forbidden; 5]),
    (Role::Admin, A::GiveFeedback,           [Forbidden; 5]),
    (Role::Admin, A::ReadFeedback,           [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Admin, A::ModerateFeedback,       [ROLE, ROLE, ROLE, ROLE, ROLE]),
    (Role::Admin, A::JoinCall,               [Forbidden; 5]),
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
