//! The job queue under load: how many jobs per second the workers finish, for probe jobs (no
//! work: the queue's own cost) and for e-mail jobs to an SMTP server in this process, on each
//! backend and on PostgreSQL also with two instances; and what enqueueing a job in a request's
//! transaction adds to that request (account approvals with an e-mail job to enqueue, against
//! approvals without, in alternation).
//!
//! Jobs are written straight into the server's database through the queue's own port, in
//! batches of 1,000, due two seconds later; a measure runs from that instant until the last job
//! succeeded (and, for e-mails, the sink received them all). The workers are the server's
//! defaults (`CAREHUB_JOB_WORKERS` 4, polling every second while idle).
//!
//! Part of `carehub-bench`; run with `--only jobs`.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use carehub_domain::identity::{Email, Username};
use carehub_domain::jobs::{JobKind, JobQueue, JobState, NewJob, Task};
use carehub_domain::notifications::EmailPreferences;
use carehub_infra::Database;
use carehub_infra::db::PoolSettings;
use carehub_tests::smtp::SmtpSink;

use crate::server::{ADMIN_USERNAME, Server, ServerOptions};
use crate::{Backend, load};

/// How many jobs one enqueueing transaction holds.
const BATCH: usize = 1_000;
/// How long a measure may take before it is called failed.
const MEASURE_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy)]
pub struct JobsConfig {
    pub probes: u32,
    pub emails: u32,
    pub approvals: u32,
}

/// One throughput measure.
#[derive(Debug, Clone)]
pub struct Throughput {
    pub backend: &'static str,
    pub instances: usize,
    pub kind: &'static str,
    pub jobs: u32,
    pub elapsed: Duration,
}

/// Approval latencies, with and without an e-mail job enqueued in the approval's transaction.
#[derive(Debug, Clone)]
pub struct EnqueueCost {
    pub backend: &'static str,
    pub with_job: Vec<Duration>,
    pub without_job: Vec<Duration>,
}

#[derive(Debug, Clone, Default)]
pub struct JobsMeasured {
    pub throughput: Vec<Throughput>,
    pub enqueue: Vec<EnqueueCost>,
}

pub fn describe(config: &JobsConfig) -> String {
    format!(
        "Jobs phase: {} probe jobs, then {} e-mail jobs to an in-process SMTP sink, per measure \
         (one instance; on PostgreSQL also two); {} approvals with an e-mail job and {} without, \
         alternated, for the cost of enqueueing.",
        config.probes, config.emails, config.approvals, config.approvals
    )
}

/// Runs the phase on each backend.
///
/// # Errors
/// When a server cannot start or a measure does not finish.
pub async fn run(
    backends: &[Backend],
    options: &ServerOptions,
    config: &JobsConfig,
) -> anyhow::Result<JobsMeasured> {
    let mut measured = JobsMeasured::default();
    for &backend in backends {
        eprintln!("carehub-bench: [jobs, {}] starting", backend.name());
        let sink = SmtpSink::start().await;
        let mut options = options.clone();
        options.backend = backend;
        options
            .extra_env
            .push(("CAREHUB_SMTP_URL".into(), sink.url()));
        let server = Server::start(&options).await?;
        let database = Database::connect(server.database_url(), PoolSettings::default())
            .await
            .context("cannot connect to the server's database")?;
        let repositories = database.repositories();
        let admin = repositories
            .users
            .find_credentials(&Username::parse(ADMIN_USERNAME).map_err(anyhow::Error::msg)?)
            .await?
            .context("the administrator exists")?
            .0;
        repositories
            .email_preferences
            .replace(
                admin.id,
                &EmailPreferences::new(
                    Some(Email::parse("bench.admin@clinic.example").map_err(anyhow::Error::msg)?),
                    [],
                ),
            )
            .await?;
        let queue = repositories.jobs.as_ref();
        let mut instances = vec![server];
        let rounds = if backend == Backend::Postgres { 2 } else { 1 };
        for round in 1..=rounds {
            if round == 2 {
                let peer = instances[0].start_peer(&options).await?;
                instances.push(peer);
            }
            let probes = (0..config.probes).map(|_| Task::Probe {
                hold_ms: 0,
                fail_attempts: 0,
            });
            let elapsed = through(queue, JobKind::Probe, probes, None).await?;
            measured.throughput.push(Throughput {
                backend: backend.name(),
                instances: instances.len(),
                kind: "probe (no work)",
                jobs: config.probes,
                elapsed,
            });
            let before = sink.received().len();
            let emails = (0..config.emails).map(|_| Task::AccountApprovedEmail { user: admin.id });
            let elapsed = through(
                queue,
                JobKind::AccountApprovedEmail,
                emails,
                Some((&sink, before)),
            )
            .await?;
            measured.throughput.push(Throughput {
                backend: backend.name(),
                instances: instances.len(),
                kind: "e-mail (SMTP)",
                jobs: config.emails,
                elapsed,
            });
        }
        let cost = enqueue_cost(instances[0].base_url(), config.approvals).await?;
        measured.enqueue.push(EnqueueCost {
            backend: backend.name(),
            ..cost
        });
        database.close().await;
        while let Some(server) = instances.pop() {
            let log = server.shutdown().await;
            if let Some(note) = log.exit_note {
                eprintln!("carehub-bench: [jobs] {note}");
            }
        }
    }
    Ok(measured)
}

