//! What every concept's adapters share: connecting to SQLite or PostgreSQL and migrating
//! ([`Database`]), what differs between the two backends (`backend`), and how each stores
//! timestamps (`sql_time`). A database's repositories and notification publisher are handed
//! out by `Database::repositories` (in `repositories.rs`) and `Database::realtime` (in
//! `notifications`), next to what they build.

pub(crate) mod backend;
pub(crate) mod listener;
pub(crate) mod sql_time;

use std::path::{Path, PathBuf};
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
    #[error("{0} exists already: a backup never overwrites a file")]
    BackupExists(PathBuf),
    #[error("cannot write {path}")]
    BackupTarget {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the copy failed its integrity check: {0}")]
    BackupDamaged(String),
    #[error(
        "CareHub backs up SQLite databases only; back up PostgreSQL with its own tools (pg_dump or \
         a base backup, see docs/operations.md)"
    )]
    NotSqlite,
}

/// Opens a SQLite file on its own and asks it to check itself.
async fn check_integrity(path: &Path) -> Result<(), DatabaseError> {
    let options = SqliteConnectOptions::new().filename(path).read_only(true);
    let mut connection = sqlx::ConnectOptions::connect(&options).await?;
    let verdict: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
        .fetch_all(&mut connection)
        .await?;
    sqlx::Connection::close(connection).await?;
    match verdict.as_slice() {
        [(ok,)] if ok == "ok" => Ok(()),
        problems => Err(DatabaseError::BackupDamaged(
            problems
                .iter()
                .map(|(p,)| p.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        )),
    }
}

/// A new empty file only its owner may read: a backup holds everything the clinic keeps.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop)
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
        Self::open(url, settings, true).await
    }

    /// Connects to a database that must exist already: a missing SQLite file is an error.
    ///
    /// # Errors
    /// [`DatabaseError`] when the URL is unsupported or the database unreachable or missing.
    pub async fn connect_existing(
        url: &str,
        settings: PoolSettings,
    ) -> Result<Self, DatabaseError> {
        Self::open(url, settings, false).await
    }

    async fn open(url: &str, settings: PoolSettings, create: bool) -> Result<Self, DatabaseError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(create)
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

    /// Writes a consistent copy of a SQLite database to `target`, while it is in use: one
    /// read transaction's snapshot, compacted (`VACUUM INTO`). The copy is written under a
    /// temporary name beside `target`, checked (`PRAGMA integrity_check`), made readable by
    /// its owner only, and only then renamed into place, so that `target` never holds a
    /// partial copy. Returns its size in bytes.
    ///
    /// # Errors
    /// [`DatabaseError::BackupExists`] when `target` exists, [`DatabaseError::BackupTarget`]
    /// when it cannot be written,
    /// [`DatabaseError::NotSqlite`] on PostgreSQL, and database errors.
    pub async fn backup_into(&self, target: &Path) -> Result<u64, DatabaseError> {
        let Self::Sqlite(pool) = self else {
            return Err(DatabaseError::NotSqlite);
        };
        let target_error = |source: std::io::Error| DatabaseError::BackupTarget {
            path: target.to_owned(),
            source,
        };
        if target.exists() {
            return Err(DatabaseError::BackupExists(target.to_owned()));
        }
        let file_name = target
            .file_name()
            .ok_or_else(|| target_error(std::io::ErrorKind::InvalidInput.into()))?;
        let partial = target.with_file_name(format!(
            ".{}.partial-{}",
            file_name.to_string_lossy(),
            std::process::id()
        ));
        let written = async {
            let path = partial
                .to_str()
                .ok_or_else(|| target_error(std::io::ErrorKind::InvalidFilename.into()))?;
            // Created empty and private first: VACUUM INTO fills an empty file, and the copy
            // is never readable by others, not even for a moment.
            create_private(&partial).map_err(target_error)?;
            sqlx::query("VACUUM INTO $1")
                .bind(path)
                .execute(pool)
                .await?;
            check_integrity(&partial).await?;
            std::fs::rename(&partial, target).map_err(target_error)?;
            std::fs::metadata(target)
                .map(|m| m.len())
                .map_err(target_error)
        }
        .await;
        if written.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        written
    }

    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}
