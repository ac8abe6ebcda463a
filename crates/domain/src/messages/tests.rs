//! Who may message whom, through the service over doubles of every port: conversations about a
//! patient with their account and care-team doctors, and between a referral's two doctors;
//! messages reaching only those who may still take part; read marks; unread notices.

use std::sync::{Arc, Mutex};

use jiff::SignedDuration;
use mockall::predicate::eq;

use super::*;
use crate::access::Basis;
use crate::audit::AuditAction;
use crate::identity::{Role, UserId};
use crate::jobs::Task;
use crate::kernel::{AttachmentId, ConversationId, MockFileStore, PatientId, ReferralId, Text};
use crate::notifications::{NotificationKind, Recipient};
use crate::patients::{CareTeamMember, Patient};
use crate::referrals::{Referral, ReferralStatus, Urgency};
use crate::relay::{Live, MockRelay, Relayed};
use crate::test_support::{
    Mocks, NOW, ON_CARE_TEAM, OWN_RECORD, UNRELATED, actor, assert_allowed, assert_denied,
    invalid_fields, member, single_event, stored, stored_patient,
};

struct Chat {
    mocks: Mocks,
    messages: MockMessageRepository,
    relay: MockRelay,
    files: MockFileStore,
}

impl Chat {
    fn new() -> Self {
        Self {
            mocks: Mocks::new(),
            messages: MockMessageRepository::new(),
            relay: MockRelay::new(),
            files: MockFileStore::new(),
        }
    }

    /// The patient has an account, `account`, and these doctors on the care team now (and
    /// `former`, whose membership ended yesterday).
    fn patient(
        &mut self,
        patient_id: PatientId,
        account: Option<UserId>,
        doctors: &[UserId],
        former: &[UserId],
    ) {
        self.mocks.patients.expect_find().returning(move |_| {
            Ok(Some(Patient {
                id: patient_id,
                ..stored_patient(account)
            }))
        });
        let mut members: Vec<CareTeamMember> = doctors
            .iter()
            .map(|d| member(patient_id, *d, UserId::generate()))
            .collect();
        members.extend(former.iter().map(|d| CareTeamMember {
            ended_at: Some(NOW - SignedDuration::from_hours(24)),
            ..member(patient_id, *d, UserId::generate())
        }));
        self.mocks
            .care_teams
            .expect_list()
            .returning(move |_| Ok(members.clone()));
    }

    fn named(&mut self) {
        self.mocks.users.expect_find_by_id().returning(|_| Ok(None));
    }

    fn finds(&mut self, conversation: &Conversation) {
        let found = conversation.clone();
        self.messages
            .expect_find()
            .with(eq(conversation.id))
            .returning(move |_| Ok(Some(found.clone())));
    }

    fn service(self) -> ConversationService {
        ConversationService::new(
            Mocks::gate_of(self.mocks.access_facts, self.mocks.audit),
            MessagingPorts {
                messages: Arc::new(self.messages),
                patients: Arc::new(self.mocks.patients),
                care_teams: Arc::new(self.mocks.care_teams),
                referrals: Arc::new(self.mocks.referrals),
                users: Arc::new(self.mocks.users),
                publisher: Arc::new(self.mocks.publisher),
                relay: Arc::new(self.relay),
                files: Arc::new(self.files),
            },
        )
    }
}

fn conversation(subject: Subject, participants: &[UserId]) -> Conversation {
    Conversation {
        id: ConversationId::generate(),
        subject,
        participants: participants
            .iter()
            .map(|u| Participant {
                user_id: *u,
                full_name: None,
                last_read: None,
            })
            .collect(),
        created_by: participants[0],
        created_at: NOW,
        last_message_at: None,
    }
}

fn message_in(conversation: &Conversation, from: UserId) -> Message {
    Message {
        id: MessageId::generate(),
        conversation_id: conversation.id,
        sender_id: from,
        sender_name: None,
        body: Text::multiline("How is the cough?", 100).expect("text"),
        sent_at: NOW,
        attachments: Vec::new(),
    }
}

