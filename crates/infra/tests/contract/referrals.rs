//! `ReferralRepository`: what is stored with a referral (snapshot, audit event, notifications,
//! the membership an acceptance opens), the boxes, and the conditional status changes.

use std::collections::HashSet;
use std::sync::Arc;

use jiff::SignedDuration;
use tokio::sync::Barrier;

use carehub_domain::audit::AuditAction;
use carehub_domain::identity::{FullName, User, UserId};
use carehub_domain::kernel::{PageRequest, Text};
use carehub_domain::notifications::{
    NewNotification, Notification, NotificationData, NotificationKind, Recipient,
};
use carehub_domain::patients::{
    Allergy, BloodType, CareTeamMember, Condition, MedicalInfo, MedicalRecord, Medication, Patient,
    PatientId, Severity,
};
use carehub_domain::referrals::{
    Referral, ReferralBox, ReferralId, ReferralQuery, ReferralSnapshot, ReferralStatus,
    StatusChange, Urgency,
};
use carehub_infra::Repositories;

use crate::fixtures::patients::membership;
use crate::fixtures::referrals::{audit, notifications_of, register_patient, text};
use crate::fixtures::{audited, doctor, micros, now};

contract!(
    a_sent_referral_reads_back_whole_with_its_snapshot_names_audit_event_and_notification,
    the_snapshot_stays_as_it_was_sent_whatever_changes_in_the_record,
    a_refused_referral_stores_nothing_and_gives_its_notification_ids_back,
    inboxes_and_outboxes_list_newest_first_by_status_and_page_by_page,
    a_status_change_applies_only_from_the_expected_status_and_otherwise_writes_nothing,
    a_decline_without_its_reason_or_a_completion_without_its_outcome_is_refused,
    of_concurrent_changes_of_one_referral_exactly_one_applies,
    an_acceptance_opens_a_membership_for_the_referral_unless_the_doctor_already_has_one,
);

/// Writes medical information with every kind of entry.
async fn write_medical(repos: &Repositories, patient_id: PatientId, by: UserId) -> MedicalRecord {
    let info = MedicalInfo {
        blood_type: Some(BloodType::AbNegative),
        allergies: vec![
            Allergy {
                substance: text("penicillin"),
                reaction: Some(text("hives")),
                severity: Some(Severity::Severe),
            },
            Allergy {
                substance: text("latex"),
                reaction: None,
                severity: None,
            },
        ],
        conditions: vec![Condition {
            name: text("asthma"),
            code: Some(text("J45")),
            since: Some(jiff::civil::date(2001, 2, 3)),
        }],
        medications: vec![Medication {
            name: text("salbutamol"),
            dose: text("100 µg"),
            frequency: text("as needed"),
        }],
    };
    repos
        .medical
        .put(
            patient_id,
            &info,
            by,
            micros(now()),
            &audit(by, Some(patient_id), AuditAction::MedicalUpdate),
        )
        .await
        .unwrap()
}

/// What a referral of the patient would share now.
async fn snapshot_of(repos: &Repositories, patient_id: PatientId) -> ReferralSnapshot {
    ReferralSnapshot {
        clinical_summary: text("Palpitations for two weeks.\n\tECG attached."),
        patient: repos.patients.find(patient_id).await.unwrap().unwrap(),
        medical: repos.medical.get(patient_id).await.unwrap(),
    }
}

fn new_referral(patient: &Patient, from: &User, to: &User) -> Referral {
    let at = micros(now());
    Referral {
        id: ReferralId::generate(),
        patient_id: patient.id,
        patient_name: patient.details.full_name.as_str().to_owned(),
        from_doctor_id: from.id,
        from_doctor_name: None,
        to_doctor_id: to.id,
        to_doctor_name: None,
        reason: text("Suspected arrhythmia;\nplease assess."),
        urgency: Urgency::Urgent,
        status: ReferralStatus::Sent,
        decline_reason: None,
        outcome: None,
        created_at: at,
        updated_at: at,
    }
}

