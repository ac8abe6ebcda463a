//! Every repository of a database, as the domain's ports: what the web crate wires into its
//! services.

use std::sync::Arc;

use sqlx::Pool;

use carehub_domain::access::AccessFactsRepository;
use carehub_domain::audit::AuditLog;
use carehub_domain::calls::CallRepository;
use carehub_domain::feedback::FeedbackRepository;
use carehub_domain::identity::{
    LoginAttemptRepository, RefreshTokenRepository, RevokedTokenRepository, SigningKeyRepository,
    SocketTicketRepository, TrustedDeviceRepository, UserRepository,
};
use carehub_domain::jobs::JobQueue;
use carehub_domain::lab::LabRepository;
use carehub_domain::messages::MessageRepository;
use carehub_domain::notifications::{EmailPreferenceRepository, NotificationRepository};
use carehub_domain::patients::{
    CareTeamRepository, EmergencyAccessRepository, MedicalRepository, NoteRepository,
    PatientRepository,
};
use carehub_domain::prescriptions::PrescriptionRepository;
use carehub_domain::referrals::ReferralRepository;
use carehub_domain::reports::ReportRepository;
use carehub_domain::scheduling::{AppointmentRepository, ScheduleRepository};

use crate::audit::{BatchedAuditLog, SqlAuditLog};
use crate::calls::SqlCallRepository;
use crate::db::Database;
use crate::feedback::SqlFeedbackRepository;
use crate::identity::{
    SqlLoginAttemptRepository, SqlRefreshTokenRepository, SqlRevokedTokenRepository,
    SqlSigningKeyRepository, SqlSocketTicketRepository, SqlTrustedDeviceRepository,
    SqlUserRepository,
};
use crate::jobs::SqlJobQueue;
use crate::lab::SqlLabRepository;
use crate::messages::SqlMessageRepository;
use crate::notifications::{SqlEmailPreferenceRepository, SqlNotificationRepository};
use crate::patients::{
    SqlCareTeamRepository, SqlEmergencyAccessRepository, SqlMedicalRepository, SqlNoteRepository,
    SqlPatientRepository,
};
use crate::prescriptions::SqlPrescriptionRepository;
use crate::referrals::SqlReferralRepository;
use crate::reports::SqlReportRepository;
use crate::scheduling::{SqlAppointmentRepository, SqlScheduleRepository};

impl Database {
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
    pub trusted_devices: Arc<dyn TrustedDeviceRepository>,
    /// Writes grouped into one transaction per batch; see [`BatchedAuditLog`].
    pub audit: Arc<dyn AuditLog>,
    pub medical: Arc<dyn MedicalRepository>,
    pub notes: Arc<dyn NoteRepository>,
    pub patients: Arc<dyn PatientRepository>,
    pub care_teams: Arc<dyn CareTeamRepository>,
    pub emergency_accesses: Arc<dyn EmergencyAccessRepository>,
    pub referrals: Arc<dyn ReferralRepository>,
    pub reports: Arc<dyn ReportRepository>,
    pub notifications: Arc<dyn NotificationRepository>,
    pub socket_tickets: Arc<dyn SocketTicketRepository>,
    /// The ring of keys that sign access tokens.
    pub signing_keys: Arc<dyn SigningKeyRepository>,
    pub schedules: Arc<dyn ScheduleRepository>,
    pub appointments: Arc<dyn AppointmentRepository>,
    pub jobs: Arc<dyn JobQueue>,
    pub email_preferences: Arc<dyn EmailPreferenceRepository>,
    pub lab: Arc<dyn LabRepository>,
    pub prescriptions: Arc<dyn PrescriptionRepository>,
    pub messages: Arc<dyn MessageRepository>,
    pub feedback: Arc<dyn FeedbackRepository>,
    pub calls: Arc<dyn CallRepository>,
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
        SqlTrustedDeviceRepository<DB>: TrustedDeviceRepository + 'static,
        SqlAuditLog<DB>: AuditLog + 'static,
        SqlMedicalRepository<DB>: MedicalRepository + 'static,
        SqlNoteRepository<DB>: NoteRepository + 'static,
        SqlPatientRepository<DB>: PatientRepository + AccessFactsRepository + 'static,
        SqlCareTeamRepository<DB>: CareTeamRepository + 'static,
        SqlEmergencyAccessRepository<DB>: EmergencyAccessRepository + 'static,
        SqlReferralRepository<DB>: ReferralRepository + 'static,
        SqlReportRepository<DB>: ReportRepository + 'static,
        SqlNotificationRepository<DB>: NotificationRepository + 'static,
        SqlSocketTicketRepository<DB>: SocketTicketRepository + 'static,
        SqlSigningKeyRepository<DB>: SigningKeyRepository + 'static,
        SqlScheduleRepository<DB>: ScheduleRepository + 'static,
        SqlAppointmentRepository<DB>: AppointmentRepository + 'static,
        SqlJobQueue<DB>: JobQueue + 'static,
        SqlEmailPreferenceRepository<DB>: EmailPreferenceRepository + 'static,
        SqlLabRepository<DB>: LabRepository + 'static,
        SqlPrescriptionRepository<DB>: PrescriptionRepository + 'static,
        SqlMessageRepository<DB>: MessageRepository + 'static,
        SqlFeedbackRepository<DB>: FeedbackRepository + 'static,
        SqlCallRepository<DB>: CallRepository + 'static,
    {
        let patients = Arc::new(SqlPatientRepository::new(pool.clone()));
        Self {
            access_facts: Arc::clone(&patients) as Arc<dyn AccessFactsRepository>,
            users: Arc::new(SqlUserRepository::new(pool.clone())),
            refresh_tokens: Arc::new(SqlRefreshTokenRepository::new(pool.clone())),
            revoked_tokens: Arc::new(SqlRevokedTokenRepository::new(pool.clone())),
            login_attempts: Arc::new(SqlLoginAttemptRepository::new(pool.clone())),
            trusted_devices: Arc::new(SqlTrustedDeviceRepository::new(pool.clone())),
            audit: Arc::new(BatchedAuditLog::spawn(Arc::new(SqlAuditLog::new(
                pool.clone(),
            )))),
            medical: Arc::new(SqlMedicalRepository::new(pool.clone())),
            notes: Arc::new(SqlNoteRepository::new(pool.clone())),
            patients,
            care_teams: Arc::new(SqlCareTeamRepository::new(pool.clone())),
            emergency_accesses: Arc::new(SqlEmergencyAccessRepository::new(pool.clone())),
            referrals: Arc::new(SqlReferralRepository::new(pool.clone())),
            reports: Arc::new(SqlReportRepository::new(pool.clone())),
            notifications: Arc::new(SqlNotificationRepository::new(pool.clone())),
            socket_tickets: Arc::new(SqlSocketTicketRepository::new(pool.clone())),
            signing_keys: Arc::new(SqlSigningKeyRepository::new(pool.clone())),
            schedules: Arc::new(SqlScheduleRepository::new(pool.clone())),
            appointments: Arc::new(SqlAppointmentRepository::new(pool.clone())),
            jobs: Arc::new(SqlJobQueue::new(pool.clone())),
            email_preferences: Arc::new(SqlEmailPreferenceRepository::new(pool.clone())),
            lab: Arc::new(SqlLabRepository::new(pool.clone())),
            prescriptions: Arc::new(SqlPrescriptionRepository::new(pool.clone())),
            messages: Arc::new(SqlMessageRepository::new(pool.clone())),
            feedback: Arc::new(SqlFeedbackRepository::new(pool.clone())),
            calls: Arc::new(SqlCallRepository::new(pool.clone())),
        }
    }
}
