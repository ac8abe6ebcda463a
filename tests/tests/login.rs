//! Signing in through `POST /api/v1/auth/login`: the token response, refusals that give
//! nothing away, accounts that may not sign in, and the pause after repeated failures.

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
            ["access_token", "expires_in", "refresh_token", "token_type"]
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
