//! `signing_keys`: the Ed25519 keys that sign launch tokens, by generation (the id). Only the salt
//! the private key is derived from and the public key are kept (see `domain::signing_key`). Every
//! change raises `catalog_version`, so each instance's catalog (and so its JWKS) follows.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::schema::signing_keys;

pub const ED_DSA: &str = "EdDSA";

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKey {
    /// The generation: 1 for the first key, one more at each rotation.
    pub id: i64,
    /// The JWK thumbprint (RFC 7638) of the public key: the `kid` of the tokens it signs.
    pub kid: String,
    pub algorithm: String,
    pub salt: String,
    /// The public key (`x` of the JWK), base64url.
    pub public_key: String,
    pub created_at: NaiveDateTime,
    /// When it leaves the JWKS (set when a newer key replaces it).
    pub retires_at: Option<NaiveDateTime>,
}

impl SigningKey {
    /// Whether the JWKS still lists it at `now`.
    pub fn published(&self, now: NaiveDateTime) -> bool {
        self.retires_at.is_none_or(|at| at > now)
    }
}

/// Every key, newest first.
pub fn list(conn: &mut AnyConnection) -> QueryResult<Vec<SigningKey>> {
    signing_keys::table
        .order(signing_keys::id.desc())
        .load(conn)
}

/// Adds `key` as generation 1 unless there is one already (two instances making the first key
/// at once make one). Answers whether this call added it.
pub fn insert_first(conn: &mut AnyConnection, key: &SigningKey) -> QueryResult<bool> {
    let added = crate::on_backend!(conn, |c| {
        diesel::insert_into(signing_keys::table)
            .values(key)
            .on_conflict_do_nothing()
            .execute(c)
    })?;
    if added > 0 {
        super::catalog_version::bump(conn)?;
    }
    Ok(added > 0)
}

/// Adds `key` after the newest (its id must be the next generation; a rotation made meanwhile
/// by someone else makes this fail on the primary key), and retires the keys before it at
/// `retire_at`. Call inside a transaction.
pub fn insert_next(
    conn: &mut AnyConnection,
    key: &SigningKey,
    retire_at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(
        signing_keys::table
            .filter(signing_keys::id.lt(key.id))
            .filter(signing_keys::retires_at.is_null()),
    )
    .set(signing_keys::retires_at.eq(retire_at))
    .execute(conn)?;
    diesel::insert_into(signing_keys::table)
        .values(key)
        .execute(conn)?;
    super::catalog_version::bump(conn)?;
    Ok(())
}
