//! The scheduling measures: many clients racing for one slot, and the booking throughput when
//! no two bookings conflict.
//!
//! **Setup.** The administrator creates a secretary and the doctors (one whose slots are
//! contended, and `--scheduling-doctors` more for the throughput). The secretary gives every
//! doctor the same availability (every day 08:00-20:00 in the clinic's time zone; 30-minute
//! appointments, the default) and registers the patients (`POST /api/v1/patients`). The times to
//! book are the doctors' free slots as the server lists them
//! (`GET /api/v1/doctors/{id}/slots`): the contended doctor's from tomorrow, the others' from the
//! day after, so that no patient is ever booked twice at once.
//!
//! **Contention.** In each of `--scheduling-rounds` rounds, `--scheduling-attempts` clients,
//! each on its own warmed connection, wait at a barrier and then all send
//! `POST /api/v1/appointments` for the **same** slot of the contended doctor, as the secretary,
//! each for a different patient. Exactly one must be answered 201; the others 409, each listing
//! the winner as the one conflict. Afterwards the secretary lists the doctor's appointments in
//! that slot (`GET /api/v1/appointments`): the database must hold exactly the winner. Latency
//! runs from the barrier's release to the response's body, for every attempt. Each round takes
//! another slot.
//!
//! **Throughput.** `--scheduling-bookings` bookings spread over the doctors round-robin (booking
//! `k`: doctor `k mod D`, that doctor's slot `k / D`, patient `k mod P`, with `P >= D`), so that
//! no two of them overlap for a doctor or for a patient; `--scheduling-concurrency` clients send
//! them, each on its own connection, as fast as they are answered. Every answer but 201 is an
//! error. Bookings per second count the 201s over the time from the release until the last
//! answer.
//!
//! Part of `carehub-bench`; run with
//! `cargo build --release -p carehub-web -p carehub-bench && "$CARGO_TARGET_DIR"/release/carehub-bench --only scheduling`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::{StreamExt as _, TryStreamExt as _};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Barrier;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::Backend;
use crate::load::{SETUP_TIMEOUT, client};
use crate::realtime::{create_staff, histogram, mean_ms, ms, record};
use crate::records::{Created, expect_json, sign_in};
use crate::server::ADMIN_USERNAME;

const SECRETARY_USERNAME: &str = "bench.sched.desk";
const CONTENDED_USERNAME: &str = "bench.sched.contended";
/// The availability every doctor gets, every day of the week, in the clinic's time zone.
const DAY_START: &str = "08:00";
const DAY_END: &str = "20:00";
/// 30-minute appointments (the server's default) from 08:00 to 20:00.
const SLOTS_PER_DAY: usize = 24;
/// The widest slot range the server answers at once, in days.
const MAX_SLOT_DAYS: i64 = 31;
/// Setup requests at once (accounts, availability, patients, slots).
const SETUP_CONCURRENCY: usize = 4;
const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// What the scheduling phase does.
#[derive(Debug, Clone, Serialize)]
pub struct SchedulingConfig {
    /// Concurrent attempts on one slot, each for a different patient.
    pub attempts: u32,
    /// Contended slots, one after the other.
    pub rounds: u32,
    /// Bookings in the throughput measure.
    pub bookings: u32,
    /// Clients sending them at once.
    pub concurrency: u32,
    /// Doctors they are spread over.
    pub doctors: u32,
    #[serde(serialize_with = "as_secs")]
    pub request_timeout: Duration,
}

impl SchedulingConfig {
    /// Patients to register: one per contending client, and at least one per doctor (the
    /// throughput plan needs `patients >= doctors` to be free of conflicts).
    fn patients(&self) -> u32 {
        self.attempts.max(self.doctors)
    }
}

fn as_secs<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

/// The contention measure on one backend.
#[derive(Debug, Clone, Serialize)]
pub struct ContentionResult {
    pub backend: &'static str,
    pub rounds: u32,
    pub attempts_per_round: u32,
    /// Answers 201, per round: each must be 1.
    pub winners_per_round: Vec<u64>,
    /// Active appointments of the doctor in the slot after the round, per round: each must be 1,
    /// the winner.
    pub stored_per_round: Vec<u64>,
    /// Whether what is stored is the winner, per round.
    pub stored_is_winner: Vec<bool>,
    /// Answers 409, all rounds.
    pub conflicts: u64,
    /// Of those, how many listed exactly one conflict, the round's winner.
    pub conflicts_naming_winner: u64,
    /// Any other answer (status or transport failure), all rounds.
    pub other: BTreeMap<String, u64>,
    /// Over every attempt of every round, from the barrier's release to the body read.
    #[serde(flatten)]
    pub latency: LatencyMs,
    /// From the first attempt sent to the last answer, per round.
    pub round_ms: Vec<f64>,
    /// Every round had exactly one winner, and the database holds exactly it.
    pub exactly_one: bool,
    /// No other answer than 201 and 409, and every 409 named the winner.
    pub clean: bool,
}

/// The throughput measure on one backend.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputResult {
    pub backend: &'static str,
    pub bookings: u32,
    pub concurrency: u32,
    pub doctors: u32,
    pub patients: u32,
    /// Answers 201.
    pub booked: u64,
    /// Any other answer, by status or transport failure.
    pub errors: BTreeMap<String, u64>,
    pub elapsed_secs: f64,
    pub bookings_per_sec: f64,
    /// Of the 201s.
    #[serde(flatten)]
    pub latency: LatencyMs,
    /// Every booking was answered 201.
    pub complete: bool,
}

/// A latency distribution, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencyMs {
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl LatencyMs {
    fn of(h: &Histogram<u64>) -> Self {
        Self {
            mean_ms: mean_ms(h),
            p50_ms: ms(h, 0.50),
            p90_ms: ms(h, 0.90),
            p99_ms: ms(h, 0.99),
            max_ms: if h.is_empty() {
                0.0
            } else {
                h.max() as f64 / 1000.0
            },
        }
    }
}

