//! `customers`: one row per Treefort user who paid or started a trial, with the gateway's reference
//! to their payment method (never a card number: brand and last four digits only).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::schema::customers;

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct Customer {
    pub id: i64,
    pub user_id: String,
    pub email: String,
    pub full_name: Option<String>,
    pub payment_method_ref: Option<String>,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// The gateway's own customer (Stripe: `cus_…`), created once per user and reused.
    pub gateway_customer_ref: Option<String>,
}

#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = customers)]
pub struct CustomerValues {
    pub email: String,
    pub full_name: Option<String>,
    pub payment_method_ref: Option<String>,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub updated_at: NaiveDateTime,
}

pub fn find_by_user_id(conn: &mut AnyConnection, user_id: &str) -> QueryResult<Option<Customer>> {
    customers::table
        .filter(customers::user_id.eq(user_id))
        .first(conn)
        .optional()
}

/// The customer of `user_id`, created with its contact details if there is none yet (an existing
/// row, its card and gateway customer are left as they are).
pub fn ensure(
    conn: &mut AnyConnection,
    user_id: &str,
    email: &str,
    full_name: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<Customer> {
    crate::on_backend!(conn, |c| {
        diesel::insert_into(customers::table)
            .values((
                customers::user_id.eq(user_id),
                customers::email.eq(email),
                customers::full_name.eq(full_name),
                customers::created_at.eq(now),
                customers::updated_at.eq(now),
            ))
            .on_conflict(customers::user_id)
            .do_nothing()
            .execute(c)
    })?;
    customers::table
        .filter(customers::user_id.eq(user_id))
        .first(conn)
}

/// Records the gateway's customer in place of `previous` (none, or another gateway's), unless
/// another request recorded one first; returns the one kept.
pub fn set_gateway_customer_ref(
    conn: &mut AnyConnection,
    id: i64,
    previous: Option<&str>,
    reference: &str,
) -> QueryResult<String> {
    let row = customers::table.find(id);
    match previous {
        None => diesel::update(row.filter(customers::gateway_customer_ref.is_null()))
            .set(customers::gateway_customer_ref.eq(reference))
            .execute(conn)?,
        Some(previous) => diesel::update(row.filter(customers::gateway_customer_ref.eq(previous)))
            .set(customers::gateway_customer_ref.eq(reference))
            .execute(conn)?,
    };
    customers::table
        .find(id)
        .select(customers::gateway_customer_ref)
        .first::<Option<String>>(conn)
        .map(|r| r.unwrap_or_else(|| reference.to_string()))
}

/// Creates the customer of `user_id` or updates its contact and payment method.
pub fn upsert(
    conn: &mut AnyConnection,
    user_id: &str,
    values: &CustomerValues,
    now: NaiveDateTime,
) -> QueryResult<Customer> {
    crate::on_backend!(conn, |c| {
        diesel::insert_into(customers::table)
            .values((
                customers::user_id.eq(user_id),
                values,
                customers::created_at.eq(now),
            ))
            .on_conflict(customers::user_id)
            .do_update()
            .set(values)
            .execute(c)
    })?;
    customers::table
        .filter(customers::user_id.eq(user_id))
        .first(conn)
}

pub fn find_by_id(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<Customer>> {
    customers::table.find(id).first(conn).optional()
}

/// The customers among `ids`, by id (one query).
pub fn find_many(
    conn: &mut AnyConnection,
    ids: &[i64],
) -> QueryResult<std::collections::HashMap<i64, Customer>> {
    Ok(customers::table
        .filter(customers::id.eq_any(ids))
        .load::<Customer>(conn)?
        .into_iter()
        .map(|c| (c.id, c))
        .collect())
}

/// Replaces the stored card (from the billing portal).
pub fn set_payment_method(
    conn: &mut AnyConnection,
    id: i64,
    reference: &str,
    brand: &str,
    last4: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(customers::table.find(id))
        .set((
            customers::payment_method_ref.eq(reference),
            customers::card_brand.eq(brand),
            customers::card_last4.eq(last4),
            customers::updated_at.eq(now),
        ))
        .execute(conn)
}
