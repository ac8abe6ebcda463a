//! What the services' unit tests share: mockall doubles of the ports, a fixed clock, a service
//! built from the doubles each one needs, and helpers to build the values the services take
//! and to check audit events.

use std::sync::Mutex;

use mockall::Sequence;
use mockall::predicate::eq;

use std::sync::Arc;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::access::{
    AccessError, AccessFacts, Action, Actor, Basis, Grant, MockAccessFactsRepository,
};
use crate::audit::{AuditAction, AuditEvent, AuditService, Gatekeeper, MockAuditLog, Outcome};
use crate::identity::{FullName, MockUserRepository, Role, User, UserId, UserStatus, Username};
use crate::kernel::{FixedClock, PatientId, Phone, RepositoryError, ValidationErrors};
use crate::lab::LabError;
use crate::messages::MessagingError;
use crate::notifications::{MockNotificationPublisher, NewNotification, Notification, Recipient};
use crate::patients::{
    CareTeamError, CareTeamMember, CareTeamService, Contact, EMERGENCY_ACCESS_DURATION,
    EmergencyAccessError, EmergencyAccessService, EmergencyReason, MedicalError, MedicalService,
    MembershipId, MockCareTeamRepository, MockEmergencyAccessRepository, MockMedicalRepository,
    MockNoteRepository, MockPatientRepository, Mrn, Patient, PatientDetails, PatientError,
    PatientService, Sex,
};
use crate::prescriptions::PrescriptionError;
use crate::referrals::{MockReferralRepository, ReferralError, ReferralService};
use crate::scheduling::{
    AppointmentError, AppointmentService, MockAppointmentRepository, MockScheduleRepository,
    ScheduleError, ScheduleService, VisitNoteError, VisitNoteService,
};

/// The instant every test runs at: the service's clock stands still here.
/// An instant written in RFC 3339, for tests.
pub(crate) fn ts(rfc3339: &str) -> Timestamp {
    rfc3339.parse().expect("an RFC 3339 instant")
}

/// The tests' now: `2026-11-22T10:15:00Z`, a Sunday.
pub(crate) const NOW: Timestamp = Timestamp::constant(1795342500, 0);
/// The request every actor acts in, so that events can be matched with logs.
pub(crate) const REQUEST_ID: &str = "req-7f3a";

pub(crate) const ON_CARE_TEAM: AccessFacts = AccessFacts {
    is_own_record: false,
    on_care_team: true,
    emergency_access: false,
};
pub(crate) const EMERGENCY_ONLY: AccessFacts = AccessFacts {
    is_own_record: false,
    on_care_team: false,
    emergency_access: true,
};
pub(crate) const OWN_RECORD: AccessFacts = AccessFacts {
    is_own_record: true,
    on_care_team: false,
    emergency_access: false,
};
pub(crate) const UNRELATED: AccessFacts = AccessFacts {
    is_own_record: false,
    on_care_team: false,
    emergency_access: false,
};

/// What the doubles were called with, in call order.
pub(crate) type Captured<T> = Arc<Mutex<Vec<T>>>;

/// Doubles of every port, assembled into a service by [`Mocks::service`].
///
/// Every double starts without expectations, so a call a test did not ask for fails it: a test
/// that sets up no audit expectation also checks that nothing is audited. The patient lookup
/// ([`Mocks::facts`]) and the audit log ([`Mocks::audit_succeeds`], [`Mocks::audit_fails`]) are
/// ordered in [`Mocks::seq`]; a test adds the operation's own read to it to check that the read
/// comes between them.
pub(crate) struct Mocks {
    pub(crate) access_facts: MockAccessFactsRepository,
    pub(crate) patients: MockPatientRepository,
    pub(crate) medical: MockMedicalRepository,
    pub(crate) notes: MockNoteRepository,
    pub(crate) care_teams: MockCareTeamRepository,
    pub(crate) emergency_accesses: MockEmergencyAccessRepository,
    pub(crate) audit: MockAuditLog,
    pub(crate) users: MockUserRepository,
    pub(crate) referrals: MockReferralRepository,
    pub(crate) appointments: MockAppointmentRepository,
    pub(crate) schedules: MockScheduleRepository,
    pub(crate) publisher: MockNotificationPublisher,
    pub(crate) config: ServiceConfig,
    pub(crate) seq: Sequence,
}

