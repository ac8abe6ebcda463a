//! Escalation: an urgent or emergency referral still `sent` after its time (4 hours and 30
//! minutes by default) tells its sender and every active administrator, once. A job enqueued
//! with the referral does it; it finds nothing to do if the referral was answered or
//! withdrawn meanwhile.

use std::sync::Arc;

use jiff::SignedDuration;

use crate::jobs::{NewJob, Task};
use crate::kernel::{Clock, ReferralId, RepositoryError};
use crate::notifications::{
    NewNotification, NotificationKind, NotificationPublisher, NotificationRepository, Recipient,
    publish_committed,
};

use super::service::referral_data;
use super::{Referral, ReferralRepository, ReferralStatus, Urgency};

/// How long a referral may wait unanswered, by urgency; routine ones never escalate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EscalationPolicy {
    pub urgent: SignedDuration,
    pub emergency: SignedDuration,
}

impl Default for EscalationPolicy {
    fn default() -> Self {
        Self {
            urgent: SignedDuration::from_hours(4),
            emergency: SignedDuration::from_mins(30),
        }
    }
}

impl EscalationPolicy {
    /// The escalation job of a referral just sent, if its urgency has one.
    pub fn job(&self, referral: &Referral) -> Option<NewJob> {
        let after = match referral.urgency {
            Urgency::Routine => return None,
            Urgency::Urgent => self.urgent,
            Urgency::Emergency => self.emergency,
        };
        let at = referral.created_at.checked_add(after).ok()?;
        Some(
            NewJob::new(
                Task::ReferralEscalation {
                    referral: referral.id,
                },
                at,
            )
            .unique(escalation_key(referral.id)),
        )
    }
}

fn escalation_key(id: ReferralId) -> String {
    format!("referral.escalation:{id}")
}

/// What an escalation job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscalationOutcome {
    /// This many people were told.
    Escalated(usize),
    /// A run of this job had already told them.
    AlreadyEscalated,
    /// The referral is gone or no longer waiting.
    Moot(&'static str),
}

/// Escalates referrals when their jobs run.
#[derive(Clone)]
pub struct EscalationService {
    referrals: Arc<dyn ReferralRepository>,
    notifications: Arc<dyn NotificationRepository>,
    publisher: Arc<dyn NotificationPublisher>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for EscalationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EscalationService").finish_non_exhaustive()
    }
}

impl EscalationService {
    pub fn new(
        referrals: Arc<dyn ReferralRepository>,
        notifications: Arc<dyn NotificationRepository>,
        publisher: Arc<dyn NotificationPublisher>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            referrals,
            notifications,
            publisher,
            clock,
        }
    }

    /// Tells the sender and every active administrator that referral `id` is still waiting.
    ///
    /// # Errors
    /// [`RepositoryError`]: the job retries.
    pub async fn escalate(&self, id: ReferralId) -> Result<EscalationOutcome, RepositoryError> {
        let Some(referral) = self.referrals.find(id).await? else {
            return Ok(EscalationOutcome::Moot("the referral is gone"));
        };
        if referral.status != ReferralStatus::Sent {
            return Ok(EscalationOutcome::Moot(
                "the referral was answered or withdrawn",
            ));
        }
        let waited = self.clock.now().duration_since(referral.created_at);
        let to = referral.to_doctor_name.as_ref().map_or_else(
            || "another doctor".to_owned(),
            |n| format!("Dr {}", n.as_str()),
        );
        let urgency = match referral.urgency {
            Urgency::Emergency => "Emergency",
            Urgency::Urgent | Urgency::Routine => "Urgent",
        };
        let title = format!(
            "{urgency} referral to {to} unanswered after {}",
            waited_for(waited)
        );
        let data = referral_data(&referral, referral.to_doctor_id, title);
        let notices = [
            NewNotification {
                recipient: Recipient::User(referral.from_doctor_id),
                kind: NotificationKind::ReferralEscalated,
                data: data.clone(),
            },
            NewNotification {
                recipient: Recipient::ActiveAdmins,
                kind: NotificationKind::ReferralEscalated,
                data,
            },
        ];
        match self
            .notifications
            .append_once(&escalation_key(id), &notices, self.clock.now())
            .await?
        {
            Some(stored) => {
                publish_committed(self.publisher.as_ref(), &stored).await;
                Ok(EscalationOutcome::Escalated(stored.len()))
            }
            None => Ok(EscalationOutcome::AlreadyEscalated),
        }
    }
}

