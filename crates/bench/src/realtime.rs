//! The real-time measures: how long a referral takes to reach its recipient's socket, and how
//! much memory the server spends on idle authenticated sockets.
//!
//! **Referral-to-socket latency.** The administrator creates two doctors, A and B; A registers
//! a patient, which puts A on its care team. B opens a WebSocket (`GET /api/v1/ws` with a
//! Bearer token) and waits for its `ready` frame. Then A sends referrals of that patient to B
//! (`POST /api/v1/referrals`), one at a time (and, with `--referral-concurrency N`, also N at a
//! time). One referral's latency runs from just before its POST is sent until the
//! `referral.received` frame naming it is read from B's socket. A reader task reads B's socket
//! all along, so a frame that arrives before the POST's response is timed all the same. Every
//! referral answered 201 must arrive exactly once, and the notification ids on the socket must
//! follow each other without a gap. On PostgreSQL a second server instance, on the same
//! database, holds B's socket: each notification crosses from the instance that committed it to
//! the other one through LISTEN/NOTIFY.
//!
//! **Message-to-socket latency**, measured the same way: the administrator creates a doctor,
//! a patient registers an account, the doctor registers the patient's record with that
//! account (so the doctor is on its care team) and starts their conversation. The patient's
//! socket (on the second instance on PostgreSQL) waits while the doctor posts messages
//! (`POST /api/v1/conversations/{id}/messages`); a message's latency ends when the `message`
//! frame carrying it is read, and the stream's ids must follow each other without a gap.
//!
//! **Idle sockets.** A few users (patients, registered and signed in once each, so that
//! Argon2 runs once per user) open many sockets with their tokens, a bounded number at a time;
//! each socket waits for its `ready` frame. The server's resident memory (`VmRSS` in
//! `/proc/<pid>/status`) is read before, once every socket is ready, after a settling pause
//! (which spans several of the server's session checks), and after every socket has closed.
//! While they wait, the sockets answer the server's pings (tungstenite does, as they are read).
//!
//! Part of `carehub-bench`; run with
//! `cargo build --release -p carehub-web -p carehub-bench && "$CARGO_TARGET_DIR"/release/carehub-bench --only realtime`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::{HeaderValue, header::AUTHORIZATION};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use crate::Backend;
use crate::load::{PASSWORD, SETUP_TIMEOUT, client};
use crate::records::{Created, expect_json, sign_in};
use crate::server::{ADMIN_USERNAME, Server, ServerLog, ServerOptions};

/// The doctor who sends the referrals, and the one who receives them.
const SENDER_USERNAME: &str = "bench.referrer";
const RECIPIENT_USERNAME: &str = "bench.referee";
/// The doctor who writes the messages, and the patient who receives them.
const MESSAGE_DOCTOR_USERNAME: &str = "bench.messenger";
const MESSAGE_PATIENT_USERNAME: &str = "bench.patient";
/// How long one frame may take to arrive (a socket's `ready`, a referral's notification):
/// generous, it only keeps a lost frame from hanging the run.
const FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// Referrals in a row whose notification never came before the measure gives up.
const MAX_MISSES_IN_A_ROW: u32 = 5;
/// How long B's socket keeps being read after the last referral, so that a late duplicate
/// is still counted.
const DUPLICATE_GRACE: Duration = Duration::from_secs(1);
/// How long closing every idle socket may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);
/// The server's memory is read this long after the last socket closed.
const AFTER_CLOSE_PAUSE: Duration = Duration::from_secs(2);
/// Open files kept free besides the sockets (log files, database, listeners, HTTP clients).
pub const SPARE_FILES: u64 = 512;
/// Histogram bounds, in microseconds.
const HIST_MAX_US: u64 = 60_000_000;
/// Sign-ins and registrations at once while seeding (each costs a password hash).
const SETUP_CONCURRENCY: usize = 4;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the real-time phases do.
#[derive(Debug, Clone, Serialize)]
pub struct RealtimeConfig {
    /// Measured referrals per row.
    pub referrals: u32,
    /// Referrals sent before each row's measure, checked but not timed.
    pub referral_warmup: u32,
    /// Referrals in flight in the second row (1: the sequential row only).
    pub referral_concurrency: u32,
    /// Idle sockets held at once.
    pub idle_sockets: u32,
    /// Distinct users holding them.
    pub idle_socket_users: u32,
    /// Sockets being opened at once.
    pub socket_open_concurrency: u32,
    /// Seconds the sockets are held after the last one is ready, before the memory is read
    /// again.
    pub settle_secs: u64,
}

/// What a latency row times to the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measured {
    /// A referral's `referral.received` notification, to the receiving doctor.
    Referral,
    /// A message's `message` frame, to the patient.
    Message,
}

impl Measured {
    pub fn name(self) -> &'static str {
        match self {
            Measured::Referral => "referral",
            Measured::Message => "message",
        }
    }
}

/// One row of the referral-to-socket (or message-to-socket) table.
#[derive(Debug, Clone, Serialize)]
pub struct ReferralLatencyResult {
    pub backend: &'static str,
    /// `referral` or `message`.
    pub what: &'static str,
    /// Server instances: 1, or 2 (the POST to the first, the socket on the second).
    pub instances: u32,
    /// Referrals in flight at once.
    pub in_flight: u32,
    /// Referrals timed (warm-up excluded) that reached the socket.
    pub measured: u64,
    /// Referrals answered 201, warm-up included.
    pub sent: u64,
    /// Of those, how many reached the socket exactly once, never, or more than once.
    pub delivered_once: u64,
    pub missing: u64,
    pub duplicated: u64,
    /// `referral.received` frames for referrals this run did not send, and frames of another
    /// kind.
    pub stray_frames: u64,
    /// Notification frames whose id was not the previous one plus one.
    pub id_breaks: u64,
    /// POSTs that did not answer 201, by status or transport failure.
    pub post_errors: BTreeMap<String, u64>,
    /// Set when the socket closed during the measure, or the measure gave up.
    pub aborted: Option<String>,
    /// Frames read before the POST's response was.
    pub frames_before_response: u64,
    pub elapsed_secs: f64,
    /// Referrals answered 201 per second, warm-up included.
    pub referrals_per_sec: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The POST alone (its response read), for the timed referrals.
    pub post_p50_ms: f64,
    pub post_p99_ms: f64,
    /// Every referral answered 201 arrived exactly once, ids without a gap, no POST failed.
    pub exactly_once: bool,
}