/// What one backend's scheduling phase measured.
#[derive(Debug)]
pub struct SchedulingMeasured {
    pub contention: ContentionResult,
    pub throughput: ThroughputResult,
}

/// Seeds the scheduling data on the server at `base_url`, then runs both measures.
pub async fn run_backend(
    backend: Backend,
    base_url: &str,
    config: &SchedulingConfig,
) -> anyhow::Result<SchedulingMeasured> {
    let name = backend.name();
    let per_doctor = config.bookings.div_ceil(config.doctors.max(1)) as usize;
    let throughput_days = slot_days(per_doctor).with_context(|| {
        format!(
            "{} bookings over {} doctors need {per_doctor} slots each, more than {MAX_SLOT_DAYS} \
             days hold: raise --scheduling-doctors",
            config.bookings, config.doctors
        )
    })?;
    let contention_days = slot_days(config.rounds as usize).with_context(|| {
        format!(
            "{} rounds need more than {MAX_SLOT_DAYS} days of slots",
            config.rounds
        )
    })?;

    eprintln!(
        "carehub-bench: [{name}] scheduling: creating a secretary and {} doctors, registering {} \
         patients, setting availability",
        config.doctors + 1,
        config.patients()
    );
    let seeded = seed(base_url, config).await?;
    // Tomorrow and later, so that every slot lies ahead whatever the hour.
    let tomorrow = day_start(OffsetDateTime::now_utc(), 1)?;
    let contended_slots = slots(
        base_url,
        &seeded.secretary,
        &[seeded.contended],
        tomorrow,
        contention_days,
    )
    .await?
    .remove(0);
    if contended_slots.len() < config.rounds as usize {
        bail!(
            "the contended doctor has {} free slots, fewer than the {} rounds",
            contended_slots.len(),
            config.rounds
        );
    }
    // The throughput's slots start the day after the contended ones end.
    let throughput_from = tomorrow + time::Duration::days(contention_days);
    let doctor_slots = slots(
        base_url,
        &seeded.secretary,
        &seeded.doctors,
        throughput_from,
        throughput_days,
    )
    .await?;
    let plan = plan_bookings(
        config.bookings as usize,
        &doctor_slots,
        seeded.patients.len(),
    )?;
    if let Some((a, b)) = first_overlap(&plan) {
        bail!("the booking plan overlaps itself (bookings {a} and {b}): this is a bench bug");
    }

    eprintln!(
        "carehub-bench: [{name}] scheduling: {} rounds of {} concurrent bookings of one slot",
        config.rounds, config.attempts
    );
    let contention = contention(name, base_url, &seeded, &contended_slots, config).await?;

    eprintln!(
        "carehub-bench: [{name}] scheduling: {} bookings of distinct slots over {} doctors, {} \
         at a time",
        config.bookings, config.doctors, config.concurrency
    );
    let bodies = plan
        .iter()
        .map(|b| {
            booking_body(
                seeded.doctors[b.doctor],
                seeded.patients[b.patient],
                b.start,
            )
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let throughput = throughput(name, base_url, &seeded, bodies, config).await?;
    Ok(SchedulingMeasured {
        contention,
        throughput,
    })
}

// ---------------------------------------------------------------------------------------------
// Setup over HTTP

/// Who and what the measures book with.
#[derive(Debug)]
struct Seeded {
    secretary: String,
    contended: Uuid,
    doctors: Vec<Uuid>,
    patients: Vec<Uuid>,
}

/// Every day of the week, 08:00-20:00.
fn availability_body() -> serde_json::Value {
    let rules: Vec<serde_json::Value> = WEEKDAYS
        .iter()
        .map(|weekday| serde_json::json!({"weekday": weekday, "start": DAY_START, "end": DAY_END}))
        .collect();
    serde_json::json!({ "rules": rules })
}

/// A patient as a desk registers one in a hurry: the required fields.
fn patient_body(i: u32) -> serde_json::Value {
    serde_json::json!({
        "full_name": format!("Bench Scheduled Patient {i:05}"),
        "date_of_birth": "1971-06-15",
        "sex": if i.is_multiple_of(2) { "female" } else { "male" },
    })
}

/// `POST /appointments` for `start`; the end is the doctor's default length.
fn booking_body(doctor: Uuid, patient: Uuid, start: OffsetDateTime) -> anyhow::Result<Vec<u8>> {
    let start = start.format(&Rfc3339).context("cannot format a slot")?;
    serde_json::to_vec(&serde_json::json!({
        "doctor_id": doctor,
        "patient_id": patient,
        "start": start,
        "reason": "Follow-up consultation",
    }))
    .context("cannot encode a booking")
}

/// Runs `make(i)` for `i` in `0..count`, [`SETUP_CONCURRENCY`] at a time, in order; any failure
/// aborts.
async fn setup_each<T, F, Fut>(count: u32, make: F) -> anyhow::Result<Vec<T>>
where
    F: Fn(u32) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    futures_util::stream::iter((0..count).map(make))
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await
}

async fn seed(base_url: &str, config: &SchedulingConfig) -> anyhow::Result<Seeded> {
    let client = client(SETUP_TIMEOUT)?;
    let admin = sign_in(&client, base_url, ADMIN_USERNAME).await?;
    create_staff(
        &client,
        base_url,
        &admin,
        SECRETARY_USERNAME,
        "Bench Front Desk",
        "secretary",
    )
    .await?;
    let secretary = sign_in(&client, base_url, SECRETARY_USERNAME).await?;
    let contended = create_staff(
        &client,
        base_url,
        &admin,
        CONTENDED_USERNAME,
        "Bench Contended Doctor",
        "doctor",
    )
    .await?;
    let doctors = setup_each(config.doctors, |i| {
        let (client, admin) = (&client, &admin);
        async move {
            create_staff(
                client,
                base_url,
                admin,
                &format!("bench.sched.doctor.{i:03}"),
                &format!("Bench Scheduled Doctor {i:03}"),
                "doctor",
            )
            .await
        }
    })
    .await?;

    let availability = availability_body();
    let everyone: Vec<Uuid> = std::iter::once(contended)
        .chain(doctors.iter().copied())
        .collect();
    setup_each(everyone.len() as u32, |i| {
        let (client, secretary, availability) = (&client, &secretary, &availability);
        let doctor = everyone[i as usize];
        async move {
            let request = client
                .put(format!("{base_url}/api/v1/doctors/{doctor}/availability"))
                .bearer_auth(secretary)
                .json(availability);
            let _: serde_json::Value = expect_json(
                request,
                reqwest::StatusCode::OK,
                "setting a doctor's availability as the secretary",
            )
            .await?;
            Ok(())
        }
    })
    .await?;

    let patients = setup_each(config.patients(), |i| {
        let (client, secretary) = (&client, &secretary);
        async move {
            let request = client
                .post(format!("{base_url}/api/v1/patients"))
                .bearer_auth(secretary)
                .json(&patient_body(i));
            let created: Created = expect_json(
                request,
                reqwest::StatusCode::CREATED,
                "registering a patient as the secretary",
            )
            .await?;
            Ok(created.id)
        }
    })
    .await?;
    Ok(Seeded {
        secretary,
        contended,
        doctors,
        patients,
    })
}

/// A free slot as `GET /doctors/{id}/slots` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
struct Slot {
    #[serde(with = "time::serde::rfc3339")]
    start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    end: OffsetDateTime,
}

#[derive(Debug, Deserialize)]
struct SlotsAnswer {
    slots: Vec<Slot>,
}

/// Midnight UTC `days` days after `now`'s date.
fn day_start(now: OffsetDateTime, days: i64) -> anyhow::Result<OffsetDateTime> {
    let date = now
        .to_offset(time::UtcOffset::UTC)
        .date()
        .checked_add(time::Duration::days(days))
        .context("date out of range")?;
    Ok(date.midnight().assume_utc())
}

/// Days of slots that hold `slots` slots of every doctor, within what one request may ask.
fn slot_days(slots: usize) -> Option<i64> {
    let days = i64::try_from(slots.div_ceil(SLOTS_PER_DAY)).ok()?.max(1);
    (days <= MAX_SLOT_DAYS).then_some(days)
}

/// The free slots of each doctor in `[from, from + days)`, in the doctors' order.
async fn slots(
    base_url: &str,
    token: &str,
    doctors: &[Uuid],
    from: OffsetDateTime,
    days: i64,
) -> anyhow::Result<Vec<Vec<Slot>>> {
    let client = client(SETUP_TIMEOUT)?;
    let from_text = from.format(&Rfc3339).context("cannot format a time")?;
    let to_text = (from + time::Duration::days(days))
        .format(&Rfc3339)
        .context("cannot format a time")?;
    setup_each(doctors.len() as u32, |i| {
        let (client, from_text, to_text) = (&client, &from_text, &to_text);
        let doctor = doctors[i as usize];
        async move {
            let mut url = reqwest::Url::parse(&format!("{base_url}/api/v1/doctors/{doctor}/slots"))
                .context("cannot build the slots URL")?;
            url.query_pairs_mut()
                .append_pair("from", from_text)
                .append_pair("to", to_text);
            let answer: SlotsAnswer = expect_json(
                client.get(url).bearer_auth(token),
                reqwest::StatusCode::OK,
                "reading a doctor's free slots as the secretary",
            )
            .await?;
            Ok(answer.slots)
        }
    })
    .await
}

/// One booking of the throughput plan: indexes into the doctors and the patients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Planned {
    doctor: usize,
    patient: usize,
    start: OffsetDateTime,
    end: OffsetDateTime,
}

