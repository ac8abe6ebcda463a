//! `NotificationRepository`: numbering per recipient without gaps in commit order, storage with
//! the changes that cause them, the fan-out to active administrators, reading and marking.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::Barrier;
use uuid::Uuid;

use carehub_domain::audit::AuditAction;
use carehub_domain::identity::{Role, UserChanges, UserId, UserStatus};
use carehub_domain::notifications::{
    NewNotification, Notification, NotificationData, NotificationKind, NotificationQuery, Recipient,
};
use carehub_domain::patients::{
    AddMemberError, CareTeamMember, EmergencyAccess, EmergencyAccessId, EmergencyReason,
    MembershipId,
};
use carehub_infra::Repositories;

use crate::fixtures::referrals::{audit, notifications_of, register_patient};
use crate::fixtures::{create_user, doctor, micros, now};

contract!(
    a_notification_stored_once_for_a_key_is_never_stored_again_for_it,
    appended_notifications_are_numbered_per_recipient_from_one_and_read_back_whole,
    a_failed_append_stores_nothing_and_gives_its_ids_back,
    only_administrators_active_when_the_change_commits_are_notified,
    care_team_additions_and_emergency_accesses_store_their_notifications_and_a_refused_addition_none,
    listing_reads_after_an_id_only_the_unread_and_at_most_the_limit_in_id_order,
    marking_one_read_keeps_its_first_reading_time_and_only_for_its_recipient,
    marking_all_read_marks_only_the_recipients_unread_and_counts_them,
    eight_concurrent_writers_of_twenty_five_number_exactly_one_to_two_hundred_in_commit_order,
    concurrent_changes_notifying_several_recipients_in_any_order_lose_nothing,
    a_reader_that_saw_id_n_later_sees_every_new_id_above_n_and_no_gap,
    the_last_id_is_the_latest_committed_and_zero_before_any,
);

// ---- Fixtures --------------------------------------------------------------------------------

fn data(title: &str) -> NotificationData {
    NotificationData {
        title: title.to_owned(),
        ..NotificationData::default()
    }
}

fn to_user(user: UserId, title: &str) -> NewNotification {
    NewNotification {
        recipient: Recipient::User(user),
        kind: NotificationKind::ReferralReceived,
        data: data(title),
    }
}

fn to_admins(title: &str) -> NewNotification {
    NewNotification {
        recipient: Recipient::ActiveAdmins,
        kind: NotificationKind::EmergencyAccessUsed,
        data: data(title),
    }
}

async fn append(repos: &Repositories, notifications: &[NewNotification]) -> Vec<Notification> {
    repos
        .notifications
        .append(notifications, now())
        .await
        .expect("the notifications are stored")
}

fn ids(notifications: &[Notification]) -> Vec<i64> {
    notifications.iter().map(|n| n.id).collect()
}

async fn list(
    repos: &Repositories,
    recipient: UserId,
    after: Option<i64>,
    unread_only: bool,
    limit: u32,
) -> Vec<i64> {
    let listed = repos
        .notifications
        .list(NotificationQuery {
            recipient,
            after,
            unread_only,
            with_events: false,
            limit,
        })
        .await
        .unwrap();
    assert!(listed.iter().all(|n| n.recipient == recipient));
    ids(&listed)
}

async fn unread(repos: &Repositories, user: UserId) -> u64 {
    repos.notifications.unread_count(user).await.unwrap()
}

// ---- Tests -----------------------------------------------------------------------------------

