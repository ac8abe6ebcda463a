//! Access tokens, refresh tokens and sign-out: what `GET /api/v1/users/me` refuses (every
//! forgery, expiry and revocation), how refresh tokens rotate and die, and what logout ends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _, KeypairBytes,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use carehub_tests::{
    TestApp, Tokens, assert_oauth_error, assert_unauthorized, backend_tests, header, id_of,
};

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Valid claims for `user_id`, as the server would issue them.
/// Valid claims for `user_id`, in the live session of `tokens`, so that each forgery below is
/// refused for its one flaw and not for an unknown session.
fn claims_for(tokens: &Tokens, user_id: Uuid, role: &str) -> Value {
    let now = now();
    json!({
        "sub": user_id,
        "role": role,
        "sid": payload(&tokens.access_token)["sid"],
        "jti": Uuid::new_v4(),
        "iat": now,
        "exp": now + 600,
        "iss": "carehub",
        "aud": "carehub-api",
    })
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The decoded payload of a JWT.
fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).expect("a payload part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

/// The decoded header of a JWT.
fn jwt_header(token: &str) -> Value {
    let part = token.split('.').next().expect("a header part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

/// The server's key id, read from a token it issued.
fn server_kid(tokens: &Tokens) -> String {
    jwt_header(&tokens.access_token)["kid"]
        .as_str()
        .expect("a kid")
        .to_owned()
}

/// Signs `claims` with the server's own private key, as the server does.
fn sign_with_server_key(app: &TestApp, kid: &str, claims: &Value) -> String {
    let key = EncodingKey::from_ed_pem(app.signing_key_pem().as_bytes()).expect("the server's key");
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key).expect("signed")
}

/// A fresh Ed25519 key that is not the server's, in PKCS#8 PEM.
fn foreign_key_pem() -> String {
    let mut secret = [0u8; 32];
    secret[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    secret[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    let key = SigningKey::from_bytes(&secret);
    KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    }
    .to_pkcs8_pem(LineEnding::LF)
    .expect("PEM")
    .to_string()
}

/// Signs in a fresh patient; returns their id and tokens.
async fn patient(app: &TestApp, username: &str) -> (Uuid, Tokens) {
    let response = app.register(username, "patient").await;
    assert_eq!(response.status(), 201);
    let user: Value = response.json().await.unwrap();
    (id_of(&user), app.tokens(username).await)
}

/// Asserts that `token` is refused on `/users/me`, returning the problem.
async fn assert_refused(app: &TestApp, token: &str) -> Value {
    let problem = assert_unauthorized(app.me(token).await).await;
    assert!(problem["detail"].is_string());
    problem
}

backend_tests! {
    async fn access_tokens_are_eddsa_jwts_that_verify_with_the_published_key(app: TestApp) {
        let (id, tokens) = patient(&app, "claims.check").await;
        let jwks = app.jwks().await;
        let key = &jwks["keys"][0];
        let header = jsonwebtoken::decode_header(&tokens.access_token).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(
            header.kid.as_deref(),
            key["kid"].as_str(),
            "the token names the published key"
        );

        let decoding = DecodingKey::from_ed_components(key["x"].as_str().unwrap()).unwrap();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&["carehub"]);
        validation.set_audience(&["carehub-api"]);
        let claims = jsonwebtoken::decode::<Value>(&tokens.access_token, &decoding, &validation)
            .expect("the token verifies with the JWKS key")
            .claims;
        assert_eq!(claims["sub"], id.to_string());
        assert_eq!(claims["role"], "patient");
        assert!(claims["sid"].as_str().unwrap().parse::<Uuid>().is_ok());
        assert!(claims["jti"].as_str().unwrap().parse::<Uuid>().is_ok());
        let (iat, exp) = (
            claims["iat"].as_i64().unwrap(),
            claims["exp"].as_i64().unwrap(),
        );
        assert_eq!(exp - iat, tokens.expires_in);
        assert!((iat - now()).abs() < 60, "issued now");
    }

    async fn a_token_minted_with_the_server_key_and_valid_claims_is_accepted(app: TestApp) {
        // The control for the forgeries below: the minting itself is right.
        let (id, tokens) = patient(&app, "minted.ok").await;
        let token = sign_with_server_key(&app, &server_kid(&tokens), &claims_for(&tokens, id, "patient"));
        let response = app.me(&token).await;
        assert_eq!(response.status(), 200);
        let me: Value = response.json().await.unwrap();
        assert_eq!(id_of(&me), id);
    }

    async fn a_request_without_credentials_is_challenged(app: TestApp) {
        let response = app.get("/api/v1/users/me", None).await;
        assert_eq!(
            header(&response, "www-authenticate").as_deref(),
            Some("Bearer realm=\"carehub\"")
        );
        assert_unauthorized(response).await;
    }

    async fn an_authorization_header_of_another_scheme_is_refused(app: TestApp) {
        let (_, tokens) = patient(&app, "scheme.check").await;
        let valid = &tokens.access_token;
        for value in [
            "Basic c2NoZW1lLmNoZWNrOnBhc3N3b3Jk".to_owned(),
            format!("Token {valid}"),
            valid.clone(),
            "Bearer".to_owned(),
            "Bearer ".to_owned(),
        ] {
            let response = app
                .client
                .get(app.url("/api/v1/users/me"))
                .header("authorization", value.clone())
                .send()
                .await
                .unwrap();
            assert_unauthorized(response).await;
        }
        // The scheme name itself is case-insensitive (RFC 7235).
        let response = app
            .client
            .get(app.url("/api/v1/users/me"))
            .header("authorization", format!("bearer {valid}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    async fn a_garbage_token_is_refused(app: TestApp) {
        for token in [
            "garbage",
            "a.b.c",
            "...",
            "eyJhbGciOiJFZERTQSJ9.e30.",
            &"x".repeat(4000),
        ] {
            assert_refused(&app, token).await;
        }
    }

    async fn a_tampered_token_is_refused(app: TestApp) {
        let (_, tokens) = patient(&app, "tamper.check").await;
        let parts: Vec<&str> = tokens.access_token.split('.').collect();

        // Promote oneself to administrator, keeping the signature.
        let mut claims = payload(&tokens.access_token);
        claims["role"] = json!("admin");
        let promoted = format!(
            "{}.{}.{}",
            parts[0],
            b64(claims.to_string().as_bytes()),
            parts[2]
        );
        assert_refused(&app, &promoted).await;
        assert_unauthorized(app.get("/api/v1/admin/users", Some(&promoted)).await).await;

        // One character of the payload changed.
        let mut payload_chars: Vec<char> = parts[1].chars().collect();
        let middle = payload_chars.len() / 2;
        payload_chars[middle] = if payload_chars[middle] == 'A' {
            'B'
        } else {
            'A'
        };
        let flipped: String = payload_chars.into_iter().collect();
        assert_refused(&app, &format!("{}.{flipped}.{}", parts[0], parts[2])).await;

        // The signature removed.
        assert_refused(&app, &format!("{}.{}.", parts[0], parts[1])).await;

        // The untampered token still works.
        assert_eq!(app.me(&tokens.access_token).await.status(), 200);
    }

    async fn a_token_signed_by_another_key_is_refused(app: TestApp) {
        let (id, tokens) = patient(&app, "foreign.key").await;
        let key = EncodingKey::from_ed_pem(foreign_key_pem().as_bytes()).unwrap();
        for kid in [
            Some(server_kid(&tokens)),
            None,
            Some("another-key".to_owned()),
        ] {
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = kid;
            let token = jsonwebtoken::encode(&header, &claims_for(&tokens, id, "patient"), &key).unwrap();
            assert_refused(&app, &token).await;
        }
    }

    async fn an_unsigned_alg_none_token_is_refused(app: TestApp) {
        let (id, tokens) = patient(&app, "alg.none").await;
        let claims = b64(claims_for(&tokens, id, "patient").to_string().as_bytes());
        for alg in ["none", "None", "NONE"] {
            let header = b64(json!({ "alg": alg, "typ": "JWT" }).to_string().as_bytes());
            assert_refused(&app, &format!("{header}.{claims}.")).await;
            let with_kid = b64(
                json!({ "alg": alg, "typ": "JWT", "kid": server_kid(&tokens) })
                    .to_string()
                    .as_bytes(),
            );
            assert_refused(&app, &format!("{with_kid}.{claims}.")).await;
        }
    }

    async fn an_hs256_token_is_refused_even_when_keyed_with_the_public_key(app: TestApp) {
        let (id, tokens) = patient(&app, "hmac.check").await;
        let kid = server_kid(&tokens);
        let jwks = app.jwks().await;
        let x = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
        let public_bytes = URL_SAFE_NO_PAD.decode(&x).unwrap();
        let signing = SigningKey::from_pkcs8_pem(&app.signing_key_pem()).unwrap();
        let public_pem = signing
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        assert_eq!(
            signing.verifying_key().to_bytes().as_slice(),
            public_bytes.as_slice()
        );

        let secrets: Vec<Vec<u8>> = vec![
            b"secret".to_vec(),
            public_bytes,
            x.into_bytes(),
            public_pem.into_bytes(),
            jwks.to_string().into_bytes(),
        ];
        for secret in secrets {
            for algorithm in [Algorithm::HS256, Algorithm::HS512] {
                let mut header = Header::new(algorithm);
                header.kid = Some(kid.clone());
                let token = jsonwebtoken::encode(
                    &header,
                    &claims_for(&tokens, id, "patient"),
                    &EncodingKey::from_secret(&secret),
                )
                .unwrap();
                assert_refused(&app, &token).await;
            }
        }
    }

    async fn an_expired_token_signed_with_the_server_key_is_refused(app: TestApp) {
        let (id, tokens) = patient(&app, "expired.check").await;
        let kid = server_kid(&tokens);
        let mut claims = claims_for(&tokens, id, "patient");
        claims["iat"] = json!(now() - 1_000);
        claims["exp"] = json!(now() - 60);
        let problem = assert_refused(&app, &sign_with_server_key(&app, &kid, &claims)).await;
        assert!(
            problem["detail"].as_str().unwrap().contains("expired"),
            "{problem}"
        );

        // Within the five-second leeway for clock differences it still counts.
        claims["exp"] = json!(now() - 1);
        assert_eq!(
            app.me(&sign_with_server_key(&app, &kid, &claims))
                .await
                .status(),
            200
        );
    }

    async fn a_token_for_another_issuer_or_audience_is_refused(app: TestApp) {
        let (id, tokens) = patient(&app, "aud.check").await;
        let kid = server_kid(&tokens);
        for (claim, value) in [
            ("iss", json!("someone-else")),
            ("aud", json!("another-api")),
            ("aud", json!(["another-api"])),
        ] {
            let mut claims = claims_for(&tokens, id, "patient");
            claims[claim] = value;
            assert_refused(&app, &sign_with_server_key(&app, &kid, &claims)).await;
        }
        // Required claims may not be left out.
        for claim in ["exp", "iss", "aud", "sub", "jti", "sid"] {
            let mut claims = claims_for(&tokens, id, "patient");
            claims.as_object_mut().unwrap().remove(claim);
            assert_refused(&app, &sign_with_server_key(&app, &kid, &claims)).await;
        }
    }

    async fn a_token_of_a_session_that_does_not_exist_is_refused(app: TestApp) {
        let (id, tokens) = patient(&app, "ghost.session").await;
        let mut claims = claims_for(&tokens, id, "patient");
        claims["sid"] = json!(Uuid::new_v4());
        assert_refused(&app, &sign_with_server_key(&app, &server_kid(&tokens), &claims)).await;
    }

    async fn a_token_for_a_user_that_does_not_exist_is_refused(app: TestApp) {
        let (_, tokens) = patient(&app, "ghost.check").await;
        let claims = claims_for(&tokens, Uuid::now_v7(), "admin");
        let token = sign_with_server_key(&app, &server_kid(&tokens), &claims);
        assert_refused(&app, &token).await;
        assert_unauthorized(app.get("/api/v1/admin/users", Some(&token)).await).await;
    }

    async fn an_access_token_stops_working_once_its_session_logs_out(app: TestApp) {
        let (_, tokens) = patient(&app, "logout.check").await;
        assert_eq!(app.logout(&tokens.access_token, None).await.status(), 204);
        let problem = assert_refused(&app, &tokens.access_token).await;
        assert!(
            problem["detail"].as_str().unwrap().contains("revoked"),
            "{problem}"
        );
        // Logging out again with it is refused too.
        assert_unauthorized(app.logout(&tokens.access_token, None).await).await;
    }

    async fn suspending_a_user_cuts_off_their_tokens_at_once(app: TestApp) {
        let admin = app.admin("root.admin").await;
        let (id, tokens) = patient(&app, "to.suspend").await;
        let second = app.tokens("to.suspend").await;
        assert_eq!(app.me(&tokens.access_token).await.status(), 200);

        app.update_user(&admin.access_token, id, &json!({ "status": "suspended" }))
            .await;

        assert_refused(&app, &tokens.access_token).await;
        assert_refused(&app, &second.access_token).await;
        assert_unauthorized(app.refresh(&tokens.refresh_token).await).await;
        assert_oauth_error(
            app.post_form(
                "/api/v1/auth/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &second.refresh_token),
                ],
            )
            .await,
            "invalid_grant",
        )
        .await;
    }

    async fn reactivating_a_suspended_user_does_not_revive_their_old_tokens(app: TestApp) {
        let admin = app.admin("root.admin").await;
        let (id, tokens) = patient(&app, "revived.check").await;
        app.update_user(&admin.access_token, id, &json!({ "status": "suspended" }))
            .await;
        app.update_user(&admin.access_token, id, &json!({ "status": "active" }))
            .await;

        // Suspension revoked every token: the refresh token stays dead, and so must the access
        // token issued before the suspension.
        assert_unauthorized(app.refresh(&tokens.refresh_token).await).await;
        assert_refused(&app, &tokens.access_token).await;
        // Signing in afresh works.
        let fresh = app.tokens("revived.check").await;
        assert_eq!(app.me(&fresh.access_token).await.status(), 200);
    }

    async fn refreshing_rotates_the_pair_and_the_old_refresh_token_stops_working(app: TestApp) {
        let (id, first) = patient(&app, "rotate.check").await;
        let response = app.refresh(&first.refresh_token).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            header(&response, "cache-control").as_deref(),
            Some("no-store")
        );
        let second: Tokens = response.json().await.unwrap();
        assert_eq!(second.token_type, "Bearer");
        assert_eq!(second.expires_in, 900);
        assert_ne!(second.refresh_token, first.refresh_token);
        assert_ne!(second.access_token, first.access_token);
        assert_eq!(
            payload(&second.access_token)["sid"],
            payload(&first.access_token)["sid"],
            "a refresh continues the same session"
        );

        let me: Value = app.me(&second.access_token).await.json().await.unwrap();
        assert_eq!(id_of(&me), id);
        // The chain goes on from the new token.
        let third: Tokens = app.refreshed(&second.refresh_token).await;
        assert_eq!(app.me(&third.access_token).await.status(), 200);

        // The old one is spent (and, being presented again, ends the session: see below).
        assert_unauthorized(app.refresh(&first.refresh_token).await).await;
    }

    async fn a_reused_refresh_token_kills_its_whole_session(app: TestApp) {
        let (_, stolen) = patient(&app, "reuse.check").await;
        let other_session = app.tokens("reuse.check").await;

        let legitimate: Tokens = app.refreshed(&stolen.refresh_token).await;
        let problem = assert_unauthorized(app.refresh(&stolen.refresh_token).await).await;
        assert!(
            problem["detail"].as_str().unwrap().contains("already used"),
            "{problem}"
        );

        // The tokens of the session are dead: both refresh tokens, and its access tokens too.
        assert_refused(&app, &legitimate.access_token).await;
        assert_refused(&app, &stolen.access_token).await;
        assert_unauthorized(app.refresh(&legitimate.refresh_token).await).await;
        // Another sign-in of the same user is not.
        assert_eq!(app.me(&other_session.access_token).await.status(), 200);
        let response = app.refresh(&other_session.refresh_token).await;
        assert_eq!(response.status(), 200);
    }

    async fn unknown_or_missing_refresh_tokens_are_refused(app: TestApp) {
        assert_unauthorized(app.refresh("not-a-token-this-server-issued").await).await;
        assert_unauthorized(app.refresh("").await).await;
        let response = app
            .post_json("/api/v1/auth/refresh", None, &json!({}))
            .await;
        let problem = carehub_tests::assert_problem_type(response, 422, "validation").await;
        assert_eq!(
            carehub_tests::problem_fields(&problem),
            vec!["refresh_token"]
        );
    }

    async fn logging_out_without_a_body_ends_the_session(app: TestApp) {
        let (_, tokens) = patient(&app, "plain.logout").await;
        let response = app.logout(&tokens.access_token, None).await;
        assert_eq!(response.status(), 204);
        assert!(response.bytes().await.unwrap().is_empty());
        assert_refused(&app, &tokens.access_token).await;
        assert_unauthorized(app.refresh(&tokens.refresh_token).await).await;
    }

    async fn logging_out_with_an_empty_json_body_ends_the_session(app: TestApp) {
        let (_, tokens) = patient(&app, "json.logout").await;
        assert_eq!(
            app.logout(&tokens.access_token, Some(&json!({})))
                .await
                .status(),
            204
        );
        assert_refused(&app, &tokens.access_token).await;
        assert_unauthorized(app.refresh(&tokens.refresh_token).await).await;
    }

    async fn logging_out_with_another_sessions_refresh_token_ends_that_session_too(app: TestApp) {
        let (_, laptop) = patient(&app, "two.sessions").await;
        let phone = app.tokens("two.sessions").await;
        let third = app.tokens("two.sessions").await;

        let body = json!({ "refresh_token": phone.refresh_token });
        assert_eq!(
            app.logout(&laptop.access_token, Some(&body)).await.status(),
            204
        );

        assert_refused(&app, &laptop.access_token).await;
        assert_refused(&app, &phone.access_token).await;
        assert_unauthorized(app.refresh(&laptop.refresh_token).await).await;
        assert_unauthorized(app.refresh(&phone.refresh_token).await).await;
        // A session not named stays.
        assert_eq!(app.me(&third.access_token).await.status(), 200);
        assert_eq!(app.refresh(&third.refresh_token).await.status(), 200);
    }

    async fn logging_out_with_someone_elses_refresh_token_leaves_their_session_alone(app: TestApp) {
        let (_, mallory) = patient(&app, "mallory.m").await;
        let (_, victim) = patient(&app, "victim.v").await;
        let body = json!({ "refresh_token": victim.refresh_token });
        assert_eq!(
            app.logout(&mallory.access_token, Some(&body))
                .await
                .status(),
            204
        );
        assert_eq!(app.me(&victim.access_token).await.status(), 200);
        assert_eq!(app.refresh(&victim.refresh_token).await.status(), 200);
    }

    async fn a_refused_logout_changes_nothing(app: TestApp) {
        let (_, tokens) = patient(&app, "refused.logout").await;
        let body = json!({ "refresh_token": tokens.refresh_token });

        // Anonymous.
        assert_unauthorized(app.post_json("/api/v1/auth/logout", None, &body).await).await;
        // Not JSON.
        let response = app
            .client
            .post(app.url("/api/v1/auth/logout"))
            .bearer_auth(&tokens.access_token)
            .header("content-type", "text/plain")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        carehub_tests::assert_problem_type(response, 415, "unsupported-media-type").await;
        // Malformed JSON.
        let response = app
            .client
            .post(app.url("/api/v1/auth/logout"))
            .bearer_auth(&tokens.access_token)
            .header("content-type", "application/json")
            .body("{\"refresh_token\": ")
            .send()
            .await
            .unwrap();
        carehub_tests::assert_problem_type(response, 400, "bad-request").await;

        assert_eq!(app.me(&tokens.access_token).await.status(), 200);
        assert_eq!(app.refresh(&tokens.refresh_token).await.status(), 200);
    }

    async fn a_refreshed_pair_is_a_full_session(app: TestApp) {
        let (_, tokens) = patient(&app, "full.session").await;
        let refreshed: Tokens = app.refreshed(&tokens.refresh_token).await;
        assert_eq!(app.me(&refreshed.access_token).await.status(), 200);
        assert_eq!(
            app.logout(&refreshed.access_token, None).await.status(),
            204
        );
        assert_unauthorized(app.refresh(&refreshed.refresh_token).await).await;
    }
}

mod short_lived {
    //! The configured access token lifetime is what the server issues.

    use super::*;

    carehub_tests::backend_tests_with! {
        ["--access-token-ttl-secs", "2"];

        async fn access_tokens_live_as_long_as_configured(app: TestApp) {
            let (_, tokens) = patient(&app, "short.ttl").await;
            assert_eq!(tokens.expires_in, 2);
            let claims = payload(&tokens.access_token);
            assert_eq!(
                claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
                2
            );
            let refreshed: Tokens = app.refreshed(&tokens.refresh_token).await;
            assert_eq!(refreshed.expires_in, 2);
        }
    }
}

mod session_limits {
    //! Sessions end: after `CAREHUB_SESSION_IDLE_SECS` unused, and at the latest
    //! `CAREHUB_SESSION_MAX_SECS` after the sign-in, however often they are refreshed.

    use std::time::Duration;

    use super::*;

    mod idle {
        use super::*;

        carehub_tests::backend_tests_with! {
            ["--session-idle-secs", "2", "--session-max-secs", "3600"];

            async fn a_session_used_in_time_slides_and_an_idle_one_ends(app: TestApp) {
                let (_, tokens) = patient(&app, "idle.user").await;
                // Refreshed every second, the session outlives its idle limit...
                let mut refresh_token = tokens.refresh_token;
                for _ in 0..4 {
                    tokio::time::sleep(Duration::from_millis(1_000)).await;
                    refresh_token = app.refreshed(&refresh_token).await.refresh_token;
                }
                // ...but left idle longer than it, it ends.
                tokio::time::sleep(Duration::from_millis(2_500)).await;
                assert_unauthorized(app.refresh(&refresh_token).await).await;
            }
        }
    }

    mod absolute {
        use super::*;

        carehub_tests::backend_tests_with! {
            ["--session-idle-secs", "3600", "--session-max-secs", "3", "--access-token-ttl-secs", "900"];

            async fn a_session_ends_at_its_maximum_however_often_it_is_refreshed(app: TestApp) {
                let (_, tokens) = patient(&app, "busy.user").await;
                assert!(tokens.expires_in <= 3, "no access token outlives its session");
                let claims = payload(&tokens.access_token);
                assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 3);

                tokio::time::sleep(Duration::from_millis(1_200)).await;
                let refreshed = app.refreshed(&tokens.refresh_token).await;
                assert!(refreshed.expires_in <= 2, "{}", refreshed.expires_in);
                tokio::time::sleep(Duration::from_millis(2_300)).await;
                assert_unauthorized(app.refresh(&refreshed.refresh_token).await).await;
                assert_refused(&app, &refreshed.access_token).await;

                // A new sign-in starts a new session.
                let again = app.tokens("busy.user").await;
                assert_eq!(app.me(&again.access_token).await.status(), 200);
            }
        }
    }
}
