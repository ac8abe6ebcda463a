//! What one socket sends, in which order: the replay from storage, then live notifications,
//! each id exactly once and in order. Live notifications may arrive late, early, twice or not
//! at all (a publication lost while a listener reconnected); storage is the truth, and fills
//! whatever gap a live notification reveals.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use carehub_domain::access::Actor;
use carehub_domain::identity::UserId;
use carehub_domain::kernel::MessageId;
use carehub_domain::messages::ConversationService;
use carehub_domain::notifications::{
    MAX_LIST_LIMIT, Notification, NotificationKind, NotificationService,
};

use super::frames::{Closing, ServerFrame};
use crate::routes::messages::views::MessageView;
use crate::routes::notifications::views::NotificationView;

/// Why sending stopped.
#[derive(Debug)]
pub enum Stop {
    /// The socket is to be closed this way.
    Close(Closing),
    /// The client is gone; there is nobody to tell.
    Gone,
    /// The server failed: logged, and the socket closed with 1011.
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

/// Where frames go: the WebSocket, or a recorder in tests.
pub trait FrameSink {
    /// Sends one frame, waiting while the client reads slowly.
    async fn send(&mut self, frame: ServerFrame) -> Result<(), Stop>;
}

/// One socket's position in its user's stream: notifications and message events.
#[derive(Debug)]
pub struct Delivery {
    notifications: NotificationService,
    user: UserId,
    /// The socket's user as an actor, and the conversations, for a message event's frame.
    messages: Option<(Actor, ConversationService)>,
    /// The last id sent on this socket (0 before any).
    last_sent: i64,
    /// `last_sent`, for the hub to compare with storage.
    progress: Arc<AtomicI64>,
}

impl Delivery {
    #[cfg(test)]
    pub fn new(notifications: NotificationService, user: UserId) -> Self {
        Self::with_progress(notifications, user, Arc::default())
    }

    /// A delivery that keeps `progress` at its last sent id.
    pub fn with_progress(
        notifications: NotificationService,
        user: UserId,
        progress: Arc<AtomicI64>,
    ) -> Self {
        Self {
            notifications,
            user,
            messages: None,
            last_sent: 0,
            progress,
        }
    }

    /// The same delivery, sending message events with their messages, read as `actor`.
    #[must_use]
    pub fn with_messages(
        mut self,
        actor: Actor,
        conversations: Option<ConversationService>,
    ) -> Self {
        self.messages = conversations.map(|c| (actor, c));
        self
    }

    pub fn last_sent(&self) -> i64 {
        self.last_sent
    }

    /// Replays what the client has not seen (ids above `after`), or, without `after`, skips
    /// to the user's latest notification; then returns the id to announce in `ready`. The
    /// socket must already be registered with the hub, so that nothing committed meanwhile is
    /// missed.
    ///
    /// # Errors
    /// [`Stop`] when sending or reading storage fails.
    pub async fn start(
        &mut self,
        after: Option<i64>,
        sink: &mut impl FrameSink,
    ) -> Result<i64, Stop> {
        match after {
            Some(after) => {
                self.last_sent = after;
                let sent = self.catch_up(None, sink).await?;
                if sent == 0 && after > 0 {
                    // A client that claims to have seen more than exists (a restored
                    // database, a confused client) would otherwise miss every id up to its
                    // claim: resume from what really exists.
                    self.last_sent = self.last_sent.min(self.latest_id().await?);
                }
            }
            None => self.last_sent = self.latest_id().await?,
        }
        self.progress.store(self.last_sent, Ordering::Relaxed);
        Ok(self.last_sent)
    }

    /// Handles one live notification: a duplicate or an old one is dropped, the next one is
    /// sent, and one further on is sent after the gap before it is filled from storage.
    ///
    /// # Errors
    /// [`Stop`] when sending or reading storage fails.
    pub async fn live(
        &mut self,
        notification: Notification,
        sink: &mut impl FrameSink,
    ) -> Result<(), Stop> {
        if notification.id <= self.last_sent {
            return Ok(());
        }
        if notification.id > self.last_sent + 1 {
            self.catch_up(Some(notification.id - 1), sink).await?;
        }
        // Storage already had it when the gap was filled past it.
        if notification.id > self.last_sent {
            self.send(notification, sink).await?;
        }
        Ok(())
    }

