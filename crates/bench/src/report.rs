//! The report: the preamble (machine and server settings), the Markdown table, the audit's
//! cost and completeness, the server logs, the loud error warning and the optional JSON file.
//! The real-time tables are rendered by [`crate::realtime`], the scheduling ones by
//! [`crate::scheduling`].
//!
//! Part of `carehub-bench`; run with
//! `cargo build --release -p carehub-web -p carehub-bench && "$CARGO_TARGET_DIR"/release/carehub-bench`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use crate::load::{LoadConfig, ME, MeasureResult, PATIENT};
use crate::realtime::{IdleSocketsResult, RealtimeConfig, ReferralLatencyResult};
use crate::scheduling::{ContentionResult, SchedulingConfig, ThroughputResult};

/// The server settings in effect, as the benchmark set them or as the server defaults them.
#[derive(Debug, Clone, Serialize)]
pub struct ServerSettingsReport {
    pub server_bin: String,
    pub workers: String,
    pub db_max_connections: String,
    pub password_hash_concurrency: String,
    pub access_token_ttl_secs: u32,
    pub log: &'static str,
    pub bind: &'static str,
}

impl ServerSettingsReport {
    pub fn new(
        server_bin: &Path,
        workers: Option<usize>,
        db_max_connections: Option<u32>,
        hash_concurrency: Option<usize>,
        access_token_ttl_secs: u32,
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
            access_token_ttl_secs,
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
    /// The phases run (`--only`).
    pub phases: Vec<&'static str>,
    pub load: LoadConfig,
    pub realtime: RealtimeConfig,
    pub scheduling: SchedulingConfig,
    pub results: Vec<MeasureResult>,
    /// The audited read against the unaudited one, per backend.
    pub audit_cost: Vec<AuditCost>,
    /// Referral → socket latency rows (phase `referrals`).
    pub referral_latency: Vec<ReferralLatencyResult>,
    /// Idle socket memory, per backend (phase `sockets`).
    pub idle_sockets: Vec<IdleSocketsResult>,
    /// One slot booked by many clients at once, per backend (phase `scheduling`).
    pub contention: Vec<ContentionResult>,
    /// Bookings of distinct slots, per backend (phase `scheduling`).
    pub booking_throughput: Vec<ThroughputResult>,
    /// The web app's doctor home in a browser (phase `page`).
    pub page: Option<crate::page::PageMeasured>,
    /// Two browsers connecting a video call, per backend (phase `call`).
    pub call: Vec<crate::call::CallMeasured>,
    pub server_logs: Vec<ServerLogReport>,
}

/// `GET /patients/{id}` (audited: one event per read, through the group-commit writer) next to
/// `GET /users/me` (unaudited, same authentication) on one backend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditCost {
    pub backend: &'static str,
    pub unaudited_ok_per_sec: f64,
    pub audited_ok_per_sec: f64,
    /// `audited / unaudited - 1`, in percent (negative: fewer reads per second).
    pub ok_per_sec_change_pct: f64,
    pub unaudited_p50_ms: f64,
    pub audited_p50_ms: f64,
    pub unaudited_p99_ms: f64,
    pub audited_p99_ms: f64,
}

/// One [`AuditCost`] per backend that has both reads, in the order of the results.
pub fn audit_costs(results: &[MeasureResult]) -> Vec<AuditCost> {
    let find = |backend: &str, measure: &str| {
        results
            .iter()
            .find(|r| r.backend == backend && r.measure == measure)
    };
    results
        .iter()
        .filter(|r| r.measure == PATIENT)
        .filter_map(|audited| {
            let unaudited = find(audited.backend, ME)?;
            let change = if unaudited.ok_per_sec > 0.0 {
                (audited.ok_per_sec / unaudited.ok_per_sec - 1.0) * 100.0
            } else {
                0.0
            };
            Some(AuditCost {
                backend: audited.backend,
                unaudited_ok_per_sec: unaudited.ok_per_sec,
                audited_ok_per_sec: audited.ok_per_sec,
                ok_per_sec_change_pct: change,
                unaudited_p50_ms: unaudited.p50_ms,
                audited_p50_ms: audited.p50_ms,
                unaudited_p99_ms: unaudited.p99_ms,
                audited_p99_ms: audited.p99_ms,
            })
        })
        .collect()
}

