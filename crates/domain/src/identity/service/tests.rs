//! Unit tests of the identity use cases, with mockall doubles of every port.

use std::sync::Mutex;

use jiff::Timestamp;
use mockall::predicate::eq;

use super::*;
use crate::identity::{FullName, UserChanges, parse_user_changes};
use crate::identity::{
    MockAccessTokenCodec, MockLoginAttemptRepository, MockPasswordHasher, MockRefreshTokenFactory,
    MockRefreshTokenRepository, MockRevokedTokenRepository, MockSocketTicketRepository,
    MockTrustedDeviceRepository, MockUserRepository, PasswordHash, RecentFailures,
    RefreshTokenHash, SignInClient, ThrottleKey,
};
use crate::jobs::Task;
use crate::kernel::FixedClock;

/// The instant every test runs at (`2026-03-02T09:30:00Z`): the service's clock stands still here.
const NOW: Timestamp = Timestamp::constant(1772443800, 0);
/// A password that meets every rule and contains none of the usernames below.
const PASSWORD: &str = "correct horse battery staple";

/// The claims the codec was asked to sign, in order.
type Signed = Arc<Mutex<Vec<AccessClaims>>>;

/// Doubles of every port, assembled into a service by [`Mocks::service`].
///
/// Repositories, the hasher and the codec's `verify` start without expectations, so a call a
/// test did not ask for fails it. The refresh-token factory is deterministic: it hands out
/// `refresh-1`, `refresh-2`, ... and hashes a token as `hash(<secret>)`. The codec signs any
/// claims as `signed:<jti>` and keeps them in [`Mocks::signed`] for the test to inspect.
struct Mocks {
    users: MockUserRepository,
    refresh_tokens: MockRefreshTokenRepository,
    revoked_tokens: MockRevokedTokenRepository,
    login_attempts: MockLoginAttemptRepository,
    trusted_devices: MockTrustedDeviceRepository,
    hasher: MockPasswordHasher,
    access_tokens: MockAccessTokenCodec,
    refresh_token_factory: MockRefreshTokenFactory,
    socket_tickets: MockSocketTicketRepository,
    signed: Signed,
}

impl Mocks {
    fn new() -> Self {
        let mut refresh_token_factory = MockRefreshTokenFactory::new();
        let mut generated = 0;
        refresh_token_factory.expect_generate().returning(move || {
            generated += 1;
            RefreshToken::new(format!("refresh-{generated}"))
        });
        refresh_token_factory
            .expect_hash()
            .returning(|token| hash_of(token.expose()));

        let signed = Signed::default();
        let mut access_tokens = MockAccessTokenCodec::new();
        let log = Arc::clone(&signed);
        access_tokens.expect_issue().returning(move |claims| {
            log.lock().expect("log").push(claims.clone());
            Ok(signed_token(claims))
        });

        Self {
            users: MockUserRepository::new(),
            refresh_tokens: MockRefreshTokenRepository::new(),
            revoked_tokens: MockRevokedTokenRepository::new(),
            login_attempts: MockLoginAttemptRepository::new(),
            trusted_devices: MockTrustedDeviceRepository::new(),
            hasher: MockPasswordHasher::new(),
            access_tokens,
            refresh_token_factory,
            socket_tickets: MockSocketTicketRepository::new(),
            signed,
        }
    }

    /// The claims signed by the service this will build.
    fn signed(&self) -> Signed {
        Arc::clone(&self.signed)
    }

    fn service(self) -> IdentityService {
        IdentityService::new(
            IdentityPorts {
                users: Arc::new(self.users),
                refresh_tokens: Arc::new(self.refresh_tokens),
                revoked_tokens: Arc::new(self.revoked_tokens),
                login_attempts: Arc::new(self.login_attempts),
                trusted_devices: Arc::new(self.trusted_devices),
                hasher: Arc::new(self.hasher),
                access_tokens: Arc::new(self.access_tokens),
                refresh_token_factory: Arc::new(self.refresh_token_factory),
                socket_tickets: Arc::new(self.socket_tickets),
                clock: Arc::new(FixedClock(NOW)),
            },
            IdentityConfig::default(),
        )
    }

    /// Sign-in failures under `key` are counted once, over the 15 minutes before now.
    fn recent_failures(&mut self, key: &'static str, failures: RecentFailures) {
        self.login_attempts
            .expect_recent_failures()
            .withf(move |k, since| {
                *k == ThrottleKey::username(key) && *since == NOW - SignedDuration::from_mins(15)
            })
            .times(1)
            .returning(move |_, _| Ok(failures));
    }

    fn not_throttled(&mut self, key: &'static str) {
        self.recent_failures(key, RecentFailures::default());
    }

    /// `user` is found by their username, with [`stored_hash`].
    fn credentials_of(&mut self, user: &User) {
        let user = user.clone();
        let username = user.username.clone();
        self.users
            .expect_find_credentials()
            .withf(move |u| *u == username)
            .times(1)
            .returning(move |_| Ok(Some((user.clone(), stored_hash()))));
    }

    /// [`PASSWORD`] is checked once against [`stored_hash`], and matches or not.
    fn password_matches(&mut self, matches: bool) {
        self.hasher
            .expect_verify()
            .withf(|password, hash| {
                password.expose() == PASSWORD && hash.as_ref() == Some(&stored_hash())
            })
            .times(1)
            .returning(move |_, _| Ok(matches));
    }

    /// `user` is found by id, as many times as asked.
    fn user_by_id(&mut self, user: &User) {
        let user = user.clone();
        self.users
            .expect_find_by_id()
            .with(eq(user.id))
            .returning(move |_| Ok(Some(user.clone())));
    }

    fn no_user_is_stored_or_changed(&mut self) {
        self.users.expect_create().never();
        self.users.expect_update().never();
        self.hasher.expect_hash().never();
        self.refresh_tokens.expect_revoke_all_for_user().never();
    }
}

fn hash_of(secret: &str) -> RefreshTokenHash {
    RefreshTokenHash::new(format!("hash({secret})"))
}

fn signed_token(claims: &AccessClaims) -> String {
    format!("signed:{}", claims.token_id.as_uuid())
}

fn stored_hash() -> PasswordHash {
    PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$stored".to_owned())
}

fn user(username: &str, role: Role, status: UserStatus) -> User {
    User {
        id: UserId::generate(),
        username: Username::parse(username).expect("valid username"),
        full_name: FullName::parse("Test Person").expect("valid name"),
        email: None,
        role,
        status,
        created_at: NOW - SignedDuration::from_hours(24 * 30),
    }
}

fn account(username: &str, role: Role) -> NewAccount {
    NewAccount::parse(
        username,
        PASSWORD,
        "Ann Example",
        Some("ann@clinic.example"),
        role.as_str(),
    )
    .expect("valid account")
}

/// Claims of a token issued a minute ago for `user`, with its own session.
fn claims_for(user: &User) -> AccessClaims {
    AccessClaims {
        user_id: user.id,
        role: user.role,
        session_id: SessionId::generate(),
        token_id: TokenId::generate(),
        issued_at: NOW - SignedDuration::from_mins(1),
        expires_at: NOW + SignedDuration::from_mins(14),
    }
}

fn principal(user: &User) -> Principal {
    Principal::new(user.clone(), claims_for(user))
}

fn admin() -> Principal {
    principal(&user("root", Role::Admin, UserStatus::Active))
}

fn fields(errors: &ValidationErrors) -> Vec<&str> {
    errors.errors().iter().map(|e| e.field.as_str()).collect()
}

fn repository_failure() -> RepositoryError {
    RepositoryError::new("disk on fire")
}

// ---------------------------------------------------------------------------------------------
// Registration

#[tokio::test]
async fn a_patient_who_registers_is_active_at_once() {
    let mut mocks = Mocks::new();
    mocks
        .hasher
        .expect_hash()
        .withf(|password| password.expose() == PASSWORD)
        .times(1)
        .returning(|_| Ok(stored_hash()));
    mocks
        .users
        .expect_create()
        .withf(|user, hash| {
            user.username.as_str() == "ann"
                && user.role == Role::Patient
                && user.status == UserStatus::Active
                && user.created_at == NOW
                && *hash == stored_hash()
        })
        .times(1)
        .returning(|_, _| Ok(()));

    let user = mocks
        .service()
        .register(account("Ann", Role::Patient), None)
        .await
        .expect("registered");

    assert_eq!(user.status, UserStatus::Active);
    assert_eq!(user.role, Role::Patient);
    assert_eq!(user.created_at, NOW);
}