#[tokio::test]
async fn a_care_team_doctor_starts_a_conversation_with_the_patient_and_a_colleague() {
    let doctor = actor(Role::Doctor);
    let colleague = UserId::generate();
    let account = UserId::generate();
    let patient_id = PatientId::generate();
    let mut chat = Chat::new();
    chat.mocks.facts(patient_id, &doctor, Some(ON_CARE_TEAM));
    chat.patient(
        patient_id,
        Some(account),
        &[doctor.user_id(), colleague],
        &[],
    );
    let created = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&created);
    chat.messages
        .expect_create()
        .times(1)
        .returning(move |c, e| {
            log.lock().expect("log").push((c.clone(), e.clone()));
            Ok(())
        });
    let stored_conversations = Arc::clone(&created);
    chat.messages.expect_find().returning(move |_| {
        Ok(stored_conversations
            .lock()
            .expect("log")
            .first()
            .map(|(c, _)| c.clone()))
    });
    chat.mocks.nothing_audited();
    let started = chat
        .service()
        .start(
            &doctor,
            NewConversation::Patient {
                patient_id,
                participant_ids: vec![colleague, colleague],
            },
        )
        .await
        .expect("started");
    assert!(started.created);
    let users: Vec<UserId> = started
        .conversation
        .participants
        .iter()
        .map(|p| p.user_id)
        .collect();
    assert_eq!(users, [doctor.user_id(), colleague, account]);
    assert_eq!(started.conversation.subject, Subject::Patient(patient_id));
    let created = created.lock().expect("log");
    assert_allowed(
        &created[0].1,
        &doctor,
        Some(patient_id),
        AuditAction::ConversationCreate,
        Basis::CareTeam,
    );
}

#[tokio::test]
async fn only_the_patient_and_current_care_team_doctors_may_be_named() {
    let patient = actor(Role::Patient);
    let patient_id = PatientId::generate();
    let (doctor, former, stranger) = (UserId::generate(), UserId::generate(), UserId::generate());
    let mut chat = Chat::new();
    chat.mocks.facts(patient_id, &patient, Some(OWN_RECORD));
    chat.patient(patient_id, Some(patient.user_id()), &[doctor], &[former]);
    chat.messages.expect_create().never();
    let result = chat
        .service()
        .start(
            &patient,
            NewConversation::Patient {
                patient_id,
                participant_ids: vec![former, stranger, doctor],
            },
        )
        .await;
    assert_eq!(
        invalid_fields(result),
        ["participant_ids[0]", "participant_ids[1]"]
    );

    // Nobody but the patient: a conversation needs a doctor.
    let mut chat = Chat::new();
    chat.mocks.facts(patient_id, &patient, Some(OWN_RECORD));
    chat.patient(patient_id, Some(patient.user_id()), &[doctor], &[]);
    chat.messages.expect_create().never();
    let result = chat
        .service()
        .start(
            &patient,
            NewConversation::Patient {
                patient_id,
                participant_ids: Vec::new(),
            },
        )
        .await;
    assert_eq!(invalid_fields(result), ["participant_ids"]);

    // A patient without an account has nobody to talk with.
    let doctor_actor = actor(Role::Doctor);
    let mut chat = Chat::new();
    chat.mocks
        .facts(patient_id, &doctor_actor, Some(ON_CARE_TEAM));
    chat.patient(patient_id, None, &[doctor_actor.user_id()], &[]);
    chat.messages.expect_create().never();
    let result = chat
        .service()
        .start(
            &doctor_actor,
            NewConversation::Patient {
                patient_id,
                participant_ids: Vec::new(),
            },
        )
        .await;
    assert_eq!(invalid_fields(result), ["patient_id"]);
}

#[tokio::test]
async fn secretaries_the_laboratory_and_administrators_never_take_part() {
    for role in [Role::Secretary, Role::Laboratory, Role::Admin] {
        let someone = actor(role);
        let patient_id = PatientId::generate();
        let mut chat = Chat::new();
        chat.mocks.no_patient_lookup();
        chat.messages.expect_create().never();
        let audited = chat.mocks.audit_succeeds();
        let result = chat
            .service()
            .start(
                &someone,
                NewConversation::Patient {
                    patient_id,
                    participant_ids: Vec::new(),
                },
            )
            .await;
        assert!(
            matches!(result, Err(MessagingError::Forbidden)),
            "{role}: {result:?}"
        );
        assert_denied(
            &single_event(&audited),
            &someone,
            Some(patient_id),
            AuditAction::ConversationCreate,
        );
    }
}

