//! Wiring: the one place where adapters are built and plugged into the domain's ports, and
//! where the HTTP server is assembled.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServerHandle, ServiceResponse};
use actix_web::http::KeepAlive;
use actix_web::http::header;
use actix_web::middleware::{Condition, ErrorHandlerResponse, ErrorHandlers, from_fn};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::Context as _;
use tracing_actix_web::TracingLogger;
use utoipa_actix_web::AppExt as _;
use utoipa_swagger_ui::{Config as SwaggerConfig, SwaggerUi};

use carehub_domain::audit::{AuditService, Gatekeeper};
use carehub_domain::identity::{
    IdentityConfig, IdentityPorts, IdentityService, Installed, KeyId, SigningKeyService,
};
use carehub_domain::jobs::{JobService, Task};
use carehub_domain::kernel::{Clock, SystemClock};
use carehub_domain::lab::{FileStore, LabService, LabTasks};
use carehub_domain::messages::{ConversationService, MessagingPorts};
use carehub_domain::notifications::{
    NotificationEmails, NotificationPublisher, NotificationService,
};
use carehub_domain::patients::{
    CareTeamService, EmergencyAccessService, MedicalService, PatientService,
};
use carehub_domain::prescriptions::PrescriptionService;
use carehub_domain::referrals::{EscalationService, ReferralService};
use carehub_domain::reports::ReportService;
use carehub_domain::scheduling::{
    AppointmentService, ReminderService, ScheduleService, VisitNoteService,
};
use carehub_infra::db::PoolSettings;
use carehub_infra::identity::{
    Argon2Hasher, JwtCodec, KeyOrigin, RandomRefreshTokens, TokenAudience, data_dir_key,
    read_key_file,
};
use carehub_infra::notifications::{LettreMailer, Realtime};
use carehub_infra::{Database, Repositories};

use crate::edges::{self, CLIENT_DISCONNECT_TIMEOUT, Edges};
use crate::extract::{self, MAX_JSON_BODY};
use crate::hub::Hub;
use crate::jobs::{Recurring, Runner, RunnerHandle, Schedule, Tasks};
use crate::problem::{ApiError, PROBLEM_JSON, Problem};
use crate::settings::Settings;
use crate::state::AppState;
use crate::telemetry::{CareHubRootSpan, Metrics, observe};
use crate::{openapi, routes};

/// Connects to the database, migrates it and assembles the identity service on it.
///
/// # Errors
/// When the database or the signing key cannot be had.
pub async fn identity_on(
    settings: &Settings,
) -> anyhow::Result<(Database, IdentityService, Arc<JwtCodec>)> {
    let database = connect(settings).await?;
    let (identity, codec) = identity_with(settings, &database.repositories()).await?;
    Ok((database, identity, codec))
}

/// Connects to the configured database and migrates it.
///
/// # Errors
/// When the database cannot be reached or migrated.
pub async fn connect(settings: &Settings) -> anyhow::Result<Database> {
    let database = Database::connect(
        &settings.database_url(),
        PoolSettings {
            max_connections: settings.db_max_connections,
            ..PoolSettings::default()
        },
    )
    .await
    .context("cannot connect to the database")?;
    database
        .migrate()
        .await
        .context("cannot migrate the database")?;
    tracing::info!(backend = database.backend(), "database ready");
    Ok(database)
}

