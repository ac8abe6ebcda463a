//! Unit tests of the referral use cases, with the mockall doubles of `test_support`: who may
//! send, read, list and change a referral, what each attempt audits, what the other doctor is
//! told, and that notifications are published only once stored. The state machine itself is
//! table-tested in `referral.rs`; these test how the service applies it.

use std::sync::Arc;

use jiff::SignedDuration;
use mockall::predicate::eq;

use super::*;
use crate::access::Basis;
use crate::identity::{User, UserStatus};
use crate::kernel::Role;
use crate::kernel::Text;
use crate::patients::{BloodType, MedicalInfo, MedicalRecord, Patient, PatientId};
use crate::test_support::*;

const REASON: &str = "Suspected arrhythmia";
const SUMMARY: &str = "Palpitations for two weeks.\nECG attached.";
const DECLINE_REASON: &str = "Not my specialty; try cardiology.";
const OUTCOME: &str = "Holter fitted; benign ectopics. Back to the GP.";

/// The roles that never take part in referrals.
const NOT_DOCTORS: [Role; 4] = [
    Role::Secretary,
    Role::Admin,
    Role::Laboratory,
    Role::Patient,
];

/// Dr Alice Adams, who refers.
fn alice() -> User {
    named_user("Alice Adams", Role::Doctor, UserStatus::Active)
}

/// Dr Bob Brown, to whom Alice refers.
fn bob() -> User {
    named_user("Bob Brown", Role::Doctor, UserStatus::Active)
}

fn text(raw: &str) -> Text {
    Text::multiline(raw, 20_000).expect("valid text")
}

fn input(patient_id: PatientId, to: UserId, urgency: &str) -> NewReferral {
    NewReferral {
        patient_id,
        to_doctor_id: to,
        reason: text(REASON),
        clinical_summary: text(SUMMARY),
        urgency: urgency.parse().expect("an urgency"),
    }
}

/// Any valid referral, for callers refused before it is looked at.
fn any_referral() -> NewReferral {
    input(PatientId::generate(), UserId::generate(), "routine")
}

/// Medical information written yesterday by a colleague.
fn medical_record(patient_id: PatientId) -> MedicalRecord {
    MedicalRecord {
        patient_id,
        info: MedicalInfo {
            blood_type: Some(BloodType::ONegative),
            ..MedicalInfo::default()
        },
        updated_at: Some(NOW - SignedDuration::from_hours(24)),
        updated_by: Some(UserId::generate()),
    }
}

/// A referral from `from` to `to`, sent two days ago and now `status`, with the note the
/// status carries.
fn referral(from: &User, to: &User, status: ReferralStatus) -> Referral {
    Referral {
        id: ReferralId::generate(),
        patient_id: PatientId::generate(),
        patient_name: "Ada Lovelace".to_owned(),
        from_doctor_id: from.id,
        from_doctor_name: Some(from.full_name.clone()),
        to_doctor_id: to.id,
        to_doctor_name: Some(to.full_name.clone()),
        reason: text(REASON),
        urgency: Urgency::Urgent,
        status,
        decline_reason: (status == ReferralStatus::Declined).then(|| text(DECLINE_REASON)),
        outcome: (status == ReferralStatus::Completed).then(|| text(OUTCOME)),
        created_at: NOW - SignedDuration::from_hours(24 * 2),
        updated_at: NOW - SignedDuration::from_hours(24),
    }
}

fn snapshot_of(referral: &Referral) -> ReferralSnapshot {
    let mut patient = stored_patient(None);
    patient.id = referral.patient_id;
    ReferralSnapshot {
        clinical_summary: text(SUMMARY),
        medical: medical_record(patient.id),
        patient,
    }
}

/// The note a change needs to be valid.
fn note_for(transition: Transition) -> Option<&'static str> {
    match transition {
        Transition::Decline => Some(DECLINE_REASON),
        Transition::Complete => Some(OUTCOME),
        Transition::Accept | Transition::Cancel => None,
    }
}

/// The status from which `transition` is allowed.
fn status_allowing(transition: Transition) -> ReferralStatus {
    match transition {
        Transition::Complete => ReferralStatus::Accepted,
        Transition::Accept | Transition::Decline | Transition::Cancel => ReferralStatus::Sent,
    }
}

fn audit_action(transition: Transition) -> AuditAction {
    match transition {
        Transition::Accept => AuditAction::ReferralAccept,
        Transition::Decline => AuditAction::ReferralDecline,
        Transition::Cancel => AuditAction::ReferralCancel,
        Transition::Complete => AuditAction::ReferralComplete,
    }
}

/// The doctor on the side that may ask for `transition`, and the other one.
fn parties(transition: Transition, sender: &User, recipient: &User) -> (User, User) {
    match transition.party() {
        Party::Sender => (sender.clone(), recipient.clone()),
        Party::Recipient => (recipient.clone(), sender.clone()),
    }
}

// ---------------------------------------------------------------------------------------------
// Every operation: doctors only

