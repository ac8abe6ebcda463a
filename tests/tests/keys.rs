//! Rotation of the keys that sign access tokens, from outside: `carehub keys rotate` and
//! `carehub keys list` (the code the command line runs) against the database of running
//! servers, then what those servers sign, accept and publish, on both databases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{EncodePrivateKey as _, KeypairBytes};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use carehub_tests::{Backend, TestApp, Tokens, assert_unauthorized, id_of, on_both_backends};

/// Servers that read the ring every second and issue 2-second access tokens: a superseded key
/// retires 1 + 2 + 5 (leeway) = 8 seconds after the rotation.
const FAST: [&str; 4] = ["--keys-reload-secs", "1", "--access-token-ttl-secs", "2"];

/// How long a superseded key verifies with [`FAST`], and the part of it no instance may cut
/// short: the token lifetime and the leeway.
const RETIREMENT: Duration = Duration::from_secs(8);
const TOKEN_LIFE_AND_LEEWAY: Duration = Duration::from_secs(7);

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// `carehub keys rotate [--from-file PEM]` on the server's database; returns the new key's id.
async fn rotate(app: &TestApp, from_file: Option<&std::path::Path>) -> String {
    let report = carehub_web::keys_cli::rotate(&app.settings, from_file)
        .await
        .expect("the rotation succeeds");
    report
        .strip_prefix("added signing key ")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("the report names the new key: {report}"))
        .to_owned()
}

/// `carehub keys list`, as printed.
async fn list(app: &TestApp) -> String {
    carehub_web::keys_cli::list(&app.settings)
        .await
        .expect("the keys are listed")
}

/// The status column of `kid` in a listing.
fn status_of(listing: &str, kid: &str) -> String {
    listing
        .lines()
        .find(|line| line.starts_with(kid))
        .unwrap_or_else(|| panic!("{kid} is listed: {listing}"))
        .split_whitespace()
        .skip(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `kid` in a token's header.
fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("a JWT")
        .kid
        .expect("a kid")
}

/// The key ids of a key set, in its order.
fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|key| key["kid"].as_str().expect("a kid").to_owned())
        .collect()
}

/// Signs in `username` at the server at `base` and returns the access token.
async fn access_token_at(app: &TestApp, base: &str, username: &str) -> String {
    let response = app
        .client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "username": username, "password": carehub_tests::PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "sign-in at {base}");
    let tokens: Tokens = response.json().await.unwrap();
    tokens.access_token
}

