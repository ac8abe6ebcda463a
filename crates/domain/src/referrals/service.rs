//! The referral use cases: a care-team doctor refers a patient to another doctor, sharing a
//! snapshot of the record; the two doctors, and only they, follow it to its end. Every attempt
//! is audited, and each change notifies the other doctor in the same transaction.

use std::sync::Arc;

use crate::access::{AccessError, Action, Actor, Relationship};
use crate::audit::{AuditAction, AuditEvent, Gatekeeper};
use crate::identity::{UserId, UserRepository, active_doctor, display_name, name_of};
use crate::jobs::NewJob;
use crate::kernel::{Page, PageRequest, RepositoryError, ValidationErrors};
use crate::notifications::{
    NewNotification, NotificationData, NotificationKind, NotificationPublisher, Recipient,
    publish_committed,
};
use crate::patients::{CareTeamMember, MedicalRepository, MembershipId, PatientRepository};
use crate::referrals::{
    EscalationPolicy, NewReferral, Party, Referral, ReferralBox, ReferralDetail, ReferralId,
    ReferralQuery, ReferralRepository, ReferralSnapshot, ReferralStatus, StatusChange, Transition,
    TransitionError, Urgency, apply, parse_note,
};

/// Why a referral operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ReferralError {
    /// The caller may not do this (403).
    #[error("you may not do this")]
    Forbidden,
    /// No such patient, or none the caller may see (404): the two are not told apart.
    #[error("no such patient")]
    NotFound,
    /// No such referral, or none the caller is a party to (404).
    #[error("no such referral")]
    ReferralNotFound,
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// A status change the state machine refuses: `NotFrom` is a conflict with the referral's
    /// current status (409), `WrongParty` a change the caller's side may never ask for (403).
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Internal(#[from] RepositoryError),
}

impl From<AccessError> for ReferralError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Forbidden => Self::Forbidden,
            AccessError::NotFound => Self::NotFound,
            AccessError::Internal(e) => Self::Internal(e),
        }
    }
}

/// Referrals between doctors.
#[derive(Clone)]
pub struct ReferralService {
    gate: Gatekeeper,
    referrals: Arc<dyn ReferralRepository>,
    patients: Arc<dyn PatientRepository>,
    medical: Arc<dyn MedicalRepository>,
    users: Arc<dyn UserRepository>,
    publisher: Arc<dyn NotificationPublisher>,
    escalation: EscalationPolicy,
}

impl std::fmt::Debug for ReferralService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferralService").finish_non_exhaustive()
    }
}

impl ReferralService {
    pub fn new(
        gate: Gatekeeper,
        referrals: Arc<dyn ReferralRepository>,
        patients: Arc<dyn PatientRepository>,
        medical: Arc<dyn MedicalRepository>,
        users: Arc<dyn UserRepository>,
        publisher: Arc<dyn NotificationPublisher>,
    ) -> Self {
        Self {
            gate,
            referrals,
            patients,
            medical,
            users,
            publisher,
            escalation: EscalationPolicy::default(),
        }
    }

    /// The same service, escalating unanswered referrals after these times.
    #[must_use]
    pub fn with_escalation(mut self, escalation: EscalationPolicy) -> Self {
        self.escalation = escalation;
        self
    }
}

impl Transition {
    const fn audit_action(self) -> AuditAction {
        match self {
            Transition::Accept => AuditAction::ReferralAccept,
            Transition::Decline => AuditAction::ReferralDecline,
            Transition::Cancel => AuditAction::ReferralCancel,
            Transition::Complete => AuditAction::ReferralComplete,
        }
    }