#[tokio::test]
async fn non_doctors_are_refused_every_referral_operation_and_audited_before_anything_is_read() {
    for role in NOT_DOCTORS {
        let caller = actor(role);
        let refusing = || {
            let mut mocks = Mocks::new();
            mocks.no_patient_lookup();
            mocks.users.expect_find_by_id().never();
            mocks.referrals.expect_find().never();
            mocks.referrals.expect_find_detail().never();
            mocks.referrals.expect_list().never();
            mocks.nothing_published();
            let recorded = mocks.audit_succeeds();
            (mocks.referral_service(), recorded)
        };

        // Even an empty body: the role is refused before the request is read.
        let (service, recorded) = refusing();
        let result = service.send_referral(&caller, any_referral()).await;
        assert!(
            matches!(result, Err(ReferralError::Forbidden)),
            "{role} send: {result:?}"
        );
        assert_denied(
            &single_event(&recorded),
            &caller,
            None,
            AuditAction::ReferralCreate,
        );

        let (service, recorded) = refusing();
        let result = service.get_referral(&caller, ReferralId::generate()).await;
        assert!(
            matches!(result, Err(ReferralError::Forbidden)),
            "{role} read: {result:?}"
        );
        assert_denied(
            &single_event(&recorded),
            &caller,
            None,
            AuditAction::ReferralRead,
        );

        let (service, recorded) = refusing();
        let result = service
            .list_referrals(&caller, ReferralBox::Inbox, None, PageRequest::first(10))
            .await;
        assert!(
            matches!(result, Err(ReferralError::Forbidden)),
            "{role} list: {result:?}"
        );
        assert_denied(
            &single_event(&recorded),
            &caller,
            None,
            AuditAction::ReferralList,
        );

        for transition in Transition::ALL {
            let (service, recorded) = refusing();
            let result = service
                .change_referral(
                    &caller,
                    ReferralId::generate(),
                    transition,
                    note_for(transition),
                )
                .await;
            assert!(
                matches!(result, Err(ReferralError::Forbidden)),
                "{role} {transition:?}: {result:?}"
            );
            assert_denied(
                &single_event(&recorded),
                &caller,
                None,
                audit_action(transition),
            );
        }
    }
}

#[tokio::test]
async fn a_refusal_that_cannot_be_audited_is_an_internal_error() {
    let mut mocks = Mocks::new();
    mocks.audit_fails();
    let result = mocks
        .referral_service()
        .send_referral(&actor(Role::Secretary), any_referral())
        .await;
    assert!(is_internal(&result), "{result:?}");

    let mut mocks = Mocks::new();
    mocks
        .referrals
        .expect_find()
        .times(1)
        .returning(|_| Ok(None));
    mocks.audit_fails();
    let result = mocks
        .referral_service()
        .change_referral(
            &actor(Role::Doctor),
            ReferralId::generate(),
            Transition::Accept,
            None,
        )
        .await;
    assert!(is_internal(&result), "{result:?}");
}

// ---------------------------------------------------------------------------------------------
// Sending

/// What `ReferralRepository::create` was called with.
type Created = Captured<(Referral, ReferralSnapshot, AuditEvent, Vec<NewNotification>)>;

/// Everything a referral from `sender` to `recipient` reads goes well: `sender` is on the
/// patient's care team, `recipient` an active doctor, and the referral is stored once (in
/// [`Mocks::seq`]), its notifications numbered. Nothing goes through the audit log: the event
/// is stored with the referral.
fn sending(
    mocks: &mut Mocks,
    sender: &User,
    recipient: &User,
    patient: &Patient,
    medical: &MedicalRecord,
) -> Created {
    mocks.facts(patient.id, &actor_for(sender), Some(ON_CARE_TEAM));
    mocks.user_by_id(recipient.id, Some(recipient.clone()));
    mocks.named(sender);
    let found = patient.clone();
    mocks
        .patients
        .expect_find()
        .with(eq(patient.id))
        .times(1)
        .returning(move |_| Ok(Some(found.clone())));
    let record = medical.clone();
    mocks
        .medical
        .expect_get()
        .with(eq(patient.id))
        .times(1)
        .returning(move |_| Ok(record.clone()));
    let created = Created::default();
    let log = Arc::clone(&created);
    mocks
        .referrals
        .expect_create()
        .times(1)
        .in_sequence(&mut mocks.seq)
        .returning(move |referral, snapshot, event, notices, _jobs| {
            log.lock().expect("log").push((
                referral.clone(),
                snapshot.clone(),
                event.clone(),
                notices.to_vec(),
            ));
            Ok(stored(notices, &[]))
        });
    mocks.nothing_audited();
    created
}

