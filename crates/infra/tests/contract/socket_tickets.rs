//! `SocketTicketRepository`: single-use tickets that open a WebSocket.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::Barrier;
use uuid::Uuid;

use carehub_domain::identity::{
    AccessClaims, RefreshTokenHash, Role, SessionId, TokenId, UserId, UserStatus,
};
use carehub_infra::Repositories;

use crate::fixtures::{create_user, micros, now};

contract!(
    a_socket_ticket_is_redeemed_once_for_the_claims_it_was_issued_with,
    an_expired_socket_ticket_is_refused_and_used_up,
    an_unknown_socket_ticket_is_refused,
    of_eight_concurrent_redemptions_of_one_ticket_exactly_one_succeeds,
    a_socket_ticket_cannot_outlive_its_access_token,
    purging_deletes_only_expired_socket_tickets,
);

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
        expires_at: issued_at + SignedDuration::from_mins(15),
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
            .issue(hash, &claims, at + SignedDuration::from_secs(30))
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
    let expires_at = micros(now()) + SignedDuration::from_secs(30);
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
            .redeem(&hash, expires_at - SignedDuration::from_secs(10))
            .await
            .unwrap(),
        None,
        "the refused ticket was used up: it cannot be tried again"
    );
    assert_eq!(
        repos
            .socket_tickets
            .purge_expired(now() + SignedDuration::from_hours(1))
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
        .issue(&hash, &claims, now() + SignedDuration::from_secs(30))
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
        .issue(
            &hash,
            &claims,
            claims.expires_at + SignedDuration::from_secs(1),
        )
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
    let issue = |expires_at: Timestamp| {
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
    let _long_expired = issue(at - SignedDuration::from_mins(5)).await;
    let _just_expired = issue(at - SignedDuration::from_micros(1)).await;
    let at_cutoff = issue(at).await;
    let live = issue(at + SignedDuration::from_secs(30)).await;

    assert_eq!(repos.socket_tickets.purge_expired(at).await.unwrap(), 2);
    assert_eq!(repos.socket_tickets.purge_expired(at).await.unwrap(), 0);

    let earlier = at - SignedDuration::from_mins(10);
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
