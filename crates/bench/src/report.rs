//! The report: the preamble (machine and server settings), the Markdown table, the server
//! logs, the loud error warning and the optional JSON file.
//!
//! Part of `carehub-bench`; run with
//! `cargo build --release -p carehub-web -p carehub-bench && "$CARGO_TARGET_DIR"/release/carehub-bench`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use crate::load::{LoadConfig, MeasureResult};

/// The server settings in effect, as the benchmark set them or as the server defaults them.
#[derive(Debug, Clone, Serialize)]
pub struct ServerSettingsReport {
    pub server_bin: String,
    pub workers: String,
    pub db_max_connections: String,
    pub password_hash_concurrency: String,
    pub log: &'static str,
    pub bind: &'static str,
}

impl ServerSettingsReport {
    pub fn new(
        server_bin: &Path,
        workers: Option<usize>,
        db_max_connections: Option<u32>,
        hash_concurrency: Option<usize>,
        cores: usize,
    ) -> Self {
        let or_default = |value: Option<String>, default: String| {
            value.unwrap_or_else(|| format!("{default} (server default)"))
        };
        Self {
            server_bin: server_bin.display().to_string(),
            workers: or_default(workers.map(|w| w.to_string()), format!("{cores} = cores")),
            db_max_connections: or_default(db_max_connections.map(|m| m.to_string()), "16".into()),
            password_hash_concurrency: or_default(
                hash_concurrency.map(|h| h.to_string()),
                format!("{cores} = cores"),
            ),
            log: "warn",
            bind: "127.0.0.1:<free port>",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerLogReport {
    pub backend: &'static str,
    pub exit: Option<String>,
    pub lines: Vec<String>,
}

/// Everything the JSON file holds.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub cores: usize,
    /// `/proc/loadavg` (1, 5, 15 minutes) before the first backend and after the last.
    pub load_average_before: Option<[f64; 3]>,
    pub load_average_after: Option<[f64; 3]>,
    pub settings: ServerSettingsReport,
    pub load: LoadConfig,
    pub results: Vec<MeasureResult>,
    pub server_logs: Vec<ServerLogReport>,
}

/// The 1, 5 and 15 minute load averages; `None` where `/proc/loadavg` is unreadable.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(str::parse::<f64>);
    Some([
        fields.next()?.ok()?,
        fields.next()?.ok()?,
        fields.next()?.ok()?,
    ])
}

fn format_load(load: Option<[f64; 3]>) -> String {
    load.map_or_else(
        || "n/a".to_owned(),
        |[one, five, fifteen]| format!("{one:.2} {five:.2} {fifteen:.2}"),
    )
}

/// Warns when other processes already load the machine: the numbers would be theirs too.
pub fn warn_if_busy(cores: usize, load: Option<[f64; 3]>) {
    if let Some([one, ..]) = load
        && one > cores as f64 * 0.5
    {
        eprintln!(
            "carehub-bench: WARNING: the 1-minute load average is {one:.2} on {cores} cores \
             before starting: other processes compete with the server and the numbers will be low"
        );
    }
}

pub fn print_preamble(
    cores: usize,
    load_before: Option<[f64; 3]>,
    settings: &ServerSettingsReport,
    load: &LoadConfig,
) {
    println!(
        "Machine: {cores} CPU cores (available parallelism), shared by the server and this client; \
         load average before start: {}.",
        format_load(load_before)
    );
    println!();
    println!("Server: `{}`", settings.server_bin);
    println!("- CAREHUB_BIND={}", settings.bind);
    println!("- CAREHUB_WORKERS={}", settings.workers);
    println!(
        "- CAREHUB_DB_MAX_CONNECTIONS={}",
        settings.db_max_connections
    );
    println!(
        "- CAREHUB_PASSWORD_HASH_CONCURRENCY={}",
        settings.password_hash_concurrency
    );
    println!("- CAREHUB_LOG={}", settings.log);
    println!(
        "- CAREHUB_DATA_DIR and CAREHUB_DATABASE_URL: fresh per backend; other CAREHUB_* unset"
    );
    println!();
    println!(
        "Load: {} patients; sign-ins: {} clients for {} s; GET /users/me: {} connections, \
         {} s warm-up, {} s measured; request timeout {} s.",
        load.users,
        load.login_concurrency,
        load.login_duration.as_secs(),
        load.connections,
        load.warmup.as_secs(),
        load.duration.as_secs(),
        load.request_timeout.as_secs(),
    );
    println!();
}

/// The Markdown table, one row per backend and measure.
pub fn render_table(results: &[MeasureResult]) -> String {
    let mut out = String::new();
    out.push_str(
        "| backend | measure | conc. | requests | errors | req/s | p50 ms | p90 ms | p99 ms | max ms |\n",
    );
    out.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for r in results {
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {}{} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} |",
            r.backend,
            r.measure,
            r.concurrency,
            r.requests,
            r.errors,
            if r.errors > 0 { " ⚠" } else { "" },
            r.ok_per_sec,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.max_ms,
        );
    }
    out
}