#[tokio::test]
async fn a_doctor_not_on_the_patients_care_team_is_told_it_is_not_found_and_audited() {
    for facts in [Some(UNRELATED), None] {
        let sender = alice();
        let doctor = actor_for(&sender);
        let patient_id = PatientId::generate();
        let mut mocks = Mocks::new();
        mocks.facts(patient_id, &doctor, facts);
        mocks.users.expect_find_by_id().never();
        mocks.patients.expect_find().never();
        mocks.referrals.expect_create().never();
        let recorded = mocks.audit_succeeds();

        let result = mocks
            .referral_service()
            .send_referral(&doctor, input(patient_id, bob().id, "routine"))
            .await;

        assert!(
            matches!(result, Err(ReferralError::NotFound)),
            "{facts:?}: {result:?}"
        );
        assert_denied(
            &single_event(&recorded),
            &doctor,
            Some(patient_id),
            AuditAction::ReferralCreate,
        );
    }
}

#[tokio::test]
async fn a_doctor_with_only_an_emergency_access_may_not_refer_and_is_audited() {
    let doctor = actor_for(&alice());
    let patient_id = PatientId::generate();
    let mut mocks = Mocks::new();
    mocks.facts(patient_id, &doctor, Some(EMERGENCY_ONLY));
    mocks.users.expect_find_by_id().never();
    mocks.patients.expect_find().never();
    mocks.referrals.expect_create().never();
    let recorded = mocks.audit_succeeds();

    let result = mocks
        .referral_service()
        .send_referral(&doctor, input(patient_id, bob().id, "emergency"))
        .await;

    assert!(
        matches!(result, Err(ReferralError::Forbidden)),
        "{result:?}"
    );
    assert_denied(
        &single_event(&recorded),
        &doctor,
        Some(patient_id),
        AuditAction::ReferralCreate,
    );
}

#[tokio::test]
async fn the_recipient_must_be_an_active_doctor_other_than_the_sender() {
    let sender = alice();
    let doctor = actor_for(&sender);
    let others = [
        Some(named_user("Bob Brown", Role::Doctor, UserStatus::Pending)),
        Some(named_user("Bob Brown", Role::Doctor, UserStatus::Suspended)),
        Some(named_user("Bob Brown", Role::Secretary, UserStatus::Active)),
        Some(named_user("Bob Brown", Role::Admin, UserStatus::Active)),
        Some(named_user("Bob Brown", Role::Patient, UserStatus::Active)),
        None,
    ];
    let cases = others
        .into_iter()
        .map(|other| {
            (
                other.as_ref().map_or_else(UserId::generate, |u| u.id),
                other,
            )
        })
        // The sender is an active doctor too, but not another one.
        .chain([(sender.id, Some(sender.clone()))]);
    for (to, found) in cases {
        let patient_id = PatientId::generate();
        let mut mocks = Mocks::new();
        mocks.facts(patient_id, &doctor, Some(ON_CARE_TEAM));
        mocks
            .users
            .expect_find_by_id()
            .with(eq(to))
            .returning(move |_| Ok(found.clone()));
        mocks.patients.expect_find().never();
        mocks.referrals.expect_create().never();
        mocks.nothing_audited();
        mocks.nothing_published();

        let result = mocks
            .referral_service()
            .send_referral(&doctor, input(patient_id, to, "routine"))
            .await;

        assert_eq!(invalid_fields(result), ["to_doctor_id"], "{to:?}");
    }
}

#[tokio::test]
async fn a_referral_snapshots_the_patient_and_medical_record_as_read_and_stores_its_event() {
    let (sender, recipient) = (alice(), bob());
    let doctor = actor_for(&sender);
    let patient = stored_patient(None);
    let medical = medical_record(patient.id);
    let mut mocks = Mocks::new();
    let created = sending(&mut mocks, &sender, &recipient, &patient, &medical);
    let _published = mocks.publishes();

    let detail = mocks
        .referral_service()
        .send_referral(&doctor, input(patient.id, recipient.id, "urgent"))
        .await
        .expect("sent");

    let sent = &detail.referral;
    assert_eq!(sent.patient_id, patient.id);
    assert_eq!(sent.patient_name, "Ada Lovelace");
    assert_eq!(sent.from_doctor_id, sender.id);
    assert_eq!(sent.from_doctor_name, Some(sender.full_name.clone()));
    assert_eq!(sent.to_doctor_id, recipient.id);
    assert_eq!(sent.to_doctor_name, Some(recipient.full_name.clone()));
    assert_eq!(sent.reason.as_str(), REASON);
    assert_eq!(sent.urgency, Urgency::Urgent);
    assert_eq!(sent.status, ReferralStatus::Sent);
    assert_eq!(
        (sent.decline_reason.clone(), sent.outcome.clone()),
        (None, None)
    );
    assert_eq!((sent.created_at, sent.updated_at), (NOW, NOW));
    let snapshot = detail
        .snapshot
        .clone()
        .expect("the sender sees what they sent");
    assert_eq!(snapshot.clinical_summary.as_str(), SUMMARY);
    assert_eq!(snapshot.patient, patient);
    assert_eq!(snapshot.medical, medical);

    let created = created.lock().expect("created");
    assert_eq!(created.len(), 1);
    let (referral, stored_snapshot, event, _) = &created[0];
    assert_eq!(referral, sent);
    assert_eq!(stored_snapshot, &snapshot);
    assert_allowed(
        event,
        &doctor,
        Some(patient.id),
        AuditAction::ReferralCreate,
        Basis::CareTeam,
    );
}