/// The idle-socket measure on one backend.
#[derive(Debug, Clone, Serialize)]
pub struct IdleSocketsResult {
    pub backend: &'static str,
    /// Sockets asked for, and how many reached `ready`.
    pub sockets: u64,
    pub ready: u64,
    pub users: u64,
    /// Failed opens, by HTTP status, close code or transport failure.
    pub open_errors: BTreeMap<String, u64>,
    /// Sockets the server closed (or that failed) while they were held, by close code.
    pub closed_while_held: BTreeMap<String, u64>,
    /// The server's `VmRSS`, in bytes: before the first socket, when the last was ready, after
    /// the settling pause, and after every socket closed.
    pub rss_before_bytes: u64,
    pub rss_ready_bytes: u64,
    pub rss_settled_bytes: u64,
    pub rss_after_close_bytes: u64,
    /// `(settled - before) / ready`.
    pub per_socket_bytes: f64,
    pub settle_secs: u64,
    /// From the first connect to the last `ready`.
    pub open_secs: f64,
    pub opened_per_sec: f64,
    /// One socket's connect → `ready`, while `socket_open_concurrency` open at once.
    pub ready_p50_ms: f64,
    pub ready_p99_ms: f64,
    pub ready_max_ms: f64,
    /// Every socket was ready and none closed while held.
    pub complete: bool,
}

/// What one backend's real-time phases measured.
#[derive(Debug, Default)]
pub struct RealtimeMeasured {
    pub latency: Vec<ReferralLatencyResult>,
    pub idle: Option<IdleSocketsResult>,
}

/// Which real-time phases run.
#[derive(Debug, Clone, Copy)]
pub struct RealtimePhases {
    pub referrals: bool,
    pub messages: bool,
    pub sockets: bool,
}

/// Runs the selected phases against `server`; on PostgreSQL, starts (and stops) a second
/// instance for the latency measure. Returns the second instance's log, if there was one,
/// whatever the outcome.
pub async fn run_backend(
    backend: Backend,
    server: &Server,
    options: &ServerOptions,
    config: &RealtimeConfig,
    phases: RealtimePhases,
) -> (anyhow::Result<RealtimeMeasured>, Option<ServerLog>) {
    let mut measured = RealtimeMeasured::default();
    let mut peer_log = None;
    for (wanted, what) in [
        (phases.referrals, Measured::Referral),
        (phases.messages, Measured::Message),
    ] {
        if !wanted {
            continue;
        }
        let name = backend.name();
        let peer = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                eprintln!(
                    "carehub-bench: [{name}] starting a second server instance on the same database"
                );
                match server.start_peer(options).await {
                    Ok(peer) => Some(peer),
                    Err(e) => return (Err(e.context("starting the second instance")), None),
                }
            }
        };
        let socket_url = peer.as_ref().unwrap_or(server).base_url().to_owned();
        let instances = if peer.is_some() { 2 } else { 1 };
        let latency = referral_latency(
            name,
            what,
            server.base_url(),
            &socket_url,
            instances,
            config,
        )
        .await;
        if let Some(peer) = peer {
            peer_log = Some(peer.shutdown().await);
        }
        match latency {
            Ok(rows) => measured.latency.extend(rows),
            Err(e) => {
                let context = format!("measuring {} latency", what.name());
                return (Err(e.context(context)), peer_log);
            }
        }
    }
    if phases.sockets {
        match idle_sockets(backend.name(), server, config).await {
            Ok(idle) => measured.idle = Some(idle),
            Err(e) => return (Err(e.context("measuring idle sockets")), peer_log),
        }
    }
    (Ok(measured), peer_log)
}

// ---------------------------------------------------------------------------------------------
// Setup over HTTP

/// Creates an active staff account (`role`: doctor, secretary...) as the administrator; returns
/// its id.
pub(crate) async fn create_staff(
    client: &reqwest::Client,
    base_url: &str,
    admin: &str,
    username: &str,
    full_name: &str,
    role: &str,
) -> anyhow::Result<Uuid> {
    let request = client
        .post(format!("{base_url}/api/v1/admin/users"))
        .bearer_auth(admin)
        .json(&serde_json::json!({
            "username": username,
            "password": PASSWORD,
            "full_name": full_name,
            "role": role,
        }));
    let created: Created = expect_json(
        request,
        reqwest::StatusCode::CREATED,
        &format!("creating {username} as the administrator"),
    )
    .await?;
    Ok(created.id)
}

/// What a latency measure needs: who posts what where, and who reads their socket.
#[derive(Debug)]
struct LatencySetup {
    what: Measured,
    sender_token: String,
    recipient_token: String,
    /// The path each POST goes to, under `/api/v1`.
    path: String,
    /// The encoded body, the same for every POST.
    body: Vec<u8>,
}

/// The patient the referrals are about, registered by the sender (so on its care team).
fn patient_body() -> serde_json::Value {
    serde_json::json!({
        "full_name": "Rosalind Agnes Pemberton",
        "date_of_birth": "1949-09-02",
        "sex": "female",
        "contact": {
            "phone": "+44 161 496 0754",
            "address": {
                "lines": ["12 Wilmslow Road"],
                "city": "Manchester",
                "postal_code": "M14 5TQ",
                "country": "United Kingdom"
            }
        },
        "identifiers": [{"system": "nhs_number", "value": "485 777 3456"}],
        "emergency_contact": {
            "name": "Helen Pemberton",
            "relationship": "daughter",
            "phone": "+44 7700 900456"
        }
    })
}

/// A referral as a general practitioner would write one: a few hundred characters of summary.
fn referral_body(patient_id: Uuid, to_doctor_id: Uuid) -> serde_json::Value {
    serde_json::json!({
        "patient_id": patient_id,
        "to_doctor_id": to_doctor_id,
        "reason": "Exertional chest tightness, for cardiology assessment",
        "clinical_summary": "77-year-old woman with three months of chest tightness on climbing \
            stairs, relieved by rest within five minutes. No pain at rest, no syncope. Known \
            hypertension on amlodipine 5 mg; ex-smoker (20 pack-years). ECG at the surgery: sinus \
            rhythm, no acute changes. Lipids and HbA1c requested. Please assess for stable \
            angina and advise on investigation.",
        "urgency": "routine",
    })
}