/// The identity service on `repositories`, its access tokens signed by the ring of keys in the
/// database, which this instance's key joins first (see [`install_signing_keys`]).
///
/// # Errors
/// When the signing keys cannot be had.
pub async fn identity_with(
    settings: &Settings,
    repositories: &Repositories,
) -> anyhow::Result<(IdentityService, Arc<JwtCodec>)> {
    let signing_keys = signing_key_service(settings, repositories);
    install_signing_keys(settings, &signing_keys).await?;
    let audience = TokenAudience {
        issuer: settings.jwt_issuer.clone(),
        audience: settings.jwt_audience.clone(),
    };
    let codec = JwtCodec::load(signing_keys, audience)
        .await
        .context("cannot load the token signing keys")?;
    tracing::info!(
        kid = codec.signing_kid().as_ref().map(KeyId::as_str),
        published = codec.jwks().keys.len(),
        "token signing keys loaded from the database"
    );

    let hash_concurrency = settings
        .password_hash_concurrency
        .unwrap_or_else(Settings::cores);
    let hasher = Argon2Hasher::new(hash_concurrency).await?;
    let Repositories {
        users,
        refresh_tokens,
        revoked_tokens,
        login_attempts,
        trusted_devices,
        socket_tickets,
        ..
    } = repositories.clone();
    let codec = Arc::new(codec);
    let identity = IdentityService::new(
        IdentityPorts {
            users,
            refresh_tokens,
            revoked_tokens,
            login_attempts,
            trusted_devices,
            hasher: Arc::new(hasher),
            access_tokens: codec.clone(),
            refresh_token_factory: Arc::new(RandomRefreshTokens),
            socket_tickets,
            clock: Arc::new(SystemClock),
        },
        IdentityConfig {
            access_token_ttl: secs(settings.access_token_ttl_secs),
            session_idle: secs(settings.session_idle_secs),
            session_max: secs(settings.session_max_secs),
            device_trust: secs(settings.device_trust_secs),
            throttle: settings.throttle_policy(),
        },
    );
    Ok((identity, codec))
}

fn secs(secs: u32) -> jiff::SignedDuration {
    jiff::SignedDuration::from_secs(i64::from(secs))
}

/// The ring of signing keys in `repositories`, its keys retired as this instance's settings say.
pub fn signing_key_service(settings: &Settings, repositories: &Repositories) -> SigningKeyService {
    SigningKeyService::new(
        Arc::clone(&repositories.signing_keys),
        Arc::new(SystemClock),
        settings.key_retirement(),
    )
}

/// Puts this instance's key in the ring. A configured key (`CAREHUB_JWT_PRIVATE_KEY_FILE`) is
/// added as the newest unless the ring has had it, so that a new file rotates the keys and an
/// old one does not undo a rotation. Without one, an empty ring (the first start, or the first
/// since the ring was introduced) starts with the data directory's key, generated there if
/// missing, so that tokens signed with it before stay valid.
///
/// # Errors
/// When a key cannot be read or generated, or the ring cannot be read or written.
pub async fn install_signing_keys(
    settings: &Settings,
    keys: &SigningKeyService,
) -> anyhow::Result<()> {
    if let Some(path) = &settings.jwt_private_key_file {
        let key = read_key_file(path)?;
        let kid = key.kid.to_string();
        let installed = keys
            .install(key.kid, key.pem)
            .await
            .context("cannot add the configured signing key to the ring")?;
        let path = path.display();
        match installed {
            Installed::Added => tracing::info!(
                %path,
                kid,
                "the configured signing key joined the ring as its newest: it signs"
            ),
            Installed::Signing => {
                tracing::info!(%path, kid, "the configured signing key signs");
            }
            Installed::Superseded => tracing::warn!(
                %path,
                kid,
                "the configured signing key was superseded by a later rotation: the ring's newest key signs"
            ),
        }
        return Ok(());
    }
    let ring = keys.ring().await.context("cannot read the signing keys")?;
    if !ring.is_empty() {
        return Ok(());
    }
    let (key, origin) = data_dir_key(&settings.data_dir)?;
    let kid = key.kid.to_string();
    let seeded = keys
        .seed(key.kid, key.pem)
        .await
        .context("cannot start the ring of signing keys")?;
    let (generated, path) = match origin {
        KeyOrigin::Generated(path) => (true, path),
        KeyOrigin::Reused(path) => (false, path),
    };
    let path = path.display();
    match (seeded, generated) {
        (true, true) => tracing::info!(
            %path,
            kid,
            "a signing key was generated into the data directory and started the ring"
        ),
        (true, false) => tracing::info!(
            %path,
            kid,
            "the data directory's signing key started the ring"
        ),
        (false, _) => tracing::info!("another instance started the ring of signing keys first"),
    }
    Ok(())
}

