//! `Idempotency-Key` on `/v1` writes: the first request with a key (per API key) runs and its
//! answer is kept 24 hours; a repeat with the same request gets that answer again, the same key
//! with another request is refused, and a repeat while the first still runs is told to wait.
//! A failure of ours or of Treefort (5xx) keeps nothing, so the same key may be tried again.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::db::AnyConnection;
use crate::error::ApiError;
use crate::models::idempotency_keys::{self, NewIdempotencyKey};
use crate::state::AppState;

use crate::clock::naive;
use crate::db::run_db;

pub const LIFETIME: TimeDelta = TimeDelta::hours(24);
/// A first request unanswered for this long died with its process; its key may be used again.
/// Far above the longest request: a lease wait of 10 s and a few Treefort and gateway calls,
/// each at most 120 s (the largest timeouts the settings allow). A write whose side effect must
/// not repeat even then (a refund) also names the key in its gateway idempotency key.
pub const ABANDONED_AFTER: TimeDelta = TimeDelta::minutes(15);

/// What a request with a key does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// The first with this key: run it, then `finish` or `abandon` the record `id`.
    Run(i64),
    /// A repeat: answer what the first answered.
    Replay { status: u16, body: String },
}

/// A header value we accept as a key: 1 to 255 visible ASCII characters.
pub fn check_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID, say)",
        ));
    }
    Ok(())
}

/// SHA-256 of what makes two requests the same: method, route and body.
pub fn fingerprint(method: &str, path: &str, body: &str) -> String {
    crate::domain::sha256_hex(format!("{method}\n{path}\n{body}"))
}

pub fn begin(
    conn: &mut AnyConnection,
    api_key_id: i64,
    key: &str,
    request_hash: &str,
    now: NaiveDateTime,
) -> Result<Begin, ApiError> {
    for _ in 0..2 {
        if let Some(found) = idempotency_keys::find(conn, api_key_id, key)? {
            let abandoned =
                found.status_code.is_none() && found.created_at <= now - ABANDONED_AFTER;
            if found.created_at <= now - LIFETIME || abandoned {
                idempotency_keys::delete(conn, found.id)?;
            } else if found.request_hash != request_hash {
                return Err(ApiError::conflict(
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with another request in the last 24 hours; use a new key for a new request",
                ));
            } else {
                return match (found.status_code, found.response_body) {
                    (Some(status), Some(body)) => Ok(Begin::Replay {
                        status: u16::try_from(status).unwrap_or(500),
                        body,
                    }),
                    _ => Err(ApiError::conflict(
                        "idempotency_key_in_use",
                        "a request with this Idempotency-Key is still running; try again in a moment",
                    )),
                };
            }
        }
        let inserted = idempotency_keys::insert(
            conn,
            &NewIdempotencyKey {
                api_key_id,
                idem_key: key.to_string(),
                request_hash: request_hash.to_string(),
                created_at: now,
            },
        );
        match inserted {
            Ok(_) => {
                let row = idempotency_keys::find(conn, api_key_id, key)?
                    .ok_or_else(|| ApiError::internal("idempotency key vanished"))?;
                return Ok(Begin::Run(row.id));
            }
            // Another request with the key got in first: read what it left.
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(
        "idempotency_key_in_use",
        "a request with this Idempotency-Key is still running; try again in a moment",
    ))
}

/// Keeps the answer of a request that ran (tried twice: a lost answer would hold the key).
pub async fn finish(state: &AppState, id: i64, status: u16, body: String) -> Result<(), ApiError> {
    let mut tries = 0;
    loop {
        let body = body.clone();
        let kept = run_db(&state.pool, move |conn| {
            idempotency_keys::complete(conn, id, i32::from(status), &body)?;
            Ok(())
        })
        .await;
        tries += 1;
        if kept.is_ok() || tries == 2 {
            return kept;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Forgets a request that failed on our side or Treefort's: the key may be used again.
pub async fn abandon(state: &AppState, id: i64) -> Result<(), ApiError> {
    run_db(&state.pool, move |conn| {
        idempotency_keys::delete(conn, id)?;
        Ok(())
    })
    .await
}

/// Forgets keys older than 24 hours (the worker).
pub async fn forget_expired(state: &AppState) -> Result<usize, ApiError> {
    let before = naive(state.clock.now()) - LIFETIME;
    run_db(&state.pool, move |conn| {
        Ok(idempotency_keys::delete_older_than(conn, before)?)
    })
    .await
}
