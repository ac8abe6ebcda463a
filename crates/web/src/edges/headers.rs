//! Security headers on every response: the API's JSON, its problems (actix's own 404s, 405s
//! and 413s included), the Swagger UI, the web app, the public keys, health and metrics. A
//! header a handler set itself is kept: the web app and the printable prescription have their
//! own Content-Security-Policy, the web app's files their own caching.

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;

/// The policy of every response that sets none: nothing may load from it, nothing may frame it.
/// JSON needs nothing more, and a browser led to open an API answer runs nothing in it.
pub const DEFAULT_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// The Swagger UI's policy: its scripts, styles, fonts and images from this server only (icons
/// as `data:` URIs), and its requests ("Try it out") to this server only.
pub const DOCS_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// Two years, subdomains included, as browsers' preload lists ask.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=63072000; includeSubDomains";

/// Where the Swagger UI is served.
const DOCS: &str = "/docs";

/// Which of the headers depend on the deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecurityHeaders {
    /// Sends `Strict-Transport-Security`: the server is reached over HTTPS (its public URL is
    /// `https://`), so browsers should never try plain HTTP again.
    pub strict_transport_security: bool,
}

impl SecurityHeaders {
    /// HSTS when `public_url` is HTTPS.
    pub fn for_public_url(public_url: &str) -> Self {
        let https = public_url
            .get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
        Self {
            strict_transport_security: https,
        }
    }

    /// The headers of a response to `path`, each to be added unless the response has it.
    fn for_path(self, path: &str) -> Vec<(HeaderName, HeaderValue)> {
        let is_docs = path == DOCS || path.starts_with("/docs/");
        let policy = if is_docs { DOCS_POLICY } else { DEFAULT_POLICY };
        let mut headers = vec![
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                "same-origin",
            ),
            (
                HeaderName::from_static("cross-origin-resource-policy"),
                "same-origin",
            ),
            (header::CONTENT_SECURITY_POLICY, policy),
            // Answers may hold patient data: no cache keeps them unless a route says otherwise.
            (header::CACHE_CONTROL, "no-store"),
        ];
        if self.strict_transport_security {
            headers.push((header::STRICT_TRANSPORT_SECURITY, STRICT_TRANSPORT_SECURITY));
        }
        headers
            .into_iter()
            .map(|(name, value)| (name, HeaderValue::from_static(value)))
            .collect()
    }
}

/// Adds the security headers the response does not have.
///
/// # Errors
/// The inner service's.
pub async fn secure(
    headers: SecurityHeaders,
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let wanted = headers.for_path(request.path());
    let mut response = next.call(request).await?;
    let present = response.headers_mut();
    for (name, value) in wanted {
        if !present.contains_key(&name) {
            present.insert(name, value);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(headers: &[(HeaderName, HeaderValue)], name: &HeaderName) -> Option<String> {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.to_str().expect("ASCII").to_owned())
    }

    #[test]
    fn strict_transport_security_is_sent_only_for_an_https_public_url() {
        for (url, hsts) in [
            ("https://clinic.example.org/", true),
            ("HTTPS://clinic.example.org/", true),
            ("http://127.0.0.1:8080/", false),
            ("http", false),
        ] {
            let headers = SecurityHeaders::for_public_url(url).for_path("/api/v1/users/me");
            assert_eq!(
                value(&headers, &header::STRICT_TRANSPORT_SECURITY).is_some(),
                hsts,
                "{url}"
            );
        }
    }

    #[test]
    fn the_swagger_ui_gets_a_policy_that_lets_its_own_scripts_run() {
        let headers = SecurityHeaders::for_public_url("http://x/");
        for path in ["/docs", "/docs/", "/docs/swagger-ui-bundle.js"] {
            let policy = value(&headers.for_path(path), &header::CONTENT_SECURITY_POLICY);
            assert_eq!(policy.as_deref(), Some(DOCS_POLICY), "{path}");
        }
        for path in ["/", "/api/v1/openapi.json", "/docsx", "/api/v1/docs/x"] {
            let policy = value(&headers.for_path(path), &header::CONTENT_SECURITY_POLICY);
            assert_eq!(policy.as_deref(), Some(DEFAULT_POLICY), "{path}");
        }
    }
}
