//! Self-registration through `POST /api/v1/auth/register`: who starts active, who waits, and
//! every way a registration is refused without creating anything.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use carehub_tests::{
    PASSWORD, TestApp, assert_forbidden, assert_problem_type, assert_user_view, backend_tests,
    problem_fields, registration,
};
use serde_json::{Value, json};

const REGISTER: &str = "/api/v1/auth/register";

/// Asserts that `username` is still free: registering it properly now succeeds.
async fn assert_username_free(app: &TestApp, username: &str) {
    let response = app.register(username, "patient").await;
    assert_eq!(
        response.status(),
        201,
        "{username} should still be free after the refused registration"
    );
}

fn fields(problem: &Value) -> BTreeSet<String> {
    problem_fields(problem).into_iter().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|&n| n.to_owned()).collect()
}

backend_tests! {
    async fn a_patient_is_active_at_once_and_can_sign_in(app: TestApp) {
        let response = app.register("pat.one", "patient").await;
        assert_eq!(response.status(), 201);
        let user: Value = response.json().await.unwrap();
        assert_user_view(&user);
        assert_eq!(user["username"], "pat.one");
        assert_eq!(user["full_name"], "Test pat.one");
        assert_eq!(user["email"], "pat.one@clinic.example");
        assert_eq!(user["role"], "patient");
        assert_eq!(user["status"], "active");

        let tokens = app.tokens("pat.one").await;
        let me: Value = app.me(&tokens.access_token).await.json().await.unwrap();
        assert_eq!(me, user, "the signed-in account is the registered one");
    }

    async fn the_email_address_is_optional(app: TestApp) {
        let mut without = registration("no.mail", "patient");
        without.as_object_mut().unwrap().remove("email");
        let response = app.post_json(REGISTER, None, &without).await;
        assert_eq!(response.status(), 201);
        let user: Value = response.json().await.unwrap();
        assert_user_view(&user);
        assert!(user["email"].is_null());

        let mut null = registration("null.mail", "patient");
        null["email"] = Value::Null;
        let response = app.post_json(REGISTER, None, &null).await;
        assert_eq!(response.status(), 201);
        let user: Value = response.json().await.unwrap();
        assert!(user["email"].is_null());
    }

    async fn staff_who_register_wait_for_approval_and_cannot_sign_in(app: TestApp) {
        for (username, role) in [
            ("doc.wait", "doctor"),
            ("sec.wait", "secretary"),
            ("lab.wait", "laboratory"),
        ] {
            let response = app.register(username, role).await;
            assert_eq!(response.status(), 201, "{role} registration");
            let user: Value = response.json().await.unwrap();
            assert_user_view(&user);
            assert_eq!(user["role"], role);
            assert_eq!(user["status"], "pending", "a self-registered {role} waits");

            let refused = assert_forbidden(app.login(username, PASSWORD).await).await;
            let detail = refused["detail"].as_str().unwrap_or_default();
            assert!(
                detail.contains("approval"),
                "the refusal says why: {refused}"
            );
        }
        // The OAuth password grant refuses them too.
        let refused = carehub_tests::assert_oauth_error(
            app.post_form(
                "/api/v1/auth/token",
                &[
                    ("grant_type", "password"),
                    ("username", "doc.wait"),
                    ("password", PASSWORD),
                ],
            )
            .await,
            "invalid_grant",
        )
        .await;
        assert!(
            refused["error_description"]
                .as_str()
                .unwrap()
                .contains("approval")
        );
    }

    async fn nobody_can_register_as_an_administrator(app: TestApp) {
        let refused = assert_forbidden(app.register("would.be.admin", "admin").await).await;
        assert!(
            refused["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("administrator")
        );
        assert_username_free(&app, "would.be.admin").await;
    }

    async fn a_taken_username_is_refused_whatever_its_case(app: TestApp) {
        let response = app.register("Alice", "patient").await;
        assert_eq!(response.status(), 201);
        let original: Value = response.json().await.unwrap();
        assert_eq!(
            original["username"], "alice",
            "usernames are kept lowercase"
        );

        for (attempt, role) in [
            ("alice", "patient"),
            ("ALICE", "doctor"),
            ("Alice", "patient"),
        ] {
            let body = json!({
                "username": attempt,
                "password": "another long passphrase 42",
                "full_name": "Impostor",
                "email": "impostor@elsewhere.example",
                "role": role,
            });
            let refused =
                assert_problem_type(app.post_json(REGISTER, None, &body).await, 409, "conflict")
                    .await;
            assert!(
                refused["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("taken")
            );
        }

        // The account is the original one: its password still works, the impostor's does not.
        let impostor = app.login("alice", "another long passphrase 42").await;
        assert_eq!(impostor.status(), 401);
        let tokens = app.tokens("ALICE").await;
        let me: Value = app.me(&tokens.access_token).await.json().await.unwrap();
        assert_eq!(me, original);

        // And the other way round: lowercase first, then another case.
        assert_eq!(app.register("bob.b", "patient").await.status(), 201);
        assert_problem_type(app.register("BOB.B", "patient").await, 409, "conflict").await;
    }

    async fn every_invalid_field_is_listed_by_name(app: TestApp) {
        let body = json!({
            "username": "a",
            "password": "short",
            "full_name": "   ",
            "email": "not-an-address",
            "role": "root",
        });
        let problem = assert_problem_type(
            app.post_json(REGISTER, None, &body).await,
            422,
            "validation",
        )
        .await;
        assert_eq!(
            fields(&problem),
            set(&["username", "password", "full_name", "email", "role"]),
            "every invalid field is named: {problem}"
        );
        for error in problem["errors"].as_array().unwrap() {
            assert!(
                !error["message"].as_str().unwrap_or_default().is_empty(),
                "{error}"
            );
        }
    }

    async fn every_missing_required_field_is_listed_by_name(app: TestApp) {
        let problem = assert_problem_type(
            app.post_json(REGISTER, None, &json!({})).await,
            422,
            "validation",
        )
        .await;
        assert_eq!(
            fields(&problem),
            set(&["username", "password", "full_name", "role"]),
            "every missing field is named: {problem}"
        );

        // Missing and invalid fields together are all listed too.
        let body = json!({ "username": "ok.name", "password": "short", "email": "nope" });
        let problem = assert_problem_type(
            app.post_json(REGISTER, None, &body).await,
            422,
            "validation",
        )
        .await;
        assert_eq!(
            fields(&problem),
            set(&["password", "full_name", "email", "role"]),
            "every missing or invalid field is named: {problem}"
        );
        assert_username_free(&app, "ok.name").await;
    }

    async fn a_field_of_the_wrong_type_is_named(app: TestApp) {
        let mut body = registration("typed.name", "patient");
        body["full_name"] = json!(42);
        let problem = assert_problem_type(
            app.post_json(REGISTER, None, &body).await,
            422,
            "validation",
        )
        .await;
        assert_eq!(problem_fields(&problem), vec!["full_name"]);
        assert_username_free(&app, "typed.name").await;
    }

    async fn usernames_must_be_three_to_thirty_two_allowed_characters(app: TestApp) {
        let too_long = "x".repeat(33);
        for bad in [
            "ab",
            too_long.as_str(),
            "with space",
            "émile",
            "semi;colon",
            "at@sign",
        ] {
            let mut body = registration(bad, "patient");
            body["email"] = json!("someone@clinic.example");
            let problem = assert_problem_type(
                app.post_json(REGISTER, None, &body).await,
                422,
                "validation",
            )
            .await;
            assert_eq!(
                problem_fields(&problem),
                vec!["username"],
                "{bad:?}: {problem}"
            );
        }
        // The limits themselves are fine.
        let longest = format!("{}.9", "y".repeat(30));
        assert_eq!(app.register("a.b", "patient").await.status(), 201);
        assert_eq!(app.register(&longest, "patient").await.status(), 201);
    }

    async fn weak_passwords_are_refused_on_the_password_field(app: TestApp) {
        let too_long = "p".repeat(129);
        for weak in ["eleven char", too_long.as_str(), "my-CAROL.K-secret-1"] {
            let mut body = registration("carol.k", "patient");
            body["password"] = json!(weak);
            let problem = assert_problem_type(
                app.post_json(REGISTER, None, &body).await,
                422,
                "validation",
            )
            .await;
            assert_eq!(
                problem_fields(&problem),
                vec!["password"],
                "{weak:?}: {problem}"
            );
        }
        assert_username_free(&app, "carol.k").await;
    }

    async fn passwords_of_twelve_and_of_128_characters_are_accepted(app: TestApp) {
        let longest = "q".repeat(128);
        for (username, password) in [
            ("twelve.chars", "twelve chars"),
            ("long.pass", longest.as_str()),
        ] {
            let mut body = registration(username, "patient");
            body["password"] = json!(password);
            let response = app.post_json(REGISTER, None, &body).await;
            assert_eq!(response.status(), 201, "{password:?}");
            assert_eq!(
                app.login(username, password).await.status(),
                200,
                "{password:?} signs in"
            );
        }
    }

    async fn a_body_that_is_not_json_is_unsupported(app: TestApp) {
        let json_text = registration("not.json", "patient").to_string();
        for content_type in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            None,
        ] {
            let mut request = app.client.post(app.url(REGISTER)).body(json_text.clone());
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let response = request.send().await.unwrap();
            assert_problem_type(response, 415, "unsupported-media-type").await;
        }
        assert_username_free(&app, "not.json").await;
    }

    async fn malformed_json_is_a_bad_request(app: TestApp) {
        let valid = registration("bad.json", "patient").to_string();
        for body in [
            r#"{"username": "bad.json", "#.to_owned(),
            format!("{valid} trailing"),
            "not json at all".to_owned(),
        ] {
            let response = app
                .client
                .post(app.url(REGISTER))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_problem_type(response, 400, "bad-request").await;
        }
        assert_username_free(&app, "bad.json").await;
    }
}