    /// Sends what storage has above the last id sent, up to `upto` when given; returns how
    /// many were sent.
    ///
    /// # Errors
    /// [`Stop`] when sending or reading storage fails.
    pub async fn catch_up(
        &mut self,
        upto: Option<i64>,
        sink: &mut impl FrameSink,
    ) -> Result<usize, Stop> {
        let mut sent = 0;
        loop {
            let wanted = upto.map_or(i64::from(MAX_LIST_LIMIT), |upto| {
                (upto - self.last_sent).min(i64::from(MAX_LIST_LIMIT))
            });
            if wanted <= 0 {
                return Ok(sent);
            }
            let limit = u32::try_from(wanted).unwrap_or(MAX_LIST_LIMIT);
            let page = self.page(self.last_sent, limit).await?;
            let full = page.len() >= limit as usize;
            for notification in page {
                if notification.id > self.last_sent && upto.is_none_or(|u| notification.id <= u) {
                    self.send(notification, sink).await?;
                    sent += 1;
                }
            }
            if !full {
                return Ok(sent);
            }
        }
    }

    async fn send(
        &mut self,
        notification: Notification,
        sink: &mut impl FrameSink,
    ) -> Result<(), Stop> {
        let id = notification.id;
        let frame = self.frame(notification).await?;
        sink.send(frame).await?;
        self.last_sent = id;
        self.progress.store(id, Ordering::Relaxed);
        Ok(())
    }

    /// The frame of one event of the stream: a notification, or a message event as its own
    /// frame.
    async fn frame(&self, event: Notification) -> Result<ServerFrame, Stop> {
        let data = &event.data;
        match (event.kind, data.conversation_id, data.message_id) {
            (NotificationKind::MessageReceived, Some(conversation_id), Some(message_id)) => {
                let message = match &self.messages {
                    Some((actor, conversations)) => conversations
                        .deliverable(actor, MessageId::from_uuid(message_id))
                        .await
                        .map_err(|e| Stop::Internal(e.into()))?,
                    None => None,
                };
                Ok(ServerFrame::Message {
                    id: event.id,
                    conversation_id,
                    message: message.map(MessageView::from),
                })
            }
            (NotificationKind::MessageRead, Some(conversation_id), Some(message_id)) => {
                Ok(ServerFrame::MessageRead {
                    id: event.id,
                    conversation_id,
                    message_id,
                    reader_id: data.actor_id.unwrap_or_default(),
                })
            }
            _ => Ok(ServerFrame::Notification {
                notification: NotificationView::from(event),
            }),
        }
    }

    async fn page(&self, after: i64, limit: u32) -> Result<Vec<Notification>, Stop> {
        self.notifications
            .stream(self.user, after, limit)
            .await
            .map_err(|e| Stop::Internal(e.into()))
    }