#[tokio::test]
async fn a_referral_conversation_is_between_its_two_doctors_only() {
    let from = actor(Role::Doctor);
    let to = UserId::generate();
    let referral = Referral {
        id: ReferralId::generate(),
        patient_id: PatientId::generate(),
        patient_name: "Ada Lovelace".to_owned(),
        from_doctor_id: from.user_id(),
        from_doctor_name: None,
        to_doctor_id: to,
        to_doctor_name: None,
        reason: Text::line("Second opinion", 100).expect("text"),
        urgency: Urgency::Routine,
        status: ReferralStatus::Sent,
        decline_reason: None,
        outcome: None,
        created_at: NOW,
        updated_at: NOW,
    };
    let mut chat = Chat::new();
    let found = referral.clone();
    chat.mocks
        .referrals
        .expect_find()
        .returning(move |_| Ok(Some(found.clone())));
    let existing = ConversationId::generate();
    chat.messages
        .expect_create()
        .times(1)
        .returning(move |c, _| {
            assert_eq!(
                c.participants.iter().map(|p| p.user_id).collect::<Vec<_>>(),
                [c.created_by, c.participants[1].user_id]
            );
            Err(CreateConversationError::Exists(existing))
        });
    let conversation_again = Conversation {
        id: existing,
        ..conversation(
            Subject::Referral {
                referral_id: referral.id,
                patient_id: referral.patient_id,
            },
            &[from.user_id(), to],
        )
    };
    chat.finds(&conversation_again);
    let audited = chat.mocks.audit_succeeds();
    let started = chat
        .service()
        .start(&from, NewConversation::Referral(referral.id))
        .await
        .expect("the existing one");
    assert!(!started.created);
    assert_eq!(started.conversation.id, existing);
    assert_allowed(
        &single_event(&audited),
        &from,
        Some(referral.patient_id),
        AuditAction::ConversationRead,
        Basis::Referral,
    );

    let outsider = actor(Role::Doctor);
    let mut chat = Chat::new();
    let found = referral.clone();
    chat.mocks
        .referrals
        .expect_find()
        .returning(move |_| Ok(Some(found.clone())));
    chat.messages.expect_create().never();
    let audited = chat.mocks.audit_succeeds();
    let result = chat
        .service()
        .start(&outsider, NewConversation::Referral(referral.id))
        .await;
    assert!(
        matches!(result, Err(MessagingError::NotFound)),
        "{result:?}"
    );
    assert_denied(
        &single_event(&audited),
        &outsider,
        Some(referral.patient_id),
        AuditAction::ConversationCreate,
    );
}

#[tokio::test]
async fn a_message_reaches_every_other_participant_who_may_still_take_part() {
    let doctor = actor(Role::Doctor);
    let (account, former) = (UserId::generate(), UserId::generate());
    let patient_id = PatientId::generate();
    let talk = conversation(
        Subject::Patient(patient_id),
        &[doctor.user_id(), account, former],
    );
    let mut chat = Chat::new();
    chat.finds(&talk);
    chat.mocks.facts(patient_id, &doctor, Some(ON_CARE_TEAM));
    chat.patient(patient_id, Some(account), &[doctor.user_id()], &[former]);
    chat.named();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&sent);
    chat.messages.expect_send().times(1).returning(move |new| {
        log.lock().expect("log").push((
            new.message.clone(),
            new.audit.clone(),
            new.events.to_vec(),
            new.jobs.clone(),
        ));
        Ok(stored(new.events, &[]))
    });
    chat.messages.expect_message().returning(|_| Ok(None));
    let published = chat.mocks.publishes();
    chat.mocks.nothing_audited();
    let message = chat
        .service()
        .send(&doctor, talk.id, "  How is the cough?  ", &[])
        .await
        .expect("sent");
    assert_eq!(message.body.as_str(), "How is the cough?");
    let sent = sent.lock().expect("log");
    let (_, audit, events, jobs) = &sent[0];
    assert_allowed(
        audit,
        &doctor,
        Some(patient_id),
        AuditAction::MessageSend,
        Basis::CareTeam,
    );
    assert_eq!(
        events.len(),
        1,
        "not the sender, not the doctor who left: {events:?}"
    );
    assert_eq!(events[0].recipient, Recipient::User(account));
    assert_eq!(events[0].kind, NotificationKind::MessageReceived);
    assert_eq!(events[0].data.message_id, Some(*message.id.as_uuid()));
    assert!(!events[0].data.title.contains("cough"), "no clinical text");
    assert_eq!(
        jobs.add[0].task,
        Task::MessageUnread {
            message: message.id
        }
    );
    assert_eq!(published.lock().expect("log")[0].len(), 1);
}

