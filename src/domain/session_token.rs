//! Session URL tokens: 256 bits from the operating system's CSPRNG, base64url without padding. Only
//! the SHA-256 of a token is stored, so a database leak does not open anyone's checkout.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// A freshly minted token: `token` goes into the URL, `hash` into the database.
pub struct SessionToken {
    pub token: String,
    pub hash: String,
}

/// Length of an encoded token: 32 bytes in base64url without padding.
pub const ENCODED_LEN: usize = 43;

impl SessionToken {
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let hash = hash(&token);
        Ok(Self { token, hash })
    }
}

/// 64 random bits as hex: tells apart things of one attempt (e.g. card setups of one page shown).
pub fn nonce() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// The stored form of a token, or `None` for a string that no token could be (so lookups of
/// garbage never reach the database).
pub fn hash_if_well_formed(token: &str) -> Option<String> {
    let well_formed = token.len() == ENCODED_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| hash(token))
}

fn hash(token: &str) -> String {
    super::sha256_hex(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_url_safe_distinct_and_stored_hashed() {
        let a = SessionToken::generate().unwrap();
        let b = SessionToken::generate().unwrap();
        assert_ne!(a.token, b.token);
        assert_eq!(a.token.len(), ENCODED_LEN);
        assert_eq!(hash_if_well_formed(&a.token), Some(a.hash.clone()));
        assert_eq!(a.hash.len(), 64);
        assert!(!a.hash.contains(&a.token));
        assert_eq!(hash_if_well_formed("short"), None);
        assert_eq!(hash_if_well_formed(&"+".repeat(ENCODED_LEN)), None);
    }
}
