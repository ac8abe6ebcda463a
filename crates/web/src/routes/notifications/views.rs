//! The shapes of notifications as the API shows them, over REST and in WebSocket frames alike.
//! Instants are RFC 3339.

use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::openapi::enums;
use carehub_domain::notifications::{Notification, NotificationData, NotificationKind};

/// Something a user is told happened. `id` numbers the user's notifications 1, 2, 3, ... with
/// no gaps, in the order they were committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct NotificationView {
    #[schema(example = 42, minimum = 1)]
    pub id: i64,
    #[schema(value_type = enums::NotificationKind)]
    pub kind: NotificationKind,
    pub created_at: Timestamp,
    /// `null` while unread.
    pub read_at: Option<Timestamp>,
    /// Ids to fetch the details with, and a short title; never clinical text.
    pub data: NotificationDataView,
}

/// What a notification carries: ids to fetch the details with, and a short title for people.
/// Never clinical text, and never a patient's name: a notification may be shown on a lock
/// screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = NotificationData)]
pub struct NotificationDataView {
    /// A short human title, such as "Urgent referral from Dr Alice Adams".
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referral_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_id: Option<Uuid>,
    /// The user who caused the notification (the other doctor, whoever added to the team).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emergency_access_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub appointment_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lab_order_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prescription_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<Uuid>,
    /// Present, and `true`, when it needs attention at once (a critical lab result, a
    /// suspected arrhythmia).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub urgent: bool,
}

impl From<NotificationData> for NotificationDataView {
    fn from(data: NotificationData) -> Self {
        Self {
            title: data.title,
            referral_id: data.referral_id,
            patient_id: data.patient_id,
            actor_id: data.actor_id,
            emergency_access_id: data.emergency_access_id,
            appointment_id: data.appointment_id,
            lab_order_id: data.lab_order_id,
            prescription_id: data.prescription_id,
            conversation_id: data.conversation_id,
            message_id: data.message_id,
            urgent: data.urgent,
        }
    }
}

impl From<Notification> for NotificationView {
    fn from(notification: Notification) -> Self {
        Self {
            id: notification.id,
            kind: notification.kind,
            created_at: notification.created_at,
            read_at: notification.read_at,
            data: notification.data.into(),
        }
    }
}

/// A run of the caller's notifications, in id order.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationList {
    pub items: Vec<NotificationView>,
    /// Pass as `after` to read on: the id of the last item, or `null` when fewer than `limit`
    /// items were returned (nothing more for now).
    pub next_after: Option<i64>,
}

impl NotificationList {
    /// The listing of `items`, read with `limit`.
    pub fn new(items: Vec<Notification>, limit: u32) -> Self {
        let full = u32::try_from(items.len()).is_ok_and(|n| n >= limit);
        let next_after = if full {
            items.last().map(|n| n.id)
        } else {
            None
        };
        Self {
            items: items.into_iter().map(NotificationView::from).collect(),
            next_after,
        }
    }
}

/// How many notifications were marked read.
#[derive(Debug, Serialize, ToSchema)]
pub struct MarkedRead {
    #[schema(example = 3)]
    pub marked: u64,
}

/// How many of the caller's notifications are unread.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnreadCount {
    #[schema(example = 2)]
    pub unread: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::ts;

    use carehub_domain::identity::UserId;
    use serde_json::json;
    use uuid::Uuid;

    fn notification(id: i64) -> Notification {
        Notification {
            id,
            recipient: UserId::from_uuid(Uuid::now_v7()),
            kind: NotificationKind::ReferralReceived,
            created_at: ts("2026-11-23T09:30:00Z"),
            read_at: None,
            data: NotificationData {
                title: "Urgent referral from Dr Alice Adams".into(),
                referral_id: Some(Uuid::nil()),
                ..NotificationData::default()
            },
        }
    }

    #[test]
    fn a_notification_shows_its_kind_as_a_string_and_leaves_out_absent_ids() {
        let json = serde_json::to_value(NotificationView::from(notification(7))).expect("json");
        assert_eq!(
            json,
            json!({
                "id": 7,
                "kind": "referral.received",
                "created_at": "2026-11-23T09:30:00Z",
                "read_at": null,
                "data": {
                    "title": "Urgent referral from Dr Alice Adams",
                    "referral_id": "00000000-0000-0000-0000-000000000000",
                },
            })
        );
    }

    #[test]
    fn next_after_is_the_last_id_only_when_the_listing_was_full() {
        let full = NotificationList::new(vec![notification(1), notification(2)], 2);
        assert_eq!(full.next_after, Some(2));
        let short = NotificationList::new(vec![notification(1)], 2);
        assert_eq!(short.next_after, None);
        let empty = NotificationList::new(Vec::new(), 2);
        assert_eq!(empty.next_after, None);
        let json = serde_json::to_value(&short).expect("json");
        assert_eq!(json["next_after"], serde_json::Value::Null);
        assert_eq!(json["items"][0]["id"], 1);
    }
}