#[tokio::test]
async fn typing_reaches_every_other_participant_who_may_still_take_part_and_is_not_stored() {
    let doctor = actor(Role::Doctor);
    let (account, former) = (UserId::generate(), UserId::generate());
    let patient_id = PatientId::generate();
    let talk = conversation(
        Subject::Patient(patient_id),
        &[doctor.user_id(), account, former],
    );
    let mut chat = Chat::new();
    chat.finds(&talk);
    chat.mocks.facts(patient_id, &doctor, Some(ON_CARE_TEAM));
    chat.patient(patient_id, Some(account), &[doctor.user_id()], &[former]);
    let relayed = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&relayed);
    chat.relay
        .expect_relay()
        .returning(move |r| log.lock().expect("log").push(r));
    chat.messages.expect_send().never();
    chat.mocks.nothing_audited();
    chat.service()
        .typing(&doctor, talk.id)
        .await
        .expect("relayed");
    assert_eq!(
        relayed.lock().expect("log").clone(),
        vec![Relayed {
            from: doctor.user_id(),
            to: account,
            what: Live::Typing {
                conversation_id: talk.id
            },
        }],
        "not to the typist, not to the doctor who left"
    );

    // Someone who is not a participant is told there is no such conversation, audited.
    let stranger = actor(Role::Patient);
    let mut chat = Chat::new();
    chat.finds(&talk);
    chat.relay.expect_relay().never();
    let audited = chat.mocks.audit_succeeds();
    let refused = chat.service().typing(&stranger, talk.id).await;
    assert!(
        matches!(refused, Err(MessagingError::ConversationNotFound)),
        "{refused:?}"
    );
    assert_denied(
        &single_event(&audited),
        &stranger,
        Some(patient_id),
        AuditAction::MessageSend,
    );
}

#[tokio::test]
async fn a_doctor_who_left_the_care_team_no_longer_reads_or_writes() {
    let former = actor(Role::Doctor);
    let patient_id = PatientId::generate();
    let talk = conversation(
        Subject::Patient(patient_id),
        &[former.user_id(), UserId::generate()],
    );
    let mut chat = Chat::new();
    chat.finds(&talk);
    chat.mocks.facts(patient_id, &former, Some(UNRELATED));
    chat.messages.expect_send().never();
    let audited = chat.mocks.audit_succeeds();
    let result = chat.service().send(&former, talk.id, "Hello", &[]).await;
    assert!(
        matches!(result, Err(MessagingError::ConversationNotFound)),
        "{result:?}"
    );
    assert_denied(
        &single_event(&audited),
        &former,
        Some(patient_id),
        AuditAction::MessageSend,
    );

    // Nor does a message reach their socket any more.
    let mut chat = Chat::new();
    let message = message_in(&talk, talk.participants[1].user_id);
    let found = message.clone();
    chat.messages
        .expect_message()
        .returning(move |_| Ok(Some(found.clone())));
    chat.finds(&talk);
    chat.patient(
        patient_id,
        Some(UserId::generate()),
        &[],
        &[former.user_id()],
    );
    chat.mocks.nothing_audited();
    assert_eq!(
        chat.service()
            .deliverable(&former, message.id)
            .await
            .expect("looked up"),
        None
    );
}

#[tokio::test]
async fn only_participants_see_a_conversation_and_bodies_are_bounded() {
    let stranger = actor(Role::Doctor);
    let patient_id = PatientId::generate();
    let talk = conversation(
        Subject::Patient(patient_id),
        &[UserId::generate(), UserId::generate()],
    );
    let mut chat = Chat::new();
    chat.finds(&talk);
    chat.mocks.no_patient_lookup();
    chat.messages.expect_messages().never();
    let audited = chat.mocks.audit_succeeds();
    let result = chat
        .service()
        .messages(&stranger, talk.id, crate::kernel::PageRequest::first(20))
        .await;
    assert!(
        matches!(result, Err(MessagingError::ConversationNotFound)),
        "{result:?}"
    );
    assert_denied(
        &single_event(&audited),
        &stranger,
        Some(patient_id),
        AuditAction::ConversationRead,
    );

    let patient = actor(Role::Patient);
    let talk = conversation(
        Subject::Patient(patient_id),
        &[patient.user_id(), UserId::generate()],
    );
    let mut chat = Chat::new();
    chat.finds(&talk);
    chat.mocks.facts(patient_id, &patient, Some(OWN_RECORD));
    chat.messages.expect_send().never();
    let too_long = "x".repeat(MAX_MESSAGE_CHARS + 1);
    let result = chat.service().send(&patient, talk.id, &too_long, &[]).await;
    assert_eq!(invalid_fields(result), ["body"]);
}

