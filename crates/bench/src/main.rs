//! `carehub-bench`: a load benchmark for a running **release** build of the `carehub` server.
//!
//! For each backend (SQLite, PostgreSQL) it starts the server binary as a child process on a
//! free port of 127.0.0.1 with a fresh data directory and a fresh database, seeds patient
//! accounts, then measures sign-ins per second (`POST /api/v1/auth/login`, Argon2-bound),
//! authenticated reads (`GET /api/v1/users/me` with a Bearer token) and audited reads of a
//! patient's record by a doctor on its care team (`GET /api/v1/patients/{id}`) over many
//! concurrent connections. Then the real-time phases ([`realtime`]): the latency from sending a
//! referral to its notification arriving on the recipient's WebSocket (on PostgreSQL across two
//! server instances), and the server's memory holding thousands of idle authenticated sockets.
//! Then scheduling ([`scheduling`]): hundreds of clients booking one slot at once (exactly one
//! must win), and the booking throughput on slots that never conflict. Named with `--only`:
//! the web app in headless Chromium ([`page`]), a video call connected between two of them
//! ([`call`]), the job queue ([`jobs`]), ECG analysis ([`ecg`]).
//! It prints Markdown tables (optionally also JSON). `--only` picks phases. It is a measuring
//! tool, not a test: nothing here asserts performance.
//!
//! Run it from the workspace root:
//!
//! ```sh
//! export CARGO_TARGET_DIR=/root/.cache/carehub-target   # or leave unset for ./target
//! cargo build --release -p carehub-web -p carehub-bench && "$CARGO_TARGET_DIR"/release/carehub-bench
//! ```
//!
//! `carehub-bench --help` lists the options (backends, durations, concurrency, `--json FILE`).
//! Only 127.0.0.1 is contacted; every loop is bounded in time and in count. The process exits
//! with status 2 when any request failed, when the audit trail does not hold exactly one
//! `patient.read` event per audited read answered 200, when a referral's notification did not
//! reach the socket exactly once, when an idle socket failed, when a contended slot was not
//! booked exactly once, or when a booking of a free slot failed, so none can pass unnoticed.

// This is a command-line report generator: printing the table to stdout is its whole job.
#![allow(clippy::print_stdout)]

mod call;
mod ecg;
mod jobs;
mod load;
mod page;
mod realtime;
mod records;
mod report;
mod scheduling;
mod server;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};

use crate::load::{LoadConfig, MeasureResult};
use crate::realtime::{RealtimeConfig, RealtimePhases};
use crate::report::{BenchReport, ServerSettingsReport};
use crate::scheduling::SchedulingConfig;
use crate::server::{Server, ServerOptions};