#[tokio::test]
async fn the_recipient_is_told_of_a_referral_with_ids_and_a_title_but_no_clinical_text() {
    let cases = [
        ("routine", "Referral from Dr Alice Adams"),
        ("urgent", "Urgent referral from Dr Alice Adams"),
        ("emergency", "Emergency referral from Dr Alice Adams"),
    ];
    for (urgency, title) in cases {
        let (sender, recipient) = (alice(), bob());
        let patient = stored_patient(None);
        let mut mocks = Mocks::new();
        let created = sending(
            &mut mocks,
            &sender,
            &recipient,
            &patient,
            &medical_record(patient.id),
        );
        let _published = mocks.publishes();

        let detail = mocks
            .referral_service()
            .send_referral(
                &actor_for(&sender),
                input(patient.id, recipient.id, urgency),
            )
            .await
            .expect("sent");

        let created = created.lock().expect("created");
        let notices = &created[0].3;
        assert_eq!(
            notices,
            &[NewNotification {
                recipient: Recipient::User(recipient.id),
                kind: NotificationKind::ReferralReceived,
                data: NotificationData {
                    title: title.to_owned(),
                    referral_id: Some(*detail.referral.id.as_uuid()),
                    patient_id: Some(*patient.id.as_uuid()),
                    actor_id: Some(*sender.id.as_uuid()),
                    emergency_access_id: None,
                    appointment_id: None,
                    lab_order_id: None,
                    prescription_id: None,
                    conversation_id: None,
                    message_id: None,
                    urgent: false,
                },
            }],
            "{urgency}"
        );
        let shown = &notices[0].data.title;
        for secret in ["Ada Lovelace", REASON, SUMMARY] {
            assert!(!shown.contains(secret), "{shown:?} shows {secret:?}");
        }
    }
}

#[tokio::test]
async fn the_stored_notifications_are_published_once_the_referral_is_created() {
    let (sender, recipient) = (alice(), bob());
    let patient = stored_patient(None);
    let mut mocks = Mocks::new();
    let created = sending(
        &mut mocks,
        &sender,
        &recipient,
        &patient,
        &medical_record(patient.id),
    );
    // In sequence after the create: published only once stored.
    let published = mocks.publishes();

    mocks
        .referral_service()
        .send_referral(
            &actor_for(&sender),
            input(patient.id, recipient.id, "routine"),
        )
        .await
        .expect("sent");

    let notices = created.lock().expect("created")[0].3.clone();
    let published = published.lock().expect("published");
    // What the repository returned (numbered), not what it was given.
    assert_eq!(*published, [stored(&notices, &[])]);
    assert_eq!(published[0][0].id, 41);
    assert_eq!(published[0][0].recipient, recipient.id);
}

#[tokio::test]
async fn nothing_is_published_when_the_referral_cannot_be_stored() {
    let (sender, recipient) = (alice(), bob());
    let doctor = actor_for(&sender);
    let patient = stored_patient(None);
    let mut mocks = Mocks::new();
    mocks.facts(patient.id, &doctor, Some(ON_CARE_TEAM));
    mocks.user_by_id(recipient.id, Some(recipient.clone()));
    mocks.named(&sender);
    let found = patient.clone();
    mocks
        .patients
        .expect_find()
        .returning(move |_| Ok(Some(found.clone())));
    mocks
        .medical
        .expect_get()
        .returning(|id| Ok(medical_record(id)));
    mocks
        .referrals
        .expect_create()
        .times(1)
        .returning(|_, _, _, _, _| Err(repository_failure()));
    mocks.nothing_published();

    let result = mocks
        .referral_service()
        .send_referral(&doctor, input(patient.id, recipient.id, "routine"))
        .await;

    assert!(is_internal(&result), "{result:?}");
}

#[tokio::test]
async fn a_patient_gone_since_the_access_check_is_not_found_and_nothing_is_stored() {
    let (sender, recipient) = (alice(), bob());
    let doctor = actor_for(&sender);
    let patient_id = PatientId::generate();
    let mut mocks = Mocks::new();
    mocks.facts(patient_id, &doctor, Some(ON_CARE_TEAM));
    mocks.user_by_id(recipient.id, Some(recipient.clone()));
    mocks.named(&sender);
    mocks
        .patients
        .expect_find()
        .times(1)
        .returning(|_| Ok(None));
    mocks.medical.expect_get().never();
    mocks.referrals.expect_create().never();

    let result = mocks
        .referral_service()
        .send_referral(&doctor, input(patient_id, recipient.id, "routine"))
        .await;

    assert!(matches!(result, Err(ReferralError::NotFound)), "{result:?}");
}

// ---------------------------------------------------------------------------------------------
// Reading