async fn seed_referrals(base_url: &str) -> anyhow::Result<LatencySetup> {
    let client = client(SETUP_TIMEOUT)?;
    let admin = sign_in(&client, base_url, ADMIN_USERNAME).await?;
    create_staff(
        &client,
        base_url,
        &admin,
        SENDER_USERNAME,
        "Bench Referring Doctor",
        "doctor",
    )
    .await?;
    let recipient_id = create_staff(
        &client,
        base_url,
        &admin,
        RECIPIENT_USERNAME,
        "Bench Receiving Doctor",
        "doctor",
    )
    .await?;
    let sender_token = sign_in(&client, base_url, SENDER_USERNAME).await?;
    let recipient_token = sign_in(&client, base_url, RECIPIENT_USERNAME).await?;
    let request = client
        .post(format!("{base_url}/api/v1/patients"))
        .bearer_auth(&sender_token)
        .json(&patient_body());
    let patient: Created = expect_json(
        request,
        reqwest::StatusCode::CREATED,
        "registering the patient as the referring doctor",
    )
    .await?;
    let body = serde_json::to_vec(&referral_body(patient.id, recipient_id))
        .context("cannot encode the referral")?;
    Ok(LatencySetup {
        what: Measured::Referral,
        sender_token,
        recipient_token,
        path: "/referrals".to_owned(),
        body,
    })
}

/// A doctor, a patient with an account whose record the doctor registered (so on its care
/// team), and a conversation between them: the doctor posts messages, the patient's socket
/// reads them.
async fn seed_messages(base_url: &str) -> anyhow::Result<LatencySetup> {
    let client = client(SETUP_TIMEOUT)?;
    let admin = sign_in(&client, base_url, ADMIN_USERNAME).await?;
    create_staff(
        &client,
        base_url,
        &admin,
        MESSAGE_DOCTOR_USERNAME,
        "Bench Messaging Doctor",
        "doctor",
    )
    .await?;
    let request = client
        .post(format!("{base_url}/api/v1/auth/register"))
        .json(&serde_json::json!({
            "username": MESSAGE_PATIENT_USERNAME,
            "password": PASSWORD,
            "full_name": "Rosalind Agnes Pemberton",
            "role": "patient",
        }));
    let account: Created = expect_json(
        request,
        reqwest::StatusCode::CREATED,
        "registering the patient's account",
    )
    .await?;
    let doctor_token = sign_in(&client, base_url, MESSAGE_DOCTOR_USERNAME).await?;
    let patient_token = sign_in(&client, base_url, MESSAGE_PATIENT_USERNAME).await?;
    let mut record = patient_body();
    record["user_id"] = serde_json::json!(account.id);
    // Another person than the referrals' patient, who may be registered on this server too.
    record["identifiers"] = serde_json::json!([{"system": "nhs_number", "value": "943 476 5919"}]);
    let request = client
        .post(format!("{base_url}/api/v1/patients"))
        .bearer_auth(&doctor_token)
        .json(&record);
    let patient: Created = expect_json(
        request,
        reqwest::StatusCode::CREATED,
        "registering the patient's record as the doctor",
    )
    .await?;
    let request = client
        .post(format!("{base_url}/api/v1/conversations"))
        .bearer_auth(&doctor_token)
        .json(&serde_json::json!({ "patient_id": patient.id, "participant_ids": [] }));
    let conversation: Created = expect_json(
        request,
        reqwest::StatusCode::CREATED,
        "starting the conversation as the doctor",
    )
    .await?;
    let body = serde_json::to_vec(&serde_json::json!({
        "body": "Your blood pressure readings look better this week. Keep the amlodipine at 5 mg \
            and send me another week of readings before your appointment on Thursday.",
    }))
    .context("cannot encode the message")?;
    Ok(LatencySetup {
        what: Measured::Message,
        sender_token: doctor_token,
        recipient_token: patient_token,
        path: format!("/conversations/{}/messages", conversation.id),
        body,
    })
}

// ---------------------------------------------------------------------------------------------
// Sockets and frames

/// `http://host:port` → `ws://host:port/api/v1/ws`.
fn ws_url(base_url: &str) -> String {
    let rest = base_url.strip_prefix("http://").unwrap_or(base_url);
    format!("ws://{rest}/api/v1/ws")
}

/// Opens `GET /api/v1/ws` with a Bearer token, Nagle off (frames are small and timed).
async fn connect(url: &str, token: &str, config: WebSocketConfig) -> Result<Socket, String> {
    let mut request = url
        .into_client_request()
        .map_err(|e| format!("bad request: {e}"))?;
    let bearer =
        HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| "bad token".to_owned())?;
    request.headers_mut().insert(AUTHORIZATION, bearer);
    tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .map(|(socket, _response)| socket)
        .map_err(|e| ws_error_kind(&e))
}

/// An error's kind, for counting: the HTTP status of a refused upgrade, else its class.
fn ws_error_kind(error: &tungstenite::Error) -> String {
    match error {
        tungstenite::Error::Http(response) => format!("HTTP {}", response.status().as_u16()),
        tungstenite::Error::Io(e) => format!("io: {:?}", e.kind()),
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            "connection closed".to_owned()
        }
        tungstenite::Error::Protocol(_) => "protocol error".to_owned(),
        _ => "websocket error".to_owned(),
    }
}

/// A close frame, for counting: its code and reason.
fn close_kind(frame: Option<&tungstenite::protocol::CloseFrame>) -> String {
    frame.map_or_else(
        || "closed without a code".to_owned(),
        |frame| format!("closed {} {}", u16::from(frame.code), frame.reason.as_str()),
    )
}

/// The server's frames, as far as this tool reads them.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerFrame {
    Notification {
        notification: NotificationFrame,
    },
    Ready {
        last_id: i64,
    },
    Message {
        id: i64,
        message: Option<MessageFrame>,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct MessageFrame {
    id: Uuid,
}

#[derive(Debug, Deserialize)]
struct NotificationFrame {
    id: i64,
    kind: String,
    data: NotificationDataFrame,
}

#[derive(Debug, Deserialize)]
struct NotificationDataFrame {
    referral_id: Option<Uuid>,
}

/// Reads frames until `ready`; returns its `last_id`. Notifications before it (a replay) are
/// skipped: the sockets here are opened without `after`, so there should be none.
async fn wait_ready(socket: &mut Socket) -> Result<i64, String> {
    let read = async {
        while let Some(frame) = socket.next().await {
            match frame {
                Ok(Message::Text(text)) => match serde_json::from_str::<ServerFrame>(&text) {
                    Ok(ServerFrame::Ready { last_id }) => return Ok(last_id),
                    Ok(_) => {}
                    Err(_) => return Err("unreadable frame before ready".to_owned()),
                },
                Ok(Message::Close(frame)) => return Err(close_kind(frame.as_ref())),
                Ok(_) => {}
                Err(e) => return Err(ws_error_kind(&e)),
            }
        }
        Err("connection closed".to_owned())
    };
    tokio::time::timeout(FRAME_TIMEOUT, read)
        .await
        .unwrap_or_else(|_| Err("no ready frame in time".to_owned()))
}

pub(crate) fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3)
        .map_err(|e| anyhow!("cannot create a histogram: {e:?}"))
}

