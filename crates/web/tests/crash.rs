//! Crash safety, as the operator's worst day has it: `kill -9` of the `carehub` binary while a
//! mixed load of bookings, notes, referrals and audited reads is in flight, then a restart on the
//! same database and data directory. Every write answered 2xx must be there, every read answered
//! 200 must have its audit event, and every notification committed must reach its recipient when
//! their socket reconnects, without a gap. On SQLite and on PostgreSQL; the figures are printed
//! for docs/operations.md (`tests/crash/run` runs this file alone and shows them), and the
//! server's logs kept as `target/tmp/crash-<backend>-run<1|2>.log`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::File;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use carehub_infra::testing::{Backend, ScratchDatabase};
use futures_util::StreamExt as _;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use support::{DataDir, Server, sign_in};

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_acknowledged_write_read_and_notification_survives_a_kill_9() {
        super::survives_a_kill_9(super::Backend::Sqlite).await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_acknowledged_write_read_and_notification_survives_a_kill_9() {
        super::survives_a_kill_9(super::Backend::Postgres).await;
    }
}

/// How long the load runs before the kill.
const LOAD: Duration = Duration::from_secs(2);
/// Patients the load spreads over.
const PATIENTS: usize = 4;
const PASSWORD: &str = "correct horse battery staple";
const ADMIN_PASSWORD: &str = "crash test admin passphrase";
/// Bounds every wait, so that a hung server fails the test instead of stalling the suite.
const PATIENCE: Duration = Duration::from_secs(30);
/// Appointments last this long, one every [`SLOT_MINUTES`], from 00:00 UTC on each day.
const APPOINTMENT_MINUTES: i64 = 10;
const SLOT_MINUTES: i64 = 15;
const SLOTS_PER_DAY: u32 = 90;