#[tokio::test]
async fn only_the_sender_and_the_recipient_read_a_referral_others_are_told_it_is_not_found() {
    let (sender, recipient) = (alice(), bob());
    let carol = actor(Role::Doctor);
    let found = referral(&sender, &recipient, ReferralStatus::Sent);
    let id = found.id;
    let mut mocks = Mocks::new();
    let answer = (found.clone(), snapshot_of(&found));
    mocks
        .referrals
        .expect_find_detail()
        .with(eq(id))
        .times(1)
        .returning(move |_| Ok(Some(answer.clone())));
    let recorded = mocks.audit_succeeds();

    let result = mocks.referral_service().get_referral(&carol, id).await;

    assert!(
        matches!(result, Err(ReferralError::ReferralNotFound)),
        "{result:?}"
    );
    assert_denied(
        &single_event(&recorded),
        &carol,
        Some(found.patient_id),
        AuditAction::ReferralRead,
    );
}

#[tokio::test]
async fn an_unknown_referral_is_not_found_and_the_attempt_is_audited() {
    let doctor = actor(Role::Doctor);
    let mut mocks = Mocks::new();
    mocks
        .referrals
        .expect_find_detail()
        .times(1)
        .returning(|_| Ok(None));
    let recorded = mocks.audit_succeeds();

    let result = mocks
        .referral_service()
        .get_referral(&doctor, ReferralId::generate())
        .await;

    assert!(
        matches!(result, Err(ReferralError::ReferralNotFound)),
        "{result:?}"
    );
    assert_denied(
        &single_event(&recorded),
        &doctor,
        None,
        AuditAction::ReferralRead,
    );
}

#[tokio::test]
async fn the_sender_always_sees_the_snapshot_and_the_recipient_not_after_decline_or_cancel() {
    for status in ReferralStatus::ALL.iter().copied() {
        for party in [Party::Sender, Party::Recipient] {
            let (sender, recipient) = (alice(), bob());
            let reader = actor_for(match party {
                Party::Sender => &sender,
                Party::Recipient => &recipient,
            });
            let found = referral(&sender, &recipient, status);
            let snapshot = snapshot_of(&found);
            let mut mocks = Mocks::new();
            let answer = (found.clone(), snapshot.clone());
            mocks
                .referrals
                .expect_find_detail()
                .with(eq(found.id))
                .times(1)
                .in_sequence(&mut mocks.seq)
                .returning(move |_| Ok(Some(answer.clone())));
            let recorded = mocks.audit_succeeds();

            let read = mocks
                .referral_service()
                .get_referral(&reader, found.id)
                .await
                .expect("a party reads it");

            let withheld = party == Party::Recipient
                && matches!(status, ReferralStatus::Declined | ReferralStatus::Cancelled);
            let expected = ReferralDetail {
                referral: found.clone(),
                snapshot: (!withheld).then_some(snapshot),
            };
            assert_eq!(read, expected, "{status} read by the {party:?}");
            assert_allowed(
                &single_event(&recorded),
                &reader,
                Some(found.patient_id),
                AuditAction::ReferralRead,
                Basis::Referral,
            );
        }
    }
}

#[tokio::test]
async fn a_referral_read_that_cannot_be_audited_returns_nothing() {
    let (sender, recipient) = (alice(), bob());
    let found = referral(&sender, &recipient, ReferralStatus::Sent);
    let mut mocks = Mocks::new();
    let answer = (found.clone(), snapshot_of(&found));
    mocks
        .referrals
        .expect_find_detail()
        .returning(move |_| Ok(Some(answer.clone())));
    mocks.audit_fails();

    let result = mocks
        .referral_service()
        .get_referral(&actor_for(&recipient), found.id)
        .await;

    assert!(is_internal(&result), "{result:?}");
}

// ---------------------------------------------------------------------------------------------
// Listing

#[tokio::test]
async fn a_listing_reads_the_callers_box_and_audits_each_referral_listed() {
    let me = alice();
    let doctor = actor_for(&me);
    for (referral_box, status) in [
        (ReferralBox::Inbox, None),
        (ReferralBox::Outbox, Some(ReferralStatus::Accepted)),
    ] {
        let items: Vec<Referral> = (0..3)
            .map(|_| referral(&me, &bob(), ReferralStatus::Sent))
            .collect();
        let page = PageRequest::new(Some(3), Some(ReferralId::generate())).expect("valid page");
        let listed = Page {
            items: items.clone(),
            next: Some(items[2].id),
        };
        let mut mocks = Mocks::new();
        let returned = listed.clone();
        mocks
            .referrals
            .expect_list()
            .with(
                eq(ReferralQuery {
                    doctor_id: me.id,
                    referral_box,
                    status,
                }),
                eq(page),
            )
            .times(1)
            .in_sequence(&mut mocks.seq)
            .returning(move |_, _| Ok(returned.clone()));
        let recorded = mocks.audit_succeeds();

        let result = mocks
            .referral_service()
            .list_referrals(&doctor, referral_box, status, page)
            .await
            .expect("listed");

        assert_eq!(result, listed);
        let batches = recorded.lock().expect("recorded");
        assert_eq!(batches.len(), 1, "one call to the audit log");
        let events = &batches[0];
        assert_eq!(events.len(), 3, "one event per referral: {events:?}");
        for (event, item) in events.iter().zip(&items) {
            assert_allowed(
                event,
                &doctor,
                Some(item.patient_id),
                AuditAction::ReferralList,
                Basis::Referral,
            );
        }
    }
}