impl Mocks {
    pub(crate) fn new() -> Self {
        Self {
            access_facts: MockAccessFactsRepository::new(),
            patients: MockPatientRepository::new(),
            medical: MockMedicalRepository::new(),
            notes: MockNoteRepository::new(),
            care_teams: MockCareTeamRepository::new(),
            emergency_accesses: MockEmergencyAccessRepository::new(),
            audit: MockAuditLog::new(),
            users: MockUserRepository::new(),
            referrals: MockReferralRepository::new(),
            appointments: MockAppointmentRepository::new(),
            schedules: MockScheduleRepository::new(),
            publisher: MockNotificationPublisher::new(),
            config: ServiceConfig::default(),
            seq: Sequence::new(),
        }
    }

    pub(crate) fn gate_of(
        access_facts: MockAccessFactsRepository,
        audit: MockAuditLog,
    ) -> Gatekeeper {
        Gatekeeper::new(
            Arc::new(access_facts),
            Arc::new(audit),
            Arc::new(FixedClock(NOW)),
        )
    }

    pub(crate) fn gatekeeper(self) -> Gatekeeper {
        Self::gate_of(self.access_facts, self.audit)
    }

    /// Every patient service and the gatekeeper, sharing these doubles: for tests that take a
    /// grant from one and hand it to another.
    pub(crate) fn services(self) -> Services {
        let gate = Self::gate_of(self.access_facts, self.audit);
        let users: Arc<MockUserRepository> = Arc::new(self.users);
        let publisher: Arc<MockNotificationPublisher> = Arc::new(self.publisher);
        Services {
            patients: PatientService::new(gate.clone(), Arc::new(self.patients), users.clone()),
            medical: MedicalService::new(
                gate.clone(),
                Arc::new(self.medical),
                Arc::new(self.notes),
            ),
            care_teams: CareTeamService::new(
                gate.clone(),
                Arc::new(self.care_teams),
                users.clone(),
                publisher.clone(),
            ),
            emergency_accesses: EmergencyAccessService::new(
                gate.clone(),
                Arc::new(self.emergency_accesses),
                users,
                publisher,
                self.config.emergency_access_ttl,
            ),
            audit: AuditService::new(gate.clone()),
            gatekeeper: gate,
        }
    }

    pub(crate) fn audit_service(self) -> AuditService {
        AuditService::new(self.gatekeeper())
    }

    pub(crate) fn patient_service(self) -> PatientService {
        PatientService::new(
            Self::gate_of(self.access_facts, self.audit),
            Arc::new(self.patients),
            Arc::new(self.users),
        )
    }

    pub(crate) fn medical_service(self) -> MedicalService {
        MedicalService::new(
            Self::gate_of(self.access_facts, self.audit),
            Arc::new(self.medical),
            Arc::new(self.notes),
        )
    }

    pub(crate) fn care_team_service(self) -> CareTeamService {
        CareTeamService::new(
            Self::gate_of(self.access_facts, self.audit),
            Arc::new(self.care_teams),
            Arc::new(self.users),
            Arc::new(self.publisher),
        )
    }

    pub(crate) fn emergency_access_service(self) -> EmergencyAccessService {
        EmergencyAccessService::new(
            Self::gate_of(self.access_facts, self.audit),
            Arc::new(self.emergency_accesses),
            Arc::new(self.users),
            Arc::new(self.publisher),
            self.config.emergency_access_ttl,
        )
    }

    pub(crate) fn referral_service(self) -> ReferralService {
        ReferralService::new(
            Self::gate_of(self.access_facts, self.audit),
            Arc::new(self.referrals),
            Arc::new(self.patients),
            Arc::new(self.medical),
            Arc::new(self.users),
            Arc::new(self.publisher),
        )
    }

