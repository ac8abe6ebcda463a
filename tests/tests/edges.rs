//! The edges of the server, tried from outside: security headers on every kind of answer, CORS
//! off unless origins are listed, body limits per route (declared, chunked, on GET), and the
//! timeouts against slow clients (half a request head, a body trickled byte by byte, an idle
//! connection). The slow clients are raw TCP sockets, as an attacker's would be.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use reqwest::{Method, Response};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use carehub_tests::ws::{Credentials, HubSocket};
use carehub_tests::{PASSWORD, TestApp, backend_tests, backend_tests_with, header};

/// The policy of answers that set none.
const DEFAULT_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// Asserts the headers every answer carries, whatever its policy.
fn assert_secured_headers(headers: &reqwest::header::HeaderMap, what: &str) {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
    ] {
        assert_eq!(get(name), Some(value), "{name} on {what}");
    }
    let policy = get("content-security-policy").unwrap_or_default();
    assert!(
        policy.contains("frame-ancestors 'none'"),
        "{what}: {policy:?}"
    );
    assert!(
        get("strict-transport-security").is_none(),
        "no HSTS over http: {what}"
    );
}

/// Asserts the security headers of `response`, with the default policy and no caching.
fn assert_secured(response: &Response, what: &str) {
    assert_secured_headers(response.headers(), what);
    assert_eq!(
        header(response, "content-security-policy").as_deref(),
        Some(DEFAULT_POLICY),
        "{what}"
    );
    assert_eq!(
        header(response, "cache-control").as_deref(),
        Some("no-store"),
        "{what}"
    );
}

async fn assert_problem_status(response: Response, status: u16, what: &str) {
    assert_eq!(response.status(), status, "{what}");
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("application/problem+json"),
        "{what}"
    );
    let problem: Value = response.json().await.expect("a problem");
    assert_eq!(problem["status"], status, "{what}: {problem}");
}

