//! The call's use cases: looking up an appointment's call, joining it, passing signals to the
//! other party, leaving it. The hub calls them for its sockets; each socket keeps the
//! [`JoinedCall`]s it is in.

use std::sync::Arc;

use super::{Call, CallEvent, CallEventKind, CallRepository, CallWindow, MAX_SIGNAL_BYTES};
use crate::access::{Action, Actor, Basis};
use crate::audit::{AuditAction, Gatekeeper};
use crate::identity::UserId;
use crate::kernel::{AppointmentId, PatientId, RepositoryError};
use crate::patients::PatientRepository;
use crate::relay::{CallSignal, Live, Relay, Relayed};
use crate::scheduling::{Appointment, AppointmentError, AppointmentService, AppointmentStatus};

/// Why a call operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The caller's role never takes part in calls (403).
    #[error("you may not do this")]
    Forbidden,
    /// No such appointment, or not one the caller is a party to (404).
    #[error("no such appointment")]
    AppointmentNotFound,
    /// The appointment was not booked as a video consultation (409).
    #[error("the appointment is not a video consultation")]
    NotVideo,
    /// The appointment is over or called off (409).
    #[error("the appointment is {0}: its call cannot be joined")]
    NotActive(AppointmentStatus),
    /// Outside the call's window (409).
    #[error("the call can be joined from {} until {}", .0.opens_at, .0.closes_at)]
    Closed(CallWindow),
    /// A signal larger than [`MAX_SIGNAL_BYTES`] (422).
    #[error("a signal is at most {MAX_SIGNAL_BYTES} bytes")]
    SignalTooLarge,
    #[error(transparent)]
    Internal(#[from] RepositoryError),
}

impl From<AppointmentError> for CallError {
    fn from(error: AppointmentError) -> Self {
        match error {
            AppointmentError::Forbidden => Self::Forbidden,
            AppointmentError::NotFound | AppointmentError::AppointmentNotFound => {
                Self::AppointmentNotFound
            }
            AppointmentError::Internal(e) => Self::Internal(e),
            // Reading an appointment fails in no other way.
            other => Self::Internal(RepositoryError::new(other.to_string())),
        }
    }
}

/// A party's place in a call, kept by their socket while they are in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedCall {
    pub appointment_id: AppointmentId,
    pub patient_id: PatientId,
    /// The party who joined.
    pub user: UserId,
    /// The other party, when they have an account.
    pub peer: Option<UserId>,
    pub window: CallWindow,
    /// Whether the other party was in the call when this one joined, as recorded.
    pub peer_present: bool,
    pub(super) basis: Basis,
}

/// Video calls of appointments.
#[derive(Clone)]
pub struct CallService {
    gate: Gatekeeper,
    appointments: AppointmentService,
    patients: Arc<dyn PatientRepository>,
    calls: Arc<dyn CallRepository>,
    relay: Arc<dyn Relay>,
}

impl std::fmt::Debug for CallService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallService").finish_non_exhaustive()
    }
}

impl CallService {
    pub fn new(
        gate: Gatekeeper,
        appointments: AppointmentService,
        patients: Arc<dyn PatientRepository>,
        calls: Arc<dyn CallRepository>,
        relay: Arc<dyn Relay>,
    ) -> Self {
        Self {
            gate,
            appointments,
            patients,
            calls,
            relay,
        }
    }

    /// Now, on the service's clock.
    pub fn now(&self) -> jiff::Timestamp {
        self.gate.now()
    }

    /// An appointment's call, for its doctor or its patient; audited as `call.read`.
    ///
    /// # Errors
    /// `Forbidden`, `AppointmentNotFound`, `NotVideo`, `Internal`.
    pub async fn call(&self, actor: &Actor, id: AppointmentId) -> Result<Call, CallError> {
        let (appointment, basis) = self.party_to(actor, id, AuditAction::CallRead).await?;
        let call = self.load(&appointment).await?;
        self.gate
            .allowed(actor, appointment.patient_id, AuditAction::CallRead, basis)
            .await?;
        Ok(call)
    }

