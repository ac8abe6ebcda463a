//! How each domain error answers: its status and problem type. Causes of internal errors are
//! kept for the log ([`ApiError::Internal`]), never sent.

use carehub_domain::access::AccessError;
use carehub_domain::calls::CallError;
use carehub_domain::feedback::FeedbackError;
use carehub_domain::identity::{
    AdminError, AuthenticateError, Forbidden, InternalError, LoginError, RefreshError,
    RegisterError,
};
use carehub_domain::jobs::JobError;
use carehub_domain::kernel::{RepositoryError, ValidationErrors};
use carehub_domain::lab::{LabError, LabTransitionError};
use carehub_domain::messages::MessagingError;
use carehub_domain::notifications::NotificationError;
use carehub_domain::patients::{CareTeamError, EmergencyAccessError, MedicalError, PatientError};
use carehub_domain::prescriptions::PrescriptionError;
use carehub_domain::referrals::{ReferralError, TransitionError};
use carehub_domain::reports::ReportError;
use carehub_domain::scheduling::{
    AppointmentError, Conflict, ScheduleError, StatusChangeError, VisitNoteError,
};

use super::{ApiError, ProblemConflict};

impl From<RepositoryError> for ApiError {
    fn from(e: RepositoryError) -> Self {
        Self::internal(e)
    }
}

impl From<InternalError> for ApiError {
    fn from(e: InternalError) -> Self {
        Self::internal(e)
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(e: ValidationErrors) -> Self {
        Self::Invalid(e)
    }
}

impl From<Forbidden> for ApiError {
    fn from(e: Forbidden) -> Self {
        Self::Forbidden(e.to_string())
    }
}

impl ApiError {
    /// 429, with `Retry-After` in whole seconds (at least one).
    fn too_many(retry_after: jiff::SignedDuration) -> Self {
        Self::TooManyRequests {
            retry_after_secs: u64::try_from(retry_after.as_secs().max(1)).unwrap_or(1),
        }
    }
}

impl From<RegisterError> for ApiError {
    fn from(e: RegisterError) -> Self {
        match e {
            RegisterError::Throttled { retry_after } => Self::too_many(retry_after),
            RegisterError::Invalid(errors) => Self::Invalid(errors),
            RegisterError::RoleNotSelfRegistrable => Self::Forbidden(e.to_string()),
            RegisterError::UsernameTaken => Self::Conflict(e.to_string()),
            RegisterError::Internal(e) => e.into(),
        }
    }
}

impl From<LoginError> for ApiError {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::Throttled { retry_after } => Self::too_many(retry_after),
            LoginError::InvalidCredentials => Self::SignInFailed(e.to_string()),
            LoginError::AccountPending | LoginError::AccountSuspended => {
                Self::Forbidden(e.to_string())
            }
            LoginError::Internal(e) => e.into(),
        }
    }
}

impl From<RefreshError> for ApiError {
    fn from(e: RefreshError) -> Self {
        match e {
            RefreshError::Throttled { retry_after } => Self::too_many(retry_after),
            RefreshError::Invalid | RefreshError::Reused => Self::SignInFailed(e.to_string()),
            RefreshError::AccountPending | RefreshError::AccountSuspended => {
                Self::Forbidden(e.to_string())
            }
            RefreshError::Internal(e) => e.into(),
        }
    }
}

impl From<AuthenticateError> for ApiError {
    fn from(e: AuthenticateError) -> Self {
        match e {
            AuthenticateError::Internal(e) => e.into(),
            other => Self::Unauthorized(other.to_string()),
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Forbidden(_) => Self::Forbidden(e.to_string()),
            AdminError::Invalid(errors) => Self::Invalid(errors),
            AdminError::NotFound => Self::NotFound(e.to_string()),
            AdminError::NotPending | AdminError::OwnAccess | AdminError::UsernameTaken => {
                Self::Conflict(e.to_string())
            }
            AdminError::Internal(e) => e.into(),
        }
    }
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Forbidden => Self::Forbidden(e.to_string()),
            AccessError::NotFound => Self::NotFound(e.to_string()),
            AccessError::Internal(e) => e.into(),
        }
    }
}

impl From<PatientError> for ApiError {
    fn from(e: PatientError) -> Self {
        match e {
            PatientError::Forbidden => Self::Forbidden(e.to_string()),
            PatientError::NotFound => Self::NotFound(e.to_string()),
            PatientError::Invalid(errors) => Self::Invalid(errors),
            PatientError::IdentifierTaken { .. }
            | PatientError::UserLinked
            | PatientError::Stale => Self::Conflict(e.to_string()),
            PatientError::Internal(e) => e.into(),
        }
    }
}

