//! Video calls from outside: a video appointment's doctor and patient read its call, join it
//! over their sockets and pass each other signalling; anyone else, or at the wrong time, is
//! refused and nothing is relayed; joins and leaves are recorded and audited; signals cross
//! PostgreSQL instances.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration as StdDuration;

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime, Time};
use uuid::Uuid;

use carehub_tests::clinic::{Clinic, Person};
use carehub_tests::schedule::{booking, day_at, uuid_of, whole_minute};
use carehub_tests::ws::{Credentials, HubSocket};
use carehub_tests::{
    Backend, TestApp, assert_forbidden, assert_problem_type, assert_unauthorized, backend_tests,
    header,
};

fn call_path(appointment: Uuid) -> String {
    format!("/api/v1/appointments/{appointment}/call")
}

/// A start two minutes from now and an end five minutes later, inside the doctor's
/// 00:00–23:59 day, so that the call of a visit then is open at once (it opens ten minutes
/// before the start). Close to midnight UTC it waits for the new day.
async fn starting_soon() -> (OffsetDateTime, OffsetDateTime) {
    loop {
        let start = whole_minute(OffsetDateTime::now_utc()) + Duration::minutes(2);
        let end = start + Duration::minutes(5);
        if end.date() == start.date() && end.time() <= Time::from_hms(23, 59, 0).unwrap() {
            return (start, end);
        }
        let midnight = (start + Duration::days(1)).replace_time(Time::MIDNIGHT);
        let wait = midnight - OffsetDateTime::now_utc() + Duration::seconds(5);
        tokio::time::sleep(StdDuration::try_from(wait).unwrap_or_default()).await;
    }
}

/// A video visit of Ann with dr.house, booked by the secretary, from `start` to `end`.
async fn video_visit(
    app: &TestApp,
    clinic: &Clinic,
    (start, end): (OffsetDateTime, OffsetDateTime),
) -> Uuid {
    let mut body = booking(clinic.doctor.id, clinic.ann_record, start, Some(end));
    body["video"] = json!(true);
    let booked = app.book(&clinic.secretary.token, &body).await;
    assert_eq!(booked["video"], true, "{booked}");
    uuid_of(&booked)
}

/// A clinic whose doctor works all day, and an open video visit of Ann with him.
async fn open_call(app: &TestApp) -> (Clinic, Uuid) {
    let clinic = Clinic::open(app).await;
    app.work_every_day(&clinic.admin.token, clinic.doctor.id, "00:00", "23:59")
        .await;
    let visit = video_visit(app, &clinic, starting_soon().await).await;
    (clinic, visit)
}

fn join(appointment: Uuid) -> Value {
    json!({ "type": "call.join", "appointment_id": appointment })
}

fn signal(appointment: Uuid, data: &Value) -> Value {
    json!({ "type": "call.signal", "appointment_id": appointment, "data": data })
}

fn leave(appointment: Uuid) -> Value {
    json!({ "type": "call.leave", "appointment_id": appointment })
}

/// Sends `frame` and expects an `error` frame about `appointment` whose message contains
/// `expected`.
async fn refused(socket: &mut HubSocket, frame: &Value, appointment: Uuid, expected: &str) {
    socket.send(frame).await;
    let reply = socket.next_frame().await;
    assert_eq!(reply["type"], "error", "{frame} → {reply}");
    assert_eq!(reply["appointment_id"], json!(appointment), "{reply}");
    let message = reply["message"].as_str().unwrap();
    assert!(message.contains(expected), "{frame} → {message}");
}

/// The next frame after any `call.peer` saying `peer` joined: between instances, the news
/// that the other party joined may reach a socket after it joined itself (and was told
/// `peer_present`).
async fn after_any_late_join(socket: &mut HubSocket, peer: &Person) -> Value {
    loop {
        let frame = socket.next_frame().await;
        let late_join = frame["type"] == "call.peer"
            && frame["status"] == "joined"
            && frame["user_id"] == json!(peer.id);
        if !late_join {
            return frame;
        }
    }
}

/// The call's audit events by `who`, oldest first, as `(action, outcome, basis)`.
async fn call_audit(app: &TestApp, clinic: &Clinic, who: &Person) -> Vec<(String, String, Value)> {
    let mut events: Vec<Value> = app
        .audit(
            &clinic.admin.token,
            &format!("user_id={}&patient_id={}", who.id, clinic.ann_record),
        )
        .await
        .into_iter()
        .filter(|e| e["action"].as_str().is_some_and(|a| a.starts_with("call.")))
        .collect();
    events.sort_by(|a, b| a["at"].as_str().cmp(&b["at"].as_str()));
    events
        .into_iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
                e["basis"].clone(),
            )
        })
        .collect()
}