backend_tests! {
    async fn every_kind_of_answer_carries_the_security_headers(app: TestApp) {
        let registered = app.register("ann.edges", "patient").await;
        assert_eq!(registered.status(), 201);
        let token = app.tokens("ann.edges").await.access_token;

        let me = app.get("/api/v1/users/me", Some(&token)).await;
        assert_eq!(me.status(), 200);
        assert_secured(&me, "an API answer");
        let unauthenticated = app.get("/api/v1/users/me", None).await;
        assert_eq!(unauthenticated.status(), 401);
        assert_secured(&unauthenticated, "a 401");
        let missing = app.get("/api/v1/no-such-thing", None).await;
        assert_eq!(missing.status(), 404);
        assert_secured(&missing, "a 404");
        let wrong_method = app
            .client
            .delete(app.url("/api/v1/auth/login"))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong_method.status(), 405);
        assert_secured(&wrong_method, "a 405");
        let malformed = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .header("content-type", "application/json")
            .body("{\"username\": ")
            .send()
            .await
            .unwrap();
        assert_secured(&malformed, "a malformed body");
        assert_problem_status(malformed, 400, "a malformed body").await;
        for path in ["/api/v1/health/live", "/metrics", "/api/v1/openapi.json"] {
            let response = app.get(path, None).await;
            assert_eq!(response.status(), 200, "{path}");
            assert_secured(&response, path);
        }
        // The public keys may be cached, as they say.
        let keys = app.get("/.well-known/jwks.json", None).await;
        assert_eq!(keys.status(), 200);
        assert_secured_headers(keys.headers(), "the public keys");
        assert_eq!(
            header(&keys, "content-security-policy").as_deref(),
            Some(DEFAULT_POLICY)
        );
        assert_eq!(
            header(&keys, "cache-control").as_deref(),
            Some("public, max-age=60")
        );

        // The Swagger UI and the web app have policies of their own.
        for path in ["/docs/", "/docs/swagger-initializer.js"] {
            let docs = app.get(path, None).await;
            assert_eq!(docs.status(), 200, "{path}");
            assert_secured_headers(docs.headers(), path);
            let policy = header(&docs, "content-security-policy").unwrap();
            assert!(policy.contains("script-src 'self'"), "{policy}");
            assert!(!policy.contains("unsafe"), "{policy}");
        }
        let page = app.get("/", None).await;
        assert_eq!(page.status(), 200);
        assert_secured_headers(page.headers(), "the web app");
        let policy = header(&page, "content-security-policy").unwrap();
        assert!(policy.starts_with("default-src 'self'"), "the app's own: {policy}");
        assert_eq!(header(&page, "cache-control").as_deref(), Some("no-cache"));
        assert!(header(&page, "permissions-policy").is_some());

        // A refused WebSocket upgrade.
        let refused = match HubSocket::try_connect(&app.address, Credentials::Nothing, "").await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response,
            other => panic!("the upgrade should be refused, got {:?}", other.map(|_| ())),
        };
        assert_eq!(refused.status().as_u16(), 401);
        let headers: reqwest::header::HeaderMap = refused
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    reqwest::header::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap(),
                    reqwest::header::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
                )
            })
            .collect();
        assert_secured_headers(&headers, "a refused upgrade");
    }

    async fn cross_origin_requests_get_no_permission_by_default(app: TestApp) {
        let simple = app
            .client
            .get(app.url("/api/v1/health/live"))
            .header("origin", "https://portal.example.org")
            .send()
            .await
            .unwrap();
        assert_eq!(simple.status(), 200);
        assert_no_cors(&simple);
        let preflight = preflight(&app, "/api/v1/patients", "https://portal.example.org").await;
        assert_no_cors(&preflight);
        assert!(preflight.status().is_client_error(), "{}", preflight.status());
        assert_secured(&preflight, "a preflight");
        assert_problem_status(preflight, 405, "a preflight").await;
    }

    async fn a_declared_body_over_the_sign_in_limit_is_refused_before_it_is_sent(app: TestApp) {
        // Only the head is sent: the answer cannot wait for a body.
        let answer = exchange(
            &app,
            "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: 4097\r\n\r\n",
        )
        .await;
        answer.assert_problem(413);
        assert!(answer.closed, "the connection is closed, the body unread");
        assert_eq!(answer.header("x-frame-options"), Some("DENY"));
        assert_eq!(answer.header("connection"), Some("close"));

        // 4 KiB is taken; sign-in then says what is wrong with it.
        let padding = "a".repeat(4096 - 40);
        let body = json!({ "username": padding, "password": "x" }).to_string();
        assert!(body.len() <= 4096 && body.len() > 4000, "{}", body.len());
        let taken = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(taken.status(), 401);
        let over = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .header("content-type", "application/json")
            .body(format!("{{\"username\": \"{}\"}}", "a".repeat(4096)))
            .send()
            .await
            .unwrap();
        assert_secured(&over, "a 413");
        assert_problem_status(over, 413, "a sign-in over 4 KiB").await;
    }

    async fn a_json_route_takes_64_kib_and_refuses_more(app: TestApp) {
        let over = exchange(
            &app,
            "POST /api/v1/patients HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: 65537\r\n\r\n",
        )
        .await;
        over.assert_problem(413);
        // 10 KiB, more than sign-in takes, reaches the route: it wants a caller first.
        let ten_kib = app
            .client
            .post(app.url("/api/v1/patients"))
            .header("content-type", "application/json")
            .body(format!("{{\"full_name\": \"{}\"}}", "a".repeat(10 * 1024)))
            .send()
            .await
            .unwrap();
        assert_eq!(ten_kib.status(), 401);
    }

    async fn a_chunked_body_is_cut_off_at_the_limit(app: TestApp) {
        // A chunked body says no length: it is counted as it comes, and never finishes here.
        let mut request = String::from(
            "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\n\r\n",
        );
        for _ in 0..5 {
            request.push_str(&format!("400\r\n{}\r\n", "a".repeat(1024)));
        }
        let answer = exchange(&app, &request).await;
        answer.assert_problem(413);
        assert!(answer.closed, "the connection is closed rather than drained: {answer:?}");
        // Nor is the body of a request refused before its body is read (no caller) drained.
        let request = request.replace("/api/v1/auth/login", "/api/v1/patients");
        let answer = exchange(&app, &request).await;
        answer.assert_problem(401);
        assert!(answer.closed, "the connection is closed rather than drained: {answer:?}");
    }

    async fn uploads_keep_their_own_larger_limit(app: TestApp) {
        let route = format!("/api/v1/conversations/{}/attachments", uuid::Uuid::new_v4());
        // A megabyte is announced and never sent: the route answers (no caller) without it.
        let within = exchange(
            &app,
            &format!(
                "POST {route} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; \
                 boundary=b\r\nContent-Length: 1048576\r\n\r\n"
            ),
        )
        .await;
        within.assert_problem(401);
        // Past the upload limit (20 MiB a file, 50 MiB a request), refused before anything.
        let over = exchange(
            &app,
            &format!(
                "POST {route} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; \
                 boundary=b\r\nContent-Length: {}\r\n\r\n",
                60 * 1024 * 1024
            ),
        )
        .await;
        over.assert_problem(413);
    }

    async fn a_request_without_a_body_may_not_carry_a_large_one(app: TestApp) {
        let over = exchange(
            &app,
            "GET /api/v1/health/live HTTP/1.1\r\nHost: x\r\nContent-Length: 4097\r\n\r\n",
        )
        .await;
        over.assert_problem(413);
        let small = exchange(
            &app,
            &format!(
                "GET /api/v1/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                 Content-Length: 100\r\n\r\n{}",
                "a".repeat(100)
            ),
        )
        .await;
        assert_eq!(small.status, 200, "{}", small.text);
    }
}