#[tokio::test]
async fn a_read_mark_names_a_message_of_the_conversation() {
    let patient = actor(Role::Patient);
    let patient_id = PatientId::generate();
    let doctor = UserId::generate();
    let talk = conversation(Subject::Patient(patient_id), &[patient.user_id(), doctor]);
    let elsewhere = conversation(Subject::Patient(patient_id), &[patient.user_id(), doctor]);
    let foreign = message_in(&elsewhere, doctor);
    let mut chat = Chat::new();
    chat.finds(&talk);
    chat.mocks.facts(patient_id, &patient, Some(OWN_RECORD));
    let found = foreign.clone();
    chat.messages
        .expect_message()
        .returning(move |_| Ok(Some(found.clone())));
    chat.messages.expect_mark_read().never();
    let result = chat
        .service()
        .mark_read(&patient, talk.id, foreign.id)
        .await;
    assert!(
        matches!(result, Err(MessagingError::MessageNotFound)),
        "{result:?}"
    );

    let own = message_in(&talk, doctor);
    let (talk_id, reader, own_id) = (talk.id, patient.user_id(), own.id);
    let mut chat = Chat::new();
    chat.finds(&talk);
    chat.mocks.facts(patient_id, &patient, Some(OWN_RECORD));
    chat.patient(patient_id, Some(reader), &[doctor], &[]);
    chat.named();
    let found = own.clone();
    chat.messages
        .expect_message()
        .returning(move |_| Ok(Some(found.clone())));
    chat.messages
        .expect_mark_read()
        .withf(move |c, u, upto, events, _| {
            *c == talk_id
                && *u == reader
                && *upto == own_id
                && events.len() == 1
                && events[0].kind == NotificationKind::MessageRead
                && events[0].recipient == Recipient::User(doctor)
        })
        .times(1)
        .returning(|_, _, _, events, _| Ok(Some(stored(events, &[]))));
    let published = chat.mocks.publishes();
    chat.service()
        .mark_read(&patient, talk_id, own_id)
        .await
        .expect("marked");
    assert_eq!(published.lock().expect("log")[0].len(), 1);
}

#[tokio::test]
async fn an_unread_message_becomes_a_notification_for_those_who_did_not_read_it() {
    let patient_id = PatientId::generate();
    let (sender, reader, late, former) = (
        UserId::generate(),
        UserId::generate(),
        UserId::generate(),
        UserId::generate(),
    );
    let mut talk = conversation(
        Subject::Patient(patient_id),
        &[sender, reader, late, former],
    );
    let message = message_in(&talk, sender);
    talk.participants[1].last_read = Some(message.id);
    let mut chat = Chat::new();
    chat.finds(&talk);
    let found = message.clone();
    chat.messages
        .expect_message()
        .returning(move |_| Ok(Some(found.clone())));
    chat.patient(patient_id, Some(late), &[sender, reader], &[former]);
    chat.named();
    chat.messages
        .expect_notify()
        .withf(move |notices, _| {
            notices.len() == 1
                && notices[0].recipient == Recipient::User(late)
                && notices[0].kind == NotificationKind::MessageUnread
        })
        .times(1)
        .returning(|notices, _| Ok(stored(notices, &[])));
    let published = chat.mocks.publishes();
    assert_eq!(
        chat.service().notify_unread(message.id).await.expect("ran"),
        UnreadOutcome::Notified(1)
    );
    assert_eq!(published.lock().expect("log").len(), 1);
}

fn upload(content_type: &str) -> Upload {
    Upload {
        name: crate::kernel::FileName::parse("scan.pdf").expect("a name"),
        content_type: content_type.to_owned(),
        sha256: "ab".repeat(32),
        bytes: b"%PDF-1.7".to_vec(),
    }
}

