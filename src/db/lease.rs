//! The lease: how one worker of any instance takes a row for a while (`locked_by`,
//! `locked_until`), so two never work on it at once, and a worker that dies only holds it until
//! its lease runs out. Four tables are leased this way: the Treefort outbox, webhook deliveries,
//! subscriptions and gateway events. Each states once, with `leased!`, what makes one of its rows
//! available, and gets the same operations:
//!
//! | operation | what it does |
//! |---|---|
//! | `take_lease` | takes an available row nobody holds (or whose lease ran out); whether we won |
//! | `update_held` | applies changes (a "mark": done, failed, given back) only while we hold the lease |
//! | `lease_is_free` | the condition "nobody holds it at `now`", for listings of due work |
//! | `lease_cleared` | the changes that end a lease, for a mark written with other columns |
//!
//! Many rows at once are taken by one statement, `claim_with` (in `db`), whose SQL states the
//! same rule. Every condition is in the statement, so the database decides the race: on
//! PostgreSQL a conditional `UPDATE` waits for a concurrent one and then sees its result; SQLite
//! has one writer at a time.

/// Defines the lease operations of `$table` (which has `id`, `locked_by` and `locked_until`) in
/// the module that names it. `available(now) = expr` is what else a row must be to be taken
/// (pending, not deactivated…), given `now`.
#[macro_export]
macro_rules! leased {
    ($table:ident, available($now:ident) = $available:expr) => {
        /// Rows nobody holds at `now`: never leased, or their lease ran out.
        pub fn lease_is_free(
            now: chrono::NaiveDateTime,
        ) -> diesel::dsl::Or<
            diesel::dsl::IsNull<$table::locked_until>,
            diesel::dsl::Lt<$table::locked_until, chrono::NaiveDateTime>,
        > {
            $table::locked_until
                .is_null()
                .or($table::locked_until.lt(now))
        }

        /// The changes that end a lease, to write with the other columns of a mark.
        pub fn lease_cleared() -> (
            diesel::dsl::Eq<$table::locked_by, Option<String>>,
            diesel::dsl::Eq<$table::locked_until, Option<chrono::NaiveDateTime>>,
        ) {
            (
                $table::locked_by.eq(None::<String>),
                $table::locked_until.eq(None::<chrono::NaiveDateTime>),
            )
        }

        /// Takes the lease on row `id` for `owner` until `until`, if the row is available and
        /// nobody holds it at `now`. Returns whether we won.
        pub fn take_lease(
            conn: &mut $crate::db::AnyConnection,
            id: i64,
            owner: &str,
            now: chrono::NaiveDateTime,
            until: chrono::NaiveDateTime,
        ) -> diesel::QueryResult<bool> {
            #[allow(unused_variables)]
            let $now = now;
            diesel::update(
                $table::table
                    .find(id)
                    .filter($available)
                    .filter(lease_is_free(now)),
            )
            .set(($table::locked_by.eq(owner), $table::locked_until.eq(until)))
            .execute(conn)
            .map(|n| n == 1)
        }

        /// Applies `changes` to row `id` only while `owner` holds its lease. Returns whether it
        /// did.
        pub fn update_held<C>(
            conn: &mut $crate::db::AnyConnection,
            id: i64,
            owner: &str,
            changes: C,
        ) -> diesel::QueryResult<bool>
        where
            C: diesel::AsChangeset<Target = $table::table>,
            diesel::dsl::Update<
                diesel::dsl::Filter<
                    diesel::dsl::Find<$table::table, i64>,
                    diesel::dsl::Eq<$table::locked_by, String>,
                >,
                C,
            >: diesel::query_dsl::methods::ExecuteDsl<$crate::db::AnyConnection>,
        {
            diesel::update(
                $table::table
                    .find(id)
                    .filter($table::locked_by.eq(owner.to_string())),
            )
            .set(changes)
            .execute(conn)
            .map(|n| n == 1)
        }
    };
}