/// The status `GET /users/me` answers at the server at `base` for `token`.
async fn me_at(app: &TestApp, base: &str, token: &str) -> u16 {
    app.client
        .get(format!("{base}/api/v1/users/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Signs in at `base` until a token names `kid` (the server read the ring), within `within`.
async fn token_signed_by(
    app: &TestApp,
    base: &str,
    username: &str,
    kid: &str,
    within: Duration,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        let token = access_token_at(app, base, username).await;
        if kid_of(&token) == kid {
            return token;
        }
        assert!(
            Instant::now() < deadline,
            "{base} still signs with {} after {within:?}",
            kid_of(&token)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A registered, active patient.
async fn patient(app: &TestApp, username: &str) -> Uuid {
    let response = app.register(username, "patient").await;
    assert_eq!(response.status(), 201);
    id_of(&response.json().await.unwrap())
}

/// Claims for `user_id` in the session of `token`, valid for ten minutes.
fn claims(token: &str, user_id: Uuid) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let payload: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    json!({
        "sub": user_id,
        "role": "patient",
        "sid": payload["sid"],
        "jti": Uuid::new_v4(),
        "iat": now(),
        "exp": now() + 600,
        "iss": "carehub",
        "aud": "carehub-api",
    })
}

/// `claims` signed with `pem`, naming `kid` (or no key).
fn mint(pem: &str, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = kid.map(str::to_owned);
    let key = EncodingKey::from_ed_pem(pem.as_bytes()).expect("an Ed25519 key");
    jsonwebtoken::encode(&header, claims, &key).expect("signed")
}

/// A fresh Ed25519 key in PKCS#8 PEM, written to a file in the server's data directory.
fn key_file(app: &TestApp, name: &str) -> (std::path::PathBuf, String) {
    let mut secret = [0u8; 32];
    secret[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    secret[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    let pem = KeypairBytes {
        secret_key: SigningKey::from_bytes(&secret).to_bytes(),
        public_key: None,
    }
    .to_pkcs8_pem(LineEnding::LF)
    .unwrap()
    .to_string();
    std::fs::create_dir_all(&app.data_dir).unwrap();
    let path = app.data_dir.join(name);
    std::fs::write(&path, &pem).unwrap();
    (path, pem)
}

on_both_backends!(
    after_a_rotation_new_tokens_carry_the_new_key_and_earlier_tokens_still_work,
    a_superseded_key_is_accepted_and_published_until_its_last_token_expired_then_neither,
    an_instance_that_has_not_reloaded_accepts_a_token_of_the_new_key_at_once,
    a_token_naming_an_unknown_key_or_none_is_refused_with_401,
    a_key_imported_from_a_file_signs_and_cannot_be_rotated_to_twice,
    a_key_file_given_at_start_joins_the_ring_once_and_never_undoes_a_rotation,
);

async fn after_a_rotation_new_tokens_carry_the_new_key_and_earlier_tokens_still_work(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn_with(backend, &FAST[..2]).await else {
        return;
    };
    patient(&app, "rota.ann").await;
    let before = access_token_at(&app, &app.address, "rota.ann").await;
    let old = kid_of(&before);
    assert_eq!(kids(&app.jwks().await), vec![old.clone()]);

    let new = rotate(&app, None).await;
    assert_ne!(new, old);
    let after = token_signed_by(&app, &app.address, "rota.ann", &new, Duration::from_secs(5)).await;

    assert_eq!(app.me(&after).await.status(), 200, "the new token works");
    assert_eq!(
        app.me(&before).await.status(),
        200,
        "the earlier token still works"
    );
    let jwks = app.jwks().await;
    assert_eq!(kids(&jwks), vec![new, old], "both keys, newest first");
    for key in jwks["keys"].as_array().unwrap() {
        assert_eq!(key["alg"], "EdDSA");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["kty"], "OKP");
        assert!(key.get("d").is_none(), "no private part: {key}");
    }
}

async fn a_superseded_key_is_accepted_and_published_until_its_last_token_expired_then_neither(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn_with(backend, &FAST).await else {
        return;
    };
    let id = patient(&app, "rota.ben").await;
    let before = app.tokens("rota.ben").await.access_token;
    let old = kid_of(&before);
    // What whoever held the old key could mint: a token that outlives the key's retirement.
    // Only the retirement of its key stops it.
    let old_pem = app.signing_key_pem();
    let minted = mint(&old_pem, Some(&old), &claims(&before, id));
    assert_eq!(
        app.me(&minted).await.status(),
        200,
        "the control: accepted before"
    );

    let rotated_at = Instant::now();
    let new = rotate(&app, None).await;
    let listing = list(&app).await;
    assert_eq!(status_of(&listing, &new), "signing", "{listing}");
    assert!(
        status_of(&listing, &old).starts_with("verifying until "),
        "{listing}"
    );
    assert!(
        !listing.contains(old_pem.lines().nth(1).unwrap()),
        "no private key: {listing}"
    );
    let after = token_signed_by(&app, &app.address, "rota.ben", &new, Duration::from_secs(5)).await;
    assert_eq!(app.me(&after).await.status(), 200);
    assert_eq!(
        app.me(&minted).await.status(),
        200,
        "the old key still verifies"
    );

    // The old key leaves the key set once retired, and not before its tokens could expire.
    let deadline = rotated_at + RETIREMENT + Duration::from_secs(5);
    while kids(&app.jwks().await).len() > 1 {
        assert!(Instant::now() < deadline, "the old key was never retired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let retired_after = rotated_at.elapsed();
    assert!(
        retired_after >= TOKEN_LIFE_AND_LEEWAY,
        "retired after {retired_after:?}, before its tokens could expire"
    );
    assert_eq!(kids(&app.jwks().await), vec![new.clone()]);
    assert_unauthorized(app.me(&minted).await).await;

    let fresh = app.tokens("rota.ben").await.access_token;
    assert_eq!(kid_of(&fresh), new);
    assert_eq!(app.me(&fresh).await.status(), 200);

    let listing = list(&app).await;
    assert_eq!(status_of(&listing, &new), "signing", "{listing}");
    assert!(
        status_of(&listing, &old).starts_with("retired since "),
        "{listing}"
    );
    let lines: Vec<&str> = listing.lines().collect();
    assert!(lines[0].starts_with("KID"), "a header: {listing}");
    assert!(
        lines[1].starts_with(new.as_str()),
        "newest first: {listing}"
    );
}

async fn an_instance_that_has_not_reloaded_accepts_a_token_of_the_new_key_at_once(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn_with(backend, &FAST[..2]).await else {
        return;
    };
    // A second server on the same database that reads the ring only when a token makes it.
    let mut slow = app.settings.clone();
    slow.keys_reload_secs = 3_600;
    let second = app.another_instance_with(slow).await;
    let second_url = second.url("");
    patient(&app, "rota.cat").await;
    let from_second = access_token_at(&app, &second_url, "rota.cat").await;
    let old = kid_of(&from_second);

    let new = rotate(&app, None).await;
    let from_first =
        token_signed_by(&app, &app.address, "rota.cat", &new, Duration::from_secs(5)).await;
    assert_eq!(
        kid_of(&access_token_at(&app, &second_url, "rota.cat").await),
        old,
        "the second server has not read the ring yet"
    );

    assert_eq!(
        me_at(&app, &second_url, &from_first).await,
        200,
        "a token of the new key, from the other server, right after the rotation"
    );
    assert_eq!(
        kid_of(&access_token_at(&app, &second_url, "rota.cat").await),
        new,
        "having read the ring, the second server signs with the new key too"
    );
    assert_eq!(me_at(&app, &app.address, &from_second).await, 200);
    assert_eq!(
        kids(&app.jwks().await),
        kids(
            &app.client
                .get(second.url("/.well-known/jwks.json"))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        ),
        "both publish the same keys"
    );
}

async fn a_token_naming_an_unknown_key_or_none_is_refused_with_401(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let id = patient(&app, "rota.dan").await;
    let token = app.tokens("rota.dan").await.access_token;
    let pem = app.signing_key_pem();
    let claims = claims(&token, id);
    assert_eq!(
        app.me(&mint(&pem, Some(&kid_of(&token)), &claims))
            .await
            .status(),
        200,
        "the control: the server's key, naming it"
    );

    // The server's own key and valid claims, but no key id, or one the ring never had.
    for kid in [
        None,
        Some("no-such-key"),
        Some(Uuid::new_v4().simple().to_string().as_str()),
    ] {
        let problem = assert_unauthorized(app.me(&mint(&pem, kid, &claims)).await).await;
        assert!(problem["detail"].is_string(), "{problem}");
    }
    // An unknown key id that is no key id at all.
    let long_kid = "k".repeat(500);
    assert_unauthorized(app.me(&mint(&pem, Some(&long_kid), &claims)).await).await;
}

async fn a_key_imported_from_a_file_signs_and_cannot_be_rotated_to_twice(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &FAST[..2]).await else {
        return;
    };
    let id = patient(&app, "rota.eve").await;
    let (path, pem) = key_file(&app, "imported.pem");

    let kid = rotate(&app, Some(&path)).await;
    let token = token_signed_by(&app, &app.address, "rota.eve", &kid, Duration::from_secs(5)).await;
    assert_eq!(app.me(&token).await.status(), 200);
    assert_eq!(
        app.me(&mint(&pem, Some(&kid), &claims(&token, id)))
            .await
            .status(),
        200,
        "the imported key is the one that signs"
    );

    let again = carehub_web::keys_cli::rotate(&app.settings, Some(&path)).await;
    let error = format!(
        "{:#}",
        again.expect_err("a key the ring has had is refused")
    );
    assert!(error.contains("in the ring already"), "{error}");
    assert!(!error.contains(pem.lines().nth(1).unwrap()), "{error}");
}

async fn a_key_file_given_at_start_joins_the_ring_once_and_never_undoes_a_rotation(
    backend: Backend,
) {
    let Some(probe) = TestApp::spawn(backend).await else {
        return;
    };
    // The configured key of a deployment, in a file of its own.
    let (configured, _) = key_file(&probe, "configured.pem");
    let (replacement, _) = key_file(&probe, "replacement.pem");
    let mut settings = probe.settings.clone();
    settings.jwt_private_key_file = Some(configured.clone());
    patient(&probe, "rota.fay").await;
    let generated = kid_of(&probe.tokens("rota.fay").await.access_token);

    // An instance started with a key file the ring has not had signs with it.
    let with_file = probe.another_instance_with(settings.clone()).await;
    let configured_kid = kid_of(&access_token_at(&probe, &with_file.url(""), "rota.fay").await);
    assert_ne!(configured_kid, generated);
    drop(with_file);

    // After a rotation, restarting with the same file does not bring its key back.
    let rotated = rotate(&probe, None).await;
    let restarted = probe.another_instance_with(settings.clone()).await;
    assert_eq!(
        kid_of(&access_token_at(&probe, &restarted.url(""), "rota.fay").await),
        rotated
    );
    drop(restarted);

    // A new file rotates by itself.
    settings.jwt_private_key_file = Some(replacement);
    let with_new_file = probe.another_instance_with(settings).await;
    let replacement_kid =
        kid_of(&access_token_at(&probe, &with_new_file.url(""), "rota.fay").await);
    assert!(![generated.as_str(), &configured_kid, &rotated].contains(&replacement_kid.as_str()));
    let listing = list(&probe).await;
    assert_eq!(
        status_of(&listing, &replacement_kid),
        "signing",
        "{listing}"
    );
    for superseded in [&generated, &configured_kid, &rotated] {
        assert!(
            status_of(&listing, superseded).starts_with("verifying until "),
            "{listing}"
        );
    }
}
