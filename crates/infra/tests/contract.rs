//! The repository contract: every port's documented behaviour, on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use tokio::sync::Barrier;
use uuid::Uuid;

use carehub_domain::identity::{
    CreateUserError, Email, FullName, NewRefreshToken, PasswordHash, RefreshTokenHash, Role,
    RotateOutcome, SessionId, TokenId, User, UserChanges, UserFilter, UserId, UserStatus, Username,
};
use carehub_domain::kernel::{Clock as _, PageRequest, SystemClock};
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
    // Audit trail, medical information and clinical notes.
    recorded_audit_events_are_listed_newest_first_with_every_field_and_the_actors_name,
    the_audit_trail_filters_by_patient_actor_and_time_and_all_together,
    paging_through_the_audit_trail_yields_every_event_once_newest_first,
    a_hundred_concurrent_audit_records_are_all_stored,
    medical_information_is_empty_before_it_is_first_written,
    written_medical_information_reads_back_whole_and_a_second_write_replaces_it,
    a_medical_write_stores_its_audit_event_and_a_failed_one_stores_neither,
    an_appended_note_is_returned_as_stored_with_its_authors_name,
    amending_a_note_of_another_patient_is_refused_and_nothing_is_written,
    notes_are_listed_newest_first_by_kind_and_page_by_page,
    // Patients, care teams and emergency access.
    a_registered_patient_reads_back_with_every_field_and_its_first_care_team,
    a_taken_record_number_is_refused_and_nothing_is_written,
    a_taken_identifier_is_refused_naming_its_system_and_nothing_is_written,
    an_account_linked_to_another_patient_is_refused_and_nothing_is_written,
    an_update_replaces_details_and_identifiers_and_returns_what_is_stored,
    a_stale_or_conflicting_update_is_refused_and_changes_nothing,
    search_matches_names_regardless_of_case_record_numbers_however_typed_and_identifiers_exactly,
    a_doctor_finds_their_care_team_and_others_only_by_exact_record_number_or_identifier,
    paging_through_search_results_yields_each_patient_once_in_id_order,
    percent_underscore_and_backslash_in_search_text_are_taken_literally,
    access_facts_tell_own_record_current_care_team_and_unexpired_emergency_access,
    care_team_members_are_added_once_ended_once_and_listed_oldest_first_with_names,
    of_concurrent_additions_of_one_doctor_exactly_one_succeeds,
    emergency_accesses_are_listed_newest_first_filtered_and_page_by_page,
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
// ---------------------------------------------------------------------------------------------
// Audit trail, medical information and clinical notes
// ---------------------------------------------------------------------------------------------

use records_contract::{
    a_hundred_concurrent_audit_records_are_all_stored,
    a_medical_write_stores_its_audit_event_and_a_failed_one_stores_neither,
    amending_a_note_of_another_patient_is_refused_and_nothing_is_written,
    an_appended_note_is_returned_as_stored_with_its_authors_name,
    medical_information_is_empty_before_it_is_first_written,
    notes_are_listed_newest_first_by_kind_and_page_by_page,
    paging_through_the_audit_trail_yields_every_event_once_newest_first,
    recorded_audit_events_are_listed_newest_first_with_every_field_and_the_actors_name,
    the_audit_trail_filters_by_patient_actor_and_time_and_all_together,
    written_medical_information_reads_back_whole_and_a_second_write_replaces_it,
};

/// In a module of their own, so that their imports and fixtures cannot clash with the others'.
mod records_contract {
    use std::sync::Arc;

    use time::{Duration, OffsetDateTime};
    use tokio::sync::Barrier;
    use uuid::Uuid;

    use carehub_domain::access::Basis;
    use carehub_domain::audit::{
        AuditAction, AuditEntry, AuditEvent, AuditEventId, AuditFilter, Outcome,
    };
    use carehub_domain::identity::{FullName, Role, User, UserId, UserStatus};
    use carehub_domain::kernel::PageRequest;
    use carehub_domain::kernel::Text;
    use carehub_domain::patients::{
        AllergyInput, ConditionInput, MedicalInfo, MedicalInput, MedicalRecord, MedicationInput,
    };
    use carehub_domain::patients::{
        AppendNoteError, ClinicalNote, MAX_NOTE_CHARS, NoteId, NoteKind,
    };
    use carehub_domain::patients::{Contact, Mrn, Patient, PatientDetails, PatientId, Sex};
    use carehub_infra::testing::{Backend, ScratchDatabase};
    use carehub_infra::{Database, Repositories};

    use super::{create_user, now};

    /// `at` cut to whole microseconds, the precision both backends keep.
    fn whole_micros(at: OffsetDateTime) -> OffsetDateTime {
        at.replace_nanosecond(at.nanosecond() / 1_000 * 1_000)
            .unwrap()
    }

    fn audit_event_at(
        actor: UserId,
        patient_id: Option<PatientId>,
        action: AuditAction,
        at: OffsetDateTime,
    ) -> AuditEvent {
        AuditEvent {
            id: AuditEventId::generate(),
            at: whole_micros(at),
            actor_id: actor,
            actor_role: Role::Doctor,
            patient_id,
            action,
            outcome: Outcome::Allowed,
            basis: Some(Basis::CareTeam),
            request_id: Some(Uuid::new_v4().to_string()),
        }
    }

    /// Registers a minimal patient, as `by`.
    async fn register_some_patient(repos: &Repositories, by: UserId) -> PatientId {
        let at = whole_micros(now());
        let patient = Patient {
            id: PatientId::generate(),
            mrn: Mrn::random(),
            details: PatientDetails {
                full_name: FullName::parse("Ada Lovelace").unwrap(),
                date_of_birth: time::macros::date!(1985 - 12 - 10),
                sex: Sex::Female,
                contact: Contact::default(),
                identifiers: Vec::new(),
                insurance: None,
                emergency_contact: None,
                location: None,
                user_id: None,
            },
            created_at: at,
            updated_at: at,
        };
        let audit = audit_event_at(by, Some(patient.id), AuditAction::PatientCreate, at);
        repos
            .patients
            .create(&patient, &[], &audit)
            .await
            .expect("the patient is registered");
        patient.id
    }

    /// Every audit entry matching `filter`, paging through the whole trail.
    async fn whole_audit_trail(repos: &Repositories, filter: AuditFilter) -> Vec<AuditEntry> {
        let mut entries = Vec::new();
        let mut after = None;
        loop {
            let page = repos
                .audit
                .list(filter, PageRequest::new(Some(100), after).unwrap())
                .await
                .unwrap();
            entries.extend(page.items);
            after = page.next;
            if after.is_none() {
                return entries;
            }
        }
    }

    async fn audited_ids(repos: &Repositories, filter: AuditFilter) -> Vec<AuditEventId> {
        whole_audit_trail(repos, filter)
            .await
            .into_iter()
            .map(|entry| entry.event.id)
            .collect()
    }

    fn audit_of_patient(patient_id: PatientId) -> AuditFilter {
        AuditFilter {
            patient_id: Some(patient_id),
            ..AuditFilter::default()
        }
    }

    pub(super) async fn recorded_audit_events_are_listed_newest_first_with_every_field_and_the_actors_name(
        repos: Repositories,
    ) {
        let doctor = create_user(&repos, "dr.grey", Role::Doctor, UserStatus::Active).await;
        let gone = UserId::generate();
        let patient_id = PatientId::generate();
        let at = now();
        let mut allowed = audit_event_at(doctor.id, Some(patient_id), AuditAction::MedicalRead, at);
        // Microseconds that are not a whole millisecond, so a backend keeping less would show.
        allowed.at = allowed.at.replace_nanosecond(123_456_000).unwrap();
        let denied = AuditEvent {
            id: AuditEventId::generate(),
            at: whole_micros(at + Duration::seconds(1)),
            actor_id: doctor.id,
            actor_role: Role::Secretary,
            patient_id: None,
            action: AuditAction::PatientList,
            outcome: Outcome::Denied,
            basis: None,
            request_id: None,
        };
        let by_nobody = AuditEvent {
            actor_id: gone,
            actor_role: Role::Patient,
            basis: Some(Basis::OwnRecord),
            ..audit_event_at(gone, Some(patient_id), AuditAction::NotesRead, at)
        };
        let emergency = AuditEvent {
            basis: Some(Basis::EmergencyAccess),
            action: AuditAction::EmergencyAccessGrant,
            ..audit_event_at(doctor.id, Some(patient_id), AuditAction::PatientRead, at)
        };
        repos
            .audit
            .record(vec![allowed.clone(), denied.clone()])
            .await
            .unwrap();
        repos
            .audit
            .record(vec![by_nobody.clone(), emergency.clone()])
            .await
            .unwrap();

        let page = repos
            .audit
            .list(AuditFilter::default(), PageRequest::first(10))
            .await
            .unwrap();
        assert_eq!(page.next, None);
        let named = |event: &AuditEvent| AuditEntry {
            event: event.clone(),
            actor_name: Some(doctor.full_name.clone()),
        };
        assert_eq!(
            page.items,
            vec![
                named(&emergency),
                AuditEntry {
                    event: by_nobody,
                    actor_name: None,
                },
                named(&denied),
                named(&allowed),
            ]
        );
        assert_eq!(page.items[3].event.at, allowed.at);
    }

