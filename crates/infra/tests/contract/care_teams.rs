//! `CareTeamRepository`: care-team memberships, added and ended once, apart from those that
//! bookings open.

use std::sync::Arc;

use jiff::SignedDuration;
use tokio::sync::Barrier;

use carehub_domain::audit::AuditAction;
use carehub_domain::identity::{Role, User, UserStatus};
use carehub_domain::patients::{AddMemberError, CareTeamMember, MembershipId};
use carehub_infra::Repositories;

use crate::fixtures::patients::{add_member, audit, end_membership, membership, register_named};
use crate::fixtures::scheduling::{appointment_audit, base, book, patient, secretary, span};
use crate::fixtures::{audited, create_user, doctor, micros, now};

contract!(
    care_team_members_are_added_once_ended_once_and_listed_oldest_first_with_names,
    of_concurrent_additions_of_one_doctor_exactly_one_succeeds,
    care_team_additions_and_ends_ignore_memberships_opened_by_appointments,
);

async fn care_team_members_are_added_once_ended_once_and_listed_oldest_first_with_names(
    repos: Repositories,
) {
    let house = doctor(&repos, "dr.house").await;
    let wilson = doctor(&repos, "dr.wilson").await;
    let admin = create_user(&repos, "admin", Role::Admin, UserStatus::Active).await;
    let patient = register_named(&repos, "Ada Lovelace", admin.id).await;
    let other = register_named(&repos, "Bo Peep", admin.id).await;
    let at = micros(now());

    let first = add_member(
        &repos,
        patient.id,
        house.id,
        at - SignedDuration::from_hours(3),
    )
    .await;
    let second = add_member(
        &repos,
        patient.id,
        wilson.id,
        at - SignedDuration::from_hours(2),
    )
    .await;
    add_member(&repos, other.id, house.id, at).await;

    let duplicate = membership(patient.id, house.id, at, admin.id);
    let refused = repos
        .care_teams
        .add(
            &duplicate,
            &audit(admin.id, patient.id, AuditAction::CareTeamAdd),
            &[],
        )
        .await;
    assert!(
        matches!(refused, Err(AddMemberError::AlreadyMember)),
        "{refused:?}"
    );

    let ended_at = at - SignedDuration::from_hours(1);
    let ended = repos
        .care_teams
        .end(
            patient.id,
            house.id,
            ended_at,
            admin.id,
            &audit(admin.id, patient.id, AuditAction::CareTeamEnd),
        )
        .await
        .unwrap();
    let first_ended = CareTeamMember {
        doctor_name: Some(house.full_name.clone()),
        ended_at: Some(ended_at),
        ended_by: Some(admin.id),
        ..first
    };
    assert_eq!(ended.as_ref(), Some(&first_ended));
    // Ending again finds no current membership and writes nothing.
    assert_eq!(end_membership(&repos, patient.id, house.id, at).await, None);
    let nobody = doctor(&repos, "dr.nobody").await;
    assert_eq!(
        end_membership(&repos, patient.id, nobody.id, at).await,
        None
    );

    // Once ended, the doctor may join again; history stays.
    let again = add_member(&repos, patient.id, house.id, at).await;
    let with_name = |member: CareTeamMember, user: &User| CareTeamMember {
        doctor_name: Some(user.full_name.clone()),
        ..member
    };
    assert_eq!(
        repos.care_teams.list(patient.id).await.unwrap(),
        vec![
            first_ended,
            with_name(second, &wilson),
            with_name(again, &house),
        ]
    );
    assert_eq!(repos.care_teams.list(other.id).await.unwrap().len(), 1);
    assert_eq!(
        audited(&repos, patient.id).await,
        [
            AuditAction::PatientCreate,
            AuditAction::CareTeamAdd,
            AuditAction::CareTeamAdd,
            AuditAction::CareTeamEnd,
            AuditAction::CareTeamAdd,
        ]
    );
}

