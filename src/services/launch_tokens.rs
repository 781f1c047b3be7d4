//! Launch tokens: a short-lived signed JWT that carries a user into one of the app owner's
//! products already logged in, with what their subscription gives (the entitlement's facts and
//! the plan's features). Signed EdDSA with a key of `signing_keys` (published at
//! `/.well-known/jwks.json`), or HS256 with `LAUNCH_TOKEN_SECRET` when that is set. No token is
//! stored: each one minted is counted and recorded as `launch_token.created` (user and audience).
//! Token times are the real time, even when local mode's clock has travelled: the products that
//! verify them live in the real one.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use diesel::QueryResult;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::clock::{naive, rfc3339, Clock};
use crate::db::{run_db, AnyConnection};
use crate::domain::signing_key::{self, DerivedKey};
use crate::domain::text::has_control;
use crate::error::ApiError;
use crate::models::customers;
use crate::models::signing_keys::{self, SigningKey};
use crate::services::entitlement::{self, Entitlement};
use crate::services::events;
use crate::state::AppState;

/// How long a rotated key stays in the JWKS (tokens live 15 minutes at most).
pub const RETIRED_KEY_PUBLISHED_FOR: TimeDelta = TimeDelta::hours(24);
pub const TTL_SECONDS: std::ops::RangeInclusive<i64> = 30..=900;
/// How long the JWKS may be cached (`max-age`), and so how long a new key is published before it
/// signs: every cached copy of the JWKS has a key before any token names it.
pub const JWKS_MAX_AGE: TimeDelta = TimeDelta::minutes(5);
/// `nbf` is this much before `iat`, so that a product whose clock runs a little behind (jose and
/// PyJWT allow no skew by default) accepts a token it was just handed.
pub const NOT_BEFORE_SLACK: TimeDelta = TimeDelta::seconds(30);
pub const DEFAULT_TTL_SECONDS: i64 = 300;

/// `POST /v1/users/{userId}/launch-tokens`: every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LaunchTokenRequest {
    /// The product the token is for (`aud`).
    pub audience: Option<String>,
    /// Overrides the email the service knows for the user.
    pub email: Option<String>,
    /// Overrides the name the service knows for the user.
    pub name: Option<String>,
    /// 30 to 900; 300 when absent.
    pub ttl_seconds: Option<i64>,
}

/// The answer: `201 {token, expiresAt}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Minted {
    pub token: String,
    pub expires_at: String,
}

/// The token's claims.
#[derive(Debug, Serialize)]
struct Claims<'a> {
    iss: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: String,
    subscription: &'a Entitlement,
}

fn invalid(message: &str) -> ApiError {
    ApiError::bad_request("invalid_launch_token", message)
}

/// Checks the request; answers it with the time to live.
fn check(request: &LaunchTokenRequest) -> Result<i64, ApiError> {
    let text_ok =
        |t: &str, max: usize| !t.trim().is_empty() && t.chars().count() <= max && !has_control(t);
    if request
        .audience
        .as_deref()
        .is_some_and(|a| !text_ok(a, 200))
    {
        return Err(invalid(
            "audience must be 1 to 200 characters, without control characters",
        ));
    }
    if request
        .email
        .as_deref()
        .is_some_and(|e| !text_ok(e, 320) || !e.contains('@'))
    {
        return Err(invalid("email must be an email address"));
    }
    if request.name.as_deref().is_some_and(|n| !text_ok(n, 200)) {
        return Err(invalid(
            "name must be 1 to 200 characters, without control characters",
        ));
    }
    let ttl = request.ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
    if !TTL_SECONDS.contains(&ttl) {
        return Err(invalid("ttlSeconds must be from 30 to 900"));
    }
    Ok(ttl)
}

/// Mints a token for `user_id` (one we have never seen gets one saying they are not subscribed).
pub async fn mint(
    state: &AppState,
    user_id: String,
    request: LaunchTokenRequest,
) -> Result<Minted, ApiError> {
    let ttl = check(&request)?;
    let entitlement = entitlement::of_user(state, user_id.clone()).await?;
    let (header, key) = signer(state).await?;
    let algorithm = if header.alg == Algorithm::HS256 {
        "HS256"
    } else {
        "EdDSA"
    };
    let (email, name) = match (request.email, request.name) {
        (Some(email), Some(name)) => (Some(email), Some(name)),
        (email, name) => {
            let user = user_id.clone();
            let known = run_db(&state.pool, move |conn| {
                Ok(customers::find_by_user_id(conn, &user)?)
            })
            .await?;
            (
                email.or_else(|| known.as_ref().map(|c| c.email.clone())),
                name.or_else(|| known.and_then(|c| c.full_name)),
            )
        }
    };
    // Whole seconds, as the claims have them.
    let issued = DateTime::from_timestamp(Clock::System.now().timestamp(), 0)
        .ok_or_else(|| ApiError::internal("the clock is out of range"))?;
    let expires = issued + TimeDelta::seconds(ttl);
    let claims = Claims {
        iss: &state.settings.public_base_url,
        aud: request.audience.as_deref(),
        sub: &user_id,
        email,
        name,
        iat: issued.timestamp(),
        nbf: (issued - NOT_BEFORE_SLACK).timestamp(),
        exp: expires.timestamp(),
        jti: new_jti()?,
        subscription: &entitlement,
    };
    let token = jsonwebtoken::encode(&header, &claims, &key).map_err(ApiError::internal)?;
    let now = naive(state.clock.now());
    let audience = request.audience;
    run_db(&state.pool, move |conn| {
        crate::db::write_transaction(conn, |conn| {
            events::launch_token(conn, &user_id, audience.as_deref(), now)
        })?;
        Ok(())
    })
    .await?;
    state.metrics.counters.launch_tokens.inc([algorithm]);
    Ok(Minted {
        token,
        expires_at: rfc3339(expires),
    })
}

