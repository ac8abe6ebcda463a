//! Sending e-mails with lettre: over SMTP when a mail server is configured, else as `.eml`
//! files in a directory, so that the embedded default needs no mail server.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use carehub_domain::notifications::{MailError, Mailer, OutgoingEmail};

/// How long one SMTP conversation may take before the attempt fails (and is retried).
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where e-mails go.
#[derive(Debug, Clone)]
pub enum MailSettings {
    /// A mail server: `smtp://host:port` (plain, as a local relay speaks), `smtps://host`
    /// (TLS), or `smtp://host?tls=required` (STARTTLS), with credentials in the URL
    /// (`smtp://user:password@host`) or given apart.
    Smtp {
        url: String,
        username: Option<String>,
        password: Option<String>,
    },
    /// One `.eml` file per e-mail, in this directory.
    Files(PathBuf),
}

/// Sends e-mails from `from` as `settings` say.
#[derive(Clone)]
pub struct LettreMailer {
    from: Mailbox,
    transport: Transport,
}

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

impl std::fmt::Debug for LettreMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let transport = match self.transport {
            Transport::Smtp(_) => "smtp",
            Transport::Files(_) => "files",
        };
        f.debug_struct("LettreMailer")
            .field("from", &self.from.to_string())
            .field("transport", &transport)
            .finish()
    }
}

/// Why the mailer could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MailSetupError {
    #[error("the sender address `{0}` is not a mailbox")]
    From(String),
    #[error("the SMTP URL is invalid: {0}")]
    Url(#[source] lettre::transport::smtp::Error),
    #[error("cannot create the mail directory: {0}")]
    Directory(#[source] std::io::Error),
}

impl LettreMailer {
    /// # Errors
    /// [`MailSetupError`] when the sender or the URL is invalid, or the directory cannot be
    /// created.
    pub fn new(from: &str, settings: MailSettings) -> Result<Self, MailSetupError> {
        let from: Mailbox = from
            .parse()
            .map_err(|_| MailSetupError::From(from.to_owned()))?;
        let transport = match settings {
            MailSettings::Smtp {
                url,
                username,
                password,
            } => {
                let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
                    .map_err(MailSetupError::Url)?
                    .timeout(Some(SMTP_TIMEOUT));
                if let (Some(username), Some(password)) = (username, password) {
                    builder = builder.credentials(Credentials::new(username, password));
                }
                Transport::Smtp(builder.build())
            }
            MailSettings::Files(directory) => {
                std::fs::create_dir_all(&directory).map_err(MailSetupError::Directory)?;
                Transport::Files(AsyncFileTransport::<Tokio1Executor>::new(directory))
            }
        };
        Ok(Self { from, transport })
    }
}

#[async_trait]
impl Mailer for LettreMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        let to = Mailbox::new(
            Some(email.to_name.as_str().to_owned()),
            email.to.as_str().parse().map_err(MailError::new)?,
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(email.body.clone())
            .map_err(MailError::new)?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(drop)
                .map_err(|e| MailError::new(smtp_failure(&e))),
            Transport::Files(files) => files.send(message).await.map(drop).map_err(MailError::new),
        }
    }
}

/// What went wrong with the mail server, without its own words: a refusal often repeats the
/// recipient's address, which must not reach the logs or the job's stored error.
fn smtp_failure(error: &lettre::transport::smtp::Error) -> String {
    let code = error
        .status()
        .map(|code| format!(" ({code})"))
        .unwrap_or_default();
    if error.is_timeout() {
        "the mail server did not answer in time".to_owned()
    } else if error.is_permanent() {
        format!("the mail server refused it permanently{code}")
    } else if error.is_transient() {
        format!("the mail server refused it for now{code}")
    } else if error.is_tls() {
        "the TLS handshake with the mail server failed".to_owned()
    } else if error.is_response() || error.is_client() {
        "the mail server's conversation went wrong".to_owned()
    } else {
        // Connection failures: the cause is the socket's, which names no one.
        let cause = std::error::Error::source(error)
            .map(|source| format!(": {source}"))
            .unwrap_or_default();
        format!("cannot reach the mail server{cause}")
    }
}
