//! The `carehub` command line: `serve` (the default) and `admin create`.

use std::io::IsTerminal as _;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

use carehub_domain::identity::NewAccount;

use crate::settings::Settings;
use crate::startup::{Application, identity_on};

/// CareHub, a clinic backend.
#[derive(Debug, Parser)]
#[command(name = "carehub", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run migrations and serve the API (the default).
    Serve,
    /// Manage accounts from the command line.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an active administrator. The password is read from `CAREHUB_ADMIN_PASSWORD`
    /// or, on a terminal, prompted for.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        full_name: String,
        #[arg(long)]
        email: Option<String>,
    },
}

impl Settings {
    /// Settings from these arguments and the environment, as the binary would read them.
    ///
    /// # Errors
    /// When an argument or variable is invalid.
    pub fn parse_from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Cli::try_parse_from(args).map(|cli| cli.settings)
    }
}

/// Runs the command line.
///
/// # Errors
/// When the command fails; the binary prints the error and exits non-zero.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.settings).await,
        Command::Admin {
            command:
                AdminCommand::Create {
                    username,
                    full_name,
                    email,
                },
        } => create_admin(&cli.settings, &username, &full_name, email.as_deref()).await,
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let application = Application::build(settings).await?;
    let stopper = application.stopper();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested: closing sockets, finishing in-flight requests");
        stopper.stop().await;
    });
    application.run_until_stopped().await?;
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM; SIGINT only");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

async fn create_admin(
    settings: &Settings,
    username: &str,
    full_name: &str,
    email: Option<&str>,
) -> anyhow::Result<()> {
    let password = match std::env::var("CAREHUB_ADMIN_PASSWORD") {
        Ok(password) => password,
        Err(_) if std::io::stdin().is_terminal() => {
            let first = rpassword::prompt_password("Password for the new administrator: ")?;
            let again = rpassword::prompt_password("Repeat it: ")?;
            if first != again {
                bail!("the passwords differ");
            }
            first
        }
        Err(_) => {
            bail!("set CAREHUB_ADMIN_PASSWORD, or run on a terminal to be asked for the password")
        }
    };
    let account =
        NewAccount::parse(username, &password, full_name, email, "admin").map_err(|errors| {
            let list = errors
                .errors()
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            anyhow::anyhow!("invalid administrator: {list}")
        })?;
    let (database, identity, _) = identity_on(settings).await?;
    let created = identity.create_active_account(account).await;
    database.close().await;
    let user = created.context("cannot create the administrator")?;
    tracing::info!(user_id = %user.id, "administrator created");
    #[allow(clippy::print_stdout)]
    {
        println!("created administrator {} ({})", user.username, user.id);
    }
    Ok(())
}
