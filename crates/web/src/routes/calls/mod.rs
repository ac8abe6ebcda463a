//! Video calls: an appointment booked with `video` has a call its doctor and patient join over
//! the socket (`call.join`, `call.signal`, `call.leave`; see `docs/calls.md`). Here is what
//! they read before joining: the call's window, the ICE servers to use, and what happened in
//! the call so far.

pub mod ice;

use actix_web::{HttpResponse, get, web};
use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use carehub_domain::calls::{Call, CallEventKind};
use carehub_domain::identity::UserId;
use carehub_domain::kernel::AppointmentId;

use crate::extract::{Caller, path_uuid};
use crate::openapi::enums;
use crate::problem::{ApiError, Problem, Unauthenticated};
use crate::state::AppState;
use ice::IceServer;
use utoipa_actix_web::service_config::ServiceConfig;

/// Registers the calls' resources.
pub fn services(cfg: &mut ServiceConfig) {
    cfg.service(appointment_call);
}

/// A join or a leave.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallEventView {
    pub user_id: Uuid,
    #[schema(value_type = enums::CallEventKind)]
    pub kind: CallEventKind,
    pub at: Timestamp,
}

/// An appointment's call.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallView {
    pub appointment_id: Uuid,
    /// Ten minutes before the appointment's start.
    pub opens_at: Timestamp,
    /// The appointment's end.
    pub closes_at: Timestamp,
    /// Whether it may be joined now.
    pub open: bool,
    pub doctor_id: Uuid,
    /// The patient's account; `null` while their record has none.
    #[schema(value_type = Uuid, required = true, nullable = true)]
    pub patient_user_id: Option<Uuid>,
    /// Who is in the call, as recorded.
    pub present: Vec<Uuid>,
    /// When both parties were first in it together.
    pub started_at: Option<Timestamp>,
    /// How long both were in it together, in seconds.
    pub duration_secs: i64,
    /// Joins and leaves, oldest first.
    pub events: Vec<CallEventView>,
    /// For `RTCPeerConnection`'s `iceServers`: the clinic's STUN servers, and its TURN servers
    /// with credentials for the caller while the call is open. Empty when none are configured
    /// (peers on one network need none).
    pub ice_servers: Vec<IceServer>,
}

impl CallView {
    fn of(call: Call, caller: UserId, ice: &ice::IceServers, now: Timestamp) -> Self {
        let open = call.window.is_open(now);
        let present = std::iter::once(call.doctor_id)
            .chain(call.patient_user_id)
            .filter(|user| call.is_present(*user))
            .map(|user| *user.as_uuid())
            .collect();
        Self {
            appointment_id: *call.appointment_id.as_uuid(),
            opens_at: call.window.opens_at,
            closes_at: call.window.closes_at,
            open,
            doctor_id: *call.doctor_id.as_uuid(),
            patient_user_id: call.patient_user_id.map(|u| *u.as_uuid()),
            present,
            started_at: call.started_at(),
            duration_secs: call.duration(now).as_secs(),
            ice_servers: ice.for_call(caller, call.window.closes_at, open),
            events: call
                .events
                .into_iter()
                .map(|e| CallEventView {
                    user_id: *e.user_id.as_uuid(),
                    kind: e.kind,
                    at: e.at,
                })
                .collect(),
        }
    }
}

/// The call of a video appointment, for its doctor or its patient: when it may be joined, the
/// ICE servers to use, who is in it, its joins and leaves and its duration; audited
/// (`call.read`). The call itself happens over the socket.
#[utoipa::path(
    tag = "appointments",
    params(("id" = Uuid, Path, description = "The appointment's id")),
    responses(
        (status = 200, description = "The call", body = CallView),
        Unauthenticated,
        (status = 403, description = "Secretaries, laboratory staff and administrators take no part in calls", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such appointment, or not one the caller is the doctor or the patient of", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The appointment is not a video consultation", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/appointments/{id}/call")]
pub async fn appointment_call(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_uuid(&path).map(AppointmentId::from_uuid)?;
    let call = state.calls.call(&actor, id).await?;
    let now = state.calls.now();
    Ok(HttpResponse::Ok().json(CallView::of(call, actor.user_id(), &state.ice_servers, now)))
}