#[tokio::test]
async fn doctors_secretaries_and_laboratory_staff_who_register_wait_for_approval() {
    for role in [Role::Doctor, Role::Secretary, Role::Laboratory] {
        let mut mocks = Mocks::new();
        mocks
            .hasher
            .expect_hash()
            .times(1)
            .returning(|_| Ok(stored_hash()));
        mocks
            .users
            .expect_create()
            .withf(move |user, _| user.role == role && user.status == UserStatus::Pending)
            .times(1)
            .returning(|_, _| Ok(()));

        let user = mocks
            .service()
            .register(account("staffer", role), None)
            .await
            .expect("registered");

        assert_eq!(user.status, UserStatus::Pending, "{role}");
    }
}

#[tokio::test]
async fn nobody_registers_as_an_administrator_and_nothing_is_hashed_or_stored() {
    let mut mocks = Mocks::new();
    mocks.hasher.expect_hash().never();
    mocks.users.expect_create().never();

    let result = mocks
        .service()
        .register(account("wannabe", Role::Admin), None)
        .await;

    assert!(
        matches!(result, Err(RegisterError::RoleNotSelfRegistrable)),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_taken_username_is_reported_as_taken() {
    let mut mocks = Mocks::new();
    mocks
        .hasher
        .expect_hash()
        .times(1)
        .returning(|_| Ok(stored_hash()));
    mocks
        .users
        .expect_create()
        .times(1)
        .returning(|_, _| Err(CreateUserError::UsernameTaken));

    let result = mocks
        .service()
        .register(account("ann", Role::Patient), None)
        .await;

    assert!(
        matches!(result, Err(RegisterError::UsernameTaken)),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_storage_failure_while_registering_is_internal() {
    let mut mocks = Mocks::new();
    mocks
        .hasher
        .expect_hash()
        .times(1)
        .returning(|_| Ok(stored_hash()));
    mocks
        .users
        .expect_create()
        .times(1)
        .returning(|_, _| Err(CreateUserError::Repository(repository_failure())));

    let result = mocks
        .service()
        .register(account("ann", Role::Patient), None)
        .await;

    assert!(
        matches!(
            result,
            Err(RegisterError::Internal(InternalError::Repository(_)))
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_hashing_failure_while_registering_is_internal_and_nothing_is_stored() {
    let mut mocks = Mocks::new();
    mocks
        .hasher
        .expect_hash()
        .times(1)
        .returning(|_| Err(HashingError("worker died".to_owned())));
    mocks.users.expect_create().never();

    let result = mocks
        .service()
        .register(account("ann", Role::Patient), None)
        .await;

    assert!(
        matches!(
            result,
            Err(RegisterError::Internal(InternalError::Hashing(_)))
        ),
        "{result:?}"
    );
}

#[test]
fn a_new_account_reports_every_invalid_field_at_once() {
    let errors = NewAccount::parse("x", "short", "   ", Some("not-an-address"), "root")
        .expect_err("five invalid fields");

    assert_eq!(
        fields(&errors),
        ["username", "password", "full_name", "email", "role"]
    );
}

#[test]
fn a_password_containing_the_username_is_refused() {
    let errors = NewAccount::parse(
        "Gregory",
        "my-GREGORY-secret-1",
        "Gregory House",
        None,
        "doctor",
    )
    .expect_err("password contains the username");

    assert_eq!(fields(&errors), ["password"]);
    assert_eq!(errors.errors()[0].message, "must not contain the username");
}

#[test]
fn a_new_account_may_have_no_email() {
    let account =
        NewAccount::parse("ann", PASSWORD, "Ann Example", None, "patient").expect("valid account");

    assert_eq!(account.email, None);
    assert_eq!(account.username.as_str(), "ann");
    assert_eq!(account.role, Role::Patient);
}

// ---------------------------------------------------------------------------------------------
// Sign-in

#[tokio::test]
async fn sign_in_is_paused_after_five_recent_failures_even_with_the_right_password() {
    let mut mocks = Mocks::new();
    mocks.recent_failures(
        "alice",
        RecentFailures {
            count: 5,
            oldest: Some(NOW - SignedDuration::from_mins(5)),
        },
    );
    mocks.hasher.expect_verify().never();
    mocks.users.expect_find_credentials().never();
    mocks.login_attempts.expect_record_failure().never();
    mocks.login_attempts.expect_clear().never();
    mocks.refresh_tokens.expect_insert().never();

    let result = mocks
        .service()
        .login("Alice", PASSWORD, &SignInClient::default())
        .await;

    let Err(LoginError::Throttled { retry_after }) = result else {
        panic!("expected Throttled, got {result:?}");
    };
    // The oldest failure leaves the 15-minute window in 10 minutes.
    assert_eq!(retry_after, SignedDuration::from_mins(10));
}

#[tokio::test]
async fn an_unknown_username_costs_a_dummy_verification_and_counts_as_a_failure() {
    let mut mocks = Mocks::new();
    mocks.not_throttled("ghost");
    mocks
        .users
        .expect_find_credentials()
        .withf(|username| username.as_str() == "ghost")
        .times(1)
        .returning(|_| Ok(None));
    mocks
        .hasher
        .expect_verify()
        .withf(|password, hash| password.expose() == PASSWORD && hash.is_none())
        .times(1)
        .returning(|_, _| Ok(false));
    mocks
        .login_attempts
        .expect_record_failure()
        .withf(|key, at| key == [ThrottleKey::username("ghost")] && *at == NOW)
        .times(1)
        .returning(|_, _| Ok(()));
    mocks.login_attempts.expect_clear().never();
    mocks.refresh_tokens.expect_insert().never();

    let result = mocks
        .service()
        .login("Ghost", PASSWORD, &SignInClient::default())
        .await;

    assert!(
        matches!(result, Err(LoginError::InvalidCredentials)),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_malformed_username_is_not_looked_up_but_still_costs_a_verification() {
    let mut mocks = Mocks::new();
    mocks.not_throttled("no spaces allowed");
    mocks.users.expect_find_credentials().never();
    mocks
        .hasher
        .expect_verify()
        .withf(|_, hash| hash.is_none())
        .times(1)
        .returning(|_, _| Ok(false));
    mocks
        .login_attempts
        .expect_record_failure()
        .withf(|key, _| key == [ThrottleKey::username("no spaces allowed")])
        .times(1)
        .returning(|_, _| Ok(()));

    let result = mocks
        .service()
        .login("No Spaces Allowed", PASSWORD, &SignInClient::default())
        .await;

    assert!(
        matches!(result, Err(LoginError::InvalidCredentials)),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_overlong_password_is_refused_after_a_dummy_verification_even_for_a_known_user() {
    let alice = user("alice", Role::Patient, UserStatus::Active);
    let mut mocks = Mocks::new();
    mocks.not_throttled("alice");
    mocks.credentials_of(&alice);
    // Too long to ever match: the stored hash is not used, but the same work is done.
    mocks
        .hasher
        .expect_verify()
        .withf(|_, hash| hash.is_none())
        .times(1)
        .returning(|_, _| Ok(false));
    mocks
        .login_attempts
        .expect_record_failure()
        .withf(|key, _| key == [ThrottleKey::username("alice")])
        .times(1)
        .returning(|_, _| Ok(()));
    mocks.refresh_tokens.expect_insert().never();

    let result = mocks
        .service()
        .login("alice", &"p".repeat(129), &SignInClient::default())
        .await;

    assert!(
        matches!(result, Err(LoginError::InvalidCredentials)),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_recorded_as_a_failure_and_refused() {
    let alice = user("alice", Role::Doctor, UserStatus::Active);
    let mut mocks = Mocks::new();
    // Four failures are not yet enough to pause sign-in.
    mocks.recent_failures(
        "alice",
        RecentFailures {
            count: 4,
            oldest: Some(NOW - SignedDuration::from_mins(5)),
        },
    );
    mocks.credentials_of(&alice);
    mocks.password_matches(false);
    mocks
        .login_attempts
        .expect_record_failure()
        .withf(|key, at| key == [ThrottleKey::username("alice")] && *at == NOW)
        .times(1)
        .returning(|_, _| Ok(()));
    mocks.login_attempts.expect_clear().never();
    mocks.refresh_tokens.expect_insert().never();
    let signed = mocks.signed();

    let result = mocks
        .service()
        .login("alice", PASSWORD, &SignInClient::default())
        .await;

    assert!(
        matches!(result, Err(LoginError::InvalidCredentials)),
        "{result:?}"
    );
    assert!(signed.lock().expect("log").is_empty());
}

#[tokio::test]
async fn a_pending_account_with_the_right_password_is_told_it_awaits_approval() {
    let pending = user("newdoc", Role::Doctor, UserStatus::Pending);
    let mut mocks = Mocks::new();
    mocks.not_throttled("newdoc");
    mocks.credentials_of(&pending);
    mocks.password_matches(true);
    // The password was right: not a failure. Whether failures are forgotten is no concern here.
    mocks.login_attempts.expect_record_failure().never();
    mocks.login_attempts.expect_clear().returning(|_| Ok(()));
    mocks.refresh_tokens.expect_insert().never();
    let signed = mocks.signed();

    let result = mocks
        .service()
        .login("newdoc", PASSWORD, &SignInClient::default())
        .await;

    assert!(
        matches!(result, Err(LoginError::AccountPending)),
        "{result:?}"
    );
    assert!(signed.lock().expect("log").is_empty(), "no access token");
}

#[tokio::test]
async fn a_suspended_account_with_the_right_password_is_told_it_is_suspended() {
    let suspended = user("gone", Role::Secretary, UserStatus::Suspended);
    let mut mocks = Mocks::new();
    mocks.not_throttled("gone");
    mocks.credentials_of(&suspended);
    mocks.password_matches(true);
    mocks.login_attempts.expect_record_failure().never();
    mocks.login_attempts.expect_clear().returning(|_| Ok(()));
    mocks.refresh_tokens.expect_insert().never();
    let signed = mocks.signed();

    let result = mocks
        .service()
        .login("gone", PASSWORD, &SignInClient::default())
        .await;

    assert!(
        matches!(result, Err(LoginError::AccountSuspended)),
        "{result:?}"
    );
    assert!(signed.lock().expect("log").is_empty(), "no access token");
}

#[tokio::test]
async fn a_successful_sign_in_forgets_failures_starts_a_session_and_trusts_the_device() {
    let alice = user("alice", Role::Doctor, UserStatus::Active);
    let mut mocks = Mocks::new();
    mocks.not_throttled("alice");
    mocks.credentials_of(&alice);
    mocks.password_matches(true);
    mocks.login_attempts.expect_record_failure().never();
    mocks
        .login_attempts
        .expect_clear()
        .withf(|key| key == [ThrottleKey::username("alice")])
        .times(1)
        .returning(|_| Ok(()));
    let inserted = Arc::new(Mutex::new(None));
    let keep = Arc::clone(&inserted);
    let alice_id = alice.id;
    mocks
        .refresh_tokens
        .expect_insert()
        .withf(move |token| {
            token.hash == hash_of("refresh-1")
                && token.user_id == alice_id
                && token.issued_at == NOW
                && token.expires_at == NOW + SignedDuration::from_hours(24 * 14)
                && token.session_ends_at == NOW + SignedDuration::from_hours(24 * 30)
        })
        .times(1)
        .returning(move |token| {
            *keep.lock().expect("keep") = Some(token.clone());
            Ok(())
        });
    mocks
        .trusted_devices
        .expect_trust()
        .withf(move |device, user, until| {
            *device == hash_of("refresh-2")
                && *user == alice_id
                && *until == NOW + SignedDuration::from_hours(24 * 90)
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    let signed = mocks.signed();

    let signed_in = mocks
        .service()
        .login("Alice", PASSWORD, &SignInClient::default())
        .await
        .expect("signed in");
    let pair = signed_in.tokens;
    assert_eq!(signed_in.device_token.expose(), "refresh-2");

    let session = inserted
        .lock()
        .expect("inserted")
        .clone()
        .expect("a refresh token was stored")
        .session_id;
    let signed = signed.lock().expect("log");
    let [claims] = signed.as_slice() else {
        panic!("expected one access token, got {signed:?}");
    };
    assert_eq!(claims.user_id, alice.id);
    assert_eq!(claims.role, Role::Doctor);
    assert_eq!(claims.session_id, session);
    assert_eq!(claims.issued_at, NOW);
    assert_eq!(claims.expires_at, NOW + SignedDuration::from_mins(15));
    assert_eq!(pair.access_token, signed_token(claims));
    assert_eq!(
        pair.refresh_token,
        RefreshToken::new("refresh-1".to_owned())
    );
    assert_eq!(pair.expires_in, SignedDuration::from_mins(15));
}

#[tokio::test]
async fn a_signing_failure_at_sign_in_is_internal() {
    let alice = user("alice", Role::Doctor, UserStatus::Active);
    let mut mocks = Mocks::new();
    mocks.not_throttled("alice");
    mocks.credentials_of(&alice);
    mocks.password_matches(true);
    mocks.login_attempts.expect_clear().returning(|_| Ok(()));
    mocks.refresh_tokens.expect_insert().returning(|_| Ok(()));
    mocks.access_tokens = MockAccessTokenCodec::new();
    mocks
        .access_tokens
        .expect_issue()
        .times(1)
        .returning(|_| Err(TokenError::Signing("no key".to_owned())));

    let result = mocks
        .service()
        .login("alice", PASSWORD, &SignInClient::default())
        .await;

    assert!(
        matches!(result, Err(LoginError::Internal(InternalError::Signing(_)))),
        "{result:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Throttling by address and device

fn client_address() -> ClientAddress {
    ClientAddress::new("192.0.2.7".parse().expect("ip"))
}

fn from_address(devices: &[&str]) -> SignInClient {
    SignInClient {
        address: Some(client_address()),
        device_tokens: devices
            .iter()
            .map(|d| DeviceToken::parse(d).expect("token"))
            .collect(),
    }
}

/// Asserts that sign-in was paused.
fn assert_paused(result: &Result<SignedIn, LoginError>) {
    assert!(
        matches!(result, Err(LoginError::Throttled { .. })),
        "{result:?}"
    );
}

impl Mocks {
    /// Counts under any key: those listed, else none.
    fn failures_by_key(&mut self, counts: &[(ThrottleKey, u32)]) {
        let counts: std::collections::HashMap<ThrottleKey, u32> = counts.iter().cloned().collect();
        self.login_attempts
            .expect_recent_failures()
            .returning(move |key, _| {
                let count = counts.get(key).copied().unwrap_or(0);
                Ok(RecentFailures {
                    count,
                    oldest: (count > 0).then_some(NOW - SignedDuration::from_mins(5)),
                })
            });
    }

    /// `device` is trusted for `username` and nothing else is.
    fn trusted(&mut self, device: &'static str, username: &'static str) {
        self.trusted_devices
            .expect_is_trusted_for()
            .returning(move |hash, name, now| {
                Ok(*hash == hash_of(device) && name == username && now == NOW)
            });
    }
}

#[tokio::test]
async fn an_address_past_its_limit_is_paused_whatever_the_username() {
    let mut mocks = Mocks::new();
    mocks.failures_by_key(&[(ThrottleKey::address(client_address()), 50)]);
    mocks.hasher.expect_verify().never();
    mocks.login_attempts.expect_record_failure().never();

    let result = mocks
        .service()
        .login("anyone", PASSWORD, &from_address(&[]))
        .await;

    let Err(LoginError::Throttled { retry_after }) = result else {
        panic!("expected Throttled, got {result:?}");
    };
    assert_eq!(retry_after, SignedDuration::from_mins(10));
}

#[tokio::test]
async fn a_trusted_device_passes_its_addresss_pause_but_its_failures_still_count() {
    let alice = user("alice", Role::Doctor, UserStatus::Active);
    let mut mocks = Mocks::new();
    mocks.failures_by_key(&[(ThrottleKey::address(client_address()), 50)]);
    mocks.trusted("device-a", "alice");
    mocks.credentials_of(&alice);
    mocks.password_matches(false);
    mocks
        .login_attempts
        .expect_record_failure()
        .withf(|keys, _| keys.contains(&ThrottleKey::address(client_address())))
        .times(1)
        .returning(|_, _| Ok(()));

    let result = mocks
        .service()
        .login("alice", PASSWORD, &from_address(&["device-a"]))
        .await;

    assert!(
        matches!(result, Err(LoginError::InvalidCredentials)),
        "the password was checked: {result:?}"
    );
}

#[tokio::test]
async fn a_device_is_trusted_for_the_submitted_username_exactly() {
    let mut mocks = Mocks::new();
    mocks.failures_by_key(&[(ThrottleKey::username("user:alice"), 5)]);
    mocks.trusted("device-a", "alice");
    mocks.hasher.expect_verify().never();

    let result = mocks
        .service()
        .login("User:Alice", PASSWORD, &from_address(&["device-a"]))
        .await;

    assert_paused(&result);
}

#[tokio::test]
async fn one_address_failing_for_one_username_is_paused() {
    let mut mocks = Mocks::new();
    mocks.failures_by_key(&[(ThrottleKey::address_username(client_address(), "alice"), 5)]);
    mocks.trusted("device-a", "alice");
    mocks.hasher.expect_verify().never();

    let result = mocks
        .service()
        .login("alice", PASSWORD, &from_address(&["device-a"]))
        .await;

    assert_paused(&result);
}

#[tokio::test]
async fn a_trusted_device_signs_in_while_the_username_is_paused_for_others() {
    let alice = user("alice", Role::Doctor, UserStatus::Active);
    let mut mocks = Mocks::new();
    mocks.failures_by_key(&[(ThrottleKey::username("alice"), 50)]);
    mocks.trusted("device-a", "alice");
    mocks.credentials_of(&alice);
    mocks.password_matches(true);
    mocks.login_attempts.expect_record_failure().never();
    // The stranger's failures stay counted against the username; the address's too.
    mocks
        .login_attempts
        .expect_clear()
        .withf(|keys| {
            keys == [
                ThrottleKey::address_username(client_address(), "alice"),
                ThrottleKey::device(&hash_of("device-a")),
            ]
        })
        .times(1)
        .returning(|_| Ok(()));
    mocks.refresh_tokens.expect_insert().returning(|_| Ok(()));
    let alice_id = alice.id;
    mocks
        .trusted_devices
        .expect_trust()
        .withf(move |device, user, _| *device == hash_of("device-a") && *user == alice_id)
        .times(1)
        .returning(|_, _, _| Ok(()));

    let signed_in = mocks
        .service()
        .login("Alice", PASSWORD, &from_address(&["stale", "device-a"]))
        .await
        .expect("signed in");

    assert_eq!(signed_in.device_token.expose(), "device-a");
}

#[tokio::test]
async fn failures_with_a_trusted_device_count_against_the_device_not_the_username() {
    let alice = user("alice", Role::Doctor, UserStatus::Active);
    let mut mocks = Mocks::new();
    mocks.failures_by_key(&[]);
    mocks.trusted("device-a", "alice");
    mocks.credentials_of(&alice);
    mocks.password_matches(false);
    mocks
        .login_attempts
        .expect_record_failure()
        .withf(|keys, at| {
            *at == NOW
                && keys
                    == [
                        ThrottleKey::address(client_address()),
                        ThrottleKey::address_username(client_address(), "alice"),
                        ThrottleKey::device(&hash_of("device-a")),
                    ]
        })
        .times(1)
        .returning(|_, _| Ok(()));

    let result = mocks
        .service()
        .login("alice", PASSWORD, &from_address(&["device-a"]))
        .await;

    assert!(
        matches!(result, Err(LoginError::InvalidCredentials)),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_device_that_failed_too_often_is_trusted_no_more() {
    let mut mocks = Mocks::new();
    mocks.failures_by_key(&[
        (ThrottleKey::device(&hash_of("device-a")), 5),
        (ThrottleKey::username("alice"), 5),
    ]);
    mocks.trusted("device-a", "alice");
    mocks.hasher.expect_verify().never();

    let result = mocks
        .service()
        .login("alice", PASSWORD, &from_address(&["device-a"]))
        .await;

    assert_paused(&result);
}

#[tokio::test]
async fn a_device_trusted_for_another_account_does_not_pass_the_pause() {
    let mut mocks = Mocks::new();
    mocks.failures_by_key(&[(ThrottleKey::username("alice"), 5)]);
    mocks.trusted("device-b", "bob");
    mocks.hasher.expect_verify().never();

    let result = mocks
        .service()
        .login("alice", PASSWORD, &from_address(&["device-b"]))
        .await;

    assert_paused(&result);
}

#[tokio::test]
async fn a_success_from_a_new_device_forgets_its_failures_but_not_the_address_count() {
    let alice = user("alice", Role::Patient, UserStatus::Active);
    let mut mocks = Mocks::new();
    mocks.failures_by_key(&[(ThrottleKey::address(client_address()), 3)]);
    mocks.credentials_of(&alice);
    mocks.password_matches(true);
    mocks
        .login_attempts
        .expect_clear()
        .withf(|keys| {
            keys == [
                ThrottleKey::address_username(client_address(), "alice"),
                ThrottleKey::username("alice"),
            ]
        })
        .times(1)
        .returning(|_| Ok(()));
    mocks.refresh_tokens.expect_insert().returning(|_| Ok(()));
    mocks
        .trusted_devices
        .expect_trust()
        .withf(|device, _, _| *device == hash_of("refresh-2"))
        .times(1)
        .returning(|_, _, _| Ok(()));

    let signed_in = mocks
        .service()
        .login("alice", PASSWORD, &from_address(&[]))
        .await
        .expect("signed in");

    assert_eq!(signed_in.device_token.expose(), "refresh-2");
}

#[tokio::test]
async fn registrations_from_one_address_are_limited_before_any_hashing() {
    let mut mocks = Mocks::new();
    mocks.failures_by_key(&[(ThrottleKey::registration(client_address()), 20)]);
    mocks.hasher.expect_hash().never();
    mocks.users.expect_create().never();

    let result = mocks
        .service()
        .register(account("ann", Role::Patient), Some(client_address()))
        .await;

    let Err(RegisterError::Throttled { retry_after }) = result else {
        panic!("expected Throttled, got {result:?}");
    };
    assert_eq!(retry_after, SignedDuration::from_mins(55));
}

#[tokio::test]
async fn every_registration_from_an_address_is_counted() {
    let mut mocks = Mocks::new();
    mocks.failures_by_key(&[(ThrottleKey::registration(client_address()), 19)]);
    mocks
        .login_attempts
        .expect_record_failure()
        .withf(|keys, at| *at == NOW && keys == [ThrottleKey::registration(client_address())])
        .times(1)
        .returning(|_, _| Ok(()));
    mocks.hasher.expect_hash().returning(|_| Ok(stored_hash()));
    mocks.users.expect_create().returning(|_, _| Ok(()));

    mocks
        .service()
        .register(account("ann", Role::Patient), Some(client_address()))
        .await
        .expect("registered");
}

#[tokio::test]
async fn refused_refresh_tokens_count_against_the_address() {
    let mut mocks = Mocks::new();
    mocks.failures_by_key(&[]);
    mocks
        .refresh_tokens
        .expect_rotate()
        .returning(|_, _, _, _| Ok(RotateOutcome::Unknown));
    mocks
        .login_attempts
        .expect_record_failure()
        .withf(|keys, _| keys == [ThrottleKey::address(client_address())])
        .times(1)
        .returning(|_, _| Ok(()));

    let result = mocks
        .service()
        .refresh(
            &RefreshToken::new("guess".to_owned()),
            Some(client_address()),
        )
        .await;

    assert!(matches!(result, Err(RefreshError::Invalid)), "{result:?}");
}

#[tokio::test]
async fn an_address_past_its_limit_cannot_refresh() {
    let mut mocks = Mocks::new();
    mocks.failures_by_key(&[(ThrottleKey::address(client_address()), 50)]);
    mocks.refresh_tokens.expect_rotate().never();

    let result = mocks
        .service()
        .refresh(
            &RefreshToken::new("guess".to_owned()),
            Some(client_address()),
        )
        .await;

    assert!(
        matches!(result, Err(RefreshError::Throttled { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_access_token_never_outlives_its_session() {
    let alice = user("alice", Role::Doctor, UserStatus::Active);
    let session = SessionId::generate();
    let ends = NOW + SignedDuration::from_mins(5);
    let mut mocks = Mocks::new();
    let alice_id = alice.id;
    mocks
        .refresh_tokens
        .expect_rotate()
        .returning(move |_, _, _, _| {
            Ok(RotateOutcome::Rotated {
                user_id: alice_id,
                session_id: session,
                session_ends_at: ends,
            })
        });
    mocks.user_by_id(&alice);
    let signed = mocks.signed();

    let pair = mocks
        .service()
        .refresh(&RefreshToken::new("presented".to_owned()), None)
        .await
        .expect("rotated");

    assert_eq!(pair.expires_in, SignedDuration::from_mins(5));
    assert_eq!(signed.lock().expect("log")[0].expires_at, ends);
}

// ---------------------------------------------------------------------------------------------
// Refresh

#[tokio::test]
async fn a_fresh_refresh_token_is_rotated_into_a_new_pair_for_the_same_session() {
    let alice = user("alice", Role::Laboratory, UserStatus::Active);
    let session = SessionId::generate();
    let mut mocks = Mocks::new();
    let alice_id = alice.id;
    mocks
        .refresh_tokens
        .expect_rotate()
        .with(
            eq(hash_of("presented")),
            eq(hash_of("refresh-1")),
            eq(NOW),
            eq(NOW + SignedDuration::from_hours(24 * 14)),
        )
        .times(1)
        .returning(move |_, _, _, _| {
            Ok(RotateOutcome::Rotated {
                user_id: alice_id,
                session_id: session,
                session_ends_at: NOW + SignedDuration::from_hours(24 * 30),
            })
        });
    mocks.refresh_tokens.expect_revoke_session().never();
    mocks.user_by_id(&alice);
    let signed = mocks.signed();

    let pair = mocks
        .service()
        .refresh(&RefreshToken::new("presented".to_owned()), None)
        .await
        .expect("rotated");

    assert_eq!(
        pair.refresh_token,
        RefreshToken::new("refresh-1".to_owned())
    );
    assert_eq!(pair.expires_in, SignedDuration::from_mins(15));
    let signed = signed.lock().expect("log");
    let [claims] = signed.as_slice() else {
        panic!("expected one access token, got {signed:?}");
    };
    assert_eq!(claims.session_id, session);
    assert_eq!(claims.user_id, alice.id);
    assert_eq!(claims.role, Role::Laboratory);
    assert_eq!(claims.expires_at, NOW + SignedDuration::from_mins(15));
    assert_eq!(pair.access_token, signed_token(claims));
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_its_whole_session() {
    let session = SessionId::generate();
    let mut mocks = Mocks::new();
    mocks
        .refresh_tokens
        .expect_rotate()
        .times(1)
        .returning(move |_, _, _, _| {
            Ok(RotateOutcome::Reused {
                session_id: session,
            })
        });
    mocks
        .refresh_tokens
        .expect_revoke_session()
        .with(eq(session), eq(NOW))
        .times(1)
        .returning(|_, _| Ok(()));
    mocks.users.expect_find_by_id().never();
    let signed = mocks.signed();

    let result = mocks
        .service()
        .refresh(&RefreshToken::new("replayed".to_owned()), None)
        .await;

    assert!(matches!(result, Err(RefreshError::Reused)), "{result:?}");
    assert!(signed.lock().expect("log").is_empty());
}

#[tokio::test]
async fn a_dead_or_unknown_refresh_token_is_invalid_and_revokes_nothing() {
    for outcome in [RotateOutcome::Dead, RotateOutcome::Unknown] {
        let mut mocks = Mocks::new();
        let answer = outcome.clone();
        mocks
            .refresh_tokens
            .expect_rotate()
            .times(1)
            .returning(move |_, _, _, _| Ok(answer.clone()));
        mocks.refresh_tokens.expect_revoke_session().never();
        mocks.refresh_tokens.expect_revoke_all_for_user().never();
        mocks.users.expect_find_by_id().never();

        let result = mocks
            .service()
            .refresh(&RefreshToken::new("stale".to_owned()), None)
            .await;

        assert!(
            matches!(result, Err(RefreshError::Invalid)),
            "{outcome:?}: {result:?}"
        );
    }
}

/// A refresh rotated for `user`, whose session must then be revoked once.
fn rotated_for_inactive(user_id: UserId, found: Option<User>) -> Mocks {
    let session = SessionId::generate();
    let mut mocks = Mocks::new();
    mocks
        .refresh_tokens
        .expect_rotate()
        .times(1)
        .returning(move |_, _, _, _| {
            Ok(RotateOutcome::Rotated {
                user_id,
                session_id: session,
                session_ends_at: NOW + SignedDuration::from_hours(24 * 30),
            })
        });
    mocks
        .users
        .expect_find_by_id()
        .with(eq(user_id))
        .times(1)
        .returning(move |_| Ok(found.clone()));
    mocks
        .refresh_tokens
        .expect_revoke_session()
        .with(eq(session), eq(NOW))
        .times(1)
        .returning(|_, _| Ok(()));
    mocks
}

#[tokio::test]
async fn refreshing_for_a_suspended_user_revokes_the_session_and_refuses() {
    let suspended = user("gone", Role::Doctor, UserStatus::Suspended);
    let mocks = rotated_for_inactive(suspended.id, Some(suspended));
    let signed = mocks.signed();

    let result = mocks
        .service()
        .refresh(&RefreshToken::new("presented".to_owned()), None)
        .await;

    assert!(
        matches!(result, Err(RefreshError::AccountSuspended)),
        "{result:?}"
    );
    assert!(signed.lock().expect("log").is_empty());
}

#[tokio::test]
async fn refreshing_for_a_pending_user_revokes_the_session_and_refuses() {
    let pending = user("newdoc", Role::Doctor, UserStatus::Pending);
    let mocks = rotated_for_inactive(pending.id, Some(pending));

    let result = mocks
        .service()
        .refresh(&RefreshToken::new("presented".to_owned()), None)
        .await;

    assert!(
        matches!(result, Err(RefreshError::AccountPending)),
        "{result:?}"
    );
}

#[tokio::test]
async fn refreshing_for_a_deleted_user_revokes_the_session_and_is_invalid() {
    let mocks = rotated_for_inactive(UserId::generate(), None);

    let result = mocks
        .service()
        .refresh(&RefreshToken::new("presented".to_owned()), None)
        .await;

    assert!(matches!(result, Err(RefreshError::Invalid)), "{result:?}");
}

// ---------------------------------------------------------------------------------------------
// Sign-out

/// The caller's access token is denied until it expires and its session revoked, once each.
fn expect_own_session_ended(mocks: &mut Mocks, claims: &AccessClaims) {
    mocks
        .revoked_tokens
        .expect_revoke()
        .with(eq(claims.token_id), eq(claims.expires_at))
        .times(1)
        .returning(|_, _| Ok(()));
    mocks
        .refresh_tokens
        .expect_revoke_session()
        .with(eq(claims.session_id), eq(NOW))
        .times(1)
        .returning(|_, _| Ok(()));
}

#[tokio::test]
async fn signing_out_denies_the_access_token_until_it_expires_and_ends_its_session() {
    let caller = principal(&user("alice", Role::Patient, UserStatus::Active));
    let mut mocks = Mocks::new();
    expect_own_session_ended(&mut mocks, caller.claims());
    mocks.refresh_tokens.expect_find_session().never();

    mocks
        .service()
        .logout(&caller, None)
        .await
        .expect("signed out");
}

#[tokio::test]
async fn signing_out_with_a_refresh_token_of_another_own_session_ends_that_session_too() {
    let caller = principal(&user("alice", Role::Patient, UserStatus::Active));
    let other_session = SessionId::generate();
    let mut mocks = Mocks::new();
    expect_own_session_ended(&mut mocks, caller.claims());
    let owner = caller.id();
    mocks
        .refresh_tokens
        .expect_find_session()
        .with(eq(hash_of("from-her-phone")))
        .times(1)
        .returning(move |_| Ok(Some((owner, other_session))));
    mocks
        .refresh_tokens
        .expect_revoke_session()
        .with(eq(other_session), eq(NOW))
        .times(1)
        .returning(|_, _| Ok(()));

    mocks
        .service()
        .logout(
            &caller,
            Some(&RefreshToken::new("from-her-phone".to_owned())),
        )
        .await
        .expect("signed out");
}

#[tokio::test]
async fn signing_out_with_another_users_refresh_token_leaves_their_session_alone() {
    let caller = principal(&user("alice", Role::Patient, UserStatus::Active));
    let their_session = SessionId::generate();
    let mut mocks = Mocks::new();
    expect_own_session_ended(&mut mocks, caller.claims());
    let someone_else = UserId::generate();
    mocks
        .refresh_tokens
        .expect_find_session()
        .with(eq(hash_of("stolen")))
        .times(1)
        .returning(move |_| Ok(Some((someone_else, their_session))));
    mocks
        .refresh_tokens
        .expect_revoke_session()
        .with(eq(their_session), mockall::predicate::always())
        .never();

    mocks
        .service()
        .logout(&caller, Some(&RefreshToken::new("stolen".to_owned())))
        .await
        .expect("signed out");
}

// ---------------------------------------------------------------------------------------------
// Authentication of requests

#[tokio::test]
async fn an_expired_or_invalid_access_token_is_refused_as_such() {
    let cases = [
        (TokenError::Expired, "Expired"),
        (TokenError::Invalid, "Invalid"),
        (TokenError::Signing("bad key".to_owned()), "Invalid"),
    ];
    for (error, expected) in cases {
        let mut mocks = Mocks::new();
        let answer = error.clone();
        mocks
            .access_tokens
            .expect_verify()
            .withf(|token| token == "the-token")
            .times(1)
            .returning(move |_| Err(answer.clone()));
        mocks.revoked_tokens.expect_is_denied().never();
        mocks.users.expect_find_by_id().never();

        let result = mocks.service().authenticate("the-token").await;

        let got = match result {
            Err(AuthenticateError::Expired) => "Expired",
            Err(AuthenticateError::Invalid) => "Invalid",
            other => panic!("{error:?}: unexpected {other:?}"),
        };
        assert_eq!(got, expected, "{error:?}");
    }
}

/// The codec accepts `the-token` as `claims`; whether its jti or session is denied is `revoked`.
fn verified(claims: &AccessClaims, revoked: bool) -> Mocks {
    let mut mocks = Mocks::new();
    let answer = claims.clone();
    mocks
        .access_tokens
        .expect_verify()
        .withf(|token| token == "the-token")
        .times(1)
        .returning(move |_| Ok(answer.clone()));
    mocks
        .revoked_tokens
        .expect_is_denied()
        .with(eq(claims.token_id), eq(claims.session_id), eq(NOW))
        .times(1)
        .returning(move |_, _, _| Ok(revoked));
    mocks
}

#[tokio::test]
async fn a_revoked_access_token_is_refused_without_looking_up_the_user() {
    let alice = user("alice", Role::Patient, UserStatus::Active);
    let mut mocks = verified(&claims_for(&alice), true);
    mocks.users.expect_find_by_id().never();

    let result = mocks.service().authenticate("the-token").await;

    assert!(
        matches!(result, Err(AuthenticateError::Revoked)),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_token_of_a_suspended_or_pending_user_is_refused_as_inactive() {
    for status in [UserStatus::Suspended, UserStatus::Pending] {
        let bob = user("bob", Role::Doctor, status);
        let mut mocks = verified(&claims_for(&bob), false);
        mocks.user_by_id(&bob);

        let result = mocks.service().authenticate("the-token").await;

        assert!(
            matches!(result, Err(AuthenticateError::Inactive)),
            "{status}: {result:?}"
        );
    }
}

#[tokio::test]
async fn a_token_of_a_user_who_no_longer_exists_is_invalid() {
    let ghost = user("ghost", Role::Patient, UserStatus::Active);
    let mut mocks = verified(&claims_for(&ghost), false);
    mocks
        .users
        .expect_find_by_id()
        .with(eq(ghost.id))
        .times(1)
        .returning(|_| Ok(None));

    let result = mocks.service().authenticate("the-token").await;

    assert!(
        matches!(result, Err(AuthenticateError::Invalid)),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_valid_token_of_an_active_user_yields_that_user_as_they_are_now() {
    let before = user("carol", Role::Doctor, UserStatus::Active);
    let claims = claims_for(&before);
    // Since the token was issued, an administrator made Carol a secretary.
    let now = User {
        role: Role::Secretary,
        ..before
    };
    let mut mocks = verified(&claims, false);
    mocks.user_by_id(&now);

    let principal = mocks
        .service()
        .authenticate("the-token")
        .await
        .expect("authenticated");

    assert_eq!(principal.user(), &now);
    assert_eq!(principal.role(), Role::Secretary);
    assert_eq!(principal.claims(), &claims);
}

// ---------------------------------------------------------------------------------------------
// WebSocket tickets and live sessions

/// The ticket is stored once, as the hash of the factory's first secret, for `claims`, until
/// `expires_at`.
fn expect_ticket_issued(mocks: &mut Mocks, claims: &AccessClaims, expires_at: Timestamp) {
    let claims = claims.clone();
    mocks
        .socket_tickets
        .expect_issue()
        .withf(move |hash, c, until| {
            *hash == hash_of("refresh-1") && *c == claims && *until == expires_at
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
}

#[tokio::test]
async fn a_socket_ticket_lasts_thirty_seconds_and_is_stored_only_as_a_hash() {
    let alice = principal(&user("alice", Role::Doctor, UserStatus::Active));
    assert!(alice.claims().expires_at > NOW + SignedDuration::from_secs(30));
    let mut mocks = Mocks::new();
    expect_ticket_issued(
        &mut mocks,
        alice.claims(),
        NOW + SignedDuration::from_secs(30),
    );

    let (ticket, expires_at) = mocks
        .service()
        .issue_socket_ticket(&alice)
        .await
        .expect("issued");

    assert_eq!(ticket, "refresh-1", "the secret itself goes to the client");
    assert_eq!(expires_at, NOW + SignedDuration::from_secs(30));
    assert_eq!(SOCKET_TICKET_TTL, SignedDuration::from_secs(30));
}

#[tokio::test]
async fn a_socket_ticket_never_outlives_the_access_token_it_stands_for() {
    let bob = user("bob", Role::Doctor, UserStatus::Active);
    let claims = AccessClaims {
        expires_at: NOW + SignedDuration::from_secs(10),
        ..claims_for(&bob)
    };
    let expiring = Principal::new(bob, claims);
    let mut mocks = Mocks::new();
    expect_ticket_issued(
        &mut mocks,
        expiring.claims(),
        NOW + SignedDuration::from_secs(10),
    );

    let (_, expires_at) = mocks
        .service()
        .issue_socket_ticket(&expiring)
        .await
        .expect("issued");

    assert_eq!(expires_at, NOW + SignedDuration::from_secs(10));
}

#[tokio::test]
async fn a_socket_ticket_that_cannot_be_stored_is_internal() {
    let alice = principal(&user("alice", Role::Doctor, UserStatus::Active));
    let mut mocks = Mocks::new();
    mocks
        .socket_tickets
        .expect_issue()
        .times(1)
        .returning(|_, _, _| Err(repository_failure()));

    let result = mocks.service().issue_socket_ticket(&alice).await;

    assert!(
        matches!(result, Err(InternalError::Repository(_))),
        "{result:?}"
    );
}

/// `the-ticket` is redeemed once, by its hash, as of now, and stands for `claims` (`None`:
/// unknown, used or expired).
fn redeemed(claims: Option<AccessClaims>) -> Mocks {
    let mut mocks = Mocks::new();
    mocks
        .socket_tickets
        .expect_redeem()
        .withf(|hash, now| *hash == hash_of("the-ticket") && *now == NOW)
        .times(1)
        .returning(move |_, _| Ok(claims.clone()));
    mocks
}

#[tokio::test]
async fn an_unknown_used_or_expired_socket_ticket_is_invalid() {
    let mut mocks = redeemed(None);
    mocks.revoked_tokens.expect_is_denied().never();
    mocks.users.expect_find_by_id().never();

    let result = mocks.service().redeem_socket_ticket("the-ticket").await;

    assert!(
        matches!(result, Err(AuthenticateError::Invalid)),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_socket_ticket_whose_access_token_expired_is_refused_as_expired() {
    let alice = user("alice", Role::Doctor, UserStatus::Active);
    for expires_at in [NOW, NOW - SignedDuration::from_secs(1)] {
        let claims = AccessClaims {
            expires_at,
            ..claims_for(&alice)
        };
        let mut mocks = redeemed(Some(claims));
        mocks.revoked_tokens.expect_is_denied().never();
        mocks.users.expect_find_by_id().never();

        let result = mocks.service().redeem_socket_ticket("the-ticket").await;

        assert!(
            matches!(result, Err(AuthenticateError::Expired)),
            "{expires_at}: {result:?}"
        );
    }
}

/// `the-ticket` stands for `claims`, and whether its token or session is denied is `revoked`.
fn redeemed_and_checked(claims: &AccessClaims, revoked: bool) -> Mocks {
    let mut mocks = redeemed(Some(claims.clone()));
    mocks
        .revoked_tokens
        .expect_is_denied()
        .with(eq(claims.token_id), eq(claims.session_id), eq(NOW))
        .times(1)
        .returning(move |_, _, _| Ok(revoked));
    mocks
}

#[tokio::test]
async fn a_socket_ticket_of_a_signed_out_session_is_refused_as_revoked() {
    let alice = user("alice", Role::Doctor, UserStatus::Active);
    let mut mocks = redeemed_and_checked(&claims_for(&alice), true);
    mocks.users.expect_find_by_id().never();

    let result = mocks.service().redeem_socket_ticket("the-ticket").await;

    assert!(
        matches!(result, Err(AuthenticateError::Revoked)),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_socket_ticket_of_a_suspended_account_is_refused_as_inactive() {
    for status in [UserStatus::Suspended, UserStatus::Pending] {
        let bob = user("bob", Role::Doctor, status);
        let mut mocks = redeemed_and_checked(&claims_for(&bob), false);
        mocks.user_by_id(&bob);

        let result = mocks.service().redeem_socket_ticket("the-ticket").await;

        assert!(
            matches!(result, Err(AuthenticateError::Inactive)),
            "{status}: {result:?}"
        );
    }
}

#[tokio::test]
async fn a_socket_ticket_of_a_deleted_account_is_invalid() {
    let ghost = user("ghost", Role::Doctor, UserStatus::Active);
    let mut mocks = redeemed_and_checked(&claims_for(&ghost), false);
    mocks
        .users
        .expect_find_by_id()
        .with(eq(ghost.id))
        .times(1)
        .returning(|_| Ok(None));

    let result = mocks.service().redeem_socket_ticket("the-ticket").await;

    assert!(
        matches!(result, Err(AuthenticateError::Invalid)),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_valid_socket_ticket_stands_for_its_user_as_they_are_now() {
    let carol = user("carol", Role::Doctor, UserStatus::Active);
    let claims = claims_for(&carol);
    let mut mocks = redeemed_and_checked(&claims, false);
    mocks.user_by_id(&carol);

    let principal = mocks
        .service()
        .redeem_socket_ticket("the-ticket")
        .await
        .expect("redeemed");

    assert_eq!(principal.user(), &carol);
    assert_eq!(principal.claims(), &claims);
}

#[tokio::test]
async fn a_socket_ticket_that_cannot_be_redeemed_is_internal() {
    let mut mocks = Mocks::new();
    mocks
        .socket_tickets
        .expect_redeem()
        .times(1)
        .returning(|_, _| Err(repository_failure()));

    let result = mocks.service().redeem_socket_ticket("the-ticket").await;

    assert!(
        matches!(result, Err(AuthenticateError::Internal(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn no_live_session_asks_storage_nothing() {
    let mut mocks = Mocks::new();
    mocks.revoked_tokens.expect_ended_sessions().never();

    let ended = mocks.service().ended_sessions(&[]).await.expect("checked");

    assert!(ended.is_empty());
}

#[tokio::test]
async fn live_sessions_are_checked_together_and_the_ended_ones_reported() {
    let alice = claims_for(&user("alice", Role::Doctor, UserStatus::Active));
    let bob = claims_for(&user("bob", Role::Doctor, UserStatus::Suspended));
    let carol = claims_for(&user("carol", Role::Doctor, UserStatus::Active));
    let sessions = vec![
        LiveSession::from(&alice),
        LiveSession::from(&bob),
        LiveSession::from(&carol),
    ];
    let answer = vec![
        (alice.token_id, SessionEnd::SignedOut),
        (bob.token_id, SessionEnd::Inactive),
    ];
    let mut mocks = Mocks::new();
    let returned = answer.clone();
    mocks
        .revoked_tokens
        .expect_ended_sessions()
        .with(eq(sessions.clone()), eq(NOW))
        .times(1)
        .returning(move |_, _| Ok(returned.clone()));

    let ended = mocks
        .service()
        .ended_sessions(&sessions)
        .await
        .expect("checked");

    assert_eq!(ended, answer);
    assert_eq!(sessions[1].session_id, bob.session_id);
    assert_eq!(sessions[1].user_id, bob.user_id);
}

// ---------------------------------------------------------------------------------------------
// Administration

#[tokio::test]
async fn only_administrators_may_administer_accounts() {
    for role in [
        Role::Secretary,
        Role::Doctor,
        Role::Laboratory,
        Role::Patient,
    ] {
        let actor = principal(&user("someone", role, UserStatus::Active));
        let mut mocks = Mocks::new();
        mocks.no_user_is_stored_or_changed();
        mocks.users.expect_list().never();
        mocks.users.expect_find_by_id().never();
        let service = mocks.service();
        let target = UserId::generate();

        let listed = service
            .list_users(&actor, UserFilter::default(), PageRequest::first(10))
            .await;
        let created = service
            .create_staff(&actor, account("newdoc", Role::Doctor))
            .await;
        let approved = service.approve(&actor, target).await;
        let updated = service
            .update_user(
                &actor,
                target,
                UserChanges {
                    status: Some(UserStatus::Suspended),
                    ..UserChanges::default()
                },
            )
            .await;

        assert!(matches!(listed, Err(AdminError::Forbidden(_))), "{role}");
        assert!(matches!(created, Err(AdminError::Forbidden(_))), "{role}");
        assert!(matches!(approved, Err(AdminError::Forbidden(_))), "{role}");
        assert!(matches!(updated, Err(AdminError::Forbidden(_))), "{role}");
    }
}

#[tokio::test]
async fn an_administrator_lists_users_with_the_filter_and_page_asked_for() {
    let filter = UserFilter {
        role: Some(Role::Doctor),
        status: Some(UserStatus::Pending),
    };
    let page = PageRequest::first(20);
    let listed = user("newdoc", Role::Doctor, UserStatus::Pending);
    let mut mocks = Mocks::new();
    let answer = listed.clone();
    mocks
        .users
        .expect_list()
        .with(eq(filter), eq(page))
        .times(1)
        .returning(move |_, _| {
            Ok(Page {
                items: vec![answer.clone()],
                next: None,
            })
        });

    let result = mocks
        .service()
        .list_users(&admin(), filter, page)
        .await
        .expect("listed");

    assert_eq!(result.items, vec![listed]);
}

#[tokio::test]
async fn approving_a_pending_account_activates_it_and_enqueues_its_email() {
    let pending = User {
        email: Some(crate::identity::Email::parse("newdoc@clinic.example").expect("valid")),
        ..user("newdoc", Role::Doctor, UserStatus::Pending)
    };
    let approved = User {
        status: UserStatus::Active,
        ..pending.clone()
    };
    let mut mocks = Mocks::new();
    mocks.user_by_id(&pending);
    let answer = approved.clone();
    let id = pending.id;
    mocks
        .users
        .expect_approve()
        .withf(move |asked, _, jobs| {
            *asked == id
                && jobs.len() == 1
                && jobs[0].task == Task::AccountApprovedEmail { user: id }
        })
        .times(1)
        .returning(move |_, _, _| Ok(Some(answer.clone())));

    let result = mocks
        .service()
        .approve(&admin(), pending.id)
        .await
        .expect("approved");

    assert_eq!(result, approved);
}

#[tokio::test]
async fn approving_an_account_without_an_address_sends_no_email() {
    let pending = User {
        email: None,
        ..user("noaddress", Role::Laboratory, UserStatus::Pending)
    };
    let mut mocks = Mocks::new();
    mocks.user_by_id(&pending);
    let answer = User {
        status: UserStatus::Active,
        ..pending.clone()
    };
    mocks
        .users
        .expect_approve()
        .withf(|_, _, jobs| jobs.is_empty())
        .times(1)
        .returning(move |_, _, _| Ok(Some(answer.clone())));

    mocks
        .service()
        .approve(&admin(), pending.id)
        .await
        .expect("approved");
}

#[tokio::test]
async fn an_approval_that_loses_a_race_is_not_pending() {
    let pending = user("racing", Role::Doctor, UserStatus::Pending);
    let mut mocks = Mocks::new();
    mocks.user_by_id(&pending);
    mocks.users.expect_approve().returning(|_, _, _| Ok(None));

    let result = mocks.service().approve(&admin(), pending.id).await;

    assert!(matches!(result, Err(AdminError::NotPending)), "{result:?}");
}

#[tokio::test]
async fn approving_an_account_that_is_not_pending_is_refused() {
    for status in [UserStatus::Active, UserStatus::Suspended] {
        let target = user("somebody", Role::Doctor, status);
        let mut mocks = Mocks::new();
        mocks.user_by_id(&target);
        mocks.users.expect_approve().never();

        let result = mocks.service().approve(&admin(), target.id).await;

        assert!(
            matches!(result, Err(AdminError::NotPending)),
            "{status}: {result:?}"
        );
    }
}

#[tokio::test]
async fn approving_or_changing_an_unknown_account_is_not_found() {
    let mut mocks = Mocks::new();
    mocks.users.expect_find_by_id().returning(|_| Ok(None));
    mocks.users.expect_update().never();
    mocks.users.expect_approve().never();
    let service = mocks.service();
    let unknown = UserId::generate();

    let approved = service.approve(&admin(), unknown).await;
    let updated = service
        .update_user(
            &admin(),
            unknown,
            UserChanges {
                full_name: Some(FullName::parse("Nobody").expect("valid")),
                ..UserChanges::default()
            },
        )
        .await;

    assert!(
        matches!(approved, Err(AdminError::NotFound)),
        "{approved:?}"
    );
    assert!(matches!(updated, Err(AdminError::NotFound)), "{updated:?}");
}

#[tokio::test]
async fn an_administrator_cannot_change_their_own_role_or_status() {
    let actor = admin();
    let own_changes = [
        UserChanges {
            role: Some(Role::Doctor),
            ..UserChanges::default()
        },
        UserChanges {
            status: Some(UserStatus::Suspended),
            ..UserChanges::default()
        },
    ];
    for changes in own_changes {
        let mut mocks = Mocks::new();
        mocks.user_by_id(actor.user());
        mocks.users.expect_update().never();
        mocks.refresh_tokens.expect_revoke_all_for_user().never();

        let result = mocks
            .service()
            .update_user(&actor, actor.id(), changes.clone())
            .await;

        assert!(
            matches!(result, Err(AdminError::OwnAccess)),
            "{changes:?}: {result:?}"
        );
    }
}

#[tokio::test]
async fn an_administrator_may_change_their_own_name() {
    let actor = admin();
    // Restating the current role and status is no change of them.
    let changes = UserChanges {
        full_name: Some(FullName::parse("Root Admin").expect("valid")),
        role: Some(Role::Admin),
        status: Some(UserStatus::Active),
        ..UserChanges::default()
    };
    let renamed = User {
        full_name: FullName::parse("Root Admin").expect("valid"),
        ..actor.user().clone()
    };
    let mut mocks = Mocks::new();
    mocks.user_by_id(actor.user());
    let answer = renamed.clone();
    mocks
        .users
        .expect_update()
        .with(eq(actor.id()), eq(changes.clone()))
        .times(1)
        .returning(move |_, _| Ok(Some(answer.clone())));
    mocks.refresh_tokens.expect_revoke_all_for_user().never();

    let result = mocks
        .service()
        .update_user(&actor, actor.id(), changes)
        .await
        .expect("renamed");

    assert_eq!(result, renamed);
}

#[tokio::test]
async fn an_account_cannot_move_between_patient_and_staff() {
    let moves = [
        (Role::Patient, Role::Doctor),
        (Role::Patient, Role::Admin),
        (Role::Doctor, Role::Patient),
        (Role::Admin, Role::Patient),
    ];
    for (from, to) in moves {
        let target = user("mover", from, UserStatus::Active);
        let mut mocks = Mocks::new();
        mocks.user_by_id(&target);
        mocks.users.expect_update().never();

        let result = mocks
            .service()
            .update_user(
                &admin(),
                target.id,
                UserChanges {
                    role: Some(to),
                    ..UserChanges::default()
                },
            )
            .await;

        let Err(AdminError::Invalid(errors)) = result else {
            panic!("{from} -> {to}: expected Invalid, got {result:?}");
        };
        assert_eq!(fields(&errors), ["role"], "{from} -> {to}");
    }
}

#[tokio::test]
async fn a_staff_account_may_change_to_another_staff_role() {
    let target = user("mover", Role::Secretary, UserStatus::Active);
    let changes = UserChanges {
        role: Some(Role::Laboratory),
        ..UserChanges::default()
    };
    let moved = User {
        role: Role::Laboratory,
        ..target.clone()
    };
    let mut mocks = Mocks::new();
    mocks.user_by_id(&target);
    let answer = moved.clone();
    mocks
        .users
        .expect_update()
        .with(eq(target.id), eq(changes.clone()))
        .times(1)
        .returning(move |_, _| Ok(Some(answer.clone())));
    mocks.refresh_tokens.expect_revoke_all_for_user().never();

    let result = mocks
        .service()
        .update_user(&admin(), target.id, changes)
        .await
        .expect("moved");

    assert_eq!(result, moved);
}

#[tokio::test]
async fn suspending_an_account_revokes_all_its_tokens_at_once() {
    let target = user("bob", Role::Doctor, UserStatus::Active);
    let suspended = User {
        status: UserStatus::Suspended,
        ..target.clone()
    };
    let mut mocks = Mocks::new();
    mocks.user_by_id(&target);
    let answer = suspended.clone();
    mocks
        .users
        .expect_update()
        .times(1)
        .returning(move |_, _| Ok(Some(answer.clone())));
    mocks
        .refresh_tokens
        .expect_revoke_all_for_user()
        .with(eq(target.id), eq(NOW))
        .times(1)
        .returning(|_, _| Ok(()));

    let result = mocks
        .service()
        .update_user(
            &admin(),
            target.id,
            UserChanges {
                status: Some(UserStatus::Suspended),
                ..UserChanges::default()
            },
        )
        .await
        .expect("suspended");

    assert_eq!(result, suspended);
}

#[tokio::test]
async fn reactivating_a_suspended_account_revokes_nothing() {
    let target = user("bob", Role::Doctor, UserStatus::Suspended);
    let reactivated = User {
        status: UserStatus::Active,
        ..target.clone()
    };
    let mut mocks = Mocks::new();
    mocks.user_by_id(&target);
    let answer = reactivated.clone();
    mocks
        .users
        .expect_update()
        .times(1)
        .returning(move |_, _| Ok(Some(answer.clone())));
    mocks.refresh_tokens.expect_revoke_all_for_user().never();

    let result = mocks
        .service()
        .update_user(
            &admin(),
            target.id,
            UserChanges {
                status: Some(UserStatus::Active),
                ..UserChanges::default()
            },
        )
        .await
        .expect("reactivated");

    assert_eq!(result, reactivated);
}

#[tokio::test]
async fn renaming_an_account_leaves_its_sessions_alone() {
    let target = user("bob", Role::Doctor, UserStatus::Active);
    let renamed = User {
        full_name: FullName::parse("Robert Example").expect("valid"),
        ..target.clone()
    };
    let mut mocks = Mocks::new();
    mocks.user_by_id(&target);
    let answer = renamed.clone();
    mocks
        .users
        .expect_update()
        .times(1)
        .returning(move |_, _| Ok(Some(answer.clone())));
    mocks.refresh_tokens.expect_revoke_all_for_user().never();

    let result = mocks
        .service()
        .update_user(
            &admin(),
            target.id,
            UserChanges {
                full_name: Some(FullName::parse("Robert Example").expect("valid")),
                ..UserChanges::default()
            },
        )
        .await
        .expect("renamed");

    assert_eq!(result, renamed);
}

#[tokio::test]
async fn an_administrator_creates_staff_accounts_active() {
    let mut mocks = Mocks::new();
    mocks
        .hasher
        .expect_hash()
        .times(1)
        .returning(|_| Ok(stored_hash()));
    mocks
        .users
        .expect_create()
        .withf(|user, _| user.role == Role::Doctor && user.status == UserStatus::Active)
        .times(1)
        .returning(|_, _| Ok(()));

    let user = mocks
        .service()
        .create_staff(&admin(), account("newdoc", Role::Doctor))
        .await
        .expect("created");

    assert_eq!(user.status, UserStatus::Active);
}

#[tokio::test]
async fn an_administrator_cannot_create_a_patient_as_staff() {
    let mut mocks = Mocks::new();
    mocks.hasher.expect_hash().never();
    mocks.users.expect_create().never();

    let result = mocks
        .service()
        .create_staff(&admin(), account("patient", Role::Patient))
        .await;

    let Err(AdminError::Invalid(errors)) = result else {
        panic!("expected Invalid, got {result:?}");
    };
    assert_eq!(fields(&errors), ["role"]);
}

#[tokio::test]
async fn a_staff_username_that_is_taken_is_reported_as_taken() {
    let mut mocks = Mocks::new();
    mocks
        .hasher
        .expect_hash()
        .times(1)
        .returning(|_| Ok(stored_hash()));
    mocks
        .users
        .expect_create()
        .times(1)
        .returning(|_, _| Err(CreateUserError::UsernameTaken));

    let result = mocks
        .service()
        .create_staff(&admin(), account("newdoc", Role::Doctor))
        .await;

    assert!(
        matches!(result, Err(AdminError::UsernameTaken)),
        "{result:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Parsing an administrator's changes

#[test]
fn changes_cannot_set_an_account_back_to_pending() {
    let errors = parse_user_changes(None, None, None, Some("pending")).expect_err("pending");

    assert_eq!(fields(&errors), ["status"]);
}

#[test]
fn changes_may_activate_or_suspend_an_account() {
    for status in [UserStatus::Active, UserStatus::Suspended] {
        let changes =
            parse_user_changes(None, None, None, Some(status.as_str())).expect("valid status");
        assert_eq!(changes.status, Some(status));
    }
}

#[test]
fn a_change_of_email_to_none_clears_the_address() {
    let changes = parse_user_changes(None, Some(None), None, None).expect("valid");

    assert_eq!(
        changes,
        UserChanges {
            email: Some(None),
            ..UserChanges::default()
        }
    );
}

#[test]
fn no_changes_leave_every_field_as_it_is() {
    let changes = parse_user_changes(None, None, None, None).expect("valid");

    assert!(changes.is_empty());
}

#[test]
fn an_unknown_role_in_changes_is_refused() {
    let errors = parse_user_changes(None, None, Some("root"), None).expect_err("unknown role");

    assert_eq!(fields(&errors), ["role"]);
}

#[test]
fn changes_report_every_invalid_field_at_once() {
    let errors = parse_user_changes(
        Some(" "),
        Some(Some("not-an-address")),
        Some("root"),
        Some("asleep"),
    )
    .expect_err("four invalid fields");

    assert_eq!(fields(&errors), ["full_name", "email", "role", "status"]);
}

// ---------------------------------------------------------------------------------------------
// Housekeeping

#[tokio::test]
async fn purging_counts_everything_that_expired() {
    let mut mocks = Mocks::new();
    mocks
        .refresh_tokens
        .expect_purge_expired()
        .with(eq(NOW))
        .times(1)
        .returning(|_| Ok(3));
    mocks
        .revoked_tokens
        .expect_purge_expired()
        .with(eq(NOW))
        .times(1)
        .returning(|_| Ok(2));
    mocks
        .socket_tickets
        .expect_purge_expired()
        .with(eq(NOW))
        .times(1)
        .returning(|_| Ok(4));
    mocks
        .login_attempts
        .expect_purge_older_than()
        .with(eq(NOW - SignedDuration::from_hours(1)))
        .times(1)
        .returning(|_| Ok(1));
    mocks
        .trusted_devices
        .expect_purge_expired()
        .with(eq(NOW))
        .times(1)
        .returning(|_| Ok(5));

    let purged = mocks.service().purge_expired().await.expect("purged");

    assert_eq!(purged, 15);
}
