//! Notifications by e-mail: which kinds each user also wants by e-mail, at which address, and
//! the e-mails themselves. An e-mail carries a notification's title and a link to the app,
//! never clinical text or a patient's name; the address is the user's word (nothing confirms
//! it yet).

use std::sync::Arc;

use async_trait::async_trait;

use crate::identity::{Email, FullName, Role, UserRepository, UserStatus, Username};
use crate::kernel::{RepositoryError, UserId};

use super::{NotificationError, NotificationKind, NotificationRepository};

/// Where a user's notifications also go by e-mail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmailPreferences {
    /// The address; without one, nothing is e-mailed.
    pub email: Option<Email>,
    /// The kinds also sent by e-mail, without repeats, in [`NotificationKind::ALL`] order.
    pub email_kinds: Vec<NotificationKind>,
}

impl EmailPreferences {
    /// Preferences for these kinds, repeats dropped, in a stable order.
    pub fn new(email: Option<Email>, kinds: impl IntoIterator<Item = NotificationKind>) -> Self {
        let chosen: Vec<NotificationKind> = kinds.into_iter().collect();
        Self {
            email,
            email_kinds: NotificationKind::ALL
                .iter()
                .copied()
                .filter(|kind| chosen.contains(kind))
                .collect(),
        }
    }

    /// Whether a notification of `kind` goes by e-mail too.
    pub fn wants(&self, kind: NotificationKind) -> bool {
        self.email.is_some() && self.email_kinds.contains(&kind)
    }
}

/// Stores users' e-mail preferences: the address is the account's own e-mail.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EmailPreferenceRepository: Send + Sync {
    /// The user's preferences, or `None` when there is no such user.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn get(&self, user: UserId) -> Result<Option<EmailPreferences>, RepositoryError>;

    /// Replaces the user's preferences (address and kinds) in one transaction; `false` when
    /// there is no such user.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn replace(
        &self,
        user: UserId,
        preferences: &EmailPreferences,
    ) -> Result<bool, RepositoryError>;
}

/// An e-mail to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub to: Email,
    pub to_name: FullName,
    pub subject: String,
    pub body: String,
}

/// Why an e-mail was not sent; the job retries it.
#[derive(Debug, thiserror::Error)]
#[error("the e-mail was not sent: {0}")]
pub struct MailError(#[source] pub Box<dyn std::error::Error + Send + Sync + 'static>);

impl MailError {
    pub fn new(cause: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self(cause.into())
    }
}

/// Hands e-mails to a mail server (or wherever the deployment keeps them).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Mailer: Send + Sync {
    /// # Errors
    /// [`MailError`] when the e-mail was not accepted; sending it again is safe.
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError>;
}

/// Why an e-mail job failed.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// What became of an e-mail job that did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailOutcome {
    Sent,
    /// Nothing to send any more: the notification or account is gone, the user removed their
    /// address, changed their mind about the kind, or is no longer active.
    Skipped(&'static str),
}

/// Sends the e-mails users asked for, and keeps their preferences.
#[derive(Clone)]
pub struct NotificationEmails {
    notifications: Arc<dyn NotificationRepository>,
    preferences: Arc<dyn EmailPreferenceRepository>,
    users: Arc<dyn UserRepository>,
    mailer: Arc<dyn Mailer>,
    /// Where the web app is, as linked from e-mails (ends with `/`).
    app_url: String,
}

impl std::fmt::Debug for NotificationEmails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationEmails")
            .field("app_url", &self.app_url)
            .finish_non_exhaustive()
    }
}

impl NotificationEmails {
    pub fn new(
        notifications: Arc<dyn NotificationRepository>,
        preferences: Arc<dyn EmailPreferenceRepository>,
        users: Arc<dyn UserRepository>,
        mailer: Arc<dyn Mailer>,
        app_url: &str,
    ) -> Self {
        let mut app_url = app_url.trim().to_owned();
        if !app_url.ends_with('/') {
            app_url.push('/');
        }
        Self {
            notifications,
            preferences,
            users,
            mailer,
            app_url,
        }
    }

    /// The caller's preferences.
    ///
    /// # Errors
    /// [`NotificationError::NotFound`] when the account is gone, `Internal`.
    pub async fn preferences(&self, user: UserId) -> Result<EmailPreferences, NotificationError> {
        self.preferences
            .get(user)
            .await?
            .ok_or(NotificationError::NotFound)
    }

    /// Replaces the caller's preferences and returns them as stored.
    ///
    /// # Errors
    /// [`NotificationError::NotFound`] when the account is gone, `Internal`.
    pub async fn set_preferences(
        &self,
        user: UserId,
        preferences: EmailPreferences,
    ) -> Result<EmailPreferences, NotificationError> {
        if !self.preferences.replace(user, &preferences).await? {
            return Err(NotificationError::NotFound);
        }
        Ok(preferences)
    }

