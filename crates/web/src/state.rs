//! What every handler shares: the domain's services, the database, the token signing keys,
//! what is computed once at startup (the OpenAPI document, the methods each route takes), the
//! metrics and the notification hub. It is built in [`crate::startup`], the one place where adapters are wired.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::web;

use carehub_domain::audit::{AuditService, Gatekeeper};
use carehub_domain::identity::IdentityService;
use carehub_domain::jobs::JobService;
use carehub_domain::lab::LabService;
use carehub_domain::notifications::{NotificationEmails, NotificationService};
use carehub_domain::patients::{
    CareTeamService, EmergencyAccessService, MedicalService, PatientService,
};
use carehub_domain::prescriptions::PrescriptionService;
use carehub_domain::referrals::ReferralService;
use carehub_domain::reports::ReportService;
use carehub_domain::scheduling::{AppointmentService, ScheduleService, VisitNoteService};
use carehub_infra::Database;

use crate::hub::Hub;
use crate::telemetry::Metrics;

/// The clinic as pages show it.
#[derive(Debug, Clone)]
pub struct Clinic {
    pub name: String,
    pub time_zone: jiff::tz::TimeZone,
}

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    pub clinic: Clinic,
    pub identity: IdentityService,
    /// Decides on patient access through the policy and keeps the audit trail; handlers ask it
    /// for a grant before they read a request's body.
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
    /// The job queue, for administrators and the metrics.
    pub jobs: JobService,
    /// The laboratory: the catalogue, orders, results and files.
    pub lab: LabService,
    /// Video calls of appointments.
    pub calls: carehub_domain::calls::CallService,
    /// The STUN and TURN servers calls use.
    pub ice_servers: crate::routes::calls::ice::IceServers,
    /// Patients' ratings of their appointments.
    pub feedback: carehub_domain::feedback::FeedbackService,
    /// Conversations and messages.
    pub conversations: carehub_domain::messages::ConversationService,
    /// Prescriptions, checked against allergies.
    pub prescriptions: PrescriptionService,
    /// How large lab uploads may be.
    pub upload_limits: crate::routes::lab::UploadLimits,
    /// The proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: crate::client::TrustedProxies,
    /// How the device cookie of sign-in throttling is set.
    pub device_cookie: crate::routes::identity::auth::DeviceCookie,
    /// The clinic's reports, for administrators.
    pub reports: ReportService,
    /// The caller's own notifications.
    pub notifications: NotificationService,
    /// E-mail preferences, and the e-mails they ask for.
    pub emails: NotificationEmails,
    pub database: Database,
    /// This instance's copy of the ring of token signing keys, whose public keys the JWKS
    /// publishes.
    pub signing_keys: Arc<carehub_infra::identity::JwtCodec>,
    /// The OpenAPI document, serialised once.
    pub openapi_json: web::Bytes,
    /// The methods each route pattern answers, for `405 Method Not Allowed`.
    pub allowed_methods: HashMap<String, String>,
    pub metrics: Arc<Metrics>,
    /// This instance's notification sockets.
    pub hub: Hub,
}