fn unsent(talk: &Conversation, by: UserId) -> Attachment {
    Attachment {
        id: AttachmentId::generate(),
        conversation_id: talk.id,
        message_id: None,
        name: crate::kernel::FileName::parse("scan.pdf").expect("a name"),
        content_type: "application/pdf".into(),
        size: 8,
        sha256: "ab".repeat(32),
        uploaded_by: by,
        uploaded_at: NOW,
    }
}

#[tokio::test]
async fn a_participant_uploads_a_file_which_is_described_before_its_bytes_are_kept() {
    let doctor = actor(Role::Doctor);
    let patient_id = PatientId::generate();
    let talk = conversation(Subject::Patient(patient_id), &[doctor.user_id()]);
    let mut chat = Chat::new();
    chat.finds(&talk);
    chat.mocks.facts(patient_id, &doctor, Some(ON_CARE_TEAM));
    chat.messages
        .expect_unsent_count()
        .with(eq(talk.id), eq(doctor.user_id()))
        .returning(|_, _| Ok(MAX_UNSENT_ATTACHMENTS - 1));
    let mut order = mockall::Sequence::new();
    let described = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&described);
    chat.messages
        .expect_add_attachment()
        .times(1)
        .in_sequence(&mut order)
        .returning(move |a, e| {
            log.lock().expect("log").push((a.clone(), e.clone()));
            Ok(())
        });
    chat.files
        .expect_put()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _| Ok(()));
    let attachment = chat
        .service()
        .attach(&doctor, talk.id, upload("application/pdf"))
        .await
        .expect("uploaded");
    assert_eq!(
        attachment.message_id, None,
        "unsent until sent with a message"
    );
    assert_eq!(attachment.size, 8);
    let (stored, audit) = described.lock().expect("log")[0].clone();
    assert_eq!(stored, attachment);
    assert_allowed(
        &audit,
        &doctor,
        Some(patient_id),
        AuditAction::AttachmentUpload,
        Basis::CareTeam,
    );

    // Another type is refused before anything is kept; bytes that could not be kept leave no
    // description behind.
    let mut chat = Chat::new();
    chat.finds(&talk);
    chat.mocks.facts(patient_id, &doctor, Some(ON_CARE_TEAM));
    chat.files.expect_put().never();
    chat.messages.expect_add_attachment().never();
    let refused = chat
        .service()
        .attach(&doctor, talk.id, upload("text/html"))
        .await;
    assert_eq!(invalid_fields(refused), ["file"]);
    let mut chat = Chat::new();
    chat.finds(&talk);
    chat.mocks.facts(patient_id, &doctor, Some(ON_CARE_TEAM));
    chat.messages.expect_unsent_count().returning(|_, _| Ok(0));
    chat.messages
        .expect_add_attachment()
        .returning(|_, _| Ok(()));
    chat.files
        .expect_put()
        .returning(|_, _| Err(crate::test_support::repository_failure()));
    chat.messages
        .expect_delete_unsent_attachment()
        .times(1)
        .returning(|_| Ok(true));
    let failed = chat
        .service()
        .attach(&doctor, talk.id, upload("image/png"))
        .await;
    assert!(
        matches!(failed, Err(MessagingError::Internal(_))),
        "{failed:?}"
    );

    // With as many files waiting as allowed, another is refused before anything is kept.
    let mut chat = Chat::new();
    chat.finds(&talk);
    chat.mocks.facts(patient_id, &doctor, Some(ON_CARE_TEAM));
    chat.messages
        .expect_unsent_count()
        .returning(|_, _| Ok(MAX_UNSENT_ATTACHMENTS));
    chat.messages.expect_add_attachment().never();
    chat.files.expect_put().never();
    let full = chat
        .service()
        .attach(&doctor, talk.id, upload("application/pdf"))
        .await;
    assert!(
        matches!(full, Err(MessagingError::TooManyUnsent)),
        "{full:?}"
    );
}