fn new_jti() -> Result<String, ApiError> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(ApiError::internal)?;
    Ok(hex::encode(id))
}

/// The header and key tokens are signed with now: HS256 with `LAUNCH_TOKEN_SECRET`, else EdDSA
/// with the newest signing key (made on first use), named by `kid`.
async fn signer(state: &AppState) -> Result<(Header, EncodingKey), ApiError> {
    if let Some(secret) = &state.settings.launch_token_secret {
        let key =
            EncodingKey::from_secret(secret.expose().as_bytes()).map_err(ApiError::internal)?;
        return Ok((Header::new(Algorithm::HS256), key));
    }
    let master = master_key(state)?.to_string();
    let catalog = state.catalog.get(&state.pool).await?;
    let first;
    let keys: &[SigningKey] = if catalog.signing_keys.is_empty() {
        let made = master.clone();
        first = [run_db(&state.pool, move |conn| {
            first_key(conn, &made, Clock::System.now())
        })
        .await?];
        &first
    } else {
        &catalog.signing_keys
    };
    let now = Clock::System.now().naive_utc();
    let chosen = signing_key_at(keys, now).ok_or_else(|| ApiError::internal("no signing key"))?;
    let (key, derived) = match derive_checked(&master, chosen) {
        Ok(derived) => (chosen, derived),
        // Made from another WEBHOOK_SIGNING_KEY: a newer key made from this one (a rotation to
        // mend it) signs at once rather than after its lead time.
        Err(refused) => match keys.first().filter(|newest| newest.id != chosen.id) {
            Some(newest) => (
                newest,
                derive_checked(&master, newest).map_err(|_| refused)?,
            ),
            None => return Err(refused),
        },
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.kid.clone());
    Ok((header, derived.encoding))
}

fn master_key(state: &AppState) -> Result<&str, ApiError> {
    state
        .settings
        .webhook_signing_key
        .as_ref()
        .map(|k| k.expose())
        .ok_or_else(|| {
            ApiError::not_configured(
                "launch tokens need WEBHOOK_SIGNING_KEY (their EdDSA keys are derived from it) or LAUNCH_TOKEN_SECRET (HS256)",
            )
        })
}

/// The key that signs at `now` among `keys` (newest first): the newest one published for at least
/// `JWKS_MAX_AGE`, else the oldest (the first key, just made, signs at once: the JWKS is not
/// cached while it is empty).
pub fn signing_key_at(keys: &[SigningKey], now: NaiveDateTime) -> Option<&SigningKey> {
    keys.iter()
        .find(|k| k.created_at + JWKS_MAX_AGE <= now)
        .or(keys.last())
}

/// The private key of `key`, refused if the signing key has changed since it was made (its
/// tokens would not verify against the published public key).
fn derive_checked(master: &str, key: &SigningKey) -> Result<DerivedKey, ApiError> {
    let derived = signing_key::derive(master, &key.salt).map_err(ApiError::internal)?;
    if derived.public_key != key.public_key {
        return Err(ApiError::not_configured(format!(
            "WEBHOOK_SIGNING_KEY has changed since launch-token key {} was made; run `treefort-webpay signing-keys rotate` to make one from the current key",
            key.kid
        )));
    }
    Ok(derived)
}

/// A new key of generation `id`, derived from `master` and a fresh salt.
fn new_key(master: &str, id: i64, now: DateTime<Utc>) -> Result<SigningKey, ApiError> {
    let salt = signing_key::new_salt().map_err(ApiError::internal)?;
    let derived = signing_key::derive(master, &salt).map_err(ApiError::internal)?;
    Ok(SigningKey {
        id,
        kid: derived.kid,
        algorithm: signing_keys::ED_DSA.to_string(),
        salt,
        public_key: derived.public_key,
        created_at: now.naive_utc(),
        retires_at: None,
    })
}

/// The first key, made unless there is one (two instances at once make one): answers the newest.
pub fn first_key(
    conn: &mut AnyConnection,
    master: &str,
    now: DateTime<Utc>,
) -> Result<SigningKey, ApiError> {
    let key = new_key(master, 1, now)?;
    crate::db::write_transaction(conn, |conn| -> QueryResult<()> {
        signing_keys::insert_first(conn, &key)?;
        Ok(())
    })?;
    signing_keys::list(conn)?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("no signing key after making the first"))
}

/// `signing-keys rotate`: a new key, published at once, signs after `JWKS_MAX_AGE`; the ones
/// before stay in the JWKS for 24 hours. Answers the new key.
pub fn rotate(
    conn: &mut AnyConnection,
    master: &str,
    now: DateTime<Utc>,
) -> Result<SigningKey, ApiError> {
    crate::db::write_transaction(conn, |conn| {
        let next = signing_keys::list(conn)?.first().map_or(1, |k| k.id + 1);
        let key = new_key(master, next, now)?;
        signing_keys::insert_next(conn, &key, (now + RETIRED_KEY_PUBLISHED_FOR).naive_utc())?;
        Ok(key)
    })
}

/// The public keys tokens may be signed with: the newest (which may not sign yet) and those
/// retired less than 24 hours ago.
pub async fn jwks(state: &AppState) -> Result<JwkSet, ApiError> {
    let catalog = state.catalog.get(&state.pool).await?;
    Ok(published(
        &catalog.signing_keys,
        Clock::System.now().naive_utc(),
    ))
}

pub fn published(keys: &[SigningKey], now: NaiveDateTime) -> JwkSet {
    JwkSet {
        keys: keys
            .iter()
            .filter(|k| k.published(now))
            .map(|k| signing_key::public_jwk(&k.kid, &k.public_key))
            .collect(),
    }
}
