//! `RevokedTokenRepository`: denied access tokens, and the one-query check that the sessions
//! of open sockets are still live.

use std::collections::HashMap;

use jiff::SignedDuration;
use uuid::Uuid;

use carehub_domain::identity::{
    LiveSession, NewRefreshToken, RefreshTokenHash, Role, SessionEnd, SessionId, TokenId,
    UserChanges, UserId, UserStatus,
};
use carehub_infra::Repositories;

use crate::fixtures::{create_user, now, sign_in, some_user};

contract!(
    a_revoked_access_token_is_denied_and_others_are_not,
    an_access_token_is_denied_when_its_id_or_its_session_is_revoked,
    revoking_an_access_token_twice_is_harmless,
    purging_forgets_only_expired_denials,
    live_sessions_still_valid_are_left_out,
    a_revoked_access_token_ends_its_live_session_as_signed_out,
    a_signed_out_or_missing_session_ends_its_live_sessions_as_signed_out,
    a_suspended_account_ends_its_live_sessions_as_inactive,
    more_than_five_hundred_live_sessions_are_checked_in_one_call,
    a_session_past_its_end_denies_its_tokens_and_ends_its_live_sessions,
);

async fn a_revoked_access_token_is_denied_and_others_are_not(repos: Repositories) {
    let revoked = TokenId::generate();
    let other = TokenId::generate();
    assert!(!repos.revoked_tokens.is_revoked(revoked).await.unwrap());

    repos
        .revoked_tokens
        .revoke(revoked, now() + SignedDuration::from_mins(15))
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
                .is_denied(token, session, now())
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
        .revoke(token, now() + SignedDuration::from_mins(15))
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
    let expires_at = now() + SignedDuration::from_mins(15);
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
        .revoke(token, expires_at + SignedDuration::from_mins(1))
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
        .revoke(long_expired, at - SignedDuration::from_hours(1))
        .await
        .unwrap();
    repos
        .revoked_tokens
        .revoke(just_expired, at - SignedDuration::from_secs(1))
        .await
        .unwrap();
    repos
        .revoked_tokens
        .revoke(live, at + SignedDuration::from_mins(15))
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

/// Signs `user_id` in: a stored session with one refresh token.
async fn open_session(repos: &Repositories, user_id: UserId) -> SessionId {
    let session_id = SessionId::generate();
    repos
        .refresh_tokens
        .insert(&NewRefreshToken {
            hash: RefreshTokenHash::new(Uuid::new_v4().to_string()),
            user_id,
            session_id,
            issued_at: now(),
            expires_at: now() + SignedDuration::from_hours(24),
            session_ends_at: now() + SignedDuration::from_hours(24 * 30),
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
    let ended = repos
        .revoked_tokens
        .ended_sessions(sessions, now())
        .await
        .unwrap();
    let by_token: HashMap<TokenId, SessionEnd> = ended.iter().copied().collect();
    assert_eq!(by_token.len(), ended.len(), "each token once: {ended:?}");
    by_token
}

async fn live_sessions_still_valid_are_left_out(repos: Repositories) {
    assert_eq!(ended(&repos, &[]).await, HashMap::new());

    let ann = create_user(&repos, "ann", Role::Doctor, UserStatus::Active).await;
    let bob = create_user(&repos, "bob", Role::Patient, UserStatus::Active).await;
    let (ann_session, bob_session) = (
        open_session(&repos, ann.id).await,
        open_session(&repos, bob.id).await,
    );
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
    let session = open_session(&repos, ann.id).await;
    let (revoked, kept) = (live(ann.id, session), live(ann.id, session));
    repos
        .revoked_tokens
        .revoke(revoked.token_id, now() + SignedDuration::from_mins(15))
        .await
        .unwrap();

    assert_eq!(
        ended(&repos, &[revoked, kept]).await,
        HashMap::from([(revoked.token_id, SessionEnd::SignedOut)])
    );
}

async fn a_signed_out_or_missing_session_ends_its_live_sessions_as_signed_out(repos: Repositories) {
    let ann = create_user(&repos, "ann", Role::Doctor, UserStatus::Active).await;
    let (signed_out, kept) = (
        open_session(&repos, ann.id).await,
        open_session(&repos, ann.id).await,
    );
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
    let (ann_session, bob_session) = (
        open_session(&repos, ann.id).await,
        open_session(&repos, bob.id).await,
    );
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
    let ann_session = open_session(&repos, ann.id).await;
    let bob_session = open_session(&repos, bob.id).await;
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
            .revoke(sessions[i].token_id, now() + SignedDuration::from_mins(15))
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

async fn a_session_past_its_end_denies_its_tokens_and_ends_its_live_sessions(repos: Repositories) {
    let ann = some_user(&repos, "ann").await;
    let session_id = SessionId::generate();
    let ends = crate::fixtures::micros(now() + SignedDuration::from_mins(5));
    crate::fixtures::insert_token_ending(
        &repos,
        ann.id,
        session_id,
        now() + SignedDuration::from_mins(5),
        ends,
    )
    .await;
    let token = TokenId::generate();
    let tokens = &repos.revoked_tokens;
    let before = ends - SignedDuration::from_micros(1);

    assert!(!tokens.is_denied(token, session_id, before).await.unwrap());
    assert!(tokens.is_denied(token, session_id, ends).await.unwrap());

    let socket = LiveSession {
        user_id: ann.id,
        session_id,
        token_id: token,
    };
    assert!(
        tokens
            .ended_sessions(&[socket], before)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        tokens.ended_sessions(&[socket], ends).await.unwrap(),
        vec![(token, SessionEnd::SignedOut)]
    );
}
