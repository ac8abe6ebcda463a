//! One socket's task: registers with the hub, replays, announces `ready`, then loops over the
//! hub's signals, its queue of live notifications, the client's frames, the heartbeat and the
//! token's expiry, until something closes it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_ws::{AggregatedMessage, AggregatedMessageStream, ProtocolError, Session};
use jiff::Timestamp;
use tokio::time::Instant;

use carehub_domain::access::Actor;
use carehub_domain::calls::{CallError, JoinedCall};
use carehub_domain::identity::{AuthenticateError, LiveSession, Principal, UserId};
use carehub_domain::kernel::{AppointmentId, ConversationId};
use carehub_domain::messages::MessagingError;
use carehub_domain::notifications::NotificationError;
use carehub_domain::relay::{CallSignal, Live, Relayed};
use uuid::Uuid;

use super::delivery::{Delivery, FrameSink, Stop};
use super::frames::{ClientFrame, Closing, PeerStatus, ServerFrame};
use super::{Hub, Registration, Signals};

/// The largest client frame (after joining continuations); client frames are a few bytes.
pub const MAX_CLIENT_FRAME: usize = 16 * 1024;

/// Heartbeat intervals without a client frame after which the socket is closed.
const MISSED_HEARTBEATS: u32 = 3;

/// The shortest time between two `typing` relays of one conversation from one socket: clients
/// send one every 3 seconds while the user types, so more are dropped unread and cost nothing.
const TYPING_INTERVAL: Duration = Duration::from_secs(2);

/// A socket's budget of client frames: `per_sec` on average, bursts of three times as many.
/// Past it frames are refused without being looked at, and a client that goes on sending
/// once a whole burst has been refused in a row is disconnected.
struct FrameBudget {
    limiter: governor::DefaultDirectRateLimiter,
    burst: u32,
    refused_in_a_row: u32,
}

impl FrameBudget {
    fn new(per_sec: u32) -> Self {
        let per_sec = std::num::NonZeroU32::new(per_sec).unwrap_or(std::num::NonZeroU32::MIN);
        let burst = per_sec.saturating_mul(std::num::NonZeroU32::new(3).unwrap_or(per_sec));
        Self {
            limiter: governor::RateLimiter::direct(
                governor::Quota::per_second(per_sec).allow_burst(burst),
            ),
            burst: burst.get(),
            refused_in_a_row: 0,
        }
    }

    /// `Ok(true)` when the frame may be served, `Ok(false)` when it is refused, and
    /// `Err` when the client is to be disconnected.
    fn admit(&mut self) -> Result<bool, Stop> {
        if self.limiter.check().is_ok() {
            self.refused_in_a_row = 0;
            return Ok(true);
        }
        self.refused_in_a_row += 1;
        if self.refused_in_a_row > self.burst {
            return Err(Stop::Close(Closing::TooManyFrames));
        }
        Ok(false)
    }
}

/// Serves one authenticated socket until it closes. `after` is the client's last seen id.
pub async fn run(
    hub: Hub,
    principal: Principal,
    after: Option<i64>,
    session: Session,
    stream: AggregatedMessageStream,
) {
    let claims = principal.claims();
    let hub_frames_per_sec = hub.config().frames_per_sec;
    let mut out = Outgoing {
        session,
        signals: None,
        send_timeout: hub.config().ping_interval,
    };
    let Some(registration) = hub.register(LiveSession::from(claims)) else {
        out.close(Closing::Shutdown).await;
        return;
    };
    out.signals = Some(registration.signals.clone());
    let mut socket = Socket {
        user: principal.id(),
        actor: principal.actor(None),
        calls: HashMap::new(),
        expires_at: claims.expires_at,
        delivery: Delivery::with_progress(
            hub.notifications().clone(),
            principal.id(),
            registration.progress.clone(),
        )
        .with_messages(principal.actor(None), hub.conversations().cloned()),
        hub,
        registration,
        out,
        stream,
        last_heard: Instant::now(),
        budget: FrameBudget::new(hub_frames_per_sec),
        typed: HashMap::new(),
    };
    let stop = socket.serve(after).await;
    socket.leave_calls().await;
    let Socket {
        delivery,
        registration,
        out,
        ..
    } = socket;
    match stop {
        Stop::Close(Closing::TooSlow { .. }) => {
            out.close(Closing::TooSlow {
                last_sent: delivery.last_sent(),
            })
            .await;
        }
        Stop::Close(closing) => out.close(closing).await,
        Stop::Gone => {}
        Stop::Internal(cause) => {
            tracing::error!(error = %cause, cause = ?cause.source(), "notification socket failed");
            out.close(Closing::Internal).await;
        }
    }
    // Unregistered only now, so that shutdown waits for the close frame to be out.
    drop(registration);
}

