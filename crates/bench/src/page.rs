//! The web app's page phase (`--only page`): how heavy the app is and how soon a doctor's home
//! is on screen, in headless Chromium over WebDriver (Debian's `chromium` and
//! `chromium-driver`, as the browser tests use them).
//!
//! It starts `carehub demo` (the release binary) in a temporary data directory, so the home
//! shows a living clinic: Dr House's appointments and the referral waiting for him. Each round
//! opens a fresh browser (an empty cache), leaves a session for Dr House in the tab (a refresh
//! token, as signing in would) and loads `/`: the app restores the session, reads the user, the
//! day's appointments and the referral inbox, and draws the home. Then it reloads the page once
//! (a warm cache: every file revalidated by its entity tag). Each load reports, from the
//! browser's own timing: the first contentful paint, the moment the home was drawn with its
//! data (the app's `carehub:shown` mark), and the bytes transferred and decoded.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use thirtyfour::prelude::*;
use tokio::process::Command;

use carehub_tests::browser::Browser;

/// The demo's doctor whose home is measured, and the demo's passphrase.
const DOCTOR: &str = "dr.house";
const DEMO_PASSWORD: &str = "welcome-to-carehub";

#[derive(Debug, Clone, Copy)]
pub struct PageConfig {
    pub rounds: u32,
}

/// One load of the doctor's home.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct PageLoad {
    pub first_contentful_paint_ms: f64,
    pub home_shown_ms: f64,
    pub transferred_bytes: u64,
    pub decoded_bytes: u64,
    pub requests: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PageMeasured {
    pub cold: Vec<PageLoad>,
    pub warm: Vec<PageLoad>,
}

pub fn describe(config: &PageConfig) -> String {
    format!(
        "Page: {} rounds of a doctor's home in headless Chromium on `carehub demo` (SQLite): a \
         cold load in a fresh browser, then a reload.",
        config.rounds
    )
}

/// What the browser measured of the load it just made.
const READ_TIMING: &str = "
    const nav = performance.getEntriesByType('navigation')[0];
    const paint = performance.getEntriesByName('first-contentful-paint')[0];
    const shown = performance.getEntriesByName('carehub:shown')[0];
    const entries = [nav, ...performance.getEntriesByType('resource')];
    return {
        first_contentful_paint_ms: paint ? paint.startTime : -1,
        home_shown_ms: shown ? shown.startTime : -1,
        transferred_bytes: entries.reduce((sum, e) => sum + e.transferSize, 0),
        decoded_bytes: entries.reduce((sum, e) => sum + e.decodedBodySize, 0),
        requests: entries.length,
    };";

async fn read_load(browser: &Browser) -> anyhow::Result<PageLoad> {
    browser
        .driver
        .query(By::XPath("//h1[normalize-space()='Doctor home']"))
        .first()
        .await
        .context("the doctor's home was not shown")?;
    // The paint entry is recorded after the frame: give it that frame.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let timing = browser.driver.execute(READ_TIMING, vec![]).await?;
    let load: PageLoad = serde_json::from_value(timing.json().clone())?;
    if load.home_shown_ms < 0.0 {
        bail!("the page recorded no carehub:shown mark");
    }
    Ok(load)
}

/// A refresh token of the demo's doctor, as signing in leaves it in the tab.
async fn session(base: &str) -> anyhow::Result<String> {
    let answer: Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "username": DOCTOR, "password": DEMO_PASSWORD }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    answer["refresh_token"]
        .as_str()
        .map(str::to_owned)
        .context("no refresh token")
}

async fn round(base: &str) -> anyhow::Result<(PageLoad, PageLoad)> {
    let Some(browser) = Browser::open().await else {
        bail!("no chromedriver: install chromium and chromium-driver");
    };
    let measured = async {
        // A page of the origin that is not the app, to leave the session in the tab with the
        // app's files still uncached.
        browser
            .driver
            .goto(format!("{base}/api/v1/health/live"))
            .await?;
        let token = session(base).await?;
        browser
            .driver
            .execute(
                "sessionStorage.setItem('carehub.refresh', arguments[0]);",
                vec![json!(token)],
            )
            .await?;
        browser.driver.goto(format!("{base}/")).await?;
        let cold = read_load(&browser).await?;
        browser.driver.refresh().await?;
        let warm = read_load(&browser).await?;
        anyhow::Ok((cold, warm))
    }
    .await;
    browser.close().await;
    measured
}

/// Runs the phase against `carehub demo` started from `server_bin`.
pub async fn run(server_bin: &Path, config: &PageConfig) -> anyhow::Result<PageMeasured> {
    let dir = std::env::temp_dir().join(format!("carehub-bench-page-{}", std::process::id()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut demo = Command::new(server_bin)
        .arg("demo")
        .arg("--bind")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(&dir)
        .env("CAREHUB_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start carehub demo")?;
    let measured = async {
        let client = reqwest::Client::new();
        let mut ready = false;
        for _ in 0..300 {
            let answer = client
                .get(format!("{base}/api/v1/health/ready"))
                .send()
                .await;
            if answer.is_ok_and(|a| a.status().is_success()) {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !ready {
            bail!("carehub demo did not become ready");
        }
        let mut out = PageMeasured::default();
        for _ in 0..config.rounds {
            let (cold, warm) = round(&base).await?;
            out.cold.push(cold);
            out.warm.push(warm);
        }
        Ok(out)
    }
    .await;
    let _ = demo.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
    measured
}

fn median_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let mut all: Vec<f64> = values.collect();
    all.sort_by(f64::total_cmp);
    let median = all.get(all.len() / 2).copied().unwrap_or(f64::NAN);
    (median, all.last().copied().unwrap_or(f64::NAN))
}

/// The phase's table, in Markdown.
pub fn render(measured: &PageMeasured) -> String {
    let mut out = String::from(
        "| load | first contentful paint, ms (median / max) | home shown with its data, ms (median / max) | transferred, bytes | decoded, bytes | requests |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for (name, loads) in [
        ("cold (fresh browser)", &measured.cold),
        ("warm (reload)", &measured.warm),
    ] {
        let (paint, paint_max) = median_max(loads.iter().map(|l| l.first_contentful_paint_ms));
        let (shown, shown_max) = median_max(loads.iter().map(|l| l.home_shown_ms));
        let last = loads.last();
        out.push_str(&format!(
            "| {name} | {paint:.0} / {paint_max:.0} | {shown:.0} / {shown_max:.0} | {} | {} | {} |\n",
            last.map_or(0, |l| l.transferred_bytes),
            last.map_or(0, |l| l.decoded_bytes),
            last.map_or(0, |l| l.requests),
        ));
    }
    out
}
