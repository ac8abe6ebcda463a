//! A real browser for the web app's tests: Debian's Chromium, headless, driven over WebDriver
//! through `/usr/bin/chromedriver` (or `CAREHUB_TEST_CHROMEDRIVER`), one driver per browser.
//! Without a driver the tests are skipped, as PostgreSQL's are without a database, unless
//! `CI` is set: there a missing browser fails them.

use std::mem::ManuallyDrop;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use thirtyfour::error::WebDriverErrorInner;
use thirtyfour::prelude::*;
use tokio::process::{Child, Command};

/// axe-core, the accessibility checker, as vendored (see `tests/vendor/axe-core/README.md`).
const AXE: &str = include_str!("../vendor/axe-core/axe.min.js");

/// Chromium arguments for video calls: a fake camera and microphone (a test pattern and a
/// tone), allowed without asking, and videos that play without a click.
pub const FAKE_MEDIA: &[&str] = &[
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
];

/// A headless Chromium and the chromedriver that drives it; both end when this is dropped.
#[derive(Debug)]
pub struct Browser {
    /// Never dropped: dropping a session not quit (a test that panicked) sends a request that
    /// waits two minutes on the driver this browser's [`Drop`] has just ended.
    pub driver: ManuallyDrop<WebDriver>,
    chromedriver: Child,
    /// The process group of chromedriver and the Chromium it starts.
    group: Option<u32>,
    _profile: TempDir,
}

