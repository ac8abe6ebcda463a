//! `TrustedDeviceRepository`: devices that signed in to an account before.

use jiff::SignedDuration;

use carehub_infra::Repositories;

use crate::fixtures::{now, some_user, token_hash};

contract!(
    a_device_is_trusted_only_for_its_account_and_until_its_expiry,
    trusting_a_device_again_extends_its_trust,
    a_device_trusted_for_one_account_is_not_handed_to_another,
    purging_forgets_only_devices_whose_trust_ended,
);

async fn a_device_is_trusted_only_for_its_account_and_until_its_expiry(repos: Repositories) {
    let ann = some_user(&repos, "ann").await;
    some_user(&repos, "bob").await;
    let device = token_hash();
    let until = now() + SignedDuration::from_hours(1);
    repos
        .trusted_devices
        .trust(&device, ann.id, until)
        .await
        .unwrap();

    let devices = &repos.trusted_devices;
    assert!(devices.is_trusted_for(&device, "ann", now()).await.unwrap());
    assert!(!devices.is_trusted_for(&device, "bob", now()).await.unwrap());
    assert!(
        !devices
            .is_trusted_for(&device, "nobody", now())
            .await
            .unwrap()
    );
    assert!(
        !devices
            .is_trusted_for(&token_hash(), "ann", now())
            .await
            .unwrap()
    );
    assert!(
        !devices.is_trusted_for(&device, "ann", until).await.unwrap(),
        "trust ends at its expiry"
    );
}

async fn trusting_a_device_again_extends_its_trust(repos: Repositories) {
    let ann = some_user(&repos, "ann").await;
    let device = token_hash();
    let devices = &repos.trusted_devices;
    let soon = now() + SignedDuration::from_mins(1);
    let later = now() + SignedDuration::from_hours(24);
    devices.trust(&device, ann.id, soon).await.unwrap();
    devices.trust(&device, ann.id, later).await.unwrap();

    assert!(
        devices
            .is_trusted_for(&device, "ann", soon + SignedDuration::from_secs(1))
            .await
            .unwrap()
    );
}

async fn a_device_trusted_for_one_account_is_not_handed_to_another(repos: Repositories) {
    let ann = some_user(&repos, "ann").await;
    let bob = some_user(&repos, "bob").await;
    let device = token_hash();
    let devices = &repos.trusted_devices;
    let until = now() + SignedDuration::from_hours(1);
    devices.trust(&device, ann.id, until).await.unwrap();
    devices
        .trust(&device, bob.id, until + SignedDuration::from_hours(1))
        .await
        .expect("a clash is no error");

    assert!(devices.is_trusted_for(&device, "ann", now()).await.unwrap());
    assert!(!devices.is_trusted_for(&device, "bob", now()).await.unwrap());
}

async fn purging_forgets_only_devices_whose_trust_ended(repos: Repositories) {
    let ann = some_user(&repos, "ann").await;
    let (old, live) = (token_hash(), token_hash());
    let devices = &repos.trusted_devices;
    devices
        .trust(&old, ann.id, now() - SignedDuration::from_hours(1))
        .await
        .unwrap();
    devices
        .trust(&live, ann.id, now() + SignedDuration::from_hours(1))
        .await
        .unwrap();

    assert_eq!(devices.purge_expired(now()).await.unwrap(), 1);
    assert_eq!(devices.purge_expired(now()).await.unwrap(), 0);
    assert!(devices.is_trusted_for(&live, "ann", now()).await.unwrap());
}
