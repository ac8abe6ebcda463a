//! The web app: its page at `/` and its files under `/app/`, embedded in the binary from
//! `crates/web/app`. Plain HTML, CSS and JavaScript modules that use the public API only; no
//! build step. Every answer carries a strict Content-Security-Policy (no inline script or style,
//! nothing from another origin) and the usual headers against framing and leaking referrers.

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpResponse, HttpResponseBuilder};
use rust_embed::RustEmbed;

use crate::problem::ApiError;

#[derive(RustEmbed)]
#[folder = "app/"]
struct Files;

/// Scripts, styles, images, fonts and connections (the API and its WebSocket) from this origin
/// only; no plugins, no `<base>`, no framing, forms posted here only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

pub fn services(cfg: &mut ServiceConfig) {
    cfg.route("/", web::get().to(page))
        .route("/app/{file:.*}", web::get().to(file));
}

/// The app's page.
async fn page() -> Result<HttpResponse, ApiError> {
    serve("index.html")
}

/// One of the app's files.
async fn file(path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    serve(&path)
}

fn serve(name: &str) -> Result<HttpResponse, ApiError> {
    let file = Files::get(name).ok_or_else(|| ApiError::NotFound("no such file".into()))?;
    let mut response = HttpResponse::Ok();
    secure(&mut response);
    Ok(response
        .insert_header((header::CONTENT_TYPE, content_type(file.metadata.mimetype())))
        .body(file.data.into_owned()))
}

/// Text types say their charset; the rest are as guessed from the name.
fn content_type(mime: &str) -> String {
    if mime.starts_with("text/") || mime == "application/javascript" {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    }
}

fn secure(response: &mut HttpResponseBuilder) {
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=(), payment=()",
        ),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ] {
        response.insert_header((name, HeaderValue::from_static(value)));
    }
}