pub(crate) fn record(histogram: &mut Histogram<u64>, elapsed: Duration) {
    let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    histogram.saturating_record(us.clamp(1, HIST_MAX_US));
}

pub(crate) fn ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    if histogram.is_empty() {
        return 0.0;
    }
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

pub(crate) fn mean_ms(histogram: &Histogram<u64>) -> f64 {
    if histogram.is_empty() {
        0.0
    } else {
        histogram.mean() / 1000.0
    }
}

// ---------------------------------------------------------------------------------------------
// Referral-to-socket latency

/// Where one referral's notification stands.
#[derive(Debug, Default)]
struct Arrival {
    /// When its first frame was read.
    first: Option<Instant>,
    /// How many frames named it.
    frames: u32,
    /// The sender waiting for it, when its POST answered before the frame came.
    waiter: Option<oneshot::Sender<Instant>>,
}

/// The referrals' notifications as B's socket reads them, shared by the reader and the senders.
#[derive(Debug, Default)]
struct Arrivals {
    by_referral: Mutex<HashMap<Uuid, Arrival>>,
    /// Set when the reader stopped (socket closed or failed).
    reader_gone: AtomicBool,
}

/// A sender's claim on its referral's notification.
enum Claim {
    /// It had already arrived, at this instant.
    Arrived(Instant),
    /// It will be sent here.
    Pending(oneshot::Receiver<Instant>),
}

impl Arrivals {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arrival>> {
        self.by_referral
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The reader saw a frame for `referral` at `at`.
    fn arrived(&self, referral: Uuid, at: Instant) {
        let mut map = self.lock();
        let arrival = map.entry(referral).or_default();
        arrival.frames += 1;
        if arrival.first.is_none() {
            arrival.first = Some(at);
            if let Some(waiter) = arrival.waiter.take() {
                // The sender may have given up waiting: nothing to do then.
                let _ = waiter.send(at);
            }
        }
    }

    /// A sender's POST answered with `referral`.
    fn claim(&self, referral: Uuid) -> Claim {
        let mut map = self.lock();
        let arrival = map.entry(referral).or_default();
        if let Some(at) = arrival.first {
            return Claim::Arrived(at);
        }
        let (sender, receiver) = oneshot::channel();
        arrival.waiter = Some(sender);
        Claim::Pending(receiver)
    }

    /// The reader stopped: every waiting sender hears it at once.
    fn reader_stopped(&self) {
        self.reader_gone.store(true, Ordering::SeqCst);
        for arrival in self.lock().values_mut() {
            arrival.waiter = None;
        }
    }

    /// How many times each referral arrived.
    fn frames(&self) -> HashMap<Uuid, u32> {
        self.lock()
            .iter()
            .map(|(id, arrival)| (*id, arrival.frames))
            .collect()
    }
}

/// How the sent referrals' notifications were delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Delivery {
    once: u64,
    missing: u64,
    duplicated: u64,
    /// Frames naming a referral that was not sent.
    stray: u64,
}

fn delivery(sent: &HashSet<Uuid>, frames: &HashMap<Uuid, u32>) -> Delivery {
    let mut delivery = Delivery::default();
    for id in sent {
        match frames.get(id).copied().unwrap_or(0) {
            0 => delivery.missing += 1,
            1 => delivery.once += 1,
            _ => delivery.duplicated += 1,
        }
    }
    delivery.stray = frames
        .iter()
        .filter(|(id, _)| !sent.contains(id))
        .map(|(_, n)| u64::from(*n))
        .sum();
    delivery
}

/// What B's reader saw besides the arrivals.
#[derive(Debug, Default)]
struct ReaderReport {
    /// Frames of another kind than `referral.received`, or without a referral id.
    other_frames: u64,
    id_breaks: u64,
    /// Why the socket ended, when the server (or the network) ended it.
    ended: Option<String>,
}

/// Reads B's socket until `stop` (then closes it politely) or until the socket ends.
async fn read_recipient_socket(
    mut socket: Socket,
    last_id: i64,
    arrivals: Arc<Arrivals>,
    mut stop: oneshot::Receiver<()>,
) -> ReaderReport {
    let mut report = ReaderReport::default();
    let mut last_id = last_id;
    loop {
        let frame = tokio::select! {
            frame = socket.next() => frame,
            _ = &mut stop => {
                let _ = tokio::time::timeout(FRAME_TIMEOUT, socket.close(None)).await;
                break;
            }
        };
        let at = Instant::now();
        match frame {
            Some(Ok(Message::Text(text))) => match serde_json::from_str::<ServerFrame>(&text) {
                Ok(ServerFrame::Notification { notification }) => {
                    if notification.id != last_id + 1 {
                        report.id_breaks += 1;
                    }
                    last_id = last_id.max(notification.id);
                    match (notification.kind.as_str(), notification.data.referral_id) {
                        ("referral.received", Some(referral)) => arrivals.arrived(referral, at),
                        _ => report.other_frames += 1,
                    }
                }
                Ok(ServerFrame::Message { id, message }) => {
                    if id != last_id + 1 {
                        report.id_breaks += 1;
                    }
                    last_id = last_id.max(id);
                    match message {
                        Some(message) => arrivals.arrived(message.id, at),
                        None => report.other_frames += 1,
                    }
                }
                _ => report.other_frames += 1,
            },
            Some(Ok(Message::Close(frame))) => {
                report.ended = Some(close_kind(frame.as_ref()));
                break;
            }
            // Pings are answered by tungstenite on the next read.
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                report.ended = Some(ws_error_kind(&e));
                break;
            }
            None => {
                report.ended = Some("connection closed".to_owned());
                break;
            }
        }
    }
    arrivals.reader_stopped();
    report
}

/// Shared by the senders of one row.
struct Senders {
    url: String,
    token: String,
    body: Vec<u8>,
    /// Referrals to send, warm-up first.
    total: u64,
    warmup: u64,
    next: AtomicU64,
    misses_in_a_row: AtomicUsize,
    gave_up: AtomicBool,
    arrivals: Arc<Arrivals>,
}

