//! Scratch databases for tests: each test gets its own SQLite file or PostgreSQL database,
//! removed when the [`ScratchDatabase`] is dropped.
//!
//! PostgreSQL tests read the server's URL from `CAREHUB_TEST_POSTGRES_URL` (a role that may
//! create databases). Where it is unset they are skipped, except under CI (`CI` set), where a
//! missing PostgreSQL is an error rather than a silent pass.

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
