//! Notifications over REST: each user lists their own, in id order, after an id, unread only,
//! a page at a time; marks one or all read; counts the unread. And the changes that notify:
//! a doctor added to a care team, every active administrator when the glass is broken.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};

use carehub_tests::clinic::{Body, Call, Clinic, Person, care_team_path, emergency_path};
use carehub_tests::ws::{NOTIFICATIONS, instant, keys};
use carehub_tests::{TestApp, assert_problem_type, assert_unauthorized, backend_tests, id_of};

fn ids(items: &[Value]) -> Vec<i64> {
    items.iter().map(|n| n["id"].as_i64().unwrap()).collect()
}

/// `GET /notifications?{query}` as `who`: the page's ids and `next_after`.
async fn page(app: &TestApp, who: &Person, query: &str) -> (Vec<i64>, Value) {
    let page = app.notification_page(&who.token, query).await;
    assert_eq!(keys(&page), ["items", "next_after"], "{page}");
    let items = page["items"].as_array().unwrap();
    for item in items {
        assert_notification_view(item);
    }
    (ids(items), page["next_after"].clone())
}

fn assert_notification_view(notification: &Value) {
    assert_eq!(
        keys(notification),
        ["created_at", "data", "id", "kind", "read_at"],
        "{notification}"
    );
    instant(&notification["created_at"]);
    if !notification["read_at"].is_null() {
        instant(&notification["read_at"]);
    }
    assert!(
        notification["data"]["title"]
            .as_str()
            .is_some_and(|t| !t.trim().is_empty()),
        "{notification}"
    );
}

/// `POST path` as `who` without a body.
async fn post(app: &TestApp, path: &str, who: &Person) -> reqwest::Response {
    app.call(
        &Call::new(reqwest::Method::POST, path, Body::Empty),
        who.token(),
    )
    .await
}

/// Makes `count` notifications for `clinic.outsider`: referrals to them from the doctor.
async fn referrals_to_outsider(app: &TestApp, clinic: &Clinic, count: usize) -> Vec<Value> {
    let mut sent = Vec::with_capacity(count);
    for _ in 0..count {
        sent.push(
            app.refer(&clinic.doctor, clinic.ann_record, clinic.outsider.id)
                .await,
        );
    }
    sent
}

/// The data of a notification without its title, for comparing ids.
fn data_ids(notification: &Value) -> Value {
    let mut data = notification["data"].clone();
    let object = data.as_object_mut().unwrap();
    object.remove("title");
    object.retain(|_, v| !v.is_null());
    data
}

