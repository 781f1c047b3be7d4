//! The /v1 API-key commands: create (the key is shown once), list and revoke.

use super::*;

pub fn apikeys(conn: &mut AnyConnection, command: ApiKeysCommand) -> Result<String, String> {
    use crate::models::api_keys;
    let db_err = |e: diesel::result::Error| format!("database error: {e}");
    match command {
        ApiKeysCommand::Create { name, scope } => {
            let name = name.trim();
            if name.is_empty() || name.len() > 200 || crate::domain::text::has_control(name) {
                return Err("--name must be a short text naming what uses the key".into());
            }
            if scope != api_keys::READ && scope != api_keys::WRITE {
                return Err(format!("--scope must be read or write (got {scope:?})"));
            }
            let made = crate::domain::api_key::generate().map_err(|e| e.to_string())?;
            let key = api_keys::insert(
                conn,
                &api_keys::NewApiKey {
                    key_id: made.key_id,
                    name: name.to_string(),
                    scope,
                    secret_hash: made.secret_hash,
                    created_at: now(),
                },
            )
            .map_err(db_err)?;
            Ok(format!(
                "{}\nkey #{} ({}, {}) created. This is the only time it is shown: store it now.",
                made.key, key.id, key.name, key.scope
            ))
        }
        ApiKeysCommand::List { json } => {
            let keys = api_keys::list(conn).map_err(db_err)?;
            let when = |t: Option<NaiveDateTime>| t.map(|t| rfc3339(t.and_utc()));
            if json {
                let out: Vec<_> = keys
                    .iter()
                    .map(|k| {
                        json!({"id": k.id, "keyId": k.key_id, "name": k.name, "scope": k.scope,
                               "createdAt": rfc3339(k.created_at.and_utc()),
                               "lastUsedAt": when(k.last_used_at), "revokedAt": when(k.revoked_at)})
                    })
                    .collect();
                return Ok(serde_json::to_string_pretty(&out).unwrap_or_default());
            }
            if keys.is_empty() {
                return Ok("no API keys".into());
            }
            Ok(keys
                .iter()
                .map(|k| {
                    format!(
                        "#{:<4} tfw_{}_…  {:<5} {:<24} created {}  last used {}{}",
                        k.id,
                        k.key_id,
                        k.scope,
                        k.name,
                        rfc3339(k.created_at.and_utc()),
                        when(k.last_used_at).unwrap_or_else(|| "never".into()),
                        if k.revoked_at.is_some() {
                            "  REVOKED"
                        } else {
                            ""
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"))
        }
        ApiKeysCommand::Revoke { id } => {
            if api_keys::revoke(conn, &id, now()).map_err(db_err)? == 0 {
                return Err(format!("no active key {id}"));
            }
            Ok(format!("key {id} revoked"))
        }
    }
}