/// What one sender saw.
struct SenderTally {
    latency: Histogram<u64>,
    post: Histogram<u64>,
    sent: Vec<Uuid>,
    frames_before_response: u64,
    errors: BTreeMap<String, u64>,
}

async fn send_referrals(shared: Arc<Senders>) -> anyhow::Result<SenderTally> {
    let client = client(FRAME_TIMEOUT)?;
    let mut tally = SenderTally {
        latency: histogram()?,
        post: histogram()?,
        sent: Vec::new(),
        frames_before_response: 0,
        errors: BTreeMap::new(),
    };
    loop {
        if shared.gave_up.load(Ordering::SeqCst)
            || shared.arrivals.reader_gone.load(Ordering::SeqCst)
        {
            break;
        }
        let i = shared.next.fetch_add(1, Ordering::SeqCst);
        if i >= shared.total {
            break;
        }
        let request = client
            .post(shared.url.as_str())
            .bearer_auth(&shared.token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(shared.body.clone());
        let started = Instant::now();
        let referral = match request.send().await {
            Ok(response) if response.status() == reqwest::StatusCode::CREATED => {
                response.json::<Created>().await.map(|created| created.id)
            }
            Ok(response) => {
                let kind = format!("HTTP {}", response.status().as_u16());
                *tally.errors.entry(kind).or_default() += 1;
                continue;
            }
            Err(e) => Err(e),
        };
        let answered = Instant::now();
        let referral = match referral {
            Ok(referral) => referral,
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timeout"
                } else {
                    "transport error"
                };
                *tally.errors.entry(kind.to_owned()).or_default() += 1;
                continue;
            }
        };
        tally.sent.push(referral);
        let arrived = match shared.arrivals.claim(referral) {
            Claim::Arrived(at) => {
                tally.frames_before_response += 1;
                Some(at)
            }
            Claim::Pending(receiver) => tokio::time::timeout(FRAME_TIMEOUT, receiver)
                .await
                .ok()
                .and_then(Result::ok),
        };
        let Some(arrived) = arrived else {
            // Counted as missing at the end, from the frames read.
            let misses = shared.misses_in_a_row.fetch_add(1, Ordering::SeqCst) + 1;
            if misses >= MAX_MISSES_IN_A_ROW as usize {
                shared.gave_up.store(true, Ordering::SeqCst);
            }
            continue;
        };
        shared.misses_in_a_row.store(0, Ordering::SeqCst);
        if i >= shared.warmup {
            record(
                &mut tally.latency,
                arrived.saturating_duration_since(started),
            );
            record(&mut tally.post, answered.saturating_duration_since(started));
        }
    }
    Ok(tally)
}

/// Both rows of the latency measure (sequential, then concurrent if asked), each with its own
/// socket for B on `socket_base_url`, the POSTs going to `post_base_url`.
async fn referral_latency(
    backend: &'static str,
    what: Measured,
    post_base_url: &str,
    socket_base_url: &str,
    instances: u32,
    config: &RealtimeConfig,
) -> anyhow::Result<Vec<ReferralLatencyResult>> {
    let setup = match what {
        Measured::Referral => {
            eprintln!(
                "carehub-bench: [{backend}] seeding two doctors and a patient on the first one's care team"
            );
            seed_referrals(post_base_url).await?
        }
        Measured::Message => {
            eprintln!(
                "carehub-bench: [{backend}] seeding a doctor, a patient with an account and their conversation"
            );
            seed_messages(post_base_url).await?
        }
    };
    let mut in_flight = vec![1];
    if config.referral_concurrency > 1 {
        in_flight.push(config.referral_concurrency);
    }
    let mut rows = Vec::with_capacity(in_flight.len());
    for concurrency in in_flight {
        eprintln!(
            "carehub-bench: [{backend}] {} → socket latency: {} of them ({} warm-up), \
             {concurrency} in flight, {instances} instance(s)",
            what.name(),
            config.referrals,
            config.referral_warmup
        );
        rows.push(
            latency_row(
                backend,
                post_base_url,
                socket_base_url,
                instances,
                concurrency,
                &setup,
                config,
            )
            .await?,
        );
    }
    Ok(rows)
}

async fn latency_row(
    backend: &'static str,
    post_base_url: &str,
    socket_base_url: &str,
    instances: u32,
    concurrency: u32,
    setup: &LatencySetup,
    config: &RealtimeConfig,
) -> anyhow::Result<ReferralLatencyResult> {
    let mut socket = connect(
        &ws_url(socket_base_url),
        &setup.recipient_token,
        WebSocketConfig::default(),
    )
    .await
    .map_err(|e| anyhow!("opening the receiving doctor's socket: {e}"))?;
    let last_id = wait_ready(&mut socket)
        .await
        .map_err(|e| anyhow!("waiting for the receiving doctor's socket to be ready: {e}"))?;

    let arrivals = Arc::new(Arrivals::default());
    let (stop, stop_reader) = oneshot::channel();
    let reader = tokio::spawn(read_recipient_socket(
        socket,
        last_id,
        arrivals.clone(),
        stop_reader,
    ));
    let warmup = u64::from(config.referral_warmup);
    let shared = Arc::new(Senders {
        url: format!("{post_base_url}/api/v1{}", setup.path),
        token: setup.sender_token.clone(),
        body: setup.body.clone(),
        total: warmup + u64::from(config.referrals),
        warmup,
        next: AtomicU64::new(0),
        misses_in_a_row: AtomicUsize::new(0),
        gave_up: AtomicBool::new(false),
        arrivals: arrivals.clone(),
    });
    let started = Instant::now();
    let mut senders = JoinSet::new();
    for _ in 0..concurrency {
        senders.spawn(send_referrals(shared.clone()));
    }
    let mut latency = histogram()?;
    let mut post = histogram()?;
    let mut sent = HashSet::new();
    let mut frames_before_response = 0;
    let mut post_errors: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(joined) = senders.join_next().await {
        let tally = joined.context("a referral sender panicked")??;
        latency
            .add(&tally.latency)
            .map_err(|e| anyhow!("cannot merge histograms: {e:?}"))?;
        post.add(&tally.post)
            .map_err(|e| anyhow!("cannot merge histograms: {e:?}"))?;
        sent.extend(tally.sent);
        frames_before_response += tally.frames_before_response;
        for (kind, n) in tally.errors {
            *post_errors.entry(kind).or_default() += n;
        }
    }
    let elapsed = started.elapsed();

    // A late duplicate still counts.
    tokio::time::sleep(DUPLICATE_GRACE).await;
    let _ = stop.send(());
    let report = reader.await.context("the socket reader panicked")?;
    let delivered = delivery(&sent, &arrivals.frames());
    let aborted = match (&report.ended, shared.gave_up.load(Ordering::SeqCst)) {
        (Some(ended), _) => Some(format!("the receiving socket ended: {ended}")),
        (None, true) => Some(format!(
            "gave up after {MAX_MISSES_IN_A_ROW} referrals in a row never reached the socket"
        )),
        (None, false) => None,
    };
    let measured = latency.len();
    let secs = elapsed.as_secs_f64();
    let exactly_once = aborted.is_none()
        && post_errors.is_empty()
        && delivered.missing == 0
        && delivered.duplicated == 0
        && delivered.stray == 0
        && report.other_frames == 0
        && report.id_breaks == 0
        && delivered.once == shared.total;
    Ok(ReferralLatencyResult {
        backend,
        what: setup.what.name(),
        instances,
        in_flight: concurrency,
        measured,
        sent: sent.len() as u64,
        delivered_once: delivered.once,
        missing: delivered.missing,
        duplicated: delivered.duplicated,
        stray_frames: delivered.stray + report.other_frames,
        id_breaks: report.id_breaks,
        post_errors,
        aborted,
        frames_before_response,
        elapsed_secs: secs,
        referrals_per_sec: if secs > 0.0 {
            sent.len() as f64 / secs
        } else {
            0.0
        },
        mean_ms: mean_ms(&latency),
        p50_ms: ms(&latency, 0.50),
        p90_ms: ms(&latency, 0.90),
        p99_ms: ms(&latency, 0.99),
        max_ms: if latency.is_empty() {
            0.0
        } else {
            latency.max() as f64 / 1000.0
        },
        post_p50_ms: ms(&post, 0.50),
        post_p99_ms: ms(&post, 0.99),
        exactly_once,
    })
}

