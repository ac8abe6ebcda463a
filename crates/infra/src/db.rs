//! Connecting to SQLite or PostgreSQL, migrating, and handing out the repositories.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Pool, SqlitePool};

use carehub_domain::access::AccessFactsRepository;
use carehub_domain::audit::AuditLog;
use carehub_domain::identity::{
    LoginAttemptRepository, RefreshTokenRepository, RevokedTokenRepository, SocketTicketRepository,
    UserRepository,
};
use carehub_domain::notifications::{NotificationRepository, NotificationSink};
use carehub_domain::patients::{
    CareTeamRepository, EmergencyAccessRepository, MedicalRepository, NoteRepository,
    PatientRepository,
};
use carehub_domain::referrals::ReferralRepository;
use carehub_domain::scheduling::{AppointmentRepository, ScheduleRepository};

use crate::appointments::SqlAppointmentRepository;
use crate::audit::{BatchedAuditLog, SqlAuditLog};
use crate::care_teams::{SqlCareTeamRepository, SqlEmergencyAccessRepository};
use crate::login_attempts::SqlLoginAttemptRepository;
use crate::medical::SqlMedicalRepository;
use crate::notes::SqlNoteRepository;
use crate::notifications::SqlNotificationRepository;
use crate::patients::SqlPatientRepository;
use crate::publish::{InProcessPublisher, PgNotifyPublisher, Realtime, spawn_pg_listener};
use crate::referrals::SqlReferralRepository;
use crate::refresh_tokens::SqlRefreshTokenRepository;
use crate::revoked_tokens::SqlRevokedTokenRepository;
use crate::schedules::SqlScheduleRepository;
use crate::socket_tickets::SqlSocketTicketRepository;
use crate::users::SqlUserRepository;

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

    /// Every repository, on this database.
    ///
    /// # Panics
    /// Outside a tokio runtime: the audit log starts its writer task.
    pub fn repositories(&self) -> Repositories {
        match self {
            Self::Sqlite(pool) => Repositories::on(pool),
            Self::Postgres(pool) => Repositories::on(pool),
        }
    }

    /// The notification publisher for this backend, delivering to `sink` (this instance's
    /// socket hub). SQLite: an [`InProcessPublisher`], as one instance holds every socket.
    /// PostgreSQL: a [`PgNotifyPublisher`], and a listener started here that hands what every
    /// instance publishes to `sink`; stop it on shutdown with [`Realtime::shutdown`].
    ///
    /// # Errors
    /// [`DatabaseError::Sqlx`] when the PostgreSQL listener cannot subscribe.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub async fn realtime(
        &self,
        sink: Arc<dyn NotificationSink>,
    ) -> Result<Realtime, DatabaseError> {
        Ok(match self {
            Self::Sqlite(_) => Realtime {
                publisher: Arc::new(InProcessPublisher::new(sink)),
                listener: None,
            },
            Self::Postgres(pool) => Realtime {
                listener: Some(spawn_pg_listener(pool, sink).await?),
                publisher: Arc::new(PgNotifyPublisher::new(pool.clone())),
            },
        })
    }
}

/// The repositories, as ports.
#[derive(Clone)]
pub struct Repositories {
    /// How users relate to patients; the patient repository answers it.
    pub access_facts: Arc<dyn AccessFactsRepository>,
    pub users: Arc<dyn UserRepository>,
    pub refresh_tokens: Arc<dyn RefreshTokenRepository>,
    pub revoked_tokens: Arc<dyn RevokedTokenRepository>,
    pub login_attempts: Arc<dyn LoginAttemptRepository>,
    /// Writes grouped into one transaction per batch; see [`BatchedAuditLog`].
    pub audit: Arc<dyn AuditLog>,
    pub medical: Arc<dyn MedicalRepository>,
    pub notes: Arc<dyn NoteRepository>,
    pub patients: Arc<dyn PatientRepository>,
    pub care_teams: Arc<dyn CareTeamRepository>,
    pub emergency_accesses: Arc<dyn EmergencyAccessRepository>,
    pub referrals: Arc<dyn ReferralRepository>,
    pub notifications: Arc<dyn NotificationRepository>,
    pub socket_tickets: Arc<dyn SocketTicketRepository>,
    pub schedules: Arc<dyn ScheduleRepository>,
    pub appointments: Arc<dyn AppointmentRepository>,
}

impl std::fmt::Debug for Repositories {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repositories").finish_non_exhaustive()
    }
}

impl Repositories {
    fn on<DB: sqlx::Database>(pool: &Pool<DB>) -> Self
    where
        SqlUserRepository<DB>: UserRepository + 'static,
        SqlRefreshTokenRepository<DB>: RefreshTokenRepository + 'static,
        SqlRevokedTokenRepository<DB>: RevokedTokenRepository + 'static,
        SqlLoginAttemptRepository<DB>: LoginAttemptRepository + 'static,
        SqlAuditLog<DB>: AuditLog + 'static,
        SqlMedicalRepository<DB>: MedicalRepository + 'static,
        SqlNoteRepository<DB>: NoteRepository + 'static,
        SqlPatientRepository<DB>: PatientRepository + AccessFactsRepository + 'static,
        SqlCareTeamRepository<DB>: CareTeamRepository + 'static,
        SqlEmergencyAccessRepository<DB>: EmergencyAccessRepository + 'static,
        SqlReferralRepository<DB>: ReferralRepository + 'static,
        SqlNotificationRepository<DB>: NotificationRepository + 'static,
        SqlSocketTicketRepository<DB>: SocketTicketRepository + 'static,
        SqlScheduleRepository<DB>: ScheduleRepository + 'static,
        SqlAppointmentRepository<DB>: AppointmentRepository + 'static,
    {
        let patients = Arc::new(SqlPatientRepository::new(pool.clone()));
        Self {
            access_facts: Arc::clone(&patients) as Arc<dyn AccessFactsRepository>,
            users: Arc::new(SqlUserRepository::new(pool.clone())),
            refresh_tokens: Arc::new(SqlRefreshTokenRepository::new(pool.clone())),
            revoked_tokens: Arc::new(SqlRevokedTokenRepository::new(pool.clone())),
            login_attempts: Arc::new(SqlLoginAttemptRepository::new(pool.clone())),
            audit: Arc::new(BatchedAuditLog::spawn(Arc::new(SqlAuditLog::new(
                pool.clone(),
            )))),
            medical: Arc::new(SqlMedicalRepository::new(pool.clone())),
            notes: Arc::new(SqlNoteRepository::new(pool.clone())),
            patients: Arc::clone(&patients) as Arc<dyn PatientRepository>,
            care_teams: Arc::new(SqlCareTeamRepository::new(pool.clone())),
            emergency_accesses: Arc::new(SqlEmergencyAccessRepository::new(pool.clone())),
            referrals: Arc::new(SqlReferralRepository::new(pool.clone())),
            notifications: Arc::new(SqlNotificationRepository::new(pool.clone())),
            socket_tickets: Arc::new(SqlSocketTicketRepository::new(pool.clone())),
            schedules: Arc::new(SqlScheduleRepository::new(pool.clone())),
            appointments: Arc::new(SqlAppointmentRepository::new(pool.clone())),
        }
    }
}

/// Declares a repository struct that holds a pool of either backend.
macro_rules! sql_repository {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name<DB: sqlx::Database> {
            pool: sqlx::Pool<DB>,
        }

        impl<DB: sqlx::Database> $name<DB> {
            pub fn new(pool: sqlx::Pool<DB>) -> Self {
                Self { pool }
            }
        }
    };
}
pub(crate) use sql_repository;
