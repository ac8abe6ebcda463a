//! Who may sign in and with what: accounts, sign-in sessions and their refresh tokens, denied
//! access tokens, failed sign-ins, trusted devices, socket tickets and the ring of token signing
//! keys on SQLite and PostgreSQL, and the cryptographic adapters (argon2id password hashing,
//! Ed25519-signed access tokens, random refresh tokens).

mod jwt;
mod login_attempts;
mod password;
mod refresh_token_factory;
mod refresh_tokens;
mod revoked_tokens;
mod signing_keys;
mod socket_tickets;
mod trusted_devices;
mod users;

pub use jwt::{
    GENERATED_KEY_FILE, JwtCodec, KeyOrigin, KeyPem, MIN_RELOAD_GAP, SigningKeyError,
    TokenAudience, data_dir_key, generate_key, read_key_file,
};
pub use login_attempts::SqlLoginAttemptRepository;
pub use password::Argon2Hasher;
pub use refresh_token_factory::RandomRefreshTokens;
pub use refresh_tokens::SqlRefreshTokenRepository;
pub use revoked_tokens::SqlRevokedTokenRepository;
pub use signing_keys::SqlSigningKeyRepository;
pub use socket_tickets::SqlSocketTicketRepository;
pub use trusted_devices::SqlTrustedDeviceRepository;
pub use users::SqlUserRepository;
