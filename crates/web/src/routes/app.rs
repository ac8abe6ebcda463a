//! The web app: its page at `/` and its files under `/app/`, embedded in the binary from
//! `crates/web/app`. Plain HTML, CSS and JavaScript modules that use the public API only; no
//! build step. Every answer carries a strict Content-Security-Policy (no inline script or style,
//! nothing from another origin) and the usual headers against framing and leaking referrers.

use actix_web::http::header::{
    self, CacheControl, CacheDirective, ETag, EntityTag, HeaderValue, IfNoneMatch,
};
use actix_web::middleware::Compress;
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpMessage as _, HttpRequest, HttpResponse, HttpResponseBuilder};
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
    cfg.service(
        web::resource("/")
            .wrap(Compress::default())
            .route(web::get().to(page)),
    )
    .service(
        web::resource("/app/{file:.*}")
            .wrap(Compress::default())
            .route(web::get().to(file)),
    );
}

/// The app's page.
async fn page(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    serve(&request, "index.html")
}

/// One of the app's files.
async fn file(request: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    serve(&request, &path)
}

/// The file `name`, gzipped when the client takes it, with its content hash as its entity tag:
/// browsers ask again each time (`no-cache`) and get `304 Not Modified` while it is the same.
fn serve(request: &HttpRequest, name: &str) -> Result<HttpResponse, ApiError> {
    let file = Files::get(name).ok_or_else(|| ApiError::NotFound("no such file".into()))?;
    let tag = EntityTag::new_strong(
        file.metadata
            .sha256_hash()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect(),
    );
    let unchanged = match request.get_header::<IfNoneMatch>() {
        Some(IfNoneMatch::Any) => true,
        Some(IfNoneMatch::Items(tags)) => tags.iter().any(|t| t.weak_eq(&tag)),
        None => false,
    };
    let mut response = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    secure(&mut response);
    response
        .insert_header(ETag(tag))
        .insert_header(CacheControl(vec![CacheDirective::NoCache]));
    if unchanged {
        return Ok(response.finish());
    }
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
        // The call page uses the camera and the microphone; no third party may.
        (
            header::HeaderName::from_static("permissions-policy"),
            "camera=(self), microphone=(self), geolocation=(), payment=()",
        ),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ] {
        response.insert_header((name, HeaderValue::from_static(value)));
    }
}
