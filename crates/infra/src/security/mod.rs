//! Cryptographic adapters: password hashing, access token signing, refresh token generation.

pub mod jwt;
pub mod password;
pub mod refresh;

pub use jwt::{JwtCodec, KeyOrigin, SigningKeyError, TokenAudience};
pub use password::Argon2Hasher;
pub use refresh::RandomRefreshTokens;