    /// E-mails notification `id` to its recipient, if they still want it.
    ///
    /// # Errors
    /// [`EmailError`]: the job retries.
    pub async fn send_notification(
        &self,
        recipient: UserId,
        id: i64,
    ) -> Result<EmailOutcome, EmailError> {
        let Some(notification) = self.notifications.find(recipient, id).await? else {
            return Ok(EmailOutcome::Skipped("the notification is gone"));
        };
        let Some(user) = self.users.find_by_id(recipient).await? else {
            return Ok(EmailOutcome::Skipped("the account is gone"));
        };
        if user.status != UserStatus::Active {
            return Ok(EmailOutcome::Skipped("the account is not active"));
        }
        let Some(preferences) = self.preferences.get(recipient).await? else {
            return Ok(EmailOutcome::Skipped("the account is gone"));
        };
        let (Some(to), true) = (
            preferences.email.clone(),
            preferences.wants(notification.kind),
        ) else {
            return Ok(EmailOutcome::Skipped(
                "the user no longer wants it by e-mail",
            ));
        };
        let title = notification.data.title;
        let body = format!(
            "{title}\n\n\
             Sign in to CareHub to read it: {app}#/notifications\n\n\
             You get this e-mail because you asked CareHub to send \"{kind}\" notifications \
             by e-mail as well. You can change this in your notification preferences.\n",
            app = self.app_url,
            kind = notification.kind,
        );
        self.mailer
            .send(&OutgoingEmail {
                to,
                to_name: user.full_name,
                subject: title,
                body,
            })
            .await?;
        Ok(EmailOutcome::Sent)
    }

    /// Tells a staff member by e-mail that an administrator approved their account.
    ///
    /// # Errors
    /// [`EmailError`]: the job retries.
    pub async fn send_account_approved(&self, user: UserId) -> Result<EmailOutcome, EmailError> {
        let Some(user) = self.users.find_by_id(user).await? else {
            return Ok(EmailOutcome::Skipped("the account is gone"));
        };
        let Some(to) = user.email.clone() else {
            return Ok(EmailOutcome::Skipped("the account has no e-mail address"));
        };
        if user.status != UserStatus::Active {
            return Ok(EmailOutcome::Skipped("the account is not active"));
        }
        let body = approval_body(&user.full_name, user.role, &user.username, &self.app_url);
        self.mailer
            .send(&OutgoingEmail {
                to,
                to_name: user.full_name,
                subject: "Your CareHub account is approved".into(),
                body,
            })
            .await?;
        Ok(EmailOutcome::Sent)
    }
}