/// The clinic's services over the same ports.
#[derive(Debug)]
pub struct ClinicServices {
    pub gatekeeper: Gatekeeper,
    pub patients: PatientService,
    pub medical: MedicalService,
    pub care_teams: CareTeamService,
    pub emergency_accesses: EmergencyAccessService,
    pub audit: AuditService,
    pub referrals: ReferralService,
    pub schedules: ScheduleService,
    pub appointments: AppointmentService,
    pub visit_notes: VisitNoteService,
}

/// The clinic's services on `repositories`, telling `publisher` about the notifications their
/// changes commit.
pub fn clinic_services(
    repositories: &Repositories,
    settings: &Settings,
    publisher: &Arc<dyn NotificationPublisher>,
) -> ClinicServices {
    let r = repositories.clone();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let gatekeeper = Gatekeeper::new(r.access_facts, r.audit, Arc::clone(&clock));
    let time_zone = settings.clinic_time_zone.clone();
    ClinicServices {
        patients: PatientService::new(
            gatekeeper.clone(),
            Arc::clone(&r.patients),
            Arc::clone(&r.users),
        ),
        medical: MedicalService::new(
            gatekeeper.clone(),
            Arc::clone(&r.medical),
            Arc::clone(&r.notes),
        ),
        care_teams: CareTeamService::new(
            gatekeeper.clone(),
            r.care_teams,
            Arc::clone(&r.users),
            Arc::clone(publisher),
        ),
        emergency_accesses: EmergencyAccessService::new(
            gatekeeper.clone(),
            r.emergency_accesses,
            Arc::clone(&r.users),
            Arc::clone(publisher),
            jiff::SignedDuration::from_secs(i64::from(settings.emergency_access_secs)),
        ),
        audit: AuditService::new(gatekeeper.clone()),
        referrals: ReferralService::new(
            gatekeeper.clone(),
            r.referrals,
            Arc::clone(&r.patients),
            Arc::clone(&r.medical),
            Arc::clone(&r.users),
            Arc::clone(publisher),
        )
        .with_escalation(settings.escalation()),
        schedules: ScheduleService::new(
            Arc::clone(&r.schedules),
            Arc::clone(&r.appointments),
            clock,
            time_zone.clone(),
        ),
        appointments: AppointmentService::new(
            gatekeeper.clone(),
            Arc::clone(&r.appointments),
            r.schedules,
            r.patients,
            r.users,
            Arc::clone(publisher),
            time_zone,
        )
        .with_reminder_leads(settings.reminder_leads.0.clone()),
        visit_notes: VisitNoteService::new(gatekeeper.clone(), r.appointments, r.notes),
        gatekeeper,
    }
}

