//! `carehub keys rotate` and `carehub keys list`: the ring of token signing keys, in the
//! database the settings name, changed and read while servers run. Servers pick a rotation up
//! when they next read the ring. Private keys are never printed.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use jiff::Timestamp;

use carehub_domain::identity::{KeyStatus, KeySummary, SigningKeyService};
use carehub_infra::Database;
use carehub_infra::identity::{generate_key, read_key_file};

use crate::settings::Settings;
use crate::startup::{connect, install_signing_keys, signing_key_service};

/// Adds a new key to the ring, generated or read from `from_file` (PKCS#8 PEM), as the key
/// that signs; returns what changed, for people. An empty ring is first started as a server
/// would start it, so that the key servers signed with until now stays valid.
///
/// # Errors
/// When the key cannot be had, is in the ring already, or the database fails.
pub async fn rotate(settings: &Settings, from_file: Option<&Path>) -> anyhow::Result<String> {
    let key = match from_file {
        Some(path) => read_key_file(path)?,
        None => generate_key()?,
    };
    with_keys(settings, async |keys| {
        if keys.ring().await?.is_empty() {
            install_signing_keys(settings, keys).await?;
        }
        let kid = key.kid.clone();
        keys.rotate(key.kid, key.pem)
            .await
            .context("cannot add the key to the ring")?;
        tracing::info!(%kid, "signing key added to the ring");
        let mut report = format!(
            "added signing key {kid}: servers sign with it once they read the ring again \
             (every {} s)\n",
            settings.keys_reload_secs
        );
        for summary in keys.list().await? {
            if let KeyStatus::Verifying { until } = summary.status {
                let _ = writeln!(
                    report,
                    "key {} verifies the tokens it signed until {}",
                    summary.kid,
                    seconds(until)
                );
            }
        }
        Ok(report)
    })
    .await
}

/// The keys of the ring, newest first: id, when added, and status.
///
/// # Errors
/// When the database fails.
pub async fn list(settings: &Settings) -> anyhow::Result<String> {
    with_keys(settings, async |keys| Ok(listing(&keys.list().await?))).await
}

/// A table of `keys` (oldest first, as listed), newest first.
pub fn listing(keys: &[KeySummary]) -> String {
    if keys.is_empty() {
        return "no signing keys yet: a server adds the first when it starts\n".to_owned();
    }
    let width = keys
        .iter()
        .map(|key| key.kid.as_str().len())
        .max()
        .unwrap_or(0)
        .max("KID".len());
    let mut table = format!("{:<width$}  {:<20}  STATUS\n", "KID", "CREATED");
    for key in keys.iter().rev() {
        let status = match key.status {
            KeyStatus::Signing => "signing".to_owned(),
            KeyStatus::Verifying { until } => format!("verifying until {}", seconds(until)),
            KeyStatus::Retired { since } => format!("retired since {}", seconds(since)),
        };
        let _ = writeln!(
            table,
            "{:<width$}  {:<20}  {status}",
            key.kid.as_str(),
            seconds(key.created_at)
        );
    }
    table
}

/// `at` to the second, in UTC.
fn seconds(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Runs `work` on the ring of the configured database, closing the database afterwards.
async fn with_keys(
    settings: &Settings,
    work: impl AsyncFnOnce(&SigningKeyService) -> anyhow::Result<String>,
) -> anyhow::Result<String> {
    let database: Database = connect(settings).await?;
    let keys = signing_key_service(settings, &database.repositories());
    let done = work(&keys).await;
    database.close().await;
    done
}
