//! The load: seeding accounts, the sign-in measure, the `GET /users/me` measure and the
//! audited `GET /patients/{id}` measure (seeded and checked by [`crate::records`]).
//!
//! Every measure runs N tasks, each with its **own** HTTP/1.1 client (a pool of one idle
//! connection to one host), so N tasks hold N connections; each task loops requests
//! sequentially until the deadline or the global request bound. Latencies of 200 responses go
//! into per-task HDR histograms (microseconds, 1 µs to 60 s, 3 significant digits) that are
//! merged at the end; every other status and every transport error (refused, reset, timeout)
//! is counted as an error, by kind. A request is recorded when it *starts* inside the
//! measured window (after the warm-up, before the deadline); the rate divides the 200s by the
//! time from the window's start until the last recorded request completed, so a slow tail
//! (sign-ins take ~100+ ms) lowers the rate slightly rather than being dropped.
//!
//! Part of `carehub-bench`; run with
//! `cargo build --release -p carehub-web -p carehub-bench && "$CARGO_TARGET_DIR"/release/carehub-bench`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::Backend;
use crate::records::{self, AuditCheck};

/// Every seeded account's password (the administrator's too): 12+ characters, not containing
/// any username.
pub const PASSWORD: &str = "bench password 1234";
/// The two authenticated reads, as rows of the report: unaudited, and audited.
pub const ME: &str = "GET /users/me";
pub const PATIENT: &str = "GET /patients/{id}";
/// Concurrent requests while seeding accounts and collecting tokens (not measured): enough to
/// keep the server's password hashers busy without queueing requests into timeouts.
const SETUP_CONCURRENCY: u32 = 4;
/// Per-request timeout while seeding and collecting tokens.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Histogram bounds, in microseconds.
const HIST_MAX_US: u64 = 60_000_000;

#[derive(Debug, Clone, Serialize)]
pub struct LoadConfig {
    pub users: u32,
    pub login_concurrency: u32,
    #[serde(serialize_with = "as_secs")]
    pub login_duration: Duration,
    pub connections: u32,
    #[serde(serialize_with = "as_secs")]
    pub duration: Duration,
    #[serde(serialize_with = "as_secs")]
    pub warmup: Duration,
    pub max_requests: u64,
    #[serde(serialize_with = "as_secs")]
    pub request_timeout: Duration,
}

/// Durations in the JSON report are plain seconds.
fn as_secs<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
pub struct MeasureResult {
    pub backend: &'static str,
    pub measure: &'static str,
    /// Concurrent clients (tasks, each with its own connection).
    pub concurrency: u32,
    /// Requests completed in the measured window, whatever their outcome.
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    /// Error counts by HTTP status or transport failure.
    pub error_kinds: BTreeMap<String, u64>,
    pub elapsed_secs: f64,
    /// 200 responses per second.
    pub ok_per_sec: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Most requests seen in flight at once, from the client's side.
    pub peak_in_flight: usize,
    /// Established connections to the server's port seen in `/proc/net/tcp` mid-measure.
    pub server_connections_seen: Option<usize>,
    /// For the audited read: its audit events against its 200 responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditCheck>,
}

