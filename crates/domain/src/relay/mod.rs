//! Relaying: what one user's client sends another's through CareHub as it happens, and never
//! stores: a video call's signalling, and that someone is typing in a conversation. The
//! concepts that send them decide who may send what to whom; the relay only carries it, best
//! effort, to the instance holding the recipient's sockets.

use async_trait::async_trait;

use crate::identity::UserId;
use crate::kernel::{AppointmentId, ConversationId};

/// What one party of a video call sends the other (see [`crate::calls`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallSignal {
    /// The sender joined the call.
    Joined,
    /// The sender left it.
    Left,
    /// Signalling for the peer connection (an offer, an answer, an ICE candidate): JSON text
    /// CareHub passes on as it is.
    Data(String),
}

/// What is relayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Live {
    /// A video call's signalling.
    Call {
        appointment_id: AppointmentId,
        signal: CallSignal,
    },
    /// The sender is typing in a conversation (see [`crate::messages`]).
    Typing { conversation_id: ConversationId },
}

/// Something on its way from one user to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relayed {
    pub from: UserId,
    pub to: UserId,
    pub what: Live,
}

/// Carries what is relayed to the instance, any of them, that holds the recipient's sockets.
/// Best effort, like a network: what is lost is recovered by the clients (a call joined
/// again, a "typing" sent again), never reported to the sender. What one sender relays arrives
/// in the order relayed.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Relay: Send + Sync {
    async fn relay(&self, relayed: Relayed);
}

/// What an instance hands relayed signals to (its socket hub).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait RelaySink: Send + Sync {
    /// Passes it to the recipient's sockets on this instance.
    fn deliver(&self, relayed: Relayed);

    /// Whether this instance holds a socket of `user`: the relay need not fetch anything for
    /// anyone else.
    fn holds(&self, user: UserId) -> bool;
}
