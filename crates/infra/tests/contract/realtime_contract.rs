//! Socket tickets, the checks of live sessions, and the notification publishers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use time::{Duration, OffsetDateTime};
use tokio::sync::{Barrier, mpsc};
use uuid::Uuid;

use carehub_domain::identity::{
    AccessClaims, LiveSession, NewRefreshToken, RefreshTokenHash, SessionEnd, SessionId, TokenId,
};
use carehub_domain::identity::{Role, UserChanges, UserId, UserStatus};
use carehub_domain::notifications::{
    Notification, NotificationData, NotificationKind, NotificationPublisher, NotificationSink,
};
use carehub_infra::notifications::{
    InProcessPublisher, LISTENER_APPLICATION_NAME, NOTIFICATION_CHANNEL, PgNotifyPublisher,
    spawn_pg_listener,
};
use carehub_infra::testing::{Backend, ScratchDatabase};
use carehub_infra::{Database, Repositories};

use super::{create_user, now};

/// Runs each named test on a PostgreSQL scratch database of its own, handed over unconnected
/// so that a test can open several pools on it (several server instances). Skipped when
/// PostgreSQL is not configured, as in `contract!`.
macro_rules! on_postgres {
    ($($name:ident),* $(,)?) => {
        mod postgres_instances {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(scratch) =
                        super::ScratchDatabase::create(super::Backend::Postgres).await
                    else {
                        return;
                    };
                    super::$name(&scratch).await;
                    drop(scratch);
                }
            )*
        }
    };
}

contract!(
    // Socket tickets.
    a_socket_ticket_is_redeemed_once_for_the_claims_it_was_issued_with,
    an_expired_socket_ticket_is_refused_and_used_up,
    an_unknown_socket_ticket_is_refused,
    of_eight_concurrent_redemptions_of_one_ticket_exactly_one_succeeds,
    a_socket_ticket_cannot_outlive_its_access_token,
    purging_deletes_only_expired_socket_tickets,
    // Live sessions.
    live_sessions_still_valid_are_left_out,
    a_revoked_access_token_ends_its_live_session_as_signed_out,
    a_signed_out_or_missing_session_ends_its_live_sessions_as_signed_out,
    a_suspended_account_ends_its_live_sessions_as_inactive,
    more_than_five_hundred_live_sessions_are_checked_in_one_call,
);

on_postgres!(
    a_notification_published_on_one_pool_reaches_the_listener_on_another_exactly,
    notifications_published_together_are_heard_in_order,
    every_instance_hears_what_any_instance_publishes,
    an_unreadable_payload_is_skipped_and_the_listener_goes_on,
    a_listener_that_lost_its_connection_reconnects_and_asks_for_a_resync,
    a_stopped_listener_closes_its_connection,
    an_aborted_listener_stops,
);

/// Long enough never to fail a working test, short enough not to hang a broken one.
const PATIENCE: StdDuration = StdDuration::from_secs(10);

