//! The signed-in user (`GET /api/v1/users/me`) and the doctor directory (`GET /api/v1/doctors`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use carehub_tests::{
    TestApp, assert_no_secrets, assert_problem_type, assert_unauthorized, assert_user_view,
    backend_tests, id_of,
};
use serde_json::{Value, json};
use uuid::Uuid;

const DOCTORS: &str = "/api/v1/doctors";

/// Every active doctor in the directory, read page by page, as `(id, full_name)`.
async fn directory(app: &TestApp, token: &str, limit: u32) -> Vec<(Uuid, String)> {
    let doctors = app.all_pages(DOCTORS, token, "", limit).await;
    doctors
        .iter()
        .map(|doctor| {
            let keys: BTreeSet<&str> = doctor
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                keys,
                BTreeSet::from([
                    "id",
                    "full_name",
                    "specializations",
                    "bio",
                    "appointment_minutes"
                ]),
                "a doctor shows their public profile, nothing of their account: {doctor}"
            );
            assert_no_secrets(doctor);
            (
                id_of(doctor),
                doctor["full_name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

backend_tests! {
    async fn me_shows_the_callers_own_account_without_secrets(app: TestApp) {
        let registered: Value = app
            .register("pat.me", "patient")
            .await
            .json()
            .await
            .unwrap();
        let tokens = app.tokens("pat.me").await;
        let response = app.me(&tokens.access_token).await;
        assert_eq!(response.status(), 200);
        let me: Value = response.json().await.unwrap();
        assert_user_view(&me);
        assert_eq!(me, registered);

        let admin = app.admin("root.admin").await;
        let me: Value = app.me(&admin.access_token).await.json().await.unwrap();
        assert_user_view(&me);
        assert_eq!(me["username"], "root.admin");
        assert_eq!(me["role"], "admin");
        assert_eq!(me["status"], "active");
        assert_ne!(id_of(&me), id_of(&registered));
    }

    async fn me_requires_an_access_token(app: TestApp) {
        assert_unauthorized(app.get("/api/v1/users/me", None).await).await;
    }

    async fn the_doctor_directory_lists_only_active_doctors(app: TestApp) {
        let admin = app.admin("root.admin").await;
        let token = &admin.access_token;
        let active = app.create_staff(token, "doc.active", "doctor").await;
        let waiting: Value = app
            .register("doc.waiting", "doctor")
            .await
            .json()
            .await
            .unwrap();
        let suspended = app.create_staff(token, "doc.suspended", "doctor").await;
        app.update_user(token, id_of(&suspended), &json!({ "status": "suspended" }))
            .await;
        app.create_staff(token, "sec.active", "secretary").await;
        let (_, patient) = app.active_user("pat.looking", "patient", token).await;

        let expected = vec![(id_of(&active), "Test doc.active".to_owned())];
        assert_eq!(directory(&app, &patient.access_token, 50).await, expected);

        // Approval adds a doctor; suspension removes one.
        assert_eq!(
            app.post_json(
                &format!("/api/v1/admin/users/{}/approve", id_of(&waiting)),
                Some(token),
                &json!({})
            )
            .await
            .status(),
            200
        );
        app.update_user(token, id_of(&active), &json!({ "status": "suspended" }))
            .await;
        assert_eq!(
            directory(&app, &patient.access_token, 50).await,
            vec![(id_of(&waiting), "Test doc.waiting".to_owned())]
        );

        // A doctor moved to another staff role leaves; one renamed shows the new name.
        app.update_user(
            token,
            id_of(&suspended),
            &json!({ "status": "active", "full_name": "Dr. Back" }),
        )
        .await;
        app.update_user(token, id_of(&waiting), &json!({ "role": "laboratory" }))
            .await;
        assert_eq!(
            directory(&app, &patient.access_token, 50).await,
            vec![(id_of(&suspended), "Dr. Back".to_owned())]
        );
    }

    async fn every_signed_in_role_may_read_the_doctor_directory(app: TestApp) {
        let admin = app.admin("root.admin").await;
        let doctor = app
            .create_staff(&admin.access_token, "doc.listed", "doctor")
            .await;
        let mut tokens = vec![admin.clone(), app.tokens("doc.listed").await];
        for (username, role) in [
            ("pat.reader", "patient"),
            ("sec.reader", "secretary"),
            ("lab.reader", "laboratory"),
        ] {
            tokens.push(app.active_user(username, role, &admin.access_token).await.1);
        }
        for caller in &tokens {
            let listed = directory(&app, &caller.access_token, 10).await;
            assert_eq!(listed, vec![(id_of(&doctor), "Test doc.listed".to_owned())]);
        }
    }

    async fn anonymous_callers_cannot_read_the_doctor_directory(app: TestApp) {
        assert_unauthorized(app.get(DOCTORS, None).await).await;
        assert_unauthorized(app.get(DOCTORS, Some("not-a-token")).await).await;
    }

    async fn the_doctor_directory_pages_with_a_cursor(app: TestApp) {
        let admin = app.admin("root.admin").await;
        let mut expected = Vec::new();
        for username in ["doc.a", "doc.b", "doc.c"] {
            let doctor = app
                .create_staff(&admin.access_token, username, "doctor")
                .await;
            expected.push((id_of(&doctor), format!("Test {username}")));
        }
        for limit in [1, 2, 3, 100] {
            assert_eq!(
                directory(&app, &admin.access_token, limit).await,
                expected,
                "limit {limit}"
            );
        }
        let token = Some(admin.access_token.as_str());
        for query in ["limit=0", "limit=101", "cursor=bogus", "cursor=AAAA"] {
            assert_problem_type(
                app.get(&format!("{DOCTORS}?{query}"), token).await,
                400,
                "bad-request",
            )
            .await;
        }
    }
}