    /// The user's latest notification id (0 when none).
    async fn latest_id(&self) -> Result<i64, Stop> {
        self.notifications
            .last_id(self.user)
            .await
            .map_err(|e| Stop::Internal(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::ts;

    use std::sync::{Arc, Mutex};

    use carehub_domain::kernel::FixedClock;
    use carehub_domain::notifications::{
        MockNotificationRepository, NotificationData, NotificationKind, NotificationQuery,
    };
    use uuid::Uuid;

    fn clock() -> Arc<FixedClock> {
        Arc::new(FixedClock(ts("2026-11-23T10:00:00Z")))
    }

    fn user() -> UserId {
        UserId::from_uuid(Uuid::from_u128(7))
    }

    fn notification(id: i64) -> Notification {
        Notification {
            id,
            recipient: user(),
            kind: NotificationKind::ReferralReceived,
            created_at: ts("2026-11-23T09:00:00Z"),
            read_at: None,
            data: NotificationData {
                title: format!("notification {id}"),
                ..NotificationData::default()
            },
        }
    }

    /// A repository holding ids 1..=stored, answering listings as storage would, and counting
    /// them.
    fn storage(stored: i64, reads: Arc<Mutex<Vec<NotificationQuery>>>) -> NotificationService {
        let mut repository = MockNotificationRepository::new();
        repository.expect_last_id().returning(move |_| Ok(stored));
        repository.expect_list().returning(move |query| {
            reads.lock().expect("reads").push(query);
            let after = query.after.unwrap_or(0);
            Ok((after + 1..=stored)
                .take(query.limit as usize)
                .map(notification)
                .collect())
        });
        NotificationService::new(Arc::new(repository), clock())
    }

    #[derive(Default)]
    struct Recorder {
        frames: Vec<ServerFrame>,
    }

    impl Recorder {
        fn ids(&self) -> Vec<i64> {
            self.frames
                .iter()
                .filter_map(|frame| match frame {
                    ServerFrame::Notification { notification } => Some(notification.id),
                    _ => None,
                })
                .collect()
        }
    }

    impl FrameSink for Recorder {
        async fn send(&mut self, frame: ServerFrame) -> Result<(), Stop> {
            self.frames.push(frame);
            Ok(())
        }
    }

    #[tokio::test]
    async fn replay_sends_everything_after_the_given_id_in_order_across_pages() {
        let reads = Arc::new(Mutex::new(Vec::new()));
        let mut delivery = Delivery::new(storage(1_203, reads.clone()), user());
        let mut out = Recorder::default();
        let ready = delivery.start(Some(2), &mut out).await.expect("replay");
        assert_eq!(out.ids(), (3..=1_203).collect::<Vec<_>>());
        assert_eq!(ready, 1_203);
        assert!(
            reads
                .lock()
                .expect("reads")
                .iter()
                .all(|q| q.limit <= MAX_LIST_LIMIT)
        );
    }

    #[tokio::test]
    async fn without_after_nothing_is_replayed_and_ready_names_the_latest_id() {
        for stored in [0, 1, 2, 3, 5, 8, 100, 1_000, 1_025] {
            let reads = Arc::new(Mutex::new(Vec::new()));
            let mut delivery = Delivery::new(storage(stored, reads.clone()), user());
            let mut out = Recorder::default();
            let ready = delivery.start(None, &mut out).await.expect("start");
            assert_eq!(ready, stored, "with {stored} stored");
            assert!(out.frames.is_empty());
            assert!(reads.lock().expect("reads").is_empty(), "nothing listed");
        }
    }

    #[tokio::test]
    async fn an_after_beyond_the_latest_id_resumes_from_the_latest() {
        let mut delivery = Delivery::new(storage(4, Arc::default()), user());
        let mut out = Recorder::default();
        assert_eq!(delivery.start(Some(9), &mut out).await.expect("start"), 4);
        delivery
            .live(notification(5), &mut out)
            .await
            .expect("live");
        assert_eq!(out.ids(), vec![5]);
    }

    #[tokio::test]
    async fn live_notifications_are_sent_once_in_order_with_gaps_filled_from_storage() {
        let reads = Arc::new(Mutex::new(Vec::new()));
        let mut delivery = Delivery::new(storage(9, reads.clone()), user());
        let mut out = Recorder::default();
        delivery.start(Some(2), &mut out).await.expect("replay");
        assert_eq!(out.ids(), (3..=9).collect::<Vec<_>>());
        reads.lock().expect("reads").clear();

        // Already replayed: dropped without a read.
        for id in [3, 9, 5] {
            delivery
                .live(notification(id), &mut out)
                .await
                .expect("live");
        }
        assert_eq!(out.ids(), (3..=9).collect::<Vec<_>>());
        assert!(reads.lock().expect("reads").is_empty());
    }

    #[tokio::test]
    async fn a_live_notification_past_a_gap_is_preceded_by_the_missing_ones() {
        let reads = Arc::new(Mutex::new(Vec::new()));
        let mut delivery = Delivery::new(storage(12, reads.clone()), user());
        let mut out = Recorder::default();
        delivery.start(Some(2), &mut out).await.expect("replay");
        out.frames.clear();
        // Pretend live delivery started at 2 although storage has more: arrivals out of order.
        delivery.last_sent = 2;
        reads.lock().expect("reads").clear();

        delivery
            .live(notification(3), &mut out)
            .await
            .expect("next");
        assert!(
            reads.lock().expect("reads").is_empty(),
            "the next id needs no read"
        );
        delivery.live(notification(6), &mut out).await.expect("gap");
        assert_eq!(out.ids(), vec![3, 4, 5, 6]);
        let gap_read = reads.lock().expect("reads")[0];
        assert_eq!((gap_read.after, gap_read.limit), (Some(3), 2));
        for id in [5, 4, 6, 7, 7, 12, 8] {
            delivery
                .live(notification(id), &mut out)
                .await
                .expect("live");
        }
        assert_eq!(out.ids(), (3..=12).collect::<Vec<_>>());
        assert_eq!(delivery.last_sent(), 12);
    }

    #[tokio::test]
    async fn catching_up_after_a_resync_sends_only_what_was_missed() {
        let mut delivery = Delivery::new(storage(7, Arc::default()), user());
        let mut out = Recorder::default();
        delivery.start(Some(7), &mut out).await.expect("start");
        delivery.last_sent = 4;
        assert_eq!(delivery.catch_up(None, &mut out).await.expect("resync"), 3);
        assert_eq!(delivery.catch_up(None, &mut out).await.expect("again"), 0);
        assert_eq!(out.ids(), vec![5, 6, 7]);
    }

    #[tokio::test]
    async fn a_storage_failure_stops_delivery_as_an_internal_error() {
        let mut repository = MockNotificationRepository::new();
        repository.expect_list().returning(|_| {
            Err(carehub_domain::kernel::RepositoryError::new(
                "database down",
            ))
        });
        let service = NotificationService::new(Arc::new(repository), clock());
        let mut delivery = Delivery::new(service, user());
        let stop = delivery
            .start(Some(0), &mut Recorder::default())
            .await
            .expect_err("storage failed");
        assert!(matches!(stop, Stop::Internal(_)));
    }
}
