//! The notification hub with a real WebSocket client: who may open a socket (bearer token or
//! single-use ticket), replay with `after` and the live stream after it without a gap or a
//! duplicate, several sockets per user, the client's frames, and the server closing a socket on
//! sign-out, suspension and token expiry; on PostgreSQL, two server instances delivering
//! across.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio_tungstenite::tungstenite::Message;

use carehub_tests::clinic::{Clinic, Person, REFERRALS, referral_change_path, referral_input};
use carehub_tests::ws::{
    Credentials, HubSocket, NOTIFICATIONS, TICKETS, assert_upgrade_refused, instant, keys,
    sleep_past, token_expiry,
};
use carehub_tests::{TestApp, assert_unauthorized, backend_tests, id_of};

/// The doctor refers Ann to the outsider, `count` times: one notification each for the
/// outsider.
async fn notify_outsider(app: &TestApp, clinic: &Clinic, count: usize) {
    for _ in 0..count {
        app.refer(&clinic.doctor, clinic.ann_record, clinic.outsider.id)
            .await;
    }
}

fn ids(notifications: &[Value]) -> Vec<i64> {
    notifications
        .iter()
        .map(|n| n["id"].as_i64().unwrap())
        .collect()
}

/// Opens a socket for `who` with a bearer token, replaying after `after`.
async fn open(app: &TestApp, who: &Person, after: Option<i64>) -> (HubSocket, Vec<Value>) {
    HubSocket::ready(&app.address, Credentials::Bearer(&who.token), after).await
}

