//! What every concept's adapters share: connecting to SQLite or PostgreSQL and migrating
//! ([`Database`]), what differs between the two backends (`backend`), and how each stores
//! timestamps (`sql_time`). A database's repositories and notification publisher are handed
//! out by `Database::repositories` (in `repositories.rs`) and `Database::realtime` (in
//! `notifications`), next to what they build.

pub(crate) mod backend;
pub(crate) mod listener;
pub(crate) mod sql_time;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use listener::PgListenerHandle;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("unsupported database URL: expected sqlite:... or postgres://...")]
    UnsupportedUrl,
    #[error("cannot create the database directory {path}: {source}")]
    Directory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Pool sizes and timeouts.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// A connected database of either kind.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Database {
    /// Connects to `url`: `sqlite:PATH` (the file and its directory are created when missing;
    /// WAL, foreign keys and a busy timeout are switched on) or `postgres://...`.
    ///
    /// # Errors
    /// [`DatabaseError`] when the URL is unsupported or the database unreachable.
    pub async fn connect(url: &str, settings: PoolSettings) -> Result<Self, DatabaseError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5));
            if let Some(dir) = options.get_filename().parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|source| DatabaseError::Directory {
                    path: dir.to_owned(),
                    source,
                })?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(settings.max_connections)
                .acquire_timeout(settings.acquire_timeout)
                .connect_with(options)
                .await?;
            Ok(Self::Sqlite(pool))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(settings.max_connections)
                .acquire_timeout(settings.acquire_timeout)
                .connect(url)
                .await?;
            Ok(Self::Postgres(pool))
        } else {
            Err(DatabaseError::UnsupportedUrl)
        }
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Applies the backend's pending migrations.
    ///
    /// # Errors
    /// [`DatabaseError::Migrate`].
    pub async fn migrate(&self) -> Result<(), DatabaseError> {
        match self {
            Self::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Self::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// Checks that the database answers.
    ///
    /// # Errors
    /// [`DatabaseError::Sqlx`] when it does not.
    pub async fn ping(&self) -> Result<(), DatabaseError> {
        match self {
            Self::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop)?,
            Self::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop)?,
        }
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}