#[tokio::test]
async fn an_empty_listing_audits_nothing() {
    let doctor = actor(Role::Doctor);
    let mut mocks = Mocks::new();
    mocks.referrals.expect_list().times(1).returning(|_, _| {
        Ok(Page {
            items: Vec::new(),
            next: None,
        })
    });
    mocks.nothing_audited();

    let listed = mocks
        .referral_service()
        .list_referrals(&doctor, ReferralBox::Outbox, None, PageRequest::first(10))
        .await
        .expect("listed");

    assert!(listed.items.is_empty());
}

#[tokio::test]
async fn a_listing_that_cannot_be_audited_returns_nothing() {
    let me = alice();
    let item = referral(&me, &bob(), ReferralStatus::Sent);
    let mut mocks = Mocks::new();
    mocks.referrals.expect_list().returning(move |_, _| {
        Ok(Page {
            items: vec![item.clone()],
            next: None,
        })
    });
    mocks.audit_fails();

    let result = mocks
        .referral_service()
        .list_referrals(
            &actor_for(&me),
            ReferralBox::Outbox,
            None,
            PageRequest::first(10),
        )
        .await;

    assert!(is_internal(&result), "{result:?}");
}

// ---------------------------------------------------------------------------------------------
// Status changes

/// What `ReferralRepository::change_status` was called with.
type Changed = Captured<(StatusChange, AuditEvent, Vec<NewNotification>)>;

/// `found` is looked up once, then its change stored (in [`Mocks::seq`]) with its
/// notifications numbered. Nothing goes through the audit log: the event is stored with the
/// change.
fn changing(mocks: &mut Mocks, found: &Referral) -> Changed {
    let answer = found.clone();
    mocks
        .referrals
        .expect_find()
        .with(eq(found.id))
        .times(1)
        .returning(move |_| Ok(Some(answer.clone())));
    let changed = Changed::default();
    let log = Arc::clone(&changed);
    mocks
        .referrals
        .expect_change_status()
        .times(1)
        .in_sequence(&mut mocks.seq)
        .returning(move |change, event, notices| {
            log.lock()
                .expect("log")
                .push((change.clone(), event.clone(), notices.to_vec()));
            Ok(Some(stored(notices, &[])))
        });
    mocks.nothing_audited();
    changed
}

/// Only `found` is looked up, and nothing is changed.
fn refusing_change(mocks: &mut Mocks, found: &Referral) {
    let answer = found.clone();
    mocks
        .referrals
        .expect_find()
        .with(eq(found.id))
        .times(1)
        .returning(move |_| Ok(Some(answer.clone())));
    mocks.referrals.expect_change_status().never();
    mocks.nothing_published();
}

#[tokio::test]
async fn the_right_party_moves_a_referral_along_and_the_other_party_is_told() {
    let cases = [
        (
            Transition::Accept,
            ReferralStatus::Accepted,
            NotificationKind::ReferralAccepted,
            "Dr Bob Brown accepted your referral",
        ),
        (
            Transition::Decline,
            ReferralStatus::Declined,
            NotificationKind::ReferralDeclined,
            "Dr Bob Brown declined your referral",
        ),
        (
            Transition::Cancel,
            ReferralStatus::Cancelled,
            NotificationKind::ReferralCancelled,
            "Dr Alice Adams cancelled a referral to you",
        ),
        (
            Transition::Complete,
            ReferralStatus::Completed,
            NotificationKind::ReferralCompleted,
            "Dr Bob Brown completed your referral",
        ),
    ];
    for (transition, to, kind, title) in cases {
        let (sender, recipient) = (alice(), bob());
        let (acting, other) = parties(transition, &sender, &recipient);
        let caller = actor_for(&acting);
        let found = referral(&sender, &recipient, status_allowing(transition));
        let mut mocks = Mocks::new();
        mocks.named(&acting);
        let changed = changing(&mut mocks, &found);
        // In sequence after the change: published only once stored.
        let published = mocks.publishes();

        let result = mocks
            .referral_service()
            .change_referral(&caller, found.id, transition, note_for(transition))
            .await
            .expect("changed");

        let note = note_for(transition).map(text);
        let expected = Referral {
            status: to,
            updated_at: NOW,
            decline_reason: if transition == Transition::Decline {
                note.clone()
            } else {
                found.decline_reason.clone()
            },
            outcome: if transition == Transition::Complete {
                note.clone()
            } else {
                found.outcome.clone()
            },
            ..found.clone()
        };
        assert_eq!(result, expected, "{transition:?}");

        let changed = changed.lock().expect("changed");
        assert_eq!(changed.len(), 1);
        let (change, event, notices) = &changed[0];
        assert_eq!(change.id, found.id, "{transition:?}");
        assert_eq!(change.from, found.status, "{transition:?}");
        assert_eq!(change.to, to, "{transition:?}");
        assert_eq!(change.at, NOW, "{transition:?}");
        assert_eq!(change.note, note, "{transition:?}");
        assert_eq!(
            change.membership.is_some(),
            transition == Transition::Accept,
            "{transition:?}: {change:?}"
        );
        assert_allowed(
            event,
            &caller,
            Some(found.patient_id),
            audit_action(transition),
            Basis::Referral,
        );
        assert_eq!(
            notices,
            &[NewNotification {
                recipient: Recipient::User(other.id),
                kind,
                data: NotificationData {
                    title: title.to_owned(),
                    referral_id: Some(*found.id.as_uuid()),
                    patient_id: Some(*found.patient_id.as_uuid()),
                    actor_id: Some(*acting.id.as_uuid()),
                    emergency_access_id: None,
                    appointment_id: None,
                    lab_order_id: None,
                    prescription_id: None,
                    conversation_id: None,
                    message_id: None,
                    urgent: false,
                },
            }],
            "{transition:?}"
        );
        for secret in ["Ada Lovelace", DECLINE_REASON, OUTCOME] {
            assert!(!notices[0].data.title.contains(secret), "{transition:?}");
        }
        // What the repository returned (numbered) is what is published.
        assert_eq!(
            *published.lock().expect("published"),
            [stored(notices, &[])],
            "{transition:?}"
        );
    }
}

