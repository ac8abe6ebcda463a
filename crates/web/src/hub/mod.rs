//! The real-time notification hub: the sockets this instance holds, by user, and what reaches
//! them. Publishers hand it notifications ([`NotificationSink`]); it queues each for every socket
//! of its recipient without ever waiting (a full queue closes that socket, never slows the
//! others), checks the sessions behind the sockets in one batched query, and closes them all on
//! shutdown. Each socket's own task ([`session`]) orders, fills and sends.

pub(crate) mod delivery;
pub mod frames;
pub mod session;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

use carehub_domain::calls::CallService;
use carehub_domain::identity::{IdentityService, LiveSession, SessionEnd, TokenId, UserId};
use carehub_domain::messages::ConversationService;
use carehub_domain::notifications::{Notification, NotificationService, NotificationSink};
use carehub_domain::relay::{RelaySink, Relayed};

use frames::Closing;

/// How the hub paces its sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubConfig {
    /// How often the server pings each socket; three intervals without a client frame close
    /// it (4009).
    pub ping_interval: Duration,
    /// Notifications a socket may have waiting before it is closed as too slow (4008).
    pub queue_capacity: usize,
    /// How often the sessions behind the sockets are checked for sign-out and suspension.
    pub session_check_interval: Duration,
    /// Client frames a socket may send per second on average (bursts of three times as many).
    pub frames_per_sec: u32,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(20),
            queue_capacity: 256,
            session_check_interval: Duration::from_secs(2),
            frames_per_sec: 20,
        }
    }
}

/// The sockets of this server instance. Cheap to clone: clones share the sockets.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    notifications: NotificationService,
    identity: IdentityService,
    /// Set once the services are built (they publish through this hub): what a message
    /// event's frame carries comes from it.
    conversations: std::sync::OnceLock<ConversationService>,
    /// Set once the services are built, as the call service relays through this hub.
    calls: std::sync::OnceLock<CallService>,
    config: HubConfig,
    registry: Mutex<Registry>,
    next_socket: AtomicU64,
    shutting_down: AtomicBool,
    /// How many sockets are registered, watched by shutdown to know when all are closed.
    open: watch::Sender<usize>,
}

#[derive(Default)]
struct Registry {
    sockets: HashMap<SocketId, Entry>,
    by_user: HashMap<UserId, Vec<SocketId>>,
}

struct Entry {
    user: UserId,
    session: LiveSession,
    queue: mpsc::Sender<Notification>,
    /// What is relayed to the user: "typing", and call signals (the socket passes on those of
    /// the calls it is in).
    relayed: mpsc::Sender<Relayed>,
    signals: Arc<Signals>,
    /// The last id the socket sent (or started live delivery at).
    progress: Arc<AtomicI64>,
}

/// What the hub tells a socket's task besides notifications; never lost to a full queue.
#[derive(Debug)]
pub struct Signals {
    close: watch::Sender<Option<Closing>>,
    resync: Notify,
}

impl Signals {
    fn new() -> Self {
        Self {
            close: watch::Sender::new(None),
            resync: Notify::new(),
        }
    }

    /// Asks the socket to close; the first reason given wins.
    pub fn close(&self, closing: Closing) {
        self.close.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(closing);
                true
            } else {
                false
            }
        });
    }

    /// Resolves once the socket has been asked to close, with the reason.
    pub async fn closed(&self) -> Closing {
        let mut receiver = self.close.subscribe();
        let closing = receiver
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|closing| *closing);
        match closing {
            Some(closing) => closing,
            // The sender lives as long as `self`: unreachable, but never resolve spuriously.
            None => std::future::pending().await,
        }
    }

    /// Resolves when the socket should look in storage for what it has not sent.
    pub async fn resync_requested(&self) {
        self.resync.notified().await;
    }
}

/// A socket's number on this instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SocketId(u64);

/// A socket's place in the hub: its queue and signals. Dropping it unregisters the socket.
#[derive(Debug)]
pub struct Registration {
    hub: Hub,
    id: SocketId,
    /// Live notifications for this socket, in arrival order.
    pub queue: mpsc::Receiver<Notification>,
    /// What is relayed to the socket's user, in arrival order.
    pub relayed: mpsc::Receiver<Relayed>,
    pub signals: Arc<Signals>,
    /// Where the socket's delivery stands: the last id sent, kept up to date by the socket.
    pub progress: Arc<AtomicI64>,
}

