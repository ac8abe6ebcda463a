//! Unit tests of the key ring's life cycle and of rotation, with a mockall double of the ring's
//! storage.

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::kernel::FixedClock;

/// The instant the tests run at (`2026-03-02T09:30:00Z`).
const NOW: Timestamp = Timestamp::constant(1772443800, 0);

fn kid(name: &str) -> KeyId {
    KeyId::parse(name).expect("a valid key id")
}

fn key(name: &str, created_at: Timestamp) -> RingKey {
    RingKey {
        kid: kid(name),
        private_key: PrivateKeyPem::new(format!("PEM of {name}")),
        created_at,
    }
}

fn mins(n: i64) -> SignedDuration {
    SignedDuration::from_mins(n)
}

/// 15-minute tokens, 10-second reloads: a superseded key verifies 15 min 15 s more.
fn retirement() -> KeyRetirement {
    KeyRetirement::new(mins(15), SignedDuration::from_secs(10))
}

fn service(keys: MockSigningKeyRepository) -> SigningKeyService {
    SigningKeyService::new(Arc::new(keys), Arc::new(FixedClock(NOW)), retirement())
}

#[test]
fn a_superseded_key_verifies_for_the_token_lifetime_the_reload_interval_and_the_leeway() {
    assert_eq!(
        retirement().after,
        mins(15) + SignedDuration::from_secs(10) + SignedDuration::from_secs(5)
    );
}

#[test]
fn the_newest_key_signs_and_the_ones_before_it_verify_until_retired() {
    let rotated = NOW - mins(10);
    let ring = KeyRing::new(vec![
        key("first", NOW - mins(120)),
        key("second", NOW - mins(60)),
        key("third", rotated),
    ]);
    let until = |superseded_at: Timestamp| superseded_at + retirement().after;

    let statuses: Vec<(&str, KeyStatus)> = ring
        .statuses(NOW, retirement())
        .into_iter()
        .map(|(key, status)| (key.kid.as_str(), status))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (
                "first",
                KeyStatus::Retired {
                    since: until(NOW - mins(60))
                }
            ),
            (
                "second",
                KeyStatus::Verifying {
                    until: until(rotated)
                }
            ),
            ("third", KeyStatus::Signing),
        ]
    );
    assert_eq!(ring.signing().map(|k| k.kid.as_str()), Some("third"));
}

#[test]
fn a_superseded_key_is_retired_exactly_at_the_end_of_its_grace() {
    let rotated = NOW;
    let ring = KeyRing::new(vec![key("old", NOW - mins(60)), key("new", rotated)]);
    let end = rotated + retirement().after;
    let status_at = |at: Timestamp| ring.statuses(at, retirement())[0].1;

    assert_eq!(
        status_at(end - SignedDuration::from_micros(1)),
        KeyStatus::Verifying { until: end }
    );
    assert!(status_at(end - SignedDuration::from_micros(1)).verifies());
    assert_eq!(status_at(end), KeyStatus::Retired { since: end });
    assert!(!status_at(end).verifies());
    assert_eq!(
        ring.statuses(end + mins(600), retirement())[1].1,
        KeyStatus::Signing
    );
}

#[test]
fn a_successor_stamped_earlier_by_a_slow_clock_does_not_retire_a_key_before_its_own_start() {
    let ring = KeyRing::new(vec![key("old", NOW), key("new", NOW - mins(30))]);
    assert_eq!(
        ring.statuses(NOW, retirement())[0].1,
        KeyStatus::Verifying {
            until: NOW + retirement().after
        }
    );
}

#[test]
fn an_empty_ring_has_no_signing_key() {
    let ring = KeyRing::default();
    assert!(ring.is_empty());
    assert_eq!(ring.signing(), None);
    assert!(ring.statuses(NOW, retirement()).is_empty());
}

#[test]
fn key_ids_are_base64url_of_bounded_length() {
    assert!(KeyId::parse("u-V9_kW3aXo1IlrTxDzc0h5OUe2yXQbq0TVoDpUXyIs").is_ok());
    for bad in ["", "has space", "slash/", "dot.", "é", &"a".repeat(129)] {
        assert_eq!(KeyId::parse(bad), Err(KeyIdError), "{bad:?}");
    }
}