async fn appended_notifications_are_numbered_per_recipient_from_one_and_read_back_whole(
    repos: Repositories,
) {
    let ann = doctor(&repos, "dr.ann").await;
    let bob = doctor(&repos, "dr.bob").await;
    let at = now();
    let full = NewNotification {
        recipient: Recipient::User(ann.id),
        kind: NotificationKind::CareTeamAdded,
        data: NotificationData {
            title: "Added to a care team by Dr Bob".into(),
            referral_id: Some(Uuid::now_v7()),
            patient_id: Some(Uuid::now_v7()),
            actor_id: Some(*bob.id.as_uuid()),
            emergency_access_id: Some(Uuid::now_v7()),
            appointment_id: Some(Uuid::now_v7()),
            lab_order_id: None,
            prescription_id: None,
            conversation_id: None,
            message_id: None,
            urgent: false,
        },
    };
    let stored = repos
        .notifications
        .append(
            &[full.clone(), to_user(bob.id, "b1"), to_user(ann.id, "a2")],
            at,
        )
        .await
        .unwrap();

    // In the order given, each recipient numbered from 1.
    assert_eq!(
        stored
            .iter()
            .map(|n| (n.recipient, n.id))
            .collect::<Vec<_>>(),
        [(ann.id, 1), (bob.id, 1), (ann.id, 2)]
    );
    assert_eq!(
        stored[0],
        Notification {
            id: 1,
            recipient: ann.id,
            kind: NotificationKind::CareTeamAdded,
            created_at: micros(at),
            read_at: None,
            data: full.data,
        }
    );
    assert_eq!(
        notifications_of(&repos, ann.id).await,
        [stored[0].clone(), stored[2].clone()]
    );
    assert_eq!(notifications_of(&repos, bob.id).await, [stored[1].clone()]);

    assert_eq!(ids(&append(&repos, &[to_user(ann.id, "a3")]).await), [3]);
    assert_eq!(ids(&append(&repos, &[to_user(bob.id, "b2")]).await), [2]);
    assert_eq!(append(&repos, &[]).await, vec![]);
    assert_eq!(unread(&repos, ann.id).await, 3);
    assert_eq!(unread(&repos, bob.id).await, 2);
}