// ---------------------------------------------------------------------------------------------
// Idle sockets

/// `VmRSS` of process `pid`, in bytes.
fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_vm_rss(&status).with_context(|| format!("no VmRSS line in {path}"))
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let mut fields = line.split_whitespace().skip(1);
    let value: u64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") => Some(value * 1024),
        _ => None,
    }
}

/// Registers `count` patients and signs each in once; returns their access tokens.
async fn socket_users(base_url: &str, count: u32) -> anyhow::Result<Vec<String>> {
    let client = client(SETUP_TIMEOUT)?;
    let register = format!("{base_url}/api/v1/auth/register");
    let tokens = futures_util::stream::iter(0..count)
        .map(|i| {
            let (client, register) = (client.clone(), register.clone());
            async move {
                let username = format!("bench.socket.{i:04}");
                let request = client.post(register).json(&serde_json::json!({
                    "username": username,
                    "password": PASSWORD,
                    "full_name": format!("Bench Socket User {i}"),
                    "role": "patient",
                }));
                let _: serde_json::Value = expect_json(
                    request,
                    reqwest::StatusCode::CREATED,
                    &format!("registering {username}"),
                )
                .await?;
                sign_in(&client, base_url, &username).await
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    tokens.into_iter().collect()
}

/// Counts of what happened to the held sockets.
#[derive(Debug, Default)]
struct HeldEnds {
    by_kind: Mutex<BTreeMap<String, u64>>,
}

impl HeldEnds {
    fn add(&self, kind: String) {
        *self
            .by_kind
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(kind)
            .or_default() += 1;
    }

    fn snapshot(&self) -> BTreeMap<String, u64> {
        self.by_kind
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Holds a ready socket, reading it (so pings are answered) until `stop`, then closes it. A
/// socket that ends before is counted in `ends`.
async fn hold(mut socket: Socket, mut stop: watch::Receiver<bool>, ends: Arc<HeldEnds>) {
    loop {
        tokio::select! {
            frame = socket.next() => match frame {
                Some(Ok(Message::Close(frame))) => {
                    ends.add(close_kind(frame.as_ref()));
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    ends.add(ws_error_kind(&e));
                    return;
                }
                None => {
                    ends.add("connection closed".to_owned());
                    return;
                }
            },
            // A change, or the sender dropped: either way, stop.
            _ = stop.changed() => break,
        }
    }
    let close = async {
        socket.send(Message::Close(None)).await.ok();
        // Read until the server's answering close, so both ends finish the handshake.
        while let Some(Ok(_)) = socket.next().await {}
    };
    let _ = tokio::time::timeout(FRAME_TIMEOUT, close).await;
}

/// Small buffers: ten thousand sockets with tungstenite's default 128 KiB each would cost this
/// process over a gigabyte, and the frames here are tiny.
fn idle_socket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

async fn idle_sockets(
    backend: &'static str,
    server: &Server,
    config: &RealtimeConfig,
) -> anyhow::Result<IdleSocketsResult> {
    let pid = server
        .pid()
        .context("the server has exited: no process to measure")?;
    let users = config.idle_socket_users.min(config.idle_sockets).max(1);
    eprintln!("carehub-bench: [{backend}] idle sockets: registering and signing in {users} users");
    let tokens = Arc::new(socket_users(server.base_url(), users).await?);

    // Let the sign-ins' work settle before the baseline.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = rss_bytes(pid)?;
    eprintln!(
        "carehub-bench: [{backend}] idle sockets: opening {} sockets, {} at a time",
        config.idle_sockets, config.socket_open_concurrency
    );
    let url = ws_url(server.base_url());
    let ends = Arc::new(HeldEnds::default());
    let (stop, stopped) = watch::channel(false);
    let mut held = JoinSet::new();
    let mut ready = histogram()?;
    let mut open_errors: BTreeMap<String, u64> = BTreeMap::new();
    let started = Instant::now();
    let mut opens = futures_util::stream::iter(0..config.idle_sockets)
        .map(|i| {
            let (url, tokens) = (url.clone(), tokens.clone());
            async move {
                let token = &tokens[i as usize % tokens.len()];
                let begun = Instant::now();
                let mut socket = connect(&url, token, idle_socket_config()).await?;
                wait_ready(&mut socket).await?;
                Ok::<_, String>((socket, begun.elapsed()))
            }
        })
        .buffer_unordered(config.socket_open_concurrency as usize);
    while let Some(opened) = opens.next().await {
        match opened {
            Ok((socket, took)) => {
                record(&mut ready, took);
                held.spawn(hold(socket, stopped.clone(), ends.clone()));
            }
            Err(kind) => *open_errors.entry(kind).or_default() += 1,
        }
    }
    drop(opens);
    let open_secs = started.elapsed().as_secs_f64();
    let rss_ready = rss_bytes(pid)?;
    eprintln!(
        "carehub-bench: [{backend}] idle sockets: {} ready; holding them {} s",
        ready.len(),
        config.settle_secs
    );
    tokio::time::sleep(Duration::from_secs(config.settle_secs)).await;
    let rss_settled = rss_bytes(pid)?;
    let closed_while_held = ends.snapshot();

    eprintln!("carehub-bench: [{backend}] idle sockets: closing them");
    let _ = stop.send(true);
    let closing = async { while held.join_next().await.is_some() {} };
    if tokio::time::timeout(CLOSE_TIMEOUT, closing).await.is_err() {
        held.abort_all();
    }
    tokio::time::sleep(AFTER_CLOSE_PAUSE).await;
    let rss_after_close = rss_bytes(pid)?;

    let ready_count = ready.len();
    let per_socket = if ready_count > 0 {
        (rss_settled as f64 - rss_before as f64) / ready_count as f64
    } else {
        0.0
    };
    Ok(IdleSocketsResult {
        backend,
        sockets: u64::from(config.idle_sockets),
        ready: ready_count,
        users: u64::from(users),
        complete: open_errors.is_empty()
            && closed_while_held.is_empty()
            && ready_count == u64::from(config.idle_sockets),
        open_errors,
        closed_while_held,
        rss_before_bytes: rss_before,
        rss_ready_bytes: rss_ready,
        rss_settled_bytes: rss_settled,
        rss_after_close_bytes: rss_after_close,
        per_socket_bytes: per_socket,
        settle_secs: config.settle_secs,
        open_secs,
        opened_per_sec: if open_secs > 0.0 {
            ready_count as f64 / open_secs
        } else {
            0.0
        },
        ready_p50_ms: ms(&ready, 0.50),
        ready_p99_ms: ms(&ready, 0.99),
        ready_max_ms: if ready.is_empty() {
            0.0
        } else {
            ready.max() as f64 / 1000.0
        },
    })
}

/// Raises this process's soft open-file limit to its hard limit (the servers started after
/// inherit it) and checks that `sockets` idle sockets fit under it.
pub fn raise_open_file_limit(sockets: u32) -> anyhow::Result<u64> {
    let limit = rlimit::increase_nofile_limit(u64::MAX)
        .context("cannot raise the open-file limit (RLIMIT_NOFILE)")?;
    let needed = u64::from(sockets) + SPARE_FILES;
    if limit < needed {
        bail!(
            "{sockets} idle sockets need about {needed} open files in this process and as many \
             in the server, but the limit is {limit}: lower --idle-sockets"
        );
    }
    Ok(limit)
}

// ---------------------------------------------------------------------------------------------
// The report

/// One line for the preamble.
pub fn describe(
    config: &RealtimeConfig,
    phases: RealtimePhases,
    open_files: Option<u64>,
) -> String {
    let mut parts = Vec::new();
    if phases.referrals {
        let concurrent = if config.referral_concurrency > 1 {
            format!(", then {} in flight", config.referral_concurrency)
        } else {
            String::new()
        };
        parts.push(format!(
            "referral → socket: {} referrals timed after {} warm-up, one in flight{concurrent}; \
             PostgreSQL: POST to instance 1, socket on instance 2",
            config.referrals, config.referral_warmup
        ));
    }
    if phases.messages {
        parts.push(format!(
            "message → socket: {} messages from a doctor to the patient timed after {} warm-up, \
             as referrals are; PostgreSQL: POST to instance 1, the patient's socket on instance 2",
            config.referrals, config.referral_warmup
        ));
    }
    if phases.sockets {
        parts.push(format!(
            "idle sockets: {} held by {} users, opened {} at a time, held {} s{}",
            config.idle_sockets,
            config.idle_socket_users.min(config.idle_sockets).max(1),
            config.socket_open_concurrency,
            config.settle_secs,
            open_files.map_or_else(String::new, |n| format!(
                "; open-file limit {n} (the servers inherit it)"
            )),
        ));
    }
    format!("Real time: {}.", parts.join("; "))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The Markdown table of the latency rows.
pub fn render_latency(rows: &[ReferralLatencyResult]) -> String {
    let mut out = String::new();
    out.push_str(
        "| backend | what | instances | in flight | timed | delivered once / sent | missing | dup. | \
         mean ms | p50 ms | p90 ms | p99 ms | max ms | POST p50 ms |\n",
    );
    out.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for r in rows {
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} / {}{} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            r.backend,
            r.what,
            r.instances,
            r.in_flight,
            r.measured,
            r.delivered_once,
            r.sent,
            if r.exactly_once { "" } else { " ⚠" },
            r.missing,
            r.duplicated,
            r.mean_ms,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.max_ms,
            r.post_p50_ms,
        );
    }
    out
}

/// The Markdown table of the idle-socket rows.
pub fn render_idle(rows: &[IdleSocketsResult]) -> String {
    let mut out = String::new();
    out.push_str(
        "| backend | sockets ready | users | RSS before MiB | all ready MiB | settled MiB | \
         per socket KiB | after close MiB | open s | ready p50 ms | ready p99 ms |\n",
    );
    out.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} / {}{} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} |",
            r.backend,
            r.ready,
            r.sockets,
            if r.complete { "" } else { " ⚠" },
            r.users,
            mib(r.rss_before_bytes),
            mib(r.rss_ready_bytes),
            mib(r.rss_settled_bytes),
            r.per_socket_bytes / 1024.0,
            mib(r.rss_after_close_bytes),
            r.open_secs,
            r.ready_p50_ms,
            r.ready_p99_ms,
        );
    }
    out
}