fn notice(recipient: UserId, kind: NotificationKind, referral: &Referral) -> NewNotification {
    NewNotification {
        recipient: Recipient::User(recipient),
        kind,
        data: NotificationData {
            title: format!("{} about a referral", kind.as_str()),
            referral_id: Some(*referral.id.as_uuid()),
            patient_id: Some(*referral.patient_id.as_uuid()),
            actor_id: Some(*referral.from_doctor_id.as_uuid()),
            emergency_access_id: None,
            appointment_id: None,
            lab_order_id: None,
            prescription_id: None,
            conversation_id: None,
            message_id: None,
            urgent: false,
        },
    }
}

/// Sends `referral` (with the patient's current snapshot), notifying its recipient.
async fn send(repos: &Repositories, referral: &Referral) -> Vec<Notification> {
    let snapshot = snapshot_of(repos, referral.patient_id).await;
    repos
        .referrals
        .create(
            referral,
            &snapshot,
            &audit(
                referral.from_doctor_id,
                Some(referral.patient_id),
                AuditAction::ReferralCreate,
            ),
            &[notice(
                referral.to_doctor_id,
                NotificationKind::ReferralReceived,
                referral,
            )],
            &[],
        )
        .await
        .expect("the referral is stored")
}

/// The referral as read back: with both doctors' names.
fn as_read(referral: &Referral, from: &User, to: &User) -> Referral {
    Referral {
        from_doctor_name: Some(from.full_name.clone()),
        to_doctor_name: Some(to.full_name.clone()),
        ..referral.clone()
    }
}

/// A status change of `referral` from its current status, at a fresh instant.
fn change(referral: &Referral, to: ReferralStatus, note: Option<&str>) -> StatusChange {
    StatusChange {
        id: referral.id,
        from: referral.status,
        to,
        at: micros(now() + SignedDuration::from_millis(1)),
        note: note.map(text),
        membership: None,
    }
}

/// Applies `change`, notifying `other` with `kind`; returns what `change_status` returned.
async fn apply(
    repos: &Repositories,
    referral: &Referral,
    change: &StatusChange,
    actor: UserId,
    other: UserId,
    kind: NotificationKind,
) -> Option<Vec<Notification>> {
    let action = match change.to {
        ReferralStatus::Accepted => AuditAction::ReferralAccept,
        ReferralStatus::Declined => AuditAction::ReferralDecline,
        ReferralStatus::Cancelled => AuditAction::ReferralCancel,
        _ => AuditAction::ReferralComplete,
    };
    repos
        .referrals
        .change_status(
            change,
            &audit(actor, Some(referral.patient_id), action),
            &[notice(other, kind, referral)],
        )
        .await
        .expect("the change runs")
}

/// The referral as `change` leaves it.
fn changed(referral: &Referral, change: &StatusChange) -> Referral {
    Referral {
        status: change.to,
        updated_at: change.at,
        decline_reason: change
            .note
            .clone()
            .filter(|_| change.to == ReferralStatus::Declined),
        outcome: change
            .note
            .clone()
            .filter(|_| change.to == ReferralStatus::Completed),
        ..referral.clone()
    }
}

/// Every referral of a box, page by page; returns their ids and the page sizes.
async fn whole_box(
    repos: &Repositories,
    query: ReferralQuery,
    limit: u32,
) -> (Vec<Referral>, Vec<usize>) {
    let mut all = Vec::new();
    let mut sizes = Vec::new();
    let mut after = None;
    loop {
        let page = repos
            .referrals
            .list(query, PageRequest::new(Some(limit), after).unwrap())
            .await
            .unwrap();
        sizes.push(page.items.len());
        all.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return (all, sizes),
        }
    }
}

// ---- Tests -----------------------------------------------------------------------------------

