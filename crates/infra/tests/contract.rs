//! The repository contract: every port's documented behaviour, on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use tokio::sync::Barrier;
use uuid::Uuid;

use carehub_domain::clock::{Clock as _, SystemClock};
use carehub_domain::page::PageRequest;
use carehub_domain::password::PasswordHash;
use carehub_domain::token::{NewRefreshToken, RefreshTokenHash, RotateOutcome, SessionId, TokenId};
use carehub_domain::user::{
    CreateUserError, Email, FullName, Role, User, UserChanges, UserFilter, UserId, UserStatus,
    Username,
};
use carehub_infra::Repositories;
use carehub_infra::testing::{Backend, ScratchDatabase};

/// Expands each named test body into `sqlite::name` and `postgres::name`, each on its own
/// scratch database. PostgreSQL tests are skipped when `CAREHUB_TEST_POSTGRES_URL` is unset.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        contract!(@backend sqlite, Sqlite, $($name),*);
        contract!(@backend postgres, Postgres, $($name),*);
    };
    (@backend $module:ident, $backend:ident, $($name:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(scratch) =
                        super::ScratchDatabase::create(super::Backend::$backend).await
                    else {
                        return;
                    };
                    let database = scratch
                        .connect_migrated()
                        .await
                        .expect("the scratch database connects and migrates");
                    super::$name(database.repositories()).await;
                    database.close().await;
                    drop(scratch);
                }
            )*
        }
    };
}

contract!(
    // Users.
    a_created_user_is_found_by_id_and_by_username_with_their_password_hash,
    a_user_that_does_not_exist_is_not_found,
    a_taken_username_is_refused,
    a_taken_username_is_refused_whatever_its_case,
    users_are_listed_by_role_and_by_status,
    paging_through_users_yields_every_user_exactly_once_in_id_order,
    an_update_changes_only_the_given_fields,
    an_email_can_be_set_and_cleared,
    updating_a_user_that_does_not_exist_finds_nobody,
    // Refresh tokens.
    a_fresh_refresh_token_rotates_into_a_replacement_of_the_same_session,
    rotating_a_used_refresh_token_again_reports_reuse_of_its_session,
    an_expired_refresh_token_is_dead,
    an_unknown_refresh_token_is_unknown,
    a_refused_rotation_stores_no_replacement,
    a_revoked_session_is_dead_while_the_users_other_sessions_still_rotate,
    revoking_a_session_twice_is_harmless,
    revoking_all_of_a_users_sessions_spares_other_users,
    a_tokens_session_and_owner_are_found_whatever_its_state,
    of_sixteen_concurrent_rotations_of_one_token_exactly_one_wins,
    purging_removes_expired_refresh_tokens_and_keeps_live_ones_rotatable,
    // Revoked access tokens.
    a_revoked_access_token_is_denied_and_others_are_not,
    revoking_an_access_token_twice_is_harmless,
    an_access_token_is_denied_when_its_id_or_its_session_is_revoked,
    purging_forgets_only_expired_denials,
    // Login attempts.
    recent_failures_count_only_those_since_the_window_start_and_name_the_oldest,
    failures_are_counted_per_key,
    clearing_a_key_forgets_only_its_failures,
    purging_forgets_failures_older_than_the_cutoff,
);

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

fn now() -> OffsetDateTime {
    SystemClock.now()
}

fn new_user(username: &str, role: Role, status: UserStatus) -> User {
    User {
        id: UserId::generate(),
        username: Username::parse(username).expect("a valid username"),
        full_name: FullName::parse(&format!("Full Name of {username}")).expect("a valid name"),
        email: Some(Email::parse(&format!("{username}@clinic.example")).expect("a valid email")),
        role,
        status,
        created_at: now(),
    }
}

fn password_hash() -> PasswordHash {
    PasswordHash::new("$argon2id$dummy".into())
}

async fn create_user(repos: &Repositories, username: &str, role: Role, status: UserStatus) -> User {
    let user = new_user(username, role, status);
    repos
        .users
        .create(&user, &password_hash())
        .await
        .expect("the user is created");
    user
}

async fn some_user(repos: &Repositories, username: &str) -> User {
    create_user(repos, username, Role::Patient, UserStatus::Active).await
}

fn token_hash() -> RefreshTokenHash {
    RefreshTokenHash::new(Uuid::new_v4().to_string())
}

/// Stores a token expiring at `expires_at` in `session_id`.
async fn insert_token(
    repos: &Repositories,
    user_id: UserId,
    session_id: SessionId,
    expires_at: OffsetDateTime,
) -> RefreshTokenHash {
    let hash = token_hash();
    repos
        .refresh_tokens
        .insert(&NewRefreshToken {
            hash: hash.clone(),
            user_id,
            session_id,
            issued_at: now(),
            expires_at,
        })
        .await
        .expect("the refresh token is stored");
    hash
}

