//! `service_settings`: facts about this installation, by name (e.g. `install_id`).

use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::schema::service_settings;

pub const INSTALL_ID: &str = "install_id";

/// The value of `name`, set to `value` first if it has none (the first instance to start wins;
/// every instance then reads the same value).
pub fn get_or_insert(conn: &mut AnyConnection, name: &str, value: &str) -> QueryResult<String> {
    crate::on_backend!(conn, |c| {
        diesel::insert_into(service_settings::table)
            .values((
                service_settings::name.eq(name),
                service_settings::value.eq(value),
            ))
            .on_conflict(service_settings::name)
            .do_nothing()
            .execute(c)
    })?;
    service_settings::table
        .find(name)
        .select(service_settings::value)
        .first(conn)
}

/// The value of `name`, if it has one.
pub fn get(conn: &mut AnyConnection, name: &str) -> QueryResult<Option<String>> {
    service_settings::table
        .find(name)
        .select(service_settings::value)
        .first(conn)
        .optional()
}

/// Sets `name` to `value`, whether it had one or not.
pub fn put(conn: &mut AnyConnection, name: &str, value: &str) -> QueryResult<()> {
    crate::on_backend!(conn, |c| {
        diesel::insert_into(service_settings::table)
            .values((
                service_settings::name.eq(name),
                service_settings::value.eq(value),
            ))
            .on_conflict(service_settings::name)
            .do_update()
            .set(service_settings::value.eq(value))
            .execute(c)
    })?;
    Ok(())
}
