//! Identity: user accounts and roles, passwords, tokens and sessions, sign-in throttling, and
//! the service that registers, signs in and authenticates.

mod account;
mod administration;
mod directory;
mod password;
mod principal;
mod service;
mod throttle;
mod token;
mod user;

pub use account::*;
pub use administration::*;
pub use directory::*;
pub use password::*;
pub use principal::*;
pub use service::*;
pub use throttle::*;
pub use token::*;
pub use user::*;
