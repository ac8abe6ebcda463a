//! Signing in through `POST /api/v1/auth/login`: the token response, refusals that give
//! nothing away, accounts that may not sign in, and the pauses after repeated failures: per
//! username, per address, per address and username, and per device, with devices that signed
//! in before passing a username's pause.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use carehub_tests::{
    PASSWORD, TestApp, assert_forbidden, assert_problem_type, assert_unauthorized, backend_tests,
    header, problem_fields,
};
use reqwest::Response;
use serde_json::{Value, json};

const WRONG: &str = "not the right password";

/// Asserts a 429 with a positive whole `Retry-After` of at most `window_secs`.
async fn assert_throttled(response: Response, window_secs: u64) {
    let retry_after = header(&response, "retry-after").expect("a 429 carries Retry-After");
    let seconds: u64 = retry_after
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After must be whole seconds, got {retry_after:?}"));
    assert!(
        (1..=window_secs).contains(&seconds),
        "Retry-After {seconds} must be within the {window_secs} s window"
    );
    assert_problem_type(response, 429, "too-many-requests").await;
}

async fn fail(app: &TestApp, username: &str) {
    assert_unauthorized(app.login(username, WRONG).await).await;
}

backend_tests! {
    async fn signing_in_returns_an_uncached_bearer_token_pair(app: TestApp) {
        assert_eq!(app.register("sign.in", "patient").await.status(), 201);
        let response = app.login("sign.in", PASSWORD).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            header(&response, "cache-control").as_deref(),
            Some("no-store")
        );
        assert_eq!(header(&response, "pragma").as_deref(), Some("no-cache"));
        let body: Value = response.json().await.unwrap();
        let keys: Vec<&str> = {
            let mut keys: Vec<&str> = body
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            keys.sort_unstable();
            keys
        };
        assert_eq!(
            keys,
            [
                "access_token",
                "device_token",
                "expires_in",
                "refresh_token",
                "token_type"
            ]
        );
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 900);
        assert_eq!(
            body["access_token"].as_str().unwrap().split('.').count(),
            3,
            "a JWT"
        );
        assert!(
            body["refresh_token"].as_str().unwrap().len() >= 32,
            "an unguessable refresh token"
        );

        let me = app.me(body["access_token"].as_str().unwrap()).await;
        assert_eq!(me.status(), 200);
        let me: Value = me.json().await.unwrap();
        assert_eq!(me["username"], "sign.in");
    }

    async fn a_wrong_password_and_an_unknown_username_get_identical_answers(app: TestApp) {
        assert_eq!(app.register("known.user", "patient").await.status(), 201);
        let overlong = "p".repeat(129);
        let mut answers = Vec::new();
        for (username, password) in [
            ("known.user", WRONG),
            ("unknown.user", WRONG),
            ("unknown.user", PASSWORD),
            ("known.user", overlong.as_str()),
            ("not a valid name!", WRONG),
        ] {
            let response = app.login(username, password).await;
            let challenge = header(&response, "www-authenticate");
            let body = assert_unauthorized(response).await;
            answers.push((challenge, body));
        }
        for answer in &answers[1..] {
            assert_eq!(
                answer, &answers[0],
                "refusals must not tell unknown users from wrong passwords"
            );
        }
        // The account itself is untouched.
        app.tokens("known.user").await;
    }

    async fn missing_sign_in_fields_are_named(app: TestApp) {
        let response = app
            .post_json(
                "/api/v1/auth/login",
                None,
                &json!({ "username": "someone" }),
            )
            .await;
        let problem = assert_problem_type(response, 422, "validation").await;
        assert_eq!(problem_fields(&problem), vec!["password"]);

        let response = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .header("content-type", "text/plain")
            .body(json!({ "username": "someone", "password": WRONG }).to_string())
            .send()
            .await
            .unwrap();
        assert_problem_type(response, 415, "unsupported-media-type").await;

        let response = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .header("content-type", "application/json")
            .body(r#"{"username": "someone""#)
            .send()
            .await
            .unwrap();
        assert_problem_type(response, 400, "bad-request").await;
    }

    async fn pending_and_suspended_accounts_cannot_sign_in(app: TestApp) {
        let admin = app.admin("root.admin").await;
        assert_eq!(app.register("doc.pending", "doctor").await.status(), 201);
        let refused = assert_forbidden(app.login("doc.pending", PASSWORD).await).await;
        assert!(
            refused["detail"].as_str().unwrap().contains("approval"),
            "{refused}"
        );

        let (id, _) = app
            .active_user("pat.suspended", "patient", &admin.access_token)
            .await;
        app.update_user(&admin.access_token, id, &json!({ "status": "suspended" }))
            .await;
        let refused = assert_forbidden(app.login("pat.suspended", PASSWORD).await).await;
        assert!(
            refused["detail"].as_str().unwrap().contains("suspended"),
            "{refused}"
        );

        // Without the right password they learn nothing about the account's status.
        assert_unauthorized(app.login("doc.pending", WRONG).await).await;
        assert_unauthorized(app.login("pat.suspended", WRONG).await).await;
    }

    async fn five_failures_pause_the_username_even_for_the_right_password(app: TestApp) {
        assert_eq!(app.register("target.user", "patient").await.status(), 201);
        assert_eq!(app.register("other.user", "patient").await.status(), 201);
        // Failures count on both sign-in endpoints and regardless of case.
        for _ in 0..3 {
            fail(&app, "target.user").await;
        }
        let form = app
            .post_form(
                "/api/v1/auth/token",
                &[
                    ("grant_type", "password"),
                    ("username", "TARGET.USER"),
                    ("password", WRONG),
                ],
            )
            .await;
        carehub_tests::assert_oauth_error(form, "invalid_grant").await;
        fail(&app, "Target.User").await;

        assert_throttled(app.login("target.user", PASSWORD).await, 900).await;
        assert_throttled(app.login("TARGET.USER", PASSWORD).await, 900).await;
        assert_throttled(app.login("target.user", WRONG).await, 900).await;
        let form = app
            .post_form(
                "/api/v1/auth/token",
                &[
                    ("grant_type", "password"),
                    ("username", "target.user"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_throttled(form, 900).await;

        // Other usernames are not paused.
        app.tokens("other.user").await;
    }

    async fn an_unknown_username_is_paused_like_a_known_one(app: TestApp) {
        for _ in 0..5 {
            fail(&app, "ghost.user").await;
        }
        assert_throttled(app.login("ghost.user", WRONG).await, 900).await;
        assert_throttled(app.login("ghost.user", PASSWORD).await, 900).await;
    }

    async fn a_successful_sign_in_before_the_limit_resets_the_count(app: TestApp) {
        assert_eq!(app.register("forgetful", "patient").await.status(), 201);
        for _ in 0..4 {
            fail(&app, "forgetful").await;
        }
        app.tokens("forgetful").await;
        // The count starts again: four failures leave sign-in open, and so does a fifth,
        // which is checked against four earlier failures.
        for _ in 0..5 {
            fail(&app, "forgetful").await;
        }
        assert_throttled(app.login("forgetful", PASSWORD).await, 900).await;
    }

    async fn a_pending_accounts_right_password_does_not_reset_the_count(app: TestApp) {
        assert_eq!(
            app.register("lab.pending", "laboratory").await.status(),
            201
        );
        for _ in 0..4 {
            fail(&app, "lab.pending").await;
        }
        assert_forbidden(app.login("lab.pending", PASSWORD).await).await;
        fail(&app, "lab.pending").await;
        assert_throttled(app.login("lab.pending", PASSWORD).await, 900).await;
    }
}

mod short_window {
    //! With a short failure window the pause ends by itself. The window is wide enough that
    //! five failed sign-ins fit in it even on a loaded machine.

    use super::*;

    carehub_tests::backend_tests_with! {
        ["--login-failure-window-secs", "4"];

        async fn the_pause_ends_when_the_failures_leave_the_window(app: TestApp) {
            assert_eq!(app.register("patient.p", "patient").await.status(), 201);
            for _ in 0..5 {
                fail(&app, "patient.p").await;
            }
            assert_throttled(app.login("patient.p", PASSWORD).await, 4).await;
            tokio::time::sleep(Duration::from_millis(4_500)).await;
            app.tokens("patient.p").await;
        }
    }
}

mod addresses_and_devices {
    //! Each client below comes from an address of its own on the loopback network (a real
    //! socket address, 127.0.0.x), as attackers and users would from theirs.

    use std::net::IpAddr;

    use super::*;

    /// A client whose connections come from `ip`.
    fn client_from(ip: &str) -> reqwest::Client {
        reqwest::Client::builder()
            .local_address(ip.parse::<IpAddr>().unwrap())
            .build()
            .unwrap()
    }

    async fn login_from(
        app: &TestApp,
        client: &reqwest::Client,
        username: &str,
        password: &str,
        device: Option<&str>,
        cookie: Option<&str>,
    ) -> Response {
        let mut body = json!({ "username": username, "password": password });
        if let Some(device) = device {
            body["device_token"] = json!(device);
        }
        let mut request = client.post(app.url("/api/v1/auth/login")).json(&body);
        if let Some(cookie) = cookie {
            request = request.header("cookie", format!("carehub_device={cookie}"));
        }
        request.send().await.unwrap()
    }

    /// The value of the `carehub_device` cookie a response sets, and its attributes.
    fn device_cookie(response: &Response) -> (String, String) {
        let set = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|v| v.starts_with("carehub_device="))
            .expect("a carehub_device cookie");
        let (pair, attributes) = set.split_once(';').unwrap();
        (
            pair.trim_start_matches("carehub_device=").to_owned(),
            attributes.to_owned(),
        )
    }

    backend_tests! {
        async fn a_sign_in_sets_an_http_only_device_cookie_matching_the_device_token(app: TestApp) {
            assert_eq!(app.register("cookie.user", "patient").await.status(), 201);
            let response = app.login("cookie.user", PASSWORD).await;
            assert_eq!(response.status(), 200);
            let (value, attributes) = device_cookie(&response);
            let attributes = attributes.to_lowercase();
            for expected in ["httponly", "samesite=strict", "path=/api/v1/auth", "max-age=7776000"] {
                assert!(attributes.contains(expected), "{expected} in {attributes}");
            }
            assert!(!attributes.contains("secure"), "plain HTTP: not Secure ({attributes})");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["device_token"], value);
            assert_eq!(value.len(), 43, "256 random bits, base64url");

            // A refresh hands out no device token and sets no cookie.
            let refreshed = app
                .post_json(
                    "/api/v1/auth/refresh",
                    None,
                    &json!({ "refresh_token": body["refresh_token"] }),
                )
                .await;
            assert_eq!(refreshed.status(), 200);
            assert!(refreshed.headers().get("set-cookie").is_none());
            let refreshed: Value = refreshed.json().await.unwrap();
            assert!(refreshed.get("device_token").is_none());
        }

        async fn a_stranger_failing_cannot_lock_out_a_device_that_signed_in_before(app: TestApp) {
            assert_eq!(app.register("locked.out", "patient").await.status(), 201);
            let own = client_from("127.0.0.2");
            let signed_in = login_from(&app, &own, "locked.out", PASSWORD, None, None).await;
            let (cookie, _) = device_cookie(&signed_in);
            let body: Value = signed_in.json().await.unwrap();
            let device = body["device_token"].as_str().unwrap().to_owned();

            // An attacker elsewhere fails often enough to pause the username.
            let attacker = client_from("127.0.0.3");
            for _ in 0..5 {
                assert_unauthorized(login_from(&app, &attacker, "locked.out", WRONG, None, None).await).await;
            }
            assert_throttled(login_from(&app, &attacker, "locked.out", PASSWORD, None, None).await, 900).await;
            // So is any client that never signed in to this account.
            assert_throttled(login_from(&app, &client_from("127.0.0.4"), "locked.out", PASSWORD, None, None).await, 900).await;

            // The user's own device passes, with its cookie (a browser) or its token (an API
            // client), even from another address.
            for (client, token, jar) in [
                (&own, None, Some(cookie.as_str())),
                (&own, Some(device.as_str()), None),
                (&client_from("127.0.0.5"), Some(device.as_str()), None),
            ] {
                let response = login_from(&app, client, "locked.out", PASSWORD, token, jar).await;
                assert_eq!(response.status(), 200, "the trusted device signs in");
            }
            // And the attacker is still paused.
            assert_throttled(login_from(&app, &attacker, "locked.out", PASSWORD, None, None).await, 900).await;
        }

        async fn a_device_trusted_for_another_account_does_not_pass_a_pause(app: TestApp) {
            assert_eq!(app.register("victim.user", "patient").await.status(), 201);
            assert_eq!(app.register("attacker.own", "patient").await.status(), 201);
            let attacker = client_from("127.0.0.3");
            let own = login_from(&app, &attacker, "attacker.own", PASSWORD, None, None).await;
            let own: Value = own.json().await.unwrap();
            let device = own["device_token"].as_str().unwrap();
            for _ in 0..5 {
                let response = login_from(&app, &attacker, "victim.user", WRONG, Some(device), None).await;
                assert_unauthorized(response).await;
            }
            assert_throttled(
                login_from(&app, &client_from("127.0.0.4"), "victim.user", PASSWORD, Some(device), None).await,
                900,
            )
            .await;
        }

        async fn a_trusted_device_that_fails_too_often_is_paused_too(app: TestApp) {
            assert_eq!(app.register("careless", "patient").await.status(), 201);
            let own = client_from("127.0.0.2");
            let body: Value = login_from(&app, &own, "careless", PASSWORD, None, None)
                .await
                .json()
                .await
                .unwrap();
            let device = body["device_token"].as_str().unwrap();
            // Five failures with the device: then it is trusted no more, and the username's
            // own count (which those failures did not raise) decides.
            for ip in ["127.0.0.6", "127.0.0.7", "127.0.0.8", "127.0.0.9", "127.0.0.10"] {
                let response = login_from(&app, &client_from(ip), "careless", WRONG, Some(device), None).await;
                assert_unauthorized(response).await;
            }
            let response = login_from(&app, &own, "careless", PASSWORD, Some(device), None).await;
            assert_eq!(response.status(), 200, "the username itself was never paused");
            // Now a stranger pauses the username; the over-used device no longer passes.
            let attacker = client_from("127.0.0.3");
            for _ in 0..5 {
                assert_unauthorized(login_from(&app, &attacker, "careless", WRONG, None, None).await).await;
            }
            assert_throttled(login_from(&app, &own, "careless", PASSWORD, Some(device), None).await, 900).await;
        }

        async fn one_address_failing_for_one_username_is_paused_even_with_its_device(app: TestApp) {
            assert_eq!(app.register("shared.desk", "patient").await.status(), 201);
            let desk = client_from("127.0.0.2");
            let body: Value = login_from(&app, &desk, "shared.desk", PASSWORD, None, None)
                .await
                .json()
                .await
                .unwrap();
            let device = body["device_token"].as_str().unwrap();
            for _ in 0..5 {
                assert_unauthorized(login_from(&app, &desk, "shared.desk", WRONG, None, None).await).await;
            }
            assert_throttled(login_from(&app, &desk, "shared.desk", PASSWORD, Some(device), None).await, 900).await;
            // From another address the device passes the username's pause.
            let elsewhere = login_from(&app, &client_from("127.0.0.4"), "shared.desk", PASSWORD, Some(device), None).await;
            assert_eq!(elsewhere.status(), 200);
        }
    }

    mod per_address {
        use super::*;

        carehub_tests::backend_tests_with! {
            ["--login-max-failures-per-address", "6"];

            async fn an_address_failing_across_usernames_is_paused_for_every_username(app: TestApp) {
                assert_eq!(app.register("sprayed.one", "patient").await.status(), 201);
                let sprayer = client_from("127.0.0.3");
                for username in ["a.user", "b.user", "c.user", "d.user", "e.user", "f.user"] {
                    assert_unauthorized(login_from(&app, &sprayer, username, WRONG, None, None).await).await;
                }
                assert_throttled(login_from(&app, &sprayer, "sprayed.one", PASSWORD, None, None).await, 900).await;
                // Other addresses are not paused, nor the usernames tried.
                let response = login_from(&app, &client_from("127.0.0.4"), "sprayed.one", PASSWORD, None, None).await;
                assert_eq!(response.status(), 200);
                let device: Value = response.json().await.unwrap();
                let device = device["device_token"].as_str().unwrap();
                // A success from the paused address buys no more guesses.
                let response = login_from(&app, &sprayer, "sprayed.one", PASSWORD, None, None).await;
                assert_throttled(response, 900).await;
                // But a device trusted for the account passes the address's pause: someone
                // sharing the address cannot lock its users out.
                let response = login_from(&app, &sprayer, "sprayed.one", PASSWORD, Some(device), None).await;
                assert_eq!(response.status(), 200);
                let response = login_from(&app, &sprayer, "a.user", PASSWORD, Some(device), None).await;
                assert_throttled(response, 900).await;
            }

            async fn refused_refresh_tokens_pause_the_address(app: TestApp) {
                assert_eq!(app.register("refresher", "patient").await.status(), 201);
                let guesser = client_from("127.0.0.3");
                let tokens: Value = login_from(&app, &guesser, "refresher", PASSWORD, None, None)
                    .await
                    .json()
                    .await
                    .unwrap();
                for guess in 0..3 {
                    let response = guesser
                        .post(app.url("/api/v1/auth/refresh"))
                        .json(&json!({ "refresh_token": format!("guess-{guess}") }))
                        .send()
                        .await
                        .unwrap();
                    assert_unauthorized(response).await;
                    let response = guesser
                        .post(app.url("/api/v1/auth/token"))
                        .form(&[("grant_type", "refresh_token"), ("refresh_token", "guess")])
                        .send()
                        .await
                        .unwrap();
                    carehub_tests::assert_oauth_error(response, "invalid_grant").await;
                }
                // Six refusals: even a good token is refused from there, on both endpoints.
                let response = guesser
                    .post(app.url("/api/v1/auth/refresh"))
                    .json(&json!({ "refresh_token": tokens["refresh_token"] }))
                    .send()
                    .await
                    .unwrap();
                assert_throttled(response, 900).await;
                let response = guesser
                    .post(app.url("/api/v1/auth/token"))
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                    ])
                    .send()
                    .await
                    .unwrap();
                assert_throttled(response, 900).await;
                // The token was not used up: its holder refreshes from elsewhere.
                let response = client_from("127.0.0.4")
                    .post(app.url("/api/v1/auth/refresh"))
                    .json(&json!({ "refresh_token": tokens["refresh_token"] }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
            }
        }
    }

    mod untrusted_forwarding {
        use super::*;

        carehub_tests::backend_tests_with! {
            ["--login-max-failures-per-address", "3"];

            async fn a_forwarded_for_header_is_ignored_from_an_untrusted_peer(app: TestApp) {
                let client = client_from("127.0.0.3");
                for n in 0..3 {
                    let response = client
                        .post(app.url("/api/v1/auth/login"))
                        .header("x-forwarded-for", format!("198.51.100.{n}"))
                        .json(&json!({ "username": format!("user.{n}"), "password": WRONG }))
                        .send()
                        .await
                        .unwrap();
                    assert_unauthorized(response).await;
                }
                let response = client
                    .post(app.url("/api/v1/auth/login"))
                    .header("x-forwarded-for", "198.51.100.99")
                    .json(&json!({ "username": "user.9", "password": WRONG }))
                    .send()
                    .await
                    .unwrap();
                assert_throttled(response, 900).await;
            }
        }
    }

    mod trusted_proxy {
        use super::*;

        carehub_tests::backend_tests_with! {
            ["--login-max-failures-per-address", "3", "--trusted-proxies", "127.0.0.2"];

            async fn a_trusted_proxy_names_the_client_it_forwards(app: TestApp) {
                let proxy = client_from("127.0.0.2");
                let through_proxy = async |client_ip: &str, username: &str| {
                    proxy
                        .post(app.url("/api/v1/auth/login"))
                        .header("x-forwarded-for", format!("203.0.113.50, {client_ip}"))
                        .json(&json!({ "username": username, "password": WRONG }))
                        .send()
                        .await
                        .unwrap()
                };
                for n in 0..3 {
                    assert_unauthorized(through_proxy("198.51.100.1", &format!("user.{n}")).await).await;
                }
                // That client is paused; another behind the same proxy is not, whatever the
                // left-most entry (the client's own claim) says.
                assert_throttled(through_proxy("198.51.100.1", "user.9").await, 900).await;
                assert_unauthorized(through_proxy("198.51.100.2", "user.9").await).await;
                // Someone who is not the proxy cannot use the header to escape.
                let direct = client_from("127.0.0.3");
                for n in 0..3 {
                    let response = direct
                        .post(app.url("/api/v1/auth/login"))
                        .header("x-forwarded-for", format!("198.51.100.{}", 10 + n))
                        .json(&json!({ "username": format!("user.{n}"), "password": WRONG }))
                        .send()
                        .await
                        .unwrap();
                    assert_unauthorized(response).await;
                }
                let response = direct
                    .post(app.url("/api/v1/auth/login"))
                    .header("x-forwarded-for", "198.51.100.20")
                    .json(&json!({ "username": "user.9", "password": WRONG }))
                    .send()
                    .await
                    .unwrap();
                assert_throttled(response, 900).await;
            }
        }
    }

    mod registrations {
        use super::*;

        carehub_tests::backend_tests_with! {
            ["--registrations-per-address", "2"];

            async fn registrations_from_one_address_are_limited(app: TestApp) {
                let register = async |client: &reqwest::Client, username: &str| {
                    client
                        .post(app.url("/api/v1/auth/register"))
                        .json(&json!({
                            "username": username,
                            "password": PASSWORD,
                            "full_name": "Some One",
                            "role": "patient",
                        }))
                        .send()
                        .await
                        .unwrap()
                };
                let busy = client_from("127.0.0.3");
                assert_eq!(register(&busy, "first.one").await.status(), 201);
                // A refused attempt that was hashed counts too.
                assert_eq!(register(&busy, "first.one").await.status(), 409);
                assert_throttled(register(&busy, "third.one").await, 3600).await;
                assert_eq!(
                    app.login("third.one", PASSWORD).await.status(),
                    401,
                    "nothing was registered"
                );
                assert_eq!(register(&client_from("127.0.0.4"), "third.one").await.status(), 201);
            }
        }
    }
}