impl From<MedicalError> for ApiError {
    fn from(e: MedicalError) -> Self {
        match e {
            MedicalError::Forbidden => Self::Forbidden(e.to_string()),
            MedicalError::NotFound => Self::NotFound(e.to_string()),
            MedicalError::Invalid(errors) => Self::Invalid(errors),
            MedicalError::Internal(e) => e.into(),
        }
    }
}

impl From<CareTeamError> for ApiError {
    fn from(e: CareTeamError) -> Self {
        match e {
            CareTeamError::Forbidden => Self::Forbidden(e.to_string()),
            CareTeamError::NotFound => Self::NotFound(e.to_string()),
            CareTeamError::Invalid(errors) => Self::Invalid(errors),
            CareTeamError::AlreadyMember | CareTeamError::NotMember => {
                Self::Conflict(e.to_string())
            }
            CareTeamError::Internal(e) => e.into(),
        }
    }
}

impl From<EmergencyAccessError> for ApiError {
    fn from(e: EmergencyAccessError) -> Self {
        match e {
            EmergencyAccessError::Forbidden => Self::Forbidden(e.to_string()),
            EmergencyAccessError::NotFound => Self::NotFound(e.to_string()),
            EmergencyAccessError::Invalid(errors) => Self::Invalid(errors),
            EmergencyAccessError::Internal(e) => e.into(),
        }
    }
}

impl From<ReferralError> for ApiError {
    fn from(e: ReferralError) -> Self {
        match e {
            ReferralError::Forbidden
            | ReferralError::Transition(TransitionError::WrongParty(_)) => {
                Self::Forbidden(e.to_string())
            }
            ReferralError::NotFound | ReferralError::ReferralNotFound => {
                Self::NotFound(e.to_string())
            }
            ReferralError::Invalid(errors) => Self::Invalid(errors),
            ReferralError::Transition(TransitionError::NotFrom { .. }) => {
                Self::Conflict(e.to_string())
            }
            ReferralError::Internal(e) => e.into(),
        }
    }
}

impl From<VisitNoteError> for ApiError {
    fn from(e: VisitNoteError) -> Self {
        match e {
            VisitNoteError::Forbidden => Self::Forbidden(e.to_string()),
            VisitNoteError::NotFound | VisitNoteError::AppointmentNotFound => {
                Self::NotFound(e.to_string())
            }
            VisitNoteError::Invalid(errors) => Self::Invalid(errors),
            VisitNoteError::VisitNotReady(_) | VisitNoteError::VisitNoteExists => {
                Self::Conflict(e.to_string())
            }
            VisitNoteError::Internal(e) => e.into(),
        }
    }
}

impl From<ScheduleError> for ApiError {
    fn from(e: ScheduleError) -> Self {
        match e {
            ScheduleError::Forbidden => Self::Forbidden(e.to_string()),
            ScheduleError::DoctorNotFound | ScheduleError::TimeOffNotFound => {
                Self::NotFound(e.to_string())
            }
            ScheduleError::Invalid(errors) => Self::Invalid(errors),
            ScheduleError::Conflicts(conflicts) => Self::time_taken(conflicts),
            ScheduleError::Internal(e) => e.into(),
        }
    }
}

impl From<AppointmentError> for ApiError {
    fn from(e: AppointmentError) -> Self {
        match e {
            AppointmentError::Forbidden => Self::Forbidden(e.to_string()),
            AppointmentError::NotFound | AppointmentError::AppointmentNotFound => {
                Self::NotFound(e.to_string())
            }
            AppointmentError::Unavailable(why) => Self::NotBookable(why.to_string()),
            AppointmentError::Conflicts(conflicts) => Self::time_taken(conflicts),
            AppointmentError::AppointmentChange(change) => change.into(),
            AppointmentError::Invalid(errors) => Self::Invalid(errors),
            AppointmentError::Stale | AppointmentError::NotReschedulable(_) => {
                Self::Conflict(e.to_string())
            }
            AppointmentError::Internal(e) => e.into(),
        }
    }
}

impl From<StatusChangeError> for ApiError {
    fn from(e: StatusChangeError) -> Self {
        match e {
            StatusChangeError::Role(_) => Self::Forbidden(e.to_string()),
            StatusChangeError::NotFrom { .. } => Self::InvalidTransition(e.to_string()),
            StatusChangeError::TooLate => Self::TooLate(e.to_string()),
            StatusChangeError::Reason(reason) => Self::invalid_field("reason", reason.to_string()),
            StatusChangeError::UnexpectedReason => {
                Self::invalid_field("reason", "only a cancellation takes a reason")
            }
        }
    }
}