/// Benchmark a release build of the `carehub` server on SQLite and PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "carehub-bench", version, about)]
struct Cli {
    /// Backends to measure, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "sqlite,postgres"
    )]
    backends: Vec<Backend>,

    /// Phases to run, comma-separated: `http` (sign-ins and reads), `referrals` (referral →
    /// socket latency), `messages` (message → socket latency, the same way), `sockets` (idle
    /// socket memory), `realtime` (all three of those),
    /// `scheduling` (one slot booked by many at once; booking throughput). Default: all.
    /// `ecg` (ECG analysis time, in this process, no server), `page`, `call` and `jobs` run
    /// only when named.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Phase>,

    /// The server binary. Default: `$CARGO_TARGET_DIR/release/carehub` when CARGO_TARGET_DIR is
    /// set, else `./target/release/carehub`.
    #[arg(long)]
    server_bin: Option<PathBuf>,

    /// An administrative PostgreSQL URL (on 127.0.0.1); a fresh database
    /// `carehub_bench_<random>` is created through it and dropped at the end.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres_url: String,

    /// Patient accounts to register before measuring (each register costs a password hash).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    users: u32,

    /// Concurrent clients in the sign-in measure.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    login_concurrency: u32,

    /// Seconds the sign-in measure lasts.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    login_secs: u64,

    /// Concurrent connections in the `GET /users/me` and `GET /patients/{id}` measures (one task
    /// and one connection each).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    connections: u32,

    /// Seconds each of the `GET /users/me` and `GET /patients/{id}` measures lasts, after the
    /// warm-up.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    duration_secs: u64,

    /// Seconds of unrecorded load before each of the `GET /users/me` and `GET /patients/{id}`
    /// measures.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=600))]
    warmup_secs: u64,

    /// Upper bound on the requests of one measure, whatever its duration.
    #[arg(long, default_value_t = 50_000_000)]
    max_requests: u64,

    /// Per-request timeout, in seconds; a timed-out request counts as an error.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    request_timeout_secs: u64,

    /// `CAREHUB_WORKERS` for the server. Default: unset (the server uses one per core).
    #[arg(long)]
    server_workers: Option<usize>,

    /// `CAREHUB_DB_MAX_CONNECTIONS` for the server. Default: unset (the server uses 16).
    #[arg(long)]
    server_db_max_connections: Option<u32>,

    /// `CAREHUB_PASSWORD_HASH_CONCURRENCY` for the server. Default: unset (one per core).
    #[arg(long)]
    server_hash_concurrency: Option<usize>,

    /// Referrals timed per latency row (after the warm-up).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    referrals: u32,

    /// Referrals sent before each latency row, checked for delivery but not timed.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    referral_warmup: u32,

    /// Referrals in flight in a second latency row (1: only the sequential row, in which one
    /// referral is in flight at a time, so that its latency holds no queueing).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    referral_concurrency: u32,

    /// Idle authenticated WebSockets held at once against one server. This process and the
    /// server each hold one open file per socket: the soft RLIMIT_NOFILE is raised to the hard
    /// limit, which must leave room.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    idle_sockets: u32,

    /// Distinct users holding the idle sockets (each signs in once; its token opens many).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    idle_socket_users: u32,

    /// Idle sockets being opened at once.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    socket_open_concurrency: u32,

    /// Seconds the idle sockets are held once all are ready, before the server's memory is
    /// read again.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=3600))]
    idle_settle_secs: u64,

    /// `CAREHUB_ACCESS_TOKEN_TTL_SECS` for the server: tokens taken at the start of a phase
    /// must outlive it (a socket whose token expires is closed).
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u32).range(60..=86_400))]
    access_token_ttl_secs: u32,

    /// Concurrent bookings of one slot per round (each for another patient, by a secretary).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(2..=5_000))]
    scheduling_attempts: u32,

    /// Rounds of the one-slot measure, each on another slot.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    scheduling_rounds: u32,

    /// Bookings of distinct slots in the throughput measure.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    scheduling_bookings: u32,

    /// Clients sending those bookings at once (one connection each).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    scheduling_concurrency: u32,

    /// Doctors the throughput's bookings are spread over (each has 24 slots a day; one slot
    /// request covers at most 31 days).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    scheduling_doctors: u32,

    /// Rounds of the page phase (each a fresh browser: a cold load, then a reload).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=200))]
    page_rounds: u32,

    /// Measured rounds of the call phase, after one warm-up round (each: two browsers join
    /// one video visit until connected).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=50))]
    call_rounds: u32,

    /// Probe jobs per measure of the jobs phase.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    job_probes: u32,

    /// E-mail jobs per measure of the jobs phase.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    job_emails: u32,

    /// Approvals per kind (with and without an e-mail job) in the jobs phase's latency row.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    job_approvals: u32,

    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// A phase of the benchmark, for `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Phase {
    /// Sign-ins, `GET /users/me`, the audited `GET /patients/{id}`.
    Http,
    /// Referral → socket latency.
    Referrals,
    /// Message → socket latency (a doctor's message to the patient's socket).
    Messages,
    /// Idle socket memory.
    Sockets,
    /// Every real-time phase.
    Realtime,
    /// One slot booked by many at once; booking throughput on distinct slots.
    Scheduling,
    /// The web app: a doctor's home in headless Chromium on `carehub demo` (only when named:
    /// it needs `chromium` and `chromium-driver`).
    Page,
    /// Video calls: two headless Chromiums (fake camera and microphone) joining one video
    /// visit, until their peer connection is connected (only when named: it needs `chromium`
    /// and `chromium-driver`).
    Call,
    /// The job queue: probe and e-mail jobs per second, one and two instances, and what
    /// enqueueing adds to a request (only when named).
    Jobs,
    /// ECG analysis time of a synthetic 30-minute record, in this process (only when named;
    /// needs no server binary when it is the only phase).
    Ecg,
}