    pub(crate) fn schedule_service(self) -> ScheduleService {
        ScheduleService::new(
            Arc::new(self.schedules),
            Arc::new(self.appointments),
            Arc::new(FixedClock(NOW)),
            self.config.clinic_time_zone,
        )
    }

    pub(crate) fn appointment_service(self) -> AppointmentService {
        AppointmentService::new(
            Self::gate_of(self.access_facts, self.audit),
            Arc::new(self.appointments),
            Arc::new(self.schedules),
            Arc::new(self.patients),
            Arc::new(self.users),
            Arc::new(self.publisher),
            self.config.clinic_time_zone,
        )
    }

    pub(crate) fn visit_note_service(self) -> VisitNoteService {
        VisitNoteService::new(
            Self::gate_of(self.access_facts, self.audit),
            Arc::new(self.appointments),
            Arc::new(self.notes),
        )
    }

    /// The patient is looked up once, for `actor`, as of now, and relates to them by `facts`
    /// (`None`: there is no such patient).
    pub(crate) fn facts(
        &mut self,
        patient_id: PatientId,
        actor: &Actor,
        facts: Option<AccessFacts>,
    ) {
        let user_id = actor.user_id();
        self.access_facts
            .expect_access_facts()
            .withf(move |p, u, at| *p == patient_id && *u == user_id && *at == NOW)
            .times(1)
            .in_sequence(&mut self.seq)
            .returning(move |_, _, _| Ok(facts));
    }

    pub(crate) fn no_patient_lookup(&mut self) {
        self.access_facts.expect_access_facts().never();
    }

    /// The audit log is written once, successfully; returns the events it was given.
    pub(crate) fn audit_succeeds(&mut self) -> Captured<Vec<AuditEvent>> {
        let recorded = Captured::default();
        let log = Arc::clone(&recorded);
        self.audit
            .expect_record()
            .times(1)
            .in_sequence(&mut self.seq)
            .returning(move |events| {
                log.lock().expect("log").push(events);
                Ok(())
            });
        recorded
    }

    /// The audit log is written once, and fails.
    pub(crate) fn audit_fails(&mut self) {
        self.audit
            .expect_record()
            .times(1)
            .in_sequence(&mut self.seq)
            .returning(|_| Err(repository_failure()));
    }

    pub(crate) fn nothing_audited(&mut self) {
        self.audit.expect_record().never();
    }

    /// `id` is looked up once among the users, and is `user`.
    pub(crate) fn user_by_id(&mut self, id: UserId, user: Option<User>) {
        self.users
            .expect_find_by_id()
            .with(eq(id))
            .times(1)
            .returning(move |_| Ok(user.clone()));
    }

    /// `user`, who acts, is looked up by id for their name (in notification titles), as often
    /// as the operation needs.
    pub(crate) fn named(&mut self, user: &User) {
        let found = user.clone();
        self.users
            .expect_find_by_id()
            .with(eq(user.id))
            .returning(move |_| Ok(Some(found.clone())));
    }

    /// The publisher is called once, after whatever `self.seq` holds so far; returns what it
    /// was given.
    pub(crate) fn publishes(&mut self) -> Captured<Vec<Notification>> {
        let published = Captured::default();
        let log = Arc::clone(&published);
        self.publisher
            .expect_publish()
            .times(1)
            .in_sequence(&mut self.seq)
            .returning(move |notifications| {
                log.lock().expect("log").push(notifications.to_vec());
            });
        published
    }

    pub(crate) fn nothing_published(&mut self) {
        self.publisher.expect_publish().never();
    }
}

/// An authenticated caller of `role`, acting in request [`REQUEST_ID`].
pub(crate) fn actor(role: Role) -> Actor {
    Actor::unchecked(UserId::generate(), role).in_request(REQUEST_ID)
}