async fn a_failed_append_stores_nothing_and_gives_its_ids_back(repos: Repositories) {
    let ann = doctor(&repos, "dr.ann").await;
    append(&repos, &[to_user(ann.id, "a1")]).await;
    // The unknown recipient sorts after Ann, so Ann's counter was bumped before the failure.
    let nobody = UserId::from_uuid(Uuid::max());
    let refused = repos
        .notifications
        .append(
            &[
                to_user(ann.id, "a2"),
                to_user(nobody, "lost"),
                to_user(ann.id, "a3"),
            ],
            now(),
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(list(&repos, ann.id, None, false, 500).await, [1]);
    assert_eq!(ids(&append(&repos, &[to_user(ann.id, "a2")]).await), [2]);
}

async fn only_administrators_active_when_the_change_commits_are_notified(repos: Repositories) {
    let admin = |name| create_user(&repos, name, Role::Admin, UserStatus::Active);
    let (alice, carol) = (admin("alice").await, admin("carol").await);
    let suspended = create_user(&repos, "sam", Role::Admin, UserStatus::Suspended).await;
    let pending = create_user(&repos, "pat", Role::Admin, UserStatus::Pending).await;
    let doctor = doctor(&repos, "dr.house").await;

    let stored = append(&repos, &[to_admins("broke the glass")]).await;
    let mut expected = vec![alice.id, carol.id];
    expected.sort_by_key(|id| *id.as_uuid());
    assert_eq!(
        stored.iter().map(|n| n.recipient).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(ids(&stored), [1, 1]);
    for user in [&suspended, &pending, &doctor] {
        assert_eq!(notifications_of(&repos, user.id).await, vec![]);
    }

    // Resolved anew at each change: Carol suspended, Sam reactivated.
    let status = |status| UserChanges {
        status: Some(status),
        ..UserChanges::default()
    };
    repos
        .users
        .update(carol.id, &status(UserStatus::Suspended))
        .await
        .unwrap();
    repos
        .users
        .update(suspended.id, &status(UserStatus::Active))
        .await
        .unwrap();
    let stored = append(&repos, &[to_user(alice.id, "direct"), to_admins("again")]).await;
    let mut got: Vec<(UserId, i64)> = stored.iter().map(|n| (n.recipient, n.id)).collect();
    got.sort_by_key(|(id, n)| (*id.as_uuid(), *n));
    let mut want = vec![(alice.id, 2), (alice.id, 3), (suspended.id, 1)];
    want.sort_by_key(|(id, n)| (*id.as_uuid(), *n));
    assert_eq!(got, want);
    // Alice's direct one was given first, so it was numbered first.
    assert_eq!(stored[0].recipient, alice.id);
    assert_eq!(stored[0].id, 2);
    assert_eq!(list(&repos, carol.id, None, false, 500).await, [1]);
    assert_eq!(
        list(&repos, pending.id, None, false, 500).await,
        [] as [i64; 0]
    );

    // Nobody to tell is not an error.
    for user in [&alice, &suspended] {
        repos
            .users
            .update(user.id, &status(UserStatus::Suspended))
            .await
            .unwrap();
    }
    assert_eq!(append(&repos, &[to_admins("nobody")]).await, vec![]);
}

async fn care_team_additions_and_emergency_accesses_store_their_notifications_and_a_refused_addition_none(
    repos: Repositories,
) {
    let house = doctor(&repos, "dr.house").await;
    let wilson = doctor(&repos, "dr.wilson").await;
    let admin = create_user(&repos, "alice", Role::Admin, UserStatus::Active).await;
    let patient = register_patient(&repos, house.id, &[house.id]).await;
    let member = CareTeamMember {
        id: MembershipId::generate(),
        patient_id: patient.id,
        doctor_id: wilson.id,
        doctor_name: None,
        started_at: micros(now()),
        ended_at: None,
        added_by: house.id,
        ended_by: None,
        referral_id: None,
        appointment_id: None,
    };
    let added = NewNotification {
        recipient: Recipient::User(wilson.id),
        kind: NotificationKind::CareTeamAdded,
        data: NotificationData {
            title: "Dr House added you to a care team".into(),
            patient_id: Some(*patient.id.as_uuid()),
            actor_id: Some(*house.id.as_uuid()),
            ..NotificationData::default()
        },
    };
    let event = audit(house.id, Some(patient.id), AuditAction::CareTeamAdd);
    let stored = repos
        .care_teams
        .add(&member, &event, std::slice::from_ref(&added))
        .await
        .unwrap();
    assert_eq!(
        stored,
        vec![Notification {
            id: 1,
            recipient: wilson.id,
            kind: NotificationKind::CareTeamAdded,
            created_at: event.at,
            read_at: None,
            data: added.data.clone(),
        }]
    );
    assert_eq!(notifications_of(&repos, wilson.id).await, stored);
    let team = repos.care_teams.list(patient.id).await.unwrap();
    assert_eq!(team[1].referral_id, None);

    // Already a member: refused, and the notification neither stored nor numbered.
    let again = CareTeamMember {
        id: MembershipId::generate(),
        ..member.clone()
    };
    let refused = repos
        .care_teams
        .add(
            &again,
            &audit(house.id, Some(patient.id), AuditAction::CareTeamAdd),
            std::slice::from_ref(&added),
        )
        .await;
    assert!(
        matches!(refused, Err(AddMemberError::AlreadyMember)),
        "{refused:?}"
    );
    assert_eq!(notifications_of(&repos, wilson.id).await, stored);
    assert_eq!(
        ids(&append(&repos, &[to_user(wilson.id, "next")]).await),
        [2]
    );

    // Breaking the glass tells every active administrator, in the grant's transaction.
    let cuddy = doctor(&repos, "dr.cuddy").await;
    let granted_at = micros(now());
    let access = EmergencyAccess {
        id: EmergencyAccessId::generate(),
        patient_id: patient.id,
        doctor_id: cuddy.id,
        doctor_name: None,
        reason: EmergencyReason::parse("Unconscious in the emergency room").unwrap(),
        granted_at,
        expires_at: granted_at + SignedDuration::from_hours(1),
    };
    let used = NewNotification {
        recipient: Recipient::ActiveAdmins,
        kind: NotificationKind::EmergencyAccessUsed,
        data: NotificationData {
            title: "Dr Cuddy used emergency access".into(),
            patient_id: Some(*patient.id.as_uuid()),
            actor_id: Some(*cuddy.id.as_uuid()),
            emergency_access_id: Some(*access.id.as_uuid()),
            ..NotificationData::default()
        },
    };
    let stored = repos
        .emergency_accesses
        .grant(
            &access,
            &audit(
                cuddy.id,
                Some(patient.id),
                AuditAction::EmergencyAccessGrant,
            ),
            std::slice::from_ref(&used),
        )
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].recipient, admin.id);
    assert_eq!(stored[0].data, used.data);
    assert_eq!(notifications_of(&repos, admin.id).await, stored);
    assert_eq!(notifications_of(&repos, cuddy.id).await, vec![]);
}