/// A new session for `user_id` with one fresh token valid for a day.
async fn sign_in(repos: &Repositories, user_id: UserId) -> (SessionId, RefreshTokenHash) {
    let session_id = SessionId::generate();
    let hash = insert_token(repos, user_id, session_id, now() + Duration::days(1)).await;
    (session_id, hash)
}

/// Rotates `presented` into a new replacement valid for a day; returns the outcome and the
/// replacement's hash.
async fn rotate(
    repos: &Repositories,
    presented: &RefreshTokenHash,
) -> (RotateOutcome, RefreshTokenHash) {
    let replacement = token_hash();
    let at = now();
    let outcome = repos
        .refresh_tokens
        .rotate(presented, &replacement, at, at + Duration::days(1))
        .await
        .expect("rotation runs");
    (outcome, replacement)
}

// ---------------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------------

async fn a_created_user_is_found_by_id_and_by_username_with_their_password_hash(
    repos: Repositories,
) {
    let mut user = new_user("dr.house", Role::Doctor, UserStatus::Pending);
    // Microseconds that are not a whole millisecond, so a backend keeping less would show.
    user.created_at = user.created_at.replace_nanosecond(123_456_000).unwrap();
    let hash = PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into());
    repos.users.create(&user, &hash).await.unwrap();

    let found = repos.users.find_by_id(user.id).await.unwrap();
    assert_eq!(found.as_ref(), Some(&user));
    assert_eq!(found.unwrap().created_at, user.created_at);

    let (found, found_hash) = repos
        .users
        .find_credentials(&user.username)
        .await
        .unwrap()
        .expect("the user is found by username");
    assert_eq!(found, user);
    assert_eq!(found.created_at, user.created_at);
    assert_eq!(found_hash.as_str(), hash.as_str());
}

