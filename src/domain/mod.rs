//! Value types with their rules: money, promo codes, session tokens, locales and page texts.
//! Nothing here touches the database or the network.

pub mod api_key;
pub mod backoff;
pub mod billing_period;
pub mod features;
pub mod locale;
pub mod money;
pub mod promo_code;
pub mod session_token;
pub mod signing_key;
pub mod text;
pub mod url;
pub mod webhook;

use sha2::{Digest, Sha256};

/// SHA-256 of `data` as lowercase hex: the stored form of secrets (tokens, API keys) and the
/// fingerprint of requests.
pub fn sha256_hex(data: impl AsRef<[u8]>) -> String {
    hex::encode(Sha256::digest(data))
}