/// Booking `k` goes to doctor `k mod D`, at that doctor's slot `k / D`, for patient `k mod P`.
/// With every doctor on the same slot grid and `P >= D`, no two bookings overlap: two bookings
/// at one slot index are fewer than `D` apart, so neither their doctors nor their patients are
/// the same.
fn plan_bookings(
    total: usize,
    doctor_slots: &[Vec<Slot>],
    patients: usize,
) -> anyhow::Result<Vec<Planned>> {
    let doctors = doctor_slots.len();
    if doctors == 0 || patients < doctors {
        bail!("the plan needs at least one doctor and as many patients as doctors");
    }
    (0..total)
        .map(|k| {
            let doctor = k % doctors;
            let slot = doctor_slots[doctor].get(k / doctors).with_context(|| {
                format!(
                    "doctor {doctor} has {} free slots, fewer than the plan needs",
                    doctor_slots[doctor].len()
                )
            })?;
            Ok(Planned {
                doctor,
                patient: k % patients,
                start: slot.start,
                end: slot.end,
            })
        })
        .collect()
}

/// The first two bookings of the plan that overlap for one doctor or one patient.
fn first_overlap(plan: &[Planned]) -> Option<(usize, usize)> {
    let mut by_key: HashMap<(bool, usize), Vec<usize>> = HashMap::new();
    for (i, booking) in plan.iter().enumerate() {
        by_key.entry((true, booking.doctor)).or_default().push(i);
        by_key.entry((false, booking.patient)).or_default().push(i);
    }
    let mut found: Option<(usize, usize)> = None;
    for mut indexes in by_key.into_values() {
        indexes.sort_by_key(|&i| plan[i].start);
        for pair in indexes.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if plan[b].start < plan[a].end {
                let pair = (a.min(b), a.max(b));
                found = Some(found.map_or(pair, |f| f.min(pair)));
            }
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Contention

/// A 409's conflicts, as far as the check reads them.
#[derive(Debug, Deserialize)]
struct ConflictProblem {
    #[serde(default)]
    conflicts: Vec<ConflictItem>,
}

#[derive(Debug, Clone, Deserialize)]
struct ConflictItem {
    id: Uuid,
}

/// How one attempt was answered.
#[derive(Debug, Clone)]
enum Answer {
    Booked(Uuid),
    /// 409, with the ids it listed.
    Conflict(Vec<Uuid>),
    /// Anything else: its status or transport failure.
    Other(String),
}

#[derive(Debug, Clone)]
struct Attempt {
    answer: Answer,
    sent: Instant,
    answered: Instant,
}

/// One round's answers, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct RoundTally {
    winners: Vec<Uuid>,
    conflicts: u64,
    /// 409s listing exactly one conflict, a winner of the round.
    conflicts_naming_winner: u64,
    other: BTreeMap<String, u64>,
}

fn tally_round(answers: &[Answer]) -> RoundTally {
    let mut tally = RoundTally::default();
    for answer in answers {
        if let Answer::Booked(id) = answer {
            tally.winners.push(*id);
        }
    }
    for answer in answers {
        match answer {
            Answer::Booked(_) => {}
            Answer::Conflict(ids) => {
                tally.conflicts += 1;
                if let [only] = ids.as_slice()
                    && tally.winners.contains(only)
                {
                    tally.conflicts_naming_winner += 1;
                }
            }
            Answer::Other(kind) => *tally.other.entry(kind.clone()).or_default() += 1,
        }
    }
    tally
}

/// Reads one answer to `POST /appointments`.
async fn read_answer(sent: Result<reqwest::Response, reqwest::Error>) -> Answer {
    let transport = |e: &reqwest::Error| {
        if e.is_timeout() {
            "timeout".to_owned()
        } else {
            "transport error".to_owned()
        }
    };
    let response = match sent {
        Ok(response) => response,
        Err(e) => return Answer::Other(transport(&e)),
    };
    match response.status() {
        reqwest::StatusCode::CREATED => match response.json::<Created>().await {
            Ok(created) => Answer::Booked(created.id),
            Err(e) => Answer::Other(format!("201 unreadable: {}", transport(&e))),
        },
        reqwest::StatusCode::CONFLICT => match response.json::<ConflictProblem>().await {
            Ok(problem) => Answer::Conflict(problem.conflicts.iter().map(|c| c.id).collect()),
            Err(_) => Answer::Other("409 unreadable".to_owned()),
        },
        status => {
            // Read the body so that the connection can be reused.
            let _ = response.bytes().await;
            Answer::Other(format!("HTTP {}", status.as_u16()))
        }
    }
}

/// `GET /api/v1/health/live` on each client, so that every attempt starts on an open
/// connection (the server closes idle ones after a few seconds).
async fn warm(clients: &[reqwest::Client], base_url: &str) -> anyhow::Result<()> {
    let url = format!("{base_url}/api/v1/health/live");
    futures_util::stream::iter(clients)
        .map(|client| {
            let url = url.as_str();
            async move {
                let response = client
                    .get(url)
                    .send()
                    .await
                    .context("warming a connection")?;
                let _ = response.bytes().await;
                Ok::<_, anyhow::Error>(())
            }
        })
        .buffer_unordered(64)
        .try_collect::<Vec<()>>()
        .await
        .map(drop)
}

/// Sends every body at once, one per client, released together by a barrier.
async fn race(
    clients: &[reqwest::Client],
    url: &str,
    token: &str,
    bodies: Vec<Vec<u8>>,
) -> anyhow::Result<Vec<Attempt>> {
    let barrier = Arc::new(Barrier::new(bodies.len()));
    let mut tasks = JoinSet::new();
    for (client, body) in clients.iter().cloned().zip(bodies) {
        let (barrier, url, token) = (barrier.clone(), url.to_owned(), token.to_owned());
        tasks.spawn(async move {
            let request = client
                .post(url)
                .bearer_auth(token)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
            barrier.wait().await;
            let sent = Instant::now();
            let answer = read_answer(request.send().await).await;
            Attempt {
                answer,
                sent,
                answered: Instant::now(),
            }
        });
    }
    let mut attempts = Vec::with_capacity(clients.len());
    while let Some(joined) = tasks.join_next().await {
        attempts.push(joined.context("an attempt's task panicked")?);
    }
    Ok(attempts)
}

#[derive(Debug, Deserialize)]
struct AppointmentItem {
    id: Uuid,
    status: String,
}

#[derive(Debug, Deserialize)]
struct AppointmentPage {
    items: Vec<AppointmentItem>,
}

/// The doctor's active appointments overlapping `slot`, as the secretary lists them.
async fn stored_in(
    client: &reqwest::Client,
    base_url: &str,
    token: &str,
    doctor: Uuid,
    slot: Slot,
) -> anyhow::Result<Vec<Uuid>> {
    let mut url = reqwest::Url::parse(&format!("{base_url}/api/v1/appointments"))
        .context("cannot build the appointments URL")?;
    url.query_pairs_mut()
        .append_pair("doctor_id", &doctor.to_string())
        .append_pair("from", &slot.start.format(&Rfc3339)?)
        .append_pair("to", &slot.end.format(&Rfc3339)?)
        .append_pair("limit", "100");
    let page: AppointmentPage = expect_json(
        client.get(url).bearer_auth(token),
        reqwest::StatusCode::OK,
        "listing the contended slot's appointments as the secretary",
    )
    .await?;
    Ok(page
        .items
        .into_iter()
        .filter(|a| matches!(a.status.as_str(), "booked" | "checked_in" | "in_progress"))
        .map(|a| a.id)
        .collect())
}

async fn contention(
    backend: &'static str,
    base_url: &str,
    seeded: &Seeded,
    slots: &[Slot],
    config: &SchedulingConfig,
) -> anyhow::Result<ContentionResult> {
    let attempts = config.attempts as usize;
    let clients = (0..attempts)
        .map(|_| client(config.request_timeout))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let check = client(SETUP_TIMEOUT)?;
    let url = format!("{base_url}/api/v1/appointments");
    let mut latency = histogram()?;
    let mut winners_per_round = Vec::new();
    let mut stored_per_round = Vec::new();
    let mut stored_is_winner = Vec::new();
    let mut round_ms = Vec::new();
    let (mut conflicts, mut conflicts_naming_winner) = (0, 0);
    let mut other: BTreeMap<String, u64> = BTreeMap::new();
    for &slot in &slots[..config.rounds as usize] {
        let bodies = seeded.patients[..attempts]
            .iter()
            .map(|&patient| booking_body(seeded.contended, patient, slot.start))
            .collect::<anyhow::Result<Vec<_>>>()?;
        warm(&clients, base_url).await?;
        let round = race(&clients, &url, &seeded.secretary, bodies).await?;
        for attempt in &round {
            record(
                &mut latency,
                attempt.answered.saturating_duration_since(attempt.sent),
            );
        }
        let first = round.iter().map(|a| a.sent).min();
        let last = round.iter().map(|a| a.answered).max();
        if let (Some(first), Some(last)) = (first, last) {
            round_ms.push(last.saturating_duration_since(first).as_secs_f64() * 1000.0);
        }
        let answers: Vec<Answer> = round.into_iter().map(|a| a.answer).collect();
        let tally = tally_round(&answers);
        let stored = stored_in(&check, base_url, &seeded.secretary, seeded.contended, slot).await?;
        winners_per_round.push(tally.winners.len() as u64);
        stored_per_round.push(stored.len() as u64);
        stored_is_winner.push(stored.len() == 1 && tally.winners == stored);
        conflicts += tally.conflicts;
        conflicts_naming_winner += tally.conflicts_naming_winner;
        for (kind, n) in tally.other {
            *other.entry(kind).or_default() += n;
        }
    }
    Ok(ContentionResult {
        backend,
        rounds: config.rounds,
        attempts_per_round: config.attempts,
        exactly_one: winners_per_round.iter().all(|&n| n == 1)
            && stored_per_round.iter().all(|&n| n == 1)
            && stored_is_winner.iter().all(|&ok| ok),
        clean: other.is_empty() && conflicts == conflicts_naming_winner,
        winners_per_round,
        stored_per_round,
        stored_is_winner,
        conflicts,
        conflicts_naming_winner,
        other,
        latency: LatencyMs::of(&latency),
        round_ms,
    })
}

// ---------------------------------------------------------------------------------------------
// Throughput

/// What one client saw.
struct ClientTally {
    latency: Histogram<u64>,
    booked: u64,
    errors: BTreeMap<String, u64>,
}

async fn throughput(
    backend: &'static str,
    base_url: &str,
    seeded: &Seeded,
    bodies: Vec<Vec<u8>>,
    config: &SchedulingConfig,
) -> anyhow::Result<ThroughputResult> {
    let concurrency = (config.concurrency as usize).clamp(1, bodies.len().max(1));
    let clients = (0..concurrency)
        .map(|_| client(config.request_timeout))
        .collect::<anyhow::Result<Vec<_>>>()?;
    warm(&clients, base_url).await?;
    let url = Arc::new(format!("{base_url}/api/v1/appointments"));
    let token = Arc::new(seeded.secretary.clone());
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    // The clients and this task: the clock starts when all are released.
    let barrier = Arc::new(Barrier::new(concurrency + 1));
    let mut tasks = JoinSet::new();
    for client in clients {
        let (url, token, bodies, next, barrier) = (
            url.clone(),
            token.clone(),
            bodies.clone(),
            next.clone(),
            barrier.clone(),
        );
        tasks.spawn(async move {
            let mut tally = ClientTally {
                latency: histogram()?,
                booked: 0,
                errors: BTreeMap::new(),
            };
            barrier.wait().await;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else {
                    return Ok::<_, anyhow::Error>(tally);
                };
                let request = client
                    .post(url.as_str())
                    .bearer_auth(token.as_str())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
                let sent = Instant::now();
                match read_answer(request.send().await).await {
                    Answer::Booked(_) => {
                        record(&mut tally.latency, sent.elapsed());
                        tally.booked += 1;
                    }
                    Answer::Conflict(_) => {
                        *tally.errors.entry("HTTP 409".to_owned()).or_default() += 1;
                    }
                    Answer::Other(kind) => *tally.errors.entry(kind).or_default() += 1,
                }
            }
        });
    }
    barrier.wait().await;
    let started = Instant::now();
    let mut latency = histogram()?;
    let mut booked = 0;
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let tally = joined.context("a booking client panicked")??;
        latency
            .add(&tally.latency)
            .map_err(|e| anyhow::anyhow!("cannot merge histograms: {e:?}"))?;
        booked += tally.booked;
        for (kind, n) in tally.errors {
            *errors.entry(kind).or_default() += n;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(ThroughputResult {
        backend,
        bookings: u32::try_from(bodies.len()).unwrap_or(u32::MAX),
        concurrency: u32::try_from(concurrency).unwrap_or(u32::MAX),
        doctors: u32::try_from(seeded.doctors.len()).unwrap_or(u32::MAX),
        patients: u32::try_from(seeded.patients.len()).unwrap_or(u32::MAX),
        booked,
        complete: errors.is_empty() && booked == bodies.len() as u64,
        errors,
        elapsed_secs: elapsed,
        bookings_per_sec: if elapsed > 0.0 {
            booked as f64 / elapsed
        } else {
            0.0
        },
        latency: LatencyMs::of(&latency),
    })
}

// ---------------------------------------------------------------------------------------------
// The report

/// One line for the preamble.
pub fn describe(config: &SchedulingConfig) -> String {
    format!(
        "Scheduling: {} rounds of {} concurrent bookings of one slot (a secretary, distinct \
         patients, one doctor); then {} bookings of distinct slots over {} doctors and {} \
         patients, {} at a time; every doctor available 08:00-20:00 daily, 30-minute \
         appointments.",
        config.rounds,
        config.attempts,
        config.bookings,
        config.doctors,
        config.patients(),
        config.concurrency
    )
}

fn join(values: &[u64]) -> String {
    let parts: Vec<String> = values.iter().map(u64::to_string).collect();
    parts.join(", ")
}

fn kinds(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "0".to_owned();
    }
    let parts: Vec<String> = map.iter().map(|(kind, n)| format!("{kind}: {n}")).collect();
    parts.join(", ")
}

