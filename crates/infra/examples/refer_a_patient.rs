//! The domain and its SQLite adapters used by another Rust service, without the web crate: open
//! a database, create two doctors, sign one in, register a patient on their care team, refer
//! the patient to the other doctor, and show the notification the other doctor got.
//!
//! ```sh
//! cargo run -p carehub-infra --example refer_a_patient
//! ```
//!
//! Everything is written to a fresh directory under the system's temporary directory, which
//! the example names when it ends.
#![allow(clippy::print_stdout)] // Printing what happened is what this example is for.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use jiff::SignedDuration;

use carehub_domain::access::Action;
use carehub_domain::audit::Gatekeeper;
use carehub_domain::identity::{
    FullName, IdentityConfig, IdentityPorts, IdentityService, KeyRetirement, NewAccount,
    SignInClient, SigningKeyService,
};
use carehub_domain::kernel::{Clock, SystemClock, Text};
use carehub_domain::notifications::{Notification, NotificationPublisher, NotificationService};
use carehub_domain::patients::{Contact, PatientDetails, PatientService, Sex};
use carehub_domain::referrals::{NewReferral, ReferralService, Urgency};
use carehub_infra::Database;
use carehub_infra::db::PoolSettings;
use carehub_infra::identity::{
    Argon2Hasher, JwtCodec, RandomRefreshTokens, TokenAudience, data_dir_key,
};

/// Tells this process about notifications once they are stored. A server hands them to its
/// WebSocket hub; a service with no sockets can do what it likes with them.
#[derive(Debug)]
struct PrintingPublisher;

#[async_trait]
impl NotificationPublisher for PrintingPublisher {
    async fn publish(&self, notifications: &[Notification]) {
        for notification in notifications {
            println!(
                "published to user {}: {} ({})",
                notification.recipient, notification.data.title, notification.kind
            );
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("carehub-example-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    for notification in refer_a_patient(&dir).await? {
        println!(
            "Dr Wilson's notification {}: {} ({}, referral {})",
            notification.id,
            notification.data.title,
            notification.kind,
            notification
                .data
                .referral_id
                .map_or_else(String::new, |id| id.to_string()),
        );
    }
    println!("the database is in {}", dir.display());
    Ok(())
}

/// Does it all in `dir`, and returns the notifications Dr Wilson finds.
async fn refer_a_patient(dir: &Path) -> anyhow::Result<Vec<Notification>> {
    // The database, migrated, and every repository on it.
    let database = Database::connect(
        &format!("sqlite:{}", dir.join("carehub.db").display()),
        PoolSettings::default(),
    )
    .await?;
    database.migrate().await?;
    let repositories = database.repositories();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);

    // Identity: accounts, passwords and tokens, signed by a ring of keys started with a key
    // generated into `dir`.
    let signing_keys = SigningKeyService::new(
        Arc::clone(&repositories.signing_keys),
        Arc::clone(&clock),
        KeyRetirement::new(SignedDuration::from_mins(15), SignedDuration::from_secs(10)),
    );
    let (key, _) = data_dir_key(dir)?;
    signing_keys.seed(key.kid, key.pem).await?;
    let codec = JwtCodec::load(
        signing_keys,
        TokenAudience {
            issuer: "carehub-example".into(),
            audience: "carehub-example".into(),
        },
    )
    .await?;
    let identity = IdentityService::new(
        IdentityPorts {
            users: Arc::clone(&repositories.users),
            refresh_tokens: Arc::clone(&repositories.refresh_tokens),
            revoked_tokens: Arc::clone(&repositories.revoked_tokens),
            login_attempts: Arc::clone(&repositories.login_attempts),
            trusted_devices: Arc::clone(&repositories.trusted_devices),
            hasher: Arc::new(Argon2Hasher::new(1).await?),
            access_tokens: Arc::new(codec),
            refresh_token_factory: Arc::new(RandomRefreshTokens),
            socket_tickets: Arc::clone(&repositories.socket_tickets),
            clock: Arc::clone(&clock),
        },
        IdentityConfig::default(),
    );
    let password = "a long clinic passphrase";
    identity
        .create_active_account(NewAccount::parse(
            "house",
            password,
            "Gregory House",
            None,
            "doctor",
        )?)
        .await?;
    let wilson = identity
        .create_active_account(NewAccount::parse(
            "wilson",
            password,
            "James Wilson",
            None,
            "doctor",
        )?)
        .await?;

    // Dr House signs in; what he does is done as the principal his token stands for.
    let signed_in = identity
        .login("house", password, &SignInClient::default())
        .await?;
    let principal = identity
        .authenticate(&signed_in.tokens.access_token)
        .await?;
    let house_acts = principal.actor(Some("example-1".into()));

    // The clinic's services, each on the ports it needs.
    let publisher: Arc<dyn NotificationPublisher> = Arc::new(PrintingPublisher);
    let gate = Gatekeeper::new(
        Arc::clone(&repositories.access_facts),
        Arc::clone(&repositories.audit),
        Arc::clone(&clock),
    );
    let patients = PatientService::new(
        gate.clone(),
        Arc::clone(&repositories.patients),
        Arc::clone(&repositories.users),
    );
    let referrals = ReferralService::new(
        gate.clone(),
        Arc::clone(&repositories.referrals),
        Arc::clone(&repositories.patients),
        Arc::clone(&repositories.medical),
        Arc::clone(&repositories.users),
        Arc::clone(&publisher),
    );
    let notifications = NotificationService::new(Arc::clone(&repositories.notifications), clock);

    // He registers a patient, which puts him on her care team, ...
    let grant = gate
        .authorize_role(&house_acts, Action::CreatePatient)
        .await?;
    let patient = patients
        .create_patient(
            &grant,
            PatientDetails {
                full_name: FullName::parse("Ada Lovelace")?,
                date_of_birth: jiff::civil::date(1985, 12, 10),
                sex: Sex::Female,
                contact: Contact::default(),
                identifiers: Vec::new(),
                insurance: None,
                emergency_contact: None,
                location: None,
                user_id: None,
            },
        )
        .await?;
    println!(
        "Dr House registered a patient, record number {}",
        patient.mrn
    );

    // ... and refers her to Dr Wilson, who is told in the same transaction.
    let referral = referrals
        .send_referral(
            &house_acts,
            NewReferral {
                patient_id: patient.id,
                to_doctor_id: wilson.id,
                reason: Text::multiline("Suspected lymphoma; please assess", 500)?,
                clinical_summary: Text::multiline(
                    "Night sweats and weight loss for a month.",
                    20_000,
                )?,
                urgency: Urgency::Urgent,
            },
        )
        .await?;
    println!(
        "referral {} is {}",
        referral.referral.id, referral.referral.status
    );

    // What Dr Wilson finds in his notifications.
    let found = notifications.list(wilson.id, None, false, None).await?;
    database.close().await;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use carehub_domain::notifications::NotificationKind;

    use super::refer_a_patient;

    #[tokio::test]
    async fn the_referred_doctor_is_told_of_the_referral() {
        let dir = std::env::temp_dir().join(format!("carehub-example-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let found = refer_a_patient(&dir).await.expect("the example runs");
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].kind, NotificationKind::ReferralReceived);
        assert_eq!(found[0].data.title, "Urgent referral from Dr Gregory House");
        assert!(found[0].data.referral_id.is_some());
    }
}