/// The grant the policy gives for an allowed attempt (see `authorize`, tested separately).
pub(crate) fn grant(
    actor: &Actor,
    patient_id: Option<PatientId>,
    action: Action,
    basis: Basis,
) -> Grant {
    Grant::new(actor.clone(), patient_id, action, basis)
}

pub(crate) fn user(role: Role, status: UserStatus) -> User {
    named_user("Gregory House", role, status)
}

pub(crate) fn named_user(full_name: &str, role: Role, status: UserStatus) -> User {
    User {
        id: UserId::generate(),
        username: Username::parse("someone").expect("valid username"),
        full_name: FullName::parse(full_name).expect("valid name"),
        email: None,
        role,
        status,
        created_at: NOW - SignedDuration::from_hours(24 * 100),
    }
}

/// `user` acting in request [`REQUEST_ID`].
pub(crate) fn actor_for(user: &User) -> Actor {
    Actor::unchecked(user.id, user.role).in_request(REQUEST_ID)
}

/// Ada Lovelace, born 1985-12-10, with a phone number and nothing else.
pub(crate) fn patient_details() -> PatientDetails {
    PatientDetails {
        full_name: FullName::parse("Ada Lovelace").expect("valid name"),
        date_of_birth: jiff::civil::date(1985, 12, 10),
        sex: Sex::Female,
        contact: Contact {
            phone: Some(Phone::parse("+44 20 7946 0958").expect("valid phone")),
            ..Contact::default()
        },
        identifiers: Vec::new(),
        insurance: None,
        emergency_contact: None,
        location: None,
        user_id: None,
    }
}

/// A patient registered a month ago and last changed two hours ago.
pub(crate) fn stored_patient(user_id: Option<UserId>) -> Patient {
    Patient {
        id: PatientId::generate(),
        mrn: Mrn::from_number(48_217_730),
        details: PatientDetails {
            user_id,
            ..patient_details()
        },
        created_at: NOW - SignedDuration::from_hours(24 * 30),
        updated_at: NOW - SignedDuration::from_hours(2),
    }
}

/// A valid reason to break the glass.
pub(crate) fn emergency_reason(raw: &str) -> EmergencyReason {
    EmergencyReason::parse(raw).expect("a reason of 10 to 1,000 characters")
}

pub(crate) fn repository_failure() -> RepositoryError {
    RepositoryError::new("disk on fire")
}

/// The one event of the one call to the audit log.
pub(crate) fn single_event(recorded: &Captured<Vec<AuditEvent>>) -> AuditEvent {
    let batches = recorded.lock().expect("recorded");
    assert_eq!(batches.len(), 1, "one call to the audit log: {batches:?}");
    assert_eq!(batches[0].len(), 1, "one event: {batches:?}");
    batches[0][0].clone()
}

/// The event is `actor`'s attempt at `action` on `patient_id`, now, in request [`REQUEST_ID`].
pub(crate) fn assert_attributed(
    event: &AuditEvent,
    actor: &Actor,
    patient_id: Option<PatientId>,
    action: AuditAction,
) {
    assert_eq!(event.action, action, "{event:?}");
    assert_eq!(event.actor_id, actor.user_id(), "{event:?}");
    assert_eq!(event.actor_role, actor.role(), "{event:?}");
    assert_eq!(event.patient_id, patient_id, "{event:?}");
    assert_eq!(event.request_id.as_deref(), Some(REQUEST_ID), "{event:?}");
    assert_eq!(event.at, NOW, "{event:?}");
}

pub(crate) fn assert_denied(
    event: &AuditEvent,
    actor: &Actor,
    patient_id: Option<PatientId>,
    action: AuditAction,
) {
    assert_attributed(event, actor, patient_id, action);
    assert_eq!(event.outcome, Outcome::Denied, "{event:?}");
    assert_eq!(event.basis, None, "{event:?}");
}

pub(crate) fn assert_allowed(
    event: &AuditEvent,
    actor: &Actor,
    patient_id: Option<PatientId>,
    action: AuditAction,
    basis: Basis,
) {
    assert_attributed(event, actor, patient_id, action);
    assert_eq!(event.outcome, Outcome::Allowed, "{event:?}");
    assert_eq!(event.basis, Some(basis), "{event:?}");
}