/// Seeds the accounts, then runs every measure against the server at `base_url`.
pub async fn run_backend(
    backend: Backend,
    base_url: &str,
    config: &LoadConfig,
) -> anyhow::Result<Vec<MeasureResult>> {
    let name = backend.name();
    let usernames: Arc<Vec<String>> = Arc::new(
        (0..config.users)
            .map(|i| format!("bench.user.{i:05}"))
            .collect(),
    );

    eprintln!(
        "carehub-bench: [{name}] registering {} patients",
        usernames.len()
    );
    seed(base_url, &usernames).await?;

    eprintln!(
        "carehub-bench: [{name}] measuring sign-ins: {} clients for {} s",
        config.login_concurrency,
        config.login_duration.as_secs()
    );
    let logins = measure(
        Target::Login {
            bodies: sign_ins(usernames.iter().map(String::as_str), PASSWORD)?,
            expect: reqwest::StatusCode::OK,
        },
        base_url,
        config.login_concurrency,
        Duration::ZERO,
        config.login_duration,
        config,
    )
    .await?
    .into_result(name, "POST /auth/login", config.login_concurrency);

    let failed = failed_sign_ins(name, base_url, &usernames, config).await?;

    eprintln!("carehub-bench: [{name}] signing in every patient for access tokens");
    let tokens = Arc::new(access_tokens(base_url, &usernames).await?);

    eprintln!(
        "carehub-bench: [{name}] measuring GET /users/me: {} connections, {} s warm-up, {} s",
        config.connections,
        config.warmup.as_secs(),
        config.duration.as_secs()
    );
    let me = measure(
        Target::Read {
            path: "/api/v1/users/me".to_owned(),
            tokens,
        },
        base_url,
        config.connections,
        config.warmup,
        config.duration,
        config,
    )
    .await?
    .into_result(name, ME, config.connections);

    eprintln!(
        "carehub-bench: [{name}] seeding a doctor (created by the administrator) and one patient \
         on that doctor's care team"
    );
    let seeded = records::seed_doctor_and_patient(base_url).await?;
    eprintln!(
        "carehub-bench: [{name}] measuring GET /patients/{{id}} as that doctor (audited): \
         {} connections, {} s warm-up, {} s",
        config.connections,
        config.warmup.as_secs(),
        config.duration.as_secs()
    );
    let measured = measure(
        Target::Read {
            path: format!("/api/v1/patients/{}", seeded.patient_id),
            tokens: Arc::new(vec![seeded.doctor_token]),
        },
        base_url,
        config.connections,
        config.warmup,
        config.duration,
        config,
    )
    .await?;
    // Every 200, warm-up included, must have left one `patient.read` event.
    let ok_responses = measured.tally.ok_all;
    let mut patient = measured.into_result(name, PATIENT, config.connections);
    eprintln!(
        "carehub-bench: [{name}] counting the patient's `patient.read` events as the administrator"
    );
    let events = records::count_reads(base_url, seeded.patient_id, ok_responses).await?;
    patient.audit = Some(AuditCheck::new(seeded.patient_id, ok_responses, events));

    let mut results = vec![logins, me, patient];
    results.extend(failed);
    Ok(results)
}

/// Failed sign-ins, one at a time so that queueing does not hide the cost of one: a wrong
/// password and an unknown username must cost the same. They run before the read loads, so
/// that background work those leave behind (PostgreSQL checkpoints of the audit trail) does
/// not fall on one of the two.
async fn failed_sign_ins(
    name: &'static str,
    base_url: &str,
    usernames: &[String],
    config: &LoadConfig,
) -> anyhow::Result<Vec<MeasureResult>> {
    // At most four failures per account, so the throttle (five) never answers instead of the
    // password check.
    let failures = u64::from(config.users) * 4;
    let one_by_one = LoadConfig {
        max_requests: config.max_requests.min(failures),
        ..config.clone()
    };
    eprintln!(
        "carehub-bench: [{name}] measuring failed sign-ins: up to {failures} of each kind, one at a time"
    );
    let strangers: Vec<String> = (0..failures).map(|i| format!("nobody.{i:05}")).collect();
    let mut results = Vec::with_capacity(2);
    for (measure_name, accounts) in [
        ("POST /auth/login, wrong password", usernames),
        ("POST /auth/login, unknown username", strangers.as_slice()),
    ] {
        let target = Target::Login {
            bodies: sign_ins(
                accounts.iter().map(String::as_str),
                "not the bench password",
            )?,
            expect: reqwest::StatusCode::UNAUTHORIZED,
        };
        let failed = measure(
            target,
            base_url,
            1,
            Duration::ZERO,
            config.login_duration,
            &one_by_one,
        )
        .await?
        .into_result(name, measure_name, 1);
        results.push(failed);
    }
    Ok(results)
}