/// Reads the call as `who` until `check` holds (a socket's leave is recorded as it closes).
async fn call_once(
    app: &TestApp,
    who: &Person,
    visit: Uuid,
    check: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..100 {
        let response = app.get(&call_path(visit), who.token()).await;
        assert_eq!(response.status(), 200);
        let call: Value = response.json().await.unwrap();
        if check(&call) {
            return call;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    panic!("the call never reached the expected state");
}

backend_tests! {
    async fn the_doctor_and_the_patient_meet_in_the_call_and_their_signals_cross(app: TestApp) {
        let (clinic, visit) = open_call(&app).await;

        // The call, read by its doctor: open, no ICE servers configured, nothing happened yet.
        let response = app.get(&call_path(visit), clinic.doctor.token()).await;
        assert_eq!(response.status(), 200);
        let request_id = header(&response, "x-request-id").unwrap();
        let call: Value = response.json().await.unwrap();
        assert_eq!(call["open"], true, "{call}");
        assert_eq!(call["doctor_id"], json!(clinic.doctor.id));
        assert_eq!(call["patient_user_id"], json!(clinic.ann.id));
        assert_eq!(call["ice_servers"], json!([]));
        assert_eq!(call["present"], json!([]));
        assert_eq!(call["duration_secs"], 0);
        clinic
            .assert_allowed(&app, &request_id, &clinic.doctor, "call.read", "appointment", clinic.ann_record)
            .await;

        let mut house = app.socket(&clinic.doctor.token).await;
        let mut ann = app.socket(&clinic.ann.token).await;
        house.send(&join(visit)).await;
        let joined = house.next_frame().await;
        assert_eq!(joined["type"], "call.joined", "{joined}");
        assert_eq!(joined["appointment_id"], json!(visit));
        assert_eq!(joined["peer_present"], false);

        ann.send(&join(visit)).await;
        let joined = ann.next_frame().await;
        assert_eq!(joined["type"], "call.joined", "{joined}");
        assert_eq!(joined["peer_present"], true, "the doctor is waiting");
        let peer = house.next_frame().await;
        assert_eq!(
            peer,
            json!({ "type": "call.peer", "appointment_id": visit, "user_id": clinic.ann.id, "status": "joined" })
        );

        // Signalling passes as it was sent, each way, in order.
        let offer = json!({ "description": { "type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n" } });
        house.send(&signal(visit, &offer)).await;
        let heard = after_any_late_join(&mut ann, &clinic.doctor).await;
        assert_eq!(
            heard,
            json!({ "type": "call.signal", "appointment_id": visit, "from": clinic.doctor.id, "data": offer })
        );
        let answer = json!({ "description": { "type": "answer", "sdp": "v=0\r\n" } });
        let candidate = json!({ "candidate": { "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", "sdpMid": "0", "sdpMLineIndex": 0 } });
        ann.send(&signal(visit, &answer)).await;
        ann.send(&signal(visit, &candidate)).await;
        assert_eq!(house.next_frame().await["data"], answer);
        assert_eq!(house.next_frame().await["data"], candidate);

        // Signals must be objects, and come from someone in the call.
        refused(&mut ann, &signal(visit, &json!("offer")), visit, "must be a JSON object").await;
        house.assert_quiet().await;

        // Ann hangs up: the doctor is told, and Ann's signals go nowhere any more.
        ann.send(&leave(visit)).await;
        assert_eq!(ann.next_frame().await, json!({ "type": "call.left", "appointment_id": visit }));
        let peer = house.next_frame().await;
        assert_eq!(peer["type"], "call.peer");
        assert_eq!(peer["status"], "left");
        refused(&mut ann, &signal(visit, &candidate), visit, "join the call first").await;
        refused(&mut ann, &leave(visit), visit, "not in this call").await;
        house.assert_quiet().await;

        // The doctor's socket closes while in the call: that is a leave too.
        house.close().await;
        let call = call_once(&app, &clinic.ann, visit, |c| c["events"].as_array().unwrap().len() == 4).await;
        let kinds: Vec<(Value, Value)> = call["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["user_id"].clone(), e["kind"].clone()))
            .collect();
        let (doctor, patient) = (json!(clinic.doctor.id), json!(clinic.ann.id));
        assert_eq!(
            kinds,
            [
                (doctor.clone(), json!("join")),
                (patient.clone(), json!("join")),
                (patient, json!("leave")),
                (doctor, json!("leave")),
            ]
        );
        assert_eq!(call["present"], json!([]));
        assert!(call["started_at"].is_string(), "{call}");
        assert!(call["duration_secs"].as_i64().unwrap() >= 0);

        assert_eq!(
            call_audit(&app, &clinic, &clinic.doctor).await,
            [
                ("call.read".to_owned(), "allowed".to_owned(), json!("appointment")),
                ("call.join".to_owned(), "allowed".to_owned(), json!("appointment")),
                ("call.leave".to_owned(), "allowed".to_owned(), json!("appointment")),
            ]
        );
        let ann_trail = call_audit(&app, &clinic, &clinic.ann).await;
        assert!(ann_trail.contains(&("call.join".to_owned(), "allowed".to_owned(), json!("own_record"))), "{ann_trail:?}");
        assert!(ann_trail.contains(&("call.leave".to_owned(), "allowed".to_owned(), json!("own_record"))), "{ann_trail:?}");

        // The appointment itself says it is a video consultation.
        assert_eq!(app.appointment(&clinic.ann.token, visit).await["video"], true);
    }

    async fn nobody_else_gets_into_the_call_and_nothing_reaches_its_parties(app: TestApp) {
        let (clinic, visit) = open_call(&app).await;
        let mut house = app.socket(&clinic.doctor.token).await;
        house.send(&join(visit)).await;
        assert_eq!(house.next_frame().await["type"], "call.joined");

        for (who, expected) in [
            (&clinic.outsider, "no such appointment"),
            (&clinic.bob, "no such appointment"),
            (&clinic.secretary, "you may not do this"),
            (&clinic.lab, "you may not do this"),
            (&clinic.admin, "you may not do this"),
        ] {
            let mut socket = app.socket(&who.token).await;
            refused(&mut socket, &join(visit), visit, expected).await;
            refused(&mut socket, &signal(visit, &json!({ "description": { "type": "offer", "sdp": "x" } })), visit, "join the call first").await;
            refused(&mut socket, &leave(visit), visit, "not in this call").await;
            socket.close().await;
        }
        // A refused join of an appointment that does not exist, and of a malformed one.
        let mut ann = app.socket(&clinic.ann.token).await;
        let nowhere = Uuid::now_v7();
        refused(&mut ann, &join(nowhere), nowhere, "no such appointment").await;
        ann.send(&json!({ "type": "call.join", "appointment_id": "tomorrow" })).await;
        let reply = ann.next_frame().await;
        assert_eq!(reply["type"], "error");
        assert!(reply["message"].as_str().unwrap().starts_with("invalid frame"), "{reply}");
        house.assert_quiet().await;

        // Each refused join is audited as denied; nothing was recorded in the call.
        for who in [&clinic.outsider, &clinic.secretary] {
            let trail = call_audit(&app, &clinic, who).await;
            assert_eq!(trail, [("call.join".to_owned(), "denied".to_owned(), Value::Null)], "{}", who.username);
        }
        let call = call_once(&app, &clinic.doctor, visit, |_| true).await;
        assert_eq!(call["events"].as_array().unwrap().len(), 1, "{call}");
        assert_eq!(call["present"], json!([clinic.doctor.id]));

        // Reading the call: its two parties only.
        let path = call_path(visit);
        assert_unauthorized(app.get(&path, None).await).await;
        for who in [&clinic.secretary, &clinic.lab, &clinic.admin] {
            assert_forbidden(app.get(&path, who.token()).await).await;
        }
        for who in [&clinic.outsider, &clinic.bob] {
            assert_problem_type(app.get(&path, who.token()).await, 404, "not-found").await;
        }
        assert_problem_type(app.get(&call_path(nowhere), clinic.ann.token()).await, 404, "not-found").await;
        assert_problem_type(app.get("/api/v1/appointments/tomorrow/call", clinic.ann.token()).await, 404, "not-found").await;
        assert_eq!(app.get(&path, clinic.ann.token()).await.status(), 200);
    }

    async fn a_call_is_joined_only_in_its_window_on_an_active_video_appointment(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        app.work_every_day(&clinic.admin.token, clinic.doctor.id, "08:00", "18:00").await;
        let later = video_visit(&app, &clinic, (day_at(2, 9, 0), day_at(2, 9, 30))).await;
        let in_person = uuid_of(
            &app.book(&clinic.secretary.token, &booking(clinic.doctor.id, clinic.ann_record, day_at(2, 10, 0), None)).await,
        );
        let called_off = video_visit(&app, &clinic, (day_at(2, 11, 0), day_at(2, 11, 30))).await;
        app.set_status(&clinic.secretary.token, called_off, "cancelled", Some("The patient is ill")).await;

        let mut house = app.socket(&clinic.doctor.token).await;
        refused(&mut house, &join(later), later, "the call can be joined from").await;
        refused(&mut house, &join(in_person), in_person, "not a video consultation").await;
        refused(&mut house, &join(called_off), called_off, "cancelled").await;

        let call = call_once(&app, &clinic.doctor, later, |_| true).await;
        assert_eq!(call["open"], false);
        assert_eq!(call["events"], json!([]));
        assert_eq!(app.appointment(&clinic.doctor.token, in_person).await["video"], false);
        assert_problem_type(app.get(&call_path(in_person), clinic.doctor.token()).await, 409, "conflict").await;
    }
}

/// Configured STUN and TURN servers reach the parties, TURN with credentials of their own
/// while the call is open; a TURN server without its secret stops the server from starting.
#[tokio::test]
async fn ice_servers_come_from_configuration_with_short_lived_turn_credentials() {
    let Some(app) = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            "--ice-servers",
            "stun:stun.clinic.example:3478,turn:turn.clinic.example:3478",
            "--turn-secret",
            "north",
        ],
    )
    .await
    else {
        return;
    };
    let (clinic, visit) = open_call(&app).await;
    let call = call_once(&app, &clinic.ann, visit, |_| true).await;
    let servers = call["ice_servers"].as_array().unwrap();
    assert_eq!(
        servers[0],
        json!({ "urls": ["stun:stun.clinic.example:3478"] })
    );
    assert_eq!(servers[1]["urls"], json!(["turn:turn.clinic.example:3478"]));
    let username = servers[1]["username"].as_str().unwrap();
    let (expiry, user) = username.split_once(':').unwrap();
    assert_eq!(user, clinic.ann.id.to_string());
    let closes = carehub_tests::ws::instant(&call["closes_at"]).unix_timestamp();
    assert_eq!(
        expiry.parse::<i64>().unwrap(),
        closes + 300,
        "five minutes after the call"
    );
    assert_eq!(
        servers[1]["credential"].as_str().unwrap().len(),
        28,
        "a base64 HMAC-SHA1"
    );

    let data_dir = std::env::temp_dir().join(format!("carehub-ice-{}", Uuid::new_v4().simple()));
    let data_dir = data_dir.display().to_string();
    let settings = carehub_web::settings::Settings::parse_from_args([
        "carehub",
        "--bind",
        "127.0.0.1:0",
        "--data-dir",
        &data_dir,
        "--ice-servers",
        "turn:turn.clinic.example",
    ])
    .unwrap();
    let error = carehub_web::startup::Application::build(settings)
        .await
        .expect_err("a TURN server without a secret is refused");
    assert!(
        format!("{error:#}").contains("CAREHUB_TURN_SECRET"),
        "{error:#}"
    );
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// Two PostgreSQL instances: the doctor's socket on one, the patient's on the other; signals,
/// an offer too large for a `NOTIFY` among them, cross in order.
#[tokio::test]
async fn signals_cross_postgresql_instances_in_order() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let second = app.another_instance().await;
    let (clinic, visit) = open_call(&app).await;
    let (mut house, _) = HubSocket::ready(
        &second.address,
        Credentials::Bearer(&clinic.doctor.token),
        None,
    )
    .await;
    let mut ann = app.socket(&clinic.ann.token).await;
    house.send(&join(visit)).await;
    assert_eq!(house.next_frame().await["type"], "call.joined");
    ann.send(&join(visit)).await;
    assert_eq!(ann.next_frame().await["type"], "call.joined");
    assert_eq!(house.next_frame().await["status"], "joined");

    let sdp: String = (0..340)
        .map(|i| format!("a=rtcp-fb:{i} nack pli\r\n"))
        .collect();
    let offer = json!({ "description": { "type": "offer", "sdp": sdp } });
    assert!(offer.to_string().len() > 8_000);
    house.send(&signal(visit, &offer)).await;
    for i in 0..20 {
        house
            .send(&signal(
                visit,
                &json!({ "candidate": { "candidate": format!("candidate:{i}"), "sdpMid": "0" } }),
            ))
            .await;
    }
    assert_eq!(
        after_any_late_join(&mut ann, &clinic.doctor).await["data"],
        offer
    );
    for i in 0..20 {
        let frame = ann.next_frame().await;
        assert_eq!(frame["from"], json!(clinic.doctor.id));
        assert_eq!(
            frame["data"]["candidate"]["candidate"],
            format!("candidate:{i}")
        );
    }
    ann.send(&leave(visit)).await;
    assert_eq!(ann.next_frame().await["type"], "call.left");
    assert_eq!(house.next_frame().await["status"], "left");
}