/// "4 hours", "30 minutes", "1 hour 5 minutes".
fn waited_for(waited: SignedDuration) -> String {
    let minutes = waited.as_mins().max(0);
    let (hours, minutes) = (minutes / 60, minutes % 60);
    let unit = |n: i64, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    match (hours, minutes) {
        (0, m) => unit(m, "minute"),
        (h, 0) => unit(h, "hour"),
        (h, m) => format!("{} {}", unit(h, "hour"), unit(m, "minute")),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use jiff::Timestamp;

    use super::*;
    use crate::identity::FullName;
    use crate::kernel::{FixedClock, PatientId, Text, UserId};
    use crate::notifications::{
        MockNotificationPublisher, MockNotificationRepository, Notification,
    };
    use crate::referrals::MockReferralRepository;

    const SENT_AT: Timestamp = Timestamp::constant(1_796_000_000, 0);

    fn referral(urgency: Urgency, status: ReferralStatus) -> Referral {
        Referral {
            id: ReferralId::generate(),
            patient_id: PatientId::generate(),
            patient_name: "Ann Archer".into(),
            from_doctor_id: UserId::generate(),
            from_doctor_name: Some(FullName::parse("Gregory House").expect("valid")),
            to_doctor_id: UserId::generate(),
            to_doctor_name: Some(FullName::parse("Lisa Cuddy").expect("valid")),
            reason: Text::line("Suspected arrhythmia", 500).expect("valid"),
            urgency,
            status,
            decline_reason: None,
            outcome: None,
            created_at: SENT_AT,
            updated_at: SENT_AT,
        }
    }

    #[test]
    fn only_urgent_and_emergency_referrals_escalate_each_after_its_time() {
        let policy = EscalationPolicy::default();
        assert_eq!(
            policy.job(&referral(Urgency::Routine, ReferralStatus::Sent)),
            None
        );
        let urgent = referral(Urgency::Urgent, ReferralStatus::Sent);
        let job = policy.job(&urgent).expect("a job");
        assert_eq!(job.run_at, SENT_AT + SignedDuration::from_hours(4));
        assert_eq!(
            job.task,
            Task::ReferralEscalation {
                referral: urgent.id
            }
        );
        assert_eq!(
            job.unique_key,
            Some(format!("referral.escalation:{}", urgent.id))
        );
        let emergency = referral(Urgency::Emergency, ReferralStatus::Sent);
        assert_eq!(
            policy.job(&emergency).map(|j| j.run_at),
            Some(SENT_AT + SignedDuration::from_mins(30))
        );
    }

    /// The service, with `found` as the referral and a notification store that records what
    /// it is asked to store once (answering `None`, already stored, when `again`).
    fn escalations(
        found: Option<Referral>,
        again: bool,
    ) -> (EscalationService, Arc<Mutex<Vec<NewNotification>>>) {
        let mut referrals = MockReferralRepository::new();
        referrals
            .expect_find()
            .returning(move |_| Ok(found.clone()));
        let asked: Arc<Mutex<Vec<NewNotification>>> = Arc::default();
        let log = Arc::clone(&asked);
        let mut notifications = MockNotificationRepository::new();
        notifications
            .expect_append_once()
            .returning(move |_, notices, at| {
                log.lock().expect("log").extend(notices.iter().cloned());
                Ok((!again).then(|| {
                    notices
                        .iter()
                        .enumerate()
                        .map(|(n, notice)| Notification {
                            id: i64::try_from(n).expect("small") + 1,
                            recipient: UserId::generate(),
                            kind: notice.kind,
                            created_at: at,
                            read_at: None,
                            data: notice.data.clone(),
                        })
                        .collect()
                }))
            });
        let mut publisher = MockNotificationPublisher::new();
        publisher.expect_publish().returning(|_| ());
        let clock = FixedClock(SENT_AT + SignedDuration::from_mins(245));
        let service = EscalationService::new(
            Arc::new(referrals),
            Arc::new(notifications),
            Arc::new(publisher),
            Arc::new(clock),
        );
        (service, asked)
    }

    #[tokio::test]
    async fn a_waiting_referral_tells_its_sender_and_the_administrators_without_clinical_text() {
        let urgent = referral(Urgency::Urgent, ReferralStatus::Sent);
        let (service, asked) = escalations(Some(urgent.clone()), false);
        let outcome = service.escalate(urgent.id).await.expect("escalated");
        assert_eq!(outcome, EscalationOutcome::Escalated(2));
        let asked = asked.lock().expect("log");
        assert_eq!(asked[0].recipient, Recipient::User(urgent.from_doctor_id));
        assert_eq!(asked[1].recipient, Recipient::ActiveAdmins);
        let title = &asked[0].data.title;
        assert_eq!(
            title,
            "Urgent referral to Dr Lisa Cuddy unanswered after 4 hours 5 minutes"
        );
        assert_eq!(asked[0].kind, NotificationKind::ReferralEscalated);
        assert_eq!(asked[0].data.referral_id, Some(*urgent.id.as_uuid()));
    }

    #[tokio::test]
    async fn an_answered_or_missing_referral_or_a_second_run_tells_no_one_again() {
        for status in [
            ReferralStatus::Accepted,
            ReferralStatus::Declined,
            ReferralStatus::Cancelled,
        ] {
            let answered = referral(Urgency::Urgent, status);
            let (service, asked) = escalations(Some(answered.clone()), false);
            let outcome = service.escalate(answered.id).await.expect("no error");
            assert!(matches!(outcome, EscalationOutcome::Moot(_)), "{status:?}");
            assert!(asked.lock().expect("log").is_empty());
        }
        let (service, _) = escalations(None, false);
        let outcome = service
            .escalate(ReferralId::generate())
            .await
            .expect("no error");
        assert!(matches!(outcome, EscalationOutcome::Moot(_)));
        let urgent = referral(Urgency::Urgent, ReferralStatus::Sent);
        let (service, _) = escalations(Some(urgent.clone()), true);
        let outcome = service.escalate(urgent.id).await.expect("no error");
        assert_eq!(outcome, EscalationOutcome::AlreadyEscalated);
    }

    #[test]
    fn waits_read_as_people_say_them() {
        assert_eq!(waited_for(SignedDuration::from_hours(4)), "4 hours");
        assert_eq!(waited_for(SignedDuration::from_mins(30)), "30 minutes");
        assert_eq!(waited_for(SignedDuration::from_mins(61)), "1 hour 1 minute");
        assert_eq!(waited_for(SignedDuration::from_secs(59)), "0 minutes");
    }
}
