//! `RefreshTokenRepository`: sign-in sessions and their rotating refresh tokens.

use std::sync::Arc;

use jiff::SignedDuration;
use tokio::sync::Barrier;

use carehub_domain::identity::{RefreshTokenHash, RotateOutcome, SessionId};
use carehub_infra::Repositories;

use crate::fixtures::{
    insert_token, insert_token_ending, now, session_end, sign_in, some_user, token_hash,
};

contract!(
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
    a_session_past_its_end_is_dead_however_fresh_its_token,
    a_replacement_never_outlives_its_session,
);

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
        .rotate(
            presented,
            &replacement,
            at,
            at + SignedDuration::from_hours(24),
        )
        .await
        .expect("rotation runs");
    (outcome, replacement)
}

async fn a_fresh_refresh_token_rotates_into_a_replacement_of_the_same_session(repos: Repositories) {
    let user = some_user(&repos, "ann").await;
    let (session_id, first) = sign_in(&repos, user.id).await;

    let (outcome, second) = rotate(&repos, &first).await;
    assert_eq!(
        outcome,
        RotateOutcome::Rotated {
            user_id: user.id,
            session_id,
            session_ends_at: session_end(),
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
            session_id,
            session_ends_at: session_end(),
        }
    );
    let (outcome, _) = rotate(&repos, &third).await;
    assert_eq!(
        outcome,
        RotateOutcome::Rotated {
            user_id: user.id,
            session_id,
            session_ends_at: session_end(),
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
            session_id,
            session_ends_at: session_end(),
        }
    );
    let (outcome, _) = rotate(&repos, &other_first).await;
    assert!(matches!(outcome, RotateOutcome::Rotated { .. }));
}

async fn an_expired_refresh_token_is_dead(repos: Repositories) {
    let user = some_user(&repos, "ann").await;
    let session_id = SessionId::generate();
    let expired = insert_token(
        &repos,
        user.id,
        session_id,
        now() - SignedDuration::from_secs(1),
    )
    .await;

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
            session_id: kept,
            session_ends_at: session_end(),
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
            session_id: bob_session,
            session_ends_at: session_end(),
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
    let expired = insert_token(
        &repos,
        bob.id,
        expired_session,
        now() - SignedDuration::from_hours(1),
    )
    .await;
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
                        .rotate(
                            &presented,
                            &replacement,
                            at,
                            at + SignedDuration::from_hours(24),
                        )
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
                session_id,
                session_ends_at: session_end(),
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
            session_id,
            session_ends_at: session_end(),
        }
    );
}

async fn purging_removes_expired_refresh_tokens_and_keeps_live_ones_rotatable(repos: Repositories) {
    let user = some_user(&repos, "ann").await;
    let at = now();
    let expired_session = SessionId::generate();
    let long_expired = insert_token(
        &repos,
        user.id,
        expired_session,
        at - SignedDuration::from_hours(24 * 2),
    )
    .await;
    let just_expired = insert_token(
        &repos,
        user.id,
        SessionId::generate(),
        at - SignedDuration::from_secs(1),
    )
    .await;
    let (live_session, live) = sign_in(&repos, user.id).await;
    // A live session whose old, used token expired: the session survives with its live token.
    let mixed_session = SessionId::generate();
    let old_in_mixed = insert_token(
        &repos,
        user.id,
        mixed_session,
        at - SignedDuration::from_hours(1),
    )
    .await;
    let current_in_mixed = insert_token(
        &repos,
        user.id,
        mixed_session,
        at + SignedDuration::from_hours(24),
    )
    .await;
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
            session_id: live_session,
            session_ends_at: session_end(),
        }
    );
    let (outcome, _) = rotate(&repos, &current_in_mixed).await;
    assert_eq!(
        outcome,
        RotateOutcome::Rotated {
            user_id: user.id,
            session_id: mixed_session,
            session_ends_at: session_end(),
        }
    );

    assert_eq!(
        repos.refresh_tokens.find_session(&at_cutoff).await.unwrap(),
        Some((user.id, at_cutoff_session))
    );

    // Nothing more to purge.
    assert_eq!(repos.refresh_tokens.purge_expired(at).await.unwrap(), 0);
}

async fn a_session_past_its_end_is_dead_however_fresh_its_token(repos: Repositories) {
    let user = some_user(&repos, "ann").await;
    let session_id = SessionId::generate();
    let token = insert_token_ending(
        &repos,
        user.id,
        session_id,
        now() + SignedDuration::from_hours(1),
        now() - SignedDuration::from_secs(1),
    )
    .await;

    let (outcome, replacement) = rotate(&repos, &token).await;

    assert_eq!(outcome, RotateOutcome::Dead);
    assert_eq!(
        repos
            .refresh_tokens
            .find_session(&replacement)
            .await
            .unwrap(),
        None
    );
}

async fn a_replacement_never_outlives_its_session(repos: Repositories) {
    let user = some_user(&repos, "ann").await;
    let session_id = SessionId::generate();
    let ends = crate::fixtures::micros(now() + SignedDuration::from_hours(1));
    let token = insert_token_ending(
        &repos,
        user.id,
        session_id,
        now() + SignedDuration::from_hours(1),
        ends,
    )
    .await;

    // Asked to last a day, the replacement lasts only until the session's end.
    let (outcome, replacement) = rotate(&repos, &token).await;
    assert_eq!(
        outcome,
        RotateOutcome::Rotated {
            user_id: user.id,
            session_id,
            session_ends_at: ends,
        }
    );
    repos
        .refresh_tokens
        .purge_expired(ends + SignedDuration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(
        repos
            .refresh_tokens
            .find_session(&replacement)
            .await
            .unwrap(),
        None,
        "the replacement expired with its session"
    );
}
