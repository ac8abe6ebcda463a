//! Unit tests of the hub's registry: fan-out to every socket of a user, slow consumers dropped
//! without slowing others, batched session checks, resync and shutdown.

use crate::test_support::ts;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use uuid::Uuid;

use carehub_domain::identity::{
    IdentityConfig, IdentityPorts, IdentityService, LiveSession, MockAccessTokenCodec,
    MockLoginAttemptRepository, MockPasswordHasher, MockRefreshTokenFactory,
    MockRefreshTokenRepository, MockRevokedTokenRepository, MockSocketTicketRepository,
    MockTrustedDeviceRepository, MockUserRepository, SessionEnd, SessionId, TokenId, UserId,
};
use carehub_domain::kernel::FixedClock;
use carehub_domain::notifications::{
    MockNotificationRepository, Notification, NotificationData, NotificationKind,
    NotificationService, NotificationSink,
};

use super::frames::Closing;
use super::{Hub, HubConfig, Registration};

/// What `ended_sessions` was asked, call by call.
type Asked = Arc<Mutex<Vec<Vec<LiveSession>>>>;

fn identity(revoked_tokens: MockRevokedTokenRepository) -> IdentityService {
    IdentityService::new(
        IdentityPorts {
            users: Arc::new(MockUserRepository::new()),
            refresh_tokens: Arc::new(MockRefreshTokenRepository::new()),
            revoked_tokens: Arc::new(revoked_tokens),
            login_attempts: Arc::new(MockLoginAttemptRepository::new()),
            trusted_devices: Arc::new(MockTrustedDeviceRepository::new()),
            hasher: Arc::new(MockPasswordHasher::new()),
            access_tokens: Arc::new(MockAccessTokenCodec::new()),
            refresh_token_factory: Arc::new(MockRefreshTokenFactory::new()),
            socket_tickets: Arc::new(MockSocketTicketRepository::new()),
            clock: clock(),
        },
        IdentityConfig::default(),
    )
}

fn clock() -> Arc<FixedClock> {
    Arc::new(FixedClock(ts("2026-11-23T10:00:00Z")))
}

fn hub_with(queue_capacity: usize, revoked_tokens: MockRevokedTokenRepository) -> Hub {
    let notifications =
        NotificationService::new(Arc::new(MockNotificationRepository::new()), clock());
    Hub::new(
        notifications,
        identity(revoked_tokens),
        HubConfig {
            queue_capacity,
            ..HubConfig::default()
        },
    )
}

fn hub(queue_capacity: usize) -> Hub {
    hub_with(queue_capacity, MockRevokedTokenRepository::new())
}

fn user(n: u128) -> UserId {
    UserId::from_uuid(Uuid::from_u128(n))
}

fn session(user_id: UserId) -> LiveSession {
    LiveSession {
        user_id,
        session_id: SessionId::generate(),
        token_id: TokenId::generate(),
    }
}

fn notification(recipient: UserId, id: i64) -> Notification {
    Notification {
        id,
        recipient,
        kind: NotificationKind::CareTeamAdded,
        created_at: ts("2026-11-23T09:00:00Z"),
        read_at: None,
        data: NotificationData {
            title: "Added to a care team".into(),
            ..NotificationData::default()
        },
    }
}

fn queued(registration: &mut Registration) -> Vec<i64> {
    let mut ids = Vec::new();
    while let Ok(notification) = registration.queue.try_recv() {
        ids.push(notification.id);
    }
    ids
}

fn close_reason(registration: &Registration) -> Option<Closing> {
    *registration.signals.close.borrow()
}

#[test]
fn every_socket_of_the_recipient_gets_each_notification_and_no_one_else_does() {
    let hub = hub(8);
    let (ann, bob) = (user(1), user(2));
    let mut phone = hub.register(session(ann)).expect("registered");
    let mut desktop = hub.register(session(ann)).expect("registered");
    let mut other = hub.register(session(bob)).expect("registered");
    assert_eq!(hub.socket_count(), 3);

    hub.deliver(notification(ann, 1));
    hub.deliver(notification(ann, 2));
    hub.deliver(notification(user(3), 1));

    assert_eq!(queued(&mut phone), vec![1, 2]);
    assert_eq!(queued(&mut desktop), vec![1, 2]);
    assert!(queued(&mut other).is_empty());
}