async fn a_sent_referral_reads_back_whole_with_its_snapshot_names_audit_event_and_notification(
    repos: Repositories,
) {
    let house = doctor(&repos, "dr.house").await;
    let wilson = doctor(&repos, "dr.wilson").await;
    let patient = register_patient(&repos, house.id, &[house.id]).await;
    let medical = write_medical(&repos, patient.id, house.id).await;
    assert!(medical.updated_at.is_some());
    let snapshot = snapshot_of(&repos, patient.id).await;
    assert_eq!(snapshot.medical, medical);
    let referral = new_referral(&patient, &house, &wilson);
    let received = notice(wilson.id, NotificationKind::ReferralReceived, &referral);

    let stored = repos
        .referrals
        .create(
            &referral,
            &snapshot,
            &audit(house.id, Some(patient.id), AuditAction::ReferralCreate),
            std::slice::from_ref(&received),
            &[],
        )
        .await
        .unwrap();

    assert_eq!(
        stored,
        vec![Notification {
            id: 1,
            recipient: wilson.id,
            kind: NotificationKind::ReferralReceived,
            created_at: referral.created_at,
            read_at: None,
            data: received.data.clone(),
        }]
    );
    assert_eq!(notifications_of(&repos, wilson.id).await, stored);
    assert_eq!(notifications_of(&repos, house.id).await, vec![]);

    let expected = as_read(&referral, &house, &wilson);
    assert_eq!(
        repos.referrals.find(referral.id).await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(
        repos.referrals.find_detail(referral.id).await.unwrap(),
        Some((expected, snapshot))
    );
    assert_eq!(
        audited(&repos, patient.id).await,
        [
            AuditAction::PatientCreate,
            AuditAction::MedicalUpdate,
            AuditAction::ReferralCreate
        ]
    );

    let unknown = ReferralId::generate();
    assert_eq!(repos.referrals.find(unknown).await.unwrap(), None);
    assert_eq!(repos.referrals.find_detail(unknown).await.unwrap(), None);
}

async fn the_snapshot_stays_as_it_was_sent_whatever_changes_in_the_record(repos: Repositories) {
    let house = doctor(&repos, "dr.house").await;
    let wilson = doctor(&repos, "dr.wilson").await;
    let patient = register_patient(&repos, house.id, &[house.id]).await;
    // Never written: the snapshot keeps the empty record, without a writer or a time.
    let before = snapshot_of(&repos, patient.id).await;
    assert_eq!(before.medical.updated_at, None);
    let referral = new_referral(&patient, &house, &wilson);
    send(&repos, &referral).await;

    write_medical(&repos, patient.id, house.id).await;
    let mut details = patient.details.clone();
    details.full_name = FullName::parse("Ada Byron").unwrap();
    details.location = None;
    let later = micros(now() + SignedDuration::from_secs(1));
    repos
        .patients
        .update(
            patient.id,
            &details,
            patient.updated_at,
            later,
            &audit(house.id, Some(patient.id), AuditAction::PatientUpdate),
        )
        .await
        .unwrap();

    let (read, snapshot) = repos
        .referrals
        .find_detail(referral.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snapshot, before);
    assert_eq!(read.patient_name, "Ada King Lovelace");
    assert_ne!(snapshot_of(&repos, patient.id).await, before);
}

async fn a_refused_referral_stores_nothing_and_gives_its_notification_ids_back(
    repos: Repositories,
) {
    let house = doctor(&repos, "dr.house").await;
    let wilson = doctor(&repos, "dr.wilson").await;
    let patient = register_patient(&repos, house.id, &[house.id]).await;
    let create = |referral: &Referral, notifications: Vec<NewNotification>| {
        let repos = &repos;
        let referral = referral.clone();
        async move {
            repos
                .referrals
                .create(
                    &referral,
                    &snapshot_of(repos, referral.patient_id).await,
                    &audit(
                        referral.from_doctor_id,
                        Some(referral.patient_id),
                        AuditAction::ReferralCreate,
                    ),
                    &notifications,
                    &[],
                )
                .await
        }
    };

    // A referral to oneself breaks a constraint: nothing of it is written, not even the
    // notification it carried for someone else.
    let to_self = new_referral(&patient, &house, &house);
    let refused = create(
        &to_self,
        vec![notice(
            wilson.id,
            NotificationKind::ReferralReceived,
            &to_self,
        )],
    )
    .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(repos.referrals.find(to_self.id).await.unwrap(), None);

    // A notification that cannot be stored (its recipient does not exist; numbered after the
    // real recipient's) undoes the whole change, the recipient's numbering included.
    let referral = new_referral(&patient, &house, &wilson);
    let nobody = UserId::from_uuid(uuid::Uuid::max());
    let refused = create(
        &referral,
        vec![
            notice(wilson.id, NotificationKind::ReferralReceived, &referral),
            notice(nobody, NotificationKind::ReferralReceived, &referral),
        ],
    )
    .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(repos.referrals.find(referral.id).await.unwrap(), None);
    assert_eq!(notifications_of(&repos, wilson.id).await, vec![]);
    assert_eq!(
        audited(&repos, patient.id).await,
        [AuditAction::PatientCreate]
    );

    assert_eq!(send(&repos, &referral).await[0].id, 1);
    // The same referral twice.
    let again = create(
        &referral,
        vec![notice(
            wilson.id,
            NotificationKind::ReferralReceived,
            &referral,
        )],
    )
    .await;
    assert!(again.is_err(), "{again:?}");
    assert_eq!(notifications_of(&repos, wilson.id).await.len(), 1);

    let next = send(&repos, &new_referral(&patient, &house, &wilson)).await;
    assert_eq!(next.iter().map(|n| n.id).collect::<Vec<_>>(), [2]);
    assert_eq!(
        audited(&repos, patient.id).await,
        [
            AuditAction::PatientCreate,
            AuditAction::ReferralCreate,
            AuditAction::ReferralCreate
        ]
    );
}

async fn inboxes_and_outboxes_list_newest_first_by_status_and_page_by_page(repos: Repositories) {
    let house = doctor(&repos, "dr.house").await;
    let wilson = doctor(&repos, "dr.wilson").await;
    let cuddy = doctor(&repos, "dr.cuddy").await;
    let patient = register_patient(&repos, house.id, &[house.id, wilson.id, cuddy.id]).await;

    let mut house_to_wilson = Vec::new();
    for _ in 0..5 {
        let referral = new_referral(&patient, &house, &wilson);
        send(&repos, &referral).await;
        house_to_wilson.push(referral);
    }
    let mut wilson_to_house = Vec::new();
    for _ in 0..2 {
        let referral = new_referral(&patient, &wilson, &house);
        send(&repos, &referral).await;
        wilson_to_house.push(referral);
    }
    let cuddy_to_wilson = new_referral(&patient, &cuddy, &wilson);
    send(&repos, &cuddy_to_wilson).await;

    // Two accepted and one declined; the others stay sent.
    for (i, to, note) in [
        (0, ReferralStatus::Accepted, None),
        (3, ReferralStatus::Accepted, None),
        (1, ReferralStatus::Declined, Some("No capacity this month.")),
    ] {
        let referral = &house_to_wilson[i];
        let change = change(referral, to, note);
        let kind = if to == ReferralStatus::Declined {
            NotificationKind::ReferralDeclined
        } else {
            NotificationKind::ReferralAccepted
        };
        assert!(
            apply(&repos, referral, &change, wilson.id, house.id, kind)
                .await
                .is_some()
        );
        house_to_wilson[i] = changed(referral, &change);
    }

    let newest_first = |referrals: Vec<&Referral>| {
        let mut expected: Vec<Referral> = referrals
            .into_iter()
            .map(|r| {
                let from = [&house, &wilson, &cuddy]
                    .into_iter()
                    .find(|d| d.id == r.from_doctor_id)
                    .unwrap();
                let to = [&house, &wilson, &cuddy]
                    .into_iter()
                    .find(|d| d.id == r.to_doctor_id)
                    .unwrap();
                as_read(r, from, to)
            })
            .collect();
        expected.sort_by(|a, b| b.id.as_uuid().cmp(a.id.as_uuid()));
        expected
    };
    let query = |doctor: &User, referral_box, status| ReferralQuery {
        doctor_id: doctor.id,
        referral_box,
        status,
    };

    let inbox = newest_first(
        house_to_wilson
            .iter()
            .chain(std::iter::once(&cuddy_to_wilson))
            .collect(),
    );
    let (listed, sizes) = whole_box(&repos, query(&wilson, ReferralBox::Inbox, None), 2).await;
    assert_eq!(listed, inbox);
    assert_eq!(sizes, [2, 2, 2]);
    let (listed, sizes) = whole_box(&repos, query(&wilson, ReferralBox::Inbox, None), 4).await;
    assert_eq!(listed, inbox);
    assert_eq!(sizes, [4, 2]);

    let outbox = newest_first(house_to_wilson.iter().collect());
    let (listed, _) = whole_box(&repos, query(&house, ReferralBox::Outbox, None), 100).await;
    assert_eq!(listed, outbox);

    let sent = newest_first(
        house_to_wilson
            .iter()
            .filter(|r| r.status == ReferralStatus::Sent)
            .collect(),
    );
    assert_eq!(sent.len(), 2);
    let (listed, sizes) = whole_box(
        &repos,
        query(&house, ReferralBox::Outbox, Some(ReferralStatus::Sent)),
        1,
    )
    .await;
    assert_eq!(listed, sent);
    assert_eq!(sizes, [1, 1]);

    let accepted = newest_first(
        house_to_wilson
            .iter()
            .filter(|r| r.status == ReferralStatus::Accepted)
            .collect(),
    );
    let (listed, _) = whole_box(
        &repos,
        query(&wilson, ReferralBox::Inbox, Some(ReferralStatus::Accepted)),
        100,
    )
    .await;
    assert_eq!(listed, accepted);
    let (listed, _) = whole_box(
        &repos,
        query(&house, ReferralBox::Outbox, Some(ReferralStatus::Declined)),
        100,
    )
    .await;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].decline_reason.as_ref().map(Text::as_str),
        Some("No capacity this month.")
    );

    let (listed, _) = whole_box(&repos, query(&house, ReferralBox::Inbox, None), 100).await;
    assert_eq!(listed, newest_first(wilson_to_house.iter().collect()));
    let (listed, _) = whole_box(&repos, query(&cuddy, ReferralBox::Outbox, None), 100).await;
    assert_eq!(listed, newest_first(vec![&cuddy_to_wilson]));
    for (doctor, referral_box, status) in [
        (&cuddy, ReferralBox::Inbox, None),
        (&wilson, ReferralBox::Inbox, Some(ReferralStatus::Completed)),
        (&house, ReferralBox::Inbox, Some(ReferralStatus::Accepted)),
    ] {
        let (listed, sizes) = whole_box(&repos, query(doctor, referral_box, status), 10).await;
        assert_eq!(listed, vec![]);
        assert_eq!(sizes, [0]);
    }
}

