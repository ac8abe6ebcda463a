//! The `carehub` binary as a child process, for the tests that start it as an operator would:
//! on a free port, on a scratch database, with its own data directory; and the few requests
//! those tests make. Each test file uses a part of it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use carehub_infra::testing::ScratchDatabase;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;
use tokio::process::{Child, Command};

/// A data directory, removed when the last server using it is dropped.
#[derive(Debug)]
pub struct DataDir(PathBuf);

impl DataDir {
    /// A new directory name under the system's temporary directory (the server creates it).
    pub fn new(purpose: &str) -> Arc<Self> {
        Arc::new(Self(
            std::env::temp_dir().join(format!("carehub-{purpose}-{}", unique())),
        ))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `carehub serve` child process.
pub struct Server {
    pub child: Child,
    base: String,
    data_dir: Arc<DataDir>,
}

impl Server {
    pub async fn start(database: &ScratchDatabase) -> Self {
        Self::start_with(database, &[]).await
    }

    /// Starts a server with extra `CAREHUB_*` variables; its log is kept for
    /// [`Server::terminate`].
    pub async fn start_with(database: &ScratchDatabase, extra: &[(&str, &str)]) -> Self {
        let (server, _) =
            Self::launch(database, DataDir::new("process"), extra, Stdio::piped()).await;
        server
    }

    /// Starts a server on `data_dir` with extra `CAREHUB_*` variables, its log going to
    /// `stderr`, and waits until it is ready; returns it and how long it took to be ready.
    pub async fn launch(
        database: &ScratchDatabase,
        data_dir: Arc<DataDir>,
        extra: &[(&str, &str)],
        stderr: Stdio,
    ) -> (Self, Duration) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let started = tokio::time::Instant::now();
        let child = Command::new(env!("CARGO_BIN_EXE_carehub"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("CAREHUB_BIND", format!("127.0.0.1:{port}"))
            .env("CAREHUB_DATABASE_URL", &database.url)
            .env("CAREHUB_DATA_DIR", data_dir.path())
            .env("CAREHUB_WORKERS", "1")
            .env("CAREHUB_LOG", "info")
            .env("CAREHUB_LOG_FORMAT", "json")
            .envs(extra.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("the carehub binary starts");
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            data_dir,
        };
        let client = reqwest::Client::new();
        // Polled often, so that the time to ready is measured to about 10 ms.
        while started.elapsed() < Duration::from_secs(20) {
            if let Ok(response) = client.get(server.url("/api/v1/health/ready")).send().await
                && response.status() == 200
            {
                return (server, started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the server did not become ready");
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn data_dir(&self) -> &Arc<DataDir> {
        &self.data_dir
    }

    /// Creates an administrator with `carehub admin create`, as an operator would.
    pub async fn create_admin(&self, database: &ScratchDatabase, username: &str, password: &str) {
        let status = Command::new(env!("CARGO_BIN_EXE_carehub"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("CAREHUB_DATABASE_URL", &database.url)
            .env("CAREHUB_DATA_DIR", self.data_dir.path())
            .env("CAREHUB_ADMIN_PASSWORD", password)
            .args(["admin", "create", "--username", username])
            .args(["--full-name", "Process Test Administrator"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .unwrap();
        assert!(status.success(), "carehub admin create succeeds");
    }

    /// Runs `carehub keys ARGS` on this server's database and data directory, as an operator
    /// would while it runs; returns its exit status, standard output and standard error.
    pub async fn keys(
        &self,
        database: &ScratchDatabase,
        args: &[&str],
    ) -> (std::process::ExitStatus, String, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_carehub"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("CAREHUB_DATABASE_URL", &database.url)
            .env("CAREHUB_DATA_DIR", self.data_dir.path())
            .arg("keys")
            .args(args)
            .output()
            .await
            .unwrap();
        (
            output.status,
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    }

    /// Sends SIGTERM and returns the exit status and everything the server logged (nothing
    /// when its log went elsewhere than a pipe).
    pub async fn terminate(mut self) -> (std::process::ExitStatus, String) {
        self.signal("-TERM").await;
        // Bounded so a hang fails the test instead of stalling the suite; not a speed check.
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the server exits after SIGTERM")
            .unwrap();
        let mut logs = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            stderr.read_to_string(&mut logs).await.unwrap();
        }
        (status, logs)
    }

    /// Sends SIGKILL with `kill -9`, as a crash or an out-of-memory kill would end the server,
    /// and waits for it to be gone.
    pub async fn kill_hard(mut self) -> Arc<DataDir> {
        self.signal("-KILL").await;
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the server dies on SIGKILL")
            .unwrap();
        assert!(!status.success(), "killed, not exited: {status}");
        Arc::clone(&self.data_dir)
    }

    async fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("a running child");
        let sent = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .await
            .unwrap();
        assert!(sent.success(), "kill {signal} {pid}");
    }
}

/// A name no other test run uses.
pub fn unique() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

pub async fn sign_in(
    client: &reqwest::Client,
    server: &Server,
    username: &str,
    password: &str,
) -> String {
    let tokens: Value = post(
        client,
        server.url("/api/v1/auth/login"),
        &json!({"username": username, "password": password}),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    tokens["access_token"].as_str().unwrap().to_owned()
}

pub async fn get(client: &reqwest::Client, url: String, token: &str) -> reqwest::Response {
    client.get(url).bearer_auth(token).send().await.unwrap()
}

pub async fn post(
    client: &reqwest::Client,
    url: String,
    body: &Value,
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = client.post(url).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}
