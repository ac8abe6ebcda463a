//! The server starts on both backends and answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use carehub_tests::{TestApp, backend_tests};

backend_tests! {
    async fn the_server_is_live_and_ready(app: TestApp) {
        let live = app.get("/api/v1/health/live", None).await;
        assert_eq!(live.status(), 200);
        let ready: serde_json::Value = app.get("/api/v1/health/ready", None).await.json().await.unwrap();
        assert_eq!(ready["status"], "ok");
        let expected = match app.backend {
            carehub_tests::Backend::Sqlite => "sqlite",
            carehub_tests::Backend::Postgres => "postgres",
        };
        assert_eq!(ready["database"], expected);
    }
}