backend_tests! {
    async fn notifications_are_listed_in_order_after_an_id_and_a_page_at_a_time(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let b = &clinic.outsider;
        assert_eq!(page(&app, b, "").await, (vec![], json!(null)));
        let sent = referrals_to_outsider(&app, &clinic, 5).await;

        let all = app.notification_page(&b.token, "").await;
        assert!(all["next_after"].is_null(), "fewer than the default limit: {all}");
        let items = all["items"].as_array().unwrap().clone();
        assert_eq!(ids(&items), vec![1, 2, 3, 4, 5]);
        for (item, referral) in items.iter().zip(&sent) {
            assert_notification_view(item);
            assert_eq!(item["kind"], "referral.received");
            assert!(item["read_at"].is_null());
            assert_eq!(
                data_ids(item),
                json!({
                    "referral_id": referral["id"],
                    "patient_id": clinic.ann_record,
                    "actor_id": clinic.doctor.id,
                })
            );
        }
        for pair in items.windows(2) {
            assert!(instant(&pair[0]["created_at"]) <= instant(&pair[1]["created_at"]));
        }

        assert_eq!(page(&app, b, "limit=2").await, (vec![1, 2], json!(2)));
        assert_eq!(page(&app, b, "after=2&limit=2").await, (vec![3, 4], json!(4)));
        assert_eq!(page(&app, b, "after=4&limit=2").await, (vec![5], json!(null)));
        assert_eq!(page(&app, b, "after=3&limit=2").await, (vec![4, 5], json!(5)));
        assert_eq!(page(&app, b, "after=5&limit=2").await, (vec![], json!(null)));
        assert_eq!(page(&app, b, "after=0").await, (vec![1, 2, 3, 4, 5], json!(null)));
        assert_eq!(page(&app, b, "after=99").await, (vec![], json!(null)));
        assert_eq!(page(&app, b, "limit=500").await.0, vec![1, 2, 3, 4, 5]);
        assert_eq!(page(&app, b, "limit=1&unread=true").await, (vec![1], json!(1)));
        assert_eq!(
            app.notification_page(&b.token, "after=1&limit=1").await["items"][0],
            items[1]
        );

        for query in [
            "limit=0",
            "limit=501",
            "limit=-1",
            "limit=ten",
            "after=-1",
            "after=x",
            "after=1.5",
            "unread=maybe",
            "unread=1",
        ] {
            let response = app
                .get(&format!("{NOTIFICATIONS}?{query}"), b.token())
                .await;
            assert_problem_type(response, 400, "bad-request").await;
        }
    }

    async fn notifications_are_marked_read_one_by_one_or_all_at_once(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let b = &clinic.outsider;
        referrals_to_outsider(&app, &clinic, 5).await;
        assert_eq!(app.unread_count(&b.token).await, 5);

        let response = post(&app, &format!("{NOTIFICATIONS}/3/read"), b).await;
        assert_eq!(response.status(), 200);
        let read: Value = response.json().await.unwrap();
        assert_notification_view(&read);
        assert_eq!(read["id"], 3);
        let read_at = instant(&read["read_at"]);
        assert!(read_at >= instant(&read["created_at"]));
        let listed = app.notification_page(&b.token, "after=2&limit=1").await;
        assert_eq!(listed["items"][0], read);
        // Reading again keeps the first reading time.
        let again: Value = post(&app, &format!("{NOTIFICATIONS}/3/read"), b)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(again, read);

        assert_eq!(app.unread_count(&b.token).await, 4);
        assert_eq!(page(&app, b, "unread=true").await.0, vec![1, 2, 4, 5]);
        assert_eq!(page(&app, b, "unread=true&after=2").await.0, vec![4, 5]);
        assert_eq!(page(&app, b, "unread=false").await.0, vec![1, 2, 3, 4, 5]);

        for id in ["0", "6", "99"] {
            let response = post(&app, &format!("{NOTIFICATIONS}/{id}/read"), b).await;
            assert_problem_type(response, 404, "not-found").await;
        }
        for id in ["x", "1.5"] {
            let response = post(&app, &format!("{NOTIFICATIONS}/{id}/read"), b).await;
            assert_problem_type(response, 400, "bad-request").await;
        }
        assert_eq!(app.unread_count(&b.token).await, 4);

        let response = post(&app, &format!("{NOTIFICATIONS}/read-all"), b).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Value>().await.unwrap(), json!({ "marked": 4 }));
        assert_eq!(app.unread_count(&b.token).await, 0);
        assert!(page(&app, b, "unread=true").await.0.is_empty());
        let all = app.all_notifications(&b.token).await;
        assert_eq!(all.len(), 5);
        assert!(all.iter().all(|n| !n["read_at"].is_null()), "{all:?}");
        assert_eq!(all[2], read, "a notification read before keeps its time");
        let response = post(&app, &format!("{NOTIFICATIONS}/read-all"), b).await;
        assert_eq!(response.json::<Value>().await.unwrap(), json!({ "marked": 0 }));

        // New ones are unread.
        referrals_to_outsider(&app, &clinic, 1).await;
        assert_eq!(app.unread_count(&b.token).await, 1);
        assert_eq!(page(&app, b, "unread=true").await.0, vec![6]);
    }

    async fn each_user_sees_and_marks_only_their_own(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let (a, b) = (&clinic.doctor, &clinic.outsider);
        let sent = referrals_to_outsider(&app, &clinic, 2).await;
        app.change_referral(&b.token, id_of(&sent[0]), "accept", None)
            .await;
        // A has one notification (id 1), B two (ids 1 and 2).
        let a_all = app.all_notifications(&a.token).await;
        assert_eq!(ids(&a_all), vec![1]);
        assert_eq!(a_all[0]["kind"], "referral.accepted");
        let b_all = app.all_notifications(&b.token).await;
        assert_eq!(ids(&b_all), vec![1, 2]);
        assert!(b_all.iter().all(|n| n["kind"] == "referral.received"));

        // Marking A's number 1 leaves B's number 1 alone.
        let response = post(&app, &format!("{NOTIFICATIONS}/1/read"), a).await;
        assert_eq!(response.status(), 200);
        assert_eq!(app.unread_count(&a.token).await, 0);
        assert_eq!(app.unread_count(&b.token).await, 2);
        // Someone without notifications finds none of the others'.
        for who in [
            &clinic.secretary,
            &clinic.lab,
            &clinic.admin,
            &clinic.ann,
            &clinic.bob,
        ] {
            assert_eq!(page(&app, who, "").await, (vec![], json!(null)), "{}", who.username);
            assert_eq!(app.unread_count(&who.token).await, 0);
            let response = post(&app, &format!("{NOTIFICATIONS}/2/read"), who).await;
            assert_problem_type(response, 404, "not-found").await;
            let response = post(&app, &format!("{NOTIFICATIONS}/read-all"), who).await;
            assert_eq!(response.json::<Value>().await.unwrap(), json!({ "marked": 0 }));
        }
        let response = post(&app, &format!("{NOTIFICATIONS}/2/read"), a).await;
        assert_problem_type(response, 404, "not-found").await;
        assert_eq!(app.all_notifications(&b.token).await, b_all, "B's are untouched");
    }

    async fn notifications_need_a_valid_token(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        referrals_to_outsider(&app, &clinic, 1).await;
        let calls = [
            Call::get(NOTIFICATIONS),
            Call::get(format!("{NOTIFICATIONS}?after=0&unread=true&limit=5")),
            Call::get(format!("{NOTIFICATIONS}/unread-count")),
            Call::new(reqwest::Method::POST, format!("{NOTIFICATIONS}/1/read"), Body::Empty),
            Call::new(reqwest::Method::POST, format!("{NOTIFICATIONS}/read-all"), Body::Empty),
        ];
        for call in &calls {
            clinic.assert_needs_token(&app, call).await;
            assert_unauthorized(app.call(call, Some("not-a-token")).await).await;
        }
        // A signed-out token reads nothing more.
        let tokens = app.tokens(&clinic.outsider.username).await;
        assert_eq!(app.logout(&tokens.access_token, None).await.status(), 204);
        for call in &calls {
            assert_unauthorized(app.call(call, Some(&tokens.access_token)).await).await;
        }
        assert_eq!(app.unread_count(&clinic.outsider.token).await, 1);
    }

    async fn a_doctor_added_to_a_care_team_is_told(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let ann = clinic.ann_record;
        // The administrator adds a doctor.
        app.add_member(&clinic.admin.token, ann, clinic.outsider.id).await;
        let told = app.all_notifications(&clinic.outsider.token).await;
        assert_eq!(told.len(), 1, "{told:?}");
        assert_notification_view(&told[0]);
        assert_eq!(told[0]["id"], 1);
        assert_eq!(told[0]["kind"], "care_team.added");
        assert!(told[0]["read_at"].is_null());
        assert_eq!(
            data_ids(&told[0]),
            json!({ "patient_id": ann, "actor_id": clinic.admin.id })
        );
        assert!(!told[0]["data"].to_string().contains("Ann Archer"));

        // Adding them again is refused, and tells nobody anything.
        let response = app
            .post_json(
                &care_team_path(ann),
                clinic.admin.token(),
                &json!({ "doctor_id": clinic.outsider.id }),
            )
            .await;
        assert_problem_type(response, 409, "conflict").await;
        assert_eq!(app.all_notifications(&clinic.outsider.token).await, told);

        // A doctor on the team adds another.
        let newcomer = clinic.hire(&app, "dr.newcomer", "doctor").await;
        app.add_member(&clinic.doctor.token, ann, newcomer.id).await;
        let told = app.all_notifications(&newcomer.token).await;
        assert_eq!(told.len(), 1, "{told:?}");
        assert_eq!(told[0]["kind"], "care_team.added");
        assert_eq!(
            data_ids(&told[0]),
            json!({ "patient_id": ann, "actor_id": clinic.doctor.id })
        );

        // A doctor who registers a patient joins its team without being told of it.
        app.create_patient(&newcomer.token, &carehub_tests::clinic::patient_input("Eve Ede"))
            .await;
        assert_eq!(app.all_notifications(&newcomer.token).await, told);
        // Nobody else was told anything.
        for who in [&clinic.admin, &clinic.doctor, &clinic.secretary] {
            assert!(app.all_notifications(&who.token).await.is_empty(), "{}", who.username);
        }
    }

    async fn breaking_the_glass_tells_every_active_administrator(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let ann = clinic.ann_record;
        let second = app.admin("second.admin").await;
        let _third = app.admin("third.admin").await;
        let third_id = app
            .all_users(&clinic.admin.token, "role=admin", 100)
            .await
            .into_iter()
            .find(|u| u["username"] == "third.admin")
            .map(|u| id_of(&u))
            .unwrap();
        app.update_user(&clinic.admin.token, third_id, &json!({ "status": "suspended" }))
            .await;

        // A refused emergency access tells nobody.
        let response = app
            .post_json(
                &emergency_path(ann),
                clinic.secretary.token(),
                &json!({ "reason": carehub_tests::clinic::EMERGENCY_REASON }),
            )
            .await;
        assert_eq!(response.status(), 403);
        assert!(app.all_notifications(&clinic.admin.token).await.is_empty());

        let access = app.emergency_access(&clinic.outsider.token, ann).await;
        for token in [&clinic.admin.token, &second.access_token] {
            let told = app.all_notifications(token).await;
            assert_eq!(told.len(), 1, "{told:?}");
            assert_notification_view(&told[0]);
            assert_eq!(told[0]["id"], 1);
            assert_eq!(told[0]["kind"], "emergency_access.used");
            assert_eq!(
                data_ids(&told[0]),
                json!({
                    "patient_id": ann,
                    "actor_id": clinic.outsider.id,
                    "emergency_access_id": access["id"],
                })
            );
            let text = told[0]["data"].to_string();
            assert!(!text.contains("Ann Archer") && !text.contains("Unconscious"), "{text}");
        }
        // Nobody else: not the doctor, not the suspended administrator.
        for who in [&clinic.doctor, &clinic.outsider, &clinic.secretary, &clinic.ann] {
            assert!(app.all_notifications(&who.token).await.is_empty(), "{}", who.username);
        }
        app.update_user(&clinic.admin.token, third_id, &json!({ "status": "active" }))
            .await;
        let third = app.tokens("third.admin").await;
        assert!(app.all_notifications(&third.access_token).await.is_empty());

        // Each grant tells again, numbered on.
        app.emergency_access(&clinic.former.token, ann).await;
        for token in [&clinic.admin.token, &second.access_token] {
            let told = app.all_notifications(token).await;
            assert_eq!(ids(&told), vec![1, 2]);
            assert_eq!(told[1]["data"]["actor_id"], json!(clinic.former.id));
        }
        let told = app.all_notifications(&third.access_token).await;
        assert_eq!(ids(&told), vec![1], "the reactivated administrator is told again");
    }
}
