//! What a user is in the clinic: the role every access decision starts from.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a user is in the clinic. It decides what they may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Secretary,
    Doctor,
    Laboratory,
    Patient,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Secretary,
        Role::Doctor,
        Role::Laboratory,
        Role::Patient,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Secretary => "secretary",
            Role::Doctor => "doctor",
            Role::Laboratory => "laboratory",
            Role::Patient => "patient",
        }
    }

    /// Staff work for the clinic; patients are its clients.
    pub const fn is_staff(self) -> bool {
        !matches!(self, Role::Patient)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role")]
pub struct UnknownRole;

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or(UnknownRole)
    }
}
