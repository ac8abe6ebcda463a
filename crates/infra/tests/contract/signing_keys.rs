//! `SigningKeyRepository`: the ring of keys that sign access tokens.

use std::collections::HashSet;
use std::sync::Arc;

use jiff::SignedDuration;
use tokio::sync::Barrier;
use uuid::Uuid;

use carehub_domain::identity::{AddedKey, KeyId, PrivateKeyPem, RingKey};
use carehub_infra::Repositories;

use crate::fixtures::{micros, now};

contract!(
    keys_are_listed_whole_in_the_order_they_were_added,
    adding_a_key_the_ring_has_had_changes_nothing,
    seeding_keeps_a_key_only_in_an_empty_ring,
    of_eight_instances_seeding_an_empty_ring_together_exactly_one_key_is_kept,
    of_eight_concurrent_rotations_every_key_is_added_once_and_in_some_order,
);

/// A key with a unique id; the "PEM" is opaque to the repository.
fn ring_key(minutes_ago: i64) -> RingKey {
    let id = Uuid::new_v4().simple().to_string();
    RingKey {
        kid: KeyId::parse(&id).unwrap(),
        private_key: PrivateKeyPem::new(format!(
            "-----BEGIN PRIVATE KEY-----\n{id}\n-----END PRIVATE KEY-----\n"
        )),
        created_at: micros(now()) - SignedDuration::from_mins(minutes_ago),
    }
}

async fn keys_are_listed_whole_in_the_order_they_were_added(repos: Repositories) {
    assert_eq!(repos.signing_keys.list().await.unwrap(), vec![]);
    // Added newest-stamped first: the order of adding, not the clocks, orders the ring.
    let keys = vec![ring_key(1), ring_key(30), ring_key(10)];
    for key in &keys {
        assert_eq!(repos.signing_keys.add(key).await.unwrap(), AddedKey::Added);
    }
    assert_eq!(repos.signing_keys.list().await.unwrap(), keys);
}

async fn adding_a_key_the_ring_has_had_changes_nothing(repos: Repositories) {
    let (first, second) = (ring_key(20), ring_key(10));
    repos.signing_keys.add(&first).await.unwrap();
    repos.signing_keys.add(&second).await.unwrap();

    let again = RingKey {
        created_at: micros(now()),
        ..first.clone()
    };
    assert_eq!(
        repos.signing_keys.add(&again).await.unwrap(),
        AddedKey::AlreadyInRing
    );
    assert_eq!(
        repos.signing_keys.add(&second).await.unwrap(),
        AddedKey::AlreadyInRing
    );
    assert_eq!(
        repos.signing_keys.list().await.unwrap(),
        vec![first, second],
        "the old key did not become the newest"
    );
}

async fn seeding_keeps_a_key_only_in_an_empty_ring(repos: Repositories) {
    let (seed, late_seed, rotated) = (ring_key(5), ring_key(4), ring_key(1));
    assert!(repos.signing_keys.seed(&seed).await.unwrap());
    assert!(!repos.signing_keys.seed(&late_seed).await.unwrap());
    assert!(!repos.signing_keys.seed(&seed).await.unwrap());
    repos.signing_keys.add(&rotated).await.unwrap();
    assert!(!repos.signing_keys.seed(&late_seed).await.unwrap());
    assert_eq!(
        repos.signing_keys.list().await.unwrap(),
        vec![seed, rotated]
    );
}

async fn of_eight_instances_seeding_an_empty_ring_together_exactly_one_key_is_kept(
    repos: Repositories,
) {
    let barrier = Arc::new(Barrier::new(8));
    let seeds: Vec<_> = (0..8)
        .map(|_| {
            let (repos, barrier, key) = (repos.clone(), barrier.clone(), ring_key(0));
            tokio::spawn(async move {
                barrier.wait().await;
                let kept = repos.signing_keys.seed(&key).await.unwrap();
                (kept, key)
            })
        })
        .collect();
    let mut kept = Vec::new();
    for seed in seeds {
        let (was_kept, key) = seed.await.unwrap();
        if was_kept {
            kept.push(key);
        }
    }
    assert_eq!(kept.len(), 1, "exactly one seed says it was kept");
    assert_eq!(repos.signing_keys.list().await.unwrap(), kept);
}

async fn of_eight_concurrent_rotations_every_key_is_added_once_and_in_some_order(
    repos: Repositories,
) {
    let seed = ring_key(60);
    repos.signing_keys.seed(&seed).await.unwrap();
    let barrier = Arc::new(Barrier::new(8));
    let adds: Vec<_> = (0..8)
        .map(|_| {
            let (repos, barrier, key) = (repos.clone(), barrier.clone(), ring_key(0));
            tokio::spawn(async move {
                barrier.wait().await;
                let added = repos.signing_keys.add(&key).await.unwrap();
                (added, key.kid)
            })
        })
        .collect();
    let mut added = HashSet::new();
    for add in adds {
        let (outcome, kid) = add.await.unwrap();
        assert_eq!(outcome, AddedKey::Added);
        added.insert(kid);
    }

    let listed = repos.signing_keys.list().await.unwrap();
    assert_eq!(listed.len(), 9);
    assert_eq!(listed[0], seed, "the seed stays the oldest");
    let rest: HashSet<_> = listed[1..].iter().map(|key| key.kid.clone()).collect();
    assert_eq!(rest, added);
}