impl Drop for Browser {
    /// Ends Chromium too, not only its driver: a test that panics never reaches
    /// [`Browser::close`], and Chromium would outlive it. (`kill` rather than libc: this
    /// workspace forbids unsafe code.)
    fn drop(&mut self) {
        if let Some(group) = self.group {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[derive(Debug)]
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn chromedriver_path() -> Option<PathBuf> {
    let path = std::env::var_os("CAREHUB_TEST_CHROMEDRIVER")
        .map_or_else(|| PathBuf::from("/usr/bin/chromedriver"), PathBuf::from);
    if path.exists() {
        Some(path)
    } else if std::env::var_os("CI").is_some() {
        panic!(
            "no chromedriver at {}: install chromium-driver",
            path.display()
        );
    } else {
        eprintln!(
            "skipped: no chromedriver at {} (apt-get install chromium chromium-driver)",
            path.display()
        );
        None
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Browser {
    /// A new browser, or `None` (the test is skipped) when no chromedriver is installed.
    pub async fn open() -> Option<Self> {
        Self::open_with(&[]).await
    }

    /// A new browser started with `extra` Chromium arguments besides the usual ones (e.g.
    /// [`FAKE_MEDIA`]), or `None` as [`Browser::open`].
    pub async fn open_with(extra: &[&str]) -> Option<Self> {
        let chromedriver_bin = chromedriver_path()?;
        let port = free_port();
        let chromedriver = Command::new(chromedriver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            // Its own process group, which Chromium joins: ended as one on drop.
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let group = chromedriver.id();
        let profile = TempDir(std::env::temp_dir().join(format!("carehub-chromium-{port}")));
        let mut caps = DesiredCapabilities::chrome();
        for arg in [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
            "--window-size=1280,900",
            &format!("--user-data-dir={}", profile.0.display()),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        {
            caps.add_arg(arg).expect("a Chromium argument");
        }
        let url = format!("http://127.0.0.1:{port}");
        let mut last = None;
        for _ in 0..100 {
            match WebDriver::new(&url, caps.clone()).await {
                Ok(driver) => {
                    return Some(Self {
                        driver: ManuallyDrop::new(driver),
                        chromedriver,
                        group,
                        _profile: profile,
                    });
                }
                Err(error) => last = Some(error),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start a browser: {last:?}");
    }

    /// Saves a screenshot of the page as `target/screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).expect("the screenshot folder");
        self.driver
            .screenshot(&dir.join(format!("{name}.png")))
            .await
            .expect("a screenshot");
    }

    /// Opens the app at `base` and signs in.
    pub async fn sign_in(&self, base: &str, username: &str, password: &str) {
        self.driver.goto(base).await.expect("the app loads");
        self.fill("username", username).await;
        self.fill("password", password).await;
        self.click("Sign in").await;
    }

    /// The page's heading `text`, waited for.
    pub async fn heading(&self, text: &str) -> WebElement {
        self.driver
            .query(By::XPath(format!("//h1[normalize-space()=\"{text}\"]")))
            .first()
            .await
            .unwrap_or_else(|e| panic!("no heading {text:?}: {e}"))
    }

    /// Waits up to ten seconds until the text of the element `by` satisfies `done`; returns it.
    pub async fn wait_until_text(&self, by: By, done: impl Fn(&str) -> bool) -> String {
        let mut shown = String::new();
        for _ in 0..200 {
            if let Ok(element) = self.driver.find(by.clone()).await {
                shown = element.text().await.unwrap_or_default();
                if done(&shown) {
                    return shown;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the page shows {shown:?}");
    }

    /// Waits until the element `by` shows `text`.
    pub async fn wait_for_text(&self, by: By, text: &str) {
        self.wait_until_text(by, |shown| shown.contains(text)).await;
    }

    /// Clicks the button labelled `label` (the first, waited for).
    pub async fn click(&self, label: &str) {
        self.click_on(By::XPath(format!(
            "//button[normalize-space()=\"{label}\"]"
        )))
        .await;
    }

    /// Follows the link (or opens the disclosure) whose text is `text`.
    pub async fn follow(&self, text: &str) {
        self.click_on(By::XPath(format!(
            "//a[normalize-space()=\"{text}\"] | //summary[normalize-space()=\"{text}\"]"
        )))
        .await;
    }

    /// Clicks the first element `by`.
    pub async fn click_on(&self, by: By) {
        self.act_on(by, |element| async move { element.click().await })
            .await;
    }

    /// Does `act` on the first visible element `by`, found again and done again if the page
    /// redrew it meanwhile (news arriving over the socket redraws the page).
    async fn act_on<F, Fut>(&self, by: By, act: F)
    where
        F: Fn(WebElement) -> Fut,
        Fut: std::future::Future<Output = WebDriverResult<()>>,
    {
        for _ in 0..20 {
            match act(self.element(by.clone()).await).await {
                Ok(()) => return,
                Err(e) if matches!(*e, WebDriverErrorInner::StaleElementReference(..)) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("cannot act on {by:?}: {error}"),
            }
        }
        panic!("{by:?} kept being redrawn");
    }

    /// The first visible element `by`, waited for (and looked for again if the page redrew
    /// it while it was being checked).
    pub async fn element(&self, by: By) -> WebElement {
        let shown = format!("{by:?}");
        for _ in 0..20 {
            match self.driver.query(by.clone()).and_displayed().first().await {
                Ok(element) => return element,
                Err(e) if matches!(*e, WebDriverErrorInner::StaleElementReference(..)) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("no {shown}: {e}"),
            }
        }
        panic!("{shown} kept being redrawn");
    }

    /// Types `value` into the (first visible) input named `name`, replacing what it held.
    pub async fn fill(&self, name: &str, value: &str) {
        self.act_on(By::Name(name), |input| async move {
            input.clear().await?;
            input.send_keys(value).await
        })
        .await;
    }

    /// Sets the (first visible) control named `name` to `value` as a user's choice would, and
    /// tells the page (date inputs and selects, which WebDriver cannot type into portably).
    pub async fn choose(&self, name: &str, value: &str) {
        let driver = &self.driver;
        self.act_on(By::Name(name), |control| async move {
            let control = control.to_json()?;
            driver
                .execute(
                    "arguments[0].value = arguments[1]; \
                     arguments[0].dispatchEvent(new Event('input', { bubbles: true })); \
                     arguments[0].dispatchEvent(new Event('change', { bubbles: true }));",
                    vec![control, value.into()],
                )
                .await
                .map(|_| ())
        })
        .await;
    }

    /// The serious and critical violations that axe-core (vendored under `tests/vendor`) finds
    /// on the page as it is, one line each: rule, impact, what it asks, where.
    pub async fn serious_accessibility_violations(&self) -> Vec<String> {
        self.driver
            .execute(AXE, vec![])
            .await
            .expect("axe-core loads");
        let found = self
            .driver
            .execute_async(
                "const done = arguments[arguments.length - 1]; \
                 axe.run(document, { resultTypes: ['violations'] }).then( \
                   (r) => done(r.violations \
                     .filter((v) => v.impact === 'serious' || v.impact === 'critical') \
                     .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)), \
                   (e) => done([`axe-core failed: ${e}`]));",
                vec![],
            )
            .await
            .expect("axe-core runs");
        serde_json::from_value(found.json().clone()).expect("a list of violations")
    }

    /// Ends the browser session and its driver.
    pub async fn close(mut self) {
        let _ = WebDriver::clone(&self.driver).quit().await;
        let _ = self.chromedriver.kill().await;
    }
}

/// Where the tests save screenshots: `screenshots` in the cargo target directory.
pub fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    target.join("screenshots")
}
