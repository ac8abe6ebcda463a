//! The video call phase (`--only call`): how soon two browsers are in a call, connected to each
//! other through CareHub's signalling, in headless Chromium over WebDriver (Debian's `chromium`
//! and `chromium-driver`, as the browser tests use them) with Chromium's fake camera and
//! microphone.
//!
//! For each backend it starts `carehub serve` (the release binary, [`Server::start`]): the
//! administrator creates a doctor, who sets their week (every day, all day) and registers a
//! patient with an account; the patient books a video visit whose call is open now (it starts
//! two minutes later, or at the next midnight when that would leave too little of the day). Two
//! browsers, one signed in as each, stay open for the phase. Each round reloads both call pages
//! (the reload leaves the call, so each round starts afresh); the doctor joins and waits until
//! the server has answered `call.joined`; then the patient clicks "Join the call", and the round
//! ends when both peer connections are `connected`. A warm-up round comes first, unrecorded.
//!
//! The times come from the pages' own marks (`carehub:call-join`, `carehub:call-joined`,
//! `carehub:call-connected`, in `crates/web/app/calls.js`), as wall-clock instants
//! (`performance.timeOrigin + startTime`) of two browsers on one machine:
//! - **click → both connected**: from the patient's click on "Join the call" until the later
//!   of the two pages saw its `RTCPeerConnection` reach `connected`. It holds asking for the
//!   camera and microphone (fake devices, granted without asking), reading the call
//!   (`GET /appointments/{id}/call`), the join over the socket, then the signalling (offer,
//!   answer, ICE candidates relayed by the server), ICE checks and the DTLS handshake.
//! - **joined → both connected**: from the patient's page reading `call.joined` until both are
//!   connected: the signalling, ICE and DTLS only.
//!
//! Part of `carehub-bench`; run with
//! `cargo build --release -p carehub-web -p carehub-bench && "$CARGO_TARGET_DIR"/release/carehub-bench --only call --backends sqlite`.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use thirtyfour::prelude::*;
use time::{OffsetDateTime, Time};
use uuid::Uuid;

use carehub_tests::browser::{Browser, FAKE_MEDIA};

use crate::Backend;
use crate::load::{PASSWORD, SETUP_TIMEOUT, client};
use crate::realtime::create_staff;
use crate::records::{Created, expect_json, sign_in};
use crate::server::{ADMIN_USERNAME, Server, ServerOptions};

const DOCTOR_USERNAME: &str = "bench.call.doctor";
const PATIENT_USERNAME: &str = "bench.call.patient";
/// How long one step of a round (a page shown, a join answered, a connection made) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the pages are read while waiting.
const POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy, Serialize)]
pub struct CallConfig {
    /// Measured rounds (after one warm-up round).
    pub rounds: u32,
}

/// One round's intervals, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CallRound {
    /// The patient's click on "Join the call" → both peer connections `connected`.
    pub click_to_connected_ms: f64,
    /// The patient's page reading `call.joined` → both peer connections `connected`.
    pub joined_to_connected_ms: f64,
}

/// The rounds measured on one backend.
#[derive(Debug, Clone, Serialize)]
pub struct CallMeasured {
    pub backend: &'static str,
    pub rounds: Vec<CallRound>,
}

pub fn describe(config: &CallConfig) -> String {
    format!(
        "Call: {} rounds (after one warm-up) of a doctor and a patient joining one video visit, \
         each in headless Chromium with a fake camera and microphone, on `carehub serve`. The \
         doctor joins first; timed from the patient's click on \"Join the call\" (and, second \
         column, from the patient's page reading `call.joined`) until both browsers' peer \
         connections are `connected`, by the pages' own clocks.",
        config.rounds
    )
}

/// The marks a call page left, as wall-clock instants in milliseconds (the last of each).
const READ_MARKS: &str = "
    const at = (name) => {
        const entry = performance.getEntriesByName(name).at(-1);
        return entry ? performance.timeOrigin + entry.startTime : null;
    };
    return {
        heading: document.querySelector('h1')?.textContent ?? null,
        state: document.querySelector('[data-call-state]')?.dataset.callState ?? null,
        connection: document.getElementById('call-connection')?.dataset.connectionState ?? null,
        joinable: (() => {
            const join = [...document.querySelectorAll('button')].find((b) => b.textContent === 'Join the call');
            return Boolean(join && !join.hidden && !join.disabled);
        })(),
        live: document.getElementById('nav')?.dataset.live === 'on',
        error: document.getElementById('call-error')?.textContent || document.getElementById('call-refusal')?.textContent || null,
        join: at('carehub:call-join'),
        joined: at('carehub:call-joined'),
        connected: at('carehub:call-connected'),
    };";