pub fn print_table(report: &BenchReport) {
    print!("{}", render_table(&report.results));
    println!();
    println!(
        "req/s counts the expected responses over the measured window (200; 401 on the \
         failed sign-in rows, which run one request at a time); latencies are of those \
         responses (HDR histogram, µs resolution), body read included. A wrong password and an \
         unknown username should cost the same."
    );
    for r in &report.results {
        let seen = r
            .server_connections_seen
            .map_or_else(|| "n/a".to_owned(), |n| n.to_string());
        println!(
            "- {} {}: {:.1} s measured, mean {:.2} ms, peak in flight {}, server-side connections seen mid-run {}",
            r.backend, r.measure, r.elapsed_secs, r.mean_ms, r.peak_in_flight, seen
        );
    }
    println!(
        "- load average (1/5/15 min) before: {}; after: {}",
        format_load(report.load_average_before),
        format_load(report.load_average_after)
    );
    println!();
}

pub fn print_server_logs(logs: &[ServerLogReport]) {
    if logs.is_empty() {
        println!("Server logs (warn and above): empty; every server exited cleanly on SIGTERM.");
        return;
    }
    for log in logs {
        println!("Server log ({}, warn and above):", log.backend);
        if let Some(exit) = &log.exit {
            println!("- exit: {exit}");
        }
        if !log.lines.is_empty() {
            println!("```");
            for line in &log.lines {
                println!("{line}");
            }
            println!("```");
        }
    }
    println!();
}

/// The server logs, to stderr, when a run ends in an error.
pub fn eprint_server_logs(logs: &[ServerLogReport]) {
    for log in logs {
        eprintln!("carehub-bench: server log ({}):", log.backend);
        if let Some(exit) = &log.exit {
            eprintln!("  exit: {exit}");
        }
        for line in &log.lines {
            eprintln!("  {line}");
        }
    }
}

/// Prints a loud warning when any measure saw errors; `true` when none did.
pub fn flag_errors(results: &[MeasureResult]) -> bool {
    let failed: Vec<&MeasureResult> = results.iter().filter(|r| r.errors > 0).collect();
    if failed.is_empty() {
        return true;
    }
    let banner = "!".repeat(72);
    eprintln!("{banner}");
    eprintln!("!!! THIS RUN HAD ERRORS: its numbers are not a valid measurement.");
    for r in failed {
        let kinds: Vec<String> = r
            .error_kinds
            .iter()
            .map(|(kind, n)| format!("{kind}: {n}"))
            .collect();
        eprintln!(
            "!!! {} {}: {} of {} requests failed ({})",
            r.backend,
            r.measure,
            r.errors,
            r.requests,
            kinds.join(", ")
        );
    }
    eprintln!("{banner}");
    false
}

pub fn write_json(path: &Path, report: &BenchReport) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(report).context("cannot encode the results")?;
    std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))
}
