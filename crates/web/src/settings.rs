//! Configuration: defaults, overridden by `CAREHUB_*` environment variables, overridden by
//! command-line flags; parsed once into [`Settings`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use jiff::tz::TimeZone;

use carehub_domain::identity::{KeyRetirement, Limit, ThrottlePolicy};
use carehub_domain::jobs::RetryPolicy;
use carehub_domain::referrals::EscalationPolicy;
use carehub_infra::notifications::MailSettings;

use crate::client::TrustedProxies;
use crate::hub::HubConfig;
use crate::jobs::JobsConfig;

/// How the server runs. Every field has a documented default and an environment variable.
#[derive(Clone, Args)]
pub struct Settings {
    /// Database URL: `sqlite:PATH` or `postgres://USER@HOST:PORT/DB`.
    /// Default: a SQLite file `carehub.db` in the data directory, created on first start.
    #[arg(long, global = true, env = "CAREHUB_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Address and port to listen on.
    #[arg(
        long,
        global = true,
        env = "CAREHUB_BIND",
        default_value = "127.0.0.1:8080"
    )]
    pub bind: SocketAddr,

    /// Directory for the default SQLite database and the generated token signing key.
    #[arg(
        long,
        global = true,
        env = "CAREHUB_DATA_DIR",
        default_value = "./data"
    )]
    pub data_dir: PathBuf,

    /// PEM file (PKCS#8) with an Ed25519 private key that signs access tokens: added at start
    /// to the ring of signing keys in the database as its newest, unless the ring has had it.
    /// Default: an empty ring starts with a key generated into the data directory.
    #[arg(long, global = true, env = "CAREHUB_JWT_PRIVATE_KEY_FILE")]
    pub jwt_private_key_file: Option<PathBuf>,

    /// Seconds between two reads of the ring of signing keys, by which a rotation reaches this
    /// instance. A token naming a key it does not know yet makes it read the ring at once.
    #[arg(long, global = true, env = "CAREHUB_KEYS_RELOAD_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=3_600))]
    pub keys_reload_secs: u32,

    /// The `iss` claim of access tokens.
    #[arg(
        long,
        global = true,
        env = "CAREHUB_JWT_ISSUER",
        default_value = "carehub"
    )]
    pub jwt_issuer: String,

    /// The `aud` claim of access tokens.
    #[arg(
        long,
        global = true,
        env = "CAREHUB_JWT_AUDIENCE",
        default_value = "carehub-api"
    )]
    pub jwt_audience: String,

    /// Lifetime of access tokens, in seconds.
    #[arg(long, global = true, env = "CAREHUB_ACCESS_TOKEN_TTL_SECS", default_value_t = 900,
          value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub access_token_ttl_secs: u32,

    /// How long a sign-in session lasts unused, in seconds (14 days): each refresh token
    /// expires this long after it was issued.
    #[arg(long, global = true, env = "CAREHUB_SESSION_IDLE_SECS", default_value_t = 1_209_600,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub session_idle_secs: u32,

    /// How long a sign-in session lasts at most, in seconds (30 days), however often it is
    /// refreshed; then its user signs in again.
    #[arg(long, global = true, env = "CAREHUB_SESSION_MAX_SECS", default_value_t = 2_592_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub session_max_secs: u32,

    /// Failed sign-ins that pause a username for clients without a trusted device for it, and
    /// that pause one address for one username, and one trusted device.
    #[arg(long, global = true, env = "CAREHUB_LOGIN_MAX_FAILURES", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub login_max_failures: u32,

    /// Failed sign-ins and refused refresh tokens that pause one client address, whatever the
    /// username.
    #[arg(long, global = true, env = "CAREHUB_LOGIN_MAX_FAILURES_PER_ADDRESS", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub login_max_failures_per_address: u32,

    /// The window, in seconds, in which failed sign-ins are counted.
    #[arg(long, global = true, env = "CAREHUB_LOGIN_FAILURE_WINDOW_SECS", default_value_t = 900,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub login_failure_window_secs: u32,

    /// Registrations one client address may make per hour.
    #[arg(long, global = true, env = "CAREHUB_REGISTRATIONS_PER_ADDRESS", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub registrations_per_address: u32,

    /// How long a device stays trusted for an account after its last sign-in, in seconds (90
    /// days): its failed sign-ins count against it, not against the username.
    #[arg(long, global = true, env = "CAREHUB_DEVICE_TRUST_SECS", default_value_t = 7_776_000,
          value_parser = clap::value_parser!(u32).range(60..))]
    pub device_trust_secs: u32,

    /// Proxies whose `X-Forwarded-For` names the client: a comma-separated list of addresses
    /// and networks (`10.0.0.0/8`). Default: none; the socket's peer is the client.
    #[arg(long, global = true, env = "CAREHUB_TRUSTED_PROXIES", default_value = "",
          value_parser = TrustedProxies::parse)]
    pub trusted_proxies: TrustedProxies,

    /// How long a doctor's emergency ("break-the-glass") access lasts, in seconds.
    #[arg(long, global = true, env = "CAREHUB_EMERGENCY_ACCESS_SECS", default_value_t = 3_600,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub emergency_access_secs: u32,

    /// Database connections in the pool.
    #[arg(long, global = true, env = "CAREHUB_DB_MAX_CONNECTIONS", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_max_connections: u32,

    /// HTTP worker threads. Default: one per CPU core.
    #[arg(long, global = true, env = "CAREHUB_WORKERS")]
    pub workers: Option<usize>,

    /// Password hashes computed at once (each takes 19 MiB). Default: one per CPU core.
    #[arg(long, global = true, env = "CAREHUB_PASSWORD_HASH_CONCURRENCY")]
    pub password_hash_concurrency: Option<usize>,

    /// Seconds to let in-flight requests finish on shutdown.
    #[arg(
        long,
        global = true,
        env = "CAREHUB_SHUTDOWN_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub shutdown_timeout_secs: u64,

    /// Seconds between the server's pings on each notification socket. A socket that sends
    /// nothing (not even a pong) for three intervals is closed (4009).
    #[arg(long, global = true, env = "CAREHUB_WS_PING_SECS", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=3_600))]
    pub ws_ping_secs: u32,

    /// Notifications one socket may have waiting to be sent; past it the socket is closed as
    /// too slow (4008) and the client reconnects with `after`.
    #[arg(long, global = true, env = "CAREHUB_WS_QUEUE", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub ws_queue: u32,

    /// Milliseconds between checks of the sessions behind the open sockets (sign-out,
    /// suspension), all in one batched query.
    #[arg(long, global = true, env = "CAREHUB_WS_SESSION_CHECK_MS", default_value_t = 2_000,
          value_parser = clap::value_parser!(u32).range(10..=60_000))]
    pub ws_session_check_ms: u32,

    /// Frames a client may send on one socket per second, on average; bursts of three times as
    /// many pass. Past that, frames are refused with an error frame and a client that keeps on
    /// is disconnected (1008).
    #[arg(long, global = true, env = "CAREHUB_WS_FRAMES_PER_SEC", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub ws_frames_per_sec: u32,

    /// The clinic's time zone, an IANA name (`Europe/Paris`): doctors' weekly hours are its
    /// wall-clock times (daylight saving included), and appointment times are shown at its
    /// offset.
    #[arg(long, global = true, env = "CAREHUB_CLINIC_TIME_ZONE", default_value = "UTC",
          value_parser = parse_time_zone)]
    pub clinic_time_zone: TimeZone,

    /// Jobs this instance runs at once; 0 runs none (an instance that only serves). Any number
    /// of PostgreSQL instances share one queue; on SQLite, one instance runs workers.
    #[arg(long, global = true, env = "CAREHUB_JOB_WORKERS", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(0..=256))]
    pub job_workers: u32,

    /// Milliseconds between the workers' looks for due jobs while the queue has none.
    #[arg(long, global = true, env = "CAREHUB_JOB_POLL_MS", default_value_t = 1_000,
          value_parser = clap::value_parser!(u32).range(10..=60_000))]
    pub job_poll_ms: u32,

    /// Seconds a claimed job is held; renewed while it runs. A job whose instance died is
    /// claimed again once its lease expires.
    #[arg(long, global = true, env = "CAREHUB_JOB_LEASE_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub job_lease_secs: u32,

    /// Milliseconds before the first retry of a failed job; each further failure doubles it
    /// (with jitter), up to `CAREHUB_JOB_RETRY_MAX_SECS`.
    #[arg(long, global = true, env = "CAREHUB_JOB_RETRY_BASE_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub job_retry_base_ms: u32,

    /// The longest wait between two attempts of a job, in seconds.
    #[arg(long, global = true, env = "CAREHUB_JOB_RETRY_MAX_SECS", default_value_t = 3_600,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub job_retry_max_secs: u32,

    /// When expired credentials and old jobs are purged: a cron pattern in the clinic's time
    /// zone, run once per occurrence across all instances.
    #[arg(
        long,
        global = true,
        env = "CAREHUB_PURGE_SCHEDULE",
        default_value = "*/10 * * * *"
    )]
    pub purge_schedule: String,

    /// The mail server e-mails go to: `smtp://host:port` (plain, as a local relay speaks),
    /// `smtps://host` (TLS), or `smtp://host?tls=required` (STARTTLS), with credentials in the
    /// URL or in `CAREHUB_SMTP_USERNAME` and `CAREHUB_SMTP_PASSWORD`. Default: none; e-mails are
    /// written as `.eml` files in `mail/` under the data directory.
    #[arg(long, global = true, env = "CAREHUB_SMTP_URL")]
    pub smtp_url: Option<String>,

    /// The SMTP user, when not in the URL.
    #[arg(long, global = true, env = "CAREHUB_SMTP_USERNAME")]
    pub smtp_username: Option<String>,

    /// The SMTP password, when not in the URL.
    #[arg(
        long,
        global = true,
        env = "CAREHUB_SMTP_PASSWORD",
        hide_env_values = true
    )]
    pub smtp_password: Option<String>,

    /// The clinic's name, as printed prescriptions head it.
    #[arg(
        long,
        global = true,
        env = "CAREHUB_CLINIC_NAME",
        default_value = "CareHub Clinic"
    )]
    pub clinic_name: String,

    /// The sender of CareHub's e-mails.
    #[arg(
        long,
        global = true,
        env = "CAREHUB_MAIL_FROM",
        default_value = "CareHub <carehub@localhost>"
    )]
    pub mail_from: String,

    /// Where people reach the web app, as e-mails link to it. Default: this server's own
    /// address (`http://127.0.0.1:8080/`).
    #[arg(long, global = true, env = "CAREHUB_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// When appointment reminders fire, before the start: a comma-separated list of durations
    /// (`24h,2h`, `30m`, `90s`). Empty: no reminders.
    #[arg(long, global = true, env = "CAREHUB_REMINDER_LEADS", default_value = "24h,2h",
          value_parser = parse_leads)]
    pub reminder_leads: Leads,

    /// Seconds an urgent referral may stay unanswered before its sender and the administrators
    /// are told.
    #[arg(long, global = true, env = "CAREHUB_ESCALATION_URGENT_SECS", default_value_t = 14_400,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub escalation_urgent_secs: u32,

    /// Seconds an emergency referral may stay unanswered before its sender and the
    /// administrators are told.
    #[arg(long, global = true, env = "CAREHUB_ESCALATION_EMERGENCY_SECS", default_value_t = 1_800,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub escalation_emergency_secs: u32,

    /// Seconds after results are recorded until they are released to the patient, unless a
    /// doctor releases them first.
    #[arg(long, global = true, env = "CAREHUB_LAB_RELEASE_DELAY_SECS", default_value_t = 259_200,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub lab_release_delay_secs: u32,

    /// Seconds a critical lab result may stay unread by the ordering doctor before every other
    /// doctor on the care team is told.
    #[arg(long, global = true, env = "CAREHUB_LAB_CRITICAL_ESCALATION_SECS", default_value_t = 900,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub lab_critical_escalation_secs: u32,

    /// Seconds a message may stay unread before its recipient is notified (`message.unread`,
    /// e-mailed to those who chose it).
    #[arg(long, global = true, env = "CAREHUB_MESSAGE_UNREAD_SECS", default_value_t = 900,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub message_unread_secs: u32,

    /// The STUN and TURN servers of video calls, handed to their parties: a comma-separated
    /// list of `stun:`, `turn:` and `turns:` URLs. Default: none (peers on one network need
    /// none).
    #[arg(long, global = true, env = "CAREHUB_ICE_SERVERS", default_value = "")]
    pub ice_servers: String,

    /// The TURN servers' shared secret (coturn's `static-auth-secret`): each party gets
    /// credentials of their own that expire shortly after the call. Needed with TURN servers.
    #[arg(
        long,
        global = true,
        env = "CAREHUB_TURN_SECRET",
        hide_env_values = true
    )]
    pub turn_secret: Option<String>,

    /// The largest lab file accepted, in bytes (one upload request takes at most 2.5 times
    /// this).
    #[arg(long, global = true, env = "CAREHUB_LAB_MAX_FILE_BYTES", default_value_t = 20_971_520,
          value_parser = clap::value_parser!(u32).range(1024..))]
    pub lab_max_file_bytes: u32,

    /// Where lab files are kept: `s3://bucket` or `s3://bucket/prefix` for an S3-compatible
    /// bucket. Default: none; files go to `files/` under the data directory. The bucket's
    /// region and credentials come from the settings below, else from the standard AWS
    /// environment (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, ...).
    #[arg(long, global = true, env = "CAREHUB_STORAGE_URL")]
    pub storage_url: Option<String>,

    /// An S3-compatible service's URL (MinIO, Ceph, ...), addressed path-style; `http://` is
    /// allowed. Default: Amazon S3.
    #[arg(long, global = true, env = "CAREHUB_STORAGE_ENDPOINT")]
    pub storage_endpoint: Option<String>,

    /// The bucket's region.
    #[arg(long, global = true, env = "CAREHUB_STORAGE_REGION")]
    pub storage_region: Option<String>,

    /// The access key for the bucket.
    #[arg(long, global = true, env = "CAREHUB_STORAGE_ACCESS_KEY_ID")]
    pub storage_access_key_id: Option<String>,

    /// The secret key for the bucket.
    #[arg(
        long,
        global = true,
        env = "CAREHUB_STORAGE_SECRET_ACCESS_KEY",
        hide_env_values = true
    )]
    pub storage_secret_access_key: Option<String>,

    /// Origins whose pages may call the API from a browser (CORS): a comma-separated list of
    /// exact origins, `https://portal.example.org`, each a scheme (http or https), a host and
    /// an optional port. Default: none; CORS is off, and browsers keep other sites' pages from
    /// reading the API's answers.
    #[arg(long, global = true, env = "CAREHUB_CORS_ORIGINS", default_value = "",
          value_parser = crate::edges::cors::parse_origins)]
    pub cors_origins: crate::edges::Origins,

    /// Milliseconds a client has to send a request's head (request line and headers) once it
    /// connects; past it the connection is closed.
    #[arg(long, global = true, env = "CAREHUB_HEADER_TIMEOUT_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u32).range(100..=600_000))]
    pub header_timeout_ms: u32,

    /// Seconds an idle connection is kept open for the client's next request; 0 closes each
    /// connection after its response.
    #[arg(long, global = true, env = "CAREHUB_KEEP_ALIVE_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(0..=3_600))]
    pub keep_alive_secs: u32,

    /// Seconds a client has to send a request's body; past it the request is answered 408 and
    /// the connection closed. Uploads get as long again as sending their size at 128 KiB/s
    /// takes. The notification socket is not concerned.
    #[arg(long, global = true, env = "CAREHUB_BODY_TIMEOUT_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=3_600))]
    pub body_timeout_secs: u32,

    /// Log format.
    #[arg(long, global = true, env = "CAREHUB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter, in `tracing` syntax (e.g. `info`, `carehub_web=debug`).
    #[arg(long, global = true, env = "CAREHUB_LOG", default_value = "info")]
    pub log: String,
}

