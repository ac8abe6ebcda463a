//! Starting the `carehub` server under measurement, and cleaning up after it.
//!
//! [`Server::start`] creates a temporary data directory, a fresh database (a SQLite file in that
//! directory, or a `carehub_bench_<random>` PostgreSQL database created with `psql`), picks a
//! free port on 127.0.0.1, creates the administrator [`ADMIN_USERNAME`] with
//! `carehub admin create` (the password is [`crate::load::PASSWORD`], passed in
//! `CAREHUB_ADMIN_PASSWORD`), spawns the release binary and waits for `/api/v1/health/ready`.
//! [`Server::start_peer`] starts a second instance on the same data directory (so the same token
//! signing key) and the same database, on another port: the PostgreSQL two-instance measures.
//! [`Server::shutdown`] stops it with SIGTERM and collects its log. Every resource is also held
//! by a guard whose `Drop` releases it, so an error, a panic or Ctrl-C (which drops the future)
//! leaves no process, database or directory behind.
//!
//! Part of `carehub-bench`; run with
//! `cargo build --release -p carehub-web -p carehub-bench && "$CARGO_TARGET_DIR"/release/carehub-bench`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};

use crate::Backend;

/// How long the server may take to answer `/health/ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the server may take to exit after SIGTERM (its own shutdown timeout is 10 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Server log lines kept for the report.
const MAX_LOG_LINES: usize = 60;
/// How long `carehub admin create` may take (it migrates the fresh database first).
const ADMIN_CREATE_TIMEOUT: Duration = Duration::from_secs(60);
/// The administrator created before the server starts.
pub const ADMIN_USERNAME: &str = "bench.admin";

#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub backend: Backend,
    pub server_bin: PathBuf,
    pub postgres_url: String,
    pub workers: Option<usize>,
    pub db_max_connections: Option<u32>,
    pub hash_concurrency: Option<usize>,
    /// `CAREHUB_ACCESS_TOKEN_TTL_SECS`: long enough for tokens taken at the start of a phase
    /// (sockets opened with them) to outlive it.
    pub access_token_ttl_secs: u32,
    /// More `CAREHUB_*` variables for `carehub serve` (the jobs phase's mail server).
    pub extra_env: Vec<(String, String)>,
}

/// What the server left behind: its log (warnings and errors) and how it exited.
#[derive(Debug, Clone, Default)]
pub struct ServerLog {
    pub lines: Vec<String>,
    /// Set when the server did not exit cleanly after SIGTERM.
    pub exit_note: Option<String>,
}

/// A running server. Fields drop in order: the child first, then the database, then the
/// directory (both shared with a peer instance, if any: released with the last of them).
#[derive(Debug)]
pub struct Server {
    child: Child,
    base_url: String,
    database_url: String,
    /// The file in the data directory that holds this instance's output.
    log_name: &'static str,
    database: Option<Arc<PgDatabase>>,
    data_dir: Arc<TempDir>,
}

impl Server {
    pub async fn start(options: &ServerOptions) -> anyhow::Result<Self> {
        let data_dir = TempDir::create()?;
        let (database_url, database) = match options.backend {
            Backend::Sqlite => (
                format!("sqlite:{}", data_dir.path().join("bench.db").display()),
                None,
            ),
            Backend::Postgres => {
                let database = PgDatabase::create(&options.postgres_url).await?;
                (database.url.clone(), Some(database))
            }
        };
        let port = free_port()?;
        let carehub =
            |arguments: &[&str]| command(options, data_dir.path(), port, &database_url, arguments);

        let mut admin = carehub(&[
            "admin",
            "create",
            "--username",
            ADMIN_USERNAME,
            "--full-name",
            "Bench Administrator",
        ]);
        admin.env("CAREHUB_ADMIN_PASSWORD", crate::load::PASSWORD);
        let created = tokio::time::timeout(ADMIN_CREATE_TIMEOUT, admin.output())
            .await
            .context("`carehub admin create` did not finish in time")?
            .with_context(|| format!("cannot run {}", options.server_bin.display()))?;
        if !created.status.success() {
            bail!(
                "`carehub admin create` failed ({}): {} {}",
                created.status,
                String::from_utf8_lossy(&created.stdout).trim(),
                String::from_utf8_lossy(&created.stderr).trim()
            );
        }

        Self::serve(
            options,
            Arc::new(data_dir),
            database.map(Arc::new),
            database_url,
            port,
            "server.log",
        )
        .await
    }