    pub(super) async fn the_audit_trail_filters_by_patient_actor_and_time_and_all_together(
        repos: Repositories,
    ) {
        let ann = create_user(&repos, "dr.ann", Role::Doctor, UserStatus::Active).await;
        let bob = create_user(&repos, "dr.bob", Role::Doctor, UserStatus::Active).await;
        let (p, q) = (PatientId::generate(), PatientId::generate());
        let t0 = whole_micros(now()) - Duration::hours(1);
        let t = |minutes| t0 + Duration::minutes(minutes);
        let events = vec![
            audit_event_at(ann.id, Some(p), AuditAction::PatientRead, t(0)),
            audit_event_at(bob.id, Some(p), AuditAction::PatientRead, t(1)),
            audit_event_at(ann.id, Some(q), AuditAction::PatientRead, t(2)),
            audit_event_at(bob.id, None, AuditAction::PatientList, t(3)),
            audit_event_at(ann.id, Some(p), AuditAction::MedicalRead, t(3)),
        ];
        repos.audit.record(events.clone()).await.unwrap();
        // Newest first, as the trail lists them.
        let ids = |picked: &[usize]| -> Vec<AuditEventId> {
            picked.iter().rev().map(|&i| events[i].id).collect()
        };

        let cases = [
            ("everything", AuditFilter::default(), ids(&[0, 1, 2, 3, 4])),
            ("patient p", audit_of_patient(p), ids(&[0, 1, 4])),
            ("patient q", audit_of_patient(q), ids(&[2])),
            (
                "actor ann",
                AuditFilter {
                    actor_id: Some(ann.id),
                    ..AuditFilter::default()
                },
                ids(&[0, 2, 4]),
            ),
            (
                "from t1, inclusive",
                AuditFilter {
                    from: Some(t(1)),
                    ..AuditFilter::default()
                },
                ids(&[1, 2, 3, 4]),
            ),
            (
                "to t2, exclusive",
                AuditFilter {
                    to: Some(t(2)),
                    ..AuditFilter::default()
                },
                ids(&[0, 1]),
            ),
            (
                "from t1 to t3",
                AuditFilter {
                    from: Some(t(1)),
                    to: Some(t(3)),
                    ..AuditFilter::default()
                },
                ids(&[1, 2]),
            ),
            (
                "a microsecond after t3",
                AuditFilter {
                    from: Some(t(3) + Duration::microseconds(1)),
                    ..AuditFilter::default()
                },
                vec![],
            ),
            (
                "patient p by ann",
                AuditFilter {
                    patient_id: Some(p),
                    actor_id: Some(ann.id),
                    ..AuditFilter::default()
                },
                ids(&[0, 4]),
            ),
            (
                "patient p by ann after t0",
                AuditFilter {
                    patient_id: Some(p),
                    actor_id: Some(ann.id),
                    from: Some(t(0) + Duration::microseconds(1)),
                    to: Some(t(4)),
                },
                ids(&[4]),
            ),
            (
                "patient p by bob before t1",
                AuditFilter {
                    patient_id: Some(p),
                    actor_id: Some(bob.id),
                    from: None,
                    to: Some(t(1)),
                },
                vec![],
            ),
        ];
        for (name, filter, expected) in cases {
            assert_eq!(audited_ids(&repos, filter).await, expected, "{name}");
        }
    }

    pub(super) async fn paging_through_the_audit_trail_yields_every_event_once_newest_first(
        repos: Repositories,
    ) {
        let actor = UserId::generate();
        let (p, q) = (PatientId::generate(), PatientId::generate());
        let mut of_p = Vec::new();
        for n in 0..12 {
            let patient = if n % 3 == 1 { q } else { p };
            let event = audit_event_at(actor, Some(patient), AuditAction::PatientRead, now());
            repos.audit.record(vec![event.clone()]).await.unwrap();
            if patient == p {
                of_p.push(event.id);
            }
        }
        of_p.reverse();
        assert_eq!(of_p.len(), 8);

        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        let mut after = None;
        loop {
            let page = repos
                .audit
                .list(
                    audit_of_patient(p),
                    PageRequest::new(Some(3), after).unwrap(),
                )
                .await
                .unwrap();
            sizes.push(page.items.len());
            if let Some(key) = page.next {
                assert_eq!(Some(key), page.items.last().map(|e| e.event.id));
            }
            seen.extend(page.items.into_iter().map(|e| e.event.id));
            after = page.next;
            if after.is_none() {
                break;
            }
            assert!(sizes.len() < 10, "paging does not end");
        }
        assert_eq!(sizes, vec![3, 3, 2]);
        assert_eq!(seen, of_p);
    }