/// A time zone of the IANA database (the system's, else the one built into the binary).
///
/// # Errors
/// When no time zone has this name.
pub fn parse_time_zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name.trim()).map_err(|_| {
        format!("`{name}` is not a time zone of the IANA database (e.g. `Europe/Paris`, `UTC`)")
    })
}

/// Lead times of appointment reminders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leads(pub Vec<jiff::SignedDuration>);

/// `24h,2h`: positive durations, each in jiff's friendly format, at most 31 days.
///
/// # Errors
/// When one is not such a duration.
pub fn parse_leads(raw: &str) -> Result<Leads, String> {
    let mut leads = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let lead: jiff::SignedDuration = part
            .parse()
            .map_err(|_| format!("`{part}` is not a duration such as `24h`, `30m` or `90s`"))?;
        if !lead.is_positive() || lead > jiff::SignedDuration::from_hours(31 * 24) {
            return Err(format!("`{part}` must be more than 0 and at most 31 days"));
        }
        if !leads.contains(&lead) {
            leads.push(lead);
        }
    }
    Ok(Leads(leads))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Settings {
    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite:{}", self.data_dir.join("carehub.db").display()))
    }

    /// Where the web app is, for links in e-mails; `port` is the one this server listens on.
    pub fn public_url(&self, port: u16) -> String {
        self.public_url.clone().unwrap_or_else(|| {
            let ip = match self.bind.ip() {
                ip if ip.is_unspecified() => std::net::IpAddr::from([127, 0, 0, 1]),
                ip => ip,
            };
            format!("http://{}/", SocketAddr::new(ip, port))
        })
    }

    /// Where e-mails go: the mail server, else files under the data directory.
    pub fn mail_settings(&self) -> MailSettings {
        match &self.smtp_url {
            Some(url) => MailSettings::Smtp {
                url: url.clone(),
                username: self.smtp_username.clone(),
                password: self.smtp_password.clone(),
            },
            None => MailSettings::Files(self.data_dir.join("mail")),
        }
    }

    /// The limits on sign-ins, refresh tokens and registrations.
    pub fn throttle_policy(&self) -> ThrottlePolicy {
        let window = jiff::SignedDuration::from_secs(i64::from(self.login_failure_window_secs));
        let per_account = Limit::new(self.login_max_failures, window);
        ThrottlePolicy {
            per_username: per_account,
            per_device: per_account,
            per_address_username: per_account,
            per_address: Limit::new(self.login_max_failures_per_address, window),
            registrations_per_address: Limit::new(
                self.registrations_per_address,
                jiff::SignedDuration::from_hours(1),
            ),
        }
    }

    /// How long a superseded signing key keeps verifying: as long as a token it signed may
    /// live, on an instance that noticed the rotation last.
    pub fn key_retirement(&self) -> KeyRetirement {
        KeyRetirement::new(
            jiff::SignedDuration::from_secs(i64::from(self.access_token_ttl_secs)),
            jiff::SignedDuration::from_secs(i64::from(self.keys_reload_secs)),
        )
    }

    /// When unanswered referrals escalate.
    pub fn escalation(&self) -> EscalationPolicy {
        EscalationPolicy {
            urgent: jiff::SignedDuration::from_secs(i64::from(self.escalation_urgent_secs)),
            emergency: jiff::SignedDuration::from_secs(i64::from(self.escalation_emergency_secs)),
        }
    }

    /// The laboratory's clocks: release delay and critical-result escalation.
    pub fn lab_timings(&self) -> carehub_domain::lab::LabTimings {
        carehub_domain::lab::LabTimings {
            release_after: jiff::SignedDuration::from_secs(i64::from(self.lab_release_delay_secs)),
            escalate_critical_after: jiff::SignedDuration::from_secs(i64::from(
                self.lab_critical_escalation_secs,
            )),
        }
    }

    /// The ICE servers of video calls.
    ///
    /// # Errors
    /// A URL that is not STUN or TURN; TURN servers without a secret.
    pub fn ice_servers(
        &self,
    ) -> Result<crate::routes::calls::ice::IceServers, crate::routes::calls::ice::IceConfigError>
    {
        crate::routes::calls::ice::IceServers::parse(&self.ice_servers, self.turn_secret.as_deref())
    }

    /// When an unread message becomes a notification.
    pub fn message_timings(&self) -> carehub_domain::messages::MessageTimings {
        carehub_domain::messages::MessageTimings {
            notify_unread_after: jiff::SignedDuration::from_secs(i64::from(
                self.message_unread_secs,
            )),
        }
    }

    /// How large lab uploads may be.
    pub fn upload_limits(&self) -> crate::routes::lab::UploadLimits {
        let file_bytes = usize::try_from(self.lab_max_file_bytes).unwrap_or(usize::MAX);
        crate::routes::lab::UploadLimits {
            file_bytes,
            request_bytes: file_bytes.saturating_mul(5) / 2,
        }
    }

    /// The edges of the HTTP server: security headers, CORS, body limits and timeouts. `port`
    /// is the one this server listens on.
    pub fn edges(&self, port: u16) -> crate::edges::Edges {
        use crate::edges::{BodyRules, Edges, SecurityHeaders, body};
        Edges {
            headers: SecurityHeaders::for_public_url(&self.public_url(port)),
            cors: self.cors_origins.clone(),
            bodies: BodyRules {
                json: crate::extract::MAX_JSON_BODY,
                upload: self
                    .upload_limits()
                    .request_bytes
                    .saturating_add(body::MULTIPART_FRAMING),
                timeout: Duration::from_secs(u64::from(self.body_timeout_secs)),
            },
            header_timeout: Duration::from_millis(u64::from(self.header_timeout_ms)),
            keep_alive: (self.keep_alive_secs > 0)
                .then(|| Duration::from_secs(u64::from(self.keep_alive_secs))),
        }
    }

    /// Where lab files are kept: the bucket of `storage_url`, once it has answered, else a
    /// directory under the data directory.
    ///
    /// # Errors
    /// When the directory cannot be made, or the bucket's URL is not usable or it does not
    /// answer.
    pub async fn file_store(
        &self,
    ) -> Result<carehub_infra::lab::LocalOrObjectStore, carehub_infra::lab::FileStoreError> {
        match &self.storage_url {
            Some(url) => {
                carehub_infra::lab::LocalOrObjectStore::s3(&carehub_infra::lab::S3Settings {
                    url: url.clone(),
                    endpoint: self.storage_endpoint.clone(),
                    region: self.storage_region.clone(),
                    access_key_id: self.storage_access_key_id.clone(),
                    secret_access_key: self.storage_secret_access_key.clone(),
                })
                .await
            }
            None => carehub_infra::lab::LocalOrObjectStore::local(&self.data_dir.join("files")),
        }
    }

    /// How the notification hub paces its sockets.
    pub fn hub_config(&self) -> HubConfig {
        HubConfig {
            ping_interval: Duration::from_secs(u64::from(self.ws_ping_secs)),
            queue_capacity: usize::try_from(self.ws_queue).unwrap_or(usize::MAX),
            session_check_interval: Duration::from_millis(u64::from(self.ws_session_check_ms)),
            frames_per_sec: self.ws_frames_per_sec,
        }
    }

    /// How this instance's job workers run; `instance` names it in the jobs it holds.
    pub fn jobs_config(&self, instance: String) -> JobsConfig {
        JobsConfig {
            workers: usize::try_from(self.job_workers).unwrap_or(usize::MAX),
            poll: Duration::from_millis(u64::from(self.job_poll_ms)),
            lease: jiff::SignedDuration::from_secs(i64::from(self.job_lease_secs)),
            retry: RetryPolicy {
                base: jiff::SignedDuration::from_millis(i64::from(self.job_retry_base_ms)),
                cap: jiff::SignedDuration::from_secs(i64::from(self.job_retry_max_secs)),
            },
            drain: Duration::from_secs(self.shutdown_timeout_secs),
            instance,
        }
    }

    pub fn cores() -> usize {
        std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
    }
}