backend_tests! {
    async fn opening_a_socket_needs_valid_credentials(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let b = &clinic.outsider;
        let address = &app.address;
        assert_upgrade_refused(address, Credentials::Nothing, "", 401).await;
        assert_upgrade_refused(address, Credentials::Nothing, "after=0", 401).await;
        assert_upgrade_refused(address, Credentials::Bearer("not-a-token"), "", 401).await;
        assert_upgrade_refused(address, Credentials::Ticket("not-a-ticket"), "", 401).await;
        assert_upgrade_refused(address, Credentials::Ticket(""), "", 401).await;
        // A bearer token is not a ticket, nor a ticket a bearer token.
        assert_upgrade_refused(address, Credentials::Ticket(&b.token), "", 401).await;
        let ticket = app.ticket(&b.token).await;
        assert_upgrade_refused(address, Credentials::Bearer(&ticket), "", 401).await;

        // `after` is a non-negative integer.
        for query in ["after=-1", "after=x", "after=1.5", "after="] {
            assert_upgrade_refused(address, Credentials::Bearer(&b.token), query, 400).await;
        }

        // Tickets need a token.
        let response = app.client.post(app.url(TICKETS)).send().await.unwrap();
        assert_unauthorized(response).await;
        let response = app
            .client
            .post(app.url(TICKETS))
            .bearer_auth("not-a-token")
            .send()
            .await
            .unwrap();
        assert_unauthorized(response).await;
        let issued = app.ticket_response(&b.token).await;
        let expires_at = instant(&issued["expires_at"]);
        let now = OffsetDateTime::now_utc();
        assert!(expires_at > now, "{issued}");
        assert!(
            expires_at <= now + time::Duration::seconds(31),
            "a ticket lasts 30 seconds: {issued}"
        );

        // A signed-out token opens nothing, nor a ticket issued with it.
        let session = app.tokens(&b.username).await;
        let ticket = app.ticket(&session.access_token).await;
        assert_eq!(app.logout(&session.access_token, None).await.status(), 204);
        assert_upgrade_refused(address, Credentials::Bearer(&session.access_token), "", 401)
            .await;
        assert_upgrade_refused(address, Credentials::Ticket(&ticket), "", 401).await;
        // A suspended user's neither.
        let ticket = app.ticket(&clinic.former.token).await;
        app.update_user(&clinic.admin.token, clinic.former.id, &json!({ "status": "suspended" }))
            .await;
        assert_upgrade_refused(address, Credentials::Bearer(&clinic.former.token), "", 401)
            .await;
        assert_upgrade_refused(address, Credentials::Ticket(&ticket), "", 401).await;
    }

    async fn a_ticket_opens_one_socket_and_a_bearer_token_any_number(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let b = &clinic.outsider;
        let ticket = app.ticket(&b.token).await;
        let (mut socket, replayed) =
            HubSocket::ready(&app.address, Credentials::Ticket(&ticket), None).await;
        assert!(replayed.is_empty());
        socket.assert_quiet().await;
        // Used: refused, even while its socket is open, and after it closed.
        assert_upgrade_refused(&app.address, Credentials::Ticket(&ticket), "", 401).await;
        socket.close().await;
        assert_upgrade_refused(&app.address, Credentials::Ticket(&ticket), "after=0", 401).await;
        // Each ticket once; a bearer token as often as wanted.
        let mut sockets = Vec::new();
        for _ in 0..2 {
            let ticket = app.ticket(&b.token).await;
            sockets.push(
                HubSocket::ready(&app.address, Credentials::Ticket(&ticket), None)
                    .await
                    .0,
            );
            sockets.push(open(&app, b, None).await.0);
        }
        notify_outsider(&app, &clinic, 1).await;
        for socket in &mut sockets {
            let notification = socket.notification().await;
            assert_eq!(notification["id"], 1);
            assert_eq!(notification["kind"], "referral.received");
        }
    }

    async fn a_socket_replays_what_was_missed_then_continues_live(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let b = &clinic.outsider;
        let (mut first, replayed) = open(&app, b, None).await;
        assert!(replayed.is_empty());
        assert_eq!(first.last_id(), Some(0));
        notify_outsider(&app, &clinic, 1).await;
        let seen = first.notification().await;
        assert_eq!(seen["id"], 1);
        first.close().await;

        // Three notifications while B is offline.
        notify_outsider(&app, &clinic, 3).await;
        let stored = app.all_notifications(&b.token).await;
        assert_eq!(ids(&stored), vec![1, 2, 3, 4]);
        assert_eq!(stored[0], seen, "the frame is the notification as stored");

        let (mut again, replayed) = open(&app, b, Some(1)).await;
        assert_eq!(replayed, stored[1..].to_vec(), "replayed in order, as stored");
        assert_eq!(again.last_id(), Some(4));
        notify_outsider(&app, &clinic, 1).await;
        assert_eq!(again.notification().await["id"], 5);

        // From the start, from the end, live only.
        let (mut all, replayed) = open(&app, b, Some(0)).await;
        assert_eq!(ids(&replayed), vec![1, 2, 3, 4, 5]);
        let (mut caught_up, replayed) = open(&app, b, Some(5)).await;
        assert!(replayed.is_empty());
        assert_eq!(caught_up.last_id(), Some(5));
        let (mut live, replayed) = open(&app, b, None).await;
        assert!(replayed.is_empty());
        assert_eq!(live.last_id(), Some(5), "`ready` names the last id");

        notify_outsider(&app, &clinic, 1).await;
        for socket in [&mut again, &mut all, &mut caught_up, &mut live] {
            assert_eq!(socket.notification().await["id"], 6);
            socket.assert_quiet().await;
        }

        // The replay reads storage: what was read shows as read.
        let response = app
            .client
            .post(app.url(&format!("{NOTIFICATIONS}/2/read")))
            .bearer_auth(&b.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let (_, replayed) = open(&app, b, Some(1)).await;
        assert_eq!(ids(&replayed), vec![2, 3, 4, 5, 6]);
        assert!(!replayed[0]["read_at"].is_null(), "{}", replayed[0]);
        assert!(replayed[1]["read_at"].is_null(), "{}", replayed[1]);
        // Other users' notifications are not replayed.
        let (_, replayed) = open(&app, &clinic.doctor, Some(0)).await;
        assert!(replayed.is_empty(), "{replayed:?}");
    }

    async fn no_notification_is_lost_or_repeated_while_sockets_connect(app: TestApp) {
        const COUNT: i64 = 24;
        let clinic = Clinic::open(&app).await;
        let b = &clinic.outsider;
        let (mut watcher, _) = open(&app, b, Some(0)).await;

        // Two doctors send referrals to B at the same time, while B's sockets connect: their
        // changes commit, and are published, in any order.
        let second = clinic.hire(&app, "dr.second", "doctor").await;
        app.add_member(&clinic.admin.token, clinic.ann_record, second.id)
            .await;
        let senders: Vec<_> = [&clinic.doctor, &second]
            .into_iter()
            .map(|doctor| {
                let client = app.client.clone();
                let url = app.url(REFERRALS);
                let token = doctor.token.clone();
                let body = referral_input(clinic.ann_record, b.id);
                tokio::spawn(async move {
                    for _ in 0..COUNT / 2 {
                        let response = client
                            .post(&url)
                            .bearer_auth(&token)
                            .json(&body)
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(response.status(), 201);
                    }
                })
            })
            .collect();

        let mut sockets = Vec::new();
        for (mark, after) in [(2, Some(0)), (5, Some(3)), (8, None), (11, Some(0)), (14, None)] {
            // Wait until the watcher saw `mark`, then connect while more are being sent.
            watcher.notifications_through(mark).await;
            let ticket = app.ticket(&b.token).await;
            let credentials = if mark % 2 == 0 {
                Credentials::Bearer(&b.token)
            } else {
                Credentials::Ticket(&ticket)
            };
            let socket = HubSocket::open(&app.address, credentials, after).await;
            sockets.push((socket, after));
        }
        for sender in senders {
            sender.await.unwrap();
        }
        let stored = app.all_notifications(&b.token).await;
        assert_eq!(ids(&stored), (1..=COUNT).collect::<Vec<_>>());

        watcher.notifications_through(COUNT).await;
        assert_eq!(watcher.received(), &stored[..]);
        for (mut socket, after) in sockets {
            socket.until_ready().await;
            // Without `after`, the socket starts from the last id when it was ready.
            let start = after.unwrap_or_else(|| socket.last_id().unwrap());
            socket.notifications_through(COUNT).await;
            // Each socket saw every id above where it started, in order, each once (the socket
            // checks each frame against the one before).
            let start = usize::try_from(start).unwrap();
            assert_eq!(socket.received(), &stored[start..], "after {after:?}");
            socket.assert_quiet().await;
        }
        watcher.assert_quiet().await;
    }

    async fn every_socket_of_a_user_gets_every_notification(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let b = &clinic.outsider;
        let phone = app.tokens(&b.username).await;
        let ticket = app.ticket(&b.token).await;
        let mut sockets = vec![
            open(&app, b, None).await.0,
            open(&app, b, None).await.0,
            HubSocket::ready(&app.address, Credentials::Bearer(&phone.access_token), None)
                .await
                .0,
            HubSocket::ready(&app.address, Credentials::Ticket(&ticket), None)
                .await
                .0,
        ];
        let (mut doctor, _) = open(&app, &clinic.doctor, None).await;
        notify_outsider(&app, &clinic, 3).await;
        let stored = app.all_notifications(&b.token).await;
        assert_eq!(ids(&stored), vec![1, 2, 3]);
        for socket in &mut sockets {
            assert_eq!(socket.notifications(3).await, stored);
            socket.assert_quiet().await;
        }
        doctor.assert_quiet().await;
    }

    async fn the_socket_answers_pings_reads_and_bad_frames(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let b = &clinic.outsider;
        let (mut socket, _) = open(&app, b, None).await;
        socket.assert_quiet().await;
        notify_outsider(&app, &clinic, 2).await;
        socket.notifications(2).await;

        socket.send(&json!({ "type": "read", "id": 1 })).await;
        let read = socket.next_frame().await;
        assert_eq!(keys(&read), ["id", "read_at", "type"], "{read}");
        assert_eq!(read["type"], "read");
        assert_eq!(read["id"], 1);
        instant(&read["read_at"]);
        let stored = app.all_notifications(&b.token).await;
        assert_eq!(stored[0]["read_at"], read["read_at"]);
        assert!(stored[1]["read_at"].is_null());
        assert_eq!(app.unread_count(&b.token).await, 1);

        for bad in [
            Message::text("hello"),
            Message::text("{\"type\":\"dance\"}"),
            Message::text("{\"type\":\"read\"}"),
            Message::text("{\"type\":\"read\",\"id\":\"one\"}"),
            Message::text("{\"type\":\"read\",\"id\":99}"),
            Message::text("{\"type\":\"read\",\"id\":0}"),
            Message::text("[]"),
        ] {
            socket.send_message(bad.clone()).await;
            let frame = socket.next_frame().await;
            assert_eq!(keys(&frame), ["message", "type"], "{bad:?}: {frame}");
            assert_eq!(frame["type"], "error", "{bad:?}: {frame}");
            assert!(frame["message"].as_str().is_some_and(|m| !m.is_empty()), "{frame}");
        }
        // The socket stays open.
        socket.assert_quiet().await;
        assert_eq!(app.unread_count(&b.token).await, 1);

        // A binary frame closes it.
        socket.send_message(Message::binary(vec![1, 2, 3])).await;
        socket.expect_close(1003).await;
    }

    async fn signing_out_closes_the_sockets_of_the_session(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let b = &clinic.outsider;
        let laptop = app.tokens(&b.username).await;
        let ticket = app.ticket(&laptop.access_token).await;
        let (mut by_token, _) =
            HubSocket::ready(&app.address, Credentials::Bearer(&laptop.access_token), None).await;
        let (mut by_ticket, _) =
            HubSocket::ready(&app.address, Credentials::Ticket(&ticket), None).await;
        // A session that a reused refresh token revokes.
        let stolen = app.tokens(&b.username).await;
        let (mut revoked, _) =
            HubSocket::ready(&app.address, Credentials::Bearer(&stolen.access_token), None).await;
        let (mut other_session, _) = open(&app, b, None).await;

        assert_eq!(app.logout(&laptop.access_token, None).await.status(), 204);
        app.refreshed(&stolen.refresh_token).await;
        assert_unauthorized(app.refresh(&stolen.refresh_token).await).await;
        for socket in [&mut by_token, &mut by_ticket, &mut revoked] {
            assert_eq!(socket.expect_close(4002).await, "signed out");
        }
        other_session.assert_quiet().await;
        notify_outsider(&app, &clinic, 1).await;
        assert_eq!(other_session.notification().await["id"], 1);
    }

    async fn suspending_a_user_closes_their_sockets(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let b = &clinic.outsider;
        let ticket = app.ticket(&b.token).await;
        let (mut by_token, _) = open(&app, b, None).await;
        let (mut by_ticket, _) =
            HubSocket::ready(&app.address, Credentials::Ticket(&ticket), None).await;
        let (mut doctor, _) = open(&app, &clinic.doctor, None).await;

        app.update_user(&clinic.admin.token, b.id, &json!({ "status": "suspended" }))
            .await;
        for socket in [&mut by_token, &mut by_ticket] {
            assert_eq!(socket.expect_close(4003).await, "account suspended");
        }
        doctor.assert_quiet().await;
        assert_upgrade_refused(&app.address, Credentials::Bearer(&b.token), "", 401).await;
    }

    async fn shutting_down_closes_every_socket_first(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        let ticket = app.ticket(&clinic.outsider.token).await;
        let mut sockets = vec![
            open(&app, &clinic.outsider, None).await.0,
            HubSocket::ready(&app.address, Credentials::Ticket(&ticket), None)
                .await
                .0,
            open(&app, &clinic.doctor, Some(0)).await.0,
        ];
        app.stop_gracefully().await;
        for socket in &mut sockets {
            assert_eq!(socket.expect_close(1001).await, "server shutting down");
        }
        assert!(
            HubSocket::try_connect(&app.address, Credentials::Bearer(&clinic.doctor.token), "")
                .await
                .is_err(),
            "a stopped server opens no socket"
        );
    }
}

/// Servers whose access tokens last three seconds.
mod short_tokens {
    use super::*;

    carehub_tests::backend_tests_with! {
        ["--access-token-ttl-secs", "3"];

        async fn an_expired_ticket_is_refused(app: TestApp) {
            let patient = app.patient_account("pat.ticket").await;
            let issued = app.ticket_response(&patient.token).await;
            let expires_at = instant(&issued["expires_at"]);
            assert!(
                expires_at <= token_expiry(&patient.token),
                "a ticket never outlives its token: {issued}"
            );
            sleep_past(expires_at).await;
            let ticket = issued["ticket"].as_str().unwrap();
            assert_upgrade_refused(&app.address, Credentials::Ticket(ticket), "", 401).await;
        }

        async fn a_socket_closes_when_its_token_expires(app: TestApp) {
            let patient = app.patient_account("pat.expiry").await;
            let ticket = app.ticket(&patient.token).await;
            let (mut by_token, _) = open(&app, &patient, None).await;
            let (mut by_ticket, _) =
                HubSocket::ready(&app.address, Credentials::Ticket(&ticket), None).await;
            for socket in [&mut by_token, &mut by_ticket] {
                assert_eq!(socket.expect_close(4001).await, "token expired");
            }
            assert!(OffsetDateTime::now_utc() >= token_expiry(&patient.token));
        }
    }
}

/// Renewing a socket's token, on a server whose access tokens last five seconds (SQLite only:
/// the renewal authenticates the token as every request does, on both databases).
mod renewal {
    use super::*;
    use carehub_tests::Backend;

    #[tokio::test]
    async fn renewing_the_token_keeps_the_socket_open() {
        let app = TestApp::spawn_with(Backend::Sqlite, &["--access-token-ttl-secs", "5"])
            .await
            .expect("SQLite is always there");
        let other = app.patient_account("pat.other").await;
        app.patient_account("pat.renewal").await;
        let session = app.tokens("pat.renewal").await;
        let first_expiry = token_expiry(&session.access_token);
        let (mut socket, _) = HubSocket::ready(
            &app.address,
            Credentials::Bearer(&session.access_token),
            None,
        )
        .await;
        // Wait so that the renewed token expires at least two seconds after the first
        // (expiry times are whole seconds); then renew it as a client does, by refreshing.
        tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
        let renewed = app.refreshed(&session.refresh_token).await.access_token;
        let renewed_expiry = token_expiry(&renewed);
        assert!(renewed_expiry >= first_expiry + time::Duration::seconds(2));

        // Bad renewals are answered with an error, and change nothing.
        for token in ["not-a-token", other.token.as_str()] {
            socket
                .send(&json!({ "type": "auth", "token": token }))
                .await;
            let frame = socket.next_frame().await;
            assert_eq!(frame["type"], "error", "{frame}");
        }
        socket
            .send(&json!({ "type": "auth", "token": renewed }))
            .await;
        let frame = socket.next_frame().await;
        assert_eq!(keys(&frame), ["expires_at", "type"], "{frame}");
        assert_eq!(frame["type"], "auth_ok");
        assert_eq!(instant(&frame["expires_at"]), renewed_expiry);

        // Past the first token's expiry (the server closes a socket at its expiry), the
        // socket is open.
        let wait = first_expiry - OffsetDateTime::now_utc() + time::Duration::milliseconds(500);
        if wait.is_positive() {
            tokio::time::sleep(wait.unsigned_abs()).await;
        }
        assert!(
            OffsetDateTime::now_utc() < renewed_expiry,
            "the test ran too slowly"
        );
        socket.assert_quiet().await;
        // Then the renewed one expires too.
        assert_eq!(socket.expect_close(4001).await, "token expired");
        assert!(OffsetDateTime::now_utc() >= renewed_expiry);
    }
}

/// The server's heartbeat, on a server that pings every second (SQLite only: the heartbeat
/// does not depend on the database).
mod heartbeat {
    use super::*;
    use carehub_tests::Backend;

    #[tokio::test]
    async fn the_server_pings_and_drops_a_peer_that_stops_answering() {
        let app = TestApp::spawn_with(Backend::Sqlite, &["--ws-ping-secs", "1"])
            .await
            .expect("SQLite is always there");
        let patient = app.patient_account("pat.heartbeat").await;
        let mut answering = app.socket(&patient.token).await;
        let silent = app.socket(&patient.token).await;

        // A client that reads answers the pings (the client library does): for more than three
        // intervals nothing but pings arrives, and the socket stays open.
        let quiet =
            tokio::time::timeout(std::time::Duration::from_secs(6), answering.next_event()).await;
        assert!(quiet.is_err(), "only pings were expected, got {quiet:?}");
        assert!(answering.pings() >= 2, "the server pings every second");
        answering.assert_quiet().await;

        // The other client read nothing all that time, so answered no ping: it is gone.
        assert_eq!(
            silent.close_read_raw().await,
            (4009, "no heartbeat".to_owned())
        );
        answering.assert_quiet().await;
    }
}

/// Two `carehub serve` processes on one PostgreSQL database: a notification committed through
/// either reaches the recipient's sockets on both.
mod two_instances {
    use super::*;
    use carehub_tests::Backend;

    #[tokio::test]
    async fn a_referral_sent_through_one_instance_reaches_a_socket_on_another() {
        let Some(app) = TestApp::spawn(Backend::Postgres).await else {
            return;
        };
        let clinic = Clinic::open(&app).await;
        let second = app.another_instance().await;
        let (a, b) = (&clinic.doctor, &clinic.outsider);

        let (mut b_second, _) =
            HubSocket::ready(&second.address, Credentials::Bearer(&b.token), None).await;
        // A ticket issued by the first instance opens a socket on the second.
        let ticket = app.ticket(&b.token).await;
        let (mut b_second_ticket, _) =
            HubSocket::ready(&second.address, Credentials::Ticket(&ticket), None).await;
        let (mut b_first, _) = open(&app, b, None).await;
        let (mut a_first, _) = open(&app, a, None).await;
        let (mut a_second, _) =
            HubSocket::ready(&second.address, Credentials::Bearer(&a.token), None).await;

        // Sent through the first instance.
        let sent = app.refer(a, clinic.ann_record, b.id).await;
        for socket in [&mut b_second, &mut b_second_ticket, &mut b_first] {
            let notification = socket.notification().await;
            assert_eq!(notification["id"], 1);
            assert_eq!(notification["kind"], "referral.received");
            assert_eq!(notification["data"]["referral_id"], sent["id"]);
        }
        // Accepted through the second.
        let response = app
            .client
            .post(second.url(&referral_change_path(id_of(&sent), "accept")))
            .bearer_auth(&b.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        for socket in [&mut a_first, &mut a_second] {
            let notification = socket.notification().await;
            assert_eq!(notification["id"], 1);
            assert_eq!(notification["kind"], "referral.accepted");
        }

        // A burst through both instances in turn arrives in order on every socket.
        let body = referral_input(clinic.ann_record, b.id);
        for i in 0..10 {
            let url = if i % 2 == 0 {
                app.url(REFERRALS)
            } else {
                second.url(REFERRALS)
            };
            let response = app
                .client
                .post(url)
                .bearer_auth(&a.token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
        }
        let stored = app.all_notifications(&b.token).await;
        assert_eq!(stored.len(), 11);
        for socket in [&mut b_second, &mut b_second_ticket, &mut b_first] {
            socket.notifications_through(11).await;
            assert_eq!(socket.received(), &stored[..]);
            socket.assert_quiet().await;
        }

        // Signing out through the first instance closes the sockets on the second.
        assert_eq!(app.logout(&b.token, None).await.status(), 204);
        for socket in [&mut b_second, &mut b_second_ticket, &mut b_first] {
            assert_eq!(socket.expect_close(4002).await, "signed out");
        }
        a_second.assert_quiet().await;
        drop(second);
    }

    #[tokio::test]
    async fn nothing_is_lost_when_a_listener_loses_its_connection() {
        use sqlx::Connection as _;

        let Some(app) = TestApp::spawn(Backend::Postgres).await else {
            return;
        };
        let clinic = Clinic::open(&app).await;
        let second = app.another_instance().await;
        let b = &clinic.outsider;
        let (mut on_first, _) = open(&app, b, None).await;
        let (mut on_second, _) =
            HubSocket::ready(&second.address, Credentials::Bearer(&b.token), None).await;

        // Cut both instances' listening connections, and notify at once.
        let url = app.settings.database_url.clone().expect("a database URL");
        let mut connection = sqlx::PgConnection::connect(&url).await.unwrap();
        let cut: Vec<(bool,)> = sqlx::query_as(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = $1",
        )
        .bind(carehub_infra::notifications::LISTENER_APPLICATION_NAME)
        .fetch_all(&mut connection)
        .await
        .unwrap();
        assert_eq!(cut, vec![(true,), (true,)], "one listener per instance");
        notify_outsider(&app, &clinic, 2).await;

        // What was published while they were away is delivered once they are back, and what
        // follows as usual.
        for socket in [&mut on_first, &mut on_second] {
            assert_eq!(ids(&socket.notifications(2).await), vec![1, 2]);
        }
        notify_outsider(&app, &clinic, 1).await;
        for socket in [&mut on_first, &mut on_second] {
            assert_eq!(socket.notification().await["id"], 3);
            socket.assert_quiet().await;
        }
        connection.close().await.unwrap();
        drop(second);
    }

    #[tokio::test]
    async fn a_notification_whose_publication_was_lost_still_reaches_open_sockets() {
        use sqlx::Connection as _;

        let Some(app) = TestApp::spawn(Backend::Postgres).await else {
            return;
        };
        let clinic = Clinic::open(&app).await;
        let second = app.another_instance().await;
        let b = &clinic.outsider;
        let (mut on_first, _) = open(&app, b, None).await;
        let (mut on_second, _) =
            HubSocket::ready(&second.address, Credentials::Bearer(&b.token), None).await;

        // A notification committed by an instance that stopped before publishing it: stored as
        // a change stores it, but never NOTIFYed. The periodic sweep finds it in storage.
        let url = app.settings.database_url.clone().expect("a database URL");
        let mut connection = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query(
            "WITH counter AS ( \
                 INSERT INTO notification_counters (user_id, last_id) VALUES ($1, 1) \
                 ON CONFLICT (user_id) DO UPDATE SET last_id = notification_counters.last_id + 1 \
                 RETURNING last_id) \
             INSERT INTO notifications (recipient_id, id, kind, created_at, data) \
             SELECT $1, last_id, 'care_team.added', now(), '{\"title\": \"Never published\"}' \
             FROM counter",
        )
        .bind(b.id)
        .execute(&mut connection)
        .await
        .unwrap();
        connection.close().await.unwrap();

        for socket in [&mut on_first, &mut on_second] {
            let notification = socket.notification().await;
            assert_eq!(notification["id"], 1);
            assert_eq!(notification["data"]["title"], "Never published");
        }
        // And what follows is delivered as usual, once.
        notify_outsider(&app, &clinic, 1).await;
        for socket in [&mut on_first, &mut on_second] {
            assert_eq!(socket.notification().await["id"], 2);
            socket.assert_quiet().await;
        }
        drop(second);
    }
}

mod frame_budget {
    //! A socket's budget of client frames: a client that floods is refused, then disconnected.

    use super::*;

    carehub_tests::backend_tests_with! {
        ["--ws-frames-per-sec", "5"];

        async fn a_socket_flooding_frames_is_refused_then_disconnected(app: TestApp) {
            assert_eq!(app.register("flooder", "patient").await.status(), 201);
            let tokens = app.tokens("flooder").await;
            let (mut socket, _) =
                HubSocket::ready(&app.address, Credentials::Bearer(&tokens.access_token), None)
                    .await;
            let ping = json!({ "type": "ping" });
            // A burst of three seconds' worth is served.
            for _ in 0..15 {
                socket.send(&ping).await;
            }
            for _ in 0..15 {
                assert_eq!(socket.next_frame().await["type"], "pong");
            }
            // The next frame is refused unread.
            socket.send(&ping).await;
            let refused = socket.next_frame().await;
            assert_eq!(refused["type"], "error", "{refused}");
            assert_eq!(
                refused["message"],
                "too many frames: at most 5 a second; this one was ignored"
            );
            // The budget refills with time.
            tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
            assert!(socket.ping().await.is_empty());
            // A client that goes on far past its budget is disconnected.
            for _ in 0..24 {
                socket.send(&ping).await;
            }
            let reason = socket.expect_close(1008).await;
            assert_eq!(reason, "too many frames");
        }
    }
}