async fn survives_a_kill_9(backend: Backend) {
    let Some(database) = ScratchDatabase::create(backend).await else {
        return;
    };
    let name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let data_dir = DataDir::new("crash");
    let (server, _) = launch(&database, Arc::clone(&data_dir), name, 1).await;
    let clinic = Clinic::open(&server, &database).await;

    // Doctor B listens from before the first referral, as client apps would, on two devices:
    // one stays connected until the kill, the other goes offline halfway through the load.
    let desk = Device::connect(&server, &clinic.doctor_b.token, None).await;
    let phone = Device::connect(&server, &clinic.doctor_b.token, Some(LOAD / 2)).await;

    let record = Arc::new(Record::default());
    let killed = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for kind in Kind::ALL {
        for _ in 0..kind.tasks() {
            let load = Load {
                client: client(),
                base: server.base().to_owned(),
                clinic: Arc::clone(&clinic),
                record: Arc::clone(&record),
                killed: Arc::clone(&killed),
            };
            tasks.push(tokio::spawn(load.run(kind)));
        }
    }
    tokio::time::sleep(LOAD).await;
    killed.store(true, Ordering::SeqCst);
    server.kill_hard().await;
    let dead = Instant::now();
    for task in tasks {
        tokio::time::timeout(PATIENCE, task)
            .await
            .expect("the client tasks end once the server is gone")
            .unwrap();
    }
    let desk = desk.disconnected().await;
    let phone = phone.disconnected().await;
    let record = Arc::into_inner(record).expect("the tasks are done");
    let acknowledged = record.acknowledged.into_inner().unwrap();
    let failures = record.failures.into_inner().unwrap();
    // In flight: sent before the server was gone and then cut off, rather than refused.
    let in_flight = failures
        .iter()
        .filter(|f| f.sent < dead && !f.refused)
        .count();
    let unexpected = record.unexpected.into_inner().unwrap();
    assert!(
        unexpected.is_empty(),
        "requests answered with another status than expected: {unexpected:#?}"
    );
    assert!(
        in_flight > 0,
        "the kill must land while requests are in flight"
    );
    for kind in Kind::ALL {
        assert!(
            acknowledged.contains_key(&kind),
            "no {kind} was answered before the kill"
        );
    }

    let (server, restart) = launch(&database, data_dir, name, 2).await;
    let integrity = integrity_check(&database).await;
    let client = client();
    for path in ["/api/v1/health/live", "/api/v1/health/ready"] {
        let status = client.get(server.url(path)).send().await.unwrap().status();
        assert_eq!(status, 200, "{path} after the restart");
    }

    let check = Check {
        client: &client,
        server: &server,
        clinic: &clinic,
        acknowledged: &acknowledged,
    };
    check.bookings().await;
    let notes_committed = check.notes().await;
    check.referrals().await;
    let reads_audited = check.reads().await;

    // Doctor B's devices reconnect from the last id each received: each replay continues from
    // there, one id above the other, and together with what came live holds every notification
    // stored, once.
    let stored = all_notifications(&client, &server, &clinic.doctor_b.token).await;
    let desk = desk
        .reconnect(&server, &clinic.doctor_b.token, &stored)
        .await;
    let phone = phone
        .reconnect(&server, &clinic.doctor_b.token, &stored)
        .await;
    let delivered = desk.delivered();
    let referred = subjects(&delivered, "referral.received", "referral_id");
    let booked = subjects(&delivered, "appointment.booked", "appointment_id");
    for (kind, subjects) in [(Kind::Referral, &referred), (Kind::Booking, &booked)] {
        let missing: Vec<_> = check
            .acks(kind)
            .iter()
            .filter(|ack| !subjects.contains(&ack.id))
            .collect();
        assert!(
            missing.is_empty(),
            "{kind}s answered 201 whose notification doctor B never got: {missing:?}"
        );
    }

    let count = |kind| acknowledged.get(&kind).map_or(0, Vec::len);
    let unanswered = |kind, committed: usize| committed.saturating_sub(count(kind));
    eprintln!(
        "crash safety on {name}: {load:.1} s of load with {tasks} client tasks, then kill -9\n\
         \x20 acknowledged: {bookings} bookings, {notes} notes, {referrals} referrals, \
         {reads} audited reads\n\
         \x20 at the kill: {in_flight} requests in flight, {after_kill} sent after it; \
         committed without an answer: {b} bookings, {n} notes, {r} referrals, {a} reads audited\n\
         \x20 notifications to doctor B: {stored} stored, none missing; live then replayed on \
         reconnect: {desk_live} + {desk_replayed} on the socket open at the kill, \
         {phone_live} + {phone_replayed} on the one offline since {offline:.1} s\n\
         \x20 restart until ready: {restart} ms; integrity: {integrity}",
        load = LOAD.as_secs_f64(),
        tasks = Kind::ALL.iter().map(|kind| kind.tasks()).sum::<usize>(),
        bookings = count(Kind::Booking),
        notes = count(Kind::Note),
        referrals = count(Kind::Referral),
        reads = count(Kind::Read),
        after_kill = failures.len() - in_flight,
        b = unanswered(Kind::Booking, booked.len()),
        n = unanswered(Kind::Note, notes_committed),
        r = unanswered(Kind::Referral, referred.len()),
        a = unanswered(Kind::Read, reads_audited),
        stored = stored.len(),
        desk_live = desk.live.len(),
        desk_replayed = desk.replayed.len(),
        phone_live = phone.live.len(),
        phone_replayed = phone.replayed.len(),
        offline = (LOAD / 2).as_secs_f64(),
        restart = restart.as_millis(),
    );
    let (status, _) = server.terminate().await;
    assert!(status.success(), "the restarted server stops cleanly");
}

/// Starts the server (the `run`th time on this database), its log in a file under the target
/// directory.
async fn launch(
    database: &ScratchDatabase,
    data_dir: Arc<DataDir>,
    backend: &str,
    run: u32,
) -> (Server, Duration) {
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("crash-{backend}-run{run}.log"));
    let log = File::create(&log).expect("a log file");
    Server::launch(
        database,
        data_dir,
        &[("CAREHUB_WORKERS", "2")],
        Stdio::from(log),
    )
    .await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .expect("an HTTP client")
}

