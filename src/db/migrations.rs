//! The migrations of each backend, embedded in the binary, and applying, checking and reverting
//! them (on PostgreSQL under an advisory lock, so instances starting together apply them once).

use super::*;

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Applies pending migrations of the connection's backend. On PostgreSQL an advisory lock keeps
/// two instances starting together from migrating at once.
pub fn run_migrations(conn: &mut AnyConnection) -> Result<usize, String> {
    let applied = match conn {
        AnyConnection::Sqlite(c) => c
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|v| v.len())
            .map_err(|e| e.to_string())?,
        AnyConnection::Postgres(c) => {
            const LOCK: &str = "SELECT pg_advisory_lock(7355608001)";
            c.batch_execute(LOCK).map_err(|e| e.to_string())?;
            let result = c
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|v| v.len())
                .map_err(|e| e.to_string());
            let _ = c.batch_execute("SELECT pg_advisory_unlock(7355608001)");
            result?
        }
    };
    Ok(applied)
}

/// Whether migrations this binary knows are not yet applied (`/readyz` is then not ready). Reads
/// the applied versions only: nothing is created, so a read-only role can answer it too.
pub fn has_pending_migrations(conn: &mut AnyConnection) -> Result<bool, String> {
    use diesel::migration::MigrationSource;
    use diesel::sql_types::Text;
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Applied {
        #[diesel(sql_type = Text)]
        version: String,
    }
    fn versions<DB: diesel::backend::Backend>(
        source: &EmbeddedMigrations,
    ) -> Result<Vec<String>, String> {
        Ok(MigrationSource::<DB>::migrations(source)
            .map_err(|e| e.to_string())?
            .iter()
            .map(|m| m.name().version().to_string())
            .collect())
    }
    let known = match conn {
        AnyConnection::Sqlite(_) => versions::<diesel::sqlite::Sqlite>(&SQLITE_MIGRATIONS)?,
        AnyConnection::Postgres(_) => versions::<diesel::pg::Pg>(&POSTGRES_MIGRATIONS)?,
    };
    let applied: Vec<Applied> = crate::on_backend!(conn, |c| diesel::sql_query(
        "SELECT version FROM __diesel_schema_migrations"
    )
    .load(c))
    .map_err(|e| e.to_string())?;
    Ok(known
        .iter()
        .any(|v| !applied.iter().any(|a| &a.version == v)))
}

/// Reverts every applied migration, newest first (tests prove each down migration works).
pub fn revert_all_migrations(conn: &mut AnyConnection) -> Result<usize, String> {
    let reverted = match conn {
        AnyConnection::Sqlite(c) => c
            .revert_all_migrations(SQLITE_MIGRATIONS)
            .map(|v| v.len())
            .map_err(|e| e.to_string())?,
        AnyConnection::Postgres(c) => c
            .revert_all_migrations(POSTGRES_MIGRATIONS)
            .map(|v| v.len())
            .map_err(|e| e.to_string())?,
    };
    Ok(reverted)
}