#[test]
fn a_dropped_registration_leaves_the_hub() {
    let hub = hub(8);
    let ann = user(1);
    let mut kept = hub.register(session(ann)).expect("registered");
    let gone = hub.register(session(ann)).expect("registered");
    drop(gone);
    assert_eq!(hub.socket_count(), 1);
    hub.deliver(notification(ann, 1));
    assert_eq!(queued(&mut kept), vec![1]);
    drop(kept);
    assert_eq!(hub.socket_count(), 0);
    assert!(hub.registry().by_user.is_empty());
}

#[test]
fn a_socket_whose_queue_overflows_is_dropped_and_told_to_close_while_others_go_on() {
    let hub = hub(2);
    let ann = user(1);
    let mut slow = hub.register(session(ann)).expect("registered");
    let mut fast = hub.register(session(ann)).expect("registered");

    for id in 1..=2 {
        hub.deliver(notification(ann, id));
    }
    assert_eq!(queued(&mut fast), vec![1, 2]);
    assert_eq!(close_reason(&slow), None);

    // The slow socket read nothing: the third overflows it, without waiting for it.
    hub.deliver(notification(ann, 3));
    assert!(matches!(close_reason(&slow), Some(Closing::TooSlow { .. })));
    assert_eq!(close_reason(&fast), None);
    assert_eq!(hub.socket_count(), 1);
    assert_eq!(queued(&mut fast), vec![3]);

    for id in 4..=5 {
        hub.deliver(notification(ann, id));
    }
    assert_eq!(queued(&mut fast), vec![4, 5]);
    assert_eq!(close_reason(&fast), None);
    // What it had queued stays; nothing more is added once it is dropped.
    assert_eq!(queued(&mut slow), vec![1, 2]);
    drop(slow);
    assert_eq!(hub.socket_count(), 1);
}

#[tokio::test]
async fn sessions_are_checked_in_one_batched_call_and_ended_ones_closed_with_their_reason() {
    let asked = Asked::default();
    let (ann, bob, cid) = (user(1), user(2), user(3));
    let (signed_out, suspended, fine) = (session(ann), session(bob), session(cid));
    let mut revoked = MockRevokedTokenRepository::new();
    let log = Arc::clone(&asked);
    revoked
        .expect_ended_sessions()
        .times(1)
        .returning(move |sessions, _| {
            log.lock().expect("log").push(sessions.to_vec());
            Ok(vec![
                (signed_out.token_id, SessionEnd::SignedOut),
                (suspended.token_id, SessionEnd::Inactive),
            ])
        });
    let hub = hub_with(8, revoked);
    let phone = hub.register(signed_out).expect("registered");
    let desktop = hub.register(signed_out).expect("registered");
    let bobs = hub.register(suspended).expect("registered");
    let cids = hub.register(fine).expect("registered");

    assert_eq!(hub.check_sessions().await.expect("checked"), 3);

    let asked = asked.lock().expect("log");
    assert_eq!(asked.len(), 1);
    let mut sessions = asked[0].clone();
    sessions.sort_by_key(|s| *s.token_id.as_uuid());
    let mut expected = vec![signed_out, suspended, fine];
    expected.sort_by_key(|s| *s.token_id.as_uuid());
    assert_eq!(sessions, expected, "each live session asked about once");

    assert_eq!(close_reason(&phone), Some(Closing::SignedOut));
    assert_eq!(close_reason(&desktop), Some(Closing::SignedOut));
    assert_eq!(close_reason(&bobs), Some(Closing::Suspended));
    assert_eq!(close_reason(&cids), None);
    assert_eq!(hub.socket_count(), 1);
}

#[tokio::test]
async fn a_socket_renewed_onto_a_new_token_is_not_closed_for_its_old_one() {
    let ann = user(1);
    let old = session(ann);
    let renewed = LiveSession {
        token_id: TokenId::generate(),
        ..old
    };
    let mut revoked = MockRevokedTokenRepository::new();
    revoked
        .expect_ended_sessions()
        .returning(move |_, _| Ok(vec![(old.token_id, SessionEnd::SignedOut)]));
    let hub = hub_with(8, revoked);
    let socket = hub.register(old).expect("registered");
    socket.renew(renewed);
    assert_eq!(hub.check_sessions().await.expect("checked"), 0);
    assert_eq!(close_reason(&socket), None);
}