/// The Markdown table of the contention rows.
pub fn render_contention(rows: &[ContentionResult]) -> String {
    let mut out = String::new();
    out.push_str(
        "| backend | rounds × attempts | 201 per round | 409 (naming the winner) | other | \
         mean ms | p50 ms | p99 ms | max ms | round ms (median) |\n",
    );
    out.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for r in rows {
        let mut rounds = r.round_ms.clone();
        rounds.sort_by(f64::total_cmp);
        let median = rounds.get(rounds.len() / 2).copied().unwrap_or(0.0);
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "| {} | {} × {} | {}{} | {} ({}){} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} |",
            r.backend,
            r.rounds,
            r.attempts_per_round,
            join(&r.winners_per_round),
            if r.exactly_one { "" } else { " ⚠" },
            r.conflicts,
            r.conflicts_naming_winner,
            if r.clean { "" } else { " ⚠" },
            kinds(&r.other),
            r.latency.mean_ms,
            r.latency.p50_ms,
            r.latency.p99_ms,
            r.latency.max_ms,
            median,
        );
    }
    out
}

/// The Markdown table of the throughput rows.
pub fn render_throughput(rows: &[ThroughputResult]) -> String {
    let mut out = String::new();
    out.push_str(
        "| backend | bookings | conc. | doctors | errors | bookings/s | mean ms | p50 ms | p90 ms \
         | p99 ms | max ms |\n",
    );
    out.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for r in rows {
        let errors: u64 = r.errors.values().sum();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {}{} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            r.backend,
            r.booked,
            r.concurrency,
            r.doctors,
            errors,
            if r.complete { "" } else { " ⚠" },
            r.bookings_per_sec,
            r.latency.mean_ms,
            r.latency.p50_ms,
            r.latency.p90_ms,
            r.latency.p99_ms,
            r.latency.max_ms,
        );
    }
    out
}

