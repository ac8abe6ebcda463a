//! `EmailPreferenceRepository`, and the e-mail jobs that storing notifications enqueues in
//! the same transaction; and the approval's jobs, stored with the approval.

use jiff::Timestamp;

use carehub_domain::identity::{Email, Role, UserId, UserStatus};
use carehub_domain::jobs::{JobFilter, JobKind, NewJob, Task};
use carehub_domain::kernel::PageRequest;
use carehub_domain::notifications::{
    EmailPreferences, NewNotification, NotificationData, NotificationKind, Recipient,
};
use carehub_infra::Repositories;

use crate::fixtures::{create_user, doctor, now};

contract!(
    preferences_are_stored_whole_and_read_back,
    storing_a_chosen_notification_enqueues_its_email_in_the_same_transaction,
    a_rolled_back_change_leaves_no_email_job,
    an_approval_stores_its_jobs_and_only_a_pending_account_is_approved,
);

fn notification(recipient: UserId, kind: NotificationKind) -> NewNotification {
    NewNotification {
        recipient: Recipient::User(recipient),
        kind,
        data: NotificationData {
            title: "Urgent referral from Dr Someone".into(),
            ..NotificationData::default()
        },
    }
}

async fn email_jobs(repos: &Repositories) -> Vec<Task> {
    let filter = JobFilter {
        kind: Some(JobKind::NotificationEmail),
        state: None,
    };
    let page = repos
        .jobs
        .list(filter, PageRequest::first(100))
        .await
        .unwrap();
    page.items.into_iter().rev().map(|job| job.task).collect()
}

async fn preferences_are_stored_whole_and_read_back(repos: Repositories) {
    let user = doctor(&repos, "dr.mail").await;
    let initial = repos.email_preferences.get(user.id).await.unwrap().unwrap();
    assert_eq!(initial, EmailPreferences::new(user.email.clone(), []));

    let chosen = EmailPreferences::new(
        Some(Email::parse("other@clinic.example").unwrap()),
        [
            NotificationKind::ReferralReceived,
            NotificationKind::AppointmentBooked,
        ],
    );
    assert!(
        repos
            .email_preferences
            .replace(user.id, &chosen)
            .await
            .unwrap()
    );
    assert_eq!(
        repos.email_preferences.get(user.id).await.unwrap(),
        Some(chosen)
    );
    let found = repos.users.find_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(found.email.unwrap().as_str(), "other@clinic.example");

    let none = EmailPreferences::new(None, [NotificationKind::ReferralAccepted]);
    assert!(
        repos
            .email_preferences
            .replace(user.id, &none)
            .await
            .unwrap()
    );
    assert_eq!(
        repos.email_preferences.get(user.id).await.unwrap(),
        Some(none)
    );

    let unknown = UserId::generate();
    assert_eq!(repos.email_preferences.get(unknown).await.unwrap(), None);
    assert!(
        !repos
            .email_preferences
            .replace(unknown, &EmailPreferences::default())
            .await
            .unwrap()
    );
}

async fn storing_a_chosen_notification_enqueues_its_email_in_the_same_transaction(
    repos: Repositories,
) {
    let wants = doctor(&repos, "dr.wants").await;
    let no_address = doctor(&repos, "dr.noaddress").await;
    let other_kind = doctor(&repos, "dr.otherkind").await;
    let kinds = [NotificationKind::ReferralReceived];
    repos
        .email_preferences
        .replace(wants.id, &EmailPreferences::new(wants.email.clone(), kinds))
        .await
        .unwrap();
    repos
        .email_preferences
        .replace(no_address.id, &EmailPreferences::new(None, kinds))
        .await
        .unwrap();
    repos
        .email_preferences
        .replace(
            other_kind.id,
            &EmailPreferences::new(
                other_kind.email.clone(),
                [NotificationKind::ReferralAccepted],
            ),
        )
        .await
        .unwrap();

    let stored = repos
        .notifications
        .append(
            &[
                notification(wants.id, NotificationKind::ReferralReceived),
                notification(wants.id, NotificationKind::ReferralDeclined),
                notification(no_address.id, NotificationKind::ReferralReceived),
                notification(other_kind.id, NotificationKind::ReferralReceived),
                notification(wants.id, NotificationKind::ReferralReceived),
            ],
            now(),
        )
        .await
        .unwrap();
    let chosen: Vec<i64> = stored
        .iter()
        .filter(|n| n.recipient == wants.id && n.kind == NotificationKind::ReferralReceived)
        .map(|n| n.id)
        .collect();
    assert_eq!(chosen.len(), 2);
    assert_eq!(
        email_jobs(&repos).await,
        chosen
            .iter()
            .map(|&id| Task::NotificationEmail {
                recipient: wants.id,
                notification_id: id
            })
            .collect::<Vec<_>>()
    );
    // Unique per notification: the same e-mail enqueued again is not added.
    let again = Task::notification_email(wants.id, chosen[0], Timestamp::now());
    assert!(
        repos
            .jobs
            .enqueue(&[again], now())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_rolled_back_change_leaves_no_email_job(repos: Repositories) {
    let wants = doctor(&repos, "dr.rollback").await;
    repos
        .email_preferences
        .replace(
            wants.id,
            &EmailPreferences::new(wants.email.clone(), [NotificationKind::CareTeamAdded]),
        )
        .await
        .unwrap();
    // The second recipient does not exist: the change fails after the first's notification
    // was written, and rolls back whole. (That a job written in a transaction that rolls
    // back is gone is checked at the source, in `jobs::queue`'s own tests.)
    let failed = repos
        .notifications
        .append(
            &[
                notification(wants.id, NotificationKind::CareTeamAdded),
                notification(UserId::generate(), NotificationKind::CareTeamAdded),
            ],
            now(),
        )
        .await;
    assert!(failed.is_err());
    assert!(
        email_jobs(&repos).await.is_empty(),
        "no job without its change"
    );
    assert_eq!(repos.notifications.unread_count(wants.id).await.unwrap(), 0);

    // Committed: the job exists.
    repos
        .notifications
        .append(
            &[notification(wants.id, NotificationKind::CareTeamAdded)],
            now(),
        )
        .await
        .unwrap();
    assert_eq!(email_jobs(&repos).await.len(), 1);
}

async fn an_approval_stores_its_jobs_and_only_a_pending_account_is_approved(repos: Repositories) {
    let pending = create_user(&repos, "lab.pending", Role::Laboratory, UserStatus::Pending).await;
    let at = now();
    let job = NewJob::new(Task::AccountApprovedEmail { user: pending.id }, at);
    let approved = repos
        .users
        .approve(pending.id, at, std::slice::from_ref(&job))
        .await
        .unwrap()
        .expect("approved");
    assert_eq!(approved.status, UserStatus::Active);
    let stored = repos
        .jobs
        .get(job.id)
        .await
        .unwrap()
        .expect("the job is stored");
    assert_eq!(stored.task, Task::AccountApprovedEmail { user: pending.id });

    let twice = NewJob::new(Task::AccountApprovedEmail { user: pending.id }, at);
    let again = repos
        .users
        .approve(pending.id, at, std::slice::from_ref(&twice))
        .await
        .unwrap();
    assert_eq!(again, None, "an active account is not approved again");
    assert_eq!(
        repos.jobs.get(twice.id).await.unwrap(),
        None,
        "and its jobs are not stored"
    );
    assert_eq!(
        repos
            .users
            .approve(UserId::generate(), at, &[])
            .await
            .unwrap(),
        None
    );
}