async fn listing_reads_after_an_id_only_the_unread_and_at_most_the_limit_in_id_order(
    repos: Repositories,
) {
    let ann = doctor(&repos, "dr.ann").await;
    let bob = doctor(&repos, "dr.bob").await;
    for i in 1..=10 {
        append(&repos, &[to_user(ann.id, &format!("a{i}"))]).await;
    }
    append(&repos, &[to_user(bob.id, "b1")]).await;
    for id in [2, 5] {
        repos
            .notifications
            .mark_read(ann.id, id, now())
            .await
            .unwrap()
            .unwrap();
    }

    assert_eq!(
        list(&repos, ann.id, None, false, 100).await,
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(
        list(&repos, ann.id, Some(0), false, 100).await,
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(
        list(&repos, ann.id, Some(3), false, 100).await,
        (4..=10).collect::<Vec<_>>()
    );
    assert_eq!(list(&repos, ann.id, None, false, 3).await, [1, 2, 3]);
    assert_eq!(list(&repos, ann.id, Some(8), false, 3).await, [9, 10]);
    assert_eq!(
        list(&repos, ann.id, Some(10), false, 3).await,
        [] as [i64; 0]
    );
    assert_eq!(
        list(&repos, ann.id, None, true, 100).await,
        [1, 3, 4, 6, 7, 8, 9, 10]
    );
    assert_eq!(list(&repos, ann.id, Some(3), true, 2).await, [4, 6]);
    assert_eq!(list(&repos, bob.id, None, false, 100).await, [1]);
    let strangers = UserId::generate();
    assert_eq!(
        list(&repos, strangers, None, false, 100).await,
        [] as [i64; 0]
    );
}

async fn marking_one_read_keeps_its_first_reading_time_and_only_for_its_recipient(
    repos: Repositories,
) {
    let ann = doctor(&repos, "dr.ann").await;
    let bob = doctor(&repos, "dr.bob").await;
    let stored = append(
        &repos,
        &[
            to_user(ann.id, "a1"),
            to_user(ann.id, "a2"),
            to_user(bob.id, "b1"),
        ],
    )
    .await;
    let first_read = now() + SignedDuration::from_secs(1);
    let read = repos
        .notifications
        .mark_read(ann.id, 1, first_read)
        .await
        .unwrap();
    assert_eq!(
        read,
        Some(Notification {
            read_at: Some(micros(first_read)),
            ..stored[0].clone()
        })
    );
    let again = repos
        .notifications
        .mark_read(ann.id, 1, first_read + SignedDuration::from_mins(5))
        .await
        .unwrap();
    assert_eq!(again, read);
    assert_eq!(notifications_of(&repos, ann.id).await[0], read.unwrap());

    // Bob's id 2 does not exist; Ann's id 2 is Ann's alone.
    assert_eq!(
        repos
            .notifications
            .mark_read(bob.id, 2, now())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        repos
            .notifications
            .mark_read(ann.id, 99, now())
            .await
            .unwrap(),
        None
    );
    assert_eq!(unread(&repos, ann.id).await, 1);
    assert_eq!(unread(&repos, bob.id).await, 1);
    let bobs = repos
        .notifications
        .mark_read(bob.id, 1, now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bobs.recipient, bob.id);
    assert_eq!(bobs.data.title, "b1");
    assert_eq!(unread(&repos, ann.id).await, 1);
    assert_eq!(unread(&repos, bob.id).await, 0);
}

async fn marking_all_read_marks_only_the_recipients_unread_and_counts_them(repos: Repositories) {
    let ann = doctor(&repos, "dr.ann").await;
    let bob = doctor(&repos, "dr.bob").await;
    for _ in 0..5 {
        append(&repos, &[to_user(ann.id, "a")]).await;
    }
    append(&repos, &[to_user(bob.id, "b"), to_user(bob.id, "b")]).await;
    let early = now();
    repos
        .notifications
        .mark_read(ann.id, 2, early)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unread(&repos, ann.id).await, 4);

    let later = early + SignedDuration::from_secs(30);
    assert_eq!(
        repos
            .notifications
            .mark_all_read(ann.id, later)
            .await
            .unwrap(),
        4
    );
    assert_eq!(unread(&repos, ann.id).await, 0);
    assert_eq!(unread(&repos, bob.id).await, 2);
    let read_at: Vec<Option<Timestamp>> = notifications_of(&repos, ann.id)
        .await
        .iter()
        .map(|n| n.read_at)
        .collect();
    let (early, later) = (Some(micros(early)), Some(micros(later)));
    assert_eq!(read_at, [later, early, later, later, later]);
    assert_eq!(
        repos
            .notifications
            .mark_all_read(ann.id, now())
            .await
            .unwrap(),
        0
    );
    assert_eq!(list(&repos, ann.id, None, true, 100).await, [] as [i64; 0]);
}

async fn eight_concurrent_writers_of_twenty_five_number_exactly_one_to_two_hundred_in_commit_order(
    repos: Repositories,
) {
    const WRITERS: usize = 8;
    const EACH: usize = 25;
    let ann = doctor(&repos, "dr.ann").await.id;
    let repos = Arc::new(repos);
    let start = Arc::new(Barrier::new(WRITERS));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let repos = Arc::clone(&repos);
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                let mut mine = Vec::with_capacity(EACH);
                for i in 0..EACH {
                    let stored = append(&repos, &[to_user(ann, &format!("{w}.{i}"))]).await;
                    mine.push(stored[0].id);
                }
                mine
            })
        })
        .collect();
    let mut all = BTreeSet::new();
    for writer in writers {
        let mine = writer.await.unwrap();
        // A writer's later commit always got a higher id.
        assert!(mine.windows(2).all(|w| w[0] < w[1]), "{mine:?}");
        for id in mine {
            assert!(all.insert(id), "id {id} given twice");
        }
    }
    let total = i64::try_from(WRITERS * EACH).unwrap();
    assert_eq!(all, (1..=total).collect::<BTreeSet<_>>());
    assert_eq!(
        list(&repos, ann, None, false, 500).await,
        (1..=total).collect::<Vec<_>>()
    );
    assert_eq!(unread(&repos, ann).await, 200);
}

