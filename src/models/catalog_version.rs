//! `catalog_version`: one counter, raised in the transaction of every change to plans and promo
//! codes, so each instance can tell cheaply whether its in-memory catalog is current. Raising it
//! also tells this process's catalog at once, and on PostgreSQL every instance when the
//! transaction commits (`NOTIFY`): see `db::notify_catalog_change`.

use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::schema::catalog_version;

/// Raises the version. Call inside the transaction of the change.
pub fn bump(conn: &mut AnyConnection) -> QueryResult<usize> {
    crate::db::notify_catalog_change(conn)?;
    diesel::update(catalog_version::table.find(1))
        .set(catalog_version::version.eq(catalog_version::version + 1))
        .execute(conn)
}

pub fn current(conn: &mut AnyConnection) -> QueryResult<i64> {
    catalog_version::table
        .find(1)
        .select(catalog_version::version)
        .first(conn)
}
