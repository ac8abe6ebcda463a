//! Scheduling: doctors' profiles, weekly availability and time off, free slots, and the
//! appointments booked into them.

mod appointment;
mod schedule;

pub use appointment::*;
pub use schedule::*;