    /// Starts a second instance on this one's data directory and database, on another free
    /// port, logging to `server-2.log`.
    pub async fn start_peer(&self, options: &ServerOptions) -> anyhow::Result<Self> {
        Self::serve(
            options,
            self.data_dir.clone(),
            self.database.clone(),
            self.database_url.clone(),
            free_port()?,
            "server-2.log",
        )
        .await
    }

    /// Spawns `carehub serve` and waits until it is ready.
    async fn serve(
        options: &ServerOptions,
        data_dir: Arc<TempDir>,
        database: Option<Arc<PgDatabase>>,
        database_url: String,
        port: u16,
        log_name: &'static str,
    ) -> anyhow::Result<Self> {
        let log_path = data_dir.path().join(log_name);
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let log_err = log.try_clone().context("cannot duplicate the log file")?;
        let mut command = command(options, data_dir.path(), port, &database_url, &["serve"]);
        command
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        if let Some(workers) = options.workers {
            command.env("CAREHUB_WORKERS", workers.to_string());
        }
        if let Some(max) = options.db_max_connections {
            command.env("CAREHUB_DB_MAX_CONNECTIONS", max.to_string());
        }
        if let Some(hashes) = options.hash_concurrency {
            command.env("CAREHUB_PASSWORD_HASH_CONCURRENCY", hashes.to_string());
        }
        command.envs(
            options
                .extra_env
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", options.server_bin.display()))?;

        let mut server = Self {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            database_url,
            log_name,
            database,
            data_dir,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The database it serves (for measures that write to it directly).
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// The server process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .context("cannot build the HTTP client")?;
        let url = format!("{}/api/v1/health/ready", self.base_url);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().context("cannot poll the server")? {
                bail!(
                    "the server exited during start-up ({status}); its log:\n{}",
                    self.read_log().join("\n")
                );
            }
            if let Ok(response) = client.get(&url).send().await
                && response.status() == reqwest::StatusCode::OK
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the server was not ready within {READY_TIMEOUT:?}; its log:\n{}",
                    self.read_log().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the server with SIGTERM (SIGKILL after [`STOP_TIMEOUT`]), then releases the
    /// database and the directory; returns the server's log.
    pub async fn shutdown(mut self) -> ServerLog {
        let mut exit_note = None;
        if let Some(pid) = self.child.id() {
            // `kill` rather than libc: this workspace forbids unsafe code.
            let sent = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await
                .map(|status| status.success())
                .unwrap_or(false);
            if !sent {
                exit_note = Some("could not send SIGTERM; killed".to_owned());
            }
        }
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => {
                exit_note.get_or_insert_with(|| format!("exited with {status} after SIGTERM"));
            }
            Ok(Err(e)) => {
                exit_note.get_or_insert_with(|| format!("cannot wait for the server: {e}"));
            }
            Err(_) => {
                let _ = self.child.kill().await;
                exit_note.get_or_insert_with(|| {
                    format!("did not exit within {STOP_TIMEOUT:?} of SIGTERM; killed")
                });
            }
        }
        let lines = self.read_log();
        // Dropping `self` releases its share of the database and of the directory: the last
        // instance to go drops the database and removes the directory.
        ServerLog { lines, exit_note }
    }

    /// The last [`MAX_LOG_LINES`] lines of the server's output.
    fn read_log(&self) -> Vec<String> {
        let path = self.data_dir.path().join(self.log_name);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let skip = lines.len().saturating_sub(MAX_LOG_LINES);
        lines.into_iter().skip(skip).collect()
    }
}

/// `carehub <arguments>` with the benchmark's settings: the server's `CAREHUB_*` variables are
/// exactly these (none inherited from this shell), plus what the caller adds.
fn command(
    options: &ServerOptions,
    data_dir: &Path,
    port: u16,
    database_url: &str,
    arguments: &[&str],
) -> Command {
    let mut command = Command::new(&options.server_bin);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CAREHUB_") {
            command.env_remove(key);
        }
    }
    command
        .args(arguments)
        .current_dir(data_dir)
        .env("CAREHUB_BIND", format!("127.0.0.1:{port}"))
        .env("CAREHUB_DATA_DIR", data_dir)
        .env("CAREHUB_DATABASE_URL", database_url)
        .env(
            "CAREHUB_ACCESS_TOKEN_TTL_SECS",
            options.access_token_ttl_secs.to_string(),
        )
        // All of the load comes from 127.0.0.1: the per-address limits would stop it.
        .env("CAREHUB_LOGIN_MAX_FAILURES_PER_ADDRESS", "1000000000")
        .env("CAREHUB_REGISTRATIONS_PER_ADDRESS", "1000000000")
        .env("CAREHUB_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// A port the kernel says is free on 127.0.0.1 (free until someone else takes it).
fn free_port() -> anyhow::Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind a port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// A directory under the system temporary directory, removed on drop.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn create() -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "carehub-bench-{}",
            uuid::Uuid::new_v4().as_simple()
        ));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("carehub-bench: cannot remove {}: {e}", self.0.display());
        }
    }
}

