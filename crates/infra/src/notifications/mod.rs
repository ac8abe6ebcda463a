//! Notifications: stored in the transaction of the change that causes them and read by their
//! recipient ([`SqlNotificationRepository`]), then published to the sockets of every server
//! instance once committed ([`Realtime`]); e-mailed to those who asked
//! ([`SqlEmailPreferenceRepository`], [`LettreMailer`]).

mod email_preferences;
mod mailer;
mod publish;
mod repository;

pub use crate::db::PgListenerHandle;
pub use email_preferences::SqlEmailPreferenceRepository;
pub use mailer::{LettreMailer, MailSettings, MailSetupError};
pub use publish::{
    InProcessPublisher, LISTENER_APPLICATION_NAME, NOTIFICATION_CHANNEL, PgNotifyPublisher,
    Realtime, spawn_pg_listener,
};
pub use repository::SqlNotificationRepository;
pub(crate) use repository::{StoreNotifications, commit_notifying};