/// Encoded sign-in bodies, one per username, all with `password`.
fn sign_ins<'a>(
    usernames: impl Iterator<Item = &'a str>,
    password: &str,
) -> anyhow::Result<Arc<Vec<Vec<u8>>>> {
    usernames
        .map(|username| {
            serde_json::to_vec(&serde_json::json!({ "username": username, "password": password }))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Arc::new)
        .context("cannot encode a sign-in")
}

/// An HTTP/1.1 client holding at most one connection to the server.
pub fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .context("cannot build the HTTP client")
}

/// Runs `request` once for every username, `SETUP_CONCURRENCY` at a time (setup, not
/// measured), and returns the answers in username order; any failure aborts the run.
async fn for_each_user<T, F, Fut>(
    url: String,
    usernames: &Arc<Vec<String>>,
    request: F,
) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(reqwest::Client, Arc<String>, usize, String) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<T>> + Send,
{
    let url = Arc::new(url);
    let next = Arc::new(AtomicUsize::new(0));
    let workers = usize::try_from(SETUP_CONCURRENCY)
        .unwrap_or(1)
        .min(usernames.len());
    let mut tasks = JoinSet::new();
    for _ in 0..workers {
        let (client, url, next, usernames, request) = (
            client(SETUP_TIMEOUT)?,
            url.clone(),
            next.clone(),
            usernames.clone(),
            request.clone(),
        );
        tasks.spawn(async move {
            let mut answers = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(username) = usernames.get(i) else {
                    return Ok::<_, anyhow::Error>(answers);
                };
                let answer = request(client.clone(), url.clone(), i, username.clone()).await?;
                answers.push((i, answer));
            }
        });
    }
    let mut all = Vec::with_capacity(usernames.len());
    while let Some(joined) = tasks.join_next().await {
        all.extend(joined.context("a setup task panicked")??);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, answer)| answer).collect())
}

/// Registers every username as an active patient; any failure aborts the run.
async fn seed(base_url: &str, usernames: &Arc<Vec<String>>) -> anyhow::Result<()> {
    let url = format!("{base_url}/api/v1/auth/register");
    for_each_user(url, usernames, |client, url, i, username| async move {
        let body = serde_json::json!({
            "username": username,
            "password": PASSWORD,
            "full_name": format!("Bench Patient {i}"),
            "role": "patient",
        });
        let response = client
            .post(url.as_str())
            .json(&body)
            .send()
            .await
            .with_context(|| format!("registering {username}"))?;
        let status = response.status();
        if status != reqwest::StatusCode::CREATED {
            let text = response.text().await.unwrap_or_default();
            bail!("registering {username}: {status}: {text}");
        }
        Ok(())
    })
    .await
    .map(drop)
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
}

/// One access token per username, by signing each in once; any failure aborts the run.
async fn access_tokens(
    base_url: &str,
    usernames: &Arc<Vec<String>>,
) -> anyhow::Result<Vec<String>> {
    let url = format!("{base_url}/api/v1/auth/login");
    for_each_user(url, usernames, |client, url, _, username| async move {
        let response = client
            .post(url.as_str())
            .json(&serde_json::json!({ "username": username, "password": PASSWORD }))
            .send()
            .await
            .with_context(|| format!("signing in {username}"))?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            let text = response.text().await.unwrap_or_default();
            bail!("signing in {username}: {status}: {text}");
        }
        let body: TokenResponse = response
            .json()
            .await
            .with_context(|| format!("reading {username}'s tokens"))?;
        Ok(body.access_token)
    })
    .await
}

/// What one measure requests.
#[derive(Clone)]
enum Target {
    /// `POST /auth/login` with each body in turn (cycling through the accounts, so none is
    /// signed in twice at once); a response with status `expect` counts as a success.
    Login {
        bodies: Arc<Vec<Vec<u8>>>,
        expect: reqwest::StatusCode,
    },
    /// `GET path` with a Bearer token; task `k` uses token `k mod len`.
    Read {
        path: String,
        tokens: Arc<Vec<String>>,
    },
}