/// A built server, bound to its port, not yet running.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    /// How notifications travel between instances; its listener stops with the server.
    realtime: Realtime,
    /// On PostgreSQL, the listener relaying signals between users (calls, typing) across
    /// instances.
    relay_listener: Option<carehub_infra::db::PgListenerHandle>,
    /// This instance's job workers; they stop after the server.
    jobs: RunnerHandle,
    /// How often this instance reads the ring of signing keys again.
    key_reload_interval: Duration,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Connects, migrates, loads the signing key and binds the listener.
    ///
    /// # Errors
    /// When any of that fails.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let database = connect(&settings).await?;
        // One set of repositories, so that one audit writer serves every request.
        let repositories = database.repositories();
        let (identity, codec) = identity_with(&settings, &repositories).await?;
        let notifications = NotificationService::new(
            Arc::clone(&repositories.notifications),
            Arc::new(SystemClock),
        );
        let hub = Hub::new(
            notifications.clone(),
            identity.clone(),
            settings.hub_config(),
        );
        let realtime = database
            .realtime(Arc::new(hub.clone()))
            .await
            .context("cannot listen for notifications")?;
        let (relay, relay_listener) = database
            .relay(Arc::new(hub.clone()))
            .await
            .context("cannot relay signals between users")?;
        let ice_servers = settings.ice_servers()?;
        tracing::info!(
            time_zone = %crate::routes::scheduling::views::zone_name(&settings.clinic_time_zone),
            "clinic time zone"
        );
        let openapi = openapi::openapi_document();
        let ClinicServices {
            gatekeeper,
            patients,
            medical,
            care_teams,
            emergency_accesses,
            audit,
            referrals,
            schedules,
            appointments,
            visit_notes,
        } = clinic_services(&repositories, &settings, &realtime.publisher);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let job_service = JobService::new(Arc::clone(&repositories.jobs), Arc::clone(&clock));
        let report_service = ReportService::new(
            Arc::clone(&repositories.reports),
            settings.clinic_time_zone.clone(),
        );
        let purge = Schedule::parse("purge", &settings.purge_schedule, Task::PurgeExpired)?;
        let listener = TcpListener::bind(settings.bind)
            .with_context(|| format!("cannot listen on {}", settings.bind))?;
        let port = listener.local_addr()?.port();
        let mailer = LettreMailer::new(&settings.mail_from, settings.mail_settings())
            .context("cannot set up e-mail")?;
        tracing::info!(mailer = ?mailer, "e-mail ready");
        let emails = NotificationEmails::new(
            Arc::clone(&repositories.notifications),
            Arc::clone(&repositories.email_preferences),
            Arc::clone(&repositories.users),
            Arc::new(mailer),
            &settings.public_url(port),
        );
        let file_store = settings
            .file_store()
            .await
            .context("cannot set up the file store")?;
        tracing::info!(files = file_store.description(), "file store ready");
        let files: Arc<dyn FileStore> = Arc::new(file_store);
        let lab = LabService::new(
            gatekeeper.clone(),
            Arc::clone(&repositories.lab),
            Arc::clone(&files),
            Arc::clone(&repositories.patients),
            Arc::clone(&realtime.publisher),
        )
        .with_timings(settings.lab_timings());
        let prescriptions = PrescriptionService::new(
            gatekeeper.clone(),
            Arc::clone(&repositories.prescriptions),
            Arc::clone(&repositories.medical),
            Arc::clone(&repositories.patients),
            Arc::clone(&realtime.publisher),
        );
        let conversations = ConversationService::new(
            gatekeeper.clone(),
            MessagingPorts {
                messages: Arc::clone(&repositories.messages),
                patients: Arc::clone(&repositories.patients),
                care_teams: Arc::clone(&repositories.care_teams),
                referrals: Arc::clone(&repositories.referrals),
                users: Arc::clone(&repositories.users),
                publisher: Arc::clone(&realtime.publisher),
                relay: Arc::clone(&relay),
                files: Arc::clone(&files),
            },
        )
        .with_timings(settings.message_timings());
        hub.attach_conversations(conversations.clone());
        let calls = carehub_domain::calls::CallService::new(
            gatekeeper.clone(),
            appointments.clone(),
            Arc::clone(&repositories.patients),
            Arc::clone(&repositories.calls),
            Arc::clone(&relay),
        );
        hub.attach_calls(calls.clone());
        let tasks = Tasks {
            identity: identity.clone(),
            emails: emails.clone(),
            reminders: ReminderService::new(
                Arc::clone(&repositories.appointments),
                Arc::clone(&repositories.patients),
                Arc::clone(&repositories.notifications),
                Arc::clone(&realtime.publisher),
                Arc::clone(&clock),
                settings.clinic_time_zone.clone(),
            ),
            escalations: EscalationService::new(
                Arc::clone(&repositories.referrals),
                Arc::clone(&repositories.notifications),
                Arc::clone(&realtime.publisher),
                Arc::clone(&clock),
            ),
            lab: LabTasks::new(
                lab.clone(),
                Arc::clone(&repositories.lab),
                files,
                Arc::clone(&repositories.care_teams),
                Arc::clone(&repositories.notifications),
                Arc::clone(&realtime.publisher),
                Arc::clone(&clock),
            ),
            prescriptions: prescriptions.clone(),
            conversations: conversations.clone(),
            queue: Arc::clone(&repositories.jobs),
            clock: Arc::clone(&clock),
        };
        let recurring = Recurring {
            schedules: vec![purge],
            queue: Arc::clone(&repositories.jobs),
            clock: Arc::clone(&clock),
            time_zone: settings.clinic_time_zone.clone(),
        };
        let queue = Arc::clone(&repositories.jobs);
        let feedback = carehub_domain::feedback::FeedbackService::new(
            gatekeeper.clone(),
            Arc::clone(&repositories.feedback),
            Arc::clone(&repositories.appointments),
        );
        let state = web::Data::new(AppState {
            clinic: crate::state::Clinic {
                name: settings.clinic_name.clone(),
                time_zone: settings.clinic_time_zone.clone(),
            },
            identity,
            gatekeeper,
            patients,
            medical,
            care_teams,
            emergency_accesses,
            audit,
            referrals,
            schedules,
            appointments,
            visit_notes,
            jobs: job_service,
            lab,
            prescriptions,
            conversations,
            feedback,
            calls,
            ice_servers,
            upload_limits: settings.upload_limits(),
            trusted_proxies: settings.trusted_proxies.clone(),
            device_cookie: routes::identity::auth::DeviceCookie {
                secure: settings.public_url(port).starts_with("https://"),
                max_age_secs: i64::from(settings.device_trust_secs),
            },
            reports: report_service,
            emails,
            notifications,
            hub,
            database,
            signing_keys: codec,
            allowed_methods: openapi::allowed_methods(&openapi),
            openapi_json: openapi.to_json()?.into(),
            metrics: Arc::new(Metrics::new()?),
        });

        let app_state = state.clone();
        let edges = settings.edges(port);
        let keep_alive = edges
            .keep_alive
            .map_or(KeepAlive::Disabled, KeepAlive::Timeout);
        let header_timeout = edges.header_timeout;
        if !edges.cors.is_empty() {
            tracing::info!(origins = ?edges.cors.0, "cross-origin requests allowed");
        }
        let server = HttpServer::new(move || build_app(app_state.clone(), edges.clone()))
            .listen(listener)?
            .client_request_timeout(header_timeout)
            .keep_alive(keep_alive)
            .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
            .workers(settings.workers.unwrap_or_else(Settings::cores).max(1))
            // Signals are handled by the binary, which stops the server gracefully.
            .disable_signals()
            .shutdown_timeout(settings.shutdown_timeout_secs)
            .run();
        tracing::info!(address = %settings.bind.ip(), port, "listening");
        let jobs = Runner {
            queue,
            tasks,
            recurring,
            clock,
            metrics: Arc::clone(&state.metrics),
            config: settings.jobs_config(format!("port {port}, pid {}", std::process::id())),
        }
        .spawn();
        Ok(Self {
            port,
            server,
            state,
            realtime,
            relay_listener,
            jobs,
            key_reload_interval: Duration::from_secs(u64::from(settings.keys_reload_secs)),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server: `handle().stop(true)` lets in-flight requests finish. Open sockets
    /// are not told; [`Application::stopper`] closes them first.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// What the handlers share: the services, so that a caller inside the process (the demo's
    /// seeding) acts through the same rules, audit trail and notifications as the API.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// This instance's notification sockets.
    pub fn hub(&self) -> Hub {
        self.state.hub.clone()
    }

    /// Stops the server gracefully, closing its sockets first.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            hub: self.hub(),
            server: self.handle(),
            jobs: self.jobs.stopper(),
        }
    }

    /// Serves until stopped; then lets the job workers finish or give back their jobs, and
    /// closes the database.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let session_checks = self.state.hub.spawn_session_checks();
        let key_reloads = spawn_key_reloads(
            Arc::clone(&self.state.signing_keys),
            self.key_reload_interval,
        );
        let served = self.server.await;
        session_checks.abort();
        key_reloads.abort();
        self.jobs.shutdown().await;
        self.realtime.shutdown().await;
        if let Some(listener) = self.relay_listener {
            listener.shutdown().await;
        }
        self.state.database.close().await;
        tracing::info!("stopped");
        served
    }
}