// ---- The clinic ----------------------------------------------------------------------------------

#[derive(Debug)]
struct Person {
    id: Uuid,
    token: String,
}

/// An administrator, a secretary, doctor A (on every patient's care team) and doctor B (whom
/// A refers patients to, and with whom the secretary books them), and the patients.
#[derive(Debug)]
struct Clinic {
    admin_token: String,
    secretary: Person,
    doctor_a: Person,
    doctor_b: Person,
    patients: Vec<Uuid>,
    /// The next free appointment slot.
    next_slot: AtomicU32,
    /// Midnight UTC today: slots are counted from the day after.
    today: Timestamp,
}

impl Clinic {
    /// Seeds the clinic through the API, as its staff would.
    async fn open(server: &Server, database: &ScratchDatabase) -> Arc<Self> {
        let client = client();
        server
            .create_admin(database, "crash.admin", ADMIN_PASSWORD)
            .await;
        let admin_token = sign_in(&client, server, "crash.admin", ADMIN_PASSWORD).await;
        let hire = async |username: &str, role: &str| {
            let body = json!({"username": username, "password": PASSWORD,
                "full_name": format!("Crash {username}"), "role": role});
            let user = send(
                client.post(server.url("/api/v1/admin/users")).json(&body),
                &admin_token,
                201,
            )
            .await;
            Person {
                id: id(&user),
                token: sign_in(&client, server, username, PASSWORD).await,
            }
        };
        let secretary = hire("crash.secretary", "secretary").await;
        let doctor_a = hire("crash.adams", "doctor").await;
        let doctor_b = hire("crash.brown", "doctor").await;
        let days = [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ];
        let rules = days.map(|day| json!({"weekday": day, "start": "00:00", "end": "23:59"}));
        let hours = json!({ "rules": rules });
        for doctor in [&doctor_a, &doctor_b] {
            let path = format!("/api/v1/doctors/{}/availability", doctor.id);
            send(
                client.put(server.url(&path)).json(&hours),
                &secretary.token,
                200,
            )
            .await;
        }
        let now = Timestamp::now().as_second();
        let mut clinic = Self {
            admin_token,
            secretary,
            doctor_a,
            doctor_b,
            patients: Vec::new(),
            next_slot: AtomicU32::new(0),
            today: Timestamp::from_second(now - now.rem_euclid(86_400)).unwrap(),
        };
        for n in 0..PATIENTS {
            let body = json!({"full_name": format!("Crash Patient {n}"),
                "date_of_birth": "1985-12-10", "sex": "female"});
            let patient = send(
                client.post(server.url("/api/v1/patients")).json(&body),
                &clinic.secretary.token,
                201,
            )
            .await;
            let patient = id(&patient);
            // Booking with doctor A puts A on the patient's care team (docs/scheduling.md).
            let booking = clinic.booking(clinic.doctor_a.id, patient);
            send(
                client
                    .post(server.url("/api/v1/appointments"))
                    .json(&booking),
                &clinic.secretary.token,
                201,
            )
            .await;
            clinic.patients.push(patient);
        }
        Arc::new(clinic)
    }

    /// A booking of `patient` with `doctor` in the next free slot: no two bookings share a
    /// time, so none conflicts with another, for the doctor or for the patient.
    fn booking(&self, doctor: Uuid, patient: Uuid) -> Value {
        let slot = self.next_slot.fetch_add(1, Ordering::Relaxed);
        let day = 1 + i64::from(slot / SLOTS_PER_DAY);
        assert!(day < 366, "bookings must start within 366 days");
        let start = self.today
            + SignedDuration::from_hours(24 * day)
            + SignedDuration::from_mins(SLOT_MINUTES * i64::from(slot % SLOTS_PER_DAY));
        let end = start + SignedDuration::from_mins(APPOINTMENT_MINUTES);
        json!({"doctor_id": doctor, "patient_id": patient, "start": start.to_string(),
            "end": end.to_string(), "reason": "Crash test visit"})
    }