/// What one task saw.
struct TaskTally {
    histogram: Histogram<u64>,
    /// Expected responses in the measured window.
    ok: u64,
    /// Expected responses, warm-up included.
    ok_all: u64,
    errors: BTreeMap<String, u64>,
}

impl TaskTally {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            histogram: Histogram::new_with_bounds(1, HIST_MAX_US, 3)
                .map_err(|e| anyhow!("cannot create a histogram: {e:?}"))?,
            ok: 0,
            ok_all: 0,
            errors: BTreeMap::new(),
        })
    }

    fn error(&mut self, kind: String) {
        *self.errors.entry(kind).or_default() += 1;
    }
}

/// The merged tallies of a measure.
struct Measured {
    tally: TaskTally,
    elapsed: Duration,
    peak_in_flight: usize,
    server_connections_seen: Option<usize>,
}

impl Measured {
    fn into_result(
        self,
        backend: &'static str,
        measure: &'static str,
        concurrency: u32,
    ) -> MeasureResult {
        let h = &self.tally.histogram;
        let errors: u64 = self.tally.errors.values().sum();
        let ms = |us: u64| us as f64 / 1000.0;
        let secs = self.elapsed.as_secs_f64();
        let empty = h.is_empty();
        MeasureResult {
            backend,
            measure,
            concurrency,
            requests: self.tally.ok + errors,
            ok: self.tally.ok,
            errors,
            error_kinds: self.tally.errors,
            elapsed_secs: secs,
            ok_per_sec: if secs > 0.0 {
                self.tally.ok as f64 / secs
            } else {
                0.0
            },
            mean_ms: if empty { 0.0 } else { h.mean() / 1000.0 },
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
            peak_in_flight: self.peak_in_flight,
            server_connections_seen: self.server_connections_seen,
            audit: None,
        }
    }
}

/// Shared between the tasks of one measure.
struct Shared {
    target: Target,
    url: String,
    /// Recording starts here (after the warm-up)...
    record_from: Instant,
    /// ...and no request starts after this.
    stop_at: Instant,
    max_requests: u64,
    started: AtomicU64,
    next_user: AtomicUsize,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
}

async fn measure(
    target: Target,
    base_url: &str,
    concurrency: u32,
    warmup: Duration,
    duration: Duration,
    config: &LoadConfig,
) -> anyhow::Result<Measured> {
    let url = match &target {
        Target::Login { .. } => format!("{base_url}/api/v1/auth/login"),
        Target::Read { path, .. } => format!("{base_url}{path}"),
    };
    let clients = (0..concurrency)
        .map(|_| client(config.request_timeout))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let start = Instant::now();
    let shared = Arc::new(Shared {
        target,
        url,
        record_from: start + warmup,
        stop_at: start + warmup + duration,
        max_requests: config.max_requests,
        started: AtomicU64::new(0),
        next_user: AtomicUsize::new(0),
        in_flight: AtomicUsize::new(0),
        peak_in_flight: AtomicUsize::new(0),
    });
    let mut tasks = JoinSet::new();
    for (k, client) in clients.into_iter().enumerate() {
        tasks.spawn(run_task(k, client, shared.clone()));
    }

    // Halfway through the recorded window, count the connections the server really holds.
    let port = base_url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok());
    let probe_at = shared.record_from + duration / 2;
    let server_connections_seen = tokio::select! {
        () = tokio::time::sleep_until(probe_at.into()) => port.and_then(established_connections),
        // All tasks ended early (the request bound): no probe.
        () = wait_all_idle(&shared) => None,
    };

    let mut tally = TaskTally::new()?;
    while let Some(joined) = tasks.join_next().await {
        let part = joined.context("a load task panicked")??;
        tally
            .histogram
            .add(&part.histogram)
            .map_err(|e| anyhow!("cannot merge histograms: {e:?}"))?;
        tally.ok += part.ok;
        tally.ok_all += part.ok_all;
        for (kind, n) in part.errors {
            *tally.errors.entry(kind).or_default() += n;
        }
    }
    let elapsed = Instant::now().saturating_duration_since(shared.record_from);
    Ok(Measured {
        tally,
        elapsed,
        peak_in_flight: shared.peak_in_flight.load(Ordering::Relaxed),
        server_connections_seen,
    })
}

