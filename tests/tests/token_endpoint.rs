//! The OAuth 2.0 token endpoint, `POST /api/v1/auth/token` (form-encoded): the password and
//! refresh-token grants, and RFC 6749 error codes for everything it refuses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use carehub_tests::{
    PASSWORD, TestApp, Tokens, assert_oauth_error, assert_unauthorized, backend_tests, header,
};
use reqwest::Response;
use serde_json::json;

const TOKEN: &str = "/api/v1/auth/token";

/// Asserts a successful, uncached token response and returns it.
async fn assert_tokens(response: Response) -> Tokens {
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "cache-control").as_deref(),
        Some("no-store")
    );
    assert_eq!(header(&response, "pragma").as_deref(), Some("no-cache"));
    let tokens: Tokens = response.json().await.unwrap();
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.expires_in, 900);
    tokens
}

backend_tests! {
    async fn the_password_grant_signs_in(app: TestApp) {
        assert_eq!(app.register("form.user", "patient").await.status(), 201);
        let tokens = assert_tokens(
            app.post_form(
                TOKEN,
                &[
                    ("grant_type", "password"),
                    ("username", "Form.User"),
                    ("password", PASSWORD),
                    ("scope", "anything"),
                    ("client_id", "swagger-ui"),
                ],
            )
            .await,
        )
        .await;
        let me: serde_json::Value = app.me(&tokens.access_token).await.json().await.unwrap();
        assert_eq!(me["username"], "form.user");
    }

    async fn the_password_grant_refuses_wrong_credentials_as_invalid_grant(app: TestApp) {
        assert_eq!(app.register("form.wrong", "patient").await.status(), 201);
        let mut answers = Vec::new();
        for (username, password) in [
            ("form.wrong", "not the password"),
            ("form.nobody", PASSWORD),
        ] {
            let response = app
                .post_form(
                    TOKEN,
                    &[
                        ("grant_type", "password"),
                        ("username", username),
                        ("password", password),
                    ],
                )
                .await;
            answers.push(assert_oauth_error(response, "invalid_grant").await);
        }
        assert_eq!(
            answers[0], answers[1],
            "unknown users and wrong passwords look alike"
        );
        app.tokens("form.wrong").await;
    }

    async fn the_refresh_token_grant_rotates_the_refresh_token(app: TestApp) {
        assert_eq!(app.register("form.refresh", "patient").await.status(), 201);
        let first = app.tokens("form.refresh").await;
        let second = assert_tokens(
            app.post_form(
                TOKEN,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &first.refresh_token),
                ],
            )
            .await,
        )
        .await;
        assert_ne!(second.refresh_token, first.refresh_token);
        assert_eq!(app.me(&second.access_token).await.status(), 200);

        // The new refresh token works on the JSON endpoint too, and the old one nowhere.
        let third: Tokens = app.refreshed(&second.refresh_token).await;
        let problem = assert_oauth_error(
            app.post_form(
                TOKEN,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &first.refresh_token),
                ],
            )
            .await,
            "invalid_grant",
        )
        .await;
        assert!(
            problem["error_description"]
                .as_str()
                .unwrap()
                .contains("already used"),
            "{problem}"
        );
        // Presenting the used token ended the session.
        assert_unauthorized(app.refresh(&third.refresh_token).await).await;
    }

    async fn an_unknown_refresh_token_is_an_invalid_grant(app: TestApp) {
        assert_oauth_error(
            app.post_form(
                TOKEN,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", "made-up"),
                ],
            )
            .await,
            "invalid_grant",
        )
        .await;
    }

    async fn incomplete_token_requests_are_invalid_requests(app: TestApp) {
        assert_eq!(app.register("form.partial", "patient").await.status(), 201);
        for form in [
            vec![("grant_type", "password"), ("username", "form.partial")],
            vec![("grant_type", "password"), ("password", PASSWORD)],
            vec![("grant_type", "refresh_token")],
            vec![("username", "form.partial"), ("password", PASSWORD)],
            vec![],
        ] {
            assert_oauth_error(app.post_form(TOKEN, &form).await, "invalid_request").await;
        }
        // A JSON body is not the form the endpoint takes.
        let body = json!({
            "grant_type": "password",
            "username": "form.partial",
            "password": PASSWORD,
        });
        let response = app.post_json(TOKEN, None, &body).await;
        assert_oauth_error(response, "invalid_request").await;
        // None of it counted as a failed sign-in.
        for _ in 0..5 {
            assert_oauth_error(
                app.post_form(
                    TOKEN,
                    &[("grant_type", "password"), ("username", "form.partial")],
                )
                .await,
                "invalid_request",
            )
            .await;
        }
        app.tokens("form.partial").await;
    }

    async fn other_grant_types_are_unsupported(app: TestApp) {
        assert_eq!(app.register("form.grant", "patient").await.status(), 201);
        for grant in ["client_credentials", "authorization_code", "PASSWORD", ""] {
            let response = app
                .post_form(
                    TOKEN,
                    &[
                        ("grant_type", grant),
                        ("username", "form.grant"),
                        ("password", PASSWORD),
                    ],
                )
                .await;
            assert_oauth_error(response, "unsupported_grant_type").await;
        }
    }
}
