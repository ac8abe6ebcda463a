//! A WebSocket client for the notification hub: opens `/api/v1/ws` with a bearer token or a
//! ticket, reads the server's JSON frames with a generous timeout (control frames skipped), and
//! checks on every socket, frame by frame, that notification ids arrive one above the other:
//! no gap and no duplicate, across the replay and the live stream.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::TestApp;

/// `/api/v1/ws`.
pub const WS: &str = "/api/v1/ws";
/// `/api/v1/ws/tickets`.
pub const TICKETS: &str = "/api/v1/ws/tickets";
/// `/api/v1/notifications`.
pub const NOTIFICATIONS: &str = "/api/v1/notifications";

/// How long to wait for a frame that should arrive within milliseconds: only there so that a
/// broken server fails the test instead of hanging it.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// What opens a socket.
#[derive(Debug, Clone, Copy)]
pub enum Credentials<'a> {
    /// `Authorization: Bearer <access token>` on the upgrade request.
    Bearer(&'a str),
    /// `?ticket=` from `POST /api/v1/ws/tickets`.
    Ticket(&'a str),
    /// Nothing at all.
    Nothing,
}

/// What the server did next on a socket.
#[derive(Debug)]
pub enum Event {
    /// A text frame, parsed as JSON.
    Frame(Value),
    /// A close frame: its code and reason (`None` for a close frame without a code).
    Closed(Option<(u16, String)>),
    /// The connection ended without a close frame, or failed.
    Ended(String),
}

/// `ws://` URL of the hub on the server at `address` (`http://127.0.0.1:PORT`), with `query`.
pub fn hub_url(address: &str, query: &str) -> String {
    let base = address.replacen("http://", "ws://", 1);
    if query.is_empty() {
        format!("{base}{WS}")
    } else {
        format!("{base}{WS}?{query}")
    }
}

/// An open socket to the hub.
#[derive(Debug)]
pub struct HubSocket {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The last notification id this socket received, or the mark it started from (`after`,
    /// then the `ready` frame's `last_id`); `None` before `ready` when opened without `after`.
    last_id: Option<i64>,
    /// Every notification received, in order.
    received: Vec<Value>,
    ready: bool,
    /// How many pings the server sent.
    pings: usize,
}

impl HubSocket {
    /// Opens a socket, or returns why the server refused the upgrade.
    ///
    /// # Errors
    /// The client's error: [`tungstenite::Error::Http`] carries the server's answer.
    pub async fn try_connect(
        address: &str,
        credentials: Credentials<'_>,
        query: &str,
    ) -> Result<Self, tungstenite::Error> {
        let mut query = query.to_owned();
        if let Credentials::Ticket(ticket) = credentials {
            let param = format!("ticket={}", encode(ticket));
            query = if query.is_empty() {
                param
            } else {
                format!("{query}&{param}")
            };
        }
        let mut request = hub_url(address, &query).into_client_request()?;
        if let Credentials::Bearer(token) = credentials {
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|e| tungstenite::Error::HttpFormat(e.into()))?;
            request.headers_mut().insert("authorization", value);
        }
        let connecting = tokio_tungstenite::connect_async(request);
        let (stream, _) = tokio::time::timeout(FRAME_TIMEOUT, connecting)
            .await
            .map_err(|_| tungstenite::Error::Io(std::io::ErrorKind::TimedOut.into()))??;
        let last_id = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("after="))
            .and_then(|after| after.parse().ok());
        Ok(Self {
            stream,
            last_id,
            received: Vec::new(),
            ready: false,
            pings: 0,
        })
    }

    /// Opens a socket with `credentials`, replaying from `after` when given; panics unless the
    /// server upgrades. Does not wait for `ready`.
    pub async fn open(address: &str, credentials: Credentials<'_>, after: Option<i64>) -> Self {
        let query = after
            .map(|after| format!("after={after}"))
            .unwrap_or_default();
        match Self::try_connect(address, credentials, &query).await {
            Ok(socket) => socket,
            Err(tungstenite::Error::Http(response)) => panic!(
                "the upgrade was refused: {} {}",
                response.status(),
                response
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default()
            ),
            Err(e) => panic!("the socket did not open: {e}"),
        }
    }

    /// Opens a socket as [`HubSocket::open`] does and reads up to its `ready` frame, returning
    /// the socket and the notifications replayed before it.
    pub async fn ready(
        address: &str,
        credentials: Credentials<'_>,
        after: Option<i64>,
    ) -> (Self, Vec<Value>) {
        let mut socket = Self::open(address, credentials, after).await;
        let replayed = socket.until_ready().await;
        (socket, replayed)
    }

    /// The last notification id received, or the mark the socket started from.
    pub fn last_id(&self) -> Option<i64> {
        self.last_id
    }

    /// How many pings the server sent that this client read (and answered).
    pub fn pings(&self) -> usize {
        self.pings
    }

    /// Every notification this socket received so far, in order.
    pub fn received(&self) -> &[Value] {
        &self.received
    }

    /// The next thing the server does, skipping control frames (pings are answered by the
    /// client library). Panics after [`FRAME_TIMEOUT`] without anything, and on a binary frame.
    pub async fn next_event(&mut self) -> Event {
        loop {
            let next = tokio::time::timeout(FRAME_TIMEOUT, self.stream.next())
                .await
                .unwrap_or_else(|_| panic!("nothing arrived within {FRAME_TIMEOUT:?}"));
            match next {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(text.as_str())
                        .unwrap_or_else(|e| panic!("a text frame is not JSON ({e}): {text}"));
                    self.check(&frame);
                    return Event::Frame(frame);
                }
                Some(Ok(Message::Binary(bytes))) => {
                    panic!("the server sent a binary frame of {} bytes", bytes.len())
                }
                Some(Ok(Message::Close(frame))) => {
                    return Event::Closed(
                        frame.map(|f| (u16::from(f.code), f.reason.as_str().to_owned())),
                    );
                }
                Some(Ok(Message::Ping(_))) => self.pings += 1,
                Some(Ok(Message::Pong(_) | Message::Frame(_))) => {}
                Some(Err(e)) => return Event::Ended(e.to_string()),
                None => return Event::Ended("the stream ended".into()),
            }
        }
    }

    /// Checks a frame against what came before on this socket: ids of the stream (notifications
    /// and message events alike) one above the other, one `ready` frame that names the last id
    /// sent.
    fn check(&mut self, frame: &Value) {
        match frame["type"].as_str() {
            Some("message" | "message_read") => {
                let id = frame["id"]
                    .as_i64()
                    .unwrap_or_else(|| panic!("a message event without an id: {frame}"));
                if let Some(last) = self.last_id {
                    assert_eq!(
                        id,
                        last + 1,
                        "event {id} after {last}: a gap or a duplicate ({frame})"
                    );
                }
                self.last_id = Some(id);
                self.received.push(frame.clone());
            }
            Some("notification") => {
                let notification = &frame["notification"];
                let id = notification["id"]
                    .as_i64()
                    .unwrap_or_else(|| panic!("a notification without an id: {frame}"));
                if let Some(last) = self.last_id {
                    assert_eq!(
                        id,
                        last + 1,
                        "notification {id} after {last}: a gap or a duplicate ({frame})"
                    );
                } else {
                    assert!(
                        self.ready,
                        "a notification before `ready` on a socket opened without `after`: {frame}"
                    );
                }
                self.last_id = Some(id);
                self.received.push(notification.clone());
            }
            Some("ready") => {
                assert!(!self.ready, "a second `ready` frame: {frame}");
                self.ready = true;
                let last = frame["last_id"]
                    .as_i64()
                    .unwrap_or_else(|| panic!("a `ready` frame without a last_id: {frame}"));
                if let Some(expected) = self.last_id {
                    assert_eq!(
                        last, expected,
                        "`ready` must name the last id sent (or `after`): {frame}"
                    );
                }
                assert!(last >= 0, "{frame}");
                self.last_id = Some(last);
            }
            _ => {}
        }
    }

    /// The next text frame; panics when the socket closes instead.
    pub async fn next_frame(&mut self) -> Value {
        match self.next_event().await {
            Event::Frame(frame) => frame,
            other => panic!("a frame was expected, got {other:?}"),
        }
    }

    /// Reads the replayed notifications up to the `ready` frame, and returns them.
    pub async fn until_ready(&mut self) -> Vec<Value> {
        assert!(!self.ready, "this socket is ready already");
        let mut replayed = Vec::new();
        loop {
            let frame = self.next_frame().await;
            match frame["type"].as_str() {
                Some("notification") => replayed.push(frame["notification"].clone()),
                Some("message" | "message_read") => replayed.push(frame),
                Some("ready") => return replayed,
                _ => panic!("a notification or `ready` was expected, got {frame}"),
            }
        }
    }

    /// The next frame, which must be a notification; returns the notification.
    pub async fn notification(&mut self) -> Value {
        let frame = self.next_frame().await;
        assert_eq!(frame["type"], "notification", "{frame}");
        assert_eq!(
            keys(&frame),
            ["notification", "type"],
            "a notification frame holds its type and the notification: {frame}"
        );
        frame["notification"].clone()
    }

    /// The next `count` notifications.
    pub async fn notifications(&mut self, count: usize) -> Vec<Value> {
        let mut notifications = Vec::with_capacity(count);
        for _ in 0..count {
            notifications.push(self.notification().await);
        }
        notifications
    }

    /// Reads notifications until the one with id `last` (inclusive), returning them.
    pub async fn notifications_through(&mut self, last: i64) -> Vec<Value> {
        let mut notifications = Vec::new();
        while self.last_id.is_none_or(|id| id < last) {
            notifications.push(self.notification().await);
        }
        notifications
    }

    /// Sends a JSON text frame.
    pub async fn send(&mut self, frame: &Value) {
        self.send_message(Message::text(frame.to_string())).await;
    }

    /// Sends any message.
    pub async fn send_message(&mut self, message: Message) {
        self.stream.send(message).await.expect("the frame is sent");
    }

    /// Sends `{"type":"ping"}` and reads up to the `pong`, returning the notifications that
    /// arrived before it. A socket that answers is open and has nothing else queued before the
    /// answer.
    pub async fn ping(&mut self) -> Vec<Value> {
        self.send(&json!({ "type": "ping" })).await;
        let mut before = Vec::new();
        loop {
            let frame = self.next_frame().await;
            match frame["type"].as_str() {
                Some("pong") => {
                    assert_eq!(frame, json!({ "type": "pong" }));
                    return before;
                }
                Some("notification") => before.push(frame["notification"].clone()),
                _ => panic!("a pong was expected, got {frame}"),
            }
        }
    }

    /// Asserts that the socket is open and that no notification is waiting on it.
    pub async fn assert_quiet(&mut self) {
        let early = self.ping().await;
        assert!(
            early.is_empty(),
            "no notification was expected, got {early:?}"
        );
    }

    /// Reads until the server closes the socket, asserting the close `code`; returns the
    /// reason. Text frames before the close are allowed (they were sent before it).
    pub async fn expect_close(&mut self, code: u16) -> String {
        loop {
            match self.next_event().await {
                Event::Frame(_) => {}
                Event::Closed(Some((got, reason))) => {
                    assert_eq!(got, code, "closed with {got} ({reason:?}), not {code}");
                    return reason;
                }
                other => panic!("a close frame with {code} was expected, got {other:?}"),
            }
        }
    }

    /// For a client that stopped reading (and so answered no ping since): reads what the
    /// server sent from the connection itself, up to its end, and returns the close frame's code
    /// and reason. The client library cannot do this: on reading the pings it would first answer
    /// them, and fail to once the server hung up, before reaching the close frame.
    pub async fn close_read_raw(self) -> (u16, String) {
        let mut stream = self.stream.into_inner();
        let mut bytes = Vec::new();
        tokio::time::timeout(FRAME_TIMEOUT, stream.read_to_end(&mut bytes))
            .await
            .unwrap_or_else(|_| panic!("the server did not hang up within {FRAME_TIMEOUT:?}"))
            .expect("the connection is read to its end");
        let mut rest = &bytes[..];
        while rest.len() >= 2 {
            let opcode = rest[0] & 0x0f;
            assert_eq!(rest[1] & 0x80, 0, "server frames are not masked");
            let (length, header) = match rest[1] & 0x7f {
                126 => (usize::from(u16::from_be_bytes([rest[2], rest[3]])), 4),
                127 => panic!("an unexpectedly long frame"),
                short => (usize::from(short), 2),
            };
            let payload = &rest[header..header + length];
            if opcode == 0x8 {
                assert!(payload.len() >= 2, "a close frame without a code");
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                return (code, String::from_utf8_lossy(&payload[2..]).into_owned());
            }
            rest = &rest[header + length..];
        }
        panic!("the server hung up without a close frame")
    }

    /// Closes the socket normally, as a client leaving.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
        // Reads the server's answer so that the connection ends cleanly.
        let _ = tokio::time::timeout(FRAME_TIMEOUT, async {
            while let Some(Ok(_)) = self.stream.next().await {}
        })
        .await;
    }
}