async fn concurrent_changes_notifying_several_recipients_in_any_order_lose_nothing(
    repos: Repositories,
) {
    const WRITERS: usize = 8;
    const EACH: usize = 10;
    let ann = doctor(&repos, "dr.ann").await;
    let bob = doctor(&repos, "dr.bob").await;
    let carl = doctor(&repos, "dr.carl").await;
    let repos = Arc::new(repos);
    let start = Arc::new(Barrier::new(WRITERS));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let repos = Arc::clone(&repos);
            let start = Arc::clone(&start);
            // Each writer names the recipients in another order.
            let mut recipients = [ann.id, bob.id, carl.id];
            recipients.rotate_left(w % 3);
            if w % 2 == 1 {
                recipients.reverse();
            }
            tokio::spawn(async move {
                start.wait().await;
                for _ in 0..EACH {
                    let batch: Vec<NewNotification> =
                        recipients.iter().map(|r| to_user(*r, "x")).collect();
                    let stored = append(&repos, &batch).await;
                    let got: Vec<UserId> = stored.iter().map(|n| n.recipient).collect();
                    assert_eq!(got, recipients);
                }
            })
        })
        .collect();
    for writer in writers {
        tokio::time::timeout(StdDuration::from_secs(60), writer)
            .await
            .expect("no writer is stuck")
            .unwrap();
    }
    let total = i64::try_from(WRITERS * EACH).unwrap();
    for user in [&ann, &bob, &carl] {
        assert_eq!(
            list(&repos, user.id, None, false, 500).await,
            (1..=total).collect::<Vec<_>>()
        );
    }
}