#[tokio::test]
async fn accepting_puts_the_recipient_on_the_care_team_with_the_referral_as_the_reason() {
    let (sender, recipient) = (alice(), bob());
    let found = referral(&sender, &recipient, ReferralStatus::Sent);
    let mut mocks = Mocks::new();
    mocks.named(&recipient);
    let changed = changing(&mut mocks, &found);
    let _published = mocks.publishes();

    mocks
        .referral_service()
        .change_referral(&actor_for(&recipient), found.id, Transition::Accept, None)
        .await
        .expect("accepted");

    let changed = changed.lock().expect("changed");
    let membership = changed[0].0.membership.clone().expect("a membership");
    assert_eq!(
        membership,
        CareTeamMember {
            id: membership.id,
            patient_id: found.patient_id,
            doctor_id: recipient.id,
            doctor_name: None,
            started_at: NOW,
            ended_at: None,
            added_by: recipient.id,
            ended_by: None,
            referral_id: Some(found.id),
            appointment_id: None,
        }
    );
}

#[tokio::test]
async fn the_wrong_party_is_forbidden_and_the_attempt_audited() {
    for transition in Transition::ALL {
        let (sender, recipient) = (alice(), bob());
        let (_, wrong) = parties(transition, &sender, &recipient);
        let caller = actor_for(&wrong);
        let found = referral(&sender, &recipient, status_allowing(transition));
        let mut mocks = Mocks::new();
        refusing_change(&mut mocks, &found);
        let recorded = mocks.audit_succeeds();

        let result = mocks
            .referral_service()
            .change_referral(&caller, found.id, transition, note_for(transition))
            .await;

        assert!(
            matches!(
                result,
                Err(ReferralError::Transition(TransitionError::WrongParty(party)))
                    if party == transition.party()
            ),
            "{transition:?} by the {:?}: {result:?}",
            transition.party()
        );
        assert_denied(
            &single_event(&recorded),
            &caller,
            Some(found.patient_id),
            audit_action(transition),
        );
    }
}

#[tokio::test]
async fn a_change_the_status_does_not_allow_is_a_conflict_naming_the_current_status() {
    for from in ReferralStatus::ALL.iter().copied() {
        for transition in Transition::ALL {
            if status_allowing(transition) == from {
                continue;
            }
            let (sender, recipient) = (alice(), bob());
            let (acting, _) = parties(transition, &sender, &recipient);
            let found = referral(&sender, &recipient, from);
            let mut mocks = Mocks::new();
            refusing_change(&mut mocks, &found);
            mocks.nothing_audited();

            let result = mocks
                .referral_service()
                .change_referral(
                    &actor_for(&acting),
                    found.id,
                    transition,
                    note_for(transition),
                )
                .await;

            assert!(
                matches!(
                    result,
                    Err(ReferralError::Transition(TransitionError::NotFrom { from: f, .. }))
                        if f == from
                ),
                "{transition:?} from {from}: {result:?}"
            );
        }
    }
}

#[tokio::test]
async fn declining_needs_a_reason_and_completing_an_outcome() {
    let too_long = "n".repeat(5_001);
    let cases = [
        (Transition::Decline, None, "reason"),
        (Transition::Decline, Some("   "), "reason"),
        (Transition::Decline, Some(too_long.as_str()), "reason"),
        (Transition::Complete, None, "outcome"),
        (Transition::Complete, Some(""), "outcome"),
        (Transition::Complete, Some(too_long.as_str()), "outcome"),
    ];
    for (transition, note, field) in cases {
        let (sender, recipient) = (alice(), bob());
        let found = referral(&sender, &recipient, status_allowing(transition));
        let mut mocks = Mocks::new();
        refusing_change(&mut mocks, &found);
        mocks.nothing_audited();

        let result = mocks
            .referral_service()
            .change_referral(&actor_for(&recipient), found.id, transition, note)
            .await;

        assert_eq!(
            invalid_fields(result),
            [field],
            "{transition:?} {:?}",
            note.map(str::len)
        );
    }
}

