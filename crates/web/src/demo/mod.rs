//! `carehub demo`: a fresh demo clinic, seeded through the API's own rules, in a data
//! directory of its own that is never a real clinic's.
//!
//! The directory is the demo's when the demo made it: it holds a [`MARKER_FILE`]. A missing or
//! empty directory becomes the demo's; in the demo's, the database is deleted and seeded afresh
//! on every start; any other directory is refused and left untouched. A database named with
//! `--database-url` is never deleted: it is seeded only if it has no users.

mod clinic;
mod seed;

use std::io::ErrorKind;
use std::path::Path;

use anyhow::{Context as _, bail};

use carehub_domain::identity::UserFilter;
use carehub_domain::kernel::PageRequest;

pub use clinic::{DemoUser, PASSWORD, USERS};

use crate::settings::Settings;
use crate::startup::{Application, connect};

/// The demo's data directory unless one is given.
pub const DEMO_DATA_DIR: &str = "./demo-data";

/// The file that marks a data directory as the demo's, to be wiped on each start.
pub const MARKER_FILE: &str = "DEMO";

/// The files of the default SQLite database in the data directory.
const DATABASE_FILES: [&str; 4] = [
    "carehub.db",
    "carehub.db-wal",
    "carehub.db-shm",
    "carehub.db-journal",
];

/// What the demo seeded, for the welcome it prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoClinic {
    pub patients: usize,
    pub appointments: usize,
    /// Of the appointments, those today in the clinic's time zone.
    pub today: usize,
    pub lab_orders: usize,
    pub prescriptions: usize,
}

/// `settings` for the demo: its own data directory, [`DEMO_DATA_DIR`], unless one was given
/// (`--data-dir` or `CAREHUB_DATA_DIR`, whatever the global default).
pub fn settings(mut settings: Settings, data_dir_given: bool) -> Settings {
    if !data_dir_given {
        settings.data_dir = DEMO_DATA_DIR.into();
    }
    settings
}

/// Prepares the demo's data directory and database, builds the server and seeds the clinic;
/// the server is bound but not yet running.
///
/// # Errors
/// When the data directory is not the demo's, the database already has users, or the server
/// cannot be built or seeded.
pub async fn launch(settings: Settings) -> anyhow::Result<(Application, DemoClinic)> {
    claim_data_dir(&settings)?;
    ensure_no_users(&settings).await?;
    let application = Application::build(settings).await?;
    let clinic = seed::seed(application.state())
        .await
        .context("cannot seed the demo clinic")?;
    tracing::info!(
        patients = clinic.patients,
        appointments = clinic.appointments,
        lab_orders = clinic.lab_orders,
        prescriptions = clinic.prescriptions,
        "demo clinic seeded"
    );
    Ok((application, clinic))
}

/// Makes the data directory the demo's, or refuses it; in the demo's own, deletes the default
/// database so that it is seeded afresh.
fn claim_data_dir(settings: &Settings) -> anyhow::Result<()> {
    let dir = &settings.data_dir;
    if dir.join(MARKER_FILE).is_file() {
        if settings.database_url.is_none() {
            delete_database(dir)?;
        }
        return Ok(());
    }
    if !is_empty_or_missing(dir)? {
        bail!(
            "{} holds files but is not a demo directory (it has no {MARKER_FILE} file): the \
             demo neither seeds nor deletes anything there; name another with --data-dir",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER_FILE),
        "This directory belongs to `carehub demo`, which deletes its database and seeds a \
         fresh demo clinic on every start.\n",
    )
    .with_context(|| format!("cannot mark {} as the demo's", dir.display()))
}

fn is_empty_or_missing(dir: &Path) -> anyhow::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", dir.display())),
    }
}

fn delete_database(dir: &Path) -> anyhow::Result<()> {
    for file in DATABASE_FILES {
        let path = dir.join(file);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot delete {}", path.display()));
            }
            _ => {}
        }
    }
    tracing::info!(dir = %dir.display(), "previous demo database deleted");
    Ok(())
}

/// Refuses a database that has users: demo data never mixes with a clinic's.
async fn ensure_no_users(settings: &Settings) -> anyhow::Result<()> {
    let database = connect(settings).await?;
    let users = database
        .repositories()
        .users
        .list(UserFilter::default(), PageRequest::first(1))
        .await;
    database.close().await;
    if !users.context("cannot count the users")?.items.is_empty() {
        bail!(
            "the database already has users: the demo seeds only an empty database, so that \
             demo data never mixes with a clinic's (use the demo's own data directory, or \
             --database-url with an empty database)"
        );
    }
    Ok(())
}

impl DemoClinic {
    /// What was seeded, where to go, and who may sign in with which password.
    pub fn welcome(&self, url: &str) -> String {
        let mut text = format!(
            "\nCareHub demo clinic: {} patients, {} appointments this week ({} today), a \
             referral waiting for dr.house, {} lab orders (a critical result for dr.house, an \
             ECG for dr.grey), {} prescriptions.\nOpen {url} and sign in as any of:\n\n",
            self.patients, self.appointments, self.today, self.lab_orders, self.prescriptions
        );
        text.push_str(&format!(
            "  {:<14} {:<11} {:<14} {}\n",
            "username", "role", "name", "password"
        ));
        for user in USERS {
            text.push_str(&format!(
                "  {:<14} {:<11} {:<14} {PASSWORD}\n",
                user.username, user.role, user.full_name
            ));
        }
        text
    }
}