/// Prints both tables (those that have rows) with a line on how to read them.
pub fn print(latency: &[ReferralLatencyResult], idle: &[IdleSocketsResult]) {
    if !latency.is_empty() {
        println!("## Referral and message → socket");
        println!();
        print!("{}", render_latency(latency));
        println!();
        println!(
            "Latency: from just before `POST /api/v1/referrals` (or `POST \
             /api/v1/conversations/{{id}}/messages`) is sent until the `referral.received` frame \
             naming that referral (or the `message` frame carrying that message) is read from the \
             recipient's socket (HDR histogram, µs resolution). \"delivered once / sent\": POSTs \
             answered 201 whose frame arrived exactly once (warm-up included); the socket's stream \
             ids must also follow each other without a gap."
        );
        for r in latency {
            println!(
                "- {} {} {} in flight: {:.1} POSTs/s, {} of {} frames arrived before the POST's \
                 response, POST p99 {:.2} ms, {} stray frames, {} id breaks{}{}",
                r.backend,
                r.what,
                r.in_flight,
                r.referrals_per_sec,
                r.frames_before_response,
                r.sent,
                r.post_p99_ms,
                r.stray_frames,
                r.id_breaks,
                if r.post_errors.is_empty() {
                    String::new()
                } else {
                    format!("; POST errors {:?}", r.post_errors)
                },
                r.aborted
                    .as_ref()
                    .map_or_else(String::new, |why| format!("; ABORTED: {why}")),
            );
        }
        println!();
    }
    if !idle.is_empty() {
        println!("## Idle authenticated sockets");
        println!();
        print!("{}", render_idle(idle));
        println!();
        println!(
            "RSS: the server's `VmRSS` before the first socket, once every socket had its \
             `ready` frame, after holding them (settled), and after closing them. Per socket: \
             (settled − before) / ready."
        );
        for r in idle {
            println!(
                "- {}: {:.0} sockets/s opened; ready max {:.2} ms; settled after {} s{}{}",
                r.backend,
                r.opened_per_sec,
                r.ready_max_ms,
                r.settle_secs,
                if r.open_errors.is_empty() {
                    String::new()
                } else {
                    format!("; open errors {:?}", r.open_errors)
                },
                if r.closed_while_held.is_empty() {
                    String::new()
                } else {
                    format!("; closed while held {:?}", r.closed_while_held)
                },
            );
        }
        println!();
    }
}