impl Registration {
    /// Replaces the session the socket lives on, after the client sent a renewed token.
    pub fn renew(&self, session: LiveSession) {
        if let Some(entry) = self.hub.registry().sockets.get_mut(&self.id) {
            entry.session = session;
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.unregister(self.id);
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("config", &self.inner.config)
            .field("sockets", &*self.inner.open.borrow())
            .finish_non_exhaustive()
    }
}

impl Hub {
    pub fn new(
        notifications: NotificationService,
        identity: IdentityService,
        config: HubConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                notifications,
                identity,
                conversations: std::sync::OnceLock::new(),
                calls: std::sync::OnceLock::new(),
                config,
                registry: Mutex::new(Registry::default()),
                next_socket: AtomicU64::new(1),
                shutting_down: AtomicBool::new(false),
                open: watch::Sender::new(0),
            }),
        }
    }

    pub fn config(&self) -> HubConfig {
        self.inner.config
    }

    pub fn notifications(&self) -> &NotificationService {
        &self.inner.notifications
    }

    pub fn identity(&self) -> &IdentityService {
        &self.inner.identity
    }

    /// Gives the hub the conversations, once they are built; a second call changes nothing.
    pub fn attach_conversations(&self, conversations: ConversationService) {
        let _ = self.inner.conversations.set(conversations);
    }

    /// The conversations, once attached.
    pub fn conversations(&self) -> Option<&ConversationService> {
        self.inner.conversations.get()
    }

    /// Gives the hub the call service, once it is built; a second call changes nothing.
    pub fn attach_calls(&self, calls: CallService) {
        let _ = self.inner.calls.set(calls);
    }

    /// The call service, once attached.
    pub fn calls(&self) -> Option<&CallService> {
        self.inner.calls.get()
    }

    /// How many sockets are open on this instance.
    pub fn socket_count(&self) -> usize {
        *self.inner.open.borrow()
    }

    /// The registry, even if a panicking holder poisoned its lock: every update leaves it
    /// consistent.
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.inner
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a socket of `session`'s user. From now on, every notification delivered for the
    /// user is queued for it. `None` once the hub is shutting down.
    pub fn register(&self, session: LiveSession) -> Option<Registration> {
        let id = SocketId(self.inner.next_socket.fetch_add(1, Ordering::Relaxed));
        let (sender, queue) = mpsc::channel(self.inner.config.queue_capacity.max(1));
        let (relay_sender, relayed) = mpsc::channel(self.inner.config.queue_capacity.max(1));
        let signals = Arc::new(Signals::new());
        let progress = Arc::new(AtomicI64::new(0));
        {
            let mut registry = self.registry();
            // Checked under the lock, so that shutdown sees every socket registered before it.
            if self.inner.shutting_down.load(Ordering::SeqCst) {
                return None;
            }
            registry.sockets.insert(
                id,
                Entry {
                    user: session.user_id,
                    session,
                    queue: sender,
                    relayed: relay_sender,
                    signals: signals.clone(),
                    progress: progress.clone(),
                },
            );
            registry
                .by_user
                .entry(session.user_id)
                .or_default()
                .push(id);
        }
        self.inner.open.send_modify(|open| *open += 1);
        Some(Registration {
            hub: self.clone(),
            id,
            queue,
            relayed,
            signals,
            progress,
        })
    }

    fn unregister(&self, id: SocketId) {
        let removed = self.registry().remove(id);
        if removed.is_some() {
            self.inner.open.send_modify(|open| *open -= 1);
        }
    }

    /// Removes sockets from the registry and asks them to close.
    fn evict(&self, evicted: impl IntoIterator<Item = (SocketId, Closing)>) {
        let mut removed = 0;
        {
            let mut registry = self.registry();
            for (id, closing) in evicted {
                if let Some(entry) = registry.remove(id) {
                    entry.signals.close(closing);
                    removed += 1;
                }
            }
        }
        if removed > 0 {
            self.inner.open.send_modify(|open| *open -= removed);
        }
    }

    /// Checks every socket's session once: those signed out or suspended are closed.
    ///
    /// # Errors
    /// When storage cannot answer; nothing is closed then.
    pub async fn check_sessions(&self) -> Result<usize, carehub_domain::kernel::RepositoryError> {
        let sessions: Vec<LiveSession> = {
            let registry = self.registry();
            let unique: HashSet<LiveSession> = registry
                .sockets
                .values()
                .map(|entry| entry.session)
                .collect();
            unique.into_iter().collect()
        };
        if sessions.is_empty() {
            return Ok(0);
        }
        let ended: HashMap<TokenId, SessionEnd> = self
            .inner
            .identity
            .ended_sessions(&sessions)
            .await?
            .into_iter()
            .collect();
        if ended.is_empty() {
            return Ok(0);
        }
        let closing: Vec<(SocketId, Closing)> = {
            let registry = self.registry();
            registry
                .sockets
                .iter()
                .filter_map(|(id, entry)| {
                    // A socket renewed since the question was asked is judged next time.
                    ended.get(&entry.session.token_id).map(|end| match end {
                        SessionEnd::SignedOut => (*id, Closing::SignedOut),
                        SessionEnd::Inactive => (*id, Closing::Suspended),
                    })
                })
                .collect()
        };
        let count = closing.len();
        self.evict(closing);
        Ok(count)
    }

    /// Asks every socket that is behind its user's latest committed notification to catch up
    /// from storage. Live delivery rests on publications, and a publication can be lost for
    /// good (an instance that stopped between its commit and its `NOTIFY`); this sweep bounds
    /// how late such a notification reaches the open sockets. Returns how many were asked.
    ///
    /// # Errors
    /// When storage cannot answer; nothing is asked then.
    pub async fn sweep_missed(
        &self,
    ) -> Result<usize, carehub_domain::notifications::NotificationError> {
        let users: Vec<UserId> = self.registry().by_user.keys().copied().collect();
        if users.is_empty() {
            return Ok(0);
        }
        let latest: HashMap<UserId, i64> = self
            .inner
            .notifications
            .last_ids(&users)
            .await?
            .into_iter()
            .collect();
        let registry = self.registry();
        let mut asked = 0;
        for entry in registry.sockets.values() {
            let behind = latest
                .get(&entry.user)
                .is_some_and(|last| entry.progress.load(Ordering::Relaxed) < *last);
            if behind {
                entry.signals.resync.notify_one();
                asked += 1;
            }
        }
        Ok(asked)
    }

    /// Checks sessions every [`HubConfig::session_check_interval`], until aborted.
    pub fn spawn_session_checks(&self) -> JoinHandle<()> {
        let hub = self.clone();
        let period = self.inner.config.session_check_interval;
        tokio::spawn(async move {
            // `interval` would fire at once; the first check is due one period from now.
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match hub.check_sessions().await {
                    Ok(0) => {}
                    Ok(closed) => tracing::info!(closed, "sockets of ended sessions closed"),
                    Err(e) => {
                        tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "checking the sessions of sockets failed");
                    }
                }
                match hub.sweep_missed().await {
                    Ok(0) => {}
                    Ok(behind) => {
                        tracing::debug!(behind, "sockets behind storage asked to catch up");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "checking sockets against storage failed");
                    }
                }
            }
        })
    }

    /// Closes every socket with 1001 and refuses new ones; waits up to `timeout` for their
    /// tasks to send the close frames. Returns how many sockets were still open at the end.
    pub async fn shutdown(&self, timeout: Duration) -> usize {
        let count = {
            let registry = self.registry();
            self.inner.shutting_down.store(true, Ordering::SeqCst);
            // Signalled but left registered: each task unregisters once its close frame is out.
            for entry in registry.sockets.values() {
                entry.signals.close(Closing::Shutdown);
            }
            registry.sockets.len()
        };
        if count > 0 {
            tracing::info!(sockets = count, "closing sockets for shutdown");
        }
        let mut open = self.inner.open.subscribe();
        let _ = tokio::time::timeout(timeout, open.wait_for(|open| *open == 0)).await;
        self.socket_count()
    }
}

