//! An order's ECG analysis: the outcome of the job that analysed its latest recording, with
//! the first seconds of the trace for drawing. Decision support, not a diagnosis.

use actix_web::{HttpResponse, get, web};
use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use carehub_domain::access::Action;
use carehub_domain::audit::AuditAction;
use carehub_domain::lab::{EcgOutcome, EcgState};

use super::order_id;
use crate::extract::Caller;
use crate::problem::{ApiError, Problem, Unauthenticated};
use crate::state::AppState;

/// What every analysis is shown with.
pub const DISCLAIMER: &str = "Automatic analysis for decision support only; it is not a \
     diagnosis. A clinician must read the recording.";

/// RR interval statistics over the detected beats.
#[derive(Debug, Serialize, ToSchema)]
pub struct RrView {
    pub mean_ms: f64,
    pub sdnn_ms: f64,
    pub rmssd_ms: f64,
    /// Percentage (0–100) of successive RR differences above 50 ms.
    pub pnn50: f64,
}

/// What `carehub-ecg` found in the recording's first lead.
#[derive(Debug, Serialize, ToSchema)]
pub struct EcgAnalysisView {
    #[schema(example = "carehub-ecg 1.0")]
    pub algorithm_version: String,
    pub sampling_rate_hz: f64,
    pub duration_secs: f64,
    /// Sample indices of the detected QRS complexes (R peaks).
    pub beats: Vec<usize>,
    pub heart_rate_bpm: Option<f64>,
    pub rr: Option<RrView>,
    /// `normal_sinus`, `sinus_bradycardia`, `sinus_tachycardia`,
    /// `atrial_fibrillation_suspected`, `irregular_other`, or `undetermined` (poor signal).
    #[schema(example = "normal_sinus")]
    pub rhythm: String,
    /// 0 (unusable) to 1 (clean).
    pub signal_quality: f64,
    /// An estimate of premature (ectopic) beats.
    pub ectopic_beats: usize,
}

impl From<carehub_ecg::Analysis> for EcgAnalysisView {
    fn from(a: carehub_ecg::Analysis) -> Self {
        Self {
            algorithm_version: a.algorithm_version,
            sampling_rate_hz: a.sampling_rate_hz,
            duration_secs: a.duration_secs,
            beats: a.beats,
            heart_rate_bpm: a.heart_rate_bpm,
            rr: a.rr.map(|rr| RrView {
                mean_ms: rr.mean_ms,
                sdnn_ms: rr.sdnn_ms,
                rmssd_ms: rr.rmssd_ms,
                pnn50: rr.pnn50,
            }),
            rhythm: a.rhythm.as_str().to_owned(),
            signal_quality: a.signal_quality,
            ectopic_beats: a.ectopic_beats,
        }
    }
}

/// The first seconds of the analysed lead.
#[derive(Debug, Serialize, ToSchema)]
pub struct TraceView {
    pub sampling_rate_hz: f64,
    /// In the recording's unit (millivolts for WFDB records).
    pub samples: Vec<f32>,
}

/// Where an order's ECG analysis stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct EcgView {
    /// `pending` (the analysis job has not run yet), `analysed` or `failed`.
    #[schema(example = "analysed")]
    pub status: &'static str,
    /// The recording analysed (its header, or its CSV).
    pub file_id: Uuid,
    pub analyzed_at: Option<Timestamp>,
    pub analysis: Option<EcgAnalysisView>,
    pub trace: Option<TraceView>,
    /// Why the recording could not be analysed.
    pub failure: Option<String>,
    pub disclaimer: &'static str,
}

impl From<EcgState> for EcgView {
    fn from(state: EcgState) -> Self {
        let empty = |status, file_id| Self {
            status,
            file_id,
            analyzed_at: None,
            analysis: None,
            trace: None,
            failure: None,
            disclaimer: DISCLAIMER,
        };
        match state {
            EcgState::Pending { file_id } => empty("pending", *file_id.as_uuid()),
            EcgState::Done(record) => {
                let base = Self {
                    analyzed_at: Some(record.analyzed_at),
                    ..empty("analysed", *record.file_id.as_uuid())
                };
                match record.outcome {
                    EcgOutcome::Analysed { analysis, trace } => Self {
                        analysis: Some(analysis.into()),
                        trace: Some(TraceView {
                            sampling_rate_hz: trace.sampling_rate_hz,
                            samples: trace.samples,
                        }),
                        ..base
                    },
                    EcgOutcome::Failed { reason } => Self {
                        status: "failed",
                        failure: Some(reason),
                        ..base
                    },
                }
            }
        }
    }
}

/// The analysis of the order's latest ECG recording; the read is audited.
#[utoipa::path(
    tag = "laboratory",
    params(("id" = Uuid, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The analysis, or that it is pending", body = EcgView),
        Unauthenticated,
        (status = 403, description = "Secretaries and administrators see no lab orders", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order, none the caller may see, or no recording on it", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/lab-orders/{id}/ecg")]
pub async fn get_ecg(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .lab
        .check_role(&actor, Action::AccessLabOrder, AuditAction::LabOrderRead)
        .await?;
    let ecg = state
        .lab
        .ecg(&actor, order_id(&path)?)
        .await?
        .ok_or_else(|| ApiError::NotFound("no ECG recording on this order".into()))?;
    Ok(HttpResponse::Ok().json(EcgView::from(ecg)))
}