/// Asserts that `response` grants no cross-origin access.
fn assert_no_cors(response: &Response) {
    for (name, _) in response.headers() {
        assert!(
            !name.as_str().starts_with("access-control-"),
            "{name} on {}",
            response.url()
        );
    }
}

/// A browser's preflight for a `POST` with a bearer token and JSON, from `origin`.
async fn preflight(app: &TestApp, path: &str, origin: &str) -> Response {
    app.client
        .request(Method::OPTIONS, app.url(path))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap()
}

mod cors_for_listed_origins {
    use super::*;

    const PORTAL: &str = "https://portal.example.org";

    backend_tests_with! {
        ["--cors-origins", "https://portal.example.org, http://localhost:3000"];

        async fn a_listed_origin_may_call_the_api_and_no_other_may(app: TestApp) {
            let allowed = preflight(&app, "/api/v1/patients", PORTAL).await;
            assert_eq!(allowed.status(), 200);
            assert_eq!(header(&allowed, "access-control-allow-origin").as_deref(), Some(PORTAL));
            let methods = header(&allowed, "access-control-allow-methods").unwrap();
            for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
                assert!(methods.contains(method), "{methods}");
            }
            let headers = header(&allowed, "access-control-allow-headers").unwrap().to_lowercase();
            for name in ["authorization", "content-type", "if-match", "if-none-match"] {
                assert!(headers.contains(name), "{headers}");
            }
            assert_eq!(header(&allowed, "access-control-max-age").as_deref(), Some("600"));
            assert!(header(&allowed, "access-control-allow-credentials").is_none());

            let call = app
                .client
                .get(app.url("/api/v1/users/me"))
                .header("origin", PORTAL)
                .send()
                .await
                .unwrap();
            assert_eq!(call.status(), 401);
            assert_eq!(header(&call, "access-control-allow-origin").as_deref(), Some(PORTAL));
            let exposed = header(&call, "access-control-expose-headers").unwrap().to_lowercase();
            for name in ["location", "retry-after", "etag", "www-authenticate"] {
                assert!(exposed.contains(name), "{exposed}");
            }
            assert!(header(&call, "access-control-allow-credentials").is_none());
            assert_secured(&call, "a cross-origin answer");

            // Another origin: served as without CORS, its preflight refused with a problem.
            let other = "https://evil.example";
            let simple = app
                .client
                .get(app.url("/api/v1/health/live"))
                .header("origin", other)
                .send()
                .await
                .unwrap();
            assert_eq!(simple.status(), 200);
            assert_no_cors(&simple);
            let refused = preflight(&app, "/api/v1/patients", other).await;
            assert_no_cors(&refused);
            assert_secured(&refused, "a refused preflight");
            assert_problem_status(refused, 400, "a refused preflight").await;
            // Near misses are other origins.
            for near in ["https://portal.example.org.evil.example", "http://portal.example.org"] {
                let refused = preflight(&app, "/api/v1/patients", near).await;
                assert_no_cors(&refused);
                assert_eq!(refused.status(), 400, "{near}");
            }
            let local = preflight(&app, "/api/v1/auth/login", "http://localhost:3000").await;
            assert_eq!(
                header(&local, "access-control-allow-origin").as_deref(),
                Some("http://localhost:3000")
            );
        }
    }
}

#[test]
fn an_origin_that_is_not_exact_stops_the_server_with_the_reason() {
    for (origins, reason) in [
        ("*", "wildcards"),
        ("https://portal.example.org/", "trailing /"),
        ("portal.example.org", "scheme"),
        ("ftp://portal.example.org", "http or https"),
    ] {
        let error = carehub_web::Settings::parse_from_args(["carehub", "--cors-origins", origins])
            .expect_err(origins)
            .to_string();
        assert!(error.contains(reason), "{origins}: {error}");
        assert!(error.contains("--cors-origins"), "{error}");
    }
}

mod strict_transport_security {
    use super::*;

    backend_tests_with! {
        ["--public-url", "https://clinic.example.org/"];

        async fn an_https_server_tells_browsers_to_keep_to_https(app: TestApp) {
            for path in ["/api/v1/health/live", "/", "/api/v1/no-such-thing"] {
                let response = app.get(path, None).await;
                assert_eq!(
                    header(&response, "strict-transport-security").as_deref(),
                    Some("max-age=63072000; includeSubDomains"),
                    "{path}"
                );
            }
        }
    }
}

