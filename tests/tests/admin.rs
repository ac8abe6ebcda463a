//! Account administration under `/api/v1/admin`: listing with filters and cursors, creating
//! staff, approving, changing accounts, and refusing everyone who is not an administrator.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use carehub_tests::{
    PASSWORD, TestApp, assert_forbidden, assert_problem_type, assert_unauthorized,
    assert_user_view, backend_tests, id_of, problem_fields, registration,
};
use serde_json::{Value, json};
use uuid::Uuid;

const USERS: &str = "/api/v1/admin/users";

fn approve_path(id: impl std::fmt::Display) -> String {
    format!("{USERS}/{id}/approve")
}

fn user_path(id: impl std::fmt::Display) -> String {
    format!("{USERS}/{id}")
}

fn ids(users: &[Value]) -> Vec<Uuid> {
    users.iter().map(id_of).collect()
}

fn usernames(users: &[Value]) -> BTreeSet<String> {
    users
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|&n| n.to_owned()).collect()
}

/// Registers a staff member who then waits for approval; returns their id.
async fn pending(app: &TestApp, username: &str, role: &str) -> Uuid {
    let response = app.register(username, role).await;
    assert_eq!(response.status(), 201);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["status"], "pending");
    id_of(&user)
}

backend_tests! {
    async fn an_administrator_reads_every_user_once_across_pages(app: TestApp) {
        let admin = app.admin("root.admin").await;
        let admin_user: Value = app.me(&admin.access_token).await.json().await.unwrap();
        let mut created = vec![admin_user];
        for (username, role) in [
            ("doc.one", "doctor"),
            ("sec.one", "secretary"),
            ("lab.one", "laboratory"),
        ] {
            created.push(app.create_staff(&admin.access_token, username, role).await);
        }
        let patient: Value = app
            .register("pat.one", "patient")
            .await
            .json()
            .await
            .unwrap();
        created.push(patient);
        let pending_id = pending(&app, "doc.two", "doctor").await;
        let expected = ids(&created)
            .into_iter()
            .chain([pending_id])
            .collect::<Vec<_>>();
        assert_eq!(expected.len(), 6);

        // Every page size reads every user exactly once, in creation (id) order; a page size
        // that divides the total ends without an empty page.
        for limit in [1, 2, 4, 5, 6, 100] {
            let users = app.all_users(&admin.access_token, "", limit).await;
            assert_eq!(ids(&users), expected, "limit {limit}");
            for user in &users {
                assert_user_view(user);
            }
        }
        let page: Value = app
            .get(USERS, Some(&admin.access_token))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            page["items"].as_array().unwrap().len(),
            6,
            "the default page holds 50"
        );
        assert!(page["next_cursor"].is_null());

        let first: Value = app
            .get(&format!("{USERS}?limit=2"), Some(&admin.access_token))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(ids(first["items"].as_array().unwrap()), expected[..2]);
        assert!(first["next_cursor"].is_string());
    }

    async fn the_user_list_filters_by_role_and_status(app: TestApp) {
        let admin = app.admin("root.admin").await;
        let doc_active = app
            .create_staff(&admin.access_token, "doc.active", "doctor")
            .await;
        pending(&app, "doc.waiting", "doctor").await;
        pending(&app, "lab.waiting", "laboratory").await;
        let sec = app
            .create_staff(&admin.access_token, "sec.gone", "secretary")
            .await;
        app.update_user(
            &admin.access_token,
            id_of(&sec),
            &json!({ "status": "suspended" }),
        )
        .await;
        assert_eq!(app.register("pat.one", "patient").await.status(), 201);
        let token = &admin.access_token;

        let doctors = app.all_users(token, "role=doctor", 1).await;
        assert_eq!(usernames(&doctors), set(&["doc.active", "doc.waiting"]));
        let waiting = app.all_users(token, "status=pending", 1).await;
        assert_eq!(usernames(&waiting), set(&["doc.waiting", "lab.waiting"]));
        let active_doctors = app.all_users(token, "role=doctor&status=active", 100).await;
        assert_eq!(ids(&active_doctors), vec![id_of(&doc_active)]);
        let suspended = app.all_users(token, "status=suspended", 100).await;
        assert_eq!(usernames(&suspended), set(&["sec.gone"]));
        let admins = app.all_users(token, "role=admin", 100).await;
        assert_eq!(usernames(&admins), set(&["root.admin"]));
        let patients = app
            .all_users(token, "role=patient&status=pending", 100)
            .await;
        assert!(patients.is_empty());
    }

    async fn invalid_list_parameters_are_bad_requests(app: TestApp) {
        let admin = app.admin("root.admin").await;
        let token = Some(admin.access_token.as_str());
        for query in [
            "cursor=not-a-cursor",
            "cursor=AAAA",
            "cursor=",
            "limit=0",
            "limit=101",
            "limit=-1",
            "limit=many",
            "role=root",
            "status=gone",
        ] {
            let response = app.get(&format!("{USERS}?{query}"), token).await;
            assert_problem_type(response, 400, "bad-request").await;
        }
        for query in ["limit=1", "limit=100"] {
            assert_eq!(
                app.get(&format!("{USERS}?{query}"), token).await.status(),
                200,
                "{query}"
            );
        }
    }

    async fn an_administrator_creates_active_staff_who_can_sign_in_at_once(app: TestApp) {
        let admin = app.admin("root.admin").await;
        for (username, role) in [
            ("new.doctor", "doctor"),
            ("new.secretary", "secretary"),
            ("new.lab", "laboratory"),
            ("new.admin", "admin"),
        ] {
            let response = app
                .post_json(
                    USERS,
                    Some(&admin.access_token),
                    &registration(username, role),
                )
                .await;
            assert_eq!(response.status(), 201, "{role}");
            let user: Value = response.json().await.unwrap();
            assert_user_view(&user);
            assert_eq!(user["username"], username);
            assert_eq!(user["role"], role);
            assert_eq!(user["status"], "active");
            assert_eq!(
                app.user_by_id(&admin.access_token, id_of(&user)).await,
                user
            );
        }
        let doctor = app.tokens("new.doctor").await;
        assert_eq!(app.me(&doctor.access_token).await.status(), 200);
        let new_admin = app.tokens("new.admin").await;
        assert_eq!(
            app.get(USERS, Some(&new_admin.access_token)).await.status(),
            200
        );
    }

    async fn administrators_cannot_create_patients(app: TestApp) {
        let admin = app.admin("root.admin").await;
        let response = app
            .post_json(
                USERS,
                Some(&admin.access_token),
                &registration("new.patient", "patient"),
            )
            .await;
        let problem = assert_problem_type(response, 422, "validation").await;
        assert_eq!(problem_fields(&problem), vec!["role"]);
        assert!(
            !app.username_exists(&admin.access_token, "new.patient")
                .await
        );
    }

    async fn creating_staff_refuses_invalid_fields_and_taken_usernames(app: TestApp) {
        let admin = app.admin("root.admin").await;
        let token = Some(admin.access_token.as_str());
        let body = json!({
            "username": "x",
            "password": "short",
            "full_name": "",
            "email": "nope",
            "role": "janitor",
        });
        let problem =
            assert_problem_type(app.post_json(USERS, token, &body).await, 422, "validation").await;
        let fields: BTreeSet<String> = problem_fields(&problem).into_iter().collect();
        assert_eq!(
            fields,
            set(&["username", "password", "full_name", "email", "role"])
        );

        let original = app
            .create_staff(&admin.access_token, "taken.name", "doctor")
            .await;
        for attempt in ["taken.name", "TAKEN.NAME"] {
            let mut body = registration(attempt, "secretary");
            body["full_name"] = json!("Someone Else");
            assert_problem_type(app.post_json(USERS, token, &body).await, 409, "conflict").await;
        }
        assert_problem_type(
            app.post_json(USERS, token, &registration("Root.Admin", "admin"))
                .await,
            409,
            "conflict",
        )
        .await;
        assert_eq!(
            app.user_by_id(&admin.access_token, id_of(&original)).await,
            original
        );
        assert_eq!(app.all_users(&admin.access_token, "", 100).await.len(), 2);
    }

    async fn approving_a_pending_account_activates_it(app: TestApp) {
        let admin = app.admin("root.admin").await;
        let id = pending(&app, "doc.approve", "doctor").await;
        let response = app
            .post_json(&approve_path(id), Some(&admin.access_token), &json!({}))
            .await;
        assert_eq!(response.status(), 200);
        let user: Value = response.json().await.unwrap();
        assert_user_view(&user);
        assert_eq!(id_of(&user), id);
        assert_eq!(user["status"], "active");
        assert_eq!(user["role"], "doctor");
        assert_eq!(app.user_by_id(&admin.access_token, id).await, user);
        let tokens = app.tokens("doc.approve").await;
        let me: Value = app.me(&tokens.access_token).await.json().await.unwrap();
        assert_eq!(me, user);
    }

    async fn only_pending_accounts_can_be_approved(app: TestApp) {
        let admin = app.admin("root.admin").await;
        let token = Some(admin.access_token.as_str());
        let approved = pending(&app, "doc.twice", "doctor").await;
        assert_eq!(
            app.post_json(&approve_path(approved), token, &json!({}))
                .await
                .status(),
            200
        );
        let patient: Value = app
            .register("pat.active", "patient")
            .await
            .json()
            .await
            .unwrap();
        let suspended = app
            .create_staff(&admin.access_token, "sec.suspended", "secretary")
            .await;
        app.update_user(
            &admin.access_token,
            id_of(&suspended),
            &json!({ "status": "suspended" }),
        )
        .await;

        for (id, status) in [
            (approved, "active"),
            (id_of(&patient), "active"),
            (id_of(&suspended), "suspended"),
            (
                id_of(
                    &app.me(&admin.access_token)
                        .await
                        .json::<Value>()
                        .await
                        .unwrap(),
                ),
                "active",
            ),
        ] {
            let before = app.user_by_id(&admin.access_token, id).await;
            let problem = assert_problem_type(
                app.post_json(&approve_path(id), token, &json!({})).await,
                409,
                "conflict",
            )
            .await;
            assert!(
                problem["detail"].as_str().unwrap().contains("pending"),
                "{problem}"
            );
            let after = app.user_by_id(&admin.access_token, id).await;
            assert_eq!(after, before, "a refused approval changes nothing");
            assert_eq!(after["status"], status);
        }
    }

    async fn unknown_and_malformed_ids_are_not_found(app: TestApp) {
        let admin = app.admin("root.admin").await;
        let token = Some(admin.access_token.as_str());
        let unknown = Uuid::now_v7();
        for id in [
            unknown.to_string(),
            "not-a-uuid".to_owned(),
            "42".to_owned(),
        ] {
            assert_problem_type(
                app.post_json(&approve_path(&id), token, &json!({})).await,
                404,
                "not-found",
            )
            .await;
            assert_problem_type(
                app.patch_json(&user_path(&id), token, &json!({ "full_name": "Nobody" }))
                    .await,
                404,
                "not-found",
            )
            .await;
        }
        assert_eq!(app.all_users(&admin.access_token, "", 100).await.len(), 1);
    }

    async fn an_administrator_changes_a_users_name_email_and_role(app: TestApp) {
        let admin = app.admin("root.admin").await;
        let token = &admin.access_token;
        let original = app.create_staff(token, "doc.change", "doctor").await;
        let id = id_of(&original);
        let doctor = app.tokens("doc.change").await;

        let renamed = app
            .update_user(token, id, &json!({ "full_name": "  Dr. Gregory House " }))
            .await;
        assert_user_view(&renamed);
        assert_eq!(
            renamed["full_name"], "Dr. Gregory House",
            "names are trimmed"
        );
        assert_eq!(renamed["email"], original["email"], "an absent email stays");
        assert_eq!(renamed["role"], "doctor");

        let readdressed = app
            .update_user(token, id, &json!({ "email": "house@clinic.example" }))
            .await;
        assert_eq!(readdressed["email"], "house@clinic.example");
        assert_eq!(readdressed["full_name"], "Dr. Gregory House");

        let cleared = app.update_user(token, id, &json!({ "email": null })).await;
        assert!(cleared["email"].is_null(), "null clears the address");

        let moved = app
            .update_user(token, id, &json!({ "role": "secretary" }))
            .await;
        assert_eq!(moved["role"], "secretary");
        assert_eq!(moved["status"], "active");

        let unchanged = app.update_user(token, id, &json!({})).await;
        assert_eq!(unchanged, moved);
        assert_eq!(app.user_by_id(token, id).await, moved);
        // The account's own view follows, with its existing token.
        let me: Value = app.me(&doctor.access_token).await.json().await.unwrap();
        assert_eq!(me, moved);
        for field in ["id", "username", "created_at"] {
            assert_eq!(moved[field], original[field]);
        }
    }

    async fn invalid_changes_are_all_listed_and_change_nothing(app: TestApp) {
        let admin = app.admin("root.admin").await;
        let original = app
            .create_staff(&admin.access_token, "doc.invalid", "doctor")
            .await;
        let id = id_of(&original);
        let body =
            json!({ "full_name": " ", "email": "nope", "role": "root", "status": "pending" });
        let response = app
            .patch_json(&user_path(id), Some(&admin.access_token), &body)
            .await;
        let problem = assert_problem_type(response, 422, "validation").await;
        let fields: BTreeSet<String> = problem_fields(&problem).into_iter().collect();
        assert_eq!(fields, set(&["full_name", "email", "role", "status"]));

        let response = app
            .patch_json(
                &user_path(id),
                Some(&admin.access_token),
                &json!({ "status": 3 }),
            )
            .await;
        let problem = assert_problem_type(response, 422, "validation").await;
        assert_eq!(problem_fields(&problem), vec!["status"]);
        assert_eq!(app.user_by_id(&admin.access_token, id).await, original);
    }

    async fn an_account_cannot_be_set_back_to_pending(app: TestApp) {
        let admin = app.admin("root.admin").await;
        let original = app
            .create_staff(&admin.access_token, "lab.active", "laboratory")
            .await;
        let id = id_of(&original);
        let response = app
            .patch_json(
                &user_path(id),
                Some(&admin.access_token),
                &json!({ "status": "pending" }),
            )
            .await;
        let problem = assert_problem_type(response, 422, "validation").await;
        assert_eq!(problem_fields(&problem), vec!["status"]);
        assert_eq!(app.user_by_id(&admin.access_token, id).await, original);
        app.tokens("lab.active").await;
    }

    async fn an_account_cannot_move_between_patient_and_staff(app: TestApp) {
        let admin = app.admin("root.admin").await;
        let token = Some(admin.access_token.as_str());
        let patient: Value = app
            .register("pat.stays", "patient")
            .await
            .json()
            .await
            .unwrap();
        let doctor = app
            .create_staff(&admin.access_token, "doc.stays", "doctor")
            .await;
        for (user, role) in [
            (&patient, "doctor"),
            (&patient, "admin"),
            (&doctor, "patient"),
        ] {
            let response = app
                .patch_json(
                    &user_path(id_of(user)),
                    token,
                    &json!({ "role": role, "full_name": "Changed" }),
                )
                .await;
            let problem = assert_problem_type(response, 422, "validation").await;
            assert_eq!(problem_fields(&problem), vec!["role"], "{role}");
            assert_eq!(
                &app.user_by_id(&admin.access_token, id_of(user)).await,
                user,
                "nothing changed"
            );
        }
    }

    async fn an_administrator_cannot_change_their_own_role_or_status(app: TestApp) {
        let admin = app.admin("root.admin").await;
        let me: Value = app.me(&admin.access_token).await.json().await.unwrap();
        let id = id_of(&me);
        for change in [
            json!({ "role": "secretary" }),
            json!({ "status": "suspended" }),
            json!({ "role": "doctor", "full_name": "Not Me" }),
        ] {
            let response = app
                .patch_json(&user_path(id), Some(&admin.access_token), &change)
                .await;
            let problem = assert_problem_type(response, 409, "conflict").await;
            assert!(
                problem["detail"].as_str().unwrap().contains("own"),
                "{problem}"
            );
            assert_eq!(
                app.user_by_id(&admin.access_token, id).await,
                me,
                "{change} changed nothing"
            );
        }
        assert_eq!(
            app.get(USERS, Some(&admin.access_token)).await.status(),
            200,
            "still an administrator"
        );

        // Their own name and address are theirs to change; restating the role changes nothing.
        let renamed = app
            .update_user(
                &admin.access_token,
                id,
                &json!({ "full_name": "Head Admin", "role": "admin", "status": "active" }),
            )
            .await;
        assert_eq!(renamed["full_name"], "Head Admin");
        assert_eq!(renamed["role"], "admin");

        // Another administrator may change them.
        app.create_staff(&admin.access_token, "second.admin", "admin")
            .await;
        let second = app.tokens("second.admin").await;
        let demoted = app
            .update_user(&second.access_token, id, &json!({ "role": "secretary" }))
            .await;
        assert_eq!(demoted["role"], "secretary");
        assert_forbidden(app.get(USERS, Some(&admin.access_token)).await).await;
    }

    async fn suspension_and_reactivation_decide_who_may_sign_in(app: TestApp) {
        let admin = app.admin("root.admin").await;
        let sec = app
            .create_staff(&admin.access_token, "sec.toggle", "secretary")
            .await;
        let id = id_of(&sec);
        let suspended = app
            .update_user(&admin.access_token, id, &json!({ "status": "suspended" }))
            .await;
        assert_eq!(suspended["status"], "suspended");
        assert_forbidden(app.login("sec.toggle", PASSWORD).await).await;

        let active = app
            .update_user(&admin.access_token, id, &json!({ "status": "active" }))
            .await;
        assert_eq!(active["status"], "active");
        assert_eq!(active, sec, "back as it was");
        app.tokens("sec.toggle").await;
    }

    async fn patients_and_staff_are_forbidden_every_admin_route(app: TestApp) {
        let admin = app.admin("root.admin").await;
        let waiting = pending(&app, "doc.waiting", "doctor").await;
        let before = app.all_users(&admin.access_token, "", 100).await;
        let mut callers = vec![
            app.active_user("pat.caller", "patient", &admin.access_token)
                .await
                .1,
        ];
        for (username, role) in [
            ("doc.caller", "doctor"),
            ("sec.caller", "secretary"),
            ("lab.caller", "laboratory"),
        ] {
            app.create_staff(&admin.access_token, username, role).await;
            callers.push(app.tokens(username).await);
        }
        let callers_count = before.len() + callers.len();

        for caller in &callers {
            let token = Some(caller.access_token.as_str());
            assert_forbidden(app.get(USERS, token).await).await;
            assert_forbidden(
                app.get(&format!("{USERS}?role=doctor&limit=1"), token)
                    .await,
            )
            .await;
            assert_forbidden(
                app.post_json(USERS, token, &registration("sneaky.admin", "admin"))
                    .await,
            )
            .await;
            assert_forbidden(
                app.post_json(&approve_path(waiting), token, &json!({}))
                    .await,
            )
            .await;
            assert_forbidden(
                app.post_json(&approve_path(Uuid::now_v7()), token, &json!({}))
                    .await,
            )
            .await;
            assert_forbidden(
                app.patch_json(
                    &user_path(waiting),
                    token,
                    &json!({ "full_name": "Hacked", "role": "admin" }),
                )
                .await,
            )
            .await;
        }

        let after = app.all_users(&admin.access_token, "", 100).await;
        assert_eq!(after.len(), callers_count, "no account was created");
        assert!(
            !app.username_exists(&admin.access_token, "sneaky.admin")
                .await
        );
        let still_waiting = app.user_by_id(&admin.access_token, waiting).await;
        assert_eq!(
            &still_waiting,
            before.iter().find(|u| id_of(u) == waiting).unwrap()
        );
        assert_eq!(still_waiting["status"], "pending");
    }

    async fn non_administrators_are_forbidden_before_their_request_is_examined(app: TestApp) {
        let admin = app.admin("root.admin").await;
        let (_, patient) = app
            .active_user("pat.probe", "patient", &admin.access_token)
            .await;
        let token = Some(patient.access_token.as_str());
        let waiting = pending(&app, "doc.waiting", "doctor").await;
        // Whatever they send, the answer is that they may not: nothing about the payload.
        let answers = [
            (
                "POST {} to /admin/users",
                app.post_json(USERS, token, &json!({})).await,
            ),
            (
                "POST invalid fields to /admin/users",
                app.post_json(USERS, token, &registration("bad name!", "patient"))
                    .await,
            ),
            (
                "PATCH status pending",
                app.patch_json(&user_path(waiting), token, &json!({ "status": "pending" }))
                    .await,
            ),
            (
                "GET limit=0",
                app.get(&format!("{USERS}?limit=0"), token).await,
            ),
            (
                "GET cursor=bogus",
                app.get(&format!("{USERS}?cursor=bogus"), token).await,
            ),
        ];
        let statuses: Vec<(&str, u16)> = answers
            .iter()
            .map(|(request, response)| (*request, response.status().as_u16()))
            .collect();
        assert!(
            statuses.iter().all(|(_, status)| *status == 403),
            "every request of a non-administrator is forbidden: {statuses:?}"
        );
        for (_, response) in answers {
            assert_forbidden(response).await;
        }
        assert_eq!(
            app.user_by_id(&admin.access_token, waiting).await["status"],
            "pending"
        );
    }

    async fn anonymous_callers_are_challenged_on_every_admin_route(app: TestApp) {
        let admin = app.admin("root.admin").await;
        let waiting = pending(&app, "doc.waiting", "doctor").await;
        let before = app.all_users(&admin.access_token, "", 100).await;

        assert_unauthorized(app.get(USERS, None).await).await;
        assert_unauthorized(
            app.post_json(USERS, None, &registration("anon.staff", "doctor"))
                .await,
        )
        .await;
        assert_unauthorized(
            app.post_json(&approve_path(waiting), None, &json!({}))
                .await,
        )
        .await;
        assert_unauthorized(
            app.patch_json(&user_path(waiting), None, &json!({ "status": "suspended" }))
                .await,
        )
        .await;
        assert_unauthorized(
            app.patch_json(&user_path("not-a-uuid"), None, &json!({}))
                .await,
        )
        .await;

        assert_eq!(
            app.all_users(&admin.access_token, "", 100).await,
            before,
            "nothing changed"
        );
    }
}
