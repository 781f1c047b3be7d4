//! The launch-token signing-key commands: rotate (a new key signs; the old one stays published
//! for 24 hours) and list. Only public facts are shown: the private keys are derived, never kept.

use super::*;
use crate::config::Settings;
use crate::models::signing_keys::{self, SigningKey};
use crate::services::launch_tokens;

pub fn run(
    conn: &mut AnyConnection,
    settings: &Settings,
    command: SigningKeysCommand,
) -> Result<String, String> {
    let now = crate::clock::Clock::System.now();
    match command {
        SigningKeysCommand::Rotate => {
            let master = settings
                .webhook_signing_key
                .as_ref()
                .ok_or("signing keys are derived from WEBHOOK_SIGNING_KEY: set it (the same as the service's)")?;
            let key = launch_tokens::rotate(conn, master.expose(), now).map_err(|e| e.message)?;
            let mut out = format!(
                "signing key {} (generation {}) is in /.well-known/jwks.json now",
                key.kid, key.id
            );
            if key.id > 1 {
                out.push_str(&format!(
                    " and signs launch tokens from {} (once every cached copy of the JWKS has it); the keys before it stay published until {}",
                    rfc3339(now + launch_tokens::JWKS_MAX_AGE),
                    rfc3339(now + launch_tokens::RETIRED_KEY_PUBLISHED_FOR)
                ));
            }
            if settings.launch_token_secret.is_some() {
                out.push_str("\nnote: LAUNCH_TOKEN_SECRET is set, so tokens are signed HS256 with it, not with this key");
            }
            Ok(out)
        }
        SigningKeysCommand::List { json } => {
            let keys = signing_keys::list(conn).map_err(|e| format!("database error: {e}"))?;
            let now = now.naive_utc();
            let signing = launch_tokens::signing_key_at(&keys, now).map(|k| k.id);
            if json {
                let out: Vec<_> = keys
                    .iter()
                    .map(|k| {
                        json!({"generation": k.id, "kid": k.kid, "algorithm": k.algorithm,
                           "createdAt": rfc3339(k.created_at.and_utc()),
                           "retiresAt": k.retires_at.map(|t| rfc3339(t.and_utc())),
                           "state": state_of(k, signing, now)})
                    })
                    .collect();
                return Ok(serde_json::to_string_pretty(&out).unwrap_or_default());
            }
            if keys.is_empty() {
                return Ok("no signing keys yet: the first is made when the first launch token is minted (or by signing-keys rotate)".into());
            }
            Ok(keys
                .iter()
                .map(|k| {
                    format!(
                        "#{:<3} {}  {}  made {}  {}",
                        k.id,
                        k.kid,
                        k.algorithm,
                        rfc3339(k.created_at.and_utc()),
                        match (state_of(k, signing, now), k.retires_at) {
                            ("published", Some(at)) =>
                                format!("published until {}", rfc3339(at.and_utc())),
                            ("published", None) => format!(
                                "published, signs from {}",
                                rfc3339((k.created_at + launch_tokens::JWKS_MAX_AGE).and_utc())
                            ),
                            (state, _) => state.to_string(),
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"))
        }
    }
}

/// `signing`, `published` (in the JWKS: a new key before it signs, or an old one for 24 hours)
/// or `retired`.
fn state_of(key: &SigningKey, signing: Option<i64>, now: NaiveDateTime) -> &'static str {
    match (signing == Some(key.id), key.published(now)) {
        (true, _) => "signing",
        (false, true) => "published",
        (false, false) => "retired",
    }
}
