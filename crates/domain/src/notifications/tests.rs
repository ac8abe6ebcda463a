//! Unit tests of [`NotificationService`], with a mockall double of its repository: every
//! operation is on the caller's own notifications, at the service's clock.

use std::sync::Arc;

use jiff::SignedDuration;
use mockall::predicate::eq;

use super::*;
use crate::kernel::FixedClock;

/// The instant every test runs at (`2026-11-23T08:00:00Z`): the service's clock stands still here.
const NOW: Timestamp = Timestamp::constant(1795420800, 0);

fn service(repository: MockNotificationRepository) -> NotificationService {
    NotificationService::new(Arc::new(repository), Arc::new(FixedClock(NOW)))
}

fn notification(recipient: UserId, id: i64, read_at: Option<Timestamp>) -> Notification {
    Notification {
        id,
        recipient,
        kind: NotificationKind::ReferralReceived,
        created_at: NOW - SignedDuration::from_mins(5),
        read_at,
        data: NotificationData {
            title: "Urgent referral from Dr Alice Adams".to_owned(),
            referral_id: Some(Uuid::now_v7()),
            patient_id: Some(Uuid::now_v7()),
            actor_id: Some(Uuid::now_v7()),
            emergency_access_id: None,
            appointment_id: None,
            lab_order_id: None,
            prescription_id: None,
            conversation_id: None,
            message_id: None,
            urgent: false,
        },
    }
}

fn repository_failure() -> RepositoryError {
    RepositoryError::new("disk on fire")
}

#[tokio::test]
async fn a_listing_passes_the_recipient_the_position_and_the_unread_filter_through() {
    let me = UserId::generate();
    let found = vec![notification(me, 8, None), notification(me, 9, None)];
    for (after, unread_only) in [(Some(7), true), (None, false), (Some(0), false)] {
        let mut repository = MockNotificationRepository::new();
        let returned = found.clone();
        repository
            .expect_list()
            .with(eq(NotificationQuery {
                recipient: me,
                after,
                unread_only,
                with_events: false,
                limit: 20,
            }))
            .times(1)
            .returning(move |_| Ok(returned.clone()));

        let listed = service(repository)
            .list(me, after, unread_only, Some(20))
            .await
            .expect("listed");

        assert_eq!(listed, found, "{after:?} {unread_only}");
    }
}

#[tokio::test]
async fn a_listing_returns_a_hundred_unless_asked_otherwise() {
    let me = UserId::generate();
    let mut repository = MockNotificationRepository::new();
    repository
        .expect_list()
        .withf(|query| query.limit == 100)
        .times(1)
        .returning(|_| Ok(Vec::new()));

    let listed = service(repository)
        .list(me, None, false, None)
        .await
        .expect("listed");

    assert!(listed.is_empty());
    assert_eq!(DEFAULT_LIST_LIMIT, 100);
}

#[tokio::test]
async fn a_listing_asks_for_one_to_five_hundred_notifications() {
    let me = UserId::generate();
    for limit in [0, MAX_LIST_LIMIT + 1, u32::MAX] {
        let mut repository = MockNotificationRepository::new();
        repository.expect_list().never();

        let result = service(repository).list(me, None, false, Some(limit)).await;

        assert!(
            matches!(result, Err(NotificationError::InvalidLimit)),
            "{limit}: {result:?}"
        );
    }
    for limit in [1, MAX_LIST_LIMIT] {
        let mut repository = MockNotificationRepository::new();
        repository
            .expect_list()
            .withf(move |query| query.limit == limit)
            .times(1)
            .returning(|_| Ok(Vec::new()));

        let result = service(repository).list(me, None, false, Some(limit)).await;

        assert!(result.is_ok(), "{limit}: {result:?}");
    }
    assert_eq!(MAX_LIST_LIMIT, 500);
}

#[tokio::test]
async fn marking_a_notification_read_marks_the_callers_own_now() {
    let me = UserId::generate();
    let marked = notification(me, 7, Some(NOW));
    let mut repository = MockNotificationRepository::new();
    let returned = marked.clone();
    repository
        .expect_mark_read()
        .with(eq(me), eq(7), eq(NOW))
        .times(1)
        .returning(move |_, _, _| Ok(Some(returned.clone())));

    let read = service(repository).mark_read(me, 7).await.expect("marked");

    assert_eq!(read, marked);
}

#[tokio::test]
async fn marking_a_notification_the_caller_does_not_have_is_not_found() {
    let me = UserId::generate();
    let mut repository = MockNotificationRepository::new();
    repository
        .expect_mark_read()
        .with(eq(me), eq(99), eq(NOW))
        .times(1)
        .returning(|_, _, _| Ok(None));

    let result = service(repository).mark_read(me, 99).await;

    assert!(
        matches!(result, Err(NotificationError::NotFound)),
        "{result:?}"
    );
}

#[tokio::test]
async fn marking_everything_read_marks_the_callers_own_now_and_counts_them() {
    let me = UserId::generate();
    let mut repository = MockNotificationRepository::new();
    repository
        .expect_mark_all_read()
        .with(eq(me), eq(NOW))
        .times(1)
        .returning(|_, _| Ok(3));

    let marked = service(repository).mark_all_read(me).await.expect("marked");

    assert_eq!(marked, 3);
}

#[tokio::test]
async fn the_unread_count_is_the_callers_own() {
    let me = UserId::generate();
    let mut repository = MockNotificationRepository::new();
    repository
        .expect_unread_count()
        .with(eq(me))
        .times(1)
        .returning(|_| Ok(12));

    let unread = service(repository).unread_count(me).await.expect("counted");

    assert_eq!(unread, 12);
}

#[tokio::test]
async fn a_storage_failure_is_internal() {
    let me = UserId::generate();
    let mut repository = MockNotificationRepository::new();
    repository
        .expect_list()
        .returning(|_| Err(repository_failure()));
    repository
        .expect_mark_read()
        .returning(|_, _, _| Err(repository_failure()));
    repository
        .expect_mark_all_read()
        .returning(|_, _| Err(repository_failure()));
    repository
        .expect_unread_count()
        .returning(|_| Err(repository_failure()));
    let service = service(repository);

    let listed = service.list(me, None, false, None).await;
    assert!(
        matches!(listed, Err(NotificationError::Internal(_))),
        "{listed:?}"
    );
    let read = service.mark_read(me, 1).await;
    assert!(
        matches!(read, Err(NotificationError::Internal(_))),
        "{read:?}"
    );
    let all = service.mark_all_read(me).await;
    assert!(
        matches!(all, Err(NotificationError::Internal(_))),
        "{all:?}"
    );
    let count = service.unread_count(me).await;
    assert!(
        matches!(count, Err(NotificationError::Internal(_))),
        "{count:?}"
    );
}