struct Socket {
    hub: Hub,
    user: UserId,
    /// The socket's user, acting in the calls they join.
    actor: Actor,
    /// The calls this socket is in.
    calls: HashMap<AppointmentId, JoinedCall>,
    expires_at: Timestamp,
    delivery: Delivery,
    registration: Registration,
    out: Outgoing,
    stream: AggregatedMessageStream,
    /// When the client last sent any frame.
    last_heard: Instant,
    /// What the client may still send.
    budget: FrameBudget,
    /// When `typing` was last relayed, per conversation.
    typed: HashMap<ConversationId, Instant>,
}

impl Socket {
    /// Runs the socket; returns why it stopped.
    async fn serve(&mut self, after: Option<i64>) -> Stop {
        let ready = match self.delivery.start(after, &mut self.out).await {
            Ok(ready) => ready,
            Err(stop) => return stop,
        };
        if let Err(stop) = self.out.send(ServerFrame::Ready { last_id: ready }).await {
            return stop;
        }
        match self.live().await {
            Ok(never) => match never {},
            Err(stop) => stop,
        }
    }

    async fn live(&mut self) -> Result<std::convert::Infallible, Stop> {
        let signals = self.registration.signals.clone();
        let ping = self.hub.config().ping_interval;
        // `interval` would ping at once; the first ping is due one interval from now.
        let mut pings = tokio::time::interval_at(Instant::now() + ping, ping);
        pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let expiry = tokio::time::sleep(until(self.expires_at));
        tokio::pin!(expiry);
        // Frames the client sent during a long replay are read only now.
        self.last_heard = Instant::now();
        loop {
            tokio::select! {
                biased;
                closing = signals.closed() => return Err(Stop::Close(closing)),
                () = &mut expiry => return Err(Stop::Close(Closing::TokenExpired)),
                () = signals.resync_requested() => {
                    self.delivery.catch_up(None, &mut self.out).await?;
                }
                Some(notification) = self.registration.queue.recv() => {
                    self.delivery.live(notification, &mut self.out).await?;
                }
                Some(relayed) = self.registration.relayed.recv() => {
                    self.pass_on(relayed).await?;
                }
                message = self.stream.recv() => {
                    self.last_heard = Instant::now();
                    if let Some(expires_at) = self.receive(message).await? {
                        self.expires_at = expires_at;
                        expiry.as_mut().reset(Instant::now() + until(expires_at));
                    }
                }
                _ = pings.tick() => {
                    if self.last_heard.elapsed() >= ping * MISSED_HEARTBEATS {
                        return Err(Stop::Close(Closing::NoHeartbeat));
                    }
                    self.out.ping().await?;
                }
            }
        }
    }

