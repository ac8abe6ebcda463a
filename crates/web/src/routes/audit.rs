//! The audit trail: every attempt on patients' data, allowed or denied, for administrators.
//! (Each patient's own access log is a patient resource, in [`super::patients`]; both show
//! events as [`AuditEventView`].)

use actix_web::{HttpRequest, HttpResponse, get, web};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use carehub_domain::access::{Action, Basis, Relationship};
use carehub_domain::audit::{AuditAction, AuditEntry, AuditEventId, AuditFilter, Outcome};
use carehub_domain::identity::{Role, UserId};
use carehub_domain::kernel::{InstantError, parse_rfc3339};
use carehub_domain::patients::PatientId;

use crate::extract::{Caller, parse_query};
use crate::openapi::enums;
use crate::paging::{ListPage, PageQuery};
use crate::problem::{AdminOnly, ApiError, Problem, Unauthenticated};
use crate::routes::patients::views::name;
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

/// Registers the audit trail.
pub fn services(cfg: &mut ServiceConfig) {
    cfg.service(audit_trail);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only events about this patient.
    pub patient_id: Option<Uuid>,
    /// Only events of this actor.
    pub user_id: Option<Uuid>,
    /// Only events at or after this instant (RFC 3339).
    #[param(format = DateTime, example = "2026-11-22T00:00:00Z")]
    pub from: Option<String>,
    /// Only events before this instant (RFC 3339).
    #[param(format = DateTime, example = "2026-11-23T00:00:00Z")]
    pub to: Option<String>,
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
}

fn instant(name: &str, raw: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    raw.map(|raw| match parse_rfc3339(raw) {
        Ok(at) => Ok(at),
        // Four-digit years leave jiff's range only late on 9999-12-30: as a bound, the end.
        Err(InstantError::OutOfRange) => Ok(Timestamp::MAX),
        Err(InstantError::Malformed) => Err(ApiError::BadRequest(format!(
            "{name}: must be an RFC 3339 instant such as 2026-11-22T08:00:00Z"
        ))),
    })
    .transpose()
}

/// The audit trail: every attempt on patients' data, allowed or denied, newest first.
#[utoipa::path(
    tag = "admin",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of audit events", body = ListPage<AuditEventView>),
        (status = 400, description = "Invalid filter, limit or cursor, or `from` after `to`", body = Problem, content_type = "application/problem+json"),
        Unauthenticated,
        AdminOnly,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/admin/audit")]
pub async fn audit_trail(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    actor.permit(Action::ReadAuditTrail, Relationship::None)?;
    let query: AuditQuery = parse_query(&request)?;
    let from = instant("from", query.from.as_deref())?;
    let to = instant("to", query.to.as_deref())?;
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(ApiError::BadRequest("from: must not be after `to`".into()));
    }
    let filter = AuditFilter {
        patient_id: query.patient_id.map(PatientId::from_uuid),
        actor_id: query.user_id.map(UserId::from_uuid),
        from,
        to,
    };
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .to_request(AuditEventId::from_uuid)?;
    let entries = state.audit.audit_trail(&actor, filter, page).await?;
    Ok(HttpResponse::Ok().json(ListPage::of(
        entries,
        |id| *id.as_uuid(),
        AuditEventView::from,
    )))
}

/// Who acted, as the audit trail shows them.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditActorView {
    pub id: Uuid,
    /// `null` only if the account no longer exists.
    pub full_name: Option<String>,
    /// The role the actor had when acting.
    #[schema(value_type = enums::Role)]
    pub role: Role,
}

/// One audited attempt on a patient's data, allowed or denied.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventView {
    pub id: Uuid,
    pub at: Timestamp,
    pub actor: AuditActorView,
    /// `null` for an attempt that named no patient (a refused registration or search).
    pub patient_id: Option<Uuid>,
    #[schema(value_type = enums::AuditAction)]
    pub action: AuditAction,
    #[schema(value_type = enums::Outcome)]
    pub outcome: Outcome,
    /// Why access was allowed; `null` when denied.
    #[schema(value_type = Option<enums::Basis>)]
    pub basis: Option<Basis>,
    /// The `x-request-id` of the request that made the attempt.
    pub request_id: Option<String>,
}

impl From<AuditEntry> for AuditEventView {
    fn from(entry: AuditEntry) -> Self {
        let event = entry.event;
        Self {
            id: *event.id.as_uuid(),
            at: event.at,
            actor: AuditActorView {
                id: *event.actor_id.as_uuid(),
                full_name: name(entry.actor_name.as_ref()),
                role: event.actor_role,
            },
            patient_id: event.patient_id.map(|id| *id.as_uuid()),
            action: event.action,
            outcome: event.outcome,
            basis: event.basis,
            request_id: event.request_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::ts;

    use carehub_domain::audit::AuditEvent;

    use super::*;

    #[test]
    fn an_audit_event_names_its_action_outcome_and_basis_as_strings() {
        let view = AuditEventView::from(AuditEntry {
            event: AuditEvent {
                id: AuditEventId::generate(),
                at: ts("2026-11-22T10:00:00Z"),
                actor_id: UserId::from_uuid(Uuid::now_v7()),
                actor_role: Role::Doctor,
                patient_id: None,
                action: AuditAction::MedicalRead,
                outcome: Outcome::Denied,
                basis: None,
                request_id: Some("r-1".into()),
            },
            actor_name: None,
        });
        let json = serde_json::to_value(&view).expect("serialisable");
        assert_eq!(json["action"], "medical.read");
        assert_eq!(json["outcome"], "denied");
        assert_eq!(json["basis"], serde_json::Value::Null);
        assert_eq!(json["actor"]["role"], "doctor");
        assert_eq!(json["actor"]["full_name"], serde_json::Value::Null);
    }
}