    /// The actor joins the call of an active video appointment they are a party to, while
    /// its window is open. The join is recorded and audited (`call.join`; a refusal by the
    /// access policy too), and the other party told.
    ///
    /// # Errors
    /// `Forbidden`, `AppointmentNotFound`, `NotVideo`, `NotActive`, `Closed`, `Internal`.
    pub async fn join(&self, actor: &Actor, id: AppointmentId) -> Result<JoinedCall, CallError> {
        let (appointment, basis) = self.party_to(actor, id, AuditAction::CallJoin).await?;
        if !appointment.status.is_active() {
            return Err(CallError::NotActive(appointment.status));
        }
        let window = CallWindow::of(&appointment);
        let now = self.gate.now();
        if !window.is_open(now) {
            return Err(CallError::Closed(window));
        }
        let call = self.load(&appointment).await?;
        let joined = JoinedCall {
            appointment_id: id,
            patient_id: appointment.patient_id,
            user: actor.user_id(),
            peer: call.peer_of(actor.user_id()),
            window,
            peer_present: call
                .peer_of(actor.user_id())
                .is_some_and(|peer| call.is_present(peer)),
            basis,
        };
        self.record(actor, &joined, CallEventKind::Join).await?;
        self.pass_on(&joined, CallSignal::Joined).await;
        Ok(joined)
    }

    /// Passes signalling from a party in the call to the other, while the window is open.
    ///
    /// # Errors
    /// `Closed`, `SignalTooLarge`.
    pub async fn signal(&self, joined: &JoinedCall, data: String) -> Result<(), CallError> {
        if !joined.window.is_open(self.gate.now()) {
            return Err(CallError::Closed(joined.window));
        }
        if data.len() > MAX_SIGNAL_BYTES {
            return Err(CallError::SignalTooLarge);
        }
        self.pass_on(joined, CallSignal::Data(data)).await;
        Ok(())
    }

    /// The party leaves the call (or their socket closed while in it): recorded and audited
    /// (`call.leave`), and the other party told.
    ///
    /// # Errors
    /// `Internal`.
    pub async fn leave(&self, actor: &Actor, joined: &JoinedCall) -> Result<(), CallError> {
        // The other party hears of it even if recording fails.
        self.pass_on(joined, CallSignal::Left).await;
        self.record(actor, joined, CallEventKind::Leave).await
    }

    async fn party_to(
        &self,
        actor: &Actor,
        id: AppointmentId,
        audit_as: AuditAction,
    ) -> Result<(Appointment, Basis), CallError> {
        let (appointment, basis) = self
            .appointments
            .appointment_for(actor, id, Action::JoinCall, audit_as)
            .await?;
        if !appointment.video {
            return Err(CallError::NotVideo);
        }
        Ok((appointment, basis))
    }

    async fn load(&self, appointment: &Appointment) -> Result<Call, CallError> {
        let patient_user_id = self
            .patients
            .find(appointment.patient_id)
            .await?
            .and_then(|patient| patient.details.user_id);
        Ok(Call {
            appointment_id: appointment.id,
            window: CallWindow::of(appointment),
            doctor_id: appointment.doctor_id,
            patient_user_id,
            events: self.calls.events(appointment.id).await?,
        })
    }

    async fn record(
        &self,
        actor: &Actor,
        joined: &JoinedCall,
        kind: CallEventKind,
    ) -> Result<(), CallError> {
        let at = self.gate.now();
        let event = CallEvent {
            appointment_id: joined.appointment_id,
            user_id: joined.user,
            kind,
            at,
        };
        let audit_as = match kind {
            CallEventKind::Join => AuditAction::CallJoin,
            CallEventKind::Leave => AuditAction::CallLeave,
        };
        let audit = self.gate.event(
            actor,
            Some(joined.patient_id),
            audit_as,
            Some(joined.basis),
            at,
        );
        Ok(self.calls.record(&event, &audit).await?)
    }

    async fn pass_on(&self, joined: &JoinedCall, signal: CallSignal) {
        if let Some(to) = joined.peer {
            self.relay
                .relay(Relayed {
                    from: joined.user,
                    to,
                    what: Live::Call {
                        appointment_id: joined.appointment_id,
                        signal,
                    },
                })
                .await;
        }
    }
}