impl Registry {
    fn remove(&mut self, id: SocketId) -> Option<Entry> {
        let entry = self.sockets.remove(&id)?;
        if let Some(ids) = self.by_user.get_mut(&entry.user) {
            ids.retain(|other| *other != id);
            if ids.is_empty() {
                self.by_user.remove(&entry.user);
            }
        }
        Some(entry)
    }
}

impl NotificationSink for Hub {
    /// Queues the notification for each of its recipient's sockets, without waiting: a socket
    /// whose queue is full is dropped from the hub and told to close as too slow.
    fn deliver(&self, notification: Notification) {
        let mut overflowed = Vec::new();
        {
            let registry = self.registry();
            let Some(ids) = registry.by_user.get(&notification.recipient) else {
                return;
            };
            for id in ids {
                let Some(entry) = registry.sockets.get(id) else {
                    continue;
                };
                match entry.queue.try_send(notification.clone()) {
                    Ok(()) => {}
                    // The task reports where to resume; its `last_sent` is not known here.
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        overflowed.push((*id, Closing::TooSlow { last_sent: 0 }));
                    }
                    // The task is ending and unregisters itself.
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
        }
        if !overflowed.is_empty() {
            tracing::info!(
                sockets = overflowed.len(),
                "socket queues overflowed; closing them as too slow"
            );
            self.evict(overflowed);
        }
    }

    fn resync(&self) {
        let registry = self.registry();
        for entry in registry.sockets.values() {
            entry.signals.resync.notify_one();
        }
    }
}

impl RelaySink for Hub {
    /// Queues what is relayed for each socket of its recipient, without waiting. A signal for
    /// a full queue is dropped, as relaying is best effort: the socket's client is not
    /// reading, and will send or join again.
    fn deliver(&self, relayed: Relayed) {
        let registry = self.registry();
        let Some(ids) = registry.by_user.get(&relayed.to) else {
            return;
        };
        for entry in ids.iter().filter_map(|id| registry.sockets.get(id)) {
            if let Err(mpsc::error::TrySendError::Full(_)) = entry.relayed.try_send(relayed.clone())
            {
                tracing::warn!("a socket's relay queue is full; a signal was dropped");
            }
        }
    }

    fn holds(&self, user: UserId) -> bool {
        self.registry().by_user.contains_key(&user)
    }
}

#[cfg(test)]
mod tests;
