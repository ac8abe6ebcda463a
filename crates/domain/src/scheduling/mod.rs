//! Scheduling: doctors' profiles, weekly availability and time off, free slots, and the
//! appointments booked into them.

mod appointment;
mod appointment_service;
mod availability;
mod booking;
mod profile;
mod reminders;
mod schedule;
mod schedule_service;
mod time_off;
mod visit_note_service;

pub use appointment::*;
pub use appointment_service::*;
pub use availability::*;
pub use booking::SCHEDULE_RETRIES;
pub use profile::*;
pub use reminders::*;
pub use schedule::*;
pub use schedule_service::*;
pub use time_off::*;
pub use visit_note_service::*;
