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

pub mod browser;
pub mod clinic;
pub mod jobs;
pub mod lab;
pub mod schedule;
pub mod smtp;
pub mod ws;

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

/// Like [`backend_tests!`], for servers started with extra command-line settings:
/// `backend_tests_with! { ["--login-failure-window-secs", "2"]; async fn name(app: TestApp) {...} }`.
/// Use it inside its own module, as it too defines `sqlite` and `postgres` modules.
#[macro_export]
macro_rules! backend_tests_with {
    ($args:expr; $($(#[$meta:meta])* async fn $name:ident($app:ident: $app_type:ty) $body:block)+) => {
        $(
            $(#[$meta])*
            async fn $name($app: $app_type) $body
        )+

        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let args: &[&str] = &$args;
                    if let Some(app) = $crate::TestApp::spawn_with($crate::Backend::Sqlite, args).await {
                        super::$name(app).await;
                    }
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let args: &[&str] = &$args;
                    if let Some(app) = $crate::TestApp::spawn_with($crate::Backend::Postgres, args).await {
                        super::$name(app).await;
                    }
                }
            )+
        }
    };
}

/// Runs each named test function, `async fn name(backend: Backend)`, on SQLite and on
/// PostgreSQL, as `sqlite::name` and `postgres::name`: for tests that start their servers
/// themselves (with settings known only once the test runs).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name($crate::Backend::Sqlite).await;
            })+
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                super::$name($crate::Backend::Postgres).await;
            })+
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
    stopper: carehub_web::startup::Stopper,
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
        let data_dir =
            std::env::temp_dir().join(format!("carehub-app-{}", Uuid::new_v4().simple()));
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
        // Every test client comes from 127.0.0.1: per-address limits are set high unless the
        // test sets them.
        for (flag, value) in [
            ("--registrations-per-address", "1000000"),
            ("--login-max-failures-per-address", "1000000"),
        ] {
            if !extra.contains(&flag) {
                args.extend_from_slice(&[flag, value]);
            }
        }
        args.extend_from_slice(extra);
        let settings = Settings::parse_from_args(args).expect("valid test settings");
        let application = Application::build(settings.clone())
            .await
            .expect("the server starts");
        let port = application.port();
        let handle = application.handle();
        let stopper = application.stopper();
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
            stopper,
            _database: database,
        })
    }

    /// Stops the server as on SIGTERM: its sockets are closed first, then requests drain.
    pub async fn stop_gracefully(&self) {
        self.stopper.stop().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// The PEM of the key the server signs with until a rotation: the key generated into its
    /// data directory, which started the ring of signing keys.
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

    pub async fn put_json(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut request = self.client.put(self.url(path)).json(body);
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
        assert_eq!(
            response.status(),
            200,
            "sign-in of {username} should succeed"
        );
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
    pub async fn active_user(
        &self,
        username: &str,
        role: &str,
        admin_token: &str,
    ) -> (Uuid, Tokens) {
        let response = self.register(username, role).await;
        assert_eq!(
            response.status(),
            201,
            "registration of {username} should succeed"
        );
        let user: Value = response.json().await.expect("a user");
        let id: Uuid = user["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("an id");
        if user["status"] == "pending" {
            let approved = self
                .post_json(
                    &format!("/api/v1/admin/users/{id}/approve"),
                    Some(admin_token),
                    &json!({}),
                )
                .await;
            assert_eq!(
                approved.status(),
                200,
                "approval of {username} should succeed"
            );
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

/// Another server on the same database and signing key as a [`TestApp`], as a second
/// `carehub serve` process of a deployment would be. Drop it before the [`TestApp`], which
/// removes the database.
#[derive(Debug)]
pub struct Instance {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    pub port: u16,
    handle: ServerHandle,
}

impl Instance {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

impl TestApp {
    /// Starts another server with this one's settings (database, data directory and so
    /// signing key) on a new port.
    ///
    /// # Panics
    /// When the server cannot start.
    pub async fn another_instance(&self) -> Instance {
        self.another_instance_with(self.settings.clone()).await
    }

    /// Starts another server with `settings`, which should name this one's database, on a new
    /// port.
    ///
    /// # Panics
    /// When the server cannot start.
    pub async fn another_instance_with(&self, settings: Settings) -> Instance {
        let application = Application::build(settings)
            .await
            .expect("the second server starts");
        let port = application.port();
        let handle = application.handle();
        tokio::spawn(application.run_until_stopped());
        Instance {
            address: format!("http://127.0.0.1:{port}"),
            port,
            handle,
        }
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

/// The body `register` sends, for tests that change one field of it.
pub fn registration(username: &str, role: &str) -> Value {
    json!({
        "username": username,
        "password": PASSWORD,
        "full_name": format!("Test {username}"),
        "email": format!("{username}@clinic.example"),
        "role": role,
    })
}

/// A response header as text, if present.
pub fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Asserts that `response` is a problem document with `status` and the type
/// `urn:carehub:problem:{slug}`, and returns its body.
pub async fn assert_problem_type(response: Response, status: u16, slug: &str) -> Value {
    let body = assert_problem(response, status).await;
    assert_eq!(
        body["type"],
        format!("urn:carehub:problem:{slug}"),
        "unexpected problem type in {body}"
    );
    body
}

/// Asserts a 401 problem that carries a `WWW-Authenticate: Bearer` challenge, and returns its
/// body.
pub async fn assert_unauthorized(response: Response) -> Value {
    let challenge = header(&response, "www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer"),
        "a 401 must carry a Bearer challenge, got {challenge:?} (status {})",
        response.status()
    );
    assert_problem_type(response, 401, "unauthorized").await
}

/// Asserts a 403 problem, and returns its body.
pub async fn assert_forbidden(response: Response) -> Value {
    assert_problem_type(response, 403, "forbidden").await
}

/// Asserts an OAuth 2.0 token endpoint error (RFC 6749 section 5.2): a 400 problem carrying
/// `error` = `code`. Returns its body.
pub async fn assert_oauth_error(response: Response, code: &str) -> Value {
    let body = assert_problem_type(response, 400, "oauth").await;
    assert_eq!(body["error"], code, "unexpected OAuth error in {body}");
    assert!(
        body["error_description"].is_string(),
        "no error_description in {body}"
    );
    body
}

/// Asserts that `user` is a user as the API shows them: exactly the documented fields, and
/// nothing that looks like a password or its hash.
pub fn assert_user_view(user: &Value) {
    let keys: std::collections::BTreeSet<&str> = user
        .as_object()
        .unwrap_or_else(|| panic!("a user object was expected, got {user}"))
        .keys()
        .map(String::as_str)
        .collect();
    let expected: std::collections::BTreeSet<&str> = [
        "id",
        "username",
        "full_name",
        "email",
        "role",
        "status",
        "created_at",
    ]
    .into();
    assert_eq!(keys, expected, "unexpected user fields in {user}");
    assert!(
        user["id"]
            .as_str()
            .and_then(|id| id.parse::<Uuid>().ok())
            .is_some()
    );
    assert!(
        user["created_at"]
            .as_str()
            .and_then(|at| time::OffsetDateTime::parse(
                at,
                &time::format_description::well_known::Rfc3339
            )
            .ok())
            .is_some(),
        "created_at must be RFC 3339 in {user}"
    );
    assert_no_secrets(user);
}

/// Asserts that no password, hash or argon2 string appears anywhere in `value`.
pub fn assert_no_secrets(value: &Value) {
    let text = value.to_string().to_lowercase();
    for secret in ["password", "hash", "argon2", PASSWORD] {
        assert!(
            !text.contains(secret),
            "{secret:?} must not appear in {value}"
        );
    }
}

/// The id of a user document.
pub fn id_of(user: &Value) -> Uuid {
    user["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no id in {user}"))
}

impl TestApp {
    /// `GET /api/v1/users/me` with `token`.
    pub async fn me(&self, token: &str) -> Response {
        self.get("/api/v1/users/me", Some(token)).await
    }

    /// `POST /api/v1/auth/refresh` with `refresh_token`.
    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_json(
            "/api/v1/auth/refresh",
            None,
            &json!({ "refresh_token": refresh_token }),
        )
        .await
    }

    /// Refreshes, panicking unless a new pair comes back.
    pub async fn refreshed(&self, refresh_token: &str) -> Tokens {
        let response = self.refresh(refresh_token).await;
        assert_eq!(response.status(), 200, "the refresh should succeed");
        response.json().await.expect("a token response")
    }

    /// `POST /api/v1/auth/logout` with `token`, with no body at all or with a JSON `body`.
    pub async fn logout(&self, token: &str, body: Option<&Value>) -> Response {
        match body {
            Some(body) => {
                self.post_json("/api/v1/auth/logout", Some(token), body)
                    .await
            }
            None => self
                .client
                .post(self.url("/api/v1/auth/logout"))
                .bearer_auth(token)
                .send()
                .await
                .expect("request sent"),
        }
    }

    /// Creates an active staff account through `POST /api/v1/admin/users`, returning it.
    pub async fn create_staff(&self, admin_token: &str, username: &str, role: &str) -> Value {
        let response = self
            .post_json(
                "/api/v1/admin/users",
                Some(admin_token),
                &registration(username, role),
            )
            .await;
        assert_eq!(
            response.status(),
            201,
            "creation of {username} should succeed"
        );
        response.json().await.expect("a user")
    }

    /// Changes an account through `PATCH /api/v1/admin/users/{id}`, panicking unless it succeeds.
    pub async fn update_user(&self, admin_token: &str, id: Uuid, changes: &Value) -> Value {
        let response = self
            .patch_json(
                &format!("/api/v1/admin/users/{id}"),
                Some(admin_token),
                changes,
            )
            .await;
        assert_eq!(
            response.status(),
            200,
            "the change {changes} of {id} should succeed"
        );
        response.json().await.expect("a user")
    }

    /// Every user matching `filter` (a query string such as `role=doctor`, maybe empty), read
    /// page by page with `limit`, following `next_cursor` to the end.
    pub async fn all_users(&self, admin_token: &str, filter: &str, limit: u32) -> Vec<Value> {
        self.all_pages("/api/v1/admin/users", admin_token, filter, limit)
            .await
    }

    /// Every item of a paged list at `path`, following `next_cursor` to the end.
    pub async fn all_pages(&self, path: &str, token: &str, filter: &str, limit: u32) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let mut query = format!("limit={limit}");
            if !filter.is_empty() {
                query = format!("{filter}&{query}");
            }
            if let Some(cursor) = &cursor {
                query = format!("{query}&cursor={cursor}");
            }
            let response = self.get(&format!("{path}?{query}"), Some(token)).await;
            assert_eq!(
                response.status(),
                200,
                "listing {path}?{query} should succeed"
            );
            let page: Value = response.json().await.expect("a page");
            let page_items = page["items"].as_array().expect("items").clone();
            assert!(
                page_items.len() <= limit as usize,
                "a page holds at most {limit} items"
            );
            match page["next_cursor"].as_str() {
                Some(next) => {
                    assert_eq!(
                        page_items.len(),
                        limit as usize,
                        "only the last page may be short"
                    );
                    cursor = Some(next.to_owned());
                    items.extend(page_items);
                }
                None => {
                    assert!(
                        page["next_cursor"].is_null(),
                        "next_cursor is a string or null"
                    );
                    assert!(
                        cursor.is_none() || !page_items.is_empty(),
                        "a next_cursor never leads to an empty page"
                    );
                    items.extend(page_items);
                    return items;
                }
            }
        }
        panic!("{path} never reached its last page");
    }

    /// The account `id` as an administrator's listing shows it.
    pub async fn user_by_id(&self, admin_token: &str, id: Uuid) -> Value {
        self.all_users(admin_token, "", 100)
            .await
            .into_iter()
            .find(|user| id_of(user) == id)
            .unwrap_or_else(|| panic!("no user {id} in the listing"))
    }

    /// Whether an account named `username` exists, as an administrator's listing shows.
    pub async fn username_exists(&self, admin_token: &str, username: &str) -> bool {
        self.all_users(admin_token, "", 100)
            .await
            .iter()
            .any(|user| {
                user["username"]
                    .as_str()
                    .is_some_and(|u| u.eq_ignore_ascii_case(username))
            })
    }

    /// The published JSON Web Key Set.
    pub async fn jwks(&self) -> Value {
        let response = self.get("/.well-known/jwks.json", None).await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("a key set")
    }
}
