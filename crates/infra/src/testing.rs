//! Scratch databases for tests: each test gets its own SQLite file or PostgreSQL database,
//! removed when the [`ScratchDatabase`] is dropped.
//!
//! PostgreSQL tests read the server's URL from `CAREHUB_TEST_POSTGRES_URL` (a role that may
//! create databases). Where it is unset they are skipped, except under CI (`CI` set), where a
//! missing PostgreSQL is an error rather than a silent pass.
//!
//! S3 tests run against a local S3 service, moto's server: [`ScratchBucket`] starts one for
//! the test and makes a bucket in it. The server is `CAREHUB_TEST_MOTO_SERVER`, else
//! `~/.cache/carehub-moto/bin/moto_server` (`pip install 'moto[server]'` in that virtualenv);
//! without it the tests are skipped, again except under CI.

use std::path::PathBuf;
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _, Executor as _};
use uuid::Uuid;

use crate::db::{Database, DatabaseError, PoolSettings};

/// The environment variable naming the PostgreSQL server tests may use.
pub const POSTGRES_URL_VAR: &str = "CAREHUB_TEST_POSTGRES_URL";

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists for one test.
#[derive(Debug)]
pub struct ScratchDatabase {
    /// The URL to connect to it, e.g. for a server under test.
    pub url: String,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Directory(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl ScratchDatabase {
    /// A new empty database on `backend`, or `None` when PostgreSQL is not configured outside CI.
    ///
    /// # Panics
    /// Under CI when `CAREHUB_TEST_POSTGRES_URL` is unset, and when the database cannot be made.
    pub async fn create(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => Some(Self::sqlite()),
            Backend::Postgres => {
                let Ok(admin_url) = std::env::var(POSTGRES_URL_VAR) else {
                    assert!(
                        std::env::var_os("CI").is_none(),
                        "{POSTGRES_URL_VAR} must be set under CI: PostgreSQL tests cannot be skipped"
                    );
                    eprintln!("skipped: {POSTGRES_URL_VAR} is not set");
                    return None;
                };
                match Self::postgres(&admin_url).await {
                    Ok(db) => Some(db),
                    Err(e) => panic!("cannot create a PostgreSQL test database: {e}"),
                }
            }
        }
    }

    /// A SQLite file in a new temporary directory.
    pub fn sqlite() -> Self {
        let dir = std::env::temp_dir().join(format!("carehub-test-{}", Uuid::new_v4().simple()));
        let url = format!("sqlite:{}", dir.join("carehub.db").display());
        Self {
            url,
            cleanup: Cleanup::Directory(dir),
        }
    }

    /// A new database on the PostgreSQL server at `admin_url`.
    ///
    /// # Errors
    /// [`DatabaseError`] when the server refuses.
    pub async fn postgres(admin_url: &str) -> Result<Self, DatabaseError> {
        let name = format!("carehub_test_{}", Uuid::new_v4().simple());
        let mut admin = PgConnectOptions::from_str(admin_url)?.connect().await?;
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await?;
        admin.close().await?;
        Ok(Self {
            url: replace_database(admin_url, &name),
            cleanup: Cleanup::Postgres {
                admin_url: admin_url.to_owned(),
                name,
            },
        })
    }

    /// Connects to the database and applies the migrations.
    ///
    /// # Errors
    /// [`DatabaseError`].
    pub async fn connect_migrated(&self) -> Result<Database, DatabaseError> {
        let db = Database::connect(&self.url, PoolSettings::default()).await?;
        db.migrate().await?;
        Ok(db)
    }
}

/// `postgres://user@host:port/db?params` with `db` replaced by `name`.
fn replace_database(url: &str, name: &str) -> String {
    let (base, params) = url
        .split_once('?')
        .map_or((url, None), |(b, p)| (b, Some(p)));
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let host_and_path = &base[authority_end..];
    let root = match host_and_path.find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match params {
        Some(params) => format!("{root}/{name}?{params}"),
        None => format!("{root}/{name}"),
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Directory(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop runs inside the test's runtime; a thread with its own runtime can block.
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    runtime.block_on(async {
                        let mut admin = PgConnectOptions::from_str(&admin_url)?.connect().await?;
                        admin
                            .execute(sqlx::AssertSqlSafe(format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            )))
                            .await?;
                        admin.close().await?;
                        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
                    })
                })
                .join();
                if let Ok(Err(e)) = dropped {
                    eprintln!("could not drop a PostgreSQL test database: {e}");
                }
            }
        }
    }
}

/// The environment variable naming moto's S3 server for tests.
pub const MOTO_SERVER_VAR: &str = "CAREHUB_TEST_MOTO_SERVER";

/// A bucket in an S3 service of its own that exists for one test: a moto server on a free
/// port, stopped when this is dropped.
#[derive(Debug)]
pub struct ScratchBucket {
    /// `s3://bucket/prefix`.
    pub url: String,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    pub bucket: String,
    server: std::process::Child,
}

impl ScratchBucket {
    /// A new bucket in a new moto server, or `None` when moto is not installed outside CI.
    ///
    /// # Panics
    /// Under CI when moto is missing, and when the server does not start or refuses the
    /// bucket.
    pub async fn create(prefix: &str) -> Option<Self> {
        let Some(program) = moto_server() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "moto_server must be installed under CI (or named by {MOTO_SERVER_VAR}): S3 tests cannot be skipped"
            );
            eprintln!("skipped: moto_server is not installed and {MOTO_SERVER_VAR} is not set");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let server = std::process::Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let bucket = format!("carehub-test-{}", Uuid::new_v4().simple());
        let scratch = Self {
            url: format!("s3://{bucket}/{prefix}"),
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket,
            server,
        };
        // Moto answers unsigned requests: the bucket is made with a bare `PUT /bucket`.
        let request = format!(
            "PUT /{} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            scratch.bucket
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match Self::send(port, &request).await {
                Ok(status) if status.starts_with("HTTP/1.1 200") => return Some(scratch),
                Ok(status) => panic!("moto refused the bucket: {status}"),
                Err(e) if std::time::Instant::now() > deadline => {
                    panic!("moto did not start on port {port}: {e}")
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        }
    }

    /// Sends `request`, answers the status line.
    async fn send(port: u16, request: &str) -> std::io::Result<String> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        let answer = String::from_utf8_lossy(&answer);
        Ok(answer.lines().next().unwrap_or_default().to_owned())
    }

    /// The settings that reach this bucket (moto takes any credentials).
    pub fn settings(&self) -> crate::lab::S3Settings {
        crate::lab::S3Settings {
            url: self.url.clone(),
            endpoint: Some(self.endpoint.clone()),
            region: Some("us-east-1".to_owned()),
            access_key_id: Some("carehub-test".to_owned()),
            secret_access_key: Some("carehub-test-secret".to_owned()),
        }
    }
}

impl Drop for ScratchBucket {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn moto_server() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(MOTO_SERVER_VAR) {
        return Some(PathBuf::from(path));
    }
    let path = PathBuf::from(std::env::var_os("HOME")?).join(".cache/carehub-moto/bin/moto_server");
    path.is_file().then_some(path)
}

#[cfg(test)]
mod tests {
    use super::replace_database;

    #[test]
    fn the_database_name_is_replaced_keeping_parameters() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            replace_database("postgres://u:p@h/db?sslmode=disable", "t2"),
            "postgres://u:p@h/t2?sslmode=disable"
        );
        assert_eq!(
            replace_database("postgres://h:5432", "t3"),
            "postgres://h:5432/t3"
        );
    }
}