/// Resolves once the measure's deadline or request bound has passed and nothing is in flight.
async fn wait_all_idle(shared: &Shared) {
    loop {
        let done = Instant::now() >= shared.stop_at
            || shared.started.load(Ordering::Relaxed) >= shared.max_requests;
        if done && shared.in_flight.load(Ordering::Relaxed) == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn run_task(
    k: usize,
    client: reqwest::Client,
    shared: Arc<Shared>,
) -> anyhow::Result<TaskTally> {
    let mut tally = TaskTally::new()?;
    let (login_bodies, expect) = match &shared.target {
        Target::Login { bodies, expect } => (Some(bodies.clone()), *expect),
        Target::Read { .. } => (None, reqwest::StatusCode::OK),
    };
    let authorization = match &shared.target {
        Target::Read { tokens, .. } if !tokens.is_empty() => {
            Some(format!("Bearer {}", tokens[k % tokens.len()]))
        }
        Target::Read { .. } => bail!("no access tokens"),
        Target::Login { .. } => None,
    };
    loop {
        let now = Instant::now();
        if now >= shared.stop_at {
            break;
        }
        let recording = now >= shared.record_from;
        if recording && shared.started.fetch_add(1, Ordering::Relaxed) >= shared.max_requests {
            break;
        }
        let request = match (&login_bodies, &authorization) {
            (Some(bodies), _) => {
                let i = shared.next_user.fetch_add(1, Ordering::Relaxed) % bodies.len();
                client
                    .post(shared.url.as_str())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(bodies[i].clone())
            }
            (None, Some(authorization)) => client
                .get(shared.url.as_str())
                .header(reqwest::header::AUTHORIZATION, authorization.as_str()),
            (None, None) => bail!("nothing to request"),
        };

        let in_flight = shared.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        shared
            .peak_in_flight
            .fetch_max(in_flight, Ordering::Relaxed);
        let sent = Instant::now();
        // The body is read in full so the connection is reused, and counted in the latency.
        let outcome = client_execute(request).await;
        let latency = sent.elapsed();
        shared.in_flight.fetch_sub(1, Ordering::Relaxed);

        if matches!(outcome, Ok(status) if status == expect) {
            tally.ok_all += 1;
        }
        if !recording {
            continue;
        }
        match outcome {
            Ok(status) if status == expect => {
                tally.ok += 1;
                let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                tally.histogram.saturating_record(us.clamp(1, HIST_MAX_US));
            }
            Ok(status) => tally.error(format!("HTTP {}", status.as_u16())),
            Err(e) => tally.error(transport_error_kind(&e).to_owned()),
        }
    }
    Ok(tally)
}

async fn client_execute(
    request: reqwest::RequestBuilder,
) -> Result<reqwest::StatusCode, reqwest::Error> {
    let response = request.send().await?;
    let status = response.status();
    response.bytes().await?;
    Ok(status)
}

fn transport_error_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect error"
    } else if e.is_body() || e.is_decode() {
        "body error"
    } else {
        "transport error"
    }
}

/// Established TCP connections whose local end is 127.0.0.1:`port` (the server's side), from
/// `/proc/net/tcp`; `None` where that file is unreadable (not Linux).
fn established_connections(port: u16) -> Option<usize> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let local = format!("0100007F:{port:04X}");
    Some(
        table
            .lines()
            .skip(1)
            .filter(|line| {
                let mut fields = line.split_whitespace();
                let local_address = fields.nth(1);
                let state = fields.nth(1);
                local_address == Some(local.as_str()) && state == Some("01")
            })
            .count(),
    )
}
