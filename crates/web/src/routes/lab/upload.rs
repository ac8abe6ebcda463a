//! File uploads: `multipart/form-data` with one or more parts named `file` (and, for a CSV
//! recording, a `sampling_rate` field). Each part is read within the size limits, its content
//! checked against its name and declared type, and its SHA-256 computed, before the domain
//! decides; nothing of it is ever used as a path.

use actix_web::{HttpRequest, HttpResponse, post, web};

use carehub_domain::access::Action;
use carehub_domain::audit::AuditAction;
use carehub_domain::lab::{FileName, LabFileKind, Upload};

use super::order_id;
use super::views::LabFileView;
use crate::extract::Caller;
use crate::problem::{ApiError, Problem, Unauthenticated};
use crate::state::AppState;
pub use crate::upload::UploadLimits;
use crate::upload::{Part, multipart_parts, sha256_hex};

/// The multipart body of an upload, as the OpenAPI document describes it: parts named `file`,
/// and `sampling_rate`; any other part is refused (400). (`Deserialize` only so that the
/// schema states that no other part is taken; the parts are read by [`read_parts`].)
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct UploadForm {
    /// One or more files: PDF (`.pdf`), PNG or JPEG images, ECG recordings (a WFDB header
    /// `X.hea` with its signal file `X.dat`, or a `.csv`).
    #[schema(value_type = Vec<String>, format = Binary)]
    file: Vec<Vec<u8>>,
    /// Hz, 100 to 1000: for a CSV recording without a time column.
    #[schema(value_type = Option<f64>)]
    sampling_rate: Option<f64>,
}

/// The laboratory attaches files to an order (collected or resulted): reports as PDF, images,
/// and ECG recordings, which are analysed afterwards (see `/lab-orders/{id}/ecg`).
#[utoipa::path(
    tag = "laboratory",
    params(("id" = Uuid, Path, description = "The order's id")),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The files as stored", body = Vec<LabFileView>),
        (status = 400, description = "Not multipart, or malformed", body = Problem, content_type = "application/problem+json"),
        Unauthenticated,
        (status = 403, description = "Only the laboratory uploads files", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order is not collected or resulted, or changed meanwhile", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "A file or the request is too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not multipart/form-data", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A name with a directory part; content that is not its type; an unpaired or unreadable recording", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/lab-orders/{id}/files")]
pub async fn upload_files(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<String>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    state
        .lab
        .check_role(&actor, Action::ProcessLabOrder, AuditAction::LabFileUpload)
        .await?;
    let id = order_id(&path)?;
    let uploads = read_parts(&request, payload, state.upload_limits).await?;
    let files = state.lab.upload(&actor, id, uploads).await?;
    Ok(HttpResponse::Created().json(files.into_iter().map(LabFileView::from).collect::<Vec<_>>()))
}

async fn read_parts(
    request: &HttpRequest,
    payload: web::Payload,
    limits: UploadLimits,
) -> Result<Vec<Upload>, ApiError> {
    let (parts, values) = multipart_parts(request, payload, limits, &["sampling_rate"]).await?;
    let sampling_rate = values.into_iter().map(|(_, value)| value).next_back();
    let mut errors = carehub_domain::kernel::ValidationErrors::new();
    let rate = match sampling_rate.as_deref() {
        None => None,
        Some(raw) => match raw.parse::<f64>() {
            Ok(r) if (100.0..=1000.0).contains(&r) => Some(r),
            _ => {
                errors.add("sampling_rate", "must be a number of Hz from 100 to 1000");
                None
            }
        },
    };
    let mut uploads = Vec::with_capacity(parts.len());
    for part in parts {
        match check(part, rate) {
            Ok(upload) => uploads.push(upload),
            Err(message) => errors.add("file", message),
        }
    }
    errors.into_result()?;
    Ok(uploads)
}

/// What the content is, by its name's extension, checked against the bytes and the declared
/// type.
///
/// # Errors
/// Why the part is refused, naming it.
pub fn check(part: Part, sampling_rate: Option<f64>) -> Result<Upload, String> {
    let name = FileName::parse(&part.name).map_err(|e| format!("{:?}: {e}", part.name))?;
    let shown = name.as_str().to_owned();
    if part.bytes.is_empty() {
        return Err(format!("{shown}: is empty"));
    }
    let sniffed = infer::get(&part.bytes).map(|t| t.mime_type());
    let declared = part.declared.as_deref();
    let ext = name.extension().unwrap_or_default();
    let (kind, content_type) = match ext.as_str() {
        "pdf" => {
            expect(sniffed == Some("application/pdf"), &shown, "PDF")?;
            (LabFileKind::Pdf, "application/pdf".to_owned())
        }
        "png" | "jpg" | "jpeg" => {
            let mime = sniffed
                .filter(|m| matches!(*m, "image/png" | "image/jpeg"))
                .ok_or_else(|| format!("{shown}: is not a PNG or JPEG image"))?;
            (LabFileKind::Image, mime.to_owned())
        }
        "hea" => {
            expect(is_text(&part.bytes), &shown, "a WFDB header (text)")?;
            (
                LabFileKind::EcgHeader,
                "text/plain; charset=utf-8".to_owned(),
            )
        }
        "dat" => {
            // A WFDB signal is raw samples: anything a sniffer recognises is something else.
            expect(sniffed.is_none(), &shown, "a WFDB signal file")?;
            (
                LabFileKind::EcgSignal,
                "application/octet-stream".to_owned(),
            )
        }
        "csv" => {
            expect(is_text(&part.bytes), &shown, "CSV text")?;
            (LabFileKind::EcgCsv, "text/csv; charset=utf-8".to_owned())
        }
        _ => {
            return Err(format!(
                "{shown}: only .pdf, .png, .jpg, .jpeg, .hea, .dat and .csv files are accepted"
            ));
        }
    };
    // A declared type must agree with what the content is.
    if let Some(declared) = declared.filter(|d| *d != "application/octet-stream") {
        let essence = content_type.split(';').next().unwrap_or_default();
        let agrees = declared == essence
            || (kind == LabFileKind::EcgCsv
                && matches!(declared, "text/plain" | "application/csv"))
            || (kind == LabFileKind::EcgHeader && declared.starts_with("text/"));
        if !agrees {
            return Err(format!("{shown}: is declared {declared} but is {essence}"));
        }
    }
    let sha256 = sha256_hex(&part.bytes);
    Ok(Upload {
        name,
        kind,
        content_type,
        sha256,
        sampling_rate_hz: if kind == LabFileKind::EcgCsv {
            sampling_rate
        } else {
            None
        },
        bytes: part.bytes,
    })
}

fn expect(ok: bool, name: &str, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("{name}: its content is not {what}"))
    }
}

fn is_text(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|s| !s.contains('\0'))
}