    /// The note the change carries, and the field it is read from.
    const fn note_field(self) -> Option<&'static str> {
        match self {
            Transition::Decline => Some("reason"),
            Transition::Complete => Some("outcome"),
            Transition::Accept | Transition::Cancel => None,
        }
    }

    /// What the other party is told.
    const fn notification(self) -> (NotificationKind, &'static str) {
        match self {
            Transition::Accept => (NotificationKind::ReferralAccepted, "accepted your referral"),
            Transition::Decline => (NotificationKind::ReferralDeclined, "declined your referral"),
            Transition::Cancel => (
                NotificationKind::ReferralCancelled,
                "cancelled a referral to you",
            ),
            Transition::Complete => (
                NotificationKind::ReferralCompleted,
                "completed your referral",
            ),
        }
    }
}

impl ReferralService {
    /// Only doctors take part in referrals; anyone else is refused (and audited) before their
    /// request is even read.
    ///
    /// # Errors
    /// `Forbidden`, `Internal`.
    pub async fn check_referrals_role(
        &self,
        actor: &Actor,
        action: AuditAction,
    ) -> Result<(), ReferralError> {
        Ok(self
            .gate
            .check_role(actor, Action::AccessReferral, action)
            .await?)
    }

    /// Refers a patient of the calling doctor's care team to another active doctor, with a
    /// snapshot of the patient's profile and medical information as they are now. The
    /// recipient is notified (`referral.received`) in the same transaction.
    ///
    /// # Errors
    /// `Forbidden` (not a doctor; only an emergency access to the patient), `Invalid` (the
    /// recipient is not another active doctor), `NotFound` (no such patient, or not one of the
    /// caller's), `Internal`.
    pub async fn send_referral(
        &self,
        actor: &Actor,
        new: NewReferral,
    ) -> Result<ReferralDetail, ReferralError> {
        self.check_referrals_role(actor, AuditAction::ReferralCreate)
            .await?;
        let patient_id = new.patient_id;
        let basis = self
            .gate
            .decide_on_patient(actor, patient_id, Action::SendReferral)
            .await?;
        let to_doctor_id = new.to_doctor_id;
        if to_doctor_id == actor.user_id() {
            let mut errors = ValidationErrors::new();
            errors.add("to_doctor_id", "must be another doctor than the sender");
            return Err(errors.into());
        }
        let recipient =
            active_doctor::<ReferralError>(self.users.as_ref(), to_doctor_id, "to_doctor_id")
                .await?;
        let patient = self
            .patients
            .find(patient_id)
            .await?
            .ok_or(ReferralError::NotFound)?;
        let medical = self.medical.get(patient_id).await?;
        let sender = self.users.find_by_id(actor.user_id()).await?;
        let by = display_name(sender.as_ref());
        let now = self.gate.now();
        let referral = Referral {
            id: ReferralId::generate(),
            patient_id,
            patient_name: patient.details.full_name.as_str().to_owned(),
            from_doctor_id: actor.user_id(),
            from_doctor_name: sender.as_ref().map(|u| u.full_name.clone()),
            to_doctor_id,
            to_doctor_name: Some(recipient.full_name),
            reason: new.reason,
            urgency: new.urgency,
            status: ReferralStatus::Sent,
            decline_reason: None,
            outcome: None,
            created_at: now,
            updated_at: now,
        };
        let snapshot = ReferralSnapshot {
            clinical_summary: new.clinical_summary,
            patient,
            medical,
        };
        let title = match referral.urgency {
            Urgency::Routine => format!("Referral from {by}"),
            Urgency::Urgent => format!("Urgent referral from {by}"),
            Urgency::Emergency => format!("Emergency referral from {by}"),
        };
        let notice = NewNotification {
            recipient: Recipient::User(to_doctor_id),
            kind: NotificationKind::ReferralReceived,
            data: referral_data(&referral, actor.user_id(), title),
        };
        let event = self.gate.event(
            actor,
            Some(patient_id),
            AuditAction::ReferralCreate,
            Some(basis),
            now,
        );
        let jobs: Vec<NewJob> = self.escalation.job(&referral).into_iter().collect();
        let stored = self
            .referrals
            .create(&referral, &snapshot, &event, &[notice], &jobs)
            .await?;
        publish_committed(self.publisher.as_ref(), &stored).await;
        Ok(ReferralDetail {
            referral,
            snapshot: Some(snapshot),
        })
    }