    fn patient(&self, n: usize) -> Uuid {
        self.patients[n % self.patients.len()]
    }
}

/// Sends a request with `token`, panicking unless it is answered `status`; returns the body.
async fn send(request: reqwest::RequestBuilder, token: &str, status: u16) -> Value {
    let response = request.bearer_auth(token).send().await.unwrap();
    let answered = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(answered, status, "{body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

fn id(view: &Value) -> Uuid {
    view["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no id in {view}"))
}

// ---- The load --------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    /// The secretary books a patient with doctor B.
    Booking,
    /// Doctor A writes a note.
    Note,
    /// Doctor A refers a patient to doctor B.
    Referral,
    /// Doctor A reads a patient's profile (audited).
    Read,
}

impl Kind {
    const ALL: [Self; 4] = [Self::Booking, Self::Note, Self::Referral, Self::Read];

    /// Client tasks sending requests of this kind at once. Reads are quick: a third task
    /// makes it likelier that the kill lands between a read's answer and its audit commit,
    /// were the commit ever to follow the answer.
    fn tasks(self) -> usize {
        match self {
            Self::Read => 3,
            Self::Booking | Self::Note | Self::Referral => 2,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Booking => "booking",
            Self::Note => "note",
            Self::Referral => "referral",
            Self::Read => "read",
        })
    }
}

/// A request answered as expected: what it wrote (or, for a read, its request id).
#[derive(Debug, Clone)]
struct Ack {
    patient: Uuid,
    /// The booking's, note's or referral's id; nil for a read.
    id: Uuid,
    /// The read's `x-request-id`.
    request_id: Option<String>,
}

/// A request that was never fully answered: when it was sent, and whether it found no server
/// to connect to.
#[derive(Debug)]
struct Failure {
    sent: Instant,
    refused: bool,
}

/// What the client tasks saw.
#[derive(Debug, Default)]
struct Record {
    acknowledged: Mutex<BTreeMap<Kind, Vec<Ack>>>,
    failures: Mutex<Vec<Failure>>,
    /// Requests answered with another status than expected: none should be.
    unexpected: Mutex<Vec<String>>,
}

/// One client task.
struct Load {
    client: reqwest::Client,
    base: String,
    clinic: Arc<Clinic>,
    record: Arc<Record>,
    killed: Arc<AtomicBool>,
}