/// Prints both tables (those that have rows) with a line on how to read them.
pub fn print(contention: &[ContentionResult], throughput: &[ThroughputResult]) {
    if !contention.is_empty() {
        println!("## Scheduling: one slot, many clients");
        println!();
        print!("{}", render_contention(contention));
        println!();
        println!(
            "Each round: every attempt waits at a barrier on its own open connection, then all \
             send `POST /api/v1/appointments` for the same slot, each for another patient. \
             Exactly one must be answered 201, and every 409 must list that winner as its only \
             conflict; the doctor's appointments in the slot are then listed, and must be \
             exactly the winner. Latency: from the release to the body read, over every \
             attempt of every round. Round: first attempt sent to last answer."
        );
        for r in contention {
            let rounds: Vec<String> = r.round_ms.iter().map(|ms| format!("{ms:.1}")).collect();
            println!(
                "- {}: rounds took {} ms; stored per round {}{}",
                r.backend,
                rounds.join(", "),
                join(&r.stored_per_round),
                if r.stored_is_winner.iter().all(|&ok| ok) {
                    ", each the winner"
                } else {
                    ", NOT the winner ⚠"
                },
            );
        }
        println!();
    }
    if !throughput.is_empty() {
        println!("## Scheduling: bookings of distinct slots");
        println!();
        print!("{}", render_throughput(throughput));
        println!();
        println!(
            "No two bookings overlap for a doctor or a patient, so every one must be answered \
             201. bookings/s: 201s over the time from the release of every client to the last \
             answer; latencies are of the 201s (HDR histogram, µs resolution), body read \
             included."
        );
        for r in throughput {
            println!(
                "- {}: {} bookings over {} doctors and {} patients in {:.1} s{}",
                r.backend,
                r.booked,
                r.doctors,
                r.patients,
                r.elapsed_secs,
                if r.errors.is_empty() {
                    String::new()
                } else {
                    format!("; errors: {}", kinds(&r.errors))
                },
            );
        }
        println!();
    }
}

