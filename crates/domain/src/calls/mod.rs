//! Video consultations. An appointment booked with `video` has a call, which its doctor and
//! its patient may join from [`CALL_OPENS_BEFORE`] its start until its end. CareHub relays
//! their signalling (offers, answers, ICE candidates; [`crate::relay`]) from one to the other
//! and nothing else:
//! the media flow between their browsers (or through a TURN server), never through CareHub.
//! Joining and leaving are recorded on the appointment and audited; the call's duration is
//! the time both were in it together.

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::audit::AuditEvent;
use crate::identity::UserId;
use crate::kernel::{AppointmentId, RepositoryError, string_enum};
use crate::scheduling::Appointment;

mod service;
#[cfg(test)]
mod tests;

pub use service::*;

/// How long before its start an appointment's call opens.
pub const CALL_OPENS_BEFORE: SignedDuration = SignedDuration::from_mins(10);

/// The largest signal relayed, in bytes of JSON: an SDP offer of audio and video is a few
/// kilobytes.
pub const MAX_SIGNAL_BYTES: usize = 12 * 1024;

/// When an appointment's call may be joined: `[opens_at, closes_at)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallWindow {
    pub opens_at: Timestamp,
    pub closes_at: Timestamp,
}

impl CallWindow {
    /// From [`CALL_OPENS_BEFORE`] the appointment's start until its end.
    pub fn of(appointment: &Appointment) -> Self {
        Self {
            opens_at: appointment.start - CALL_OPENS_BEFORE,
            closes_at: appointment.end,
        }
    }

    pub fn is_open(&self, at: Timestamp) -> bool {
        self.opens_at <= at && at < self.closes_at
    }
}

string_enum!(
    /// What a party did in a call.
    CallEventKind, "call event" {
        Join => "join",
        /// Left, or their socket closed while in the call.
        Leave => "leave",
    }
);

/// A party joining or leaving an appointment's call, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallEvent {
    pub appointment_id: AppointmentId,
    pub user_id: UserId,
    pub kind: CallEventKind,
    pub at: Timestamp,
}

/// An appointment's call: when it may be joined, by whom, and what happened in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub appointment_id: AppointmentId,
    pub window: CallWindow,
    pub doctor_id: UserId,
    /// The patient's account; `None` while their record has none (the doctor would wait
    /// alone).
    pub patient_user_id: Option<UserId>,
    /// Joins and leaves, oldest first.
    pub events: Vec<CallEvent>,
}

impl Call {
    /// The other party of `user`, when `user` is one and the other has an account.
    pub fn peer_of(&self, user: UserId) -> Option<UserId> {
        if user == self.doctor_id {
            self.patient_user_id
        } else if Some(user) == self.patient_user_id {
            Some(self.doctor_id)
        } else {
            None
        }
    }

    /// Whether `user` is in the call as recorded: joined more often than they left (one may
    /// join from two devices).
    pub fn is_present(&self, user: UserId) -> bool {
        self.events
            .iter()
            .filter(|e| e.user_id == user)
            .fold(0, |joined, e| e.kind.step(joined))
            > 0
    }

    /// When both parties were first in the call together.
    pub fn started_at(&self) -> Option<Timestamp> {
        self.together().first().map(|(from, _)| *from)
    }

    /// How long both parties were in the call together. A time together that never ended (an
    /// instance stopped before recording a leave) counts until `now`, and never past the
    /// window's close.
    pub fn duration(&self, now: Timestamp) -> SignedDuration {
        let cap = now.min(self.window.closes_at);
        self.together()
            .into_iter()
            .map(|(from, to)| {
                let to = to.unwrap_or(cap).min(cap);
                if to > from {
                    to.duration_since(from)
                } else {
                    SignedDuration::ZERO
                }
            })
            .sum()
    }

    /// The spans when both parties were present, `(from, to)`; `to` is `None` while the last
    /// one lasts.
    fn together(&self) -> Vec<(Timestamp, Option<Timestamp>)> {
        let Some(patient) = self.patient_user_id else {
            return Vec::new();
        };
        let (mut doctor_in, mut patient_in) = (0, 0);
        let mut spans = Vec::new();
        let mut since = None;
        for event in &self.events {
            if event.user_id == self.doctor_id {
                doctor_in = event.kind.step(doctor_in);
            } else if event.user_id == patient {
                patient_in = event.kind.step(patient_in);
            } else {
                continue;
            }
            match (since, doctor_in > 0 && patient_in > 0) {
                (None, true) => since = Some(event.at),
                (Some(from), false) => {
                    spans.push((from, Some(event.at)));
                    since = None;
                }
                _ => {}
            }
        }
        if let Some(from) = since {
            spans.push((from, None));
        }
        spans
    }
}

impl CallEventKind {
    /// How many times a party is in the call after this event, from `joined` before it.
    const fn step(self, joined: u32) -> u32 {
        match self {
            Self::Join => joined + 1,
            Self::Leave => joined.saturating_sub(1),
        }
    }
}

/// Records what happens in calls.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CallRepository: Send + Sync {
    /// Records a join or a leave with its audit event, in one transaction.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn record(&self, event: &CallEvent, audit: &AuditEvent) -> Result<(), RepositoryError>;

    /// The joins and leaves of an appointment's call, oldest first.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn events(&self, appointment: AppointmentId) -> Result<Vec<CallEvent>, RepositoryError>;
}
