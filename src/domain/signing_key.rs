//! The Ed25519 keys that sign launch tokens. A key's private half is never stored: it is derived
//! from the service's signing key (`WEBHOOK_SIGNING_KEY`, the same on every instance) and a
//! random salt kept in the database, as HMAC-SHA256(signing key, label ‖ salt), which is the
//! Ed25519 seed. So the salt alone signs nothing, every instance derives the same key, and the
//! public key (kept beside the salt) tells whether the signing key has changed since.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse, ThumbprintHash,
};
use jsonwebtoken::{Algorithm, EncodingKey};
use secrecy::zeroize::Zeroizing;
use sha2::Sha256;

/// PKCS #8 (RFC 8410) of an Ed25519 private key, up to its 32-byte seed.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A key ready to sign, with what the JWKS says of it.
pub struct DerivedKey {
    pub encoding: EncodingKey,
    /// `x`: the public key, base64url.
    pub public_key: String,
    /// The JWK thumbprint (RFC 7638, SHA-256) of the public key.
    pub kid: String,
}

impl std::fmt::Debug for DerivedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DerivedKey")
            .field("kid", &self.kid)
            .field("encoding", &"[redacted]")
            .finish()
    }
}

/// A fresh salt: 32 random bytes, base64url.
pub fn new_salt() -> Result<String, getrandom::Error> {
    let mut salt = [0u8; 32];
    getrandom::fill(&mut salt)?;
    Ok(URL_SAFE_NO_PAD.encode(salt))
}

/// The key of `salt` under `signing_key`.
pub fn derive(signing_key: &str, salt: &str) -> Result<DerivedKey, jsonwebtoken::errors::Error> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(signing_key.as_bytes()).expect("HMAC takes any key");
    mac.update(b"treefort-webpay launch token key v1:");
    mac.update(salt.as_bytes());
    let mut der = Zeroizing::new(PKCS8_ED25519_PREFIX.to_vec());
    der.extend_from_slice(&mac.finalize().into_bytes());
    let encoding = EncodingKey::from_ed_der(&der);
    let jwk = Jwk::from_encoding_key(&encoding, Algorithm::EdDSA)?;
    let AlgorithmParameters::OctetKeyPair(params) = &jwk.algorithm else {
        return Err(jsonwebtoken::errors::ErrorKind::InvalidEddsaKey.into());
    };
    let public_key = params.x.clone();
    let kid = jwk.thumbprint(ThumbprintHash::SHA256)?;
    Ok(DerivedKey {
        encoding,
        public_key,
        kid,
    })
}

/// The JWK of a public key, as the JWKS publishes it.
pub fn public_jwk(kid: &str, public_key: &str) -> Jwk {
    Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(KeyAlgorithm::EdDSA),
            key_id: Some(kid.to_string()),
            ..Default::default()
        },
        algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: public_key.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{decode, encode, DecodingKey, Header, Validation};

    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn the_same_signing_key_and_salt_give_the_same_key_and_another_of_either_another() {
        let a = derive(KEY, "salt-1").unwrap();
        let again = derive(KEY, "salt-1").unwrap();
        assert_eq!(
            (a.kid.clone(), a.public_key.clone()),
            (again.kid, again.public_key)
        );
        let other_salt = derive(KEY, "salt-2").unwrap();
        let other_key = derive("another signing key, 32 chars long", "salt-1").unwrap();
        assert_ne!(a.public_key, other_salt.public_key);
        assert_ne!(a.public_key, other_key.public_key);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a.public_key).unwrap().len(), 32);
        assert!(format!("{a:?}").contains("[redacted]"));
    }

    #[test]
    fn a_token_signed_with_the_derived_key_verifies_with_the_published_jwk_only() {
        let key = derive(KEY, "salt").unwrap();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        let claims = serde_json::json!({"sub": "u1", "exp": 4_000_000_000u64});
        let token = encode(&header, &claims, &key.encoding).unwrap();
        let jwk = public_jwk(&key.kid, &key.public_key);
        assert_eq!(jwk.thumbprint(ThumbprintHash::SHA256).unwrap(), key.kid);
        let decoding = DecodingKey::from_jwk(&jwk).unwrap();
        let read =
            decode::<serde_json::Value>(&token, &decoding, &Validation::new(Algorithm::EdDSA));
        assert_eq!(read.unwrap().claims["sub"], "u1");
        let other = derive(KEY, "another salt").unwrap();
        let wrong = DecodingKey::from_jwk(&public_jwk(&other.kid, &other.public_key)).unwrap();
        assert!(
            decode::<serde_json::Value>(&token, &wrong, &Validation::new(Algorithm::EdDSA))
                .is_err()
        );
    }
}