async fn a_status_change_applies_only_from_the_expected_status_and_otherwise_writes_nothing(
    repos: Repositories,
) {
    let house = doctor(&repos, "dr.house").await;
    let wilson = doctor(&repos, "dr.wilson").await;
    let patient = register_patient(&repos, house.id, &[house.id]).await;
    let referral = new_referral(&patient, &house, &wilson);
    send(&repos, &referral).await;
    let audited_before = audited(&repos, patient.id).await;

    // Asked as if it were accepted: it is still sent, so nothing happens.
    let stale = StatusChange {
        from: ReferralStatus::Accepted,
        ..change(&referral, ReferralStatus::Completed, Some("Ablation done."))
    };
    let outcome = apply(
        &repos,
        &referral,
        &stale,
        wilson.id,
        house.id,
        NotificationKind::ReferralCompleted,
    )
    .await;
    assert_eq!(outcome, None);
    let read = as_read(&referral, &house, &wilson);
    assert_eq!(
        repos.referrals.find(referral.id).await.unwrap(),
        Some(read.clone())
    );
    assert_eq!(notifications_of(&repos, house.id).await, vec![]);
    assert_eq!(audited(&repos, patient.id).await, audited_before);

    // Declined with its reason: stored with the audit event and the sender's notification.
    let decline = change(
        &referral,
        ReferralStatus::Declined,
        Some("Not my specialty."),
    );
    let stored = apply(
        &repos,
        &referral,
        &decline,
        wilson.id,
        house.id,
        NotificationKind::ReferralDeclined,
    )
    .await
    .expect("the referral was sent");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id, 1);
    assert_eq!(stored[0].recipient, house.id);
    assert_eq!(stored[0].kind, NotificationKind::ReferralDeclined);
    assert_eq!(stored[0].created_at, decline.at);
    assert_eq!(notifications_of(&repos, house.id).await, stored);
    let declined = changed(&read, &decline);
    assert_eq!(
        repos.referrals.find(referral.id).await.unwrap(),
        Some(declined.clone())
    );
    let (_, snapshot) = repos
        .referrals
        .find_detail(referral.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snapshot, snapshot_of(&repos, patient.id).await);

    // Declined is final: cancelling from sent finds nothing, and notifies nobody.
    let cancel = change(&referral, ReferralStatus::Cancelled, None);
    let outcome = apply(
        &repos,
        &referral,
        &cancel,
        house.id,
        wilson.id,
        NotificationKind::ReferralCancelled,
    )
    .await;
    assert_eq!(outcome, None);
    assert_eq!(notifications_of(&repos, wilson.id).await.len(), 1);
    assert_eq!(
        repos.referrals.find(referral.id).await.unwrap(),
        Some(declined)
    );
    let mut expected_audit = audited_before.clone();
    expected_audit.push(AuditAction::ReferralDecline);
    assert_eq!(audited(&repos, patient.id).await, expected_audit);

    // Accepted then completed with its outcome.
    let second = new_referral(&patient, &house, &wilson);
    send(&repos, &second).await;
    let accept = change(&second, ReferralStatus::Accepted, None);
    apply(
        &repos,
        &second,
        &accept,
        wilson.id,
        house.id,
        NotificationKind::ReferralAccepted,
    )
    .await
    .expect("sent");
    let accepted = changed(&second, &accept);
    let complete = change(&accepted, ReferralStatus::Completed, Some("Ablation done."));
    let stored = apply(
        &repos,
        &second,
        &complete,
        wilson.id,
        house.id,
        NotificationKind::ReferralCompleted,
    )
    .await
    .expect("accepted");
    assert_eq!(stored[0].id, 3);
    assert_eq!(
        repos.referrals.find(second.id).await.unwrap(),
        Some(as_read(&changed(&accepted, &complete), &house, &wilson))
    );

    // An unknown referral changes nothing either.
    let unknown = new_referral(&patient, &house, &wilson);
    let outcome = apply(
        &repos,
        &unknown,
        &change(&unknown, ReferralStatus::Accepted, None),
        wilson.id,
        house.id,
        NotificationKind::ReferralAccepted,
    )
    .await;
    assert_eq!(outcome, None);
    assert_eq!(notifications_of(&repos, house.id).await.len(), 3);
}