#[tokio::test]
async fn only_the_senders_own_unsent_uploads_go_with_a_message() {
    let doctor = actor(Role::Doctor);
    let account = UserId::generate();
    let patient_id = PatientId::generate();
    let talk = conversation(Subject::Patient(patient_id), &[doctor.user_id(), account]);
    let own = unsent(&talk, doctor.user_id());
    let others = unsent(&talk, account);
    let sent_already = Attachment {
        message_id: Some(MessageId::generate()),
        ..unsent(&talk, doctor.user_id())
    };
    let elsewhere = Attachment {
        conversation_id: ConversationId::generate(),
        ..unsent(&talk, doctor.user_id())
    };
    let known = [
        own.clone(),
        others.clone(),
        sent_already.clone(),
        elsewhere.clone(),
    ];
    for (ids, ok) in [
        (vec![own.id], true),
        (vec![others.id], false),
        (vec![sent_already.id], false),
        (vec![elsewhere.id], false),
        (vec![AttachmentId::generate()], false),
        (vec![own.id, own.id], false),
    ] {
        let mut chat = Chat::new();
        chat.finds(&talk);
        chat.mocks.facts(patient_id, &doctor, Some(ON_CARE_TEAM));
        let known = known.to_vec();
        chat.messages
            .expect_attachment()
            .returning(move |id| Ok(known.iter().find(|a| a.id == id).cloned()));
        if ok {
            chat.patient(patient_id, Some(account), &[doctor.user_id()], &[]);
            chat.named();
            let expected = ids.clone();
            chat.messages
                .expect_send()
                .withf(move |new| new.attachments == expected.as_slice())
                .times(1)
                .returning(|new| Ok(stored(new.events, &[])));
            chat.messages.expect_message().returning(|_| Ok(None));
            let _ = chat.mocks.publishes();
        } else {
            chat.messages.expect_send().never();
        }
        let result = chat
            .service()
            .send(&doctor, talk.id, "The scan", &ids)
            .await;
        if ok {
            let message = result.expect("sent");
            assert_eq!(message.attachments, vec![own.clone()]);
        } else {
            assert_eq!(invalid_fields(result), ["attachment_ids"], "{ids:?}");
        }
    }
}

#[tokio::test]
async fn participants_read_sent_files_and_nobody_reads_anothers_unsent_one() {
    let doctor = actor(Role::Doctor);
    let patient = actor(Role::Patient);
    let patient_id = PatientId::generate();
    let talk = conversation(
        Subject::Patient(patient_id),
        &[doctor.user_id(), patient.user_id()],
    );
    let sent = Attachment {
        message_id: Some(MessageId::generate()),
        ..unsent(&talk, doctor.user_id())
    };
    let draft = unsent(&talk, doctor.user_id());
    let mut chat = Chat::new();
    chat.finds(&talk);
    chat.mocks.facts(patient_id, &patient, Some(OWN_RECORD));
    let found = sent.clone();
    chat.messages
        .expect_attachment()
        .returning(move |_| Ok(Some(found.clone())));
    chat.files
        .expect_get()
        .returning(|_| Ok(Some(b"%PDF-1.7".to_vec())));
    let audited = chat.mocks.audit_succeeds();
    let (read, bytes) = chat
        .service()
        .attachment(&patient, talk.id, sent.id)
        .await
        .expect("read");
    assert_eq!((read, bytes), (sent.clone(), b"%PDF-1.7".to_vec()));
    assert_allowed(
        &single_event(&audited),
        &patient,
        Some(patient_id),
        AuditAction::AttachmentRead,
        Basis::OwnRecord,
    );

    let mut chat = Chat::new();
    chat.finds(&talk);
    chat.mocks.facts(patient_id, &patient, Some(OWN_RECORD));
    let found = draft.clone();
    chat.messages
        .expect_attachment()
        .returning(move |_| Ok(Some(found.clone())));
    chat.files.expect_get().never();
    chat.mocks.nothing_audited();
    let hidden = chat.service().attachment(&patient, talk.id, draft.id).await;
    assert!(
        matches!(hidden, Err(MessagingError::AttachmentNotFound)),
        "{hidden:?}"
    );
}

#[tokio::test]
async fn unsent_uploads_are_purged_after_a_day_description_first() {
    let talk = conversation(
        Subject::Patient(PatientId::generate()),
        &[UserId::generate()],
    );
    let stale = unsent(&talk, UserId::generate());
    let mut chat = Chat::new();
    let found = stale.clone();
    chat.messages
        .expect_unsent_attachments()
        .withf(|before, _| *before == NOW - UNSENT_ATTACHMENT_TTL)
        .returning(move |_, _| Ok(vec![found.clone()]));
    let mut order = mockall::Sequence::new();
    chat.messages
        .expect_delete_unsent_attachment()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(true));
    let key = stale.key();
    chat.files
        .expect_delete()
        .withf(move |k| *k == key)
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(()));
    assert_eq!(chat.service().purge_unsent(NOW).await.expect("purged"), 1);
}