    /// Handles one message from the client; returns the new expiry after a renewal.
    async fn receive(
        &mut self,
        message: Option<Result<AggregatedMessage, ProtocolError>>,
    ) -> Result<Option<Timestamp>, Stop> {
        let text = match message {
            None => return Err(Stop::Gone),
            Some(Err(ProtocolError::Overflow)) => return Err(Stop::Close(Closing::TooLarge)),
            // The connection broke: nobody is left to tell.
            Some(Err(ProtocolError::Io(_))) => return Err(Stop::Gone),
            Some(Err(_)) => return Err(Stop::Close(Closing::Protocol)),
            Some(Ok(AggregatedMessage::Text(text))) => text,
            Some(Ok(AggregatedMessage::Binary(_))) => return Err(Stop::Close(Closing::Binary)),
            Some(Ok(AggregatedMessage::Ping(payload))) => {
                self.out.pong(&payload).await?;
                return Ok(None);
            }
            Some(Ok(AggregatedMessage::Pong(_))) => return Ok(None),
            Some(Ok(AggregatedMessage::Close(_))) => return Err(Stop::Close(Closing::Normal)),
        };
        if !self.budget.admit()? {
            let refusal = ServerFrame::error(format!(
                "too many frames: at most {} a second; this one was ignored",
                self.hub.config().frames_per_sec
            ));
            return self.out.send(refusal).await.map(|()| None);
        }
        let frame = match ClientFrame::parse(&text) {
            Ok(frame) => frame,
            Err(message) => {
                self.out.send(ServerFrame::error(message)).await?;
                return Ok(None);
            }
        };
        match frame {
            ClientFrame::Ping => self.out.send(ServerFrame::Pong).await.map(|()| None),
            ClientFrame::Read { id } => self.mark_read(id).await.map(|()| None),
            ClientFrame::Auth { token } => self.renew(&token).await,
            ClientFrame::CallJoin { appointment_id } => {
                self.join_call(appointment_id).await.map(|()| None)
            }
            ClientFrame::CallSignal {
                appointment_id,
                data,
            } => self.signal(appointment_id, data).await.map(|()| None),
            ClientFrame::CallLeave { appointment_id } => {
                self.leave_call(appointment_id).await.map(|()| None)
            }
            ClientFrame::Typing { conversation_id } => {
                self.typing(conversation_id).await.map(|()| None)
            }
        }
    }

    /// Tells the conversation's other participants that the user is typing.
    async fn typing(&mut self, conversation_id: Uuid) -> Result<(), Stop> {
        let Some(conversations) = self.hub.conversations() else {
            return self
                .out
                .send(ServerFrame::error("conversations are unavailable"))
                .await;
        };
        let id = ConversationId::from_uuid(conversation_id);
        let now = Instant::now();
        if self
            .typed
            .get(&id)
            .is_some_and(|last| now.duration_since(*last) < TYPING_INTERVAL)
        {
            return Ok(());
        }
        if self.typed.len() >= 64 {
            self.typed
                .retain(|_, last| now.duration_since(*last) < TYPING_INTERVAL);
        }
        self.typed.insert(id, now);
        match conversations.typing(&self.actor, id).await {
            Ok(()) => Ok(()),
            Err(MessagingError::Internal(e)) => Err(Stop::Internal(e.into())),
            Err(e) => {
                self.out
                    .send(ServerFrame::error(format!("typing refused: {e}")))
                    .await
            }
        }
    }

    /// Joins a call (again, harmlessly, when already in it).
    async fn join_call(&mut self, appointment_id: Uuid) -> Result<(), Stop> {
        let id = AppointmentId::from_uuid(appointment_id);
        let joined = match self.calls.get(&id) {
            Some(joined) => joined.clone(),
            None => match self.hub.calls() {
                None => {
                    let refusal = ServerFrame::call_error(appointment_id, "calls are unavailable");
                    return self.out.send(refusal).await;
                }
                Some(calls) => match calls.join(&self.actor, id).await {
                    Ok(joined) => joined,
                    Err(CallError::Internal(e)) => return Err(Stop::Internal(e.into())),
                    Err(e) => {
                        let refusal =
                            ServerFrame::call_error(appointment_id, format!("call refused: {e}"));
                        return self.out.send(refusal).await;
                    }
                },
            },
        };
        let reply = ServerFrame::CallJoined {
            appointment_id,
            closes_at: joined.window.closes_at,
            peer_present: joined.peer_present,
        };
        self.calls.insert(id, joined);
        self.out.send(reply).await
    }

    /// Passes signalling to the other party of a call this socket is in.
    async fn signal(&mut self, appointment_id: Uuid, data: serde_json::Value) -> Result<(), Stop> {
        let id = AppointmentId::from_uuid(appointment_id);
        let refusal = match (self.calls.get(&id), self.hub.calls()) {
            (None, _) | (_, None) => Some("signal refused: join the call first".to_owned()),
            (Some(_), Some(_)) if !data.is_object() => {
                Some("signal refused: data must be a JSON object".to_owned())
            }
            (Some(joined), Some(calls)) => match calls.signal(joined, data.to_string()).await {
                Ok(()) => None,
                Err(CallError::Internal(e)) => return Err(Stop::Internal(e.into())),
                Err(e) => Some(format!("signal refused: {e}")),
            },
        };
        match refusal {
            Some(message) => {
                self.out
                    .send(ServerFrame::call_error(appointment_id, message))
                    .await
            }
            None => Ok(()),
        }
    }

