//! Identity: user accounts and roles, passwords, tokens and sessions, the ring of keys that
//! signs access tokens, sign-in throttling, and the services that register, sign in,
//! authenticate and rotate keys.

mod account;
mod administration;
mod directory;
mod password;
mod principal;
mod service;
mod signing_keys;
mod throttle;
mod token;
mod user;

pub use account::*;
pub use administration::*;
pub use directory::*;
pub use password::*;
pub use principal::*;
pub use service::*;
pub use signing_keys::*;
pub use throttle::*;
pub use token::*;
pub use user::*;