/// The patient services and the gatekeeper over one set of doubles.
#[derive(Debug)]
pub(crate) struct Services {
    pub(crate) gatekeeper: Gatekeeper,
    pub(crate) patients: PatientService,
    pub(crate) medical: MedicalService,
    pub(crate) care_teams: CareTeamService,
    pub(crate) emergency_accesses: EmergencyAccessService,
    pub(crate) audit: AuditService,
}

/// The settings the services under test run with.
#[derive(Debug, Clone)]
pub(crate) struct ServiceConfig {
    pub(crate) emergency_access_ttl: SignedDuration,
    pub(crate) clinic_time_zone: TimeZone,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            emergency_access_ttl: EMERGENCY_ACCESS_DURATION,
            clinic_time_zone: TimeZone::UTC,
        }
    }
}

/// What the helpers below read of any service's error.
pub(crate) trait ServiceError: std::fmt::Debug {
    fn invalid(self) -> Option<ValidationErrors>;
    fn is_internal(&self) -> bool;
}

macro_rules! service_errors {
    ($($error:ident { $($invalid:ident)? }),+ $(,)?) => {$(
        impl ServiceError for $error {
            fn invalid(self) -> Option<ValidationErrors> {
                match self {
                    $(Self::$invalid(errors) => Some(errors),)?
                    _ => None,
                }
            }

            fn is_internal(&self) -> bool {
                matches!(self, Self::Internal(_))
            }
        }
    )+};
}

service_errors!(
    AccessError {},
    PatientError { Invalid },
    MedicalError { Invalid },
    CareTeamError { Invalid },
    EmergencyAccessError { Invalid },
    ReferralError { Invalid },
    ScheduleError { Invalid },
    AppointmentError { Invalid },
    VisitNoteError { Invalid },
    LabError { Invalid },
    PrescriptionError { Invalid },
    MessagingError { Invalid },
);

/// The fields an `Invalid` error names; fails on any other result.
pub(crate) fn invalid_fields<T: std::fmt::Debug, E: ServiceError>(
    result: Result<T, E>,
) -> Vec<String> {
    match result {
        Err(error) => match error.invalid() {
            Some(errors) => errors.0.into_iter().map(|e| e.field).collect(),
            None => panic!("expected Invalid"),
        },
        Ok(other) => panic!("expected Invalid, got {other:?}"),
    }
}

pub(crate) fn is_internal<T, E: ServiceError>(result: &Result<T, E>) -> bool {
    matches!(result, Err(error) if error.is_internal())
}

pub(crate) fn member(patient_id: PatientId, doctor_id: UserId, added_by: UserId) -> CareTeamMember {
    CareTeamMember {
        id: MembershipId::generate(),
        patient_id,
        doctor_id,
        doctor_name: None,
        started_at: NOW - SignedDuration::from_hours(24 * 3),
        ended_at: None,
        added_by,
        ended_by: None,
        referral_id: None,
        appointment_id: None,
    }
}

/// The notifications as the repository stores them: numbered for each recipient, from 41 on,
/// with every active administrator standing for [`Recipient::ActiveAdmins`] (two of them here).
pub(crate) fn stored(notices: &[NewNotification], admins: &[UserId]) -> Vec<Notification> {
    let mut next = 40;
    let mut numbered = |recipient: UserId, notice: &NewNotification| {
        next += 1;
        Notification {
            id: next,
            recipient,
            kind: notice.kind,
            created_at: NOW,
            read_at: None,
            data: notice.data.clone(),
        }
    };
    let mut out = Vec::new();
    for notice in notices {
        match notice.recipient {
            Recipient::User(user_id) => out.push(numbered(user_id, notice)),
            Recipient::ActiveAdmins => {
                for admin in admins {
                    out.push(numbered(*admin, notice));
                }
            }
        }
    }
    out
}