/// What a call page shows, and its marks.
#[derive(Debug, Clone, Deserialize)]
struct Marks {
    /// The page's heading (to tell, when a step fails, what the page shows instead).
    heading: Option<String>,
    state: Option<String>,
    connection: Option<String>,
    joinable: bool,
    live: bool,
    error: Option<String>,
    join: Option<f64>,
    joined: Option<f64>,
    connected: Option<f64>,
}

async fn marks(browser: &Browser) -> anyhow::Result<Marks> {
    let read = browser.driver.execute(READ_MARKS, vec![]).await?;
    Ok(serde_json::from_value(read.json().clone())?)
}

/// Reads `browser` until `done` holds of what it shows, for at most [`STEP_TIMEOUT`].
async fn wait_for(
    browser: &Browser,
    what: &str,
    done: impl Fn(&Marks) -> bool,
) -> anyhow::Result<Marks> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let shown = marks(browser).await?;
        if done(&shown) {
            return Ok(shown);
        }
        if Instant::now() >= deadline {
            let heading = shown.heading.as_deref().unwrap_or("no heading");
            bail!("{what}: not within {STEP_TIMEOUT:?}; the page shows {heading:?}: {shown:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Clicks the page's "Join the call".
async fn click_join(browser: &Browser) -> anyhow::Result<()> {
    browser
        .driver
        .find(By::XPath("//button[normalize-space()='Join the call']"))
        .await?
        .click()
        .await?;
    Ok(())
}

/// The visit's start and end: in two minutes until the next hour, within the doctor's day
/// (00:00–23:59 UTC); at the next midnight when fewer than ten minutes of the day would be
/// left, once its call opens (ten minutes before: a wait of three minutes at most).
async fn a_visit_open_now() -> anyhow::Result<(OffsetDateTime, OffsetDateTime)> {
    let now = OffsetDateTime::now_utc();
    let minute = now
        .replace_second(0)
        .and_then(|t| t.replace_nanosecond(0))
        .context("a whole minute")?;
    let start = minute + time::Duration::minutes(2);
    let last = Time::from_hms(23, 49, 0).context("a time of day")?;
    if start.time() <= last {
        let day_end = start.replace_time(Time::from_hms(23, 59, 0).context("a time of day")?);
        return Ok((start, (start + time::Duration::hours(1)).min(day_end)));
    }
    let midnight = (start + time::Duration::days(1)).replace_time(Time::MIDNIGHT);
    let opens = midnight - time::Duration::minutes(10);
    let wait = opens - OffsetDateTime::now_utc();
    if wait.is_positive() {
        eprintln!("carehub-bench: [call] waiting {wait} for the call's window to open");
        tokio::time::sleep(wait.unsigned_abs() + Duration::from_secs(1)).await;
    }
    Ok((midnight, midnight + time::Duration::hours(1)))
}

fn rfc3339(at: OffsetDateTime) -> anyhow::Result<String> {
    Ok(at.format(&time::format_description::well_known::Rfc3339)?)
}

/// Signs `username` in; returns the refresh token, as signing in leaves it in the tab.
async fn refresh_token(
    client: &reqwest::Client,
    base: &str,
    username: &str,
) -> anyhow::Result<String> {
    let request = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "username": username, "password": PASSWORD }));
    let answer: Value = expect_json(
        request,
        reqwest::StatusCode::OK,
        &format!("signing {username} in"),
    )
    .await?;
    answer["refresh_token"]
        .as_str()
        .map(str::to_owned)
        .context("no refresh token")
}