#[tokio::test]
async fn accepting_and_cancelling_take_no_note() {
    for transition in [Transition::Accept, Transition::Cancel] {
        let (sender, recipient) = (alice(), bob());
        let (acting, _) = parties(transition, &sender, &recipient);
        let found = referral(&sender, &recipient, ReferralStatus::Sent);
        let mut mocks = Mocks::new();
        refusing_change(&mut mocks, &found);
        mocks.nothing_audited();

        let result = mocks
            .referral_service()
            .change_referral(&actor_for(&acting), found.id, transition, Some("Happy to."))
            .await;

        assert_eq!(invalid_fields(result), ["note"], "{transition:?}");
    }
}

#[tokio::test]
async fn a_concurrent_change_is_a_conflict_with_the_status_the_referral_has_now() {
    let cases = [
        // Bob accepts while Alice cancels.
        (Transition::Accept, ReferralStatus::Cancelled),
        // Alice cancels while Bob accepts.
        (Transition::Cancel, ReferralStatus::Accepted),
        // Bob declines in one tab after accepting in another.
        (Transition::Decline, ReferralStatus::Accepted),
    ];
    for (transition, now) in cases {
        let (sender, recipient) = (alice(), bob());
        let (acting, _) = parties(transition, &sender, &recipient);
        let found = referral(&sender, &recipient, ReferralStatus::Sent);
        let mut mocks = Mocks::new();
        mocks.named(&acting);
        let mut reads = 0;
        let (before, after) = (
            found.clone(),
            Referral {
                status: now,
                ..found.clone()
            },
        );
        mocks
            .referrals
            .expect_find()
            .with(eq(found.id))
            .times(2)
            .returning(move |_| {
                reads += 1;
                Ok(Some(if reads == 1 {
                    before.clone()
                } else {
                    after.clone()
                }))
            });
        mocks
            .referrals
            .expect_change_status()
            .withf(move |change, _, _| change.from == ReferralStatus::Sent)
            .times(1)
            .returning(|_, _, _| Ok(None));
        mocks.nothing_audited();
        mocks.nothing_published();

        let result = mocks
            .referral_service()
            .change_referral(
                &actor_for(&acting),
                found.id,
                transition,
                note_for(transition),
            )
            .await;

        assert!(
            matches!(
                result,
                Err(ReferralError::Transition(TransitionError::NotFrom { from, .. }))
                    if from == now
            ),
            "{transition:?} while it became {now}: {result:?}"
        );
    }
}

#[tokio::test]
async fn a_change_of_a_referral_the_caller_is_no_party_to_is_not_found_and_audited() {
    // No such referral.
    let doctor = actor(Role::Doctor);
    let mut mocks = Mocks::new();
    mocks
        .referrals
        .expect_find()
        .times(1)
        .returning(|_| Ok(None));
    mocks.referrals.expect_change_status().never();
    let recorded = mocks.audit_succeeds();
    let result = mocks
        .referral_service()
        .change_referral(&doctor, ReferralId::generate(), Transition::Accept, None)
        .await;
    assert!(
        matches!(result, Err(ReferralError::ReferralNotFound)),
        "{result:?}"
    );
    assert_denied(
        &single_event(&recorded),
        &doctor,
        None,
        AuditAction::ReferralAccept,
    );

    // Another doctor's referral, whatever the change.
    for transition in Transition::ALL {
        let found = referral(&alice(), &bob(), status_allowing(transition));
        let carol = actor(Role::Doctor);
        let mut mocks = Mocks::new();
        refusing_change(&mut mocks, &found);
        let recorded = mocks.audit_succeeds();

        let result = mocks
            .referral_service()
            .change_referral(&carol, found.id, transition, note_for(transition))
            .await;

        assert!(
            matches!(result, Err(ReferralError::ReferralNotFound)),
            "{transition:?}: {result:?}"
        );
        assert_denied(
            &single_event(&recorded),
            &carol,
            Some(found.patient_id),
            audit_action(transition),
        );
    }
}

#[tokio::test]
async fn a_change_that_cannot_be_stored_is_internal_and_nothing_is_published() {
    let (sender, recipient) = (alice(), bob());
    let found = referral(&sender, &recipient, ReferralStatus::Sent);
    let mut mocks = Mocks::new();
    mocks.named(&recipient);
    let answer = found.clone();
    mocks
        .referrals
        .expect_find()
        .returning(move |_| Ok(Some(answer.clone())));
    mocks
        .referrals
        .expect_change_status()
        .times(1)
        .returning(|_, _, _| Err(repository_failure()));
    mocks.nothing_published();

    let result = mocks
        .referral_service()
        .change_referral(&actor_for(&recipient), found.id, Transition::Accept, None)
        .await;

    assert!(is_internal(&result), "{result:?}");
}