/// The phases `--only` selects (all when it is empty).
#[derive(Debug, Clone, Copy)]
struct Phases {
    http: bool,
    realtime: RealtimePhases,
    scheduling: bool,
    page: bool,
    call: bool,
    jobs: bool,
    ecg: bool,
}

impl Phases {
    fn from_only(only: &[Phase]) -> Self {
        let all = only.is_empty();
        let has = |phase: Phase| all || only.contains(&phase);
        Self {
            http: has(Phase::Http),
            realtime: RealtimePhases {
                referrals: has(Phase::Referrals) || has(Phase::Realtime),
                messages: has(Phase::Messages) || has(Phase::Realtime),
                sockets: has(Phase::Sockets) || has(Phase::Realtime),
            },
            scheduling: has(Phase::Scheduling),
            page: only.contains(&Phase::Page),
            call: only.contains(&Phase::Call),
            jobs: only.contains(&Phase::Jobs),
            ecg: only.contains(&Phase::Ecg),
        }
    }

    /// Whether any phase measures the servers started per backend.
    fn per_backend(self) -> bool {
        self.http
            || self.realtime.referrals
            || self.realtime.messages
            || self.realtime.sockets
            || self.scheduling
    }

    fn names(self) -> Vec<&'static str> {
        [
            (self.http, "http"),
            (self.realtime.referrals, "referrals"),
            (self.realtime.messages, "messages"),
            (self.realtime.sockets, "sockets"),
            (self.scheduling, "scheduling"),
            (self.page, "page"),
            (self.call, "call"),
            (self.jobs, "jobs"),
            (self.ecg, "ecg"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

fn default_server_bin() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        .join("release")
        .join("carehub")
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Ctrl-C drops the benchmark future, whose guards stop the server, drop the database and
    // remove the temporary directory.
    let outcome = tokio::select! {
        outcome = run(cli) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    match outcome {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(2),
        Err(error) => {
            eprintln!("carehub-bench: error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs every backend; `Ok(false)` when the results hold errors.
async fn run(cli: Cli) -> anyhow::Result<bool> {
    if cli.backends.is_empty() {
        bail!("--backends is empty");
    }
    // The ECG phase runs in this process: first, and alone without any server.
    if cli.only.contains(&Phase::Ecg) {
        println!("{}\n", ecg::describe());
        println!("{}", ecg::render(&ecg::run()?));
        if cli.only.iter().all(|phase| *phase == Phase::Ecg) {
            return Ok(true);
        }
    }
    if cli.backends.contains(&Backend::Postgres) {
        server::validate_postgres_url(&cli.postgres_url)?;
    }
    let server_bin = cli.server_bin.clone().unwrap_or_else(default_server_bin);
    let server_bin = std::path::absolute(&server_bin)
        .with_context(|| format!("cannot resolve {}", server_bin.display()))?;
    if !server_bin.is_file() {
        bail!(
            "server binary {} not found: build it with `cargo build --release -p carehub-web` \
             (with the same CARGO_TARGET_DIR) or pass --server-bin",
            server_bin.display()
        );
    }
    if !server_bin.components().any(|c| c.as_os_str() == "release") {
        eprintln!(
            "carehub-bench: WARNING: {} is not under a `release` directory; \
             numbers from a debug build are meaningless",
            server_bin.display()
        );
    }

    let phases = Phases::from_only(&cli.only);
    // Before any server starts: they inherit the raised limit.
    let open_files = if phases.realtime.sockets {
        Some(realtime::raise_open_file_limit(cli.idle_sockets)?)
    } else {
        None
    };
    let cores = cores();
    let settings = ServerSettingsReport::new(
        &server_bin,
        cli.server_workers,
        cli.server_db_max_connections,
        cli.server_hash_concurrency,
        cli.access_token_ttl_secs,
        cores,
    );
    let load = LoadConfig {
        users: cli.users,
        login_concurrency: cli.login_concurrency,
        login_duration: Duration::from_secs(cli.login_secs),
        connections: cli.connections,
        duration: Duration::from_secs(cli.duration_secs),
        warmup: Duration::from_secs(cli.warmup_secs),
        max_requests: cli.max_requests,
        request_timeout: Duration::from_secs(cli.request_timeout_secs),
    };
    let realtime_config = RealtimeConfig {
        referrals: cli.referrals,
        referral_warmup: cli.referral_warmup,
        referral_concurrency: cli.referral_concurrency,
        idle_sockets: cli.idle_sockets,
        idle_socket_users: cli.idle_socket_users,
        socket_open_concurrency: cli.socket_open_concurrency,
        settle_secs: cli.idle_settle_secs,
    };
    let scheduling_config = SchedulingConfig {
        attempts: cli.scheduling_attempts,
        rounds: cli.scheduling_rounds,
        bookings: cli.scheduling_bookings,
        concurrency: cli.scheduling_concurrency,
        doctors: cli.scheduling_doctors,
        request_timeout: Duration::from_secs(cli.request_timeout_secs),
    };
    let load_average_before = report::load_average();
    report::warn_if_busy(cores, load_average_before);
    println!("# carehub-bench");
    println!();
    report::print_preamble(
        cores,
        load_average_before,
        &settings,
        phases.http.then_some(&load),
    );
    if phases.realtime.referrals || phases.realtime.messages || phases.realtime.sockets {
        println!(
            "{}",
            realtime::describe(&realtime_config, phases.realtime, open_files)
        );
        println!();
    }
    if phases.scheduling {
        println!("{}", scheduling::describe(&scheduling_config));
        println!();
    }
    let page_config = page::PageConfig {
        rounds: cli.page_rounds,
    };
    if phases.page {
        println!("{}", page::describe(&page_config));
        println!();
    }

    let mut results: Vec<MeasureResult> = Vec::new();
    let mut referral_latency = Vec::new();
    let mut idle_sockets = Vec::new();
    let mut contention = Vec::new();
    let mut booking_throughput = Vec::new();
    let mut server_logs = Vec::new();
    let backends = if phases.per_backend() {
        cli.backends.clone()
    } else {
        Vec::new()
    };
    for backend in backends {
        eprintln!("carehub-bench: [{}] starting the server", backend.name());
        let options = ServerOptions {
            backend,
            server_bin: server_bin.clone(),
            postgres_url: cli.postgres_url.clone(),
            workers: cli.server_workers,
            db_max_connections: cli.server_db_max_connections,
            hash_concurrency: cli.server_hash_concurrency,
            access_token_ttl_secs: cli.access_token_ttl_secs,
            extra_env: Vec::new(),
        };
        let server = Server::start(&options).await?;
        let measured = if phases.http {
            load::run_backend(backend, server.base_url(), &load).await
        } else {
            Ok(Vec::new())
        };
        let (realtime_measured, peer_log) = if measured.is_ok() {
            realtime::run_backend(
                backend,
                &server,
                &options,
                &realtime_config,
                phases.realtime,
            )
            .await
        } else {
            (Ok(realtime::RealtimeMeasured::default()), None)
        };
        let scheduling_measured =
            if phases.scheduling && measured.is_ok() && realtime_measured.is_ok() {
                scheduling::run_backend(backend, server.base_url(), &scheduling_config)
                    .await
                    .map(Some)
            } else {
                Ok(None)
            };
        let log = server.shutdown().await;
        for (name, log) in [
            (backend.name(), Some(log)),
            ("postgres, instance 2", peer_log),
        ] {
            if let Some(log) = log
                && (!log.lines.is_empty() || log.exit_note.is_some())
            {
                server_logs.push(report::ServerLogReport {
                    backend: name,
                    exit: log.exit_note,
                    lines: log.lines,
                });
            }
        }
        if measured.is_err() || realtime_measured.is_err() || scheduling_measured.is_err() {
            // The server's side of the story, before the error ends the run.
            report::eprint_server_logs(&server_logs);
        }
        let measured = measured.with_context(|| format!("benchmarking {}", backend.name()))?;
        results.extend(measured);
        let realtime_measured =
            realtime_measured.with_context(|| format!("benchmarking {}", backend.name()))?;
        referral_latency.extend(realtime_measured.latency);
        idle_sockets.extend(realtime_measured.idle);
        let scheduling_measured = scheduling_measured
            .with_context(|| format!("benchmarking scheduling on {}", backend.name()))?;
        if let Some(measured) = scheduling_measured {
            contention.push(measured.contention);
            booking_throughput.push(measured.throughput);
        }
    }

    if phases.jobs {
        let config = jobs::JobsConfig {
            probes: cli.job_probes,
            emails: cli.job_emails,
            approvals: cli.job_approvals,
        };
        println!("{}\n", jobs::describe(&config));
        let options = ServerOptions {
            backend: Backend::Sqlite,
            server_bin: server_bin.clone(),
            postgres_url: cli.postgres_url.clone(),
            workers: cli.server_workers,
            db_max_connections: cli.server_db_max_connections,
            hash_concurrency: cli.server_hash_concurrency,
            access_token_ttl_secs: cli.access_token_ttl_secs,
            extra_env: Vec::new(),
        };
        let measured = jobs::run(&cli.backends, &options, &config).await?;
        println!("{}", jobs::render(&measured));
    }

    let page_measured = if phases.page {
        eprintln!("carehub-bench: [page] starting carehub demo and Chromium");
        Some(page::run(&server_bin, &page_config).await?)
    } else {
        None
    };
    let call_measured = if phases.call {
        let config = call::CallConfig {
            rounds: cli.call_rounds,
        };
        println!("{}\n", call::describe(&config));
        let options = ServerOptions {
            backend: Backend::Sqlite,
            server_bin: server_bin.clone(),
            postgres_url: cli.postgres_url.clone(),
            workers: cli.server_workers,
            db_max_connections: cli.server_db_max_connections,
            hash_concurrency: cli.server_hash_concurrency,
            access_token_ttl_secs: cli.access_token_ttl_secs,
            extra_env: Vec::new(),
        };
        call::run(&cli.backends, &options, &config).await?
    } else {
        Vec::new()
    };
    let bench_report = BenchReport {
        cores,
        load_average_before,
        load_average_after: report::load_average(),
        settings,
        phases: phases.names(),
        load,
        realtime: realtime_config,
        scheduling: scheduling_config,
        audit_cost: report::audit_costs(&results),
        results,
        referral_latency,
        idle_sockets,
        contention,
        booking_throughput,
        page: page_measured,
        call: call_measured,
        server_logs,
    };
    report::print_table(&bench_report);
    realtime::print(&bench_report.referral_latency, &bench_report.idle_sockets);
    scheduling::print(&bench_report.contention, &bench_report.booking_throughput);
    if let Some(measured) = &bench_report.page {
        println!(
            "## The web app: a doctor's home\n\n{}",
            page::render(measured)
        );
    }
    if !bench_report.call.is_empty() {
        println!(
            "## Video calls: two browsers connected\n\n{}",
            call::render(&bench_report.call)
        );
    }
    report::print_load_average(&bench_report);
    report::print_server_logs(&bench_report.server_logs);
    if let Some(path) = &cli.json {
        report::write_json(path, &bench_report)?;
        eprintln!("carehub-bench: JSON written to {}", path.display());
    }
    // Both checks run, so that both warnings print.
    let no_errors = report::flag_errors(&bench_report.results);
    let audit_complete = report::flag_audit(&bench_report.results);
    let realtime_complete =
        realtime::flag(&bench_report.referral_latency, &bench_report.idle_sockets);
    let scheduling_correct =
        scheduling::flag(&bench_report.contention, &bench_report.booking_throughput);
    Ok(no_errors && audit_complete && realtime_complete && scheduling_correct)
}
