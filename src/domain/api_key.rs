//! The app owner's API keys: `tfw_<key_id>_<secret>`, with a 12-character public id (found in the
//! database, safe in logs) and 256 random bits of secret, of which only a SHA-256 is stored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// A freshly made key: `key` is shown once; `key_id` and `secret_hash` are stored.
pub struct NewKey {
    pub key: String,
    pub key_id: String,
    pub secret_hash: String,
}

pub fn generate() -> Result<NewKey, getrandom::Error> {
    let mut id = [0u8; 6];
    getrandom::fill(&mut id)?;
    let key_id = hex::encode(id);
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)?;
    let secret = URL_SAFE_NO_PAD.encode(secret);
    Ok(NewKey {
        key: format!("tfw_{key_id}_{secret}"),
        secret_hash: hash(&secret),
        key_id,
    })
}

/// The parts of a presented key, or `None` if it cannot be one of ours.
pub fn parse(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("tfw_")?;
    let (key_id, secret) = rest.split_once('_')?;
    let id_ok = key_id.len() == 12 && key_id.bytes().all(|b| b.is_ascii_hexdigit());
    let secret_ok = secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some((key_id, secret))
}

pub fn hash(secret: &str) -> String {
    super::sha256_hex(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_back_and_hash_their_secret() {
        let made = generate().unwrap();
        let (id, secret) = parse(&made.key).unwrap();
        assert_eq!(id, made.key_id);
        assert_eq!(hash(secret), made.secret_hash);
        assert!(!made.secret_hash.contains(secret));
        for bad in [
            "",
            "tfw_",
            "tfw_abc_def",
            "sk_test_x",
            &made.key[..made.key.len() - 1],
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