/// Prints a loud warning when a referral was lost, duplicated or failed, or when a socket
/// could not be opened or was closed while idle; `true` when none was.
pub fn flag(latency: &[ReferralLatencyResult], idle: &[IdleSocketsResult]) -> bool {
    let bad_latency: Vec<&ReferralLatencyResult> =
        latency.iter().filter(|r| !r.exactly_once).collect();
    let bad_idle: Vec<&IdleSocketsResult> = idle.iter().filter(|r| !r.complete).collect();
    if bad_latency.is_empty() && bad_idle.is_empty() {
        return true;
    }
    let banner = "!".repeat(72);
    eprintln!("{banner}");
    for r in bad_latency {
        eprintln!(
            "!!! {} referrals, {} in flight: {} of {} sent arrived exactly once; {} missing, {} \
             duplicated, {} stray frames, {} id breaks, POST errors {:?}{}",
            r.backend,
            r.in_flight,
            r.delivered_once,
            r.sent,
            r.missing,
            r.duplicated,
            r.stray_frames,
            r.id_breaks,
            r.post_errors,
            r.aborted
                .as_ref()
                .map_or_else(String::new, |why| format!("; {why}")),
        );
    }
    for r in bad_idle {
        eprintln!(
            "!!! {} idle sockets: {} of {} ready; open errors {:?}; closed while held {:?}",
            r.backend, r.ready, r.sockets, r.open_errors, r.closed_while_held
        );
    }
    eprintln!("{banner}");
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sent_referral_is_delivered_once_missing_or_duplicated() {
        let (a, b, c, stranger) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let sent = HashSet::from([a, b, c]);
        let frames = HashMap::from([(a, 1), (b, 2), (stranger, 3)]);
        assert_eq!(
            delivery(&sent, &frames),
            Delivery {
                once: 1,
                missing: 1,
                duplicated: 1,
                stray: 3
            }
        );
    }

    #[test]
    fn a_frame_before_the_response_and_one_after_are_both_timed() -> anyhow::Result<()> {
        let arrivals = Arrivals::default();
        let early = Uuid::new_v4();
        let at = Instant::now();
        arrivals.arrived(early, at);
        assert!(matches!(arrivals.claim(early), Claim::Arrived(seen) if seen == at));

        let late = Uuid::new_v4();
        let Claim::Pending(mut receiver) = arrivals.claim(late) else {
            bail!("nothing arrived yet");
        };
        assert!(receiver.try_recv().is_err());
        let at = Instant::now();
        arrivals.arrived(late, at);
        arrivals.arrived(late, Instant::now());
        assert_eq!(receiver.try_recv()?, at);
        assert_eq!(arrivals.frames()[&late], 2);
        Ok(())
    }

    #[test]
    fn a_stopped_reader_releases_the_waiting_senders() {
        let arrivals = Arrivals::default();
        let Claim::Pending(mut receiver) = arrivals.claim(Uuid::new_v4()) else {
            panic!("nothing arrived yet");
        };
        arrivals.reader_stopped();
        assert!(matches!(
            receiver.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ));
    }

    #[test]
    fn the_servers_frames_decode_and_unknown_ones_are_other() -> anyhow::Result<()> {
        let referral = Uuid::new_v4();
        let frame: ServerFrame = serde_json::from_value(serde_json::json!({
            "type": "notification",
            "notification": {
                "id": 7, "kind": "referral.received", "created_at": "2026-11-23T10:00:00Z",
                "read_at": null,
                "data": {"title": "Routine referral from Dr Bench", "referral_id": referral,
                         "patient_id": Uuid::new_v4(), "actor_id": Uuid::new_v4()}
            }
        }))?;
        let ServerFrame::Notification { notification } = frame else {
            bail!("not a notification: {frame:?}");
        };
        assert_eq!(notification.id, 7);
        assert_eq!(notification.kind, "referral.received");
        assert_eq!(notification.data.referral_id, Some(referral));
        assert!(matches!(
            serde_json::from_str::<ServerFrame>(r#"{"type":"ready","last_id":3}"#)?,
            ServerFrame::Ready { last_id: 3 }
        ));
        assert!(matches!(
            serde_json::from_str::<ServerFrame>(r#"{"type":"pong"}"#)?,
            ServerFrame::Other
        ));
        Ok(())
    }

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\tcarehub\nVmPeak:\t  900000 kB\nVmRSS:\t   51234 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(51234 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\t12 MB\n"), None);
    }

    #[test]
    fn the_socket_url_follows_the_servers() {
        assert_eq!(
            ws_url("http://127.0.0.1:4242"),
            "ws://127.0.0.1:4242/api/v1/ws"
        );
    }
}
