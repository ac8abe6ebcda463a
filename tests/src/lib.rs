//! Black-box tests of the running CareHub server: each test starts the real server on a random
//! port, on its own SQLite file or PostgreSQL database, and talks HTTP to it.
//!
//! [`backend_tests!`] writes each test once and runs it on both backends, as
//! `sqlite::name` and `postgres::name`. PostgreSQL runs when `CAREHUB_TEST_POSTGRES_URL` is set
//! (it must be under CI).

use std::path::PathBuf;

use reqwest::{Client, Response};
use serde_json::{Value, json};
use uuid::Uuid;

pub use carehub_infra::testing::Backend;
use carehub_infra::testing::ScratchDatabase;
use carehub_web::{Application, ServerHandle, Settings};

/// A password that satisfies the rules for any test username.
pub const PASSWORD: &str = "correct horse battery staple";

/// Writes each test once and runs it on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! backend_tests {
    ($($(#[$meta:meta])* async fn $name:ident($app:ident: $app_type:ty) $body:block)+) => {
        $(
            $(#[$meta])*
            async fn $name($app: $app_type) $body
        )+

        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(app) = $crate::TestApp::spawn($crate::Backend::Sqlite).await {
                        super::$name(app).await;
                    }
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(app) = $crate::TestApp::spawn($crate::Backend::Postgres).await {
                        super::$name(app).await;
                    }
                }
            )+
        }
    };
}

/// A running server and a client for it.
#[derive(Debug)]
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    pub port: u16,
    pub backend: Backend,
    pub client: Client,
    pub settings: Settings,
    /// The directory holding the server's generated signing key.
    pub data_dir: PathBuf,
    handle: ServerHandle,
    _database: ScratchDatabase,
}

impl TestApp {
    /// Starts a server on `backend`, or `None` when that backend is not available here.
    ///
    /// # Panics
    /// When the server cannot start.
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, &[]).await
    }

    /// Starts a server with extra command-line settings (e.g. `["--access-token-ttl-secs", "2"]`).
    ///
    /// # Panics
    /// When the server cannot start.
    pub async fn spawn_with(backend: Backend, extra: &[&str]) -> Option<Self> {
        let database = ScratchDatabase::create(backend).await?;
        let data_dir = std::env::temp_dir().join(format!("carehub-app-{}", Uuid::new_v4().simple()));
        let data_dir_arg = data_dir.display().to_string();
        let mut args = vec![
            "carehub",
            "--bind",
            "127.0.0.1:0",
            "--database-url",
            &database.url,
            "--data-dir",
            &data_dir_arg,
            "--workers",
            "1",
            "--db-max-connections",
            "5",
            "--shutdown-timeout-secs",
            "1",
        ];
        args.extend_from_slice(extra);
        let settings = Settings::parse_from_args(args).expect("valid test settings");
        let application = Application::build(settings.clone())
            .await
            .expect("the server starts");
        let port = application.port();
        let handle = application.handle();
        tokio::spawn(application.run_until_stopped());
        Some(Self {
            address: format!("http://127.0.0.1:{port}"),
            port,
            backend,
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            settings,
            data_dir,
            handle,
            _database: database,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// The PEM of the key the server signs with (generated into its data directory).
    pub fn signing_key_pem(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("jwt-ed25519.pem")).expect("the generated key")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    pub async fn patch_json(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut request = self.client.patch(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn register(&self, username: &str, role: &str) -> Response {
        self.post_json(
            "/api/v1/auth/register",
            None,
            &json!({
                "username": username,
                "password": PASSWORD,
                "full_name": format!("Test {username}"),
                "email": format!("{username}@clinic.example"),
                "role": role,
            }),
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post_json(
            "/api/v1/auth/login",
            None,
            &json!({ "username": username, "password": password }),
        )
        .await
    }

    /// Signs in and returns the token response, panicking unless it succeeds.
    pub async fn tokens(&self, username: &str) -> Tokens {
        let response = self.login(username, PASSWORD).await;
        assert_eq!(response.status(), 200, "sign-in of {username} should succeed");
        response.json().await.expect("a token response")
    }

    /// Creates an active administrator the way `carehub admin create` does, and signs in.
    pub async fn admin(&self, username: &str) -> Tokens {
        let (database, identity, _) = carehub_web::startup::identity_on(&self.settings)
            .await
            .expect("the identity service");
        let account = carehub_domain::identity::NewAccount::parse(
            username,
            PASSWORD,
            &format!("Admin {username}"),
            None,
            "admin",
        )
        .expect("a valid administrator");
        identity
            .create_active_account(account)
            .await
            .expect("the administrator is created");
        database.close().await;
        self.tokens(username).await
    }

    /// Registers a user of `role`, approves them when staff (by `admin_token`), and signs in.
    pub async fn active_user(&self, username: &str, role: &str, admin_token: &str) -> (Uuid, Tokens) {
        let response = self.register(username, role).await;
        assert_eq!(response.status(), 201, "registration of {username} should succeed");
        let user: Value = response.json().await.expect("a user");
        let id: Uuid = user["id"].as_str().and_then(|s| s.parse().ok()).expect("an id");
        if user["status"] == "pending" {
            let approved = self
                .post_json(&format!("/api/v1/admin/users/{id}/approve"), Some(admin_token), &json!({}))
                .await;
            assert_eq!(approved.status(), 200, "approval of {username} should succeed");
        }
        (id, self.tokens(username).await)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Sends the stop command; the server winds down on its own threads.
        drop(self.handle.stop(false));
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// A token response.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: String,
    pub expires_in: i64,
}

/// Asserts that `response` is a problem document with `status`, and returns its body.
pub async fn assert_problem(response: Response, status: u16) -> Value {
    assert_eq!(response.status(), status, "unexpected status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/problem+json"),
        "a problem document was expected, got {content_type}"
    );
    let body: Value = response.json().await.expect("a JSON problem");
    assert_eq!(body["status"], status);
    assert!(body["title"].is_string());
    assert!(body["type"].is_string());
    body
}

/// The field names of a 422 problem's `errors`.
pub fn problem_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