/// `at` cut to whole microseconds, the precision both backends keep.
fn micros(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(at.nanosecond() / 1_000 * 1_000)
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Socket tickets
// ---------------------------------------------------------------------------------------------

fn ticket_hash() -> RefreshTokenHash {
    RefreshTokenHash::new(format!("ticket-{}", Uuid::new_v4().simple()))
}

/// An access token's claims for `user_id`, issued now and valid for 15 minutes.
fn claims_for(user_id: UserId, role: Role) -> AccessClaims {
    let issued_at = micros(now());
    AccessClaims {
        user_id,
        role,
        session_id: SessionId::generate(),
        token_id: TokenId::generate(),
        issued_at,
        expires_at: issued_at + Duration::minutes(15),
    }
}

async fn a_socket_ticket_is_redeemed_once_for_the_claims_it_was_issued_with(repos: Repositories) {
    let doctor = create_user(&repos, "dr.ticket", Role::Doctor, UserStatus::Active).await;
    let claims = claims_for(doctor.id, Role::Doctor);
    let (hash, other) = (ticket_hash(), ticket_hash());
    let at = now();
    for hash in [&hash, &other] {
        repos
            .socket_tickets
            .issue(hash, &claims, at + Duration::seconds(30))
            .await
            .unwrap();
    }

    let redeemed = repos.socket_tickets.redeem(&hash, at).await.unwrap();
    assert_eq!(redeemed, Some(claims.clone()), "the claims come back whole");
    assert_eq!(
        repos.socket_tickets.redeem(&hash, at).await.unwrap(),
        None,
        "a ticket is single-use"
    );
    assert_eq!(
        repos.socket_tickets.redeem(&other, at).await.unwrap(),
        Some(claims),
        "another ticket is untouched"
    );
}

async fn an_expired_socket_ticket_is_refused_and_used_up(repos: Repositories) {
    let user = create_user(&repos, "late", Role::Patient, UserStatus::Active).await;
    let claims = claims_for(user.id, Role::Patient);
    let hash = ticket_hash();
    let expires_at = micros(now()) + Duration::seconds(30);
    repos
        .socket_tickets
        .issue(&hash, &claims, expires_at)
        .await
        .unwrap();

    assert_eq!(
        repos
            .socket_tickets
            .redeem(&hash, expires_at)
            .await
            .unwrap(),
        None,
        "a ticket is dead at its expiry"
    );
    assert_eq!(
        repos
            .socket_tickets
            .redeem(&hash, expires_at - Duration::seconds(10))
            .await
            .unwrap(),
        None,
        "the refused ticket was used up: it cannot be tried again"
    );
    assert_eq!(
        repos
            .socket_tickets
            .purge_expired(now() + Duration::hours(1))
            .await
            .unwrap(),
        0,
        "nothing was left behind"
    );
}

async fn an_unknown_socket_ticket_is_refused(repos: Repositories) {
    assert_eq!(
        repos
            .socket_tickets
            .redeem(&ticket_hash(), now())
            .await
            .unwrap(),
        None
    );
}

async fn of_eight_concurrent_redemptions_of_one_ticket_exactly_one_succeeds(repos: Repositories) {
    let user = create_user(&repos, "racer", Role::Doctor, UserStatus::Active).await;
    let claims = claims_for(user.id, Role::Doctor);
    let hash = ticket_hash();
    repos
        .socket_tickets
        .issue(&hash, &claims, now() + Duration::seconds(30))
        .await
        .unwrap();

    let barrier = Arc::new(Barrier::new(8));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (repos, hash, barrier) = (repos.clone(), hash.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                repos.socket_tickets.redeem(&hash, now()).await.unwrap()
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        if let Some(redeemed) = task.await.unwrap() {
            winners.push(redeemed);
        }
    }
    assert_eq!(winners, vec![claims]);
}

async fn a_socket_ticket_cannot_outlive_its_access_token(repos: Repositories) {
    let user = create_user(&repos, "greedy", Role::Patient, UserStatus::Active).await;
    let claims = claims_for(user.id, Role::Patient);
    let hash = ticket_hash();
    repos
        .socket_tickets
        .issue(&hash, &claims, claims.expires_at + Duration::seconds(1))
        .await
        .expect_err("the database refuses a ticket outliving its token");
    assert_eq!(
        repos.socket_tickets.redeem(&hash, now()).await.unwrap(),
        None
    );

    repos
        .socket_tickets
        .issue(&hash, &claims, claims.expires_at)
        .await
        .expect("a ticket may last exactly as long as its token");
}

async fn purging_deletes_only_expired_socket_tickets(repos: Repositories) {
    let user = create_user(&repos, "purged", Role::Patient, UserStatus::Active).await;
    let claims = claims_for(user.id, Role::Patient);
    let at = micros(now());
    let issue = |expires_at: OffsetDateTime| {
        let (repos, claims) = (repos.clone(), claims.clone());
        async move {
            let hash = ticket_hash();
            repos
                .socket_tickets
                .issue(&hash, &claims, expires_at)
                .await
                .unwrap();
            hash
        }
    };
    let _long_expired = issue(at - Duration::minutes(5)).await;
    let _just_expired = issue(at - Duration::microseconds(1)).await;
    let at_cutoff = issue(at).await;
    let live = issue(at + Duration::seconds(30)).await;

    assert_eq!(repos.socket_tickets.purge_expired(at).await.unwrap(), 2);
    assert_eq!(repos.socket_tickets.purge_expired(at).await.unwrap(), 0);

    let earlier = at - Duration::minutes(10);
    assert_eq!(
        repos
            .socket_tickets
            .redeem(&at_cutoff, earlier)
            .await
            .unwrap(),
        Some(claims.clone()),
        "a ticket expiring exactly at the cutoff is kept"
    );
    assert_eq!(
        repos.socket_tickets.redeem(&live, at).await.unwrap(),
        Some(claims)
    );
}

// ---------------------------------------------------------------------------------------------
// Live sessions
// ---------------------------------------------------------------------------------------------

/// Signs `user_id` in: a stored session with one refresh token.
async fn sign_in(repos: &Repositories, user_id: UserId) -> SessionId {
    let session_id = SessionId::generate();
    repos
        .refresh_tokens
        .insert(&NewRefreshToken {
            hash: RefreshTokenHash::new(Uuid::new_v4().to_string()),
            user_id,
            session_id,
            issued_at: now(),
            expires_at: now() + Duration::days(1),
        })
        .await
        .unwrap();
    session_id
}

fn live(user_id: UserId, session_id: SessionId) -> LiveSession {
    LiveSession {
        user_id,
        session_id,
        token_id: TokenId::generate(),
    }
}

/// What `ended_sessions` says, by token, checking that no token is reported twice.
async fn ended(repos: &Repositories, sessions: &[LiveSession]) -> HashMap<TokenId, SessionEnd> {
    let ended = repos.revoked_tokens.ended_sessions(sessions).await.unwrap();
    let by_token: HashMap<TokenId, SessionEnd> = ended.iter().copied().collect();
    assert_eq!(by_token.len(), ended.len(), "each token once: {ended:?}");
    by_token
}

async fn live_sessions_still_valid_are_left_out(repos: Repositories) {
    assert_eq!(ended(&repos, &[]).await, HashMap::new());

    let ann = create_user(&repos, "ann", Role::Doctor, UserStatus::Active).await;
    let bob = create_user(&repos, "bob", Role::Patient, UserStatus::Active).await;
    let (ann_session, bob_session) = (sign_in(&repos, ann.id).await, sign_in(&repos, bob.id).await);
    let first = live(ann.id, ann_session);
    let sessions = [
        first,
        live(ann.id, ann_session),
        live(bob.id, bob_session),
        // The same socket token asked about twice.
        first,
    ];
    assert_eq!(ended(&repos, &sessions).await, HashMap::new());
}

async fn a_revoked_access_token_ends_its_live_session_as_signed_out(repos: Repositories) {
    let ann = create_user(&repos, "ann", Role::Doctor, UserStatus::Active).await;
    let session = sign_in(&repos, ann.id).await;
    let (revoked, kept) = (live(ann.id, session), live(ann.id, session));
    repos
        .revoked_tokens
        .revoke(revoked.token_id, now() + Duration::minutes(15))
        .await
        .unwrap();

    assert_eq!(
        ended(&repos, &[revoked, kept]).await,
        HashMap::from([(revoked.token_id, SessionEnd::SignedOut)])
    );
}

async fn a_signed_out_or_missing_session_ends_its_live_sessions_as_signed_out(repos: Repositories) {
    let ann = create_user(&repos, "ann", Role::Doctor, UserStatus::Active).await;
    let (signed_out, kept) = (sign_in(&repos, ann.id).await, sign_in(&repos, ann.id).await);
    let (phone, desktop) = (live(ann.id, signed_out), live(ann.id, signed_out));
    let other = live(ann.id, kept);
    let unknown = live(ann.id, SessionId::generate());
    repos
        .refresh_tokens
        .revoke_session(signed_out, now())
        .await
        .unwrap();

    assert_eq!(
        ended(&repos, &[phone, desktop, other, unknown]).await,
        HashMap::from([
            (phone.token_id, SessionEnd::SignedOut),
            (desktop.token_id, SessionEnd::SignedOut),
            (unknown.token_id, SessionEnd::SignedOut),
        ])
    );
}

async fn a_suspended_account_ends_its_live_sessions_as_inactive(repos: Repositories) {
    let ann = create_user(&repos, "ann", Role::Doctor, UserStatus::Active).await;
    let bob = create_user(&repos, "bob", Role::Doctor, UserStatus::Active).await;
    let (ann_session, bob_session) = (sign_in(&repos, ann.id).await, sign_in(&repos, bob.id).await);
    let (ann_socket, bob_socket) = (live(ann.id, ann_session), live(bob.id, bob_session));
    suspend_without_revoking(&repos, ann.id).await;
    assert_eq!(
        ended(&repos, &[ann_socket, bob_socket]).await,
        HashMap::from([(ann_socket.token_id, SessionEnd::Inactive)])
    );

    // Suspending an account also revokes its sessions; the socket is still told the reason.
    repos
        .refresh_tokens
        .revoke_all_for_user(ann.id, now())
        .await
        .unwrap();
    assert_eq!(
        ended(&repos, &[ann_socket, bob_socket]).await,
        HashMap::from([(ann_socket.token_id, SessionEnd::Inactive)])
    );

    let unknown_user = live(UserId::generate(), bob_session);
    assert_eq!(
        ended(&repos, &[unknown_user]).await,
        HashMap::from([(unknown_user.token_id, SessionEnd::Inactive)]),
        "an account that does not exist is not active"
    );
}

async fn more_than_five_hundred_live_sessions_are_checked_in_one_call(repos: Repositories) {
    let ann = create_user(&repos, "ann", Role::Doctor, UserStatus::Active).await;
    let bob = create_user(&repos, "bob", Role::Doctor, UserStatus::Active).await;
    let ann_session = sign_in(&repos, ann.id).await;
    let bob_session = sign_in(&repos, bob.id).await;
    let gone = SessionId::generate();
    suspend_without_revoking(&repos, bob.id).await;

    // 1,203 sockets: every 7th on a missing session, every 11th of bob's (suspended), a few
    // with revoked tokens (around the 500-session chunk boundaries), the rest valid.
    let revoked_positions = [0, 499, 500, 501, 999, 1000, 1202];
    let mut sessions = Vec::new();
    let mut expected = HashMap::new();
    for i in 0..1203 {
        let socket = if i % 11 == 0 {
            expected.insert(i, SessionEnd::Inactive);
            live(bob.id, bob_session)
        } else if i % 7 == 0 {
            expected.insert(i, SessionEnd::SignedOut);
            live(ann.id, gone)
        } else {
            live(ann.id, ann_session)
        };
        sessions.push(socket);
    }
    for &i in &revoked_positions {
        repos
            .revoked_tokens
            .revoke(sessions[i].token_id, now() + Duration::minutes(15))
            .await
            .unwrap();
        expected.entry(i).or_insert(SessionEnd::SignedOut);
    }
    let expected: HashMap<TokenId, SessionEnd> = expected
        .into_iter()
        .map(|(i, end)| (sessions[i].token_id, end))
        .collect();
    assert!(
        expected.len() > 250,
        "a good share of the sockets has ended"
    );

    assert_eq!(ended(&repos, &sessions).await, expected);
}

async fn suspend_without_revoking(repos: &Repositories, id: UserId) {
    repos
        .users
        .update(
            id,
            &UserChanges {
                status: Some(UserStatus::Suspended),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap()
        .expect("the user exists");
}

// ---------------------------------------------------------------------------------------------
// Publishers
// ---------------------------------------------------------------------------------------------

/// What a sink was told.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Heard {
    Delivered(Notification),
    Resync,
}

/// A sink that reports everything it is told on a channel.
#[derive(Debug)]
struct RecordingSink(mpsc::UnboundedSender<Heard>);

impl NotificationSink for RecordingSink {
    fn deliver(&self, notification: Notification) {
        let _ = self.0.send(Heard::Delivered(notification));
    }

    fn resync(&self) {
        let _ = self.0.send(Heard::Resync);
    }
}

fn recording_sink() -> (Arc<RecordingSink>, mpsc::UnboundedReceiver<Heard>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    (Arc::new(RecordingSink(sender)), receiver)
}

/// The next thing the sink hears; fails after [`PATIENCE`].
async fn next_heard(heard: &mut mpsc::UnboundedReceiver<Heard>) -> Heard {
    tokio::time::timeout(PATIENCE, heard.recv())
        .await
        .expect("the sink hears something in time")
        .expect("the sink is alive")
}

/// A notification with every field set, times to the nanosecond.
fn notification(id: i64, kind: NotificationKind) -> Notification {
    Notification {
        id,
        recipient: UserId::generate(),
        kind,
        created_at: now(),
        read_at: Some(now() + Duration::nanoseconds(123_456_789)),
        data: NotificationData {
            title: "Urgent referral from Dr Alice Adams — «cardiology»".into(),
            referral_id: Some(Uuid::new_v4()),
            patient_id: Some(Uuid::new_v4()),
            actor_id: Some(Uuid::new_v4()),
            emergency_access_id: Some(Uuid::new_v4()),
            appointment_id: Some(Uuid::new_v4()),
        },
    }
}

fn sparse_notification(id: i64) -> Notification {
    Notification {
        read_at: None,
        data: NotificationData {
            title: "Added to a care team".into(),
            ..NotificationData::default()
        },
        ..notification(id, NotificationKind::CareTeamAdded)
    }
}

#[tokio::test]
async fn the_in_process_publisher_delivers_each_notification_to_its_sink_in_order() {
    let (sink, mut heard) = recording_sink();
    let publisher = InProcessPublisher::new(sink);
    let sent = vec![
        notification(1, NotificationKind::ReferralReceived),
        sparse_notification(2),
    ];
    publisher.publish(&sent).await;
    publisher.publish(&[]).await;

    for expected in sent {
        assert_eq!(next_heard(&mut heard).await, Heard::Delivered(expected));
    }
    assert!(heard.try_recv().is_err(), "nothing more");
}

#[tokio::test]
async fn on_sqlite_the_realtime_publisher_delivers_in_process_without_a_listener() {
    let scratch = ScratchDatabase::create(Backend::Sqlite).await.unwrap();
    let database = scratch.connect_migrated().await.unwrap();
    let (sink, mut heard) = recording_sink();
    let realtime = database.realtime(sink).await.unwrap();
    assert!(realtime.listener.is_none());

    let sent = notification(7, NotificationKind::EmergencyAccessUsed);
    realtime
        .publisher
        .publish(std::slice::from_ref(&sent))
        .await;
    assert_eq!(next_heard(&mut heard).await, Heard::Delivered(sent));
    realtime.shutdown().await;
    database.close().await;
}

/// A second connection pool on the scratch database: another server instance.
async fn instance(scratch: &ScratchDatabase) -> Database {
    scratch
        .connect_migrated()
        .await
        .expect("the scratch database connects and migrates")
}

fn pg_pool(database: &Database) -> sqlx::PgPool {
    match database {
        Database::Postgres(pool) => pool.clone(),
        Database::Sqlite(_) => panic!("a PostgreSQL database was expected"),
    }
}

/// How many listener connections are open on this test's database.
async fn listener_connections(pool: &sqlx::PgPool) -> i64 {
    let (count,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE application_name = $1 AND datname = current_database()",
    )
    .bind(LISTENER_APPLICATION_NAME)
    .fetch_one(pool)
    .await
    .unwrap();
    count
}

async fn a_notification_published_on_one_pool_reaches_the_listener_on_another_exactly(
    scratch: &ScratchDatabase,
) {
    let (listening, publishing) = (instance(scratch).await, instance(scratch).await);
    let (sink, mut heard) = recording_sink();
    let listener = spawn_pg_listener(&pg_pool(&listening), sink).await.unwrap();
    let publisher = PgNotifyPublisher::new(pg_pool(&publishing));

    for sent in [
        notification(41, NotificationKind::ReferralDeclined),
        sparse_notification(42),
    ] {
        publisher.publish(std::slice::from_ref(&sent)).await;
        assert_eq!(next_heard(&mut heard).await, Heard::Delivered(sent));
    }

    listener.shutdown().await;
    listening.close().await;
    publishing.close().await;
}

async fn notifications_published_together_are_heard_in_order(scratch: &ScratchDatabase) {
    let (listening, publishing) = (instance(scratch).await, instance(scratch).await);
    let (sink, mut heard) = recording_sink();
    let listener = spawn_pg_listener(&pg_pool(&listening), sink).await.unwrap();
    let publisher = PgNotifyPublisher::new(pg_pool(&publishing));

    let sent: Vec<Notification> = NotificationKind::ALL
        .iter()
        .zip(1..)
        .map(|(kind, id)| notification(id, *kind))
        .collect();
    publisher.publish(&sent).await;
    publisher.publish(&[]).await;
    for expected in sent {
        assert_eq!(next_heard(&mut heard).await, Heard::Delivered(expected));
    }

    listener.shutdown().await;
    listening.close().await;
    publishing.close().await;
}

async fn every_instance_hears_what_any_instance_publishes(scratch: &ScratchDatabase) {
    let (first, second) = (instance(scratch).await, instance(scratch).await);
    let (first_sink, mut first_heard) = recording_sink();
    let (second_sink, mut second_heard) = recording_sink();
    let first_realtime = first.realtime(first_sink).await.unwrap();
    let second_realtime = second.realtime(second_sink).await.unwrap();
    assert!(first_realtime.listener.is_some());

    let from_second = notification(1, NotificationKind::ReferralAccepted);
    second_realtime
        .publisher
        .publish(std::slice::from_ref(&from_second))
        .await;
    let from_first = sparse_notification(2);
    first_realtime
        .publisher
        .publish(std::slice::from_ref(&from_first))
        .await;

    for heard in [&mut first_heard, &mut second_heard] {
        assert_eq!(
            next_heard(heard).await,
            Heard::Delivered(from_second.clone())
        );
        assert_eq!(
            next_heard(heard).await,
            Heard::Delivered(from_first.clone())
        );
    }

    first_realtime.shutdown().await;
    second_realtime.shutdown().await;
    first.close().await;
    second.close().await;
}

async fn an_unreadable_payload_is_skipped_and_the_listener_goes_on(scratch: &ScratchDatabase) {
    let (listening, publishing) = (instance(scratch).await, instance(scratch).await);
    let (sink, mut heard) = recording_sink();
    let listener = spawn_pg_listener(&pg_pool(&listening), sink).await.unwrap();

    for garbage in ["not json", "{}", r#"{"id": 1, "kind": "referral.lost"}"#] {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(NOTIFICATION_CHANNEL)
            .bind(garbage)
            .execute(&pg_pool(&publishing))
            .await
            .unwrap();
    }
    let sent = notification(3, NotificationKind::ReferralCompleted);
    PgNotifyPublisher::new(pg_pool(&publishing))
        .publish(std::slice::from_ref(&sent))
        .await;

    assert_eq!(next_heard(&mut heard).await, Heard::Delivered(sent));
    assert!(!listener.is_finished());
    listener.shutdown().await;
    listening.close().await;
    publishing.close().await;
}

async fn a_listener_that_lost_its_connection_reconnects_and_asks_for_a_resync(
    scratch: &ScratchDatabase,
) {
    let (listening, publishing) = (instance(scratch).await, instance(scratch).await);
    let (sink, mut heard) = recording_sink();
    let listener = spawn_pg_listener(&pg_pool(&listening), sink).await.unwrap();
    let admin = pg_pool(&publishing);
    assert_eq!(listener_connections(&admin).await, 1);

    let (terminated,): (i64,) = sqlx::query_as(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = $1 AND datname = current_database()",
    )
    .bind(LISTENER_APPLICATION_NAME)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(terminated, 1);

    assert_eq!(
        next_heard(&mut heard).await,
        Heard::Resync,
        "once subscribed again, the sink is told it may have missed notifications"
    );
    let sent = notification(9, NotificationKind::CareTeamAdded);
    PgNotifyPublisher::new(admin)
        .publish(std::slice::from_ref(&sent))
        .await;
    assert_eq!(next_heard(&mut heard).await, Heard::Delivered(sent));

    listener.shutdown().await;
    listening.close().await;
    publishing.close().await;
}

async fn a_stopped_listener_closes_its_connection(scratch: &ScratchDatabase) {
    let database = instance(scratch).await;
    let pool = pg_pool(&database);
    let (sink, _heard) = recording_sink();
    let listener = spawn_pg_listener(&pool, sink).await.unwrap();
    assert_eq!(listener_connections(&pool).await, 1);

    tokio::time::timeout(PATIENCE, listener.shutdown())
        .await
        .expect("the listener stops promptly");
    // The server ends the backend once the client has said goodbye; wait for it to.
    tokio::time::timeout(PATIENCE, async {
        while listener_connections(&pool).await > 0 {
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
    })
    .await
    .expect("the listener's connection is closed");
    database.close().await;
}

async fn an_aborted_listener_stops(scratch: &ScratchDatabase) {
    let database = instance(scratch).await;
    let pool = pg_pool(&database);
    let (sink, _heard) = recording_sink();
    let listener = spawn_pg_listener(&pool, sink).await.unwrap();

    listener.abort();
    tokio::time::timeout(PATIENCE, async {
        while !listener.is_finished() {
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
    })
    .await
    .expect("the aborted listener stops");
    tokio::time::timeout(PATIENCE, listener.shutdown())
        .await
        .expect("shutting down an aborted listener returns at once");
    database.close().await;
}
