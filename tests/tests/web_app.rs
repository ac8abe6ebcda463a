//! The web app as the server delivers it: the page at `/` and its files under `/app/`, each with
//! the security headers, gzipped and revalidated by entity tag, every module the page loads
//! present, nothing else reachable.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use carehub_tests::{TestApp, assert_problem_type, backend_tests, header};

/// Asserts the headers every answer of the app carries.
fn assert_secured(response: &reqwest::Response) {
    let policy = header(response, "content-security-policy").expect("a CSP");
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    assert!(!policy.contains("unsafe"), "{policy}");
    assert_eq!(header(response, "x-frame-options").as_deref(), Some("DENY"));
    assert_eq!(
        header(response, "referrer-policy").as_deref(),
        Some("no-referrer")
    );
    assert_eq!(
        header(response, "x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(
        header(response, "cross-origin-opener-policy").as_deref(),
        Some("same-origin")
    );
    // The call page's camera and microphone, for the app's own pages only.
    assert_eq!(
        header(response, "permissions-policy").as_deref(),
        Some("camera=(self), microphone=(self), geolocation=(), payment=()")
    );
}

/// The relative modules a script imports (`from "./x.js"`).
fn imports(script: &str) -> Vec<String> {
    script
        .split("from \"./")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

backend_tests! {
    async fn the_page_is_served_at_the_root_with_no_inline_script(app: TestApp) {
        let response = app.get("/", None).await;
        assert_eq!(response.status(), 200);
        assert_secured(&response);
        assert_eq!(
            header(&response, "content-type").as_deref(),
            Some("text/html; charset=utf-8")
        );
        let page = response.text().await.unwrap();
        assert!(page.contains(r#"<script type="module" src="/app/main.js"></script>"#));
        assert_eq!(page.matches("<script").count(), 1, "one script, from a file");
        assert!(!page.contains("style="), "no inline style");
        assert!(!page.contains("//cdn") && !page.contains("https://"), "nothing from elsewhere");
    }

    async fn every_module_the_page_loads_is_served_as_javascript(app: TestApp) {
        let mut pending = vec!["main.js".to_owned()];
        let mut seen = Vec::new();
        while let Some(name) = pending.pop() {
            if seen.contains(&name) {
                continue;
            }
            let response = app.get(&format!("/app/{name}"), None).await;
            assert_eq!(response.status(), 200, "{name}");
            assert_secured(&response);
            let kind = header(&response, "content-type").unwrap();
            assert!(kind.ends_with("javascript; charset=utf-8"), "{name}: {kind}");
            pending.extend(imports(&response.text().await.unwrap()));
            seen.push(name);
        }
        assert!(seen.len() >= 4, "{seen:?}");
        let css = app.get("/app/app.css", None).await;
        assert_eq!(css.status(), 200);
        assert_eq!(
            header(&css, "content-type").as_deref(),
            Some("text/css; charset=utf-8")
        );
    }

    async fn files_are_gzipped_for_clients_that_take_it_and_revalidated_by_their_tag(app: TestApp) {
        let client = reqwest::Client::new();
        for path in ["/", "/app/main.js", "/app/app.css"] {
            let plain = app.get(path, None).await;
            assert_eq!(plain.status(), 200);
            assert_eq!(header(&plain, "content-encoding"), None, "{path}");
            assert_eq!(header(&plain, "cache-control").as_deref(), Some("no-cache"));
            let tag = header(&plain, "etag").expect("an entity tag");
            let body = plain.bytes().await.unwrap();

            let zipped = client
                .get(app.url(path))
                .header("accept-encoding", "gzip")
                .send()
                .await
                .unwrap();
            assert_eq!(zipped.status(), 200);
            assert_secured(&zipped);
            assert_eq!(header(&zipped, "content-encoding").as_deref(), Some("gzip"), "{path}");
            let compressed = zipped.bytes().await.unwrap();
            assert!(compressed.len() < body.len(), "{path}: {} of {}", compressed.len(), body.len());

            let again = client
                .get(app.url(path))
                .header("if-none-match", &tag)
                .send()
                .await
                .unwrap();
            assert_eq!(again.status(), 304, "{path}");
            assert_secured(&again);
            assert_eq!(header(&again, "etag").as_deref(), Some(tag.as_str()));
            assert!(again.bytes().await.unwrap().is_empty());

            let changed = client
                .get(app.url(path))
                .header("if-none-match", "\"another\"")
                .send()
                .await
                .unwrap();
            assert_eq!(changed.status(), 200, "{path}");
        }
    }

    async fn nothing_but_the_apps_files_is_served(app: TestApp) {
        for path in [
            "/app/no-such.js",
            "/app/../Cargo.toml",
            "/app/%2e%2e/Cargo.toml",
            "/app/",
        ] {
            let response = app.get(path, None).await;
            assert_problem_type(response, 404, "not-found").await;
        }
    }
}
