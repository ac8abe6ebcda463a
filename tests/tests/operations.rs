//! Operations: health checks, Prometheus metrics, the public key set, the OpenAPI document,
//! the offline Swagger UI, and problem documents for routes that do not exist.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use serde_json::{Value, json};
use uuid::Uuid;

use carehub_tests::{TestApp, assert_problem_type, backend_tests, header};

/// The value of the counter line whose labels include all of `labels`.
fn counter(metrics: &str, labels: &[&str]) -> Option<u64> {
    metrics
        .lines()
        .filter(|line| line.starts_with("http_requests_total{"))
        .find(|line| labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

backend_tests! {
    async fn liveness_answers_ok(app: TestApp) {
        let response = app.get("/api/v1/health/live", None).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({ "status": "ok" }));
    }

    async fn readiness_names_the_database_that_answers(app: TestApp) {
        let response = app.get("/api/v1/health/ready", None).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        let backend = match app.backend {
            carehub_tests::Backend::Sqlite => "sqlite",
            carehub_tests::Backend::Postgres => "postgres",
        };
        assert_eq!(body, json!({ "status": "ok", "database": backend }));
    }

    async fn metrics_count_requests_by_route_pattern_and_status(app: TestApp) {
        for _ in 0..3 {
            assert_eq!(app.get("/api/v1/health/live", None).await.status(), 200);
        }
        let secret_id = Uuid::now_v7();
        let approve = app
            .post_json(
                &format!("/api/v1/admin/users/{secret_id}/approve"),
                None,
                &json!({}),
            )
            .await;
        assert_eq!(approve.status(), 401);
        assert_eq!(app.get("/no/such/route-xyz", None).await.status(), 404);

        let response = app.get("/metrics", None).await;
        assert_eq!(response.status(), 200);
        assert!(
            header(&response, "content-type")
                .unwrap()
                .starts_with("text/plain")
        );
        let metrics = response.text().await.unwrap();
        assert!(
            metrics.contains("# TYPE http_requests_total counter"),
            "{metrics}"
        );
        assert_eq!(
            counter(
                &metrics,
                &[
                    r#"method="GET""#,
                    r#"route="/api/v1/health/live""#,
                    r#"status="200""#
                ]
            ),
            Some(3),
            "{metrics}"
        );
        assert_eq!(
            counter(
                &metrics,
                &[
                    r#"method="POST""#,
                    r#"route="/api/v1/admin/users/{id}/approve""#,
                    r#"status="401""#
                ]
            ),
            Some(1),
            "{metrics}"
        );
        assert_eq!(
            counter(&metrics, &[r#"route="unmatched""#, r#"status="404""#]),
            Some(1),
            "{metrics}"
        );
        assert!(
            metrics.contains("http_request_duration_seconds_bucket{"),
            "latencies are recorded"
        );
        // Labels hold route patterns, never raw paths with identifiers in them.
        assert!(!metrics.contains(&secret_id.to_string()));
        assert!(!metrics.contains("route-xyz"));
    }

    async fn the_jwks_publishes_the_ed25519_public_key_and_nothing_private(app: TestApp) {
        let response = app.get("/.well-known/jwks.json", None).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            header(&response, "content-type").as_deref(),
            Some("application/jwk-set+json")
        );
        let jwks: Value = response.json().await.unwrap();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1);
        let key = &keys[0];
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["crv"], "Ed25519");
        assert_eq!(key["alg"], "EdDSA");
        assert_eq!(key["use"], "sig");
        assert!(!key["kid"].as_str().unwrap().is_empty());
        assert!(
            key.get("d").is_none(),
            "the private key must never be published: {key}"
        );

        // `x` is the public half of the key the server signs with.
        let signing = SigningKey::from_pkcs8_pem(&app.signing_key_pem()).unwrap();
        let x = URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap();
        assert_eq!(x.as_slice(), signing.verifying_key().as_bytes().as_slice());
        let private = URL_SAFE_NO_PAD.encode(signing.to_bytes());
        assert!(!jwks.to_string().contains(&private));

        // Access tokens name this key.
        assert_eq!(app.register("kid.check", "patient").await.status(), 201);
        let tokens = app.tokens("kid.check").await;
        let token_header = jsonwebtoken::decode_header(&tokens.access_token).unwrap();
        assert_eq!(token_header.kid.as_deref(), key["kid"].as_str());
    }

    async fn the_openapi_document_lists_every_route(app: TestApp) {
        let response = app.get("/api/v1/openapi.json", None).await;
        assert_eq!(response.status(), 200);
        assert!(
            header(&response, "content-type")
                .unwrap()
                .starts_with("application/json")
        );
        let doc: Value = response.json().await.unwrap();
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3.1"),
            "{}",
            doc["openapi"]
        );

        let secured = [
            ("/api/v1/auth/logout", "post"),
            ("/api/v1/users/me", "get"),
            ("/api/v1/doctors", "get"),
            ("/api/v1/admin/users", "get"),
            ("/api/v1/admin/users", "post"),
            ("/api/v1/admin/users/{id}/approve", "post"),
            ("/api/v1/admin/users/{id}", "patch"),
        ];
        let public = [
            ("/api/v1/auth/register", "post"),
            ("/api/v1/auth/login", "post"),
            ("/api/v1/auth/token", "post"),
            ("/api/v1/auth/refresh", "post"),
            ("/api/v1/health/live", "get"),
            ("/api/v1/health/ready", "get"),
            ("/api/v1/openapi.json", "get"),
            ("/metrics", "get"),
            ("/.well-known/jwks.json", "get"),
        ];
        for (path, method) in secured.iter().chain(&public) {
            let operation = &doc["paths"][path][method];
            assert!(
                operation.is_object(),
                "{method} {path} is missing from the document"
            );
            assert!(
                operation["responses"].is_object(),
                "{method} {path} documents its responses"
            );
        }
        for (path, method) in secured {
            let schemes: Vec<&str> = doc["paths"][path][method]["security"]
                .as_array()
                .unwrap_or_else(|| panic!("{method} {path} declares its security"))
                .iter()
                .flat_map(|requirement| requirement.as_object().unwrap().keys().map(String::as_str))
                .collect();
            assert!(
                schemes.contains(&"bearer") && schemes.contains(&"oauth2"),
                "{method} {path}: {schemes:?}"
            );
        }

        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["bearer"]["type"], "http");
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
        assert_eq!(schemes["oauth2"]["type"], "oauth2");
        assert_eq!(
            schemes["oauth2"]["flows"]["password"]["tokenUrl"],
            "/api/v1/auth/token"
        );
    }

    async fn the_docs_redirect_to_a_swagger_ui_that_needs_no_network(app: TestApp) {
        let response = app.get("/docs", None).await;
        assert!(response.status().is_redirection(), "{}", response.status());
        assert_eq!(header(&response, "location").as_deref(), Some("/docs/"));

        let response = app.get("/docs/", None).await;
        assert_eq!(response.status(), 200);
        assert!(
            header(&response, "content-type")
                .unwrap()
                .starts_with("text/html")
        );
        let html = response.text().await.unwrap();
        assert!(html.contains("swagger-ui"), "{html}");
        for external in ["http://", "https://", "//cdn", "unpkg", "jsdelivr"] {
            assert!(
                !html.contains(external),
                "the page loads {external} assets: {html}"
            );
        }

        // Its assets are served by the server itself, and it reads this API's document.
        for asset in [
            "swagger-ui-bundle.js",
            "swagger-ui.css",
            "swagger-initializer.js",
        ] {
            let response = app.get(&format!("/docs/{asset}"), None).await;
            assert_eq!(response.status(), 200, "{asset}");
        }
        let initializer = app
            .get("/docs/swagger-initializer.js", None)
            .await
            .text()
            .await
            .unwrap();
        assert!(
            initializer.contains("/api/v1/openapi.json"),
            "{initializer}"
        );
    }

    async fn unknown_routes_answer_with_a_problem_document(app: TestApp) {
        for path in [
            "/nope",
            "/api/v1/nope",
            "/api/v2/users/me",
            "/api/v1/admin/users/x/y/z",
        ] {
            let response = app.get(path, None).await;
            assert_eq!(
                header(&response, "x-content-type-options").as_deref(),
                Some("nosniff")
            );
            assert!(header(&response, "x-request-id").is_some());
            let problem = assert_problem_type(response, 404, "not-found").await;
            assert_eq!(problem["title"], "Not found");
        }
        // A known path asked with a method it does not take: 405, naming the ones it does.
        for (method, path, allow) in [
            (reqwest::Method::DELETE, "/api/v1/users/me", "GET"),
            (reqwest::Method::GET, "/api/v1/auth/login", "POST"),
            (reqwest::Method::PUT, "/api/v1/admin/users", "GET, POST"),
            (reqwest::Method::DELETE, "/api/v1/admin/users/00000000-0000-0000-0000-000000000000", "PATCH"),
        ] {
            let response = app.client.request(method, app.url(path)).send().await.unwrap();
            assert_eq!(header(&response, "allow").as_deref(), Some(allow), "{path}");
            assert_problem_type(response, 405, "method-not-allowed").await;
        }
    }
}