fn approval_body(name: &FullName, role: Role, username: &Username, app_url: &str) -> String {
    format!(
        "Hello {name},\n\n\
         An administrator approved your CareHub account ({role}). You can now sign in as \
         \"{username}\": {app_url}\n",
        name = name.as_str(),
        username = username.as_str(),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use jiff::Timestamp;

    use super::*;
    use crate::identity::{MockUserRepository, User};
    use crate::notifications::{MockNotificationRepository, Notification, NotificationData};

    const APP: &str = "https://carehub.clinic.example";

    fn doctor(status: UserStatus) -> User {
        User {
            id: UserId::generate(),
            username: Username::parse("dr.cuddy").expect("valid"),
            full_name: FullName::parse("Lisa Cuddy").expect("valid"),
            email: Some(Email::parse("cuddy@clinic.example").expect("valid")),
            role: Role::Doctor,
            status,
            created_at: Timestamp::UNIX_EPOCH,
        }
    }

    fn referral_received(recipient: UserId) -> Notification {
        Notification {
            id: 7,
            recipient,
            kind: NotificationKind::ReferralReceived,
            created_at: Timestamp::UNIX_EPOCH,
            read_at: None,
            data: NotificationData {
                title: "Urgent referral from Dr Gregory House".into(),
                referral_id: Some(uuid::Uuid::now_v7()),
                patient_id: Some(uuid::Uuid::now_v7()),
                ..NotificationData::default()
            },
        }
    }

    struct Fixture {
        notifications: MockNotificationRepository,
        preferences: MockEmailPreferenceRepository,
        users: MockUserRepository,
        sent: Arc<Mutex<Vec<OutgoingEmail>>>,
        mail_fails: bool,
    }

    impl Fixture {
        fn new(user: &User, notification: Option<Notification>, prefs: EmailPreferences) -> Self {
            let mut notifications = MockNotificationRepository::new();
            notifications
                .expect_find()
                .returning(move |_, _| Ok(notification.clone()));
            let mut users = MockUserRepository::new();
            let found = user.clone();
            users
                .expect_find_by_id()
                .returning(move |_| Ok(Some(found.clone())));
            let mut preferences = MockEmailPreferenceRepository::new();
            preferences
                .expect_get()
                .returning(move |_| Ok(Some(prefs.clone())));
            Self {
                notifications,
                preferences,
                users,
                sent: Arc::default(),
                mail_fails: false,
            }
        }

        fn service(self) -> (NotificationEmails, Arc<Mutex<Vec<OutgoingEmail>>>) {
            let mut mailer = MockMailer::new();
            let sent = Arc::clone(&self.sent);
            let fails = self.mail_fails;
            mailer.expect_send().returning(move |email| {
                if fails {
                    return Err(MailError::new("connection refused"));
                }
                sent.lock().expect("lock").push(email.clone());
                Ok(())
            });
            let service = NotificationEmails::new(
                Arc::new(self.notifications),
                Arc::new(self.preferences),
                Arc::new(self.users),
                Arc::new(mailer),
                APP,
            );
            (service, self.sent)
        }
    }

    fn wanting(user: &User, kinds: &[NotificationKind]) -> EmailPreferences {
        EmailPreferences::new(user.email.clone(), kinds.iter().copied())
    }

    #[tokio::test]
    async fn a_chosen_notification_is_emailed_with_its_title_and_a_link_to_the_app_only() {
        let user = doctor(UserStatus::Active);
        let notification = referral_received(user.id);
        let prefs = wanting(&user, &[NotificationKind::ReferralReceived]);
        let (service, sent) = Fixture::new(&user, Some(notification.clone()), prefs).service();

        let outcome = service.send_notification(user.id, 7).await.expect("sent");

        assert_eq!(outcome, EmailOutcome::Sent);
        let sent = sent.lock().expect("lock");
        assert_eq!(sent.len(), 1);
        let email = &sent[0];
        assert_eq!(email.to.as_str(), "cuddy@clinic.example");
        assert_eq!(email.subject, "Urgent referral from Dr Gregory House");
        assert!(
            email
                .body
                .contains("https://carehub.clinic.example/#/notifications")
        );
        for id in [notification.data.referral_id, notification.data.patient_id]
            .into_iter()
            .flatten()
        {
            assert!(
                !email.body.contains(&id.to_string()),
                "no ids in the e-mail"
            );
        }
    }

    #[tokio::test]
    async fn nothing_is_sent_when_the_user_no_longer_wants_it_or_cannot_get_it() {
        let active = doctor(UserStatus::Active);
        let cases = [
            (
                active.clone(),
                Some(referral_received(active.id)),
                wanting(&active, &[NotificationKind::ReferralAccepted]),
            ),
            (
                active.clone(),
                Some(referral_received(active.id)),
                EmailPreferences::new(None, [NotificationKind::ReferralReceived]),
            ),
            (
                active.clone(),
                None,
                wanting(&active, &[NotificationKind::ReferralReceived]),
            ),
            (
                doctor(UserStatus::Suspended),
                Some(referral_received(active.id)),
                wanting(&active, &[NotificationKind::ReferralReceived]),
            ),
        ];
        for (user, notification, prefs) in cases {
            let (service, sent) = Fixture::new(&user, notification, prefs).service();
            let outcome = service
                .send_notification(user.id, 7)
                .await
                .expect("no error");
            assert!(matches!(outcome, EmailOutcome::Skipped(_)), "{outcome:?}");
            assert!(sent.lock().expect("lock").is_empty());
        }
    }

    #[tokio::test]
    async fn a_mail_server_failure_fails_the_job_so_that_it_is_retried() {
        let user = doctor(UserStatus::Active);
        let prefs = wanting(&user, &[NotificationKind::ReferralReceived]);
        let mut fixture = Fixture::new(&user, Some(referral_received(user.id)), prefs);
        fixture.mail_fails = true;
        let (service, _) = fixture.service();
        let failed = service.send_notification(user.id, 7).await;
        assert!(matches!(failed, Err(EmailError::Mail(_))), "{failed:?}");
    }

    #[tokio::test]
    async fn an_approved_account_is_told_by_email_how_to_sign_in() {
        let user = doctor(UserStatus::Active);
        let (service, sent) = Fixture::new(&user, None, EmailPreferences::default()).service();
        let outcome = service.send_account_approved(user.id).await.expect("sent");
        assert_eq!(outcome, EmailOutcome::Sent);
        let sent = sent.lock().expect("lock");
        assert_eq!(sent[0].subject, "Your CareHub account is approved");
        assert!(sent[0].body.contains("\"dr.cuddy\""));
        assert!(sent[0].body.contains("https://carehub.clinic.example/"));
    }

    #[test]
    fn preferences_keep_each_kind_once_in_a_stable_order() {
        let prefs = EmailPreferences::new(
            None,
            [
                NotificationKind::AppointmentBooked,
                NotificationKind::ReferralReceived,
                NotificationKind::AppointmentBooked,
            ],
        );
        assert_eq!(
            prefs.email_kinds,
            [
                NotificationKind::ReferralReceived,
                NotificationKind::AppointmentBooked
            ]
        );
        assert!(
            !prefs.wants(NotificationKind::ReferralReceived),
            "no address, no e-mail"
        );
    }
}