/// Prints a loud warning when a slot was booked more or less than once, when the database
/// holds anything but the winner, or when any booking failed; `true` when none did.
pub fn flag(contention: &[ContentionResult], throughput: &[ThroughputResult]) -> bool {
    let bad_contention: Vec<&ContentionResult> = contention
        .iter()
        .filter(|r| !r.exactly_one || !r.clean)
        .collect();
    let bad_throughput: Vec<&ThroughputResult> =
        throughput.iter().filter(|r| !r.complete).collect();
    if bad_contention.is_empty() && bad_throughput.is_empty() {
        return true;
    }
    let banner = "!".repeat(72);
    eprintln!("{banner}");
    for r in bad_contention {
        if !r.exactly_one {
            eprintln!(
                "!!! {} ONE SLOT, MANY CLIENTS: NOT EXACTLY ONE BOOKING PER SLOT: 201s per round \
                 {}, stored per round {}, stored is the winner {:?}",
                r.backend,
                join(&r.winners_per_round),
                join(&r.stored_per_round),
                r.stored_is_winner
            );
        }
        if !r.clean {
            eprintln!(
                "!!! {} one slot, many clients: {} of {} 409s named the winner; other answers: {}",
                r.backend,
                r.conflicts_naming_winner,
                r.conflicts,
                kinds(&r.other)
            );
        }
    }
    for r in bad_throughput {
        eprintln!(
            "!!! {} distinct slots: {} of {} bookings answered 201; errors: {}",
            r.backend,
            r.booked,
            r.bookings,
            kinds(&r.errors)
        );
    }
    eprintln!("{banner}");
    false
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    /// `count` consecutive 30-minute slots from `from`.
    fn grid(from: OffsetDateTime, count: usize) -> Vec<Slot> {
        (0..count)
            .map(|i| {
                let start = from + time::Duration::minutes(30 * i as i64);
                Slot {
                    start,
                    end: start + time::Duration::minutes(30),
                }
            })
            .collect()
    }

    const DAY: OffsetDateTime = datetime!(2027-03-29 08:00 UTC);

    #[test]
    fn bookings_go_round_robin_over_the_doctors_and_their_slots() -> anyhow::Result<()> {
        let slots = vec![grid(DAY, 4); 3];
        let plan = plan_bookings(7, &slots, 5)?;
        let doctors: Vec<usize> = plan.iter().map(|b| b.doctor).collect();
        let patients: Vec<usize> = plan.iter().map(|b| b.patient).collect();
        assert_eq!(doctors, [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(patients, [0, 1, 2, 3, 4, 0, 1]);
        assert_eq!(plan[0].start, DAY);
        assert_eq!(plan[2].start, DAY);
        assert_eq!(plan[3].start, DAY + time::Duration::minutes(30));
        assert_eq!(plan[6].start, DAY + time::Duration::hours(1));
        Ok(())
    }

    #[test]
    fn the_default_plan_never_overlaps_for_a_doctor_or_a_patient() -> anyhow::Result<()> {
        let slots = vec![grid(DAY, 100); 20];
        let plan = plan_bookings(2000, &slots, 200)?;
        assert_eq!(plan.len(), 2000);
        assert_eq!(first_overlap(&plan), None);
        // As many patients as doctors is enough too.
        assert_eq!(first_overlap(&plan_bookings(2000, &slots, 20)?), None);
        Ok(())
    }

    #[test]
    fn an_overlap_for_a_patient_or_a_doctor_is_found() {
        let booking = |doctor, patient, minutes: i64| Planned {
            doctor,
            patient,
            start: DAY + time::Duration::minutes(minutes),
            end: DAY + time::Duration::minutes(minutes + 30),
        };
        // Back to back does not overlap.
        assert_eq!(
            first_overlap(&[booking(0, 0, 0), booking(0, 0, 30), booking(1, 1, 0)]),
            None
        );
        // The same patient with two doctors, straddling.
        assert_eq!(
            first_overlap(&[booking(0, 0, 0), booking(1, 1, 0), booking(2, 0, 15)]),
            Some((0, 2))
        );
        // The same doctor, two patients.
        assert_eq!(
            first_overlap(&[booking(0, 0, 60), booking(0, 1, 70)]),
            Some((0, 1))
        );
    }

    #[test]
    fn a_plan_needs_enough_slots_and_patients() {
        let slots = vec![grid(DAY, 2); 2];
        assert!(plan_bookings(4, &slots, 2).is_ok());
        assert!(plan_bookings(5, &slots, 2).is_err());
        assert!(plan_bookings(2, &slots, 1).is_err());
        assert!(plan_bookings(1, &[], 1).is_err());
    }

    #[test]
    fn slot_days_cover_the_slots_within_one_request() {
        assert_eq!(slot_days(0), Some(1));
        assert_eq!(slot_days(5), Some(1));
        assert_eq!(slot_days(24), Some(1));
        assert_eq!(slot_days(25), Some(2));
        assert_eq!(slot_days(100), Some(5));
        assert_eq!(slot_days(24 * 31), Some(31));
        assert_eq!(slot_days(24 * 31 + 1), None);
    }

    #[test]
    fn days_start_at_midnight_utc() -> anyhow::Result<()> {
        assert_eq!(
            day_start(datetime!(2027-03-28 23:59:59 +02:00), 1)?,
            datetime!(2027-03-29 00:00 UTC)
        );
        assert_eq!(
            day_start(datetime!(2026-12-31 10:00 UTC), 2)?,
            datetime!(2027-01-02 00:00 UTC)
        );
        Ok(())
    }

    #[test]
    fn a_round_counts_its_winner_and_the_409s_that_name_it() {
        let (winner, stranger) = (Uuid::new_v4(), Uuid::new_v4());
        let tally = tally_round(&[
            Answer::Conflict(vec![winner]),
            Answer::Booked(winner),
            Answer::Conflict(vec![winner]),
            Answer::Conflict(vec![stranger]),
            Answer::Conflict(vec![winner, stranger]),
            Answer::Conflict(vec![]),
            Answer::Other("HTTP 500".to_owned()),
            Answer::Other("timeout".to_owned()),
            Answer::Other("HTTP 500".to_owned()),
        ]);
        assert_eq!(tally.winners, [winner]);
        assert_eq!(tally.conflicts, 5);
        assert_eq!(tally.conflicts_naming_winner, 2);
        assert_eq!(
            tally.other,
            BTreeMap::from([("HTTP 500".to_owned(), 2), ("timeout".to_owned(), 1)])
        );
    }

    #[test]
    fn two_winners_are_both_counted() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let tally = tally_round(&[Answer::Booked(a), Answer::Booked(b)]);
        assert_eq!(tally.winners, [a, b]);
    }

    #[test]
    fn the_servers_answers_decode_with_their_other_fields_ignored() -> anyhow::Result<()> {
        let id = Uuid::new_v4();
        let problem: ConflictProblem = serde_json::from_value(serde_json::json!({
            "type": "urn:carehub:problem:appointment-conflict",
            "title": "The time is taken",
            "status": 409,
            "detail": "1 appointments overlap",
            "conflicts": [{"id": id, "start": "2027-03-29T09:00:00+02:00",
                           "end": "2027-03-29T09:30:00+02:00", "with": "doctor"}]
        }))?;
        assert_eq!(problem.conflicts.len(), 1);
        assert_eq!(problem.conflicts[0].id, id);
        let slots: SlotsAnswer = serde_json::from_value(serde_json::json!({
            "doctor_id": id, "time_zone": "Europe/Paris", "appointment_minutes": 30,
            "slots": [{"start": "2027-03-29T09:00:00+02:00", "end": "2027-03-29T09:30:00+02:00"}]
        }))?;
        assert_eq!(slots.slots[0].start, datetime!(2027-03-29 07:00 UTC));
        assert_eq!(slots.slots[0].end, datetime!(2027-03-29 07:30 UTC));
        Ok(())
    }

    #[test]
    fn a_booking_names_its_start_in_rfc_3339() -> anyhow::Result<()> {
        let (doctor, patient) = (Uuid::new_v4(), Uuid::new_v4());
        let body: serde_json::Value = serde_json::from_slice(&booking_body(
            doctor,
            patient,
            datetime!(2027-03-29 07:00 UTC),
        )?)?;
        assert_eq!(body["start"], "2027-03-29T07:00:00Z");
        assert_eq!(body["doctor_id"], doctor.to_string());
        assert_eq!(body["patient_id"], patient.to_string());
        assert!(body.get("end").is_none());
        Ok(())
    }

    #[test]
    fn latencies_are_read_in_milliseconds_and_flattened_in_the_json() -> anyhow::Result<()> {
        let mut h = histogram()?;
        assert_eq!(LatencyMs::of(&h), LatencyMs::default());
        for ms in 1..=100 {
            record(&mut h, Duration::from_millis(ms));
        }
        let latency = LatencyMs::of(&h);
        assert!((latency.p50_ms - 50.0).abs() < 0.1, "{latency:?}");
        assert!((latency.p99_ms - 99.0).abs() < 0.1, "{latency:?}");
        assert!((latency.max_ms - 100.0).abs() < 0.1, "{latency:?}");
        let json = serde_json::to_value(contention_row(vec![1, 1]))?;
        assert_eq!(json["p99_ms"], 80.5);
        assert!(json.get("latency").is_none());
        Ok(())
    }

    fn contention_row(winners: Vec<u64>) -> ContentionResult {
        ContentionResult {
            backend: "sqlite",
            rounds: 2,
            attempts_per_round: 200,
            exactly_one: winners.iter().all(|&n| n == 1),
            winners_per_round: winners,
            stored_per_round: vec![1, 1],
            stored_is_winner: vec![true, true],
            conflicts: 398,
            conflicts_naming_winner: 398,
            other: BTreeMap::new(),
            latency: LatencyMs {
                mean_ms: 40.0,
                p50_ms: 41.0,
                p90_ms: 70.0,
                p99_ms: 80.5,
                max_ms: 90.25,
            },
            round_ms: vec![95.0, 91.0],
            clean: true,
        }
    }

    #[test]
    fn the_contention_table_shows_the_winners_and_flags_a_double_booking() {
        assert_eq!(
            render_contention(&[contention_row(vec![1, 1])]),
            "| backend | rounds × attempts | 201 per round | 409 (naming the winner) | other | \
             mean ms | p50 ms | p99 ms | max ms | round ms (median) |\n\
             |---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n\
             | sqlite | 2 × 200 | 1, 1 | 398 (398) | 0 | 40.00 | 41.00 | 80.50 | 90.25 | 95.0 |\n"
        );
        assert!(flag(&[contention_row(vec![1, 1])], &[]));
        assert!(render_contention(&[contention_row(vec![1, 2])]).contains("| 1, 2 ⚠ |"));
        assert!(!flag(&[contention_row(vec![1, 2])], &[]));
        assert!(!flag(&[contention_row(vec![0, 1])], &[]));
        let mut unclean = contention_row(vec![1, 1]);
        unclean.other.insert("HTTP 500".to_owned(), 1);
        unclean.clean = false;
        assert!(!flag(&[unclean], &[]));
    }

    #[test]
    fn a_failed_booking_of_a_free_slot_fails_the_run() {
        let row = |errors: BTreeMap<String, u64>| ThroughputResult {
            backend: "postgres",
            bookings: 2000,
            concurrency: 32,
            doctors: 20,
            patients: 200,
            booked: 2000 - errors.values().sum::<u64>(),
            complete: errors.is_empty(),
            errors,
            elapsed_secs: 4.0,
            bookings_per_sec: 500.0,
            latency: LatencyMs {
                mean_ms: 60.0,
                p50_ms: 58.0,
                p90_ms: 90.0,
                p99_ms: 120.0,
                max_ms: 150.0,
            },
        };
        assert!(flag(&[], &[row(BTreeMap::new())]));
        assert!(render_throughput(&[row(BTreeMap::new())]).ends_with(
            "| postgres | 2000 | 32 | 20 | 0 | 500.0 | 60.00 | 58.00 | 90.00 | 120.00 | 150.00 |\n"
        ));
        let failed = row(BTreeMap::from([("HTTP 409".to_owned(), 1)]));
        assert!(render_throughput(std::slice::from_ref(&failed)).contains("| 1 ⚠ |"));
        assert!(!flag(&[], &[failed]));
    }
}