/// The doctor, the patient with an account and a record, and their video visit open now.
async fn seed(base: &str) -> anyhow::Result<Uuid> {
    let client = client(SETUP_TIMEOUT)?;
    let admin = sign_in(&client, base, ADMIN_USERNAME).await?;
    let doctor = create_staff(
        &client,
        base,
        &admin,
        DOCTOR_USERNAME,
        "Bench Video Doctor",
        "doctor",
    )
    .await?;
    let request = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({
            "username": PATIENT_USERNAME,
            "password": PASSWORD,
            "full_name": "Edith Margaret Rowe",
            "role": "patient",
        }));
    let account: Created = expect_json(
        request,
        reqwest::StatusCode::CREATED,
        "registering the patient's account",
    )
    .await?;
    let doctor_token = sign_in(&client, base, DOCTOR_USERNAME).await?;
    let week: Vec<Value> = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ]
    .iter()
    .map(|day| json!({ "weekday": day, "start": "00:00", "end": "23:59" }))
    .collect();
    let request = client
        .put(format!("{base}/api/v1/doctors/{doctor}/availability"))
        .bearer_auth(&doctor_token)
        .json(&json!({ "rules": week }));
    let _: Value = expect_json(
        request,
        reqwest::StatusCode::OK,
        "setting the doctor's week",
    )
    .await?;
    let request = client
        .post(format!("{base}/api/v1/patients"))
        .bearer_auth(&doctor_token)
        .json(&json!({
            "full_name": "Edith Margaret Rowe",
            "date_of_birth": "1951-06-23",
            "sex": "female",
            "user_id": account.id,
        }));
    let record: Created = expect_json(
        request,
        reqwest::StatusCode::CREATED,
        "registering the patient's record as the doctor",
    )
    .await?;
    let patient_token = sign_in(&client, base, PATIENT_USERNAME).await?;
    let (start, end) = a_visit_open_now().await?;
    let request = client
        .post(format!("{base}/api/v1/appointments"))
        .bearer_auth(&patient_token)
        .json(&json!({
            "doctor_id": doctor,
            "patient_id": record.id,
            "start": rfc3339(start)?,
            "end": rfc3339(end)?,
            "reason": "Palpitations at night",
            "video": true,
        }));
    let visit: Created = expect_json(
        request,
        reqwest::StatusCode::CREATED,
        "booking the video visit as the patient",
    )
    .await?;
    Ok(visit.id)
}

/// A browser with a fake camera and microphone, signed in as `username`, on the call page.
async fn open_call(base: &str, username: &str, visit: Uuid) -> anyhow::Result<Browser> {
    let Some(browser) = Browser::open_with(FAKE_MEDIA).await else {
        bail!("no chromedriver: install chromium and chromium-driver");
    };
    let opened = async {
        // A page of the origin, to leave the session in the tab before the app loads.
        browser
            .driver
            .goto(format!("{base}/api/v1/health/live"))
            .await?;
        let token = refresh_token(&client(SETUP_TIMEOUT)?, base, username).await?;
        browser
            .driver
            .execute(
                "sessionStorage.setItem('carehub.refresh', arguments[0]);",
                vec![json!(token)],
            )
            .await?;
        browser
            .driver
            .goto(format!("{base}/#/calls/{visit}"))
            .await?;
        anyhow::Ok(())
    }
    .await;
    match opened {
        Ok(()) => Ok(browser),
        Err(error) => {
            browser.close().await;
            Err(error)
        }
    }
}

/// One round: both pages afresh, the doctor in the call, then the patient's join, timed.
async fn round(doctor: &Browser, patient: &Browser) -> anyhow::Result<CallRound> {
    for browser in [doctor, patient] {
        // Leaves the call of the round before, if any: the page says so to the server.
        browser.driver.refresh().await?;
    }
    for (browser, who) in [(doctor, "the doctor"), (patient, "the patient")] {
        wait_for(browser, &format!("{who}'s call page, ready to join"), |m| {
            m.joinable && m.live && m.state.as_deref() == Some("idle")
        })
        .await?;
    }
    click_join(doctor).await?;
    wait_for(doctor, "the doctor's join", |m| {
        m.state.as_deref() == Some("joined") || m.error.is_some()
    })
    .await
    .and_then(|m| match m.error {
        Some(error) => bail!("the doctor's join was refused: {error}"),
        None => Ok(()),
    })?;
    click_join(patient).await?;
    let connected = |m: &Marks| m.connection.as_deref() == Some("connected") || m.error.is_some();
    let at_patient = wait_for(patient, "the patient's connection", connected).await?;
    let at_doctor = wait_for(doctor, "the doctor's connection", connected).await?;
    if let Some(error) = at_patient.error.as_ref().or(at_doctor.error.as_ref()) {
        bail!("the call failed: {error}");
    }
    let (Some(click), Some(joined), Some(one), Some(other)) = (
        at_patient.join,
        at_patient.joined,
        at_patient.connected,
        at_doctor.connected,
    ) else {
        bail!("a page left no mark: {at_patient:?} {at_doctor:?}");
    };
    let both = one.max(other);
    Ok(CallRound {
        click_to_connected_ms: both - click,
        joined_to_connected_ms: both - joined,
    })
}