/// Reads the ring of signing keys again every `interval`, so that a rotation reaches this
/// instance: it signs with the new key from then on. A failed read keeps the keys loaded so far.
fn spawn_key_reloads(codec: Arc<JwtCodec>, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(error) = codec.reload().await {
                tracing::warn!(%error, "cannot read the signing keys again; keeping those loaded");
            }
        }
    })
}

/// Stops a running [`Application`] gracefully.
#[derive(Debug, Clone)]
pub struct Stopper {
    hub: Hub,
    server: ServerHandle,
    jobs: tokio::sync::watch::Sender<bool>,
}

impl Stopper {
    /// Stops the job workers' claiming, closes every socket with 1001 (waiting up to
    /// [`SOCKET_CLOSE_TIMEOUT`] for the close frames to go out), then stops the server,
    /// letting in-flight requests finish.
    pub async fn stop(&self) {
        // The job workers stop claiming at once; those running finish after the server.
        self.jobs.send_replace(true);
        let left = self.hub.shutdown(SOCKET_CLOSE_TIMEOUT).await;
        if left > 0 {
            tracing::warn!(sockets = left, "some sockets did not close in time");
        }
        self.server.stop(true).await;
    }
}

/// How long shutdown waits for sockets to send their close frames.
pub const SOCKET_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

