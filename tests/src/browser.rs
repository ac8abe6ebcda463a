//! A real browser for the web app's tests: Debian's Chromium, headless, driven over WebDriver
//! through `/usr/bin/chromedriver` (or `CAREHUB_TEST_CHROMEDRIVER`), one driver per browser.
//! Without a driver the tests are skipped, as PostgreSQL's are without a database, unless
//! `CI` is set: there a missing browser fails them.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use thirtyfour::prelude::*;
use tokio::process::{Child, Command};

/// A headless Chromium and the chromedriver that drives it; both end when this is dropped.
#[derive(Debug)]
pub struct Browser {
    pub driver: WebDriver,
    chromedriver: Child,
    _profile: TempDir,
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
        let chromedriver_bin = chromedriver_path()?;
        let port = free_port();
        let chromedriver = Command::new(chromedriver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
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
        ] {
            caps.add_arg(arg).expect("a Chromium argument");
        }
        let url = format!("http://127.0.0.1:{port}");
        let mut last = None;
        for _ in 0..100 {
            match WebDriver::new(&url, caps.clone()).await {
                Ok(driver) => {
                    return Some(Self {
                        driver,
                        chromedriver,
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

    /// Ends the browser session and its driver.
    pub async fn close(mut self) {
        let _ = self.driver.clone().quit().await;
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
