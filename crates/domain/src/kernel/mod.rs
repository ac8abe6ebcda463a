//! The shared kernel: what every concept builds on. Identifiers that cross concepts, text
//! values, files and their store, paging, the clock, validation errors and the error every
//! port returns.

mod calendar;
mod clock;
mod enums;
mod error;
mod files;
mod id;
mod page;
mod role;
mod text;
mod validation;

pub use calendar::*;
pub use clock::*;
pub(crate) use enums::string_enum;
pub use error::*;
pub use files::*;
pub(crate) use id::time_ordered_id;
pub use id::{
    AppointmentId, AttachmentId, ConversationId, LabFileId, LabOrderId, MessageId, PatientId,
    PrescriptionId, ReferralId, UserId,
};
pub use page::*;
pub use role::*;
pub use text::*;
pub use validation::*;