/// Runs the phase on each backend.
pub async fn run(
    backends: &[Backend],
    options: &ServerOptions,
    config: &CallConfig,
) -> anyhow::Result<Vec<CallMeasured>> {
    let mut out = Vec::new();
    for &backend in backends {
        eprintln!("carehub-bench: [call, {}] starting", backend.name());
        let mut options = options.clone();
        options.backend = backend;
        let server = Server::start(&options).await?;
        let base = server.base_url().to_owned();
        let measured = async {
            let visit = seed(&base).await?;
            let doctor = open_call(&base, DOCTOR_USERNAME, visit).await?;
            let patient = match open_call(&base, PATIENT_USERNAME, visit).await {
                Ok(patient) => patient,
                Err(error) => {
                    doctor.close().await;
                    return Err(error);
                }
            };
            let mut rounds = Vec::new();
            let mut outcome = Ok(());
            for i in 0..=config.rounds {
                match round(&doctor, &patient).await {
                    // The first round warms up (the browsers' first camera, the first socket).
                    Ok(_) if i == 0 => {}
                    Ok(measured) => rounds.push(measured),
                    Err(error) => {
                        outcome = Err(error.context(format!("round {i}")));
                        break;
                    }
                }
            }
            doctor.close().await;
            patient.close().await;
            outcome.map(|()| rounds)
        }
        .await;
        let log = server.shutdown().await;
        let rounds = measured.with_context(|| {
            format!(
                "measuring calls on {}; the server's log:\n{}",
                backend.name(),
                log.lines.join("\n")
            )
        })?;
        out.push(CallMeasured {
            backend: backend.name(),
            rounds,
        });
    }
    Ok(out)
}

/// The nearest-rank percentile `p` (0–100) of `values`.
fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The phase's table, in Markdown.
pub fn render(measured: &[CallMeasured]) -> String {
    let mut out = String::from(
        "| backend | rounds | click → both connected, ms (p50 / p95 / max) | joined → both connected, ms (p50 / p95 / max) |\n\
         |---|---:|---:|---:|\n",
    );
    for row in measured {
        let cell = |values: Vec<f64>| {
            format!(
                "{:.0} / {:.0} / {:.0}",
                percentile(&values, 50.0),
                percentile(&values, 95.0),
                percentile(&values, 100.0)
            )
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            row.backend,
            row.rounds.len(),
            cell(row.rounds.iter().map(|r| r.click_to_connected_ms).collect()),
            cell(
                row.rounds
                    .iter()
                    .map(|r| r.joined_to_connected_ms)
                    .collect()
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=10).map(f64::from).collect();
        assert!((percentile(&values, 50.0) - 5.0).abs() < f64::EPSILON);
        assert!((percentile(&values, 95.0) - 10.0).abs() < f64::EPSILON);
        assert!((percentile(&values, 100.0) - 10.0).abs() < f64::EPSILON);
        assert!((percentile(&[7.0], 50.0) - 7.0).abs() < f64::EPSILON);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn the_table_has_a_row_per_backend() {
        let table = render(&[CallMeasured {
            backend: "sqlite",
            rounds: vec![CallRound {
                click_to_connected_ms: 812.4,
                joined_to_connected_ms: 301.6,
            }],
        }]);
        assert!(
            table.contains("| sqlite | 1 | 812 / 812 / 812 | 302 / 302 / 302 |"),
            "{table}"
        );
    }
}
