//! Refresh tokens: 256 random bits, handed out base64url-encoded and stored as SHA-256 hashes.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use carehub_domain::identity::{RefreshToken, RefreshTokenFactory, RefreshTokenHash};

/// Makes refresh tokens from the operating system's random source.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomRefreshTokens;

impl RefreshTokenFactory for RandomRefreshTokens {
    fn generate(&self) -> RefreshToken {
        let mut bytes = [0u8; 32];
        // The OS random source failing leaves no safe way to continue.
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        RefreshToken::new(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A fast hash suffices: the token has 256 bits of entropy, nothing to brute-force.
    fn hash(&self, token: &RefreshToken) -> RefreshTokenHash {
        let digest = Sha256::digest(token.expose().as_bytes());
        RefreshTokenHash::new(URL_SAFE_NO_PAD.encode(digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_their_hash_is_stable() {
        let factory = RandomRefreshTokens;
        let (a, b) = (factory.generate(), factory.generate());
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 43);
        assert_eq!(factory.hash(&a), factory.hash(&a));
        assert_ne!(factory.hash(&a), factory.hash(&b));
        assert_ne!(factory.hash(&a).as_str(), a.expose());
    }
}