/// The Markdown table of the audit's cost, one row per backend.
pub fn render_audit_cost(costs: &[AuditCost]) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "| backend | {ME} req/s | {PATIENT} req/s | change | p50 ms | p99 ms |"
    );
    out.push_str("|---|--:|--:|--:|--:|--:|\n");
    for c in costs {
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.1} | {:+.1}% | {:.2} → {:.2} | {:.2} → {:.2} |",
            c.backend,
            c.unaudited_ok_per_sec,
            c.audited_ok_per_sec,
            c.ok_per_sec_change_pct,
            c.unaudited_p50_ms,
            c.audited_p50_ms,
            c.unaudited_p99_ms,
            c.audited_p99_ms,
        );
    }
    out
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

/// The machine, the server's settings and, when the HTTP phase runs, its load.
pub fn print_preamble(
    cores: usize,
    load_before: Option<[f64; 3]>,
    settings: &ServerSettingsReport,
    load: Option<&LoadConfig>,
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
    println!(
        "- CAREHUB_ACCESS_TOKEN_TTL_SECS={}",
        settings.access_token_ttl_secs
    );
    println!("- CAREHUB_LOG={}", settings.log);
    println!(
        "- CAREHUB_DATA_DIR and CAREHUB_DATABASE_URL: fresh per backend; other CAREHUB_* unset"
    );
    println!();
    let Some(load) = load else {
        return;
    };
    println!(
        "Load: {} patients; sign-ins: {} clients for {} s; {ME} (as the patients) and {PATIENT} \
         (one patient, as a doctor on its care team; audited): {} connections each, \
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

/// The HTTP phase's tables and notes; nothing when it did not run.
pub fn print_table(report: &BenchReport) {
    if report.results.is_empty() {
        return;
    }
    print!("{}", render_table(&report.results));
    println!();
    println!(
        "req/s counts the expected responses over the measured window (200; 401 on the \
         failed sign-in rows, which run one request at a time); latencies are of those \
         responses (HDR histogram, µs resolution), body read included. A wrong password and an \
         unknown username should cost the same."
    );
    println!();
    println!(
        "The audit's cost: {PATIENT} writes one audit event per read (group commit); {ME} \
         authenticates the same way and writes none. The difference also holds the care-team \
         check and loading the record, so it bounds the audit's cost from above."
    );
    println!();
    print!("{}", render_audit_cost(&report.audit_cost));
    println!();
    for r in &report.results {
        if let Some(audit) = &r.audit {
            println!(
                "- {} {PATIENT}: {} `patient.read` events (allowed) for {} responses 200, \
                 warm-up included{}{}",
                r.backend,
                audit.read_events_allowed,
                audit.ok_responses,
                if audit.read_events_denied > 0 {
                    format!("; {} refusals audited", audit.read_events_denied)
                } else {
                    String::new()
                },
                if audit.complete {
                    ": none lost"
                } else {
                    ": MISMATCH ⚠"
                },
            );
        }
    }
    for r in &report.results {
        let seen = r
            .server_connections_seen
            .map_or_else(|| "n/a".to_owned(), |n| n.to_string());
        println!(
            "- {} {}: {:.1} s measured, mean {:.2} ms, peak in flight {}, server-side connections seen mid-run {}",
            r.backend, r.measure, r.elapsed_secs, r.mean_ms, r.peak_in_flight, seen
        );
    }
    println!();
}

/// The load averages before the first phase and after the last.
pub fn print_load_average(report: &BenchReport) {
    println!(
        "Load average (1/5/15 min) before: {}; after: {}",
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

/// Prints a loud warning when the audit trail does not hold exactly one read event per 200;
/// `true` when it does (or when no measure was audited).
pub fn flag_audit(results: &[MeasureResult]) -> bool {
    let mismatched: Vec<&MeasureResult> = results
        .iter()
        .filter(|r| r.audit.as_ref().is_some_and(|a| !a.complete))
        .collect();
    if mismatched.is_empty() {
        return true;
    }
    let banner = "!".repeat(72);
    eprintln!("{banner}");
    eprintln!("!!! THE AUDIT TRAIL DOES NOT MATCH THE READS ANSWERED:");
    for r in mismatched {
        if let Some(a) = &r.audit {
            eprintln!(
                "!!! {} {}: {} responses 200 but {} `patient.read` events (allowed) for patient {}",
                r.backend, r.measure, a.ok_responses, a.read_events_allowed, a.patient_id
            );
        }
    }
    eprintln!("{banner}");
    false
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn row(
        backend: &'static str,
        measure: &'static str,
        ok_per_sec: f64,
        p50: f64,
    ) -> MeasureResult {
        MeasureResult {
            backend,
            measure,
            concurrency: 64,
            requests: 1000,
            ok: 1000,
            errors: 0,
            error_kinds: BTreeMap::new(),
            elapsed_secs: 15.0,
            ok_per_sec,
            mean_ms: p50,
            p50_ms: p50,
            p90_ms: p50 * 1.5,
            p99_ms: p50 * 2.0,
            max_ms: p50 * 4.0,
            peak_in_flight: 64,
            server_connections_seen: Some(64),
            audit: None,
        }
    }

    #[test]
    fn the_audited_read_is_set_against_the_unaudited_one_of_its_own_backend() {
        let results = [
            row("sqlite", "POST /auth/login", 80.0, 90.0),
            row("sqlite", ME, 10_000.0, 5.0),
            row("sqlite", PATIENT, 7_500.0, 7.0),
            row("postgres", ME, 6_000.0, 10.0),
            row("postgres", PATIENT, 3_000.0, 20.0),
        ];
        let costs = audit_costs(&results);
        assert_eq!(costs.len(), 2);
        assert_eq!(costs[0].backend, "sqlite");
        assert!((costs[0].ok_per_sec_change_pct - -25.0).abs() < 1e-9);
        assert!((costs[0].audited_p50_ms - 7.0).abs() < 1e-9);
        assert!((costs[0].unaudited_p99_ms - 10.0).abs() < 1e-9);
        assert_eq!(costs[1].backend, "postgres");
        assert!((costs[1].ok_per_sec_change_pct - -50.0).abs() < 1e-9);
        assert!((costs[1].unaudited_ok_per_sec - 6_000.0).abs() < 1e-9);
    }

    #[test]
    fn a_backend_without_both_reads_has_no_cost_row() {
        let results = [
            row("sqlite", PATIENT, 7_500.0, 7.0),
            row("postgres", ME, 6_000.0, 10.0),
        ];
        assert!(audit_costs(&results).is_empty());
        assert_eq!(
            audit_costs(&[
                row("sqlite", ME, 0.0, 0.0),
                row("sqlite", PATIENT, 0.0, 0.0)
            ])[0]
                .ok_per_sec_change_pct,
            0.0
        );
    }

    #[test]
    fn the_cost_table_shows_the_change_and_both_latencies() {
        let costs = audit_costs(&[
            row("sqlite", ME, 10_000.0, 5.0),
            row("sqlite", PATIENT, 7_500.0, 7.0),
        ]);
        assert_eq!(
            render_audit_cost(&costs),
            "| backend | GET /users/me req/s | GET /patients/{id} req/s | change | p50 ms | p99 ms |\n\
             |---|--:|--:|--:|--:|--:|\n\
             | sqlite | 10000.0 | 7500.0 | -25.0% | 5.00 → 7.00 | 10.00 → 14.00 |\n"
        );
    }

    #[test]
    fn only_an_incomplete_audit_fails_the_run() {
        let patient = uuid::Uuid::nil();
        let events = |allowed| crate::records::ReadEvents { allowed, denied: 0 };
        let mut audited = row("sqlite", PATIENT, 7_500.0, 7.0);
        audited.audit = Some(crate::records::AuditCheck::new(patient, 5, events(5)));
        assert!(flag_audit(&[row("sqlite", ME, 1.0, 1.0), audited.clone()]));
        audited.audit = Some(crate::records::AuditCheck::new(patient, 5, events(4)));
        assert!(!flag_audit(&[audited]));
    }
}
