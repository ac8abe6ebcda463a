//! Scheduling: doctors' profiles, weekly availability, time off and free slots ([`doctors`]),
//! and appointments with their status, history and visit note ([`appointments`]); the bodies
//! clients send ([`inputs`]) and the views answered ([`views`]), times at the clinic's offset.

pub mod appointments;
pub mod doctors;
pub mod inputs;
pub mod views;