/// Asserts that opening a socket is refused with `status` before any upgrade, as a problem
/// document; returns the problem.
pub async fn assert_upgrade_refused(
    address: &str,
    credentials: Credentials<'_>,
    query: &str,
    status: u16,
) -> Value {
    let response = match HubSocket::try_connect(address, credentials, query).await {
        Ok(_) => panic!("the upgrade with {credentials:?} and {query:?} should be refused"),
        Err(tungstenite::Error::Http(response)) => response,
        Err(e) => panic!("an HTTP refusal was expected, got {e}"),
    };
    assert_eq!(
        response.status().as_u16(),
        status,
        "{credentials:?}, {query:?}"
    );
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("application/problem+json"),
        "a problem document was expected, got {content_type}"
    );
    if status == 401 {
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer"),
            "a 401 carries a Bearer challenge, got {challenge:?}"
        );
    }
    let body = response.body().as_deref().unwrap_or_default();
    let problem: Value = serde_json::from_slice(body).expect("a JSON problem");
    assert_eq!(problem["status"], status, "{problem}");
    problem
}

/// The sorted keys of a JSON object.
pub fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("an object was expected, got {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// Percent-encodes a query value.
pub fn encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// An RFC 3339 instant of a JSON document.
pub fn instant(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(value.as_str().unwrap_or_default(), &Rfc3339)
        .unwrap_or_else(|_| panic!("{value} is not RFC 3339"))
}

/// When an access token expires: its `exp` claim.
pub fn token_expiry(token: &str) -> OffsetDateTime {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JSON Web Token");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url claims");
    let claims: Value = serde_json::from_slice(&bytes).expect("JSON claims");
    OffsetDateTime::from_unix_timestamp(claims["exp"].as_i64().expect("an exp claim"))
        .expect("a time")
}