impl Load {
    /// Sends requests of `kind` one after the other until one fails for the kill.
    async fn run(self, kind: Kind) {
        let clinic = &self.clinic;
        for n in 0.. {
            let patient = clinic.patient(n);
            let (request, token, expected) = match kind {
                Kind::Booking => (
                    self.client
                        .post(self.url("/api/v1/appointments"))
                        .json(&clinic.booking(clinic.doctor_b.id, patient)),
                    &clinic.secretary.token,
                    201,
                ),
                Kind::Note => (
                    self.client
                        .post(self.url(&format!("/api/v1/patients/{patient}/notes")))
                        .json(
                            &json!({"body": format!("Crash test note {n}."), "kind": "progress"}),
                        ),
                    &clinic.doctor_a.token,
                    201,
                ),
                Kind::Referral => (
                    self.client
                        .post(self.url("/api/v1/referrals"))
                        .json(&json!({
                            "patient_id": patient,
                            "to_doctor_id": clinic.doctor_b.id,
                            "reason": "Suspected arrhythmia; please assess",
                            "clinical_summary": "Palpitations for two weeks.",
                            "urgency": "urgent",
                        })),
                    &clinic.doctor_a.token,
                    201,
                ),
                Kind::Read => (
                    self.client
                        .get(self.url(&format!("/api/v1/patients/{patient}"))),
                    &clinic.doctor_a.token,
                    200,
                ),
            };
            let sent = Instant::now();
            match answer(request.bearer_auth(token)).await {
                Ok((status, request_id, body)) if status == expected => {
                    let ack = Ack {
                        patient,
                        id: if kind == Kind::Read {
                            Uuid::nil()
                        } else {
                            id(&body)
                        },
                        request_id,
                    };
                    let mut acknowledged = self.record.acknowledged.lock().unwrap();
                    acknowledged.entry(kind).or_default().push(ack);
                }
                Ok((status, _, body)) => {
                    let mut unexpected = self.record.unexpected.lock().unwrap();
                    unexpected.push(format!("{kind}: {status} {body}"));
                }
                Err(error) => {
                    assert!(
                        self.killed.load(Ordering::SeqCst),
                        "{kind}: a request failed before the kill: {error}"
                    );
                    let failure = Failure {
                        sent,
                        refused: error.is_connect(),
                    };
                    self.record.failures.lock().unwrap().push(failure);
                    return;
                }
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// A whole answer: its status, `x-request-id` and body. A request counts as answered only
/// once its body has arrived in full.
async fn answer(
    request: reqwest::RequestBuilder,
) -> Result<(u16, Option<String>, Value), reqwest::Error> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.bytes().await?;
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok((status, request_id, body))
}

// ---- After the restart -----------------------------------------------------------------------------

struct Check<'a> {
    client: &'a reqwest::Client,
    server: &'a Server,
    clinic: &'a Clinic,
    acknowledged: &'a BTreeMap<Kind, Vec<Ack>>,
}

impl Check<'_> {
    fn acks(&self, kind: Kind) -> &[Ack] {
        self.acknowledged.get(&kind).map_or(&[], Vec::as_slice)
    }

    /// Every booking answered 201 is there, still booked.
    async fn bookings(&self) {
        for ack in self.acks(Kind::Booking) {
            let path = format!("/api/v1/appointments/{}", ack.id);
            let response = self
                .client
                .get(self.server.url(&path))
                .bearer_auth(&self.clinic.secretary.token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "the booking {} is there", ack.id);
            let appointment: Value = response.json().await.unwrap();
            assert_eq!(appointment["status"], "booked", "{appointment}");
            assert_eq!(appointment["patient_id"], ack.patient.to_string());
        }
    }

    /// Every note answered 201 is listed with its patient's notes; returns how many notes are
    /// stored in all.
    async fn notes(&self) -> usize {
        let mut stored = 0;
        for &patient in &self.clinic.patients {
            let path = format!("/api/v1/patients/{patient}/notes");
            let notes = self.all_pages(&path, "", &self.clinic.doctor_a.token).await;
            stored += notes.len();
            let listed: BTreeSet<Uuid> = notes.iter().map(id).collect();
            for ack in self
                .acks(Kind::Note)
                .iter()
                .filter(|a| a.patient == patient)
            {
                assert!(
                    listed.contains(&ack.id),
                    "the note {} answered 201 is listed",
                    ack.id
                );
            }
        }
        stored
    }

    /// Every referral answered 201 is there, sent to doctor B.
    async fn referrals(&self) {
        for ack in self.acks(Kind::Referral) {
            let path = format!("/api/v1/referrals/{}", ack.id);
            let response = self
                .client
                .get(self.server.url(&path))
                .bearer_auth(&self.clinic.doctor_a.token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "the referral {} is there", ack.id);
            let referral: Value = response.json().await.unwrap();
            assert_eq!(referral["status"], "sent", "{referral}");
        }
    }

    /// Every read answered 200 has its audit event, with its request id; returns how many
    /// allowed reads of a profile by doctor A the trail holds.
    async fn reads(&self) -> usize {
        let mut audited = 0;
        for &patient in &self.clinic.patients {
            let events = self
                .all_pages(
                    "/api/v1/admin/audit",
                    &format!("patient_id={patient}&user_id={}", self.clinic.doctor_a.id),
                    &self.clinic.admin_token,
                )
                .await;
            let reads: BTreeSet<&str> = events
                .iter()
                .filter(|e| e["action"] == "patient.read" && e["outcome"] == "allowed")
                .filter_map(|e| e["request_id"].as_str())
                .collect();
            audited += reads.len();
            for ack in self
                .acks(Kind::Read)
                .iter()
                .filter(|a| a.patient == patient)
            {
                let request_id = ack.request_id.as_deref().expect("an x-request-id");
                assert!(
                    reads.contains(request_id),
                    "the read {request_id} answered 200 has its audit event"
                );
            }
        }
        audited
    }

    /// Every item of a cursor-paged list.
    async fn all_pages(&self, path: &str, filter: &str, token: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = format!("limit=100&{filter}");
            if let Some(cursor) = &cursor {
                query.push_str(&format!("&cursor={cursor}"));
            }
            let url = self.server.url(&format!("{path}?{query}"));
            let page = send(self.client.get(url), token, 200).await;
            items.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return items,
            }
        }
    }
}