    /// A referral the caller is a party to, with what it shared. The recipient no longer sees
    /// the snapshot once they declined it or the sender cancelled it.
    ///
    /// # Errors
    /// `Forbidden` (not a doctor), `ReferralNotFound` (none, or not the caller's), `Internal`.
    pub async fn get_referral(
        &self,
        actor: &Actor,
        id: ReferralId,
    ) -> Result<ReferralDetail, ReferralError> {
        self.check_referrals_role(actor, AuditAction::ReferralRead)
            .await?;
        let Some((referral, snapshot)) = self.referrals.find_detail(id).await? else {
            return Err(self
                .gate
                .deny(
                    actor,
                    None,
                    AuditAction::ReferralRead,
                    ReferralError::ReferralNotFound,
                )
                .await);
        };
        let party = referral.party_of(actor.user_id());
        let basis = self
            .gate
            .decide(
                actor,
                party.map_or(Relationship::None, |_| Relationship::Party),
                Action::AccessReferral,
                AuditAction::ReferralRead,
                Some(referral.patient_id),
            )
            .await
            .map_err(|e| e.hiding_as(ReferralError::ReferralNotFound))?;
        let Some(party) = party else {
            return Err(ReferralError::ReferralNotFound);
        };
        let withdrawn = matches!(
            referral.status,
            ReferralStatus::Declined | ReferralStatus::Cancelled
        );
        let snapshot = (party == Party::Sender || !withdrawn).then_some(snapshot);
        let event = self.gate.event(
            actor,
            Some(referral.patient_id),
            AuditAction::ReferralRead,
            Some(basis),
            self.gate.now(),
        );
        self.gate.record(vec![event]).await?;
        Ok(ReferralDetail { referral, snapshot })
    }

    /// The caller's inbox (referrals to them) or outbox (referrals they sent), newest first,
    /// optionally of one status. Each referral listed is audited as a read of its patient.
    ///
    /// # Errors
    /// `Forbidden` (not a doctor), `Internal`.
    pub async fn list_referrals(
        &self,
        actor: &Actor,
        referral_box: ReferralBox,
        status: Option<ReferralStatus>,
        page: PageRequest<ReferralId>,
    ) -> Result<Page<Referral, ReferralId>, ReferralError> {
        // The caller's own boxes: they are a party to every referral in them.
        let basis = self
            .gate
            .decide(
                actor,
                Relationship::Party,
                Action::AccessReferral,
                AuditAction::ReferralList,
                None,
            )
            .await?;
        let query = ReferralQuery {
            doctor_id: actor.user_id(),
            referral_box,
            status,
        };
        let found = self.referrals.list(query, page).await?;
        let now = self.gate.now();
        let events: Vec<AuditEvent> = found
            .items
            .iter()
            .map(|r| {
                self.gate.event(
                    actor,
                    Some(r.patient_id),
                    AuditAction::ReferralList,
                    Some(basis),
                    now,
                )
            })
            .collect();
        if !events.is_empty() {
            self.gate.record(events).await?;
        }
        Ok(found)
    }

