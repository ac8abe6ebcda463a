//! `MessageRepository`: conversations with their participants in order, one per referral;
//! listings with unread counts, newest first, in pages; messages written with their audit
//! event, stream events (born read, never listed as notifications) and jobs; read marks that
//! only move forward; on both backends.

use carehub_domain::audit::AuditAction;
use carehub_domain::identity::UserId;
use carehub_domain::jobs::{JobChanges, JobFilter, JobKind, JobState, Task};
use carehub_domain::kernel::{
    AttachmentId, ConversationId, FileName, MessageId, PageRequest, PatientId, ReferralId, Text,
};
use carehub_domain::messages::{
    Attachment, Conversation, CreateConversationError, Message, MessageTimings, NewMessage,
    Participant, SendMessageError, Subject,
};
use carehub_domain::notifications::{
    NewNotification, NotificationData, NotificationKind, NotificationQuery, Recipient,
};
use carehub_domain::referrals::{Referral, ReferralSnapshot, ReferralStatus, Urgency};
use carehub_infra::Repositories;

use crate::fixtures::patients::{audit, register_named};
use crate::fixtures::{audited, doctor, micros, now, some_user};

contract!(
    a_conversation_reads_back_with_its_participants_in_order_and_its_audit_event,
    a_referral_has_one_conversation,
    a_message_is_stored_with_its_events_born_read_and_its_unread_job,
    conversations_are_listed_for_their_participants_with_unread_counts_in_pages,
    a_read_mark_only_moves_forward_and_tells_the_others_only_when_it_moves,
    attachments_are_stored_unsent_go_with_one_message_in_order_and_unsent_ones_are_purged,
);

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
        created_at: micros(now()),
        last_message_at: None,
    }
}

async fn started(repos: &Repositories, subject: Subject, participants: &[UserId]) -> Conversation {
    let c = conversation(subject, participants);
    repos
        .messages
        .create(
            &c,
            &audit(
                participants[0],
                subject.patient_id(),
                AuditAction::ConversationCreate,
            ),
        )
        .await
        .unwrap();
    c
}

fn event(to: UserId, kind: NotificationKind, message: &Message) -> NewNotification {
    NewNotification {
        recipient: Recipient::User(to),
        kind,
        data: NotificationData {
            title: "Message from Dr Chat".to_owned(),
            actor_id: Some(*message.sender_id.as_uuid()),
            conversation_id: Some(*message.conversation_id.as_uuid()),
            message_id: Some(*message.id.as_uuid()),
            ..NotificationData::default()
        },
    }
}

/// Sends `body` from `from` in `conversation`, with a `message.received` event for each of
/// `to`.
async fn say(
    repos: &Repositories,
    conversation: &Conversation,
    from: UserId,
    to: &[UserId],
    body: &str,
) -> Message {
    let message = Message {
        id: MessageId::generate(),
        conversation_id: conversation.id,
        sender_id: from,
        sender_name: None,
        body: Text::multiline(body, 4_000).unwrap(),
        sent_at: micros(now()),
        attachments: Vec::new(),
    };
    let events: Vec<NewNotification> = to
        .iter()
        .map(|u| event(*u, NotificationKind::MessageReceived, &message))
        .collect();
    repos
        .messages
        .send(NewMessage {
            message: &message,
            audit: &audit(
                from,
                conversation.subject.patient_id(),
                AuditAction::MessageSend,
            ),
            events: &events,
            jobs: &JobChanges::add(
                MessageTimings::default()
                    .unread_job(&message)
                    .into_iter()
                    .collect(),
            ),
            attachments: &[],
        })
        .await
        .unwrap();
    message
}

async fn setting(repos: &Repositories) -> (UserId, UserId, PatientId) {
    let doctor = doctor(repos, "dr.chat").await.id;
    let account = some_user(repos, "ann.chat").await.id;
    let patient = register_named(repos, "Ann Chat", doctor).await.id;
    (doctor, account, patient)
}