async fn of_concurrent_additions_of_one_doctor_exactly_one_succeeds(repos: Repositories) {
    const RACERS: usize = 8;
    const ROUNDS: usize = 4;
    let house = doctor(&repos, "dr.house").await;
    let patient = register_named(&repos, "Ada Lovelace", house.id).await;
    for round in 0..ROUNDS {
        let start = Arc::new(Barrier::new(RACERS));
        let racers: Vec<_> = (0..RACERS)
            .map(|_| {
                let care_teams = Arc::clone(&repos.care_teams);
                let start = Arc::clone(&start);
                let member = membership(patient.id, house.id, now(), house.id);
                let event = audit(house.id, patient.id, AuditAction::CareTeamAdd);
                tokio::spawn(async move {
                    start.wait().await;
                    care_teams.add(&member, &event, &[]).await
                })
            })
            .collect();
        let mut added = 0;
        for racer in racers {
            match racer.await.unwrap() {
                Ok(_) => added += 1,
                Err(AddMemberError::AlreadyMember) => {}
                Err(e) => panic!("round {round}: a concurrent addition failed: {e}"),
            }
        }
        assert_eq!(added, 1, "round {round}: exactly one addition succeeds");
        let current = repos
            .care_teams
            .list(patient.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.ended_at.is_none())
            .count();
        assert_eq!(current, 1, "round {round}");
        end_membership(
            &repos,
            patient.id,
            house.id,
            now() + SignedDuration::from_secs(1),
        )
        .await
        .expect("the membership ends");
    }
    let adds = audited(&repos, patient.id)
        .await
        .into_iter()
        .filter(|a| *a == AuditAction::CareTeamAdd)
        .count();
    assert_eq!(adds, ROUNDS, "only the successful additions are audited");
}

// ---- Care teams, access and visit notes ------------------------------------------------------

async fn care_team_additions_and_ends_ignore_memberships_opened_by_appointments(
    repos: Repositories,
) {
    let house = doctor(&repos, "dr.house").await;
    let desk = secretary(&repos).await;
    let admin = create_user(&repos, "admin.cuddy", Role::Admin, UserStatus::Active).await;
    let ada = patient(&repos, &desk, "Ada Lovelace").await;
    let first = book(&repos, house.id, ada, span(base(), 60, 90), &desk).await;
    book(&repos, house.id, ada, span(base(), 120, 150), &desk).await;

    // Two open appointment memberships do not make the doctor a member already.
    let member = CareTeamMember {
        id: MembershipId::generate(),
        patient_id: ada,
        doctor_id: house.id,
        doctor_name: None,
        started_at: micros(now()),
        ended_at: None,
        added_by: admin.id,
        ended_by: None,
        referral_id: None,
        appointment_id: None,
    };
    repos
        .care_teams
        .add(
            &member,
            &appointment_audit(&admin, ada, AuditAction::CareTeamAdd),
            &[],
        )
        .await
        .unwrap();
    let again = CareTeamMember {
        id: MembershipId::generate(),
        ..member.clone()
    };
    let twice = repos
        .care_teams
        .add(
            &again,
            &appointment_audit(&admin, ada, AuditAction::CareTeamAdd),
            &[],
        )
        .await;
    assert!(
        matches!(twice, Err(AddMemberError::AlreadyMember)),
        "{twice:?}"
    );

    // Ending ends the membership added by hand, and only it.
    let at = micros(now());
    let ended = repos
        .care_teams
        .end(
            ada,
            house.id,
            at,
            admin.id,
            &appointment_audit(&admin, ada, AuditAction::CareTeamEnd),
        )
        .await
        .unwrap()
        .expect("the added membership ends");
    assert_eq!(ended.id, member.id);
    assert_eq!(ended.appointment_id, None);
    let none_left = repos
        .care_teams
        .end(
            ada,
            house.id,
            at,
            admin.id,
            &appointment_audit(&admin, ada, AuditAction::CareTeamEnd),
        )
        .await
        .unwrap();
    assert_eq!(none_left, None);
    let team = repos.care_teams.list(ada).await.unwrap();
    assert_eq!(team.len(), 3);
    let open: Vec<_> = team.iter().filter(|m| m.ended_at.is_none()).collect();
    assert_eq!(open.len(), 2);
    assert!(open.iter().all(|m| m.appointment_id.is_some()));
    assert!(open.iter().any(|m| m.appointment_id == Some(first.id)));

    // And a new one may be added again beside them.
    repos
        .care_teams
        .add(
            &again,
            &appointment_audit(&admin, ada, AuditAction::CareTeamAdd),
            &[],
        )
        .await
        .unwrap();
}