impl ApiError {
    /// The appointments in the way, their times as the domain gives them: at the clinic's
    /// offset.
    fn time_taken(conflicts: Vec<Conflict>) -> Self {
        Self::TimeTaken(conflicts.into_iter().map(ProblemConflict::from).collect())
    }
}

impl From<NotificationError> for ApiError {
    fn from(e: NotificationError) -> Self {
        match e {
            NotificationError::NotFound => Self::NotFound(e.to_string()),
            NotificationError::InvalidLimit => Self::BadRequest(e.to_string()),
            NotificationError::Internal(e) => e.into(),
        }
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::Access(e) => e.into(),
            JobError::NotFound => Self::NotFound(e.to_string()),
            JobError::NotRetryable(_) | JobError::Duplicate => Self::Conflict(e.to_string()),
            JobError::Repository(e) => e.into(),
        }
    }
}

impl From<ReportError> for ApiError {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::Access(e) => e.into(),
            ReportError::Period(period) => {
                Self::BadRequest(format!("{}: {period}", period.field()))
            }
            ReportError::Internal(e) => e.into(),
        }
    }
}

impl From<LabError> for ApiError {
    fn from(e: LabError) -> Self {
        match e {
            LabError::Forbidden | LabError::Transition(LabTransitionError::NotOrderer) => {
                Self::Forbidden(e.to_string())
            }
            LabError::NotFound | LabError::OrderNotFound | LabError::FileNotFound => {
                Self::NotFound(e.to_string())
            }
            LabError::Invalid(errors) => Self::Invalid(errors),
            LabError::Transition(LabTransitionError::NotFrom(_))
            | LabError::Moved
            | LabError::DuplicateTest => Self::Conflict(e.to_string()),
            LabError::Internal(e) => e.into(),
        }
    }
}

impl From<PrescriptionError> for ApiError {
    fn from(e: PrescriptionError) -> Self {
        match e {
            PrescriptionError::Forbidden => Self::Forbidden(e.to_string()),
            PrescriptionError::NotFound | PrescriptionError::PrescriptionNotFound => {
                Self::NotFound(e.to_string())
            }
            PrescriptionError::Invalid(errors) => Self::Invalid(errors),
            PrescriptionError::AllergyConflict(matches) => Self::AllergyConflict(
                matches
                    .into_iter()
                    .map(crate::routes::prescriptions::views::AllergyMatchView::from)
                    .collect(),
            ),
            PrescriptionError::Transition(_) | PrescriptionError::Moved => {
                Self::Conflict(e.to_string())
            }
            PrescriptionError::Internal(e) => e.into(),
        }
    }
}

impl From<MessagingError> for ApiError {
    fn from(e: MessagingError) -> Self {
        match e {
            MessagingError::Forbidden => Self::Forbidden(e.to_string()),
            MessagingError::NotFound
            | MessagingError::ConversationNotFound
            | MessagingError::MessageNotFound
            | MessagingError::AttachmentNotFound => Self::NotFound(e.to_string()),
            MessagingError::Invalid(errors) => Self::Invalid(errors),
            MessagingError::TooManyUnsent => Self::Conflict(e.to_string()),
            MessagingError::Internal(e) => e.into(),
        }
    }
}