/// A PostgreSQL database created for one run, dropped (`WITH (FORCE)`) on drop.
#[derive(Debug)]
struct PgDatabase {
    admin_url: String,
    name: String,
    /// The server's URL: the admin URL with this database.
    url: String,
}

impl PgDatabase {
    async fn create(admin_url: &str) -> anyhow::Result<Self> {
        let name = format!(
            "carehub_bench_{}",
            &uuid::Uuid::new_v4().as_simple().to_string()[..12]
        );
        let url = with_database(admin_url, &name)?;
        let output = psql(admin_url, &format!("CREATE DATABASE {name}"))
            .output()
            .await
            .context("cannot run psql (is the PostgreSQL client installed?)")?;
        if !output.status.success() {
            bail!(
                "psql could not create database {name}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(Self {
            admin_url: admin_url.to_owned(),
            name,
            url,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Synchronous on purpose: drop cannot await, and this runs once per backend.
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let result = std::process::Command::new("psql")
            .args(psql_args(&self.admin_url, &sql))
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .output();
        match result {
            Ok(output) if output.status.success() => {}
            Ok(output) => eprintln!(
                "carehub-bench: cannot drop database {}: {}",
                self.name,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            Err(e) => eprintln!("carehub-bench: cannot drop database {}: {e}", self.name),
        }
    }
}

fn psql_args(url: &str, sql: &str) -> Vec<String> {
    ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql]
        .map(str::to_owned)
        .to_vec()
}

fn psql(url: &str, sql: &str) -> Command {
    let mut command = Command::new("psql");
    command
        .args(psql_args(url, sql))
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Checks `--postgres-url` before anything starts.
pub fn validate_postgres_url(url: &str) -> anyhow::Result<()> {
    with_database(url, "carehub_bench").map(drop)
}

/// `postgres://user@host:port/db?params` with `db` replaced by `database`. Refuses hosts other
/// than the loopback interface: the benchmark contacts 127.0.0.1 only.
fn with_database(url: &str, database: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .context("--postgres-url must start with postgres:// or postgresql://")?;
    let scheme = &url[..url.len() - rest.len()];
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let query = tail.find('?').map_or("", |at| &tail[at..]);
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = host_port
        .strip_prefix('[')
        .and_then(|h| h.split_once(']').map(|(ip, _)| ip))
        .unwrap_or_else(|| host_port.split(':').next().unwrap_or_default());
    if !matches!(host, "127.0.0.1" | "localhost" | "::1") {
        bail!("--postgres-url must point at 127.0.0.1, not {host:?}");
    }
    Ok(format!("{scheme}{authority}/{database}{query}"))
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_and_keeps_the_rest() -> anyhow::Result<()> {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x")?,
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgresql://u:p@localhost/db?sslmode=disable", "x")?,
            "postgresql://u:p@localhost/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://127.0.0.1:5432", "x")?,
            "postgres://127.0.0.1:5432/x"
        );
        assert!(with_database("postgres://db.example.com/postgres", "x").is_err());
        Ok(())
    }
}