async fn a_user_that_does_not_exist_is_not_found(repos: Repositories) {
    some_user(&repos, "someone").await;
    assert_eq!(
        repos.users.find_by_id(UserId::generate()).await.unwrap(),
        None
    );
    let nobody = Username::parse("nobody").unwrap();
    assert!(
        repos
            .users
            .find_credentials(&nobody)
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_taken_username_is_refused(repos: Repositories) {
    let first = some_user(&repos, "gregory").await;
    let second = new_user("gregory", Role::Doctor, UserStatus::Active);
    let refused = repos.users.create(&second, &password_hash()).await;
    assert!(
        matches!(refused, Err(CreateUserError::UsernameTaken)),
        "expected UsernameTaken, got {refused:?}"
    );
    // The first account is untouched and the second was not stored.
    assert_eq!(repos.users.find_by_id(first.id).await.unwrap(), Some(first));
    assert_eq!(repos.users.find_by_id(second.id).await.unwrap(), None);
}

async fn a_taken_username_is_refused_whatever_its_case(repos: Repositories) {
    some_user(&repos, "gregory").await;
    let shouted = new_user("GREGORY", Role::Doctor, UserStatus::Active);
    let refused = repos.users.create(&shouted, &password_hash()).await;
    assert!(
        matches!(refused, Err(CreateUserError::UsernameTaken)),
        "expected UsernameTaken, got {refused:?}"
    );
}

async fn users_are_listed_by_role_and_by_status(repos: Repositories) {
    let active_doctor = create_user(&repos, "doc.active", Role::Doctor, UserStatus::Active).await;
    let pending_doctor =
        create_user(&repos, "doc.pending", Role::Doctor, UserStatus::Pending).await;
    let pending_lab =
        create_user(&repos, "lab.pending", Role::Laboratory, UserStatus::Pending).await;
    let patient = create_user(&repos, "patient", Role::Patient, UserStatus::Active).await;

    let list = async |filter: UserFilter| {
        let page = repos
            .users
            .list(filter, PageRequest::first(100))
            .await
            .unwrap();
        assert_eq!(page.next, None);
        page.items
    };
    let sorted = |mut users: Vec<User>| {
        users.sort_by_key(|u| u.id);
        users
    };

    let doctors = UserFilter {
        role: Some(Role::Doctor),
        status: None,
    };
    assert_eq!(
        list(doctors).await,
        sorted(vec![active_doctor.clone(), pending_doctor.clone()])
    );

    let pending = UserFilter {
        role: None,
        status: Some(UserStatus::Pending),
    };
    assert_eq!(
        list(pending).await,
        sorted(vec![pending_doctor.clone(), pending_lab.clone()])
    );

    let pending_doctors = UserFilter {
        role: Some(Role::Doctor),
        status: Some(UserStatus::Pending),
    };
    assert_eq!(list(pending_doctors).await, vec![pending_doctor.clone()]);

    let suspended = UserFilter {
        role: None,
        status: Some(UserStatus::Suspended),
    };
    assert_eq!(list(suspended).await, vec![]);

    assert_eq!(
        list(UserFilter::default()).await,
        sorted(vec![active_doctor, pending_doctor, pending_lab, patient])
    );
}

async fn paging_through_users_yields_every_user_exactly_once_in_id_order(repos: Repositories) {
    let mut expected = Vec::new();
    for n in 0..7 {
        expected.push(some_user(&repos, &format!("user{n}")).await);
    }
    expected.sort_by_key(|u| u.id);

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut next = None;
    loop {
        let request = PageRequest::new(Some(3), next).unwrap();
        let page = repos
            .users
            .list(UserFilter::default(), request)
            .await
            .unwrap();
        sizes.push(page.items.len());
        if let Some(key) = page.next {
            assert_eq!(
                Some(key),
                page.items.last().map(|u| u.id),
                "next continues after the last item of the page"
            );
        }
        seen.extend(page.items);
        next = page.next;
        if next.is_none() {
            break;
        }
        assert!(sizes.len() < 10, "paging does not end");
    }
    assert_eq!(sizes, vec![3, 3, 1]);
    assert_eq!(seen, expected);

    // A page that ends exactly at the last user says no more follow.
    let request = PageRequest::new(Some(7), None).unwrap();
    let page = repos
        .users
        .list(UserFilter::default(), request)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 7);
    assert_eq!(page.next, None);
}

async fn an_update_changes_only_the_given_fields(repos: Repositories) {
    let user = create_user(&repos, "ann", Role::Secretary, UserStatus::Pending).await;
    let bystander = some_user(&repos, "bystander").await;

    let unchanged = repos
        .users
        .update(user.id, &UserChanges::default())
        .await
        .unwrap();
    assert_eq!(unchanged.as_ref(), Some(&user));

    let renamed = repos
        .users
        .update(
            user.id,
            &UserChanges {
                full_name: Some(FullName::parse("Ann Other").unwrap()),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap()
        .expect("the user exists");
    let mut expected = user.clone();
    expected.full_name = FullName::parse("Ann Other").unwrap();
    assert_eq!(renamed, expected);

    let promoted = repos
        .users
        .update(
            user.id,
            &UserChanges {
                role: Some(Role::Doctor),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap()
        .expect("the user exists");
    expected.role = Role::Doctor;
    assert_eq!(promoted, expected);

    let suspended = repos
        .users
        .update(
            user.id,
            &UserChanges {
                status: Some(UserStatus::Suspended),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap()
        .expect("the user exists");
    expected.status = UserStatus::Suspended;
    assert_eq!(suspended, expected);

    let everything = repos
        .users
        .update(
            user.id,
            &UserChanges {
                full_name: Some(FullName::parse("Ann Final").unwrap()),
                email: Some(Some(Email::parse("final@clinic.example").unwrap())),
                role: Some(Role::Laboratory),
                status: Some(UserStatus::Active),
            },
        )
        .await
        .unwrap()
        .expect("the user exists");
    expected.full_name = FullName::parse("Ann Final").unwrap();
    expected.email = Some(Email::parse("final@clinic.example").unwrap());
    expected.role = Role::Laboratory;
    expected.status = UserStatus::Active;
    assert_eq!(everything, expected);

    // What update returned is what is stored, including the untouched username and password.
    assert_eq!(
        repos.users.find_by_id(user.id).await.unwrap(),
        Some(expected.clone())
    );
    let (stored, hash) = repos
        .users
        .find_credentials(&user.username)
        .await
        .unwrap()
        .expect("the user is still found by username");
    assert_eq!(stored, expected);
    assert_eq!(hash.as_str(), password_hash().as_str());
    // Nobody else changed.
    assert_eq!(
        repos.users.find_by_id(bystander.id).await.unwrap(),
        Some(bystander)
    );
}

async fn an_email_can_be_set_and_cleared(repos: Repositories) {
    let mut user = new_user("ann", Role::Patient, UserStatus::Active);
    user.email = None;
    repos.users.create(&user, &password_hash()).await.unwrap();
    assert_eq!(
        repos
            .users
            .find_by_id(user.id)
            .await
            .unwrap()
            .unwrap()
            .email,
        None
    );

    let address = Email::parse("ann@clinic.example").unwrap();
    let with_email = repos
        .users
        .update(
            user.id,
            &UserChanges {
                email: Some(Some(address.clone())),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap()
        .expect("the user exists");
    assert_eq!(with_email.email, Some(address.clone()));

    // Leaving the email alone keeps it.
    let kept = repos
        .users
        .update(
            user.id,
            &UserChanges {
                role: Some(Role::Patient),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap()
        .expect("the user exists");
    assert_eq!(kept.email, Some(address));

    let cleared = repos
        .users
        .update(
            user.id,
            &UserChanges {
                email: Some(None),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap()
        .expect("the user exists");
    assert_eq!(cleared, user);
    assert_eq!(
        repos
            .users
            .find_by_id(user.id)
            .await
            .unwrap()
            .unwrap()
            .email,
        None
    );
}

async fn updating_a_user_that_does_not_exist_finds_nobody(repos: Repositories) {
    let existing = some_user(&repos, "existing").await;
    let changes = UserChanges {
        full_name: Some(FullName::parse("Ghost").unwrap()),
        status: Some(UserStatus::Suspended),
        ..UserChanges::default()
    };
    assert_eq!(
        repos
            .users
            .update(UserId::generate(), &changes)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        repos.users.find_by_id(existing.id).await.unwrap(),
        Some(existing)
    );
}

// ---------------------------------------------------------------------------------------------
// Refresh tokens
// ---------------------------------------------------------------------------------------------

async fn a_fresh_refresh_token_rotates_into_a_replacement_of_the_same_session(repos: Repositories) {
    let user = some_user(&repos, "ann").await;
    let (session_id, first) = sign_in(&repos, user.id).await;

    let (outcome, second) = rotate(&repos, &first).await;
    assert_eq!(
        outcome,
        RotateOutcome::Rotated {
            user_id: user.id,
            session_id
        }
    );
    assert_eq!(
        repos.refresh_tokens.find_session(&second).await.unwrap(),
        Some((user.id, session_id))
    );

    let (outcome, third) = rotate(&repos, &second).await;
    assert_eq!(
        outcome,
        RotateOutcome::Rotated {
            user_id: user.id,
            session_id
        }
    );
    let (outcome, _) = rotate(&repos, &third).await;
    assert_eq!(
        outcome,
        RotateOutcome::Rotated {
            user_id: user.id,
            session_id
        }
    );
}

async fn rotating_a_used_refresh_token_again_reports_reuse_of_its_session(repos: Repositories) {
    let user = some_user(&repos, "ann").await;
    let (session_id, first) = sign_in(&repos, user.id).await;
    let (_, other_first) = sign_in(&repos, user.id).await;

    let (outcome, second) = rotate(&repos, &first).await;
    assert!(matches!(outcome, RotateOutcome::Rotated { .. }));

    let (replayed, _) = rotate(&repos, &first).await;
    assert_eq!(replayed, RotateOutcome::Reused { session_id });
    // Again: a replay stays a replay.
    let (replayed, _) = rotate(&repos, &first).await;
    assert_eq!(replayed, RotateOutcome::Reused { session_id });

    // The replay consumed nothing: the legitimate replacement and another session still rotate.
    let (outcome, _) = rotate(&repos, &second).await;
    assert_eq!(
        outcome,
        RotateOutcome::Rotated {
            user_id: user.id,
            session_id
        }
    );
    let (outcome, _) = rotate(&repos, &other_first).await;
    assert!(matches!(outcome, RotateOutcome::Rotated { .. }));
}

async fn an_expired_refresh_token_is_dead(repos: Repositories) {
    let user = some_user(&repos, "ann").await;
    let session_id = SessionId::generate();
    let expired = insert_token(&repos, user.id, session_id, now() - Duration::seconds(1)).await;

    let (outcome, replacement) = rotate(&repos, &expired).await;
    assert_eq!(outcome, RotateOutcome::Dead);
    assert_eq!(
        repos
            .refresh_tokens
            .find_session(&replacement)
            .await
            .unwrap(),
        None
    );
    // Dead stays dead: the refused rotation did not mark it used.
    let (outcome, _) = rotate(&repos, &expired).await;
    assert_eq!(outcome, RotateOutcome::Dead);
}

async fn an_unknown_refresh_token_is_unknown(repos: Repositories) {
    let user = some_user(&repos, "ann").await;
    sign_in(&repos, user.id).await;
    let (outcome, replacement) = rotate(&repos, &token_hash()).await;
    assert_eq!(outcome, RotateOutcome::Unknown);
    assert_eq!(
        repos
            .refresh_tokens
            .find_session(&replacement)
            .await
            .unwrap(),
        None
    );
}

async fn a_refused_rotation_stores_no_replacement(repos: Repositories) {
    let user = some_user(&repos, "ann").await;
    let (session_id, first) = sign_in(&repos, user.id).await;
    let (_, second) = rotate(&repos, &first).await;

    let (outcome, reused_replacement) = rotate(&repos, &first).await;
    assert_eq!(outcome, RotateOutcome::Reused { session_id });
    assert_eq!(
        repos
            .refresh_tokens
            .find_session(&reused_replacement)
            .await
            .unwrap(),
        None
    );
    let (outcome, _) = rotate(&repos, &reused_replacement).await;
    assert_eq!(outcome, RotateOutcome::Unknown);

    repos
        .refresh_tokens
        .revoke_session(session_id, now())
        .await
        .unwrap();
    let (outcome, dead_replacement) = rotate(&repos, &second).await;
    assert_eq!(outcome, RotateOutcome::Dead);
    assert_eq!(
        repos
            .refresh_tokens
            .find_session(&dead_replacement)
            .await
            .unwrap(),
        None
    );
}

async fn a_revoked_session_is_dead_while_the_users_other_sessions_still_rotate(
    repos: Repositories,
) {
    let user = some_user(&repos, "ann").await;
    let (revoked, revoked_token) = sign_in(&repos, user.id).await;
    let (kept, kept_token) = sign_in(&repos, user.id).await;

    repos
        .refresh_tokens
        .revoke_session(revoked, now())
        .await
        .unwrap();

    let (outcome, _) = rotate(&repos, &revoked_token).await;
    assert_eq!(outcome, RotateOutcome::Dead);
    let (outcome, _) = rotate(&repos, &kept_token).await;
    assert_eq!(
        outcome,
        RotateOutcome::Rotated {
            user_id: user.id,
            session_id: kept
        }
    );
}

async fn revoking_a_session_twice_is_harmless(repos: Repositories) {
    let user = some_user(&repos, "ann").await;
    let (session_id, token) = sign_in(&repos, user.id).await;
    let (_, other_token) = sign_in(&repos, user.id).await;

    repos
        .refresh_tokens
        .revoke_session(session_id, now())
        .await
        .unwrap();
    repos
        .refresh_tokens
        .revoke_session(session_id, now())
        .await
        .expect("revoking again succeeds");
    repos
        .refresh_tokens
        .revoke_session(SessionId::generate(), now())
        .await
        .expect("revoking an unknown session succeeds");

    let (outcome, _) = rotate(&repos, &token).await;
    assert_eq!(outcome, RotateOutcome::Dead);
    let (outcome, _) = rotate(&repos, &other_token).await;
    assert!(matches!(outcome, RotateOutcome::Rotated { .. }));
}

async fn revoking_all_of_a_users_sessions_spares_other_users(repos: Repositories) {
    let ann = some_user(&repos, "ann").await;
    let bob = some_user(&repos, "bob").await;
    let (_, ann_laptop) = sign_in(&repos, ann.id).await;
    let (_, ann_phone) = sign_in(&repos, ann.id).await;
    let (ann_rotated_session, ann_old) = sign_in(&repos, ann.id).await;
    let (outcome, ann_current) = rotate(&repos, &ann_old).await;
    assert!(matches!(outcome, RotateOutcome::Rotated { .. }));
    let (bob_session, bob_token) = sign_in(&repos, bob.id).await;

    repos
        .refresh_tokens
        .revoke_all_for_user(ann.id, now())
        .await
        .unwrap();

    for token in [&ann_laptop, &ann_phone, &ann_current] {
        let (outcome, _) = rotate(&repos, token).await;
        assert_eq!(outcome, RotateOutcome::Dead);
    }
    // Her session is still hers, even revoked.
    assert_eq!(
        repos
            .refresh_tokens
            .find_session(&ann_current)
            .await
            .unwrap(),
        Some((ann.id, ann_rotated_session))
    );
    let (outcome, _) = rotate(&repos, &bob_token).await;
    assert_eq!(
        outcome,
        RotateOutcome::Rotated {
            user_id: bob.id,
            session_id: bob_session
        }
    );
}

async fn a_tokens_session_and_owner_are_found_whatever_its_state(repos: Repositories) {
    let ann = some_user(&repos, "ann").await;
    let bob = some_user(&repos, "bob").await;
    let (ann_session, first) = sign_in(&repos, ann.id).await;
    let (bob_session, bob_token) = sign_in(&repos, bob.id).await;

    assert_eq!(
        repos.refresh_tokens.find_session(&first).await.unwrap(),
        Some((ann.id, ann_session))
    );
    assert_eq!(
        repos.refresh_tokens.find_session(&bob_token).await.unwrap(),
        Some((bob.id, bob_session))
    );
    assert_eq!(
        repos
            .refresh_tokens
            .find_session(&token_hash())
            .await
            .unwrap(),
        None
    );

    // Used.
    let (_, second) = rotate(&repos, &first).await;
    assert_eq!(
        repos.refresh_tokens.find_session(&first).await.unwrap(),
        Some((ann.id, ann_session))
    );
    // Revoked.
    repos
        .refresh_tokens
        .revoke_session(ann_session, now())
        .await
        .unwrap();
    assert_eq!(
        repos.refresh_tokens.find_session(&second).await.unwrap(),
        Some((ann.id, ann_session))
    );
    // Expired (but not yet purged).
    let expired_session = SessionId::generate();
    let expired = insert_token(&repos, bob.id, expired_session, now() - Duration::hours(1)).await;
    assert_eq!(
        repos.refresh_tokens.find_session(&expired).await.unwrap(),
        Some((bob.id, expired_session))
    );
}

async fn of_sixteen_concurrent_rotations_of_one_token_exactly_one_wins(repos: Repositories) {
    const RACERS: usize = 16;
    // A race is won or lost by timing; several rounds make a lucky pass of a racy adapter
    // unlikely. Each round races on the token the previous round's winner got.
    const ROUNDS: usize = 8;
    let user = some_user(&repos, "ann").await;
    let (session_id, mut presented) = sign_in(&repos, user.id).await;

    for round in 0..ROUNDS {
        let start = Arc::new(Barrier::new(RACERS));
        let racers: Vec<_> = (0..RACERS)
            .map(|_| {
                let tokens = Arc::clone(&repos.refresh_tokens);
                let start = Arc::clone(&start);
                let presented = presented.clone();
                let replacement = token_hash();
                tokio::spawn(async move {
                    start.wait().await;
                    let at = now();
                    let outcome = tokens
                        .rotate(&presented, &replacement, at, at + Duration::days(1))
                        .await
                        .expect("a concurrent rotation does not fail");
                    (outcome, replacement)
                })
            })
            .collect();
        let mut results = Vec::with_capacity(RACERS);
        for racer in racers {
            results.push(racer.await.expect("the racer does not panic"));
        }

        let winners: Vec<_> = results
            .iter()
            .filter(|(outcome, _)| matches!(outcome, RotateOutcome::Rotated { .. }))
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one rotation wins: {:?}",
            results.iter().map(|(o, _)| o).collect::<Vec<_>>()
        );
        let (winner, winning_replacement) = winners[0].clone();
        assert_eq!(
            winner,
            RotateOutcome::Rotated {
                user_id: user.id,
                session_id
            }
        );
        for (outcome, replacement) in &results {
            if *replacement == winning_replacement {
                continue;
            }
            assert_eq!(outcome, &RotateOutcome::Reused { session_id });
            assert_eq!(
                repos
                    .refresh_tokens
                    .find_session(replacement)
                    .await
                    .unwrap(),
                None,
                "round {round}: a losing rotation stored its replacement"
            );
        }
        // Only the winner's replacement carries the session on.
        assert_eq!(
            repos
                .refresh_tokens
                .find_session(&winning_replacement)
                .await
                .unwrap(),
            Some((user.id, session_id))
        );
        presented = winning_replacement;
    }

    let (outcome, _) = rotate(&repos, &presented).await;
    assert_eq!(
        outcome,
        RotateOutcome::Rotated {
            user_id: user.id,
            session_id
        }
    );
}

async fn purging_removes_expired_refresh_tokens_and_keeps_live_ones_rotatable(repos: Repositories) {
    let user = some_user(&repos, "ann").await;
    let at = now();
    let expired_session = SessionId::generate();
    let long_expired = insert_token(&repos, user.id, expired_session, at - Duration::days(2)).await;
    let just_expired = insert_token(
        &repos,
        user.id,
        SessionId::generate(),
        at - Duration::seconds(1),
    )
    .await;
    let (live_session, live) = sign_in(&repos, user.id).await;
    // A live session whose old, used token expired: the session survives with its live token.
    let mixed_session = SessionId::generate();
    let old_in_mixed = insert_token(&repos, user.id, mixed_session, at - Duration::hours(1)).await;
    let current_in_mixed =
        insert_token(&repos, user.id, mixed_session, at + Duration::days(1)).await;
    // Expiring exactly at the cutoff is not expired before it.
    let at_cutoff_session = SessionId::generate();
    let at_cutoff = insert_token(&repos, user.id, at_cutoff_session, at).await;

    let purged = repos.refresh_tokens.purge_expired(at).await.unwrap();
    assert_eq!(purged, 3);

    for gone in [&long_expired, &just_expired, &old_in_mixed] {
        assert_eq!(repos.refresh_tokens.find_session(gone).await.unwrap(), None);
        let (outcome, _) = rotate(&repos, gone).await;
        assert_eq!(outcome, RotateOutcome::Unknown);
    }
    let (outcome, _) = rotate(&repos, &live).await;
    assert_eq!(
        outcome,
        RotateOutcome::Rotated {
            user_id: user.id,
            session_id: live_session
        }
    );
    let (outcome, _) = rotate(&repos, &current_in_mixed).await;
    assert_eq!(
        outcome,
        RotateOutcome::Rotated {
            user_id: user.id,
            session_id: mixed_session
        }
    );

    assert_eq!(
        repos.refresh_tokens.find_session(&at_cutoff).await.unwrap(),
        Some((user.id, at_cutoff_session))
    );

    // Nothing more to purge.
    assert_eq!(repos.refresh_tokens.purge_expired(at).await.unwrap(), 0);
}

// ---------------------------------------------------------------------------------------------
// Revoked access tokens
// ---------------------------------------------------------------------------------------------

async fn a_revoked_access_token_is_denied_and_others_are_not(repos: Repositories) {
    let revoked = TokenId::generate();
    let other = TokenId::generate();
    assert!(!repos.revoked_tokens.is_revoked(revoked).await.unwrap());

    repos
        .revoked_tokens
        .revoke(revoked, now() + Duration::minutes(15))
        .await
        .unwrap();

    assert!(repos.revoked_tokens.is_revoked(revoked).await.unwrap());
    assert!(!repos.revoked_tokens.is_revoked(other).await.unwrap());
}

async fn an_access_token_is_denied_when_its_id_or_its_session_is_revoked(repos: Repositories) {
    let user = some_user(&repos, "ann").await;
    let (session, _) = sign_in(&repos, user.id).await;
    let (other_session, _) = sign_in(&repos, user.id).await;
    let (token, other_token) = (TokenId::generate(), TokenId::generate());
    let denied = |token, session| {
        let repos = repos.clone();
        async move {
            repos
                .revoked_tokens
                .is_denied(token, session)
                .await
                .unwrap()
        }
    };
    assert!(!denied(token, session).await, "a live session and token");
    assert!(
        denied(token, SessionId::generate()).await,
        "a session that does not exist"
    );

    repos
        .revoked_tokens
        .revoke(token, now() + Duration::minutes(15))
        .await
        .unwrap();
    assert!(denied(token, session).await, "a revoked token id");
    assert!(
        !denied(other_token, session).await,
        "another token of the session"
    );

    repos
        .refresh_tokens
        .revoke_session(session, now())
        .await
        .unwrap();
    assert!(denied(other_token, session).await, "a revoked session");
    assert!(
        !denied(other_token, other_session).await,
        "another session of the user"
    );

    repos
        .refresh_tokens
        .revoke_all_for_user(user.id, now())
        .await
        .unwrap();
    assert!(
        denied(other_token, other_session).await,
        "all sessions of a suspended user"
    );
}

async fn revoking_an_access_token_twice_is_harmless(repos: Repositories) {
    let token = TokenId::generate();
    let expires_at = now() + Duration::minutes(15);
    repos
        .revoked_tokens
        .revoke(token, expires_at)
        .await
        .unwrap();
    repos
        .revoked_tokens
        .revoke(token, expires_at)
        .await
        .expect("revoking again succeeds");
    repos
        .revoked_tokens
        .revoke(token, expires_at + Duration::minutes(1))
        .await
        .expect("revoking again with another expiry succeeds");
    assert!(repos.revoked_tokens.is_revoked(token).await.unwrap());
}

async fn purging_forgets_only_expired_denials(repos: Repositories) {
    let at = now();
    let long_expired = TokenId::generate();
    let just_expired = TokenId::generate();
    let live = TokenId::generate();
    let at_cutoff = TokenId::generate();
    repos.revoked_tokens.revoke(at_cutoff, at).await.unwrap();
    repos
        .revoked_tokens
        .revoke(long_expired, at - Duration::hours(1))
        .await
        .unwrap();
    repos
        .revoked_tokens
        .revoke(just_expired, at - Duration::seconds(1))
        .await
        .unwrap();
    repos
        .revoked_tokens
        .revoke(live, at + Duration::minutes(15))
        .await
        .unwrap();

    assert_eq!(repos.revoked_tokens.purge_expired(at).await.unwrap(), 2);

    assert!(!repos.revoked_tokens.is_revoked(long_expired).await.unwrap());
    assert!(!repos.revoked_tokens.is_revoked(just_expired).await.unwrap());
    assert!(repos.revoked_tokens.is_revoked(live).await.unwrap());
    assert!(
        repos.revoked_tokens.is_revoked(at_cutoff).await.unwrap(),
        "a denial expiring exactly at the cutoff is kept"
    );
    assert_eq!(repos.revoked_tokens.purge_expired(at).await.unwrap(), 0);
}

// ---------------------------------------------------------------------------------------------
// Login attempts
// ---------------------------------------------------------------------------------------------

async fn recent_failures_count_only_those_since_the_window_start_and_name_the_oldest(
    repos: Repositories,
) {
    let at = now();
    let since = at - Duration::minutes(15);
    let attempts = &repos.login_attempts;
    attempts
        .record_failure("ann", since - Duration::microseconds(1))
        .await
        .unwrap();
    attempts
        .record_failure("ann", since - Duration::hours(1))
        .await
        .unwrap();
    attempts.record_failure("ann", at).await.unwrap();
    attempts
        .record_failure("ann", at - Duration::minutes(5))
        .await
        .unwrap();
    // Exactly at the window's start: inside it.
    attempts.record_failure("ann", since).await.unwrap();

    let recent = attempts.recent_failures("ann", since).await.unwrap();
    assert_eq!(recent.count, 3);
    assert_eq!(recent.oldest, Some(since));

    let later = attempts
        .recent_failures("ann", at - Duration::minutes(10))
        .await
        .unwrap();
    assert_eq!(later.count, 2);
    assert_eq!(later.oldest, Some(at - Duration::minutes(5)));

    let none = attempts
        .recent_failures("ann", at + Duration::microseconds(1))
        .await
        .unwrap();
    assert_eq!(none.count, 0);
    assert_eq!(none.oldest, None);
}

async fn failures_are_counted_per_key(repos: Repositories) {
    let at = now();
    let since = at - Duration::minutes(15);
    let attempts = &repos.login_attempts;
    attempts.record_failure("ann", at).await.unwrap();
    attempts.record_failure("ann", at).await.unwrap();
    attempts
        .record_failure("bob", at - Duration::minutes(1))
        .await
        .unwrap();

    let ann = attempts.recent_failures("ann", since).await.unwrap();
    assert_eq!(ann.count, 2, "two failures at the same instant both count");
    assert_eq!(ann.oldest, Some(at));
    let bob = attempts.recent_failures("bob", since).await.unwrap();
    assert_eq!(bob.count, 1);
    assert_eq!(bob.oldest, Some(at - Duration::minutes(1)));
    let carol = attempts.recent_failures("carol", since).await.unwrap();
    assert_eq!(carol.count, 0);
    assert_eq!(carol.oldest, None);
}

async fn clearing_a_key_forgets_only_its_failures(repos: Repositories) {
    let at = now();
    let since = at - Duration::minutes(15);
    let attempts = &repos.login_attempts;
    for _ in 0..3 {
        attempts.record_failure("ann", at).await.unwrap();
    }
    attempts.record_failure("bob", at).await.unwrap();

    attempts.clear("ann").await.unwrap();
    attempts
        .clear("carol")
        .await
        .expect("clearing a key without failures succeeds");

    let ann = attempts.recent_failures("ann", since).await.unwrap();
    assert_eq!(ann.count, 0);
    assert_eq!(ann.oldest, None);
    assert_eq!(
        attempts.recent_failures("bob", since).await.unwrap().count,
        1
    );

    // Counting starts afresh.
    attempts.record_failure("ann", at).await.unwrap();
    assert_eq!(
        attempts.recent_failures("ann", since).await.unwrap().count,
        1
    );
}

async fn purging_forgets_failures_older_than_the_cutoff(repos: Repositories) {
    let at = now();
    let cutoff = at - Duration::days(1);
    let attempts = &repos.login_attempts;
    attempts
        .record_failure("ann", cutoff - Duration::days(3))
        .await
        .unwrap();
    attempts
        .record_failure("bob", cutoff - Duration::seconds(1))
        .await
        .unwrap();
    attempts.record_failure("ann", cutoff).await.unwrap();
    attempts.record_failure("ann", at).await.unwrap();

    assert_eq!(attempts.purge_older_than(cutoff).await.unwrap(), 2);

    let long_ago = at - Duration::days(30);
    let ann = attempts.recent_failures("ann", long_ago).await.unwrap();
    assert_eq!(ann.count, 2);
    assert_eq!(ann.oldest, Some(cutoff));
    assert_eq!(
        attempts
            .recent_failures("bob", long_ago)
            .await
            .unwrap()
            .count,
        0
    );
    assert_eq!(attempts.purge_older_than(cutoff).await.unwrap(), 0);
}