/// Enqueues `tasks` due two seconds from now and waits until every job of `kind` succeeded
/// (and the sink holds as many more e-mails); returns the time from their due instant.
async fn through(
    queue: &dyn JobQueue,
    kind: JobKind,
    tasks: impl Iterator<Item = Task>,
    sink: Option<(&SmtpSink, usize)>,
) -> anyhow::Result<Duration> {
    let due = Timestamp::now() + SignedDuration::from_secs(2);
    let jobs: Vec<NewJob> = tasks.map(|task| NewJob::new(task, due)).collect();
    let total = jobs.len();
    let already = succeeded(queue, kind).await?;
    for batch in jobs.chunks(BATCH) {
        queue.enqueue(batch, Timestamp::now()).await?;
    }
    if Timestamp::now() > due {
        bail!("enqueueing {total} jobs took more than the two seconds before they were due");
    }
    let started = Instant::now() + Duration::try_from(due.duration_since(Timestamp::now()))?;
    loop {
        let done = succeeded(queue, kind).await? - already;
        let mailed = sink.is_none_or(|(sink, before)| sink.received().len() - before >= total);
        if done >= total as u64 && mailed {
            return Ok(started.elapsed());
        }
        if started.elapsed() > MEASURE_TIMEOUT {
            bail!("{done} of {total} {kind} jobs done after {MEASURE_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn succeeded(queue: &dyn JobQueue, kind: JobKind) -> anyhow::Result<u64> {
    Ok(queue
        .counts()
        .await?
        .iter()
        .filter(|c| c.kind == kind && c.state == JobState::Succeeded)
        .map(|c| c.count)
        .sum())
}

/// Registers `approvals` doctors with an e-mail address and as many without, then approves
/// them one at a time, alternating, timing each approval.
async fn enqueue_cost(base_url: &str, approvals: u32) -> anyhow::Result<EnqueueCost> {
    let client = load::client(Duration::from_secs(30))?;
    let token = sign_in(&client, base_url).await?;
    let mut pairs = Vec::new();
    for n in 0..approvals {
        let with = register(&client, base_url, &format!("jobs.with{n}"), true).await?;
        let without = register(&client, base_url, &format!("jobs.without{n}"), false).await?;
        pairs.push((with, without));
    }
    let mut with_job = Vec::new();
    let mut without_job = Vec::new();
    for (with, without) in pairs {
        with_job.push(approve(&client, base_url, &token, &with).await?);
        without_job.push(approve(&client, base_url, &token, &without).await?);
    }
    Ok(EnqueueCost {
        backend: "",
        with_job,
        without_job,
    })
}

async fn sign_in(client: &reqwest::Client, base_url: &str) -> anyhow::Result<String> {
    let response = client
        .post(format!("{base_url}/api/v1/auth/login"))
        .json(&json!({"username": ADMIN_USERNAME, "password": load::PASSWORD}))
        .send()
        .await?;
    let body: Value = response.error_for_status()?.json().await?;
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("no access token")
}

async fn register(
    client: &reqwest::Client,
    base_url: &str,
    username: &str,
    with_email: bool,
) -> anyhow::Result<String> {
    let email = with_email.then(|| format!("{username}@clinic.example"));
    let response = client
        .post(format!("{base_url}/api/v1/auth/register"))
        .json(&json!({
            "username": username,
            "password": load::PASSWORD,
            "full_name": "Bench Doctor",
            "email": email,
            "role": "doctor",
        }))
        .send()
        .await?;
    let body: Value = response.error_for_status()?.json().await?;
    body["id"].as_str().map(str::to_owned).context("no id")
}

async fn approve(
    client: &reqwest::Client,
    base_url: &str,
    token: &str,
    id: &str,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let response = client
        .post(format!("{base_url}/api/v1/admin/users/{id}/approve"))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await?;
    let elapsed = started.elapsed();
    response.error_for_status()?;
    Ok(elapsed)
}

fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1_000.0)
}

pub fn render(measured: &JobsMeasured) -> String {
    let mut out = String::from(
        "## The job queue\n\n| Backend | Instances | Jobs | Count | Seconds | Jobs/s |\n|---|--:|---|--:|--:|--:|\n",
    );
    for t in &measured.throughput {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.2} | {:.0} |\n",
            t.backend,
            t.instances,
            t.kind,
            t.jobs,
            t.elapsed.as_secs_f64(),
            f64::from(t.jobs) / t.elapsed.as_secs_f64()
        ));
    }
    out.push_str(
        "\n| Backend | Approvals | p50 ms, with an e-mail job | p50 ms, without | p99 ms, with | p99 ms, without |\n|---|--:|--:|--:|--:|--:|\n",
    );
    for e in &measured.enqueue {
        out.push_str(&format!(
            "| {} | {} + {} | {} | {} | {} | {} |\n",
            e.backend,
            e.with_job.len(),
            e.without_job.len(),
            ms(percentile(&e.with_job, 0.5)),
            ms(percentile(&e.without_job, 0.5)),
            ms(percentile(&e.with_job, 0.99)),
            ms(percentile(&e.without_job, 0.99)),
        ));
    }
    out
}
