//! Messages from outside: a doctor and the patient talk, live over the socket with read
//! receipts; a referral's two doctors talk; every caller who must be refused is, and audited;
//! a doctor who leaves the care team loses the conversation from then on; an unread message
//! becomes a notification; and across two PostgreSQL instances with a disconnect in between,
//! nothing is lost and nothing comes twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use carehub_tests::clinic::{Call, Clinic, Person, member_path};
use carehub_tests::lab::{MULTIPART, Part, multipart, pdf, png, sha256_hex};
use carehub_tests::ws::{Credentials, HubSocket};
use carehub_tests::{
    Backend, TestApp, assert_problem_type, assert_unauthorized, backend_tests, backend_tests_with,
    header, problem_fields,
};

const CONVERSATIONS: &str = "/api/v1/conversations";

fn conversation_path(id: &str) -> String {
    format!("{CONVERSATIONS}/{id}")
}

fn messages_path(id: &str) -> String {
    format!("{CONVERSATIONS}/{id}/messages")
}

fn id_text(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

/// `who` starts a conversation about Ann with `others`, asserting a 201.
async fn start(app: &TestApp, clinic: &Clinic, who: &Person, others: &[Uuid]) -> Value {
    let response = app
        .post_json(
            CONVERSATIONS,
            who.token(),
            &json!({ "patient_id": clinic.ann_record, "participant_ids": others }),
        )
        .await;
    assert_eq!(response.status(), 201, "{}", who.username);
    response.json().await.unwrap()
}

/// `who` sends `body`, asserting a 201; returns the message.
async fn say(app: &TestApp, who: &Person, conversation: &str, body: &str) -> Value {
    let response = app
        .post_json(
            &messages_path(conversation),
            who.token(),
            &json!({ "body": body }),
        )
        .await;
    assert_eq!(response.status(), 201, "{} says {body}", who.username);
    response.json().await.unwrap()
}

/// The next frame, which must be a message event of `kind`.
async fn next_of(socket: &mut HubSocket, kind: &str) -> Value {
    let frame = socket.next_frame().await;
    assert_eq!(frame["type"], kind, "{frame}");
    frame
}

fn participants(conversation: &Value) -> Vec<Value> {
    conversation["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].clone())
        .collect()
}

/// The smallest JPEG a sniffer knows as one: its start and end markers.
fn jpeg() -> Vec<u8> {
    vec![
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00, 0x00,
        0x01, 0x00, 0x01, 0x00, 0x00, 0xFF, 0xD9,
    ]
}

fn attachments_path(conversation: &str) -> String {
    format!("{CONVERSATIONS}/{conversation}/attachments")
}

/// `parts` sent to the conversation's attachments as `token`.
async fn upload(
    app: &TestApp,
    token: Option<&str>,
    conversation: &str,
    parts: &[Part],
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(app.url(&attachments_path(conversation)))
        .header("content-type", MULTIPART)
        .body(multipart(parts));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

backend_tests! {
    async fn files_go_with_messages_and_only_participants_read_them(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let conversation = start(&app, &clinic, &clinic.doctor, &[]).await;
        let id = id_text(&conversation);
        let mut ann_socket = app.socket(&clinic.ann.token).await;

        let response = upload(&app, clinic.doctor.token(), &id, &[Part::file("ecg at home.pdf", pdf())]).await;
        assert_eq!(response.status(), 201);
        let request_id = header(&response, "x-request-id").unwrap();
        let file: Value = response.json().await.unwrap();
        assert!(file["message_id"].is_null(), "unsent: {file}");
        assert_eq!(file["name"], "ecg at home.pdf");
        assert_eq!(file["content_type"], "application/pdf");
        assert_eq!(file["size"], pdf().len());
        assert_eq!(file["sha256"], sha256_hex(&pdf()));
        clinic
            .assert_allowed(&app, &request_id, &clinic.doctor, "attachment.upload", "care_team", clinic.ann_record)
            .await;
        let href = file["href"].as_str().unwrap().to_owned();
        // Unsent, only its uploader reads it.
        assert_eq!(app.get(&href, clinic.doctor.token()).await.status(), 200);
        assert_problem_type(app.get(&href, clinic.ann.token()).await, 404, "not-found").await;
        let png_file: Value = upload(&app, clinic.doctor.token(), &id, &[Part::file("rash.png", png()).declared("image/png")])
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(png_file["content_type"], "image/png");

        let response = app
            .post_json(&messages_path(&id), clinic.doctor.token(), &json!({ "body": "Your ECG and the rash", "attachment_ids": [file["id"], png_file["id"]] }))
            .await;
        assert_eq!(response.status(), 201);
        let sent: Value = response.json().await.unwrap();
        let names: Vec<&Value> = sent["attachments"].as_array().unwrap().iter().map(|a| &a["name"]).collect();
        assert_eq!(names, [&json!("ecg at home.pdf"), &json!("rash.png")]);
        assert_eq!(sent["attachments"][0]["message_id"], sent["id"]);
        let frame = next_of(&mut ann_socket, "message").await;
        assert_eq!(frame["message"], sent, "the socket has the files too");

        // Ann reads the file: its bytes, as a download, audited.
        let response = app.get(&href, clinic.ann.token()).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "content-type").as_deref(), Some("application/pdf"));
        assert_eq!(header(&response, "x-content-type-options").as_deref(), Some("nosniff"));
        let disposition = header(&response, "content-disposition").unwrap();
        assert!(disposition.starts_with("attachment") && disposition.contains("ecg at home.pdf"), "{disposition}");
        let request_id = header(&response, "x-request-id").unwrap();
        assert_eq!(response.bytes().await.unwrap().to_vec(), pdf());
        clinic
            .assert_allowed(&app, &request_id, &clinic.ann, "attachment.read", "own_record", clinic.ann_record)
            .await;

        // Sent once: it goes with no other message; another's upload goes with nobody's.
        let again = app
            .post_json(&messages_path(&id), clinic.doctor.token(), &json!({ "body": "Again", "attachment_ids": [file["id"]] }))
            .await;
        assert_eq!(problem_fields(&assert_problem_type(again, 422, "validation").await), ["attachment_ids"]);
        let anns: Value = upload(&app, clinic.ann.token(), &id, &[Part::file("photo.jpg", jpeg())]).await.json().await.unwrap();
        assert_eq!(anns["content_type"], "image/jpeg", "{anns}");
        let stolen = app
            .post_json(&messages_path(&id), clinic.doctor.token(), &json!({ "body": "Mine now", "attachment_ids": [anns["id"]] }))
            .await;
        assert_eq!(problem_fields(&assert_problem_type(stolen, 422, "validation").await), ["attachment_ids"]);
        let six: Vec<Value> = (0..6).map(|_| json!(Uuid::now_v7())).collect();
        let too_many = app
            .post_json(&messages_path(&id), clinic.doctor.token(), &json!({ "body": "Many", "attachment_ids": six }))
            .await;
        assert_eq!(problem_fields(&assert_problem_type(too_many, 422, "validation").await), ["attachment_ids"]);
    }

    async fn uploads_and_reads_of_files_refuse_everyone_else_and_anything_but_pdf_png_and_jpeg(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let conversation = start(&app, &clinic, &clinic.doctor, &[]).await;
        let id = id_text(&conversation);
        let file: Value = upload(&app, clinic.doctor.token(), &id, &[Part::file("scan.pdf", pdf())]).await.json().await.unwrap();
        app.post_json(&messages_path(&id), clinic.doctor.token(), &json!({ "body": "Scan", "attachment_ids": [file["id"]] })).await;
        let href = file["href"].as_str().unwrap().to_owned();
        let parts = [Part::file("scan.pdf", pdf())];

        assert_unauthorized(upload(&app, None, &id, &parts).await).await;
        assert_unauthorized(app.get(&href, None).await).await;
        for who in [&clinic.secretary, &clinic.lab, &clinic.admin] {
            assert_problem_type(upload(&app, who.token(), &id, &parts).await, 403, "forbidden").await;
            assert_problem_type(app.get(&href, who.token()).await, 403, "forbidden").await;
        }
        for who in [&clinic.outsider, &clinic.bob] {
            assert_problem_type(upload(&app, who.token(), &id, &parts).await, 404, "not-found").await;
            assert_problem_type(app.get(&href, who.token()).await, 404, "not-found").await;
        }
        let nowhere = format!("{}/{}", attachments_path(&id), Uuid::now_v7());
        assert_problem_type(app.get(&nowhere, clinic.ann.token()).await, 404, "not-found").await;
        assert_problem_type(app.get(&format!("{}/soon", attachments_path(&id)), clinic.ann.token()).await, 404, "not-found").await;

        for (part, why) in [
            (Part::file("notes.pdf", b"<html><script>alert(1)</script></html>".to_vec()), "content"),
            (Part::file("scan.png", pdf()), "content"),
            (Part::file("run.exe", pdf()), "extension"),
            (Part::file("../../etc/scan.pdf", pdf()), "name"),
            (Part::file("empty.pdf", Vec::new()), "empty"),
            (Part::file("scan.pdf", pdf()).declared("text/html"), "declared"),
        ] {
            let refused = upload(&app, clinic.ann.token(), &id, &[part]).await;
            assert_eq!(problem_fields(&assert_problem_type(refused, 422, "validation").await), ["file"], "{why}");
        }
        let two = upload(&app, clinic.ann.token(), &id, &[Part::file("a.pdf", pdf()), Part::file("b.pdf", pdf())]).await;
        assert_problem_type(two, 400, "bad-request").await;
        let other = upload(&app, clinic.ann.token(), &id, &[Part::sampling_rate("250")]).await;
        assert_problem_type(other, 400, "bad-request").await;
        let not_multipart = app.post_json(&attachments_path(&id), clinic.ann.token(), &json!({ "file": "x" })).await;
        assert_problem_type(not_multipart, 415, "unsupported-media-type").await;

        // Nobody fills the file store with files never sent: twenty wait at most.
        for _ in 0..20 {
            let waiting = upload(&app, clinic.ann.token(), &id, &parts).await;
            assert_eq!(waiting.status(), 201);
        }
        let full = upload(&app, clinic.ann.token(), &id, &parts).await;
        assert_problem_type(full, 409, "conflict").await;
    }

    async fn typing_reaches_the_other_participants_and_nobody_else(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let conversation = start(&app, &clinic, &clinic.doctor, &[]).await;
        let id = id_text(&conversation);
        let mut ann_socket = app.socket(&clinic.ann.token).await;
        let mut house_socket = app.socket(&clinic.doctor.token).await;
        let mut wilson_socket = app.socket(&clinic.outsider.token).await;

        let typing = json!({ "type": "typing", "conversation_id": id });
        ann_socket.send(&typing).await;
        assert_eq!(
            next_of(&mut house_socket, "typing").await,
            json!({ "type": "typing", "conversation_id": id, "user_id": clinic.ann.id })
        );
        // More while the typing goes on: relayed at most every 2 seconds, the rest dropped
        // without a look.
        for _ in 0..5 {
            ann_socket.send(&typing).await;
        }
        ann_socket.assert_quiet().await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        house_socket.assert_quiet().await;
        // Not echoed to the typist, not shown to anyone outside, and never stored.
        ann_socket.assert_quiet().await;
        wilson_socket.assert_quiet().await;
        assert!(app.all_notifications(&clinic.doctor.token).await.is_empty());

        // Someone outside the conversation is refused (audited), and nothing is relayed.
        wilson_socket.send(&typing).await;
        let refused = next_of(&mut wilson_socket, "error").await;
        assert!(refused["message"].as_str().unwrap().starts_with("typing refused: no such conversation"), "{refused}");
        let mut lab_socket = app.socket(&clinic.lab.token).await;
        lab_socket.send(&typing).await;
        let refused = next_of(&mut lab_socket, "error").await;
        assert!(refused["message"].as_str().unwrap().starts_with("typing refused: you may not do this"), "{refused}");
        wilson_socket.send(&json!({ "type": "typing", "conversation_id": "soon" })).await;
        assert!(next_of(&mut wilson_socket, "error").await["message"].as_str().unwrap().starts_with("invalid frame"));
        house_socket.assert_quiet().await;
        ann_socket.assert_quiet().await;
        let denied: Vec<Value> = app
            .audit(&clinic.admin.token, &format!("user_id={}&patient_id={}", clinic.outsider.id, clinic.ann_record))
            .await;
        assert!(
            denied.iter().any(|e| e["action"] == "message.send" && e["outcome"] == "denied"),
            "{denied:?}"
        );
    }

    async fn a_doctor_and_the_patient_talk_live_with_read_receipts(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let mut ann_socket = app.socket(&clinic.ann.token).await;
        let mut house_socket = app.socket(&clinic.doctor.token).await;

        let response = app
            .post_json(CONVERSATIONS, clinic.doctor.token(), &json!({ "patient_id": clinic.ann_record, "participant_ids": [] }))
            .await;
        assert_eq!(response.status(), 201);
        let location = header(&response, "location").unwrap();
        let request_id = header(&response, "x-request-id").unwrap();
        let conversation: Value = response.json().await.unwrap();
        let id = id_text(&conversation);
        assert_eq!(location, conversation_path(&id));
        assert_eq!(participants(&conversation), [json!(clinic.doctor.id), json!(clinic.ann.id)]);
        assert_eq!(conversation["patient_id"], json!(clinic.ann_record));
        assert!(conversation["referral_id"].is_null());
        clinic
            .assert_allowed(&app, &request_id, &clinic.doctor, "conversation.create", "care_team", clinic.ann_record)
            .await;

        // The doctor writes; Ann's socket has it at once, with the body.
        let sent = say(&app, &clinic.doctor, &id, "How is the cough since Monday?").await;
        assert_eq!(sent["sender_id"], json!(clinic.doctor.id));
        assert_eq!(sent["sender_name"], "Test dr.house");
        let frame = next_of(&mut ann_socket, "message").await;
        assert_eq!(frame["conversation_id"], id.as_str());
        assert_eq!(frame["message"], sent);

        // Ann lists it unread, reads it (audited as her own record), answers, marks it read.
        let listed = app.all_pages(CONVERSATIONS, &clinic.ann.token, "", 10).await;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["unread"], 1);
        let page = clinic
            .assert_read(&app, &messages_path(&id), &clinic.ann, "conversation.read", "own_record", clinic.ann_record)
            .await;
        assert_eq!(page["items"], json!([sent]));
        let response = app
            .post_json(&format!("{}/read", conversation_path(&id)), clinic.ann.token(), &json!({ "message_id": sent["id"] }))
            .await;
        assert_eq!(response.status(), 204);
        let receipt = next_of(&mut house_socket, "message_read").await;
        assert_eq!(receipt["message_id"], sent["id"]);
        assert_eq!(receipt["reader_id"], json!(clinic.ann.id));
        let answer = say(&app, &clinic.ann, &id, "Better, thank you.").await;
        assert_eq!(next_of(&mut house_socket, "message").await["message"], answer);
        let listed = app.all_pages(CONVERSATIONS, &clinic.ann.token, "", 10).await;
        assert_eq!(listed[0]["unread"], 0);

        // Message events are no notifications: not listed, not counted.
        assert!(app.all_notifications(&clinic.ann.token).await.is_empty());
        assert_eq!(app.unread_count(&clinic.ann.token).await, 0);
        // A socket opened later replays them in order, after the same ids.
        let (mut later, replayed) = HubSocket::ready(&app.address, Credentials::Bearer(&clinic.ann.token), Some(0)).await;
        let kinds: Vec<&str> = replayed.iter().map(|f| f["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["message"]);
        later.assert_quiet().await;
        ann_socket.close().await;
        house_socket.close().await;
        later.close().await;
    }

    async fn only_the_patient_and_doctors_of_the_care_team_take_part(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let conversation = start(&app, &clinic, &clinic.doctor, &[]).await;
        let id = id_text(&conversation);
        let calls = [
            (Call::post(CONVERSATIONS, json!({ "patient_id": clinic.ann_record })), "conversation.create"),
            (Call::get(CONVERSATIONS), "conversation.list"),
            (Call::get(conversation_path(&id)), "conversation.read"),
            (Call::get(messages_path(&id)), "conversation.read"),
            (Call::post(messages_path(&id), json!({ "body": "hello" })), "message.send"),
            (Call::post(format!("{}/read", conversation_path(&id)), json!({ "message_id": Uuid::now_v7() })), "conversation.read"),
        ];
        for who in [&clinic.secretary, &clinic.lab, &clinic.admin] {
            for (call, action) in &calls {
                clinic.assert_refused_whatever_the_body(&app, call, who, 403, action, None).await;
            }
        }
        for (call, _) in &calls {
            clinic.assert_needs_token(&app, call).await;
        }
        // Doctors outside the care team, and another patient: no such conversation.
        for who in [&clinic.outsider, &clinic.former, &clinic.bob] {
            for (call, action) in &calls[2..5] {
                clinic.assert_refused(&app, call, who, 404, action, Some(clinic.ann_record)).await;
            }
            assert!(app.all_pages(CONVERSATIONS, &who.token, "", 10).await.is_empty());
        }
        for who in [&clinic.outsider, &clinic.former] {
            clinic.assert_refused(&app, &calls[0].0, who, 404, "conversation.create", Some(clinic.ann_record)).await;
        }
        // Naming someone who may not take part, or nobody but the patient.
        let response = app
            .post_json(CONVERSATIONS, clinic.doctor.token(), &json!({ "patient_id": clinic.ann_record, "participant_ids": [clinic.outsider.id, clinic.former.id, clinic.secretary.id] }))
            .await;
        let problem = assert_problem_type(response, 422, "validation").await;
        assert_eq!(problem_fields(&problem), ["participant_ids[0]", "participant_ids[1]", "participant_ids[2]"]);
        let response = app
            .post_json(CONVERSATIONS, clinic.ann.token(), &json!({ "patient_id": clinic.ann_record, "participant_ids": [] }))
            .await;
        let problem = assert_problem_type(response, 422, "validation").await;
        assert_eq!(problem_fields(&problem), ["participant_ids"]);
        for body in [json!({}), json!({ "patient_id": clinic.ann_record, "referral_id": Uuid::now_v7() })] {
            let response = app.post_json(CONVERSATIONS, clinic.doctor.token(), &body).await;
            assert_problem_type(response, 422, "validation").await;
        }
        for body in [json!({}), json!({ "body": "" }), json!({ "body": "x".repeat(4_001) })] {
            let response = app.post_json(&messages_path(&id), clinic.doctor.token(), &body).await;
            let problem = assert_problem_type(response, 422, "validation").await;
            assert_eq!(problem_fields(&problem), ["body"], "{body}");
        }
        let unknown = app.get(&conversation_path(&Uuid::now_v7().to_string()), clinic.doctor.token()).await;
        assert_problem_type(unknown, 404, "not-found").await;
        // A read mark names a message of this conversation.
        let other = start(&app, &clinic, &clinic.doctor, &[]).await;
        let elsewhere = say(&app, &clinic.doctor, &id_text(&other), "Elsewhere").await;
        let response = app
            .post_json(&format!("{}/read", conversation_path(&id)), clinic.ann.token(), &json!({ "message_id": elsewhere["id"] }))
            .await;
        assert_problem_type(response, 404, "not-found").await;
        // The patient starts one with their doctor.
        let mine = start(&app, &clinic, &clinic.ann, &[clinic.doctor.id]).await;
        assert_eq!(participants(&mine), [json!(clinic.ann.id), json!(clinic.doctor.id)]);
    }

    async fn a_doctor_who_leaves_the_care_team_loses_the_conversation_from_then_on(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let chase = clinic.hire(&app, "dr.chase", "doctor").await;
        app.add_member(&clinic.admin.token, clinic.ann_record, chase.id).await;
        let conversation = start(&app, &clinic, &clinic.doctor, &[chase.id]).await;
        let id = id_text(&conversation);
        let mut chase_socket = app.socket(&chase.token).await;
        say(&app, &clinic.doctor, &id, "Chase, please see her today.").await;
        assert_eq!(next_of(&mut chase_socket, "message").await["message"]["body"], "Chase, please see her today.");
        assert_eq!(app.get(&messages_path(&id), chase.token()).await.status(), 200);

        let response = app
            .call(&Call::delete(member_path(clinic.ann_record, chase.id)), clinic.admin.token())
            .await;
        assert_eq!(response.status(), 200);
        clinic
            .assert_refused(&app, &Call::get(messages_path(&id)), &chase, 404, "conversation.read", Some(clinic.ann_record))
            .await;
        clinic
            .assert_refused(&app, &Call::post(messages_path(&id), json!({ "body": "Still here" })), &chase, 404, "message.send", Some(clinic.ann_record))
            .await;
        assert!(app.all_pages(CONVERSATIONS, &chase.token, "", 10).await.is_empty());
        // What is said now never reaches them.
        say(&app, &clinic.doctor, &id, "Between us now.").await;
        chase_socket.assert_quiet().await;
        chase_socket.close().await;
    }

    async fn a_referrals_two_doctors_talk_in_its_one_conversation(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let referral = app.refer(&clinic.doctor, clinic.ann_record, clinic.outsider.id).await;
        let body = json!({ "referral_id": referral["id"] });
        let response = app.post_json(CONVERSATIONS, clinic.doctor.token(), &body).await;
        assert_eq!(response.status(), 201);
        let conversation: Value = response.json().await.unwrap();
        assert_eq!(conversation["referral_id"], referral["id"]);
        assert_eq!(participants(&conversation), [json!(clinic.doctor.id), json!(clinic.outsider.id)]);
        let again = app.post_json(CONVERSATIONS, clinic.outsider.token(), &body).await;
        assert_eq!(again.status(), 200, "the one conversation of the referral");
        let again: Value = again.json().await.unwrap();
        assert_eq!(again["id"], conversation["id"]);
        let id = id_text(&conversation);
        say(&app, &clinic.outsider, &id, "Send me her last ECG?").await;
        let read = clinic
            .assert_read(&app, &messages_path(&id), &clinic.doctor, "conversation.read", "referral", clinic.ann_record)
            .await;
        assert_eq!(read["items"][0]["body"], "Send me her last ECG?");
        for who in [&clinic.former, &clinic.ann] {
            clinic
                .assert_refused(&app, &Call::post(CONVERSATIONS, body.clone()), who, 404, "conversation.create", Some(clinic.ann_record))
                .await;
            clinic
                .assert_refused(&app, &Call::get(messages_path(&id)), who, 404, "conversation.read", Some(clinic.ann_record))
                .await;
        }
        let unknown = app.post_json(CONVERSATIONS, clinic.doctor.token(), &json!({ "referral_id": Uuid::now_v7() })).await;
        assert_problem_type(unknown, 404, "not-found").await;
    }
}

mod unread {
    use super::*;

    backend_tests_with! {
        ["--message-unread-secs", "1", "--job-poll-ms", "100"];

        async fn an_unread_message_becomes_a_notification_and_a_read_one_does_not(app: TestApp) {
            let clinic = Clinic::open(&app).await;
            let conversation = start(&app, &clinic, &clinic.doctor, &[]).await;
            let id = id_text(&conversation);
            say(&app, &clinic.doctor, &id, "Your results are fine.").await;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            let notice = loop {
                let listed = app.all_notifications(&clinic.ann.token).await;
                if let Some(found) = listed.iter().find(|n| n["kind"] == "message.unread") {
                    break found.clone();
                }
                assert!(tokio::time::Instant::now() < deadline, "no message.unread: {listed:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            assert_eq!(notice["data"]["title"], "Unread message from Dr Test dr.house");
            assert_eq!(notice["data"]["conversation_id"], id.as_str());
            assert!(!notice["data"].to_string().contains("results"), "no clinical text");
            assert_eq!(app.unread_count(&clinic.ann.token).await, 1);

            // Ann answers and the doctor reads it at once: nobody is told.
            let answer = say(&app, &clinic.ann, &id, "Thanks!").await;
            let response = app
                .post_json(&format!("{}/read", conversation_path(&id)), clinic.doctor.token(), &json!({ "message_id": answer["id"] }))
                .await;
            assert_eq!(response.status(), 204);
            tokio::time::sleep(Duration::from_secs(3)).await;
            let told = app.all_notifications(&clinic.doctor.token).await;
            assert!(told.iter().all(|n| n["kind"] != "message.unread"), "{told:?}");
        }
    }
}

/// Two PostgreSQL instances: the patient's socket on one, the doctor writing on the other; the
/// socket drops after the first message and comes back with its last id.
#[tokio::test]
async fn across_two_instances_with_a_disconnect_nothing_is_lost_and_nothing_comes_twice() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let second = app.another_instance().await;
    let clinic = Clinic::open(&app).await;
    let conversation = start(&app, &clinic, &clinic.doctor, &[]).await;
    let id = id_text(&conversation);
    let (mut socket, _) = HubSocket::ready(
        &second.address,
        Credentials::Bearer(&clinic.ann.token),
        Some(0),
    )
    .await;
    let first = say(&app, &clinic.doctor, &id, "message 1").await;
    let frame = next_of(&mut socket, "message").await;
    assert_eq!(frame["message"], first);
    let last = socket.last_id().unwrap();
    socket.close().await;
    let mut sent = Vec::new();
    for i in 2..=6 {
        sent.push(say(&app, &clinic.doctor, &id, &format!("message {i}")).await);
    }
    let (mut again, replayed) = HubSocket::ready(
        &second.address,
        Credentials::Bearer(&clinic.ann.token),
        Some(last),
    )
    .await;
    let bodies: Vec<&str> = replayed
        .iter()
        .map(|f| f["message"]["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        [
            "message 2",
            "message 3",
            "message 4",
            "message 5",
            "message 6"
        ]
    );
    // Live again, from the other instance.
    let seventh = say(&app, &clinic.doctor, &id, "message 7").await;
    assert_eq!(next_of(&mut again, "message").await["message"], seventh);
    again.assert_quiet().await;
    again.close().await;
}
