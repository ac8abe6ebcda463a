//! The `carehub` command line: `serve` (the default), `demo`, `admin create`, `backup`,
//! `keys rotate`, `keys list` and `ecg analyze`.

use std::io::IsTerminal as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use anyhow::{Context as _, bail};
use clap::parser::ValueSource;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

use carehub_domain::identity::NewAccount;
use carehub_infra::Database;
use carehub_infra::db::PoolSettings;

use crate::demo;
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

    /// Whether the data directory was given (`--data-dir` or `CAREHUB_DATA_DIR`) rather than
    /// left at its default; `demo` keeps to its own directory unless it was.
    #[arg(skip)]
    pub data_dir_given: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run migrations and serve the API (the default).
    Serve,
    /// Serve a fresh demo clinic, its users' passwords printed at start.
    ///
    /// The clinic has users of every role, patients with records and care teams, doctors'
    /// hours, this week's appointments and a referral waiting for dr.house, all made through
    /// the API's own rules.
    ///
    /// It keeps to its own data directory, `./demo-data` unless `--data-dir` or
    /// `CAREHUB_DATA_DIR` names another, marked as the demo's by a `DEMO` file. On every start
    /// the demo's database there is deleted and seeded afresh. A directory that holds other
    /// files but no `DEMO` file is refused and left untouched. With `--database-url` (or
    /// `CAREHUB_DATABASE_URL`) nothing is deleted: the demo seeds that database only if it has
    /// no users yet, and refuses otherwise.
    Demo,
    /// Manage accounts from the command line.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Write a consistent copy of the SQLite database to FILE while the server runs.
    ///
    /// The copy is one moment's snapshot, compacted, checked for integrity and readable by its
    /// owner only. It holds everything the database holds, the token signing keys included.
    /// Lab files and message attachments live in the file store and are backed up apart (see
    /// docs/operations.md). PostgreSQL is backed up with its own tools.
    Backup {
        /// Where the copy goes; it must not exist yet.
        file: std::path::PathBuf,
    },
    /// Rotate and list the keys that sign access tokens, in the database the settings name,
    /// while servers run.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Analyse ECG recordings, as the server does after an upload.
    Ecg {
        #[command(subcommand)]
        command: EcgCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum EcgCommand {
    /// Analyse one recording: a WFDB header (`X.hea`, its signal file beside it) or a CSV (one
    /// column of samples, or `time,value`).
    Analyze {
        /// `X.hea` or `X.csv`.
        file: std::path::PathBuf,
        /// Hz, for a CSV without a time column.
        #[arg(long)]
        sampling_rate: Option<f64>,
        /// Which lead of a WFDB record, from 0.
        #[arg(long, default_value_t = 0)]
        lead: usize,
        /// Print the result as JSON (the API's fields, beats included).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new Ed25519 signing key to the ring. Servers sign new access tokens with it once
    /// they read the ring again (every `CAREHUB_KEYS_RELOAD_SECS`); the key it supersedes still
    /// verifies the tokens it signed until they have expired, then retires.
    Rotate {
        /// Add this key (an Ed25519 private key in PKCS#8 PEM, such as `openssl genpkey
        /// -algorithm ed25519` writes) instead of generating one.
        #[arg(long, value_name = "PEM")]
        from_file: Option<std::path::PathBuf>,
    },
    /// List the keys, newest first: id, when added, and status (signing, verifying until a
    /// time, retired). Private keys are never shown.
    List,
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

impl Cli {
    /// The command line of this process; prints help or an error and exits when it is invalid.
    pub fn from_command_line() -> Self {
        Self::try_parse_args(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// The command line from these arguments and the environment, noting whether the data
    /// directory was given.
    ///
    /// # Errors
    /// When an argument or variable is invalid.
    pub fn try_parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Self::command().try_get_matches_from(args)?;
        let mut cli = Self::from_arg_matches(&matches)?;
        cli.data_dir_given = matches
            .value_source("data_dir")
            .is_some_and(|source| source != ValueSource::DefaultValue);
        Ok(cli)
    }
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
        Command::Demo => {
            let settings = demo::settings(cli.settings, cli.data_dir_given);
            serve_demo(settings).await
        }
        Command::Admin {
            command:
                AdminCommand::Create {
                    username,
                    full_name,
                    email,
                },
        } => create_admin(&cli.settings, &username, &full_name, email.as_deref()).await,
        Command::Backup { file } => backup(&cli.settings, &file).await,
        Command::Keys { command } => {
            let report = match command {
                KeysCommand::Rotate { from_file } => {
                    crate::keys_cli::rotate(&cli.settings, from_file.as_deref()).await?
                }
                KeysCommand::List => crate::keys_cli::list(&cli.settings).await?,
            };
            use std::io::Write as _;
            write!(std::io::stdout(), "{report}")?;
            Ok(())
        }
        Command::Ecg {
            command:
                EcgCommand::Analyze {
                    file,
                    sampling_rate,
                    lead,
                    json,
                },
        } => {
            let report = crate::ecg_cli::analyze(&file, sampling_rate, lead, json)?;
            use std::io::Write as _;
            writeln!(std::io::stdout(), "{report}")?;
            Ok(())
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let application = Application::build(settings).await?;
    run_until_signalled(application).await
}

/// Seeds the demo clinic, prints who may sign in and where, then serves as `serve` does.
async fn serve_demo(settings: Settings) -> anyhow::Result<()> {
    let bind = settings.bind;
    let (application, clinic) = demo::launch(settings).await?;
    let url = browser_url(bind, application.port());
    #[allow(clippy::print_stdout)]
    {
        println!("{}", clinic.welcome(&url));
    }
    run_until_signalled(application).await
}

/// Where a browser on this machine reaches a server bound to `bind`.
fn browser_url(bind: SocketAddr, port: u16) -> String {
    let ip = match bind.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/", SocketAddr::new(ip, port))
}

/// Serves until SIGINT or SIGTERM, then stops gracefully.
async fn run_until_signalled(application: Application) -> anyhow::Result<()> {
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

async fn backup(settings: &Settings, file: &std::path::Path) -> anyhow::Result<()> {
    let url = settings.database_url();
    let database = Database::connect_existing(&url, PoolSettings::default())
        .await
        .context("cannot open the database")?;
    let started = std::time::Instant::now();
    let written = database.backup_into(file).await;
    database.close().await;
    let bytes = written.context("cannot back up the database")?;
    tracing::info!(bytes, "backup written");
    #[allow(clippy::print_stdout)]
    {
        println!(
            "backed up the database into {} ({bytes} bytes, {:.1} s)",
            file.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
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
    let account = NewAccount::parse(username, &password, full_name, email, "admin")
        .map_err(|errors| anyhow::anyhow!("invalid administrator: {}", errors.listing()))?;
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn demo_data_dir(args: &[&str]) -> std::path::PathBuf {
        let cli = Cli::try_parse_args(args.iter().copied()).expect("a valid command line");
        demo::settings(cli.settings, cli.data_dir_given).data_dir
    }

    #[test]
    fn the_demo_keeps_to_its_own_data_directory_unless_one_is_given() {
        if std::env::var_os("CAREHUB_DATA_DIR").is_none() {
            assert_eq!(
                demo_data_dir(&["carehub", "demo"]),
                Path::new(demo::DEMO_DATA_DIR)
            );
        }
        assert_eq!(
            demo_data_dir(&["carehub", "demo", "--data-dir", "/tmp/mine"]),
            Path::new("/tmp/mine")
        );
        assert_eq!(
            demo_data_dir(&["carehub", "--data-dir", "./data", "demo"]),
            Path::new("./data")
        );
    }
}