async fn a_reader_that_saw_id_n_later_sees_every_new_id_above_n_and_no_gap(repos: Repositories) {
    const WRITERS: usize = 4;
    const EACH: usize = 50;
    let ann = doctor(&repos, "dr.ann").await.id;
    let total = i64::try_from(WRITERS * EACH).unwrap();
    let repos = Arc::new(repos);
    let start = Arc::new(Barrier::new(WRITERS + 1));
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let repos = Arc::clone(&repos);
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                for _ in 0..EACH {
                    append(&repos, &[to_user(ann, "x")]).await;
                }
            })
        })
        .collect();
    let reader = {
        let repos = Arc::clone(&repos);
        let start = Arc::clone(&start);
        tokio::spawn(async move {
            start.wait().await;
            let mut last = 0;
            let mut polls = 0;
            while last < total {
                let seen = list(&repos, ann, Some(last), false, 500).await;
                // What becomes visible after `last` always starts right after it, without a
                // gap: a later id is never committed before an earlier one.
                let expected: Vec<i64> = (last + 1..).take(seen.len()).collect();
                assert_eq!(seen, expected, "after {last}");
                last = seen.last().copied().unwrap_or(last);
                polls += 1;
                tokio::task::yield_now().await;
            }
            polls
        })
    };
    for writer in writers {
        writer.await.unwrap();
    }
    let polls = tokio::time::timeout(StdDuration::from_secs(60), reader)
        .await
        .expect("the reader caught up")
        .unwrap();
    assert!(polls >= 1);
}

async fn the_last_id_is_the_latest_committed_and_zero_before_any(repos: Repositories) {
    let ann = doctor(&repos, "dr.ann").await;
    let bob = doctor(&repos, "dr.bob").await;
    assert_eq!(repos.notifications.last_id(ann.id).await.unwrap(), 0);
    append(&repos, &[to_user(ann.id, "a1"), to_user(ann.id, "a2")]).await;
    append(&repos, &[to_user(bob.id, "b1")]).await;
    assert_eq!(repos.notifications.last_id(ann.id).await.unwrap(), 2);
    assert_eq!(repos.notifications.last_id(bob.id).await.unwrap(), 1);
    // Reading does not move it.
    repos
        .notifications
        .mark_all_read(ann.id, now())
        .await
        .unwrap();
    assert_eq!(repos.notifications.last_id(ann.id).await.unwrap(), 2);

    // Several at once: users without notifications are left out, across query chunks.
    let carl = doctor(&repos, "dr.carl").await;
    let mut asked: Vec<UserId> = (0..1_100).map(|_| UserId::generate()).collect();
    asked.insert(3, ann.id);
    asked.insert(700, bob.id);
    asked.push(carl.id);
    let mut found = repos.notifications.last_ids(&asked).await.unwrap();
    found.sort();
    let mut expected = vec![(ann.id, 2), (bob.id, 1)];
    expected.sort();
    assert_eq!(found, expected);
    assert_eq!(repos.notifications.last_ids(&[]).await.unwrap(), vec![]);
}

async fn a_notification_stored_once_for_a_key_is_never_stored_again_for_it(repos: Repositories) {
    use carehub_domain::notifications::{
        NewNotification, NotificationData, NotificationKind, Recipient,
    };

    let house = doctor(&repos, "dr.house").await;
    let reminder = NewNotification {
        recipient: Recipient::User(house.id),
        kind: NotificationKind::AppointmentReminder,
        data: NotificationData {
            title: "Reminder: your first appointment of the day is on Mon 7 Dec 2026 at 09:00"
                .into(),
            ..NotificationData::default()
        },
    };
    let at = micros(now());
    let first = repos
        .notifications
        .append_once(
            "appointment.reminder:x:1:7200",
            std::slice::from_ref(&reminder),
            at,
        )
        .await
        .unwrap()
        .expect("stored the first time");
    assert_eq!(first.len(), 1);
    assert_eq!(
        repos
            .notifications
            .find(house.id, first[0].id)
            .await
            .unwrap(),
        Some(first[0].clone())
    );
    let again = repos
        .notifications
        .append_once(
            "appointment.reminder:x:1:7200",
            std::slice::from_ref(&reminder),
            at,
        )
        .await
        .unwrap();
    assert_eq!(again, None);
    assert_eq!(repos.notifications.unread_count(house.id).await.unwrap(), 1);
    let other_key = repos
        .notifications
        .append_once("appointment.reminder:x:1:86400", &[reminder], at)
        .await
        .unwrap();
    assert!(other_key.is_some());
    assert_eq!(repos.notifications.find(house.id, 99).await.unwrap(), None);
}
