//! `carehub backup FILE`: a consistent copy of a live SQLite database, from which a server
//! starts with every account, record and signing key as they were at the copy, and nothing
//! later.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use carehub_tests::clinic::{PATIENTS, patient_input};
use carehub_tests::{Backend, PASSWORD, TestApp, id_of};
use carehub_web::cli::{Cli, run};
use carehub_web::{Application, Settings};
use serde_json::Value;

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("carehub-backup-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `carehub backup FILE` against the database of `app`, as the binary runs it.
async fn backup(database_url: &str, data_dir: &str, file: &str) -> anyhow::Result<()> {
    let cli = Cli::try_parse_args([
        "carehub",
        "--database-url",
        database_url,
        "--data-dir",
        data_dir,
        "backup",
        file,
    ])
    .unwrap();
    run(cli).await
}

#[tokio::test]
async fn a_backup_of_a_live_database_restores_what_it_held_and_nothing_later() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let admin = app.admin("backup.admin").await;
    let (_, doctor) = app
        .active_user("dr.backup", "doctor", &admin.access_token)
        .await;
    let response = app
        .post_json(
            PATIENTS,
            Some(&doctor.access_token),
            &patient_input("Kept Patient"),
        )
        .await;
    assert_eq!(response.status(), 201);
    let kept = id_of(&response.json::<Value>().await.unwrap());

    let dir = TempDir::new();
    let file = dir.0.join("carehub-backup.db");
    let data_dir = app.data_dir.display().to_string();
    backup(
        &app.settings.database_url(),
        &data_dir,
        file.to_str().unwrap(),
    )
    .await
    .expect("the backup is written while the server runs");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only its owner may read the backup");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no partial file is left: {leftovers:?}");

    // The server goes on; what it writes now is not in the copy.
    let response = app
        .post_json(
            PATIENTS,
            Some(&doctor.access_token),
            &patient_input("Later Patient"),
        )
        .await;
    assert_eq!(response.status(), 201);
    let later = id_of(&response.json::<Value>().await.unwrap());

    // An existing file is never overwritten.
    let again = backup(
        &app.settings.database_url(),
        &data_dir,
        file.to_str().unwrap(),
    )
    .await;
    assert!(again.is_err(), "the second backup into the same file fails");
    let restored_dir = dir.0.join("restored-data");
    let restored_dir = restored_dir.to_str().unwrap();

    // Restore: a server started on the copy.
    let url = format!("sqlite:{}", file.display());
    let settings = Settings::parse_from_args([
        "carehub",
        "--bind",
        "127.0.0.1:0",
        "--database-url",
        &url,
        "--data-dir",
        restored_dir,
        "--workers",
        "1",
    ])
    .unwrap();
    let restored = Application::build(settings)
        .await
        .expect("a server starts on the copy");
    let base = format!("http://127.0.0.1:{}", restored.port());
    let stopper = restored.stopper();
    let running = tokio::spawn(restored.run_until_stopped());

    let client = reqwest::Client::new();
    let signed_in = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({ "username": "dr.backup", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        signed_in.status(),
        200,
        "accounts and passwords are restored"
    );
    let token = signed_in.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let read = |id: uuid::Uuid| {
        client
            .get(format!("{base}/api/v1/patients/{id}"))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(
        read(kept).await.unwrap().status(),
        200,
        "the record is there"
    );
    // The signing keys are in the database: tokens issued before the copy still verify.
    let me = client
        .get(format!("{base}/api/v1/users/me"))
        .bearer_auth(&doctor.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        me.status(),
        200,
        "a token issued before the backup verifies"
    );
    assert_eq!(
        read(later).await.unwrap().status(),
        404,
        "what came after the copy is not"
    );

    stopper.stop().await;
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_missing_database_or_postgresql_is_refused_without_writing_anything() {
    let dir = TempDir::new();
    let file = dir.0.join("copy.db");
    let missing = format!("sqlite:{}", dir.0.join("nothing-here.db").display());
    let data_dir = dir.0.display().to_string();
    let error = backup(&missing, &data_dir, file.to_str().unwrap())
        .await
        .expect_err("no database to copy");
    assert!(
        format!("{error:#}").contains("cannot open the database"),
        "{error:#}"
    );
    assert!(
        !dir.0.join("nothing-here.db").exists(),
        "no empty database was made"
    );

    if let Ok(url) = std::env::var("CAREHUB_TEST_POSTGRES_URL") {
        let error = backup(&url, &data_dir, file.to_str().unwrap())
            .await
            .expect_err("PostgreSQL is backed up with its own tools");
        assert!(format!("{error:#}").contains("pg_dump"), "{error:#}");
    }
    assert!(!file.exists());
}
