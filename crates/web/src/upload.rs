//! Uploads at the HTTP edge: reading a `multipart/form-data` body within size limits, and the
//! digest files are kept with. What a file may be is each resource's own check.

use actix_multipart::Multipart;
use actix_web::{HttpRequest, web};
use futures_util::StreamExt as _;
use sha2::{Digest as _, Sha256};

use crate::problem::{ApiError, byte_size};

/// How large uploads may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// One file.
    pub file_bytes: usize,
    /// Every part of one request together.
    pub request_bytes: usize,
}

impl Default for UploadLimits {
    fn default() -> Self {
        Self {
            file_bytes: 20 * 1024 * 1024,
            request_bytes: 50 * 1024 * 1024,
        }
    }
}

/// A part as received: its file name, its declared `Content-Type` and its bytes.
#[derive(Debug)]
pub struct Part {
    pub name: String,
    pub declared: Option<String>,
    pub bytes: Vec<u8>,
}

/// The parts of a `multipart/form-data` body: files in parts named `file` (each at most
/// `limits.file_bytes`), and the small text fields named in `fields` (1 KiB each), all within
/// `limits.request_bytes`. Any other part is refused.
///
/// # Errors
/// 415 when the body is not multipart, 400 when it is malformed or has another part, 413
/// beyond the limits.
pub(crate) async fn multipart_parts(
    request: &HttpRequest,
    payload: web::Payload,
    limits: UploadLimits,
    fields: &[&str],
) -> Result<(Vec<Part>, Vec<(String, String)>), ApiError> {
    let is_multipart = request
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        return Err(ApiError::UnsupportedMediaType(
            "send multipart/form-data with parts named file".into(),
        ));
    }
    let mut multipart = Multipart::new(request.headers(), payload.into_inner());
    let mut parts = Vec::new();
    let mut values = Vec::new();
    let mut total = 0usize;
    while let Some(field) = multipart.next().await {
        let mut field =
            field.map_err(|e| ApiError::BadRequest(format!("malformed multipart body: {e}")))?;
        let disposition = field.content_disposition().cloned();
        let field_name = disposition
            .as_ref()
            .and_then(|d| d.get_name())
            .unwrap_or_default()
            .to_owned();
        if field_name != "file" && !fields.contains(&field_name.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "unknown part {field_name:?}: send parts named file{}",
                fields
                    .iter()
                    .map(|f| format!(" or {f}"))
                    .collect::<String>()
            )));
        }
        let file_name = disposition
            .as_ref()
            .and_then(|d| d.get_filename())
            .map(str::to_owned);
        let declared = field.content_type().map(|m| m.essence_str().to_owned());
        let limit = if field_name == "file" {
            limits.file_bytes
        } else {
            1024
        };
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::BadRequest(format!("malformed multipart body: {e}")))?;
            total += chunk.len();
            if bytes.len() + chunk.len() > limit {
                return Err(ApiError::PayloadTooLarge(format!(
                    "the part {field_name} may be at most {}",
                    byte_size(limit)
                )));
            }
            if total > limits.request_bytes {
                return Err(ApiError::PayloadTooLarge(format!(
                    "the parts of one upload may be at most {} together",
                    byte_size(limits.request_bytes)
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        if field_name == "file" {
            parts.push(Part {
                name: file_name.unwrap_or_default(),
                declared,
                bytes,
            });
        } else {
            values.push((
                field_name,
                String::from_utf8_lossy(&bytes).trim().to_owned(),
            ));
        }
    }
    Ok((parts, values))
}

/// The digest files are kept with: lowercase hexadecimal SHA-256.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}