async fn a_decline_without_its_reason_or_a_completion_without_its_outcome_is_refused(
    repos: Repositories,
) {
    let house = doctor(&repos, "dr.house").await;
    let wilson = doctor(&repos, "dr.wilson").await;
    let patient = register_patient(&repos, house.id, &[house.id]).await;
    let referral = new_referral(&patient, &house, &wilson);
    send(&repos, &referral).await;

    let decline = change(&referral, ReferralStatus::Declined, None);
    let refused = repos
        .referrals
        .change_status(
            &decline,
            &audit(wilson.id, Some(patient.id), AuditAction::ReferralDecline),
            &[notice(
                house.id,
                NotificationKind::ReferralDeclined,
                &referral,
            )],
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(
        repos.referrals.find(referral.id).await.unwrap(),
        Some(as_read(&referral, &house, &wilson))
    );
    assert_eq!(notifications_of(&repos, house.id).await, vec![]);

    let accept = change(&referral, ReferralStatus::Accepted, None);
    apply(
        &repos,
        &referral,
        &accept,
        wilson.id,
        house.id,
        NotificationKind::ReferralAccepted,
    )
    .await
    .expect("sent");
    let accepted = changed(&referral, &accept);
    let complete = change(&accepted, ReferralStatus::Completed, None);
    let refused = repos
        .referrals
        .change_status(
            &complete,
            &audit(wilson.id, Some(patient.id), AuditAction::ReferralComplete),
            &[notice(
                house.id,
                NotificationKind::ReferralCompleted,
                &referral,
            )],
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(
        repos.referrals.find(referral.id).await.unwrap(),
        Some(as_read(&accepted, &house, &wilson))
    );
    // Only the acceptance notified the sender; the refused changes gave their ids back.
    let ids: Vec<i64> = notifications_of(&repos, house.id)
        .await
        .iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(ids, [1]);
    assert_eq!(
        audited(&repos, patient.id).await,
        [
            AuditAction::PatientCreate,
            AuditAction::ReferralCreate,
            AuditAction::ReferralAccept
        ]
    );
}

async fn of_concurrent_changes_of_one_referral_exactly_one_applies(repos: Repositories) {
    const RACERS: usize = 8;
    const ROUNDS: usize = 4;
    let house = doctor(&repos, "dr.house").await;
    let wilson = doctor(&repos, "dr.wilson").await;
    let patient = register_patient(&repos, house.id, &[house.id]).await;
    let repos = Arc::new(repos);
    for round in 0..ROUNDS {
        let referral = new_referral(&patient, &house, &wilson);
        send(&repos, &referral).await;
        let house_before = notifications_of(&repos, house.id).await.len();
        let wilson_before = notifications_of(&repos, wilson.id).await.len();
        let start = Arc::new(Barrier::new(RACERS));
        let racers: Vec<_> = (0..RACERS)
            .map(|i| {
                let repos = Arc::clone(&repos);
                let start = Arc::clone(&start);
                let referral = referral.clone();
                let (house, wilson) = (house.id, wilson.id);
                tokio::spawn(async move {
                    let (to, note, actor, other, kind) = match i % 3 {
                        0 => (
                            ReferralStatus::Accepted,
                            None,
                            wilson,
                            house,
                            NotificationKind::ReferralAccepted,
                        ),
                        1 => (
                            ReferralStatus::Declined,
                            Some("Full"),
                            wilson,
                            house,
                            NotificationKind::ReferralDeclined,
                        ),
                        _ => (
                            ReferralStatus::Cancelled,
                            None,
                            house,
                            wilson,
                            NotificationKind::ReferralCancelled,
                        ),
                    };
                    let mut change = change(&referral, to, note);
                    if to == ReferralStatus::Accepted {
                        change.membership = Some(CareTeamMember {
                            referral_id: Some(referral.id),
                            ..membership(referral.patient_id, wilson, now(), wilson)
                        });
                    }
                    start.wait().await;
                    let outcome = apply(&repos, &referral, &change, actor, other, kind).await;
                    outcome.map(|stored| (to, stored))
                })
            })
            .collect();
        let mut winners = Vec::new();
        for racer in racers {
            if let Some(won) = racer.await.unwrap() {
                winners.push(won);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let (to, stored) = winners.remove(0);
        assert_eq!(stored.len(), 1);
        let found = repos.referrals.find(referral.id).await.unwrap().unwrap();
        assert_eq!(found.status, to, "round {round}");
        // Exactly the winner's notification was stored, to the other party.
        let (house_now, wilson_now) = (
            notifications_of(&repos, house.id).await.len(),
            notifications_of(&repos, wilson.id).await.len(),
        );
        assert_eq!(
            house_now + wilson_now,
            house_before + wilson_before + 1,
            "round {round}"
        );
        let opened = repos
            .care_teams
            .list(patient.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.referral_id == Some(referral.id))
            .count();
        assert_eq!(
            opened,
            usize::from(to == ReferralStatus::Accepted),
            "round {round}"
        );
        // Leave the care team so that the next round's acceptance may open a membership.
        repos
            .care_teams
            .end(
                patient.id,
                wilson.id,
                micros(now() + SignedDuration::from_millis(2)),
                wilson.id,
                &audit(wilson.id, Some(patient.id), AuditAction::CareTeamEnd),
            )
            .await
            .unwrap();
    }
}

async fn an_acceptance_opens_a_membership_for_the_referral_unless_the_doctor_already_has_one(
    repos: Repositories,
) {
    let house = doctor(&repos, "dr.house").await;
    let wilson = doctor(&repos, "dr.wilson").await;
    let patient = register_patient(&repos, house.id, &[house.id]).await;

    let accept = |referral: &Referral| StatusChange {
        membership: Some(CareTeamMember {
            referral_id: Some(referral.id),
            ..membership(patient.id, wilson.id, now(), wilson.id)
        }),
        ..change(referral, ReferralStatus::Accepted, None)
    };

    let first = new_referral(&patient, &house, &wilson);
    send(&repos, &first).await;
    let first_accept = accept(&first);
    apply(
        &repos,
        &first,
        &first_accept,
        wilson.id,
        house.id,
        NotificationKind::ReferralAccepted,
    )
    .await
    .expect("sent");
    let team = repos.care_teams.list(patient.id).await.unwrap();
    let opened = CareTeamMember {
        doctor_name: Some(wilson.full_name.clone()),
        ..first_accept.membership.clone().unwrap()
    };
    assert_eq!(team.len(), 2);
    assert_eq!(team[1], opened);
    assert_eq!(team[0].referral_id, None);

    // Already on the team: the second acceptance applies and notifies, but opens nothing.
    let second = new_referral(&patient, &house, &wilson);
    send(&repos, &second).await;
    let stored = apply(
        &repos,
        &second,
        &accept(&second),
        wilson.id,
        house.id,
        NotificationKind::ReferralAccepted,
    )
    .await
    .expect("sent");
    assert_eq!(stored.len(), 1);
    assert_eq!(
        repos
            .referrals
            .find(second.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        ReferralStatus::Accepted
    );
    assert_eq!(repos.care_teams.list(patient.id).await.unwrap(), team);

    // Once the membership ended, a later acceptance opens a new one, for its own referral.
    let ended_at = micros(now() + SignedDuration::from_millis(5));
    repos
        .care_teams
        .end(
            patient.id,
            wilson.id,
            ended_at,
            house.id,
            &audit(house.id, Some(patient.id), AuditAction::CareTeamEnd),
        )
        .await
        .unwrap()
        .expect("wilson was on the team");
    let third = new_referral(&patient, &house, &wilson);
    send(&repos, &third).await;
    let mut third_accept = accept(&third);
    third_accept.at = micros(now() + SignedDuration::from_millis(10));
    if let Some(member) = third_accept.membership.as_mut() {
        member.started_at = third_accept.at;
    }
    apply(
        &repos,
        &third,
        &third_accept,
        wilson.id,
        house.id,
        NotificationKind::ReferralAccepted,
    )
    .await
    .expect("sent");
    let team = repos.care_teams.list(patient.id).await.unwrap();
    let by_referral: HashSet<_> = team.iter().filter_map(|m| m.referral_id).collect();
    assert_eq!(by_referral, HashSet::from([first.id, third.id]));
    let current: Vec<_> = team
        .iter()
        .filter(|m| m.doctor_id == wilson.id && m.ended_at.is_none())
        .collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].referral_id, Some(third.id));
    assert_eq!(
        audited(&repos, patient.id)
            .await
            .iter()
            .filter(|a| **a == AuditAction::ReferralAccept)
            .count(),
        3
    );
}
