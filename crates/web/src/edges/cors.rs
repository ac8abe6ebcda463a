//! Cross-origin access (CORS): off unless origins are configured (`CAREHUB_CORS_ORIGINS`), and
//! then for those exact origins only. Clients send bearer tokens, never cookies, so no
//! credentials are allowed.

use actix_cors::Cors;
use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;

/// The methods a listed origin may use.
const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// Browsers cache a preflight's answer this long, in seconds.
const MAX_AGE_SECS: usize = 600;

/// Exact origins (`https://portal.example.org`), as browsers send them in `Origin`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins(pub Vec<String>);

impl Origins {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The CORS middleware for these origins. With none it allows nothing; it is then left out
    /// altogether.
    pub fn middleware(&self) -> Cors {
        let cors = self
            .0
            .iter()
            .fold(Cors::default(), |cors, origin| cors.allowed_origin(origin));
        cors.allowed_methods(METHODS)
            .allowed_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
                header::IF_NONE_MATCH,
            ])
            .expose_headers([
                header::LOCATION,
                header::RETRY_AFTER,
                header::ETAG,
                header::WWW_AUTHENTICATE,
            ])
            .max_age(MAX_AGE_SECS)
            // Another origin's request is served as if CORS were off (its browser keeps the
            // answer from the page); the server's own pages send `Origin` too.
            .block_on_origin_mismatch(false)
    }
}

/// Takes the exposed headers out of answers that grant no origin: the CORS middleware names
/// them on every answer, which tells an origin not listed nothing it may use.
///
/// # Errors
/// The inner service's.
pub async fn nothing_for_others(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let mut response = next.call(request).await?;
    let headers = response.headers_mut();
    if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        headers.remove(header::ACCESS_CONTROL_EXPOSE_HEADERS);
    }
    Ok(response)
}

/// `https://portal.example.org,http://localhost:3000`: comma-separated origins, each an http or
/// https scheme, a host and an optional port, nothing else. A default port is dropped and the
/// host lowercased, as browsers write them.
///
/// # Errors
/// The first entry that is no such origin, and why.
pub fn parse_origins(raw: &str) -> Result<Origins, String> {
    let mut origins = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let origin = parse_origin(entry)?;
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    Ok(Origins(origins))
}

fn parse_origin(raw: &str) -> Result<String, String> {
    let refuse =
        |why: &str| format!("`{raw}` is not an origin such as `https://portal.example.org`: {why}");
    if raw.contains('*') {
        return Err(refuse("wildcards are not allowed, list each origin"));
    }
    let Some((scheme, rest)) = raw.split_once("://") else {
        return Err(refuse("it needs a scheme, http:// or https://"));
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(refuse("the scheme must be http or https"));
    }
    if rest.contains(['/', '?', '#']) {
        return Err(refuse(
            "an origin has no path, query or fragment, not even a trailing /",
        ));
    }
    if rest.contains('@') {
        return Err(refuse("an origin has no user name or password"));
    }
    let url = url::Url::parse(raw).map_err(|e| refuse(&e.to_string()))?;
    match url.host_str() {
        Some(host) if !host.is_empty() => Ok(url.origin().ascii_serialization()),
        _ => Err(refuse("it needs a host")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_read_as_browsers_write_them() {
        assert_eq!(
            parse_origins(" https://Portal.Example.org, http://localhost:3000,,https://x.org:443"),
            Ok(Origins(vec![
                "https://portal.example.org".into(),
                "http://localhost:3000".into(),
                "https://x.org".into(),
            ]))
        );
        assert_eq!(parse_origins(""), Ok(Origins::default()));
        assert_eq!(
            parse_origins("http://[::1]:8080").map(|o| o.0),
            Ok(vec!["http://[::1]:8080".to_owned()])
        );
    }

    #[test]
    fn anything_but_an_exact_origin_is_refused_with_the_reason() {
        for (bad, why) in [
            ("*", "wildcards"),
            ("https://*.example.org", "wildcards"),
            ("portal.example.org", "scheme"),
            ("ftp://portal.example.org", "http or https"),
            ("https://portal.example.org/", "trailing /"),
            ("https://portal.example.org/app", "no path"),
            ("https://portal.example.org?x=1", "no path"),
            ("https://user@portal.example.org", "user name"),
            ("https://", "host"),
            (
                "https://portal.example.org:99999",
                "portal.example.org:99999",
            ),
            ("https://ok.org,https://ok.org/", "https://ok.org/"),
        ] {
            let error = parse_origins(bad).expect_err(bad);
            assert!(error.contains(why), "{bad}: {error}");
        }
    }
}
