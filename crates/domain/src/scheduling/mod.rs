//! Scheduling: doctors' profiles, weekly availability and time off, free slots, and the
//! appointments booked into them.

mod appointment;
mod appointment_service;
mod schedule;
mod schedule_service;
mod visit_note_service;

pub use appointment::*;
pub use appointment_service::*;
pub use schedule::*;
pub use schedule_service::*;
pub use visit_note_service::*;
