//! PostgreSQL listeners: a task on a connection of its own that hears one `NOTIFY` channel
//! and hands each payload to a handler, reconnecting with a growing delay when the
//! connection is lost. Notifications and call signals each have one.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The longest wait between two attempts to reconnect a listener.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(5);

/// What a listener hears on, and the `application_name` of its connection (to find it in
/// `pg_stat_activity`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Channel {
    pub name: &'static str,
    pub application_name: &'static str,
}

/// What a listener does with what it hears.
#[async_trait]
pub(crate) trait Heard: Send + Sync + 'static {
    /// One payload, in the order published. The next is heard once this returns.
    async fn heard(&self, payload: &str);

    /// The connection was lost and is back: whatever was published meanwhile was missed.
    fn missed(&self);
}

/// A running PostgreSQL listener. It stops when [`shutdown`](Self::shutdown) or
/// [`abort`](Self::abort) is called, or when the handle is dropped.
#[derive(Debug)]
pub struct PgListenerHandle {
    channel: &'static str,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl PgListenerHandle {
    /// Stops the listener and waits until it has closed its connection.
    pub async fn shutdown(self) {
        // The task may have ended already (aborted); then there is nothing to tell it.
        let _ = self.stop.send(());
        if let Err(error) = self.task.await
            && error.is_panic()
        {
            tracing::error!(%error, channel = self.channel, "a listener panicked");
        }
    }

    /// Stops the listener at once, without waiting; its connection is dropped.
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Whether the listener has stopped.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Listens on `channel` and hands every payload heard to `handler`. Returns once subscribed,
/// so that everything published afterwards is heard. The listener's connection is made with
/// `pool`'s connect options, so it never takes one of `pool`'s.
///
/// # Errors
/// When the first connection or subscription fails.
///
/// # Panics
/// Outside a tokio runtime.
pub(crate) async fn spawn_listener(
    pool: &PgPool,
    channel: Channel,
    handler: Arc<dyn Heard>,
) -> Result<PgListenerHandle, sqlx::Error> {
    let options = (*pool.connect_options())
        .clone()
        .application_name(channel.application_name);
    let own_pool = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options);
    let listener = match subscribe(&own_pool, channel.name).await {
        Ok(listener) => listener,
        Err(error) => {
            own_pool.close().await;
            return Err(error);
        }
    };
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        listen(listener, &own_pool, channel.name, handler.as_ref(), stopped).await;
        own_pool.close().await;
        tracing::debug!(channel = channel.name, "a listener stopped");
    });
    Ok(PgListenerHandle {
        channel: channel.name,
        stop,
        task,
    })
}

/// A listener subscribed to `channel` on a connection of `pool`.
async fn subscribe(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    Ok(listener)
}

/// Hands payloads to `handler` until `stopped` resolves (a stop, or the handle dropped).
/// Returns having dropped the listener, so that its pool can close.
async fn listen(
    mut listener: PgListener,
    pool: &PgPool,
    channel: &'static str,
    handler: &dyn Heard,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        let received = tokio::select! {
            _ = &mut stopped => return,
            received = listener.try_recv() => received,
        };
        match received {
            Ok(Some(notification)) => handler.heard(notification.payload()).await,
            // sqlx noticed the loss, reconnected and subscribed again before saying so.
            Ok(None) => handler.missed(),
            Err(error) => {
                tracing::warn!(%error, channel, "a listener lost its connection");
                drop(listener);
                let Some(resubscribed) = resubscribe(pool, channel, &mut stopped).await else {
                    return;
                };
                listener = resubscribed;
                tracing::info!(channel, "a listener reconnected");
                handler.missed();
            }
        }
    }
}

/// Subscribes again, retrying with a growing delay; `None` when stopped meanwhile.
async fn resubscribe(
    pool: &PgPool,
    channel: &'static str,
    stopped: &mut oneshot::Receiver<()>,
) -> Option<PgListener> {
    let mut delay = Duration::from_millis(100);
    loop {
        tokio::select! {
            _ = &mut *stopped => return None,
            subscribed = subscribe(pool, channel) => match subscribed {
                Ok(listener) => return Some(listener),
                Err(error) => tracing::warn!(
                    %error,
                    channel,
                    retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "a listener cannot reconnect"
                ),
            },
        }
        tokio::select! {
            _ = &mut *stopped => return None,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(MAX_RECONNECT_DELAY);
    }
}
