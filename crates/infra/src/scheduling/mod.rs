//! Doctors' schedules and the appointments booked against them, on SQLite and PostgreSQL.

mod appointment;
mod conflicts;
mod schedule;

pub use appointment::SqlAppointmentRepository;
pub use schedule::SqlScheduleRepository;
