//! `LoginAttemptRepository`: failed sign-ins, counted per key for throttling.

use jiff::SignedDuration;

use carehub_domain::identity::{ClientAddress, ThrottleKey};
use carehub_infra::Repositories;

use crate::fixtures::now;

fn k(username: &str) -> ThrottleKey {
    ThrottleKey::username(username)
}

contract!(
    recent_failures_count_only_those_since_the_window_start_and_name_the_oldest,
    failures_are_counted_per_key,
    clearing_a_key_forgets_only_its_failures,
    purging_forgets_failures_older_than_the_cutoff,
    one_failure_is_recorded_under_each_of_its_keys_and_cleared_by_key,
);

async fn recent_failures_count_only_those_since_the_window_start_and_name_the_oldest(
    repos: Repositories,
) {
    let at = now();
    let since = at - SignedDuration::from_mins(15);
    let attempts = &repos.login_attempts;
    attempts
        .record_failure(&[k("ann")], since - SignedDuration::from_micros(1))
        .await
        .unwrap();
    attempts
        .record_failure(&[k("ann")], since - SignedDuration::from_hours(1))
        .await
        .unwrap();
    attempts.record_failure(&[k("ann")], at).await.unwrap();
    attempts
        .record_failure(&[k("ann")], at - SignedDuration::from_mins(5))
        .await
        .unwrap();
    // Exactly at the window's start: inside it.
    attempts.record_failure(&[k("ann")], since).await.unwrap();

    let recent = attempts.recent_failures(&k("ann"), since).await.unwrap();
    assert_eq!(recent.count, 3);
    assert_eq!(recent.oldest, Some(since));

    let later = attempts
        .recent_failures(&k("ann"), at - SignedDuration::from_mins(10))
        .await
        .unwrap();
    assert_eq!(later.count, 2);
    assert_eq!(later.oldest, Some(at - SignedDuration::from_mins(5)));

    let none = attempts
        .recent_failures(&k("ann"), at + SignedDuration::from_micros(1))
        .await
        .unwrap();
    assert_eq!(none.count, 0);
    assert_eq!(none.oldest, None);
}

async fn failures_are_counted_per_key(repos: Repositories) {
    let at = now();
    let since = at - SignedDuration::from_mins(15);
    let attempts = &repos.login_attempts;
    attempts.record_failure(&[k("ann")], at).await.unwrap();
    attempts.record_failure(&[k("ann")], at).await.unwrap();
    attempts
        .record_failure(&[k("bob")], at - SignedDuration::from_mins(1))
        .await
        .unwrap();

    let ann = attempts.recent_failures(&k("ann"), since).await.unwrap();
    assert_eq!(ann.count, 2, "two failures at the same instant both count");
    assert_eq!(ann.oldest, Some(at));
    let bob = attempts.recent_failures(&k("bob"), since).await.unwrap();
    assert_eq!(bob.count, 1);
    assert_eq!(bob.oldest, Some(at - SignedDuration::from_mins(1)));
    let carol = attempts.recent_failures(&k("carol"), since).await.unwrap();
    assert_eq!(carol.count, 0);
    assert_eq!(carol.oldest, None);
}

async fn clearing_a_key_forgets_only_its_failures(repos: Repositories) {
    let at = now();
    let since = at - SignedDuration::from_mins(15);
    let attempts = &repos.login_attempts;
    for _ in 0..3 {
        attempts.record_failure(&[k("ann")], at).await.unwrap();
    }
    attempts.record_failure(&[k("bob")], at).await.unwrap();

    attempts.clear(&[k("ann")]).await.unwrap();
    attempts
        .clear(&[k("carol")])
        .await
        .expect("clearing a key without failures succeeds");

    let ann = attempts.recent_failures(&k("ann"), since).await.unwrap();
    assert_eq!(ann.count, 0);
    assert_eq!(ann.oldest, None);
    assert_eq!(
        attempts
            .recent_failures(&k("bob"), since)
            .await
            .unwrap()
            .count,
        1
    );

    // Counting starts afresh.
    attempts.record_failure(&[k("ann")], at).await.unwrap();
    assert_eq!(
        attempts
            .recent_failures(&k("ann"), since)
            .await
            .unwrap()
            .count,
        1
    );
}

async fn purging_forgets_failures_older_than_the_cutoff(repos: Repositories) {
    let at = now();
    let cutoff = at - SignedDuration::from_hours(24);
    let attempts = &repos.login_attempts;
    attempts
        .record_failure(&[k("ann")], cutoff - SignedDuration::from_hours(24 * 3))
        .await
        .unwrap();
    attempts
        .record_failure(&[k("bob")], cutoff - SignedDuration::from_secs(1))
        .await
        .unwrap();
    attempts.record_failure(&[k("ann")], cutoff).await.unwrap();
    attempts.record_failure(&[k("ann")], at).await.unwrap();

    assert_eq!(attempts.purge_older_than(cutoff).await.unwrap(), 2);

    let long_ago = at - SignedDuration::from_hours(24 * 30);
    let ann = attempts.recent_failures(&k("ann"), long_ago).await.unwrap();
    assert_eq!(ann.count, 2);
    assert_eq!(ann.oldest, Some(cutoff));
    assert_eq!(
        attempts
            .recent_failures(&k("bob"), long_ago)
            .await
            .unwrap()
            .count,
        0
    );
    assert_eq!(attempts.purge_older_than(cutoff).await.unwrap(), 0);
}

async fn one_failure_is_recorded_under_each_of_its_keys_and_cleared_by_key(repos: Repositories) {
    let at = now();
    let since = at - SignedDuration::from_mins(15);
    let attempts = &repos.login_attempts;
    let address = ClientAddress::new("192.0.2.7".parse().unwrap());
    let keys = [
        ThrottleKey::address(address),
        ThrottleKey::address_username(address, "ann"),
        k("ann"),
    ];
    attempts.record_failure(&keys, at).await.unwrap();
    attempts.record_failure(&keys[..1], at).await.unwrap();
    attempts.record_failure(&[], at).await.unwrap();

    let counts =
        async |key: &ThrottleKey| attempts.recent_failures(key, since).await.unwrap().count;
    assert_eq!(counts(&keys[0]).await, 2);
    assert_eq!(counts(&keys[1]).await, 1);
    assert_eq!(counts(&keys[2]).await, 1);

    attempts.clear(&keys[1..]).await.unwrap();
    assert_eq!(counts(&keys[0]).await, 2, "the address keeps its count");
    assert_eq!(counts(&keys[1]).await, 0);
    assert_eq!(counts(&keys[2]).await, 0);
}