/// Runs SQLite's own check of the database the restarted server recovered from the file the
/// kill left (its write-ahead log included); PostgreSQL was not killed, so has nothing to
/// recover.
async fn integrity_check(database: &ScratchDatabase) -> String {
    match database.connect_migrated().await.unwrap() {
        carehub_infra::Database::Sqlite(pool) => {
            let result: String = sqlx::query_scalar("PRAGMA integrity_check")
                .fetch_one(&pool)
                .await
                .unwrap();
            pool.close().await;
            assert_eq!(result, "ok", "SQLite's integrity check after the kill");
            "PRAGMA integrity_check ok".to_owned()
        }
        carehub_infra::Database::Postgres(pool) => {
            pool.close().await;
            "(PostgreSQL itself did not crash)".to_owned()
        }
    }
}

// ---- Notifications -----------------------------------------------------------------------------------

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens the notification socket with a bearer token, replaying from `after` when given.
async fn open_hub(base: &str, token: &str, after: Option<i64>) -> Socket {
    let query = after.map(|a| format!("?after={a}")).unwrap_or_default();
    let url = format!("{}/api/v1/ws{query}", base.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    let (socket, _) = tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(request))
        .await
        .expect("the socket opens in time")
        .expect("the socket opens");
    socket
}

/// The next text frame as JSON, or `None` once the socket has ended (control frames skipped;
/// the client library answers pings).
async fn next_frame(socket: &mut Socket) -> Option<Value> {
    loop {
        match socket.next().await? {
            Ok(Message::Text(text)) => return Some(serde_json::from_str(text.as_str()).unwrap()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// One of doctor B's client apps, listening to the socket in its own task.
struct Device {
    /// The `last_id` of the first `ready` frame.
    first_id: i64,
    listener: JoinHandle<Vec<Value>>,
}

impl Device {
    /// Opens a socket without `after` and listens until the server goes, or for `online` only.
    async fn connect(server: &Server, token: &str, online: Option<Duration>) -> Self {
        let mut socket = open_hub(server.base(), token, None).await;
        let ready = next_frame(&mut socket).await.expect("a `ready` frame");
        assert_eq!(ready["type"], "ready", "{ready}");
        let first_id = ready["last_id"].as_i64().expect("a last_id");
        let listener = tokio::spawn(async move {
            let mut frames = Vec::new();
            let offline = tokio::time::sleep(online.unwrap_or(Duration::from_secs(3_600)));
            tokio::pin!(offline);
            loop {
                tokio::select! {
                    frame = next_frame(&mut socket) => match frame {
                        Some(frame) => frames.push(frame),
                        None => return frames,
                    },
                    () = &mut offline => {
                        let _ = socket.close(None).await;
                        return frames;
                    }
                }
            }
        });
        Self { first_id, listener }
    }

    /// What the device received live, once its socket has ended; checked to follow on
    /// without a gap.
    async fn disconnected(self) -> Received {
        let live = tokio::time::timeout(PATIENCE, self.listener)
            .await
            .expect("the socket ends with the server")
            .unwrap();
        follow(self.first_id, &live);
        Received {
            first_id: self.first_id,
            live,
            replayed: Vec::new(),
        }
    }
}

/// What one device received.
struct Received {
    first_id: i64,
    /// Notification frames, before the kill.
    live: Vec<Value>,
    /// Notification frames replayed on reconnecting after the restart.
    replayed: Vec<Value>,
}

impl Received {
    /// The last id the device received (or was told of in `ready`).
    fn last_id(&self) -> i64 {
        self.live
            .iter()
            .chain(&self.replayed)
            .filter_map(|frame| frame["notification"]["id"].as_i64())
            .next_back()
            .unwrap_or(self.first_id)
    }

    /// Every notification received, live or replayed, in order.
    fn delivered(&self) -> Vec<Value> {
        self.live
            .iter()
            .chain(&self.replayed)
            .map(|frame| frame["notification"].clone())
            .collect()
    }

    /// Reconnects with `after` the last id received and reads the replay up to `ready`;
    /// checks that it follows on without a gap, and that what came live and replayed is
    /// exactly what is `stored` above the first id.
    async fn reconnect(mut self, server: &Server, token: &str, stored: &[Value]) -> Self {
        let after = self.last_id();
        let mut socket = open_hub(server.base(), token, Some(after)).await;
        loop {
            let frame = tokio::time::timeout(PATIENCE, next_frame(&mut socket))
                .await
                .expect("the replay arrives")
                .expect("the socket stays open");
            if frame["type"] == "ready" {
                let replayed = follow(after, &self.replayed);
                assert_eq!(
                    frame["last_id"].as_i64(),
                    Some(replayed.last().copied().unwrap_or(after)),
                    "`ready` names the last id replayed: {frame}"
                );
                break;
            }
            self.replayed.push(frame);
        }
        let _ = socket.close(None).await;
        let expected: Vec<i64> = ids(stored)
            .into_iter()
            .filter(|&id| id > self.first_id)
            .collect();
        assert_eq!(
            ids(&self.delivered()),
            expected,
            "every notification stored for doctor B reached the device, live or replayed, once"
        );
        self
    }
}

/// Checks that `frames` are notifications numbered one above the other from `after`; returns
/// their ids.
fn follow(after: i64, frames: &[Value]) -> Vec<i64> {
    let mut last = after;
    frames
        .iter()
        .map(|frame| {
            assert_eq!(frame["type"], "notification", "{frame}");
            let id = frame["notification"]["id"].as_i64().expect("an id");
            assert_eq!(
                id,
                last + 1,
                "notification {id} after {last}: a gap or a repeat"
            );
            last = id;
            id
        })
        .collect()
}

/// Every notification stored for the owner of `token`, through the REST list.
async fn all_notifications(client: &reqwest::Client, server: &Server, token: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut after = 0;
    loop {
        let url = server.url(&format!("/api/v1/notifications?after={after}&limit=500"));
        let page = send(client.get(url), token, 200).await;
        items.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_after"].as_i64() {
            Some(next) => after = next,
            None => return items,
        }
    }
}

fn ids(notifications: &[Value]) -> Vec<i64> {
    notifications
        .iter()
        .map(|n| n["id"].as_i64().expect("an id"))
        .collect()
}

/// What the notifications of `kind` are about: the ids in their `data.<field>`.
fn subjects(notifications: &[Value], kind: &str, field: &str) -> BTreeSet<Uuid> {
    notifications
        .iter()
        .filter(|n| n["kind"] == kind)
        .filter_map(|n| n["data"][field].as_str()?.parse().ok())
        .collect()
}