impl From<FeedbackError> for ApiError {
    fn from(e: FeedbackError) -> Self {
        match e {
            FeedbackError::Forbidden => Self::Forbidden(e.to_string()),
            FeedbackError::AppointmentNotFound | FeedbackError::NotFound => {
                Self::NotFound(e.to_string())
            }
            FeedbackError::Invalid(errors) => Self::Invalid(errors),
            FeedbackError::NotCompleted | FeedbackError::Duplicate => Self::Conflict(e.to_string()),
            FeedbackError::TooLate => Self::TooLate(e.to_string()),
            FeedbackError::Internal(e) => e.into(),
        }
    }
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Forbidden => Self::Forbidden(e.to_string()),
            CallError::AppointmentNotFound => Self::NotFound(e.to_string()),
            CallError::NotVideo
            | CallError::NotActive(_)
            | CallError::Closed(_)
            | CallError::SignalTooLarge => Self::Conflict(e.to_string()),
            CallError::Internal(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::ts;

    use actix_web::ResponseError as _;
    use actix_web::http::StatusCode;
    use carehub_domain::scheduling::ConflictWith;

    use carehub_domain::scheduling::{AppointmentId, AppointmentStatus, ReasonError};
    use carehub_domain::scheduling::{TimeOffId, Unavailable};

    fn json(error: &ApiError) -> serde_json::Value {
        serde_json::to_value(error.problem()).expect("json")
    }

    #[test]
    fn conflicts_are_listed_at_the_offset_the_domain_gives_them() {
        let first = AppointmentId::generate();
        // The domain's services give conflicts at the clinic's offset (Paris in summer here).
        let paris = jiff::tz::TimeZone::get("Europe/Paris").expect("bundled");
        let conflicts = vec![
            Conflict::new(
                first,
                ts("2027-03-29T09:00:00+02:00"),
                ts("2027-03-29T09:30:00+02:00"),
                ConflictWith::Doctor,
            )
            .at_clinic_offset(&paris),
            Conflict::new(
                AppointmentId::generate(),
                ts("2027-03-29T09:15:00+02:00"),
                ts("2027-03-29T09:45:00+02:00"),
                ConflictWith::Patient,
            )
            .at_clinic_offset(&paris),
        ];
        let error = ApiError::from(AppointmentError::Conflicts(conflicts));
        assert_eq!(error.status_code(), StatusCode::CONFLICT);
        let body = json(&error);
        assert_eq!(body["type"], "urn:carehub:problem:appointment-conflict");
        assert_eq!(body["title"], "The time is taken");
        assert_eq!(body["detail"], "2 appointments overlap");
        assert_eq!(body["status"], 409);
        assert_eq!(body["conflicts"][0]["id"], first.to_string());
        assert_eq!(body["conflicts"][0]["start"], "2027-03-29T09:00:00+02:00");
        assert_eq!(body["conflicts"][0]["end"], "2027-03-29T09:30:00+02:00");
        assert_eq!(body["conflicts"][0]["with"], "doctor");
        assert_eq!(body["conflicts"][1]["with"], "patient");
        assert_eq!(body["conflicts"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn other_problems_have_no_conflicts_member() {
        let body = json(&ApiError::from(AppointmentError::AppointmentNotFound));
        assert!(body.get("conflicts").is_none());
        assert_eq!(body["status"], 404);
        assert_eq!(body["detail"], "no such appointment");
    }

    #[test]
    fn an_unbookable_time_is_a_not_bookable_problem_that_keeps_the_time_off_private() {
        let error = ApiError::from(AppointmentError::Unavailable(Unavailable::TimeOff {
            time_off_id: TimeOffId::generate(),
        }));
        assert_eq!(error.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = json(&error);
        assert_eq!(body["type"], "urn:carehub:problem:not-bookable");
        assert_eq!(body["detail"], "the doctor is off at that time");
        assert_eq!(
            body.as_object().map(|o| o.len()),
            Some(4),
            "only type, title, status and detail: {body}"
        );
    }

    #[test]
    fn refused_status_changes_map_to_403_409_and_422() {
        use AppointmentStatus as S;
        let status = |e: StatusChangeError| {
            let error = ApiError::from(AppointmentError::AppointmentChange(e));
            (error.status_code().as_u16(), json(&error))
        };
        let (code, body) = status(StatusChangeError::Role(S::NoShow));
        assert_eq!(
            (code, body["type"].as_str()),
            (403, Some("urn:carehub:problem:forbidden"))
        );
        let (code, body) = status(StatusChangeError::NotFrom {
            from: S::Cancelled,
            to: S::CheckedIn,
        });
        assert_eq!(
            (code, body["type"].as_str()),
            (409, Some("urn:carehub:problem:invalid-transition"))
        );
        assert_eq!(
            body["detail"],
            "the appointment is cancelled: it cannot become checked_in"
        );
        let (code, body) = status(StatusChangeError::TooLate);
        assert_eq!(
            (code, body["type"].as_str()),
            (422, Some("urn:carehub:problem:too-late"))
        );
        for refused in [
            StatusChangeError::Reason(ReasonError::Missing),
            StatusChangeError::UnexpectedReason,
        ] {
            let (code, body) = status(refused);
            assert_eq!(code, 422);
            assert_eq!(body["type"], "urn:carehub:problem:validation");
            assert_eq!(body["errors"][0]["field"], "reason");
        }
    }

    #[test]
    fn appointment_states_that_forbid_a_change_are_conflicts() {
        for problem in [
            ApiError::from(AppointmentError::NotReschedulable(
                AppointmentStatus::Completed,
            )),
            ApiError::from(VisitNoteError::VisitNotReady(AppointmentStatus::Booked)),
            ApiError::from(VisitNoteError::VisitNoteExists),
            ApiError::from(AppointmentError::Stale),
        ] {
            assert_eq!(problem.status_code(), StatusCode::CONFLICT);
            assert_eq!(json(&problem)["type"], "urn:carehub:problem:conflict");
        }
        assert_eq!(
            ApiError::from(ScheduleError::DoctorNotFound).status_code(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            ApiError::from(ScheduleError::TimeOffNotFound).status_code(),
            StatusCode::NOT_FOUND
        );
    }
}