mod slow_clients {
    use super::*;

    backend_tests_with! {
        ["--header-timeout-ms", "300", "--body-timeout-secs", "1", "--keep-alive-secs", "1"];

        async fn a_client_that_sends_half_a_request_head_is_disconnected(app: TestApp) {
            let started = Instant::now();
            let answer = exchange(&app, "GET /api/v1/health/live HTTP/1.1\r\nHost: x\r\n").await;
            assert!(answer.closed, "the connection is closed");
            assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
            // actix answers 408 itself, with no body, when it can.
            assert!(
                answer.text.is_empty() || answer.text.starts_with("HTTP/1.1 408"),
                "{}",
                answer.text
            );
        }

        async fn a_body_trickled_byte_by_byte_is_answered_408(app: TestApp) {
            let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
            stream
                .write_all(
                    b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n\
                      Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
                )
                .await
                .unwrap();
            let (mut reader, mut writer) = stream.into_split();
            let trickle = tokio::spawn(async move {
                for _ in 0..99 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if writer.write_all(b" ").await.is_err() {
                        return;
                    }
                }
            });
            let started = Instant::now();
            let answer = read_answer(&mut reader).await;
            trickle.abort();
            answer.assert_problem(408);
            assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
            assert!(answer.closed, "the connection is closed");
            assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
        }

        async fn an_idle_connection_is_closed_after_the_keep_alive(app: TestApp) {
            let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
            stream
                .write_all(b"GET /api/v1/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut received = Vec::new();
            let mut buffer = [0_u8; 4096];
            // The answer, then nothing until the server closes.
            let started = loop {
                let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
                    .await
                    .expect("an answer")
                    .unwrap();
                assert!(read > 0, "the answer comes before the close");
                received.extend_from_slice(&buffer[..read]);
                let answer = RawAnswer::parse(&received, false);
                if answer.is_complete() {
                    assert_eq!(answer.status, 200, "{}", answer.text);
                    break Instant::now();
                }
            };
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
                .await
                .expect("the server closes the idle connection");
            assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
            let idle = started.elapsed();
            assert!(idle > Duration::from_millis(700) && idle < Duration::from_secs(3), "{idle:?}");
        }

        async fn a_socket_outlives_the_body_timeout(app: TestApp) {
            let registered = app.register("sam.edges", "patient").await;
            assert_eq!(registered.status(), 201);
            let token = app
                .login("sam.edges", PASSWORD)
                .await
                .json::<Value>()
                .await
                .unwrap()["access_token"]
                .as_str()
                .unwrap()
                .to_owned();
            let mut socket = app.socket(&token).await;
            tokio::time::sleep(Duration::from_millis(2_500)).await;
            socket.assert_quiet().await;
        }
    }
}

/// What a raw client got: the bytes read, and whether the server closed the connection.
#[derive(Debug)]
struct RawAnswer {
    status: u16,
    text: String,
    closed: bool,
}

impl RawAnswer {
    fn parse(received: &[u8], closed: bool) -> Self {
        let text = String::from_utf8_lossy(received).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Self {
            status,
            text,
            closed,
        }
    }

    /// Whether the head and as much body as it announces have arrived.
    fn is_complete(&self) -> bool {
        let Some((_, body)) = self.text.split_once("\r\n\r\n") else {
            return false;
        };
        let length: usize = self
            .header("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        body.len() >= length
    }

    fn header(&self, name: &str) -> Option<&str> {
        let head = self.text.split("\r\n\r\n").next()?;
        head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }

    fn assert_problem(&self, status: u16) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{}",
            self.text
        );
        let body = self
            .text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_default();
        let problem: Value = serde_json::from_str(body).expect("a JSON problem");
        assert_eq!(problem["status"], status, "{problem}");
    }
}

/// Sends `request` as it is on a new connection, and reads until the server closes it (or
/// five seconds pass).
async fn exchange(app: &TestApp, request: &str) -> RawAnswer {
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    // The server may answer and close before all is written: that is its right.
    let _ = stream.write_all(request.as_bytes()).await;
    read_answer(&mut stream).await
}

/// Reads until the server closes the connection, five seconds at most.
async fn read_answer(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> RawAnswer {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut received = Vec::new();
    let mut buffer = [0_u8; 8192];
    let closed = loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => break false,
            Ok(Ok(0) | Err(_)) => break true,
            Ok(Ok(read)) => received.extend_from_slice(&buffer[..read]),
        }
    };
    RawAnswer::parse(&received, closed)
}