/// Sleeps until `at` has passed (plus a margin, for clocks measured in whole seconds).
pub async fn sleep_past(at: OffsetDateTime) {
    let wait = at - OffsetDateTime::now_utc() + time::Duration::milliseconds(1100);
    if wait.is_positive() {
        tokio::time::sleep(wait.unsigned_abs()).await;
    }
}

impl TestApp {
    /// Opens a socket with a bearer `token` and reads up to `ready`, panicking unless it opens.
    pub async fn socket(&self, token: &str) -> HubSocket {
        HubSocket::ready(&self.address, Credentials::Bearer(token), None)
            .await
            .0
    }

    /// `POST /api/v1/ws/tickets` with `token`, panicking unless it succeeds; returns the body.
    pub async fn ticket_response(&self, token: &str) -> Value {
        let response = self
            .client
            .post(self.url(TICKETS))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), 201, "a ticket is issued");
        let body: Value = response.json().await.expect("a ticket");
        assert_eq!(keys(&body), ["expires_at", "ticket"], "{body}");
        body
    }

    /// A new socket ticket for `token`.
    pub async fn ticket(&self, token: &str) -> String {
        self.ticket_response(token).await["ticket"]
            .as_str()
            .expect("a ticket")
            .to_owned()
    }

    /// The caller's notifications as `GET /api/v1/notifications?{query}` lists them, asserting
    /// 200; returns the page.
    pub async fn notification_page(&self, token: &str, query: &str) -> Value {
        let path = if query.is_empty() {
            NOTIFICATIONS.to_owned()
        } else {
            format!("{NOTIFICATIONS}?{query}")
        };
        let response = self.get(&path, Some(token)).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("a notification page")
    }

    /// Every notification of the caller, in id order.
    pub async fn all_notifications(&self, token: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut after = 0;
        loop {
            let page = self
                .notification_page(token, &format!("after={after}&limit=500"))
                .await;
            let items = page["items"].as_array().expect("items").clone();
            all.extend(items);
            match page["next_after"].as_i64() {
                Some(next) => after = next,
                None => return all,
            }
        }
    }

    /// `GET /api/v1/notifications/unread-count`.
    pub async fn unread_count(&self, token: &str) -> i64 {
        let response = self
            .get(&format!("{NOTIFICATIONS}/unread-count"), Some(token))
            .await;
        assert_eq!(response.status(), 200, "the unread count");
        let body: Value = response.json().await.expect("a count");
        assert_eq!(keys(&body), ["unread"], "{body}");
        body["unread"].as_i64().expect("a number")
    }
}