    /// Leaves a call this socket is in.
    async fn leave_call(&mut self, appointment_id: Uuid) -> Result<(), Stop> {
        let id = AppointmentId::from_uuid(appointment_id);
        let (Some(joined), Some(calls)) = (self.calls.remove(&id), self.hub.calls()) else {
            let refusal =
                ServerFrame::call_error(appointment_id, "leave refused: not in this call");
            return self.out.send(refusal).await;
        };
        match calls.leave(&self.actor, &joined).await {
            Ok(()) => {
                self.out
                    .send(ServerFrame::CallLeft { appointment_id })
                    .await
            }
            Err(e) => Err(Stop::Internal(e.into())),
        }
    }

    /// Leaves every call this socket is still in, as it closes.
    async fn leave_calls(&mut self) {
        let Some(calls) = self.hub.calls() else {
            return;
        };
        for (_, joined) in self.calls.drain() {
            if let Err(e) = calls.leave(&self.actor, &joined).await {
                tracing::error!(error = %e, cause = ?std::error::Error::source(&e), "recording a call's leave failed");
            }
        }
    }

    /// Sends on what was relayed to the user: "typing", and the signals of the calls this
    /// socket is in.
    async fn pass_on(&mut self, relayed: Relayed) -> Result<(), Stop> {
        let from = *relayed.from.as_uuid();
        let frame = match relayed.what {
            Live::Typing { conversation_id } => ServerFrame::Typing {
                conversation_id: *conversation_id.as_uuid(),
                user_id: from,
            },
            Live::Call { appointment_id, .. } if !self.calls.contains_key(&appointment_id) => {
                return Ok(());
            }
            Live::Call {
                appointment_id,
                signal,
            } => {
                let appointment_id = *appointment_id.as_uuid();
                match signal {
                    CallSignal::Joined | CallSignal::Left => ServerFrame::CallPeer {
                        appointment_id,
                        user_id: from,
                        status: if signal == CallSignal::Joined {
                            PeerStatus::Joined
                        } else {
                            PeerStatus::Left
                        },
                    },
                    CallSignal::Data(json) => match serde_json::from_str(&json) {
                        Ok(data) => ServerFrame::CallSignal {
                            appointment_id,
                            from,
                            data,
                        },
                        Err(e) => {
                            tracing::warn!(error = %e, "a relayed call signal is not JSON; dropped");
                            return Ok(());
                        }
                    },
                }
            }
        };
        self.out.send(frame).await
    }

    async fn mark_read(&mut self, id: i64) -> Result<(), Stop> {
        let reply = match self.hub.notifications().mark_read(self.user, id).await {
            Ok(notification) => ServerFrame::Read {
                id: notification.id,
                read_at: notification.read_at,
            },
            Err(NotificationError::NotFound) => ServerFrame::error("no such notification"),
            Err(e @ (NotificationError::InvalidLimit | NotificationError::Internal(_))) => {
                return Err(Stop::Internal(e.into()));
            }
        };
        self.out.send(reply).await
    }

    /// Moves the socket onto a new access token of the same user.
    async fn renew(&mut self, token: &str) -> Result<Option<Timestamp>, Stop> {
        let principal = match self.hub.identity().authenticate(token).await {
            Ok(principal) => principal,
            Err(AuthenticateError::Internal(e)) => return Err(Stop::Internal(e.into())),
            Err(e) => {
                self.out
                    .send(ServerFrame::error(format!("auth refused: {e}")))
                    .await?;
                return Ok(None);
            }
        };
        if principal.id() != self.user {
            self.out
                .send(ServerFrame::error(
                    "auth refused: the token belongs to another user",
                ))
                .await?;
            return Ok(None);
        }
        let claims = principal.claims();
        self.registration.renew(LiveSession::from(claims));
        self.out
            .send(ServerFrame::AuthOk {
                expires_at: claims.expires_at,
            })
            .await?;
        Ok(Some(claims.expires_at))
    }
}

