//! The README's "Gating your product on a subscription", in Rust, exactly as printed there (a test
//! checks that the README holds this file's code verbatim, and uses it to verify a real token).

use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::{decode, decode_header, jwk::JwkSet, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Deserialize)]
pub struct Launch {
    pub sub: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub subscription: Subscription,
}

/// The token's `subscription` claim, or the answer of GET /v1/users/{userId}/entitlement.
#[derive(Debug, Deserialize)]
pub struct Subscription {
    pub active: bool,
    pub features: Map<String, Value>,
}

/// `jwks`: GET https://pay.example.com/.well-known/jwks.json, cached (fetch it again when a
/// token names a kid it does not have).
pub fn verify_launch_token(
    token: &str,
    jwks: &JwkSet,
    issuer: &str,
    audience: &str,
) -> Result<Launch, Error> {
    let kid = decode_header(token)?.kid.ok_or(ErrorKind::InvalidToken)?;
    let jwk = jwks.find(&kid).ok_or(ErrorKind::InvalidToken)?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.validate_nbf = true;
    Ok(decode::<Launch>(token, &DecodingKey::from_jwk(jwk)?, &validation)?.claims)
}

impl Subscription {
    /// requireFeature: a feature that is on.
    pub fn require_feature(&self, name: &str) -> bool {
        self.active && self.features.get(name) == Some(&Value::Bool(true))
    }

    /// checkLimit: room for one more when `used` are in use.
    pub fn check_limit(&self, name: &str, used: i64) -> bool {
        let limit = self.features.get(name).and_then(Value::as_i64);
        self.active && limit.is_some_and(|limit| used < limit)
    }
}