    pub(super) async fn a_hundred_concurrent_audit_records_are_all_stored(repos: Repositories) {
        let patient_id = PatientId::generate();
        let barrier = Arc::new(Barrier::new(100));
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (repos, barrier) = (repos.clone(), barrier.clone());
                tokio::spawn(async move {
                    let event = audit_event_at(
                        UserId::generate(),
                        Some(patient_id),
                        AuditAction::PatientRead,
                        now(),
                    );
                    barrier.wait().await;
                    repos.audit.record(vec![event.clone()]).await.unwrap();
                    event.id
                })
            })
            .collect();
        let mut recorded = Vec::new();
        for task in tasks {
            recorded.push(task.await.unwrap());
        }
        recorded.sort();
        let mut stored = audited_ids(&repos, audit_of_patient(patient_id)).await;
        stored.reverse();
        assert_eq!(stored, recorded);
    }

    pub(super) async fn medical_information_is_empty_before_it_is_first_written(
        repos: Repositories,
    ) {
        let doctor = create_user(&repos, "dr.grey", Role::Doctor, UserStatus::Active).await;
        let patient_id = register_some_patient(&repos, doctor.id).await;
        assert_eq!(
            repos.medical.get(patient_id).await.unwrap(),
            MedicalRecord {
                patient_id,
                info: MedicalInfo::default(),
                updated_at: None,
                updated_by: None,
            }
        );
    }

    fn full_medical_info() -> MedicalInfo {
        MedicalInput {
            blood_type: Some("AB-".into()),
            allergies: vec![
                AllergyInput {
                    substance: Some("penicillin".into()),
                    reaction: Some("hives, \"severe\" itching".into()),
                    severity: Some("life_threatening".into()),
                },
                AllergyInput {
                    substance: Some("latex".into()),
                    reaction: None,
                    severity: None,
                },
            ],
            conditions: vec![
                ConditionInput {
                    name: Some("type 2 diabetes".into()),
                    code: Some("E11.9".into()),
                    since: Some("2019-04-01".into()),
                },
                ConditionInput {
                    name: Some("asthma".into()),
                    code: None,
                    since: None,
                },
            ],
            medications: vec![MedicationInput {
                name: Some("metformin".into()),
                dose: Some("500 mg".into()),
                frequency: Some("twice daily".into()),
            }],
        }
        .parse(time::macros::date!(2026 - 11 - 22))
        .unwrap()
    }

    pub(super) async fn written_medical_information_reads_back_whole_and_a_second_write_replaces_it(
        repos: Repositories,
    ) {
        let grey = create_user(&repos, "dr.grey", Role::Doctor, UserStatus::Active).await;
        let house = create_user(&repos, "dr.house", Role::Doctor, UserStatus::Active).await;
        let patient_id = register_some_patient(&repos, grey.id).await;
        let other = register_some_patient(&repos, grey.id).await;

        let info = full_medical_info();
        let at = now().replace_nanosecond(987_654_000).unwrap();
        let audit = audit_event_at(grey.id, Some(patient_id), AuditAction::MedicalUpdate, at);
        let stored = repos
            .medical
            .put(patient_id, &info, grey.id, at, &audit)
            .await
            .unwrap();
        let expected = MedicalRecord {
            patient_id,
            info: info.clone(),
            updated_at: Some(at),
            updated_by: Some(grey.id),
        };
        assert_eq!(stored, expected);
        assert_eq!(repos.medical.get(patient_id).await.unwrap(), expected);

        // The whole information is replaced: nothing of the first write remains.
        let mut replacement = MedicalInfo::default();
        replacement.medications.push(info.medications[0].clone());
        replacement.allergies.push(info.allergies[1].clone());
        let later = whole_micros(at + Duration::minutes(5));
        let audit = audit_event_at(
            house.id,
            Some(patient_id),
            AuditAction::MedicalUpdate,
            later,
        );
        let stored = repos
            .medical
            .put(patient_id, &replacement, house.id, later, &audit)
            .await
            .unwrap();
        let expected = MedicalRecord {
            patient_id,
            info: replacement,
            updated_at: Some(later),
            updated_by: Some(house.id),
        };
        assert_eq!(stored, expected);
        assert_eq!(repos.medical.get(patient_id).await.unwrap(), expected);

        // Another patient's record is untouched.
        assert_eq!(
            repos.medical.get(other).await.unwrap().info,
            MedicalInfo::default()
        );
    }

    pub(super) async fn a_medical_write_stores_its_audit_event_and_a_failed_one_stores_neither(
        repos: Repositories,
    ) {
        let doctor = create_user(&repos, "dr.grey", Role::Doctor, UserStatus::Active).await;
        let patient_id = register_some_patient(&repos, doctor.id).await;
        let audit = audit_event_at(
            doctor.id,
            Some(patient_id),
            AuditAction::MedicalUpdate,
            now(),
        );
        repos
            .medical
            .put(patient_id, &full_medical_info(), doctor.id, now(), &audit)
            .await
            .unwrap();
        let trail = whole_audit_trail(&repos, audit_of_patient(patient_id)).await;
        assert!(
            trail.iter().any(|entry| entry.event == audit),
            "the put's audit event is stored as given"
        );

        // A patient that does not exist: the write fails and its audit event is not stored.
        let nobody = PatientId::generate();
        let audit = audit_event_at(doctor.id, Some(nobody), AuditAction::MedicalUpdate, now());
        let refused = repos
            .medical
            .put(nobody, &full_medical_info(), doctor.id, now(), &audit)
            .await;
        assert!(refused.is_err(), "a write for an unknown patient fails");
        assert_eq!(audited_ids(&repos, audit_of_patient(nobody)).await, vec![]);
        assert_eq!(
            repos.medical.get(nobody).await.unwrap().updated_at,
            None,
            "nothing was stored"
        );
    }

    fn new_clinical_note(
        patient_id: PatientId,
        author: &User,
        kind: Option<NoteKind>,
        body: &str,
        amends: Option<NoteId>,
    ) -> ClinicalNote {
        ClinicalNote {
            id: NoteId::generate(),
            patient_id,
            author_id: author.id,
            author_name: None,
            kind,
            body: Text::multiline(body, MAX_NOTE_CHARS).unwrap(),
            amends,
            created_at: whole_micros(now()),
            appointment_id: None,
        }
    }

    async fn append_clinical_note(repos: &Repositories, note: &ClinicalNote) -> ClinicalNote {
        let audit = audit_event_at(
            note.author_id,
            Some(note.patient_id),
            AuditAction::NoteCreate,
            note.created_at,
        );
        repos
            .notes
            .append(note, &audit)
            .await
            .expect("the note is appended")
    }

    pub(super) async fn an_appended_note_is_returned_as_stored_with_its_authors_name(
        repos: Repositories,
    ) {
        let doctor = create_user(&repos, "dr.grey", Role::Doctor, UserStatus::Active).await;
        let patient_id = register_some_patient(&repos, doctor.id).await;
        let mut note = new_clinical_note(
            patient_id,
            &doctor,
            Some(NoteKind::CheckUp),
            "BP 120/80.\nNo complaints.\tFollow up in 6 months.",
            None,
        );
        note.created_at = note.created_at.replace_nanosecond(123_456_000).unwrap();
        let audit = audit_event_at(
            doctor.id,
            Some(patient_id),
            AuditAction::NoteCreate,
            note.created_at,
        );

        let stored = repos.notes.append(&note, &audit).await.unwrap();
        let expected = ClinicalNote {
            author_name: Some(doctor.full_name.clone()),
            ..note.clone()
        };
        assert_eq!(stored, expected);

        let listed = repos
            .notes
            .list(patient_id, None, PageRequest::first(10))
            .await
            .unwrap();
        assert_eq!(listed.items, vec![expected.clone()]);
        assert_eq!(listed.next, None);
        let trail = whole_audit_trail(&repos, audit_of_patient(patient_id)).await;
        assert!(trail.iter().any(|entry| entry.event == audit));

        // A correction of it, without a kind.
        let correction = new_clinical_note(
            patient_id,
            &doctor,
            None,
            "Correction: BP 125/80.",
            Some(note.id),
        );
        let stored = append_clinical_note(&repos, &correction).await;
        assert_eq!(stored.amends, Some(note.id));
        assert_eq!(stored.kind, None);
        assert_eq!(stored.author_name, Some(doctor.full_name));
    }

    pub(super) async fn amending_a_note_of_another_patient_is_refused_and_nothing_is_written(
        repos: Repositories,
    ) {
        let doctor = create_user(&repos, "dr.grey", Role::Doctor, UserStatus::Active).await;
        let p = register_some_patient(&repos, doctor.id).await;
        let q = register_some_patient(&repos, doctor.id).await;
        let of_q = append_clinical_note(
            &repos,
            &new_clinical_note(q, &doctor, None, "q's note", None),
        )
        .await;

        for amends in [of_q.id, NoteId::generate()] {
            let note = new_clinical_note(p, &doctor, None, "wrong amendment", Some(amends));
            let audit = audit_event_at(doctor.id, Some(p), AuditAction::NoteCreate, now());
            let refused = repos.notes.append(&note, &audit).await;
            assert!(
                matches!(refused, Err(AppendNoteError::UnknownAmended)),
                "expected UnknownAmended, got {refused:?}"
            );
            assert!(
                !audited_ids(&repos, audit_of_patient(p))
                    .await
                    .contains(&audit.id),
                "the refused note's audit event is not stored"
            );
        }
        let of_p = repos
            .notes
            .list(p, None, PageRequest::first(10))
            .await
            .unwrap();
        assert_eq!(of_p.items, vec![], "no note was stored");
        let of_q_now = repos
            .notes
            .list(q, None, PageRequest::first(10))
            .await
            .unwrap();
        assert_eq!(of_q_now.items, vec![of_q]);
    }

    pub(super) async fn notes_are_listed_newest_first_by_kind_and_page_by_page(
        repos: Repositories,
    ) {
        let grey = create_user(&repos, "dr.grey", Role::Doctor, UserStatus::Active).await;
        let house = create_user(&repos, "dr.house", Role::Doctor, UserStatus::Active).await;
        let p = register_some_patient(&repos, grey.id).await;
        let q = register_some_patient(&repos, grey.id).await;
        let kinds = [Some(NoteKind::CheckUp), Some(NoteKind::Progress), None];
        let mut notes = Vec::new();
        for n in 0..8 {
            let author = if n % 2 == 0 { &grey } else { &house };
            let note = new_clinical_note(p, author, kinds[n % 3], &format!("note {n}"), None);
            notes.push(append_clinical_note(&repos, &note).await);
            append_clinical_note(
                &repos,
                &new_clinical_note(q, author, kinds[n % 3], "other", None),
            )
            .await;
        }
        notes.reverse();

        let list_all = async |kind: Option<NoteKind>, limit: u32| {
            let mut seen = Vec::new();
            let mut sizes = Vec::new();
            let mut after = None;
            loop {
                let page = repos
                    .notes
                    .list(p, kind, PageRequest::new(Some(limit), after).unwrap())
                    .await
                    .unwrap();
                sizes.push(page.items.len());
                if let Some(key) = page.next {
                    assert_eq!(Some(key), page.items.last().map(|n| n.id));
                }
                seen.extend(page.items);
                after = page.next;
                if after.is_none() {
                    return (seen, sizes);
                }
                assert!(sizes.len() < 10, "paging does not end");
            }
        };

        let (all, sizes) = list_all(None, 100).await;
        assert_eq!(all, notes);
        assert_eq!(sizes, vec![8]);

        let (paged, sizes) = list_all(None, 3).await;
        assert_eq!(paged, notes);
        assert_eq!(sizes, vec![3, 3, 2]);

        let check_ups: Vec<ClinicalNote> = notes
            .iter()
            .filter(|n| n.kind == Some(NoteKind::CheckUp))
            .cloned()
            .collect();
        assert_eq!(check_ups.len(), 3);
        let (paged, sizes) = list_all(Some(NoteKind::CheckUp), 2).await;
        assert_eq!(paged, check_ups);
        assert_eq!(sizes, vec![2, 1]);

        let (discharges, _) = list_all(Some(NoteKind::Discharge), 10).await;
        assert_eq!(discharges, vec![]);
    }

    /// Like `contract!`, for tests that also need the database itself, not only its repositories.
    macro_rules! contract_on_database {
    ($($name:ident),* $(,)?) => {
        contract_on_database!(@backend sqlite_database, Sqlite, $($name),*);
        contract_on_database!(@backend postgres_database, Postgres, $($name),*);
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
                    super::$name(&database).await;
                    database.close().await;
                    drop(scratch);
                }
            )*
        }
    };
}

    contract_on_database!(the_database_refuses_to_change_or_delete_audit_events_and_notes);

    /// Runs `sql` directly on the database, past every repository.
    async fn execute_raw(database: &Database, sql: &'static str) -> Result<u64, sqlx::Error> {
        match database {
            Database::Sqlite(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .map(|done| done.rows_affected()),
            Database::Postgres(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .map(|done| done.rows_affected()),
        }
    }

    pub(super) async fn the_database_refuses_to_change_or_delete_audit_events_and_notes(
        database: &Database,
    ) {
        let repos = database.repositories();
        let doctor = create_user(&repos, "dr.grey", Role::Doctor, UserStatus::Active).await;
        let patient_id = register_some_patient(&repos, doctor.id).await;
        let note = append_clinical_note(
            &repos,
            &new_clinical_note(patient_id, &doctor, None, "immutable", None),
        )
        .await;
        let trail = whole_audit_trail(&repos, AuditFilter::default()).await;
        assert!(
            trail.len() >= 2,
            "the registration and the note were audited"
        );

        for sql in [
            "UPDATE audit_events SET action = 'patient.read'",
            "DELETE FROM audit_events",
            "UPDATE clinical_notes SET body = 'rewritten'",
            "DELETE FROM clinical_notes",
        ] {
            let refused = execute_raw(database, sql).await;
            let error = refused.expect_err(sql).to_string();
            assert!(error.contains("append-only"), "{sql}: {error}");
        }

        assert_eq!(
            whole_audit_trail(&repos, AuditFilter::default()).await,
            trail
        );
        let notes = repos
            .notes
            .list(patient_id, None, PageRequest::first(10))
            .await
            .unwrap();
        assert_eq!(notes.items, vec![note]);
    }
}

// ---------------------------------------------------------------------------------------------
// Patients, care teams and emergency access
// ---------------------------------------------------------------------------------------------

use patients_contract::{
    a_doctor_finds_their_care_team_and_others_only_by_exact_record_number_or_identifier,
    a_registered_patient_reads_back_with_every_field_and_its_first_care_team,
    a_stale_or_conflicting_update_is_refused_and_changes_nothing,
    a_taken_identifier_is_refused_naming_its_system_and_nothing_is_written,
    a_taken_record_number_is_refused_and_nothing_is_written,
    access_facts_tell_own_record_current_care_team_and_unexpired_emergency_access,
    an_account_linked_to_another_patient_is_refused_and_nothing_is_written,
    an_update_replaces_details_and_identifiers_and_returns_what_is_stored,
    care_team_members_are_added_once_ended_once_and_listed_oldest_first_with_names,
    emergency_accesses_are_listed_newest_first_filtered_and_page_by_page,
    of_concurrent_additions_of_one_doctor_exactly_one_succeeds,
    paging_through_search_results_yields_each_patient_once_in_id_order,
    percent_underscore_and_backslash_in_search_text_are_taken_literally,
    search_matches_names_regardless_of_case_record_numbers_however_typed_and_identifiers_exactly,
};

/// In a module of their own, so that their imports and fixtures cannot clash with the others'.
mod patients_contract {
    use std::sync::Arc;

    use time::macros::date;
    use time::{Duration, OffsetDateTime};
    use tokio::sync::Barrier;

    use carehub_domain::access::AccessFacts;
    use carehub_domain::access::Basis;
    use carehub_domain::audit::{AuditAction, AuditEvent, AuditEventId, AuditFilter, Outcome};
    use carehub_domain::identity::{Email, FullName, Role, User, UserId, UserStatus};
    use carehub_domain::kernel::PageRequest;
    use carehub_domain::kernel::{Phone, Text};
    use carehub_domain::patients::{
        AddMemberError, CareTeamMember, EmergencyAccess, EmergencyAccessFilter, EmergencyAccessId,
        EmergencyReason, MembershipId,
    };
    use carehub_domain::patients::{
        Address, Contact, EmergencyContact, Identifier, IdentifierSystem, Insurance, Location, Mrn,
        Patient, PatientDetails, PatientId, PatientQuery, SavePatientError, SearchScope,
        SearchText, Sex,
    };
    use carehub_infra::Repositories;

    use super::{create_user, now};

    /// `at` cut to whole microseconds, the precision both backends keep.
    fn micros(at: OffsetDateTime) -> OffsetDateTime {
        at.replace_nanosecond(at.nanosecond() / 1_000 * 1_000)
            .unwrap()
    }

    fn text(raw: &str) -> Text {
        Text::line(raw, 200).unwrap()
    }

    fn identifier(system: &str, value: &str) -> Identifier {
        Identifier {
            system: IdentifierSystem::parse(system).unwrap(),
            value: text(value),
        }
    }

    async fn doctor(repos: &Repositories, username: &str) -> User {
        create_user(repos, username, Role::Doctor, UserStatus::Active).await
    }

    fn audit(actor: UserId, patient_id: PatientId, action: AuditAction) -> AuditEvent {
        AuditEvent {
            id: AuditEventId::generate(),
            at: micros(now()),
            actor_id: actor,
            actor_role: Role::Doctor,
            patient_id: Some(patient_id),
            action,
            outcome: Outcome::Allowed,
            basis: Some(Basis::Role),
            request_id: Some("req-1".into()),
        }
    }

    /// A patient with only the required fields.
    fn minimal_patient(name: &str) -> Patient {
        let at = micros(now());
        Patient {
            id: PatientId::generate(),
            mrn: Mrn::random(),
            details: PatientDetails {
                full_name: FullName::parse(name).unwrap(),
                date_of_birth: date!(1990 - 01 - 31),
                sex: Sex::Unknown,
                contact: Contact::default(),
                identifiers: Vec::new(),
                insurance: None,
                emergency_contact: None,
                location: None,
                user_id: None,
            },
            created_at: at,
            updated_at: at,
        }
    }

    /// A patient with every field filled in.
    fn full_patient(user_id: Option<UserId>) -> Patient {
        let mut patient = minimal_patient("Ada  King Lovelace");
        patient.details = PatientDetails {
            full_name: FullName::parse("Ada  King Lovelace").unwrap(),
            date_of_birth: date!(1815 - 12 - 10),
            sex: Sex::Female,
            contact: Contact {
                phone: Some(Phone::parse("+44 20 7946 0958").unwrap()),
                email: Some(Email::parse("ada@example.org").unwrap()),
                address: Some(Address {
                    lines: vec![text("12 St James's Square"), text("Flat \"B\", 2nd floor")],
                    city: Some(text("London")),
                    postal_code: Some(text("SW1Y 4JH")),
                    country: Some(text("GB")),
                }),
            },
            // Listed out of order: they are read back ordered by system.
            identifiers: vec![
                identifier("passport", "X1234567"),
                identifier("national_id", "QQ 12 34 56 C"),
                identifier("urn:oid:2.16.756.5.32", "756.1234.5678.97"),
            ],
            insurance: Some(Insurance {
                provider: text("Helvetia"),
                policy_number: text("P-123"),
                group: Some(text("G-7")),
                valid_until: Some(date!(2027 - 12 - 31)),
            }),
            emergency_contact: Some(EmergencyContact {
                name: text("Annabella Byron"),
                relationship: Some(text("mother")),
                phone: Phone::parse("+44 20 7946 0000").unwrap(),
            }),
            location: Some(Location {
                room: text("3.14"),
                bed: Some(text("B")),
            }),
            user_id,
        };
        patient
    }

    fn sorted_identifiers(mut patient: Patient) -> Patient {
        patient
            .details
            .identifiers
            .sort_by(|a, b| a.system.as_str().cmp(b.system.as_str()));
        patient
    }

    fn membership(
        patient_id: PatientId,
        doctor_id: UserId,
        started_at: OffsetDateTime,
        added_by: UserId,
    ) -> CareTeamMember {
        CareTeamMember {
            id: MembershipId::generate(),
            patient_id,
            doctor_id,
            doctor_name: None,
            started_at: micros(started_at),
            ended_at: None,
            added_by,
            ended_by: None,
            referral_id: None,
            appointment_id: None,
        }
    }

    async fn register(repos: &Repositories, patient: &Patient, by: UserId) {
        repos
            .patients
            .create(
                patient,
                &[],
                &audit(by, patient.id, AuditAction::PatientCreate),
            )
            .await
            .expect("the patient is registered");
    }

    async fn register_named(repos: &Repositories, name: &str, by: UserId) -> Patient {
        let patient = minimal_patient(name);
        register(repos, &patient, by).await;
        patient
    }

    async fn add_member(
        repos: &Repositories,
        patient_id: PatientId,
        doctor_id: UserId,
        started_at: OffsetDateTime,
    ) -> CareTeamMember {
        let member = membership(patient_id, doctor_id, started_at, doctor_id);
        repos
            .care_teams
            .add(
                &member,
                &audit(doctor_id, patient_id, AuditAction::CareTeamAdd),
                &[],
            )
            .await
            .expect("the doctor joins the care team");
        member
    }

    async fn end_membership(
        repos: &Repositories,
        patient_id: PatientId,
        doctor_id: UserId,
        at: OffsetDateTime,
    ) -> Option<CareTeamMember> {
        repos
            .care_teams
            .end(
                patient_id,
                doctor_id,
                micros(at),
                doctor_id,
                &audit(doctor_id, patient_id, AuditAction::CareTeamEnd),
            )
            .await
            .unwrap()
    }

    /// The actions audited for the patient, oldest first.
    async fn audited(repos: &Repositories, patient_id: PatientId) -> Vec<AuditAction> {
        let filter = AuditFilter {
            patient_id: Some(patient_id),
            ..AuditFilter::default()
        };
        let page = repos
            .audit
            .list(filter, PageRequest::first(100))
            .await
            .unwrap();
        assert_eq!(page.next, None);
        page.items.iter().rev().map(|e| e.event.action).collect()
    }

    /// Every patient `query` finds, reading all pages.
    async fn search(
        repos: &Repositories,
        text: Option<&str>,
        scope: SearchScope,
    ) -> Vec<PatientId> {
        let query = PatientQuery {
            text: text.map(|t| SearchText::parse(t).unwrap()),
            scope,
        };
        let page = repos
            .patients
            .search(&query, PageRequest::first(100))
            .await
            .unwrap();
        assert_eq!(page.next, None);
        page.items.iter().map(|p| p.id).collect()
    }

    fn ids(patients: &[&Patient]) -> Vec<PatientId> {
        let mut ids: Vec<_> = patients.iter().map(|p| p.id).collect();
        ids.sort();
        ids
    }

    pub async fn a_registered_patient_reads_back_with_every_field_and_its_first_care_team(
        repos: Repositories,
    ) {
        let registrar = doctor(&repos, "dr.first").await;
        let account = create_user(&repos, "ada", Role::Patient, UserStatus::Active).await;
        let full = full_patient(Some(account.id));
        let first = membership(full.id, registrar.id, now(), registrar.id);
        let event = audit(registrar.id, full.id, AuditAction::PatientCreate);
        repos
            .patients
            .create(&full, std::slice::from_ref(&first), &event)
            .await
            .unwrap();

        let expected = sorted_identifiers(full.clone());
        assert_eq!(
            repos.patients.find(full.id).await.unwrap(),
            Some(expected.clone())
        );
        assert_eq!(
            repos.patients.find_by_user(account.id).await.unwrap(),
            Some(expected)
        );

        let minimal = minimal_patient("Bo");
        register(&repos, &minimal, registrar.id).await;
        assert_eq!(
            repos.patients.find(minimal.id).await.unwrap(),
            Some(minimal.clone())
        );

        // The first member and the audit event were stored with the patient.
        let team = repos.care_teams.list(full.id).await.unwrap();
        assert_eq!(
            team,
            vec![CareTeamMember {
                doctor_name: Some(registrar.full_name.clone()),
                ..first
            }]
        );
        assert_eq!(audited(&repos, full.id).await, [AuditAction::PatientCreate]);
        assert!(repos.care_teams.list(minimal.id).await.unwrap().is_empty());

        assert_eq!(
            repos.patients.find(PatientId::generate()).await.unwrap(),
            None
        );
        let unlinked = create_user(&repos, "unlinked", Role::Patient, UserStatus::Active).await;
        assert_eq!(
            repos.patients.find_by_user(unlinked.id).await.unwrap(),
            None
        );
    }

    /// Asserts that nothing of `patient` was stored: no row, no identifiers, no care-team
    /// member, no audit event.
    async fn assert_nothing_written(repos: &Repositories, patient: &Patient) {
        assert_eq!(repos.patients.find(patient.id).await.unwrap(), None);
        for identifier in &patient.details.identifiers {
            let found = search(repos, Some(identifier.value.as_str()), SearchScope::All).await;
            assert!(
                !found.contains(&patient.id),
                "an identifier of the refused patient was stored"
            );
        }
        assert!(repos.care_teams.list(patient.id).await.unwrap().is_empty());
        assert!(audited(repos, patient.id).await.is_empty());
    }

    /// Registers `refused` with a first member, expecting `check` to accept the error.
    async fn register_refused(
        repos: &Repositories,
        refused: &Patient,
        by: UserId,
        check: impl Fn(&SavePatientError) -> bool,
    ) {
        let result = repos
            .patients
            .create(
                refused,
                &[membership(refused.id, by, now(), by)],
                &audit(by, refused.id, AuditAction::PatientCreate),
            )
            .await;
        match result {
            Err(ref e) if check(e) => {}
            other => panic!("unexpected result: {other:?}"),
        }
        assert_nothing_written(repos, refused).await;
    }

    pub async fn a_taken_record_number_is_refused_and_nothing_is_written(repos: Repositories) {
        let registrar = doctor(&repos, "dr.first").await;
        let first = register_named(&repos, "Ada Lovelace", registrar.id).await;
        let mut second = minimal_patient("Bo Peep");
        second.mrn = first.mrn.clone();
        second.details.identifiers = vec![identifier("passport", "BO-1")];
        register_refused(&repos, &second, registrar.id, |e| {
            matches!(e, SavePatientError::MrnTaken)
        })
        .await;
        assert_eq!(repos.patients.find(first.id).await.unwrap(), Some(first));
    }

    pub async fn a_taken_identifier_is_refused_naming_its_system_and_nothing_is_written(
        repos: Repositories,
    ) {
        let registrar = doctor(&repos, "dr.first").await;
        let mut first = minimal_patient("Ada Lovelace");
        first.details.identifiers = vec![identifier("national_id", "756.1")];
        register(&repos, &first, registrar.id).await;

        // The same value in another system belongs to nobody yet.
        let mut other_system = minimal_patient("Cy Twombly");
        other_system.details.identifiers = vec![identifier("passport", "756.1")];
        register(&repos, &other_system, registrar.id).await;

        // The free identifier comes first, so it is written before the taken one is refused.
        let mut second = minimal_patient("Bo Peep");
        second.details.identifiers = vec![
            identifier("insurance_card", "IC-9"),
            identifier("national_id", "756.1"),
        ];
        register_refused(&repos, &second, registrar.id, |e| {
            matches!(e, SavePatientError::IdentifierTaken { system } if system == "national_id")
        })
        .await;
        assert_eq!(
            search(&repos, Some("IC-9"), SearchScope::All).await,
            Vec::<PatientId>::new()
        );
        assert_eq!(repos.patients.find(first.id).await.unwrap(), Some(first));
    }

    pub async fn an_account_linked_to_another_patient_is_refused_and_nothing_is_written(
        repos: Repositories,
    ) {
        let registrar = doctor(&repos, "dr.first").await;
        let account = create_user(&repos, "ada", Role::Patient, UserStatus::Active).await;
        let mut first = minimal_patient("Ada Lovelace");
        first.details.user_id = Some(account.id);
        register(&repos, &first, registrar.id).await;

        let mut second = minimal_patient("Ada Lovelace");
        second.details.user_id = Some(account.id);
        second.details.identifiers = vec![identifier("passport", "AL-2")];
        register_refused(&repos, &second, registrar.id, |e| {
            matches!(e, SavePatientError::UserLinked)
        })
        .await;
        assert_eq!(
            repos.patients.find_by_user(account.id).await.unwrap(),
            Some(first)
        );
    }

    pub async fn an_update_replaces_details_and_identifiers_and_returns_what_is_stored(
        repos: Repositories,
    ) {
        let registrar = doctor(&repos, "dr.first").await;
        let account = create_user(&repos, "ada", Role::Patient, UserStatus::Active).await;
        let mut patient = full_patient(None);
        patient.details.identifiers = vec![
            identifier("passport", "X1"),
            identifier("national_id", "N1"),
        ];
        register(&repos, &patient, registrar.id).await;
        let mut bystander = full_patient(None);
        bystander.details.identifiers = vec![identifier("passport", "B1")];
        register(&repos, &bystander, registrar.id).await;

        let mut details = minimal_patient("Ada Byron").details;
        details.user_id = Some(account.id);
        details.identifiers = vec![
            identifier("passport", "X2"),
            identifier("insurance_card", "I1"),
        ];
        let at = micros(now() + Duration::seconds(1));
        let updated = repos
            .patients
            .update(
                patient.id,
                &details,
                patient.updated_at,
                at,
                &audit(registrar.id, patient.id, AuditAction::PatientUpdate),
            )
            .await
            .unwrap();
        let expected = sorted_identifiers(Patient {
            id: patient.id,
            mrn: patient.mrn.clone(),
            details,
            created_at: patient.created_at,
            updated_at: at,
        });
        assert_eq!(updated, expected);
        assert_eq!(
            repos.patients.find(patient.id).await.unwrap(),
            Some(expected.clone())
        );
        assert_eq!(
            repos.patients.find_by_user(account.id).await.unwrap(),
            Some(expected)
        );
        assert_eq!(
            audited(&repos, patient.id).await,
            [AuditAction::PatientCreate, AuditAction::PatientUpdate]
        );
        // The old values are gone and free for another patient; the new ones are found.
        assert!(
            search(&repos, Some("X1"), SearchScope::All)
                .await
                .is_empty()
        );
        assert!(
            search(&repos, Some("N1"), SearchScope::All)
                .await
                .is_empty()
        );
        assert_eq!(
            search(&repos, Some("X2"), SearchScope::All).await,
            [patient.id]
        );
        let mut reuser = minimal_patient("Cy Twombly");
        reuser.details.identifiers = vec![identifier("passport", "X1")];
        register(&repos, &reuser, registrar.id).await;
        // Nobody else changed.
        assert_eq!(
            repos.patients.find(bystander.id).await.unwrap(),
            Some(bystander)
        );
    }

    pub async fn a_stale_or_conflicting_update_is_refused_and_changes_nothing(repos: Repositories) {
        let registrar = doctor(&repos, "dr.first").await;
        let account = create_user(&repos, "ada", Role::Patient, UserStatus::Active).await;
        let mut linked = minimal_patient("Ada Lovelace");
        linked.details.user_id = Some(account.id);
        linked.details.identifiers = vec![identifier("passport", "TAKEN")];
        register(&repos, &linked, registrar.id).await;
        let mut patient = minimal_patient("Bo Peep");
        patient.details.identifiers = vec![identifier("passport", "BP1")];
        register(&repos, &patient, registrar.id).await;

        let mut renamed = patient.details.clone();
        renamed.full_name = FullName::parse("Bo Renamed").unwrap();
        let first_at = micros(now() + Duration::seconds(1));
        let current = repos
            .patients
            .update(
                patient.id,
                &renamed,
                patient.updated_at,
                first_at,
                &audit(registrar.id, patient.id, AuditAction::PatientUpdate),
            )
            .await
            .unwrap();

        let update = |details: PatientDetails, id: PatientId, expected: OffsetDateTime| {
            let repos = repos.clone();
            let registrar = registrar.id;
            async move {
                repos
                    .patients
                    .update(
                        id,
                        &details,
                        expected,
                        micros(now() + Duration::seconds(2)),
                        &audit(registrar, id, AuditAction::PatientUpdate),
                    )
                    .await
            }
        };
        let mut other = patient.details.clone();
        other.full_name = FullName::parse("Bo Stale").unwrap();
        // Written from the version before the rename.
        let stale = update(other.clone(), patient.id, patient.updated_at).await;
        assert!(matches!(stale, Err(SavePatientError::Stale)), "{stale:?}");
        // A patient that does not exist.
        let missing = PatientId::generate();
        let vanished = update(other.clone(), missing, patient.updated_at).await;
        assert!(
            matches!(vanished, Err(SavePatientError::Stale)),
            "{vanished:?}"
        );
        assert!(audited(&repos, missing).await.is_empty());

        // From the current version, but taking another patient's identifier or account. The
        // old identifiers are replaced and a free new one written before the taken one is
        // refused: the refusal must undo both.
        let mut taking_identifier = current.details.clone();
        taking_identifier.identifiers = vec![
            identifier("national_id", "NEW"),
            identifier("passport", "TAKEN"),
        ];
        let refused = update(taking_identifier, patient.id, current.updated_at).await;
        assert!(
            matches!(&refused, Err(SavePatientError::IdentifierTaken { system }) if system == "passport"),
            "{refused:?}"
        );
        let mut taking_account = current.details.clone();
        taking_account.user_id = Some(account.id);
        let refused = update(taking_account, patient.id, current.updated_at).await;
        assert!(
            matches!(refused, Err(SavePatientError::UserLinked)),
            "{refused:?}"
        );

        assert_eq!(
            repos.patients.find(patient.id).await.unwrap(),
            Some(current.clone())
        );
        assert!(
            search(&repos, Some("NEW"), SearchScope::All)
                .await
                .is_empty()
        );
        assert_eq!(
            search(&repos, Some("BP1"), SearchScope::All).await,
            [patient.id]
        );
        assert_eq!(
            audited(&repos, patient.id).await,
            [AuditAction::PatientCreate, AuditAction::PatientUpdate]
        );
        assert_eq!(repos.patients.find(linked.id).await.unwrap(), Some(linked));

        // The current version still updates.
        let again = update(other, patient.id, current.updated_at).await.unwrap();
        assert_eq!(again.details.full_name.as_str(), "Bo Stale");
    }

    pub async fn search_matches_names_regardless_of_case_record_numbers_however_typed_and_identifiers_exactly(
        repos: Repositories,
    ) {
        let registrar = doctor(&repos, "dr.first").await;
        let ada = register_named(&repos, "Ada Lovelace", registrar.id).await;
        let grace = register_named(&repos, "Grace  HOPPER", registrar.id).await;
        let mut charles = minimal_patient("Charles Babbage");
        charles.details.identifiers = vec![identifier("national_id", "QQ 12 34 56 C")];
        register(&repos, &charles, registrar.id).await;
        let all = SearchScope::All;

        assert_eq!(search(&repos, Some("LOVE"), all).await, ids(&[&ada]));
        assert_eq!(search(&repos, Some("ace"), all).await, ids(&[&ada, &grace]));
        assert_eq!(search(&repos, Some("grace hop"), all).await, ids(&[&grace]));
        assert_eq!(
            search(&repos, Some("Grace   Hop"), all).await,
            ids(&[&grace])
        );
        assert!(search(&repos, Some("zelda"), all).await.is_empty());

        let mrn = grace.mrn.as_str();
        assert_eq!(search(&repos, Some(mrn), all).await, ids(&[&grace]));
        let compact = mrn.replace('-', "").to_lowercase();
        assert_eq!(search(&repos, Some(&compact), all).await, ids(&[&grace]));

        assert_eq!(
            search(&repos, Some("QQ 12 34 56 C"), all).await,
            ids(&[&charles])
        );
        assert!(search(&repos, Some("QQ 12"), all).await.is_empty());
        assert!(search(&repos, Some("qq 12 34 56 c"), all).await.is_empty());

        assert_eq!(
            search(&repos, None, all).await,
            ids(&[&ada, &grace, &charles])
        );
    }

    pub async fn a_doctor_finds_their_care_team_and_others_only_by_exact_record_number_or_identifier(
        repos: Repositories,
    ) {
        let house = doctor(&repos, "dr.house").await;
        let wilson = doctor(&repos, "dr.wilson").await;
        let at = now();
        let on_team = register_named(&repos, "Ada Lovelace", wilson.id).await;
        add_member(&repos, on_team.id, house.id, at - Duration::days(2)).await;
        let mut elsewhere = minimal_patient("Ada Byron");
        elsewhere.details.identifiers = vec![identifier("passport", "AB-1")];
        register(&repos, &elsewhere, wilson.id).await;
        add_member(&repos, elsewhere.id, wilson.id, at - Duration::days(2)).await;
        let left = register_named(&repos, "Ada King", wilson.id).await;
        add_member(&repos, left.id, house.id, at - Duration::days(2)).await;
        end_membership(&repos, left.id, house.id, at - Duration::days(1)).await;
        let later = register_named(&repos, "Ada Later", wilson.id).await;
        add_member(&repos, later.id, house.id, at + Duration::days(1)).await;

        let scope = SearchScope::Doctor {
            doctor_id: house.id,
            at,
        };
        assert_eq!(search(&repos, None, scope).await, ids(&[&on_team]));
        assert_eq!(search(&repos, Some("ada"), scope).await, ids(&[&on_team]));
        assert_eq!(
            search(&repos, Some("byron"), scope).await,
            Vec::<PatientId>::new()
        );
        assert_eq!(
            search(&repos, Some(elsewhere.mrn.as_str()), scope).await,
            ids(&[&elsewhere])
        );
        assert_eq!(
            search(&repos, Some("AB-1"), scope).await,
            ids(&[&elsewhere])
        );
        assert_eq!(
            search(&repos, Some(left.mrn.as_str()), scope).await,
            ids(&[&left])
        );
        // Before the membership ended, the ended one counted; the future one does once it starts.
        let earlier = SearchScope::Doctor {
            doctor_id: house.id,
            at: at - Duration::hours(36),
        };
        assert_eq!(
            search(&repos, Some("ada"), earlier).await,
            ids(&[&on_team, &left])
        );
        let after_start = SearchScope::Doctor {
            doctor_id: house.id,
            at: at + Duration::days(2),
        };
        assert_eq!(
            search(&repos, None, after_start).await,
            ids(&[&on_team, &later])
        );
        // Another doctor sees their own team only.
        let wilsons = SearchScope::Doctor {
            doctor_id: wilson.id,
            at,
        };
        assert_eq!(search(&repos, None, wilsons).await, ids(&[&elsewhere]));
        // Everyone, for a secretary.
        assert_eq!(
            search(&repos, Some("ada"), SearchScope::All).await,
            ids(&[&on_team, &elsewhere, &left, &later])
        );
    }

    pub async fn paging_through_search_results_yields_each_patient_once_in_id_order(
        repos: Repositories,
    ) {
        let registrar = doctor(&repos, "dr.first").await;
        let mut expected = Vec::new();
        for n in 0..27 {
            expected.push(
                register_named(&repos, &format!("Pat Number {n}"), registrar.id)
                    .await
                    .id,
            );
        }
        register_named(&repos, "Someone Else", registrar.id).await;
        expected.sort();

        let query = PatientQuery {
            text: Some(SearchText::parse("number").unwrap()),
            scope: SearchScope::All,
        };
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        let mut after = None;
        loop {
            let page = repos
                .patients
                .search(&query, PageRequest::new(Some(10), after).unwrap())
                .await
                .unwrap();
            sizes.push(page.items.len());
            if page.next.is_some() {
                assert_eq!(page.next, page.items.last().map(|p| p.id));
            }
            seen.extend(page.items.iter().map(|p| p.id));
            after = page.next;
            if after.is_none() {
                break;
            }
            assert!(sizes.len() < 10, "paging does not end");
        }
        assert_eq!(sizes, [10, 10, 7]);
        assert_eq!(seen, expected);
    }

    pub async fn percent_underscore_and_backslash_in_search_text_are_taken_literally(
        repos: Repositories,
    ) {
        let registrar = doctor(&repos, "dr.first").await;
        let underscore = register_named(&repos, "Ann_Lee", registrar.id).await;
        let letter = register_named(&repos, "AnnXLee", registrar.id).await;
        let percent = register_named(&repos, "Bo%b", registrar.id).await;
        let letters = register_named(&repos, "Boxxb", registrar.id).await;
        let backslash = register_named(&repos, "Di\\Do", registrar.id).await;
        let slash = register_named(&repos, "Di/Do", registrar.id).await;
        let all = SearchScope::All;

        assert_eq!(search(&repos, Some("n_l"), all).await, ids(&[&underscore]));
        assert_eq!(search(&repos, Some("o%b"), all).await, ids(&[&percent]));
        assert_eq!(search(&repos, Some("%"), all).await, ids(&[&percent]));
        assert_eq!(search(&repos, Some("_"), all).await, ids(&[&underscore]));
        assert_eq!(search(&repos, Some("i\\d"), all).await, ids(&[&backslash]));
        assert_eq!(search(&repos, Some("nxl"), all).await, ids(&[&letter]));
        assert_eq!(search(&repos, Some("oxx"), all).await, ids(&[&letters]));
        assert_eq!(search(&repos, Some("i/d"), all).await, ids(&[&slash]));
    }

    async fn grant(
        repos: &Repositories,
        patient_id: PatientId,
        doctor_id: UserId,
        granted_at: OffsetDateTime,
    ) -> EmergencyAccess {
        let granted_at = micros(granted_at);
        let access = EmergencyAccess {
            id: EmergencyAccessId::generate(),
            patient_id,
            doctor_id,
            doctor_name: None,
            reason: EmergencyReason::parse("Unconscious in the emergency room").unwrap(),
            granted_at,
            expires_at: granted_at + Duration::hours(1),
        };
        repos
            .emergency_accesses
            .grant(
                &access,
                &audit(doctor_id, patient_id, AuditAction::EmergencyAccessGrant),
                &[],
            )
            .await
            .unwrap();
        access
    }

    pub async fn access_facts_tell_own_record_current_care_team_and_unexpired_emergency_access(
        repos: Repositories,
    ) {
        let account = create_user(&repos, "ada", Role::Patient, UserStatus::Active).await;
        let on_team = doctor(&repos, "dr.team").await;
        let left = doctor(&repos, "dr.left").await;
        let glass = doctor(&repos, "dr.glass").await;
        let expired = doctor(&repos, "dr.expired").await;
        let stranger = doctor(&repos, "dr.stranger").await;
        let joining = doctor(&repos, "dr.joining").await;
        let at = micros(now());
        let mut patient = minimal_patient("Ada Lovelace");
        patient.details.user_id = Some(account.id);
        register(&repos, &patient, on_team.id).await;
        let unlinked = register_named(&repos, "Bo Peep", on_team.id).await;
        add_member(&repos, patient.id, on_team.id, at - Duration::days(1)).await;
        add_member(&repos, patient.id, left.id, at - Duration::days(2)).await;
        end_membership(&repos, patient.id, left.id, at - Duration::days(1)).await;
        add_member(&repos, patient.id, joining.id, at + Duration::hours(1)).await;
        let access = grant(&repos, patient.id, glass.id, at - Duration::minutes(30)).await;
        grant(&repos, patient.id, expired.id, at - Duration::hours(2)).await;

        let facts = async |patient_id: PatientId, user: &User, at: OffsetDateTime| {
            repos
                .access_facts
                .access_facts(patient_id, user.id, at)
                .await
                .unwrap()
        };
        let none = AccessFacts::default();
        assert_eq!(
            facts(patient.id, &account, at).await,
            Some(AccessFacts {
                is_own_record: true,
                ..none
            })
        );
        assert_eq!(
            facts(patient.id, &on_team, at).await,
            Some(AccessFacts {
                on_care_team: true,
                ..none
            })
        );
        assert_eq!(facts(patient.id, &left, at).await, Some(none));
        assert_eq!(
            facts(patient.id, &left, at - Duration::hours(36)).await,
            Some(AccessFacts {
                on_care_team: true,
                ..none
            }),
            "a membership counts while it lasted"
        );
        assert_eq!(
            facts(patient.id, &glass, at).await,
            Some(AccessFacts {
                emergency_access: true,
                ..none
            })
        );
        assert_eq!(
            facts(patient.id, &glass, access.granted_at).await,
            Some(AccessFacts {
                emergency_access: true,
                ..none
            }),
            "an access holds from the instant it is granted"
        );
        assert_eq!(
            facts(patient.id, &glass, access.expires_at).await,
            Some(none),
            "an access ends at its expiry"
        );
        assert_eq!(facts(patient.id, &expired, at).await, Some(none));
        assert_eq!(facts(patient.id, &stranger, at).await, Some(none));
        assert_eq!(
            facts(patient.id, &joining, at).await,
            Some(none),
            "a membership counts from its start"
        );
        assert_eq!(
            facts(patient.id, &joining, at + Duration::hours(1)).await,
            Some(AccessFacts {
                on_care_team: true,
                ..none
            })
        );
        // The emergency access and the membership are to one patient only.
        assert_eq!(facts(unlinked.id, &glass, at).await, Some(none));
        assert_eq!(facts(unlinked.id, &on_team, at).await, Some(none));
        assert_eq!(facts(unlinked.id, &account, at).await, Some(none));
        assert_eq!(facts(PatientId::generate(), &account, at).await, None);
    }

    pub async fn care_team_members_are_added_once_ended_once_and_listed_oldest_first_with_names(
        repos: Repositories,
    ) {
        let house = doctor(&repos, "dr.house").await;
        let wilson = doctor(&repos, "dr.wilson").await;
        let admin = create_user(&repos, "admin", Role::Admin, UserStatus::Active).await;
        let patient = register_named(&repos, "Ada Lovelace", admin.id).await;
        let other = register_named(&repos, "Bo Peep", admin.id).await;
        let at = micros(now());

        let first = add_member(&repos, patient.id, house.id, at - Duration::hours(3)).await;
        let second = add_member(&repos, patient.id, wilson.id, at - Duration::hours(2)).await;
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

        let ended_at = at - Duration::hours(1);
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

    pub async fn of_concurrent_additions_of_one_doctor_exactly_one_succeeds(repos: Repositories) {
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
            end_membership(&repos, patient.id, house.id, now() + Duration::seconds(1))
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

    pub async fn emergency_accesses_are_listed_newest_first_filtered_and_page_by_page(
        repos: Repositories,
    ) {
        let house = doctor(&repos, "dr.house").await;
        let wilson = doctor(&repos, "dr.wilson").await;
        let ada = register_named(&repos, "Ada Lovelace", house.id).await;
        let bo = register_named(&repos, "Bo Peep", house.id).await;
        let at = micros(now());
        let named = |access: &EmergencyAccess, user: &User| EmergencyAccess {
            doctor_name: Some(user.full_name.clone()),
            ..access.clone()
        };
        let old = named(
            &grant(&repos, ada.id, house.id, at - Duration::hours(3)).await,
            &house,
        );
        let ada_wilson = named(
            &grant(&repos, ada.id, wilson.id, at - Duration::minutes(10)).await,
            &wilson,
        );
        let bo_house = named(
            &grant(&repos, bo.id, house.id, at - Duration::minutes(5)).await,
            &house,
        );

        let list = async |filter: EmergencyAccessFilter| {
            let page = repos
                .emergency_accesses
                .list(filter, PageRequest::first(100))
                .await
                .unwrap();
            assert_eq!(page.next, None);
            page.items
        };
        let all = EmergencyAccessFilter::default();
        assert_eq!(
            list(all).await,
            [bo_house.clone(), ada_wilson.clone(), old.clone()]
        );
        assert_eq!(
            list(EmergencyAccessFilter {
                patient_id: Some(ada.id),
                ..all
            })
            .await,
            [ada_wilson.clone(), old.clone()]
        );
        assert_eq!(
            list(EmergencyAccessFilter {
                doctor_id: Some(house.id),
                ..all
            })
            .await,
            [bo_house.clone(), old.clone()]
        );
        assert_eq!(
            list(EmergencyAccessFilter {
                active_at: Some(at),
                ..all
            })
            .await,
            [bo_house.clone(), ada_wilson.clone()]
        );
        assert_eq!(
            list(EmergencyAccessFilter {
                patient_id: Some(ada.id),
                doctor_id: Some(house.id),
                active_at: Some(old.granted_at),
                expired_at: None,
            })
            .await,
            std::slice::from_ref(&old)
        );
        assert!(
            list(EmergencyAccessFilter {
                active_at: Some(old.expires_at),
                patient_id: Some(ada.id),
                doctor_id: Some(house.id),
                expired_at: None,
            })
            .await
            .is_empty(),
            "an access is inactive from its expiry"
        );
        assert_eq!(
            list(EmergencyAccessFilter {
                expired_at: Some(old.expires_at),
                patient_id: Some(ada.id),
                ..all
            })
            .await,
            std::slice::from_ref(&old),
            "an access has expired from its expiry on"
        );
        assert!(
            list(EmergencyAccessFilter {
                expired_at: Some(old.expires_at - Duration::microseconds(1)),
                patient_id: Some(ada.id),
                ..all
            })
            .await
            .is_empty(),
            "an access has not expired before its expiry"
        );
        assert!(
            list(EmergencyAccessFilter {
                active_at: Some(old.granted_at - Duration::microseconds(1)),
                ..all
            })
            .await
            .is_empty(),
            "an access is inactive before it is granted"
        );

        // Page by page.
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = repos
                .emergency_accesses
                .list(all, PageRequest::new(Some(2), after).unwrap())
                .await
                .unwrap();
            if page.next.is_some() {
                assert_eq!(page.next, page.items.last().map(|a| a.id));
            }
            seen.extend(page.items);
            after = page.next;
            if after.is_none() {
                break;
            }
            assert!(seen.len() < 10, "paging does not end");
        }
        assert_eq!(seen, [bo_house, ada_wilson, old]);

        assert_eq!(
            audited(&repos, ada.id).await,
            [
                AuditAction::PatientCreate,
                AuditAction::EmergencyAccessGrant,
                AuditAction::EmergencyAccessGrant,
            ]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Socket tickets, live sessions and notification publishers (in `contract/realtime_contract.rs`)
// ---------------------------------------------------------------------------------------------

#[path = "contract/realtime_contract.rs"]
mod realtime_contract;

// ---------------------------------------------------------------------------------------------
// Referrals and notifications (in `contract/referrals_contract.rs` and
// `contract/notifications_contract.rs`)
// ---------------------------------------------------------------------------------------------

#[path = "contract/referrals_contract.rs"]
mod referrals_contract;

#[path = "contract/notifications_contract.rs"]
mod notifications_contract;

// ---------------------------------------------------------------------------------------------
// Scheduling: profiles, availability, time off and appointments (in
// `contract/scheduling_contract.rs`)
// ---------------------------------------------------------------------------------------------

#[path = "contract/scheduling_contract.rs"]
mod scheduling_contract;