#[tokio::test]
async fn without_sockets_no_session_check_reaches_storage() {
    // The mock has no expectation: a call would fail the test.
    let hub = hub(8);
    assert_eq!(hub.check_sessions().await.expect("checked"), 0);
}

#[tokio::test]
async fn a_failed_session_check_closes_nothing() {
    let mut revoked = MockRevokedTokenRepository::new();
    revoked.expect_ended_sessions().returning(|_, _| {
        Err(carehub_domain::kernel::RepositoryError::new(
            "database down",
        ))
    });
    let hub = hub_with(8, revoked);
    let socket = hub.register(session(user(1))).expect("registered");
    assert!(hub.check_sessions().await.is_err());
    assert_eq!(close_reason(&socket), None);
    assert_eq!(hub.socket_count(), 1);
}

#[tokio::test]
async fn resync_asks_every_socket_to_look_in_storage() {
    let hub = hub(8);
    let first = hub.register(session(user(1))).expect("registered");
    let second = hub.register(session(user(2))).expect("registered");
    hub.resync();
    for registration in [&first, &second] {
        tokio::time::timeout(
            Duration::from_secs(10),
            registration.signals.resync_requested(),
        )
        .await
        .expect("resync signalled");
    }
}

#[tokio::test]
async fn shutdown_closes_every_socket_with_1001_waits_for_them_and_refuses_new_ones() {
    let hub = hub(8);
    let sockets: Vec<Registration> = (1..=3)
        .map(|n| hub.register(session(user(n))).expect("registered"))
        .collect();
    // Each socket's task: wait for the close signal, then leave the hub.
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|registration| {
            tokio::spawn(async move {
                let closing = registration.signals.closed().await;
                drop(registration);
                closing
            })
        })
        .collect();

    let left = hub.shutdown(Duration::from_secs(10)).await;
    assert_eq!(left, 0);
    for task in tasks {
        let closing = task.await.expect("task");
        assert_eq!(closing, Closing::Shutdown);
        assert_eq!(closing.code(), 1001);
    }
    assert!(hub.register(session(user(9))).is_none());
}

#[tokio::test]
async fn sockets_behind_storage_are_asked_to_catch_up_and_the_others_are_left_alone() {
    let (ann, bob, carl) = (user(1), user(2), user(3));
    let asked: Arc<Mutex<Vec<Vec<UserId>>>> = Arc::default();
    let log = asked.clone();
    let mut repository = MockNotificationRepository::new();
    repository.expect_last_ids().returning(move |users| {
        log.lock().expect("asked").push(users.to_vec());
        // Carl has no notification at all.
        Ok(vec![(ann, 5), (bob, 2)])
    });
    let hub = Hub::new(
        NotificationService::new(Arc::new(repository), clock()),
        identity(MockRevokedTokenRepository::new()),
        HubConfig::default(),
    );
    let ann_behind = hub.register(session(ann)).expect("registered");
    let ann_current = hub.register(session(ann)).expect("registered");
    let bob_current = hub.register(session(bob)).expect("registered");
    let carl_idle = hub.register(session(carl)).expect("registered");
    ann_behind
        .progress
        .store(4, std::sync::atomic::Ordering::Relaxed);
    ann_current
        .progress
        .store(5, std::sync::atomic::Ordering::Relaxed);
    bob_current
        .progress
        .store(2, std::sync::atomic::Ordering::Relaxed);

    assert_eq!(hub.sweep_missed().await.expect("swept"), 1);

    let mut users = asked.lock().expect("asked")[0].clone();
    users.sort();
    assert_eq!(users, vec![ann, bob, carl], "each user asked about once");
    assert!(resynced(&ann_behind).await, "the socket behind");
    for other in [&ann_current, &bob_current, &carl_idle] {
        assert!(!resynced(other).await, "a socket up to date");
    }
}

#[tokio::test]
async fn a_hub_without_sockets_asks_storage_nothing() {
    let hub = hub(8);
    assert_eq!(hub.sweep_missed().await.expect("swept"), 0);
}

/// Whether the socket was asked to catch up (within a moment).
async fn resynced(registration: &Registration) -> bool {
    tokio::time::timeout(
        Duration::from_millis(50),
        registration.signals.resync_requested(),
    )
    .await
    .is_ok()
}