fn build_app(
    state: web::Data<AppState>,
    edges: Edges,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let Edges {
        headers,
        cors,
        bodies,
        ..
    } = edges;
    let (app, _) = App::new()
        .into_utoipa_app()
        .app_data(state)
        .app_data(web::PayloadConfig::new(MAX_JSON_BODY))
        .app_data(
            web::JsonConfig::default()
                .limit(MAX_JSON_BODY)
                .error_handler(extract::json_error),
        )
        .app_data(
            web::FormConfig::default()
                .limit(16 * 1024)
                .error_handler(extract::form_error),
        )
        .app_data(web::QueryConfig::default().error_handler(extract::query_error))
        .app_data(web::PathConfig::default().error_handler(extract::path_error))
        .service(utoipa_actix_web::scope("/api/v1").configure(routes::api_v1))
        .configure(routes::root)
        .split_for_parts();
    app.service(SwaggerUi::new("/docs/{_:.*}").config(SwaggerConfig::from("/api/v1/openapi.json")))
        .service(web::redirect("/docs", "/docs/"))
        .configure(routes::app::services)
        .default_service(web::to(fallback))
        // The edges, innermost first: body limits and deadlines, CORS (whose refusals the
        // next turns into problems), problems, security headers on whatever comes out.
        .wrap(from_fn(move |request, next| {
            edges::body::guard(bodies, request, next)
        }))
        .wrap(Condition::new(!cors.is_empty(), cors.middleware()))
        .wrap(Condition::new(
            !cors.is_empty(),
            from_fn(edges::cors::nothing_for_others),
        ))
        .wrap(ErrorHandlers::new().default_handler(ensure_problem))
        .wrap(from_fn(move |request, next| {
            edges::headers::secure(headers, request, next)
        }))
        .wrap(from_fn(observe))
        .wrap(TracingLogger::<CareHubRootSpan>::new())
}

/// Requests no route took: a known path asked with another method is a 405 naming the methods
/// it takes; anything else is a 404.
async fn fallback(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let allowed = request
        .match_pattern()
        .and_then(|pattern| state.allowed_methods.get(&pattern).cloned());
    Err(match allowed {
        Some(allow) => ApiError::MethodNotAllowed { allow },
        None => ApiError::NotFound("no such resource".into()),
    })
}

/// Makes every error response a problem document, whatever produced it (actix's own 404s,
/// 405s and extractor errors included).
fn ensure_problem<B: MessageBody + 'static>(
    response: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return Ok(ErrorHandlerResponse::Response(
            response.map_into_left_body(),
        ));
    }
    let status = response.status();
    let (request, _) = response.into_parts();
    let title = status.canonical_reason().unwrap_or("Error").to_owned();
    let problem = Problem {
        kind: "about:blank".into(),
        title,
        status: status.as_u16(),
        detail: None,
        errors: None,
        error: None,
        error_description: None,
        conflicts: None,
        allergy_matches: None,
    };
    let replacement = HttpResponse::build(status)
        .content_type(PROBLEM_JSON)
        .json(problem);
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(request, replacement).map_into_right_body(),
    ))
}