    /// Moves a referral along its state machine. Declining needs a reason and completing an
    /// outcome note (`note`); accepting and cancelling take none. Accepting puts the recipient
    /// on the patient's care team (unless they already are), with the referral as the reason.
    /// The other party is notified in the same transaction.
    ///
    /// # Errors
    /// `Forbidden` (not a doctor), `ReferralNotFound` (none, or not the caller's),
    /// `Transition(WrongParty)` (the caller's side may not ask for this), `Invalid` (the note),
    /// `Transition(NotFrom)` (the current status does not allow it, also when it changed
    /// concurrently), `Internal`.
    pub async fn change_referral(
        &self,
        actor: &Actor,
        id: ReferralId,
        transition: Transition,
        note: Option<&str>,
    ) -> Result<Referral, ReferralError> {
        let action = transition.audit_action();
        self.check_referrals_role(actor, action).await?;
        let Some(referral) = self.referrals.find(id).await? else {
            return Err(self
                .gate
                .deny(actor, None, action, ReferralError::ReferralNotFound)
                .await);
        };
        let patient_id = referral.patient_id;
        let party = referral.party_of(actor.user_id());
        let basis = self
            .gate
            .decide(
                actor,
                party.map_or(Relationship::None, |_| Relationship::Party),
                Action::AccessReferral,
                action,
                Some(patient_id),
            )
            .await
            .map_err(|e| e.hiding_as(ReferralError::ReferralNotFound))?;
        let Some(party) = party else {
            return Err(ReferralError::ReferralNotFound);
        };
        if transition.party() != party {
            let error = TransitionError::WrongParty(transition.party()).into();
            return Err(self.gate.deny(actor, Some(patient_id), action, error).await);
        }
        let note = parse_transition_note(transition, note)?;
        let to = apply(referral.status, party, transition)?;
        let now = self.gate.now();
        let membership = (transition == Transition::Accept).then(|| CareTeamMember {
            id: MembershipId::generate(),
            patient_id,
            doctor_id: actor.user_id(),
            doctor_name: None,
            started_at: now,
            ended_at: None,
            added_by: actor.user_id(),
            ended_by: None,
            referral_id: Some(id),
            appointment_id: None,
        });
        let change = StatusChange {
            id,
            from: referral.status,
            to,
            at: now,
            note: note.clone(),
            membership,
        };
        let other = match party {
            Party::Sender => referral.to_doctor_id,
            Party::Recipient => referral.from_doctor_id,
        };
        let (kind, verb) = transition.notification();
        let by = name_of(self.users.as_ref(), actor.user_id()).await?;
        let notice = NewNotification {
            recipient: Recipient::User(other),
            kind,
            data: referral_data(&referral, actor.user_id(), format!("{by} {verb}")),
        };
        let event = self
            .gate
            .event(actor, Some(patient_id), action, Some(basis), now);
        let Some(stored) = self
            .referrals
            .change_status(&change, &event, &[notice])
            .await?
        else {
            // Another request changed the status first: report where it stands now.
            let current = self
                .referrals
                .find(id)
                .await?
                .map_or(referral.status, |r| r.status);
            apply(current, party, transition)?;
            return Err(TransitionError::NotFrom {
                from: current,
                to_verb: "changed",
            }
            .into());
        };
        publish_committed(self.publisher.as_ref(), &stored).await;
        let mut changed = referral;
        changed.status = to;
        changed.updated_at = now;
        match transition {
            Transition::Decline => changed.decline_reason = note,
            Transition::Complete => changed.outcome = note,
            Transition::Accept | Transition::Cancel => {}
        }
        Ok(changed)
    }
}

/// The ids and title a referral notification carries.
pub(super) fn referral_data(referral: &Referral, actor: UserId, title: String) -> NotificationData {
    NotificationData {
        title,
        referral_id: Some(*referral.id.as_uuid()),
        patient_id: Some(*referral.patient_id.as_uuid()),
        actor_id: Some(*actor.as_uuid()),
        ..NotificationData::default()
    }
}

/// The decline reason or outcome note a change needs, validated; a note on a change that takes
/// none is refused.
fn parse_transition_note(
    transition: Transition,
    note: Option<&str>,
) -> Result<Option<crate::kernel::Text>, ReferralError> {
    let mut errors = ValidationErrors::new();
    let parsed = match (transition.note_field(), note) {
        (Some(field), Some(raw)) => errors.check(field, parse_note(raw)),
        (Some(field), None) => {
            errors.add(field, "is required");
            None
        }
        (None, None) => None,
        (None, Some(_)) => {
            errors.add("note", "this change takes no note");
            None
        }
    };
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(errors.into())
    }
}

#[cfg(test)]
mod tests;