/// Never prints the database URL, which may hold a password.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field(
                "database_url",
                &self.database_url.as_ref().map(|_| "<redacted>"),
            )
            .field("bind", &self.bind)
            .field("data_dir", &self.data_dir)
            .field("jwt_private_key_file", &self.jwt_private_key_file)
            .field("keys_reload_secs", &self.keys_reload_secs)
            .field("access_token_ttl_secs", &self.access_token_ttl_secs)
            .field("session_idle_secs", &self.session_idle_secs)
            .field("session_max_secs", &self.session_max_secs)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("emergency_access_secs", &self.emergency_access_secs)
            .field("ws_ping_secs", &self.ws_ping_secs)
            .field("ws_queue", &self.ws_queue)
            .field("ws_session_check_ms", &self.ws_session_check_ms)
            .field("clinic_time_zone", &self.clinic_time_zone.iana_name())
            .field("job_workers", &self.job_workers)
            .field("smtp_url", &self.smtp_url.as_ref().map(|_| "<redacted>"))
            .field("mail_from", &self.mail_from)
            .field("storage_url", &self.storage_url)
            .field("storage_endpoint", &self.storage_endpoint)
            .field("ice_servers", &self.ice_servers)
            .field("cors_origins", &self.cors_origins)
            .field("header_timeout_ms", &self.header_timeout_ms)
            .field("keep_alive_secs", &self.keep_alive_secs)
            .field("body_timeout_secs", &self.body_timeout_secs)
            .field(
                "turn_secret",
                &self.turn_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> Result<Settings, clap::Error> {
        Settings::parse_from_args(std::iter::once("carehub").chain(args.iter().copied()))
    }

    #[test]
    fn the_clinic_time_zone_is_utc_unless_configured() {
        if std::env::var_os("CAREHUB_CLINIC_TIME_ZONE").is_none() {
            let default = settings(&[]).expect("defaults");
            assert_eq!(default.clinic_time_zone.iana_name(), Some("UTC"));
        }
        let paris = settings(&["--clinic-time-zone", "Europe/Paris"]).expect("a zone");
        assert_eq!(paris.clinic_time_zone.iana_name(), Some("Europe/Paris"));
    }

    #[test]
    fn reminder_leads_are_friendly_durations_without_repeats() {
        let hours = jiff::SignedDuration::from_hours;
        assert_eq!(
            parse_leads("24h, 2h,24h"),
            Ok(Leads(vec![hours(24), hours(2)]))
        );
        assert_eq!(parse_leads("90s").map(|l| l.0[0].as_secs()), Ok(90));
        assert_eq!(parse_leads(""), Ok(Leads(vec![])));
        for bad in ["soon", "-2h", "0s", "40d", "24h,x"] {
            assert!(parse_leads(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_unknown_time_zone_stops_the_command_line_with_its_name() {
        let error =
            settings(&["--clinic-time-zone", "Mars/Olympus_Mons"]).expect_err("no such zone");
        let message = error.to_string();
        assert!(message.contains("Mars/Olympus_Mons"), "{message}");
        assert!(message.contains("--clinic-time-zone"), "{message}");
    }
}
