//! Identifiers of stored things: UUIDv7 newtypes, so that ids sort in creation order and
//! keyset pages follow it.

/// Declares a UUIDv7 identifier newtype with `generate`, `from_uuid`, `as_uuid` and `Display`.
macro_rules! time_ordered_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new identifier; time-ordered, so listings by id follow creation order.
            pub fn generate() -> Self {
                Self(uuid::Uuid::now_v7())
            }

            pub const fn from_uuid(id: uuid::Uuid) -> Self {
                Self(id)
            }

            pub const fn as_uuid(&self) -> &uuid::Uuid {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}
pub(crate) use time_ordered_id;

time_ordered_id!(
    /// A user's identifier.
    UserId
);

time_ordered_id!(
    /// A patient's identifier inside CareHub.
    PatientId
);

time_ordered_id!(
    /// A referral's identifier.
    ReferralId
);

time_ordered_id!(
    /// An appointment's identifier.
    AppointmentId
);

time_ordered_id!(
    /// A lab order's identifier.
    LabOrderId
);

time_ordered_id!(
    /// A file attached to a lab order.
    LabFileId
);

time_ordered_id!(
    /// A prescription's identifier.
    PrescriptionId
);

time_ordered_id!(
    /// A conversation's identifier.
    ConversationId
);

time_ordered_id!(
    /// A message's identifier: messages of a conversation are in the order of their ids.
    MessageId
);

time_ordered_id!(
    /// A file attached to a message.
    AttachmentId
);
