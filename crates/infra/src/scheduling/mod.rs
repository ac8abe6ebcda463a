//! Doctors' schedules and the appointments booked against them, on SQLite and PostgreSQL.

mod appointment;
mod schedule;

pub use appointment::SqlAppointmentRepository;
pub(crate) use appointment::{ConflictRow, SELECT_CONFLICTS};
pub use schedule::SqlScheduleRepository;