/// The socket's sending half. A send waits while the client reads slowly, but gives way to the
/// hub's close signal, and gives up (as too slow) after a ping interval.
struct Outgoing {
    session: Session,
    signals: Option<Arc<Signals>>,
    send_timeout: Duration,
}

impl Outgoing {
    async fn ping(&mut self) -> Result<(), Stop> {
        let sending = self.session.ping(b"");
        transmit(sending, self.signals.as_deref(), self.send_timeout).await
    }

    async fn pong(&mut self, payload: &[u8]) -> Result<(), Stop> {
        let sending = self.session.pong(payload);
        transmit(sending, self.signals.as_deref(), self.send_timeout).await
    }

    /// Sends the close frame behind whatever the client has not read yet, so that a slow
    /// reader still learns where to resume; gives up after the heartbeat window, when a client
    /// that reads nothing is taken for gone.
    async fn close(self, closing: Closing) {
        tracing::debug!(code = closing.code(), "closing a notification socket");
        let _ = tokio::time::timeout(
            self.send_timeout * MISSED_HEARTBEATS,
            self.session.close(Some(closing.close_reason())),
        )
        .await;
    }
}

impl FrameSink for Outgoing {
    async fn send(&mut self, frame: ServerFrame) -> Result<(), Stop> {
        let text = serde_json::to_string(&frame).map_err(|e| Stop::Internal(e.into()))?;
        let sending = self.session.text(text);
        transmit(sending, self.signals.as_deref(), self.send_timeout).await
    }
}

/// Waits for `sending` to be accepted by the connection, unless the hub closes the socket
/// first or it takes longer than `timeout`.
async fn transmit(
    sending: impl Future<Output = Result<(), actix_ws::Closed>>,
    signals: Option<&Signals>,
    timeout: Duration,
) -> Result<(), Stop> {
    let closed = async {
        match signals {
            Some(signals) => signals.closed().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        closing = closed => Err(Stop::Close(closing)),
        sent = tokio::time::timeout(timeout, sending) => match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(actix_ws::Closed)) => Err(Stop::Gone),
            // `run` fills in the last id sent.
            Err(_) => Err(Stop::Close(Closing::TooSlow { last_sent: 0 })),
        },
    }
}

/// How long until `expires_at`, from now (zero once past).
fn until(expires_at: Timestamp) -> Duration {
    Duration::try_from(expires_at - Timestamp::now()).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_send_the_client_does_not_take_gives_up_as_too_slow() {
        let stuck = std::future::pending::<Result<(), actix_ws::Closed>>();
        let stop = transmit(stuck, None, Duration::from_millis(10))
            .await
            .expect_err("never sent");
        assert!(matches!(stop, Stop::Close(Closing::TooSlow { .. })));
    }

    #[tokio::test]
    async fn a_waiting_send_gives_way_to_the_hubs_close_signal() {
        let signals = Signals::new();
        signals.close(Closing::SignedOut);
        let stuck = std::future::pending::<Result<(), actix_ws::Closed>>();
        let stop = transmit(stuck, Some(&signals), Duration::from_secs(3_600))
            .await
            .expect_err("closed");
        assert!(matches!(stop, Stop::Close(Closing::SignedOut)));
    }

    #[tokio::test]
    async fn a_send_on_a_closed_connection_means_the_client_is_gone() {
        let signals = Signals::new();
        let closed = std::future::ready(Err(actix_ws::Closed));
        let stop = transmit(closed, Some(&signals), Duration::from_secs(3_600))
            .await
            .expect_err("gone");
        assert!(matches!(stop, Stop::Gone));
        let sent = std::future::ready(Ok(()));
        assert!(
            transmit(sent, Some(&signals), Duration::from_secs(3_600))
                .await
                .is_ok()
        );
    }

    #[test]
    fn a_past_expiry_is_due_at_once() {
        let past = Timestamp::now() - jiff::SignedDuration::from_mins(1);
        assert_eq!(until(past), Duration::ZERO);
        let later = Timestamp::now() + jiff::SignedDuration::from_mins(10);
        assert!(until(later) > Duration::from_secs(500));
    }
}