#[test]
fn a_private_key_never_shows_in_debug_output() {
    let pem = PrivateKeyPem::new("-----BEGIN PRIVATE KEY-----\nsecret".to_owned());
    let ring_key = RingKey {
        kid: kid("k"),
        private_key: pem,
        created_at: NOW,
    };
    let shown = format!("{ring_key:?}");
    assert!(!shown.contains("secret"), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");
}

#[tokio::test]
async fn rotating_adds_the_key_as_the_newest_stamped_with_now() {
    let mut keys = MockSigningKeyRepository::new();
    keys.expect_add()
        .withf(|added| added.kid.as_str() == "fresh" && added.created_at == NOW)
        .times(1)
        .returning(|_| Ok(AddedKey::Added));

    let rotated = service(keys)
        .rotate(kid("fresh"), PrivateKeyPem::new("PEM".to_owned()))
        .await;

    assert!(rotated.is_ok(), "{rotated:?}");
}

#[tokio::test]
async fn rotating_to_a_key_the_ring_has_had_is_refused() {
    let mut keys = MockSigningKeyRepository::new();
    keys.expect_add()
        .times(1)
        .returning(|_| Ok(AddedKey::AlreadyInRing));

    let rotated = service(keys)
        .rotate(kid("again"), PrivateKeyPem::new("PEM".to_owned()))
        .await;

    assert!(
        matches!(&rotated, Err(RotateKeyError::AlreadyInRing(k)) if k.as_str() == "again"),
        "{rotated:?}"
    );
}

#[tokio::test]
async fn a_configured_key_is_added_once_and_never_brought_back_after_a_rotation() {
    let ring = vec![
        key("configured", NOW - mins(60)),
        key("rotated", NOW - mins(5)),
    ];
    let cases = [
        ("new-file", AddedKey::Added, Installed::Added),
        ("rotated", AddedKey::AlreadyInRing, Installed::Signing),
        ("configured", AddedKey::AlreadyInRing, Installed::Superseded),
    ];
    for (name, added, expected) in cases {
        let mut keys = MockSigningKeyRepository::new();
        keys.expect_add()
            .withf(move |key| key.kid.as_str() == name)
            .times(1)
            .returning(move |_| Ok(added));
        let listed = ring.clone();
        keys.expect_list()
            .times(usize::from(added == AddedKey::AlreadyInRing))
            .returning(move || Ok(listed.clone()));

        let installed = service(keys)
            .install(kid(name), PrivateKeyPem::new("PEM".to_owned()))
            .await
            .expect("installed");

        assert_eq!(installed, expected, "{name}");
    }
}

#[tokio::test]
async fn seeding_asks_storage_to_keep_the_key_only_in_an_empty_ring() {
    for kept in [true, false] {
        let mut keys = MockSigningKeyRepository::new();
        keys.expect_seed()
            .withf(|key| key.kid.as_str() == "seed" && key.created_at == NOW)
            .times(1)
            .returning(move |_| Ok(kept));

        let seeded = service(keys)
            .seed(kid("seed"), PrivateKeyPem::new("PEM".to_owned()))
            .await
            .expect("seeded");

        assert_eq!(seeded, kept);
    }
}

#[tokio::test]
async fn the_listing_shows_each_key_with_its_status_now() {
    let mut keys = MockSigningKeyRepository::new();
    keys.expect_list()
        .times(1)
        .returning(|| Ok(vec![key("old", NOW - mins(60)), key("new", NOW - mins(1))]));

    let listed = service(keys).list().await.expect("a listing");

    assert_eq!(
        listed,
        vec![
            KeySummary {
                kid: kid("old"),
                created_at: NOW - mins(60),
                status: KeyStatus::Verifying {
                    until: NOW - mins(1) + retirement().after
                },
            },
            KeySummary {
                kid: kid("new"),
                created_at: NOW - mins(1),
                status: KeyStatus::Signing,
            },
        ]
    );
}