async fn a_conversation_reads_back_with_its_participants_in_order_and_its_audit_event(
    repos: Repositories,
) {
    let (doctor, account, patient) = setting(&repos).await;
    let colleague = self::doctor(&repos, "dr.colleague").await.id;
    let c = started(
        &repos,
        Subject::Patient(patient),
        &[doctor, colleague, account],
    )
    .await;
    let read = repos.messages.find(c.id).await.unwrap().unwrap();
    let users: Vec<UserId> = read.participants.iter().map(|p| p.user_id).collect();
    assert_eq!(users, [doctor, colleague, account]);
    assert!(
        read.participants
            .iter()
            .all(|p| p.full_name.is_some() && p.last_read.is_none())
    );
    assert_eq!(read.subject, Subject::Patient(patient));
    assert_eq!((read.created_by, read.created_at), (doctor, c.created_at));
    assert!(
        audited(&repos, patient)
            .await
            .contains(&AuditAction::ConversationCreate)
    );
    assert!(
        repos
            .messages
            .find(ConversationId::generate())
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_referral_has_one_conversation(repos: Repositories) {
    let (from, _, patient) = setting(&repos).await;
    let to = doctor(&repos, "dr.receiver").await.id;
    let at = micros(now());
    let referral = Referral {
        id: ReferralId::generate(),
        patient_id: patient,
        patient_name: "Ann Chat".to_owned(),
        from_doctor_id: from,
        from_doctor_name: None,
        to_doctor_id: to,
        to_doctor_name: None,
        reason: Text::line("Second opinion", 100).unwrap(),
        urgency: Urgency::Routine,
        status: ReferralStatus::Sent,
        decline_reason: None,
        outcome: None,
        created_at: at,
        updated_at: at,
    };
    let snapshot = ReferralSnapshot {
        clinical_summary: Text::line("Cough", 100).unwrap(),
        patient: repos.patients.find(patient).await.unwrap().unwrap(),
        medical: repos.medical.get(patient).await.unwrap(),
    };
    repos
        .referrals
        .create(
            &referral,
            &snapshot,
            &audit(from, patient, AuditAction::ReferralCreate),
            &[],
            &[],
        )
        .await
        .unwrap();
    let subject = Subject::Referral {
        referral_id: referral.id,
        patient_id: patient,
    };
    let first = started(&repos, subject, &[from, to]).await;
    let second = conversation(subject, &[to, from]);
    let refused = repos
        .messages
        .create(
            &second,
            &audit(to, patient, AuditAction::ConversationCreate),
        )
        .await;
    assert!(
        matches!(refused, Err(CreateConversationError::Exists(id)) if id == first.id),
        "{refused:?}"
    );
    assert!(
        repos.messages.find(second.id).await.unwrap().is_none(),
        "nothing of it stored"
    );
    assert_eq!(
        repos
            .messages
            .find(first.id)
            .await
            .unwrap()
            .unwrap()
            .subject,
        subject
    );
}

async fn a_message_is_stored_with_its_events_born_read_and_its_unread_job(repos: Repositories) {
    let (doctor, account, patient) = setting(&repos).await;
    let c = started(&repos, Subject::Patient(patient), &[doctor, account]).await;
    let message = say(&repos, &c, doctor, &[account], "How is the cough?\nBetter?").await;
    assert_eq!(
        repos
            .messages
            .message(message.id)
            .await
            .unwrap()
            .unwrap()
            .body,
        message.body
    );
    let read = repos.messages.message(message.id).await.unwrap().unwrap();
    assert!(read.sender_name.is_some());
    assert_eq!(
        repos
            .messages
            .find(c.id)
            .await
            .unwrap()
            .unwrap()
            .last_message_at,
        Some(message.sent_at)
    );
    // The event is in the account's stream, born read, and never a notification to list.
    let stream = repos
        .notifications
        .list(NotificationQuery {
            recipient: account,
            after: None,
            unread_only: false,
            with_events: true,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(stream.len(), 1);
    assert_eq!(stream[0].kind, NotificationKind::MessageReceived);
    assert_eq!(stream[0].read_at, Some(stream[0].created_at));
    assert_eq!(stream[0].data.message_id, Some(*message.id.as_uuid()));
    for unread_only in [false, true] {
        let listed = repos
            .notifications
            .list(NotificationQuery {
                recipient: account,
                after: None,
                unread_only,
                with_events: false,
                limit: 10,
            })
            .await
            .unwrap();
        assert!(listed.is_empty(), "{listed:?}");
    }
    assert_eq!(repos.notifications.unread_count(account).await.unwrap(), 0);
    assert!(
        audited(&repos, patient)
            .await
            .contains(&AuditAction::MessageSend)
    );
    let jobs = repos
        .jobs
        .list(
            JobFilter {
                state: Some(JobState::Scheduled),
                kind: Some(JobKind::MessageUnread),
            },
            PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(jobs.items.len(), 1);
    assert_eq!(
        jobs.items[0].task,
        Task::MessageUnread {
            message: message.id
        }
    );
}

async fn conversations_are_listed_for_their_participants_with_unread_counts_in_pages(
    repos: Repositories,
) {
    let (doctor, account, patient) = setting(&repos).await;
    let stranger = self::doctor(&repos, "dr.stranger").await.id;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(started(&repos, Subject::Patient(patient), &[doctor, account]).await);
    }
    say(&repos, &ids[1], doctor, &[account], "one").await;
    say(&repos, &ids[1], doctor, &[account], "two").await;
    say(&repos, &ids[1], account, &[doctor], "three").await;
    let first = repos
        .messages
        .list(account, PageRequest::first(2))
        .await
        .unwrap();
    let listed: Vec<(ConversationId, u32)> = first
        .items
        .iter()
        .map(|s| (s.conversation.id, s.unread))
        .collect();
    assert_eq!(listed, [(ids[2].id, 0), (ids[1].id, 2)]);
    let rest = repos
        .messages
        .list(account, PageRequest::new(Some(2), first.next).unwrap())
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.items[0].conversation.id, ids[0].id);
    assert!(rest.next.is_none());
    assert_eq!(
        repos
            .messages
            .list(doctor, PageRequest::first(10))
            .await
            .unwrap()
            .items[1]
            .unread,
        1
    );
    assert!(
        repos
            .messages
            .list(stranger, PageRequest::first(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // Messages, newest first, page by page.
    let page = repos
        .messages
        .messages(ids[1].id, PageRequest::first(2))
        .await
        .unwrap();
    let bodies: Vec<&str> = page.items.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["three", "two"]);
    let older = repos
        .messages
        .messages(ids[1].id, PageRequest::new(Some(2), page.next).unwrap())
        .await
        .unwrap();
    assert_eq!(
        older
            .items
            .iter()
            .map(|m| m.body.as_str())
            .collect::<Vec<_>>(),
        ["one"]
    );
}

async fn a_read_mark_only_moves_forward_and_tells_the_others_only_when_it_moves(
    repos: Repositories,
) {
    let (doctor, account, patient) = setting(&repos).await;
    let c = started(&repos, Subject::Patient(patient), &[doctor, account]).await;
    let first = say(&repos, &c, doctor, &[account], "first").await;
    let second = say(&repos, &c, doctor, &[account], "second").await;
    let receipt = |m: &Message| [event(doctor, NotificationKind::MessageRead, m)];
    let moved = repos
        .messages
        .mark_read(c.id, account, second.id, &receipt(&second), micros(now()))
        .await
        .unwrap();
    assert_eq!(moved.map(|s| s.len()), Some(1));
    let back = repos
        .messages
        .mark_read(c.id, account, first.id, &receipt(&first), micros(now()))
        .await
        .unwrap();
    assert!(back.is_none(), "never back");
    let again = repos
        .messages
        .mark_read(c.id, account, second.id, &receipt(&second), micros(now()))
        .await
        .unwrap();
    assert!(again.is_none(), "nothing moved, nobody told twice");
    let read = repos.messages.find(c.id).await.unwrap().unwrap();
    assert_eq!(
        read.participant(account).unwrap().last_read,
        Some(second.id)
    );
    let list = repos
        .messages
        .list(account, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(list.items[0].unread, 0);
    let told = repos
        .notifications
        .list(NotificationQuery {
            recipient: doctor,
            after: None,
            unread_only: false,
            with_events: true,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].kind, NotificationKind::MessageRead);

    // The clinic's own notice of an unread message is a notification proper.
    let notice = NewNotification {
        kind: NotificationKind::MessageUnread,
        ..event(account, NotificationKind::MessageUnread, &first)
    };
    repos
        .messages
        .notify(&[notice], micros(now()))
        .await
        .unwrap();
    assert_eq!(repos.notifications.unread_count(account).await.unwrap(), 1);
}

fn upload_of(conversation: &Conversation, by: UserId, name: &str, minutes_ago: i64) -> Attachment {
    Attachment {
        id: AttachmentId::generate(),
        conversation_id: conversation.id,
        message_id: None,
        name: FileName::parse(name).unwrap(),
        content_type: "application/pdf".into(),
        size: 1_234,
        sha256: "0f".repeat(32),
        uploaded_by: by,
        uploaded_at: micros(now()) - jiff::SignedDuration::from_mins(minutes_ago),
    }
}

/// Sends `body` with `attachments` from `from`.
async fn say_with(
    repos: &Repositories,
    conversation: &Conversation,
    from: UserId,
    attachments: &[AttachmentId],
) -> Result<Message, SendMessageError> {
    let message = Message {
        id: MessageId::generate(),
        conversation_id: conversation.id,
        sender_id: from,
        sender_name: None,
        body: Text::multiline("The scans", 4_000).unwrap(),
        sent_at: micros(now()),
        attachments: Vec::new(),
    };
    repos
        .messages
        .send(NewMessage {
            message: &message,
            audit: &audit(
                from,
                conversation.subject.patient_id(),
                AuditAction::MessageSend,
            ),
            events: &[],
            jobs: &JobChanges::default(),
            attachments,
        })
        .await?;
    Ok(message)
}

async fn attachments_are_stored_unsent_go_with_one_message_in_order_and_unsent_ones_are_purged(
    repos: Repositories,
) {
    let (doctor, account, patient) = setting(&repos).await;
    let c = started(&repos, Subject::Patient(patient), &[doctor, account]).await;
    let first = upload_of(&c, doctor, "ecg (1).pdf", 0);
    let second = upload_of(&c, doctor, "scan.pdf", 0);
    let patients_own = upload_of(&c, account, "photo.pdf", 0);
    let stale = upload_of(&c, doctor, "old.pdf", 60 * 25);
    for a in [&first, &second, &patients_own, &stale] {
        repos
            .messages
            .add_attachment(
                a,
                &audit(a.uploaded_by, patient, AuditAction::AttachmentUpload),
            )
            .await
            .unwrap();
    }
    assert_eq!(
        repos.messages.attachment(first.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(repos.messages.unsent_count(c.id, doctor).await.unwrap(), 3);
    assert_eq!(repos.messages.unsent_count(c.id, account).await.unwrap(), 1);
    assert_eq!(
        repos
            .messages
            .unsent_count(ConversationId::generate(), doctor)
            .await
            .unwrap(),
        0
    );
    assert!(
        audited(&repos, patient)
            .await
            .contains(&AuditAction::AttachmentUpload)
    );

    // Someone else's upload cannot go with the doctor's message: nothing is stored.
    let refused = say_with(&repos, &c, doctor, &[first.id, patients_own.id]).await;
    assert!(
        matches!(refused, Err(SendMessageError::AttachmentsGone)),
        "{refused:?}"
    );
    assert_eq!(
        repos
            .messages
            .attachment(first.id)
            .await
            .unwrap()
            .unwrap()
            .message_id,
        None
    );
    let before = repos
        .messages
        .messages(c.id, PageRequest::first(10))
        .await
        .unwrap();
    assert!(before.items.is_empty(), "the message was not stored");

    let sent = say_with(&repos, &c, doctor, &[second.id, first.id])
        .await
        .unwrap();
    assert_eq!(
        repos.messages.unsent_count(c.id, doctor).await.unwrap(),
        1,
        "sent files no longer wait"
    );
    let read = repos.messages.message(sent.id).await.unwrap().unwrap();
    let names: Vec<&str> = read.attachments.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["scan.pdf", "ecg (1).pdf"], "in the order given");
    assert!(
        read.attachments
            .iter()
            .all(|a| a.message_id == Some(sent.id))
    );
    let page = repos
        .messages
        .messages(c.id, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(page.items[0].attachments, read.attachments);
    // Once sent, a file goes with no other message.
    let again = say_with(&repos, &c, doctor, &[first.id]).await;
    assert!(
        matches!(again, Err(SendMessageError::AttachmentsGone)),
        "{again:?}"
    );

    // Unsent uploads older than a day are found, and deleted only while unsent.
    let day_ago = micros(now()) - jiff::SignedDuration::from_hours(24);
    let old = repos
        .messages
        .unsent_attachments(day_ago, 10)
        .await
        .unwrap();
    assert_eq!(old, vec![stale.clone()]);
    assert!(
        repos
            .messages
            .delete_unsent_attachment(stale.id)
            .await
            .unwrap()
    );
    assert!(
        !repos
            .messages
            .delete_unsent_attachment(first.id)
            .await
            .unwrap(),
        "sent"
    );
    assert!(repos.messages.attachment(stale.id).await.unwrap().is_none());
    assert!(repos.messages.attachment(first.id).await.unwrap().is_some());
}
