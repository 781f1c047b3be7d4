//! Operator and support commands: plans and promo codes. Each validates through the same service
//! rules as the API and answers with text for people or `--json` for scripts.

mod apikeys;
pub mod emails;
mod promo;
pub mod signing_keys;
pub mod webhooks;
pub use apikeys::*;
pub use promo::*;

pub use emails::EmailsCommand;
pub use webhooks::WebhooksCommand;

use chrono::{DateTime, NaiveDateTime};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::clock::rfc3339;
use crate::db::{self, AnyConnection, DatabaseUrl};
use crate::domain::features::Features;
use crate::domain::promo_code;
use crate::models::plans::{self, Plan};
use crate::models::promo_codes::{self, PromoCode};
use crate::services::plans::PlanInput;
use crate::services::promo::{self as promo_rules, PromoInput};

#[derive(Debug, Subcommand)]
pub enum PlansCommand {
    /// Create a plan, or replace the values of an existing one (by Treefort's plan id).
    Upsert(PlanArgs),
    /// List all plans.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Move the current subscribers of a plan to its current price (from each one's next
    /// renewal; they keep their billing interval). An edit of a plan alone applies to new
    /// checkouts only.
    MigrateSubscribers {
        #[arg(long)]
        id: i64,
    },
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Treefort's subscription plan id.
    #[arg(long)]
    id: i64,
    #[arg(long)]
    name: String,
    /// month or year.
    #[arg(long)]
    interval: String,
    #[arg(long, default_value_t = 1)]
    interval_count: i32,
    #[arg(long, default_value_t = 0)]
    trial_days: i32,
    #[arg(long, default_value_t = 0)]
    grace_days: i32,
    /// ISO 4217 code, e.g. USD.
    #[arg(long)]
    currency: String,
    /// Price in minor units (999 with divisor 100 is 9.99).
    #[arg(long)]
    amount: i64,
    #[arg(long, default_value_t = 100)]
    divisor: i64,
    /// A feature the plan gives, key=value (repeatable): the value is read as a boolean, then an
    /// integer, then a string (advancedReporting=true, maxEmployees=50, tier=pro). Other
    /// features the plan has are kept.
    #[arg(long = "feature", value_name = "KEY=VALUE")]
    features: Vec<String>,
    /// Remove every feature the plan has first (then the --feature ones are set).
    #[arg(long)]
    clear_features: bool,
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Show the Treefort updates still to deliver, pending or dead (--all: delivered and skipped
    /// ones too; --dead: only those Treefort rejected for good).
    List {
        #[arg(long, conflicts_with = "dead")]
        all: bool,
        #[arg(long)]
        dead: bool,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Make updates due now: one by id (a dead one is pending again), or every pending one with
    /// --all; a running worker sends them.
    Retry {
        id: Option<i64>,
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// Give up one pending or dead update on purpose, so its subscription's later updates can go.
    /// Who did it and why are recorded on the entry.
    Skip {
        id: i64,
        /// Why (kept on the entry for whoever looks later).
        #[arg(long)]
        reason: String,
        /// Who (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApiKeysCommand {
    /// Make a key for the app owner's backend (/v1). It is printed once; only a hash is kept.
    Create {
        #[arg(long)]
        name: String,
        /// read (GET routes only) or write (every route).
        #[arg(long)]
        scope: String,
    },
    /// List keys: id, name, scope, created, last used, revoked.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key (by its number or its public id); it stops working at once.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum SigningKeysCommand {
    /// Make a new launch-token signing key (the first one if there is none). It is published in
    /// /.well-known/jwks.json at once and signs 5 minutes later, once every cached copy has it;
    /// the one before stays published for 24 hours, so tokens in flight still verify. Needs
    /// WEBHOOK_SIGNING_KEY, which keys are derived from.
    Rotate,
    /// List the signing keys: generation, kid, made, and whether it signs, is still published or
    /// is retired.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PaymentsCommand {
    /// List payments, newest first (charges, declines, refunds and disputes).
    List {
        /// Only this Treefort user's payments.
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Refund a payment through the active payment gateway (all that is left, or --amount).
    Refund {
        id: i64,
        /// In the payment's minor units (999 with divisor 100 is 9.99).
        #[arg(long)]
        amount: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PromoCommand {
    /// Create a promo code (letters and digits only; matched case-insensitively).
    Create(PromoArgs),
    /// List all promo codes.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one code with its plans and redemptions.
    Show { code: String },
    /// Stop a code from being accepted (it is kept for the record).
    Disable { code: String },
}

#[derive(Debug, Args)]
pub struct PromoArgs {
    #[arg(long)]
    code: String,
    /// Percent off, 1 to 100.
    #[arg(long, conflicts_with = "amount_off")]
    percent_off: Option<i32>,
    /// Amount off in minor units; needs --currency.
    #[arg(long)]
    amount_off: Option<i64>,
    #[arg(long)]
    currency: Option<String>,
    #[arg(long)]
    divisor: Option<i64>,
    /// Plan ids the code is limited to, comma-separated (default: every plan).
    #[arg(long, value_delimiter = ',')]
    plans: Vec<i64>,
    #[arg(long)]
    first_time_only: bool,
    #[arg(long)]
    max_redemptions: Option<i32>,
    /// RFC 3339, e.g. 2027-01-01T00:00:00Z.
    #[arg(long)]
    expires_at: Option<String>,
    #[arg(long)]
    note: Option<String>,
    /// once (the first charge, default), forever, or repeating (with --duration-periods).
    #[arg(long)]
    duration: Option<String>,
    /// With --duration repeating: how many billing periods are discounted.
    #[arg(long)]
    duration_periods: Option<i32>,
}

/// Opens the database named by `DATABASE_URL` (default SQLite file) and applies migrations, so a
/// command works on a fresh machine.
pub fn open_database() -> Result<db::DbConn, String> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| crate::config::DEFAULT_DATABASE_URL.into());
    let url = DatabaseUrl::parse(&url)?;
    let pool = db::connect_pool(&url, 1)?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    db::run_migrations(&mut conn).map_err(|e| format!("migrations failed: {e}"))?;
    Ok(conn)
}

fn now() -> NaiveDateTime {
    crate::clock::Clock::System.now().naive_utc()
}

pub fn plans(conn: &mut AnyConnection, command: PlansCommand) -> Result<String, String> {
    let db_err = |e: diesel::result::Error| format!("database error: {e}");
    match command {
        PlansCommand::Upsert(a) => upsert_plan(conn, a),
        PlansCommand::MigrateSubscribers { id } => {
            let plan = plans::find(conn, id)
                .map_err(db_err)?
                .ok_or_else(|| format!("no plan {id}"))?;
            let moved = crate::models::subscriptions::move_to_plan_price(conn, &plan, now())
                .map_err(db_err)?;
            Ok(format!(
                "{moved} subscriber(s) of plan {id} moved to {}; it applies from each one's next renewal (billing intervals stay)",
                crate::domain::locale::Lang::En.money(&plan.price())
            ))
        }
        PlansCommand::List { json } => {
            let all = plans::list(conn).map_err(db_err)?;
            if json {
                return Ok(serde_json::to_string_pretty(
                    &all.iter().map(plan_json).collect::<Vec<_>>(),
                )
                .unwrap_or_default());
            }
            if all.is_empty() {
                return Ok("no plans".into());
            }
            Ok(all
                .iter()
                .map(|p| format!("{:>6}  {}", p.id, describe_plan(p)))
                .collect::<Vec<_>>()
                .join("\n"))
        }
    }
}

/// `plans upsert`: the plan's features are kept unless `--clear-features`; `--feature`s are set
/// over them. Saved through `services::plans::save`, like `/v1`.
fn upsert_plan(conn: &mut AnyConnection, a: PlanArgs) -> Result<String, String> {
    let db_err = |e: diesel::result::Error| format!("database error: {e}");
    let current = match (a.clear_features, plans::find(conn, a.id).map_err(db_err)?) {
        (false, Some(plan)) => plan.features,
        _ => Features::default(),
    };
    let changes = a
        .features
        .iter()
        .map(|f| Features::parse_assignment(f))
        .collect::<Result<Vec<_>, _>>()?;
    let input = PlanInput {
        id: a.id,
        name: a.name,
        interval: a.interval,
        interval_count: a.interval_count,
        trial_days: a.trial_days,
        grace_days: a.grace_days,
        currency: a.currency,
        amount: a.amount,
        divisor: a.divisor,
        features: current
            .with(changes)
            .map_err(|e| format!("--feature: {e}"))?,
    };
    let values = input.validate(now())?;
    let saved = crate::services::plans::save(conn, input.id, &values, now()).map_err(db_err)?;
    let plan = saved.plan;
    let mut out = format!("plan {} saved: {}", plan.id, describe_plan(&plan));
    if !plan.features.is_empty() {
        out.push_str(&format!("\nfeatures: {}", plan.features.to_stored()));
    }
    if saved.told_of_features > 0 {
        out.push_str(&format!(
            "\n{} current subscriber(s) have the new features now (subscription.updated sent)",
            saved.told_of_features
        ));
    }
    let keep = saved.keeping_other_terms;
    if keep > 0 {
        out.push_str(&format!(
            "\n{keep} current subscriber(s) keep the price and interval they signed up for; new checkouts get these. To move them to the new price (from each one's next renewal): treefort-webpay plans migrate-subscribers --id {}",
            plan.id
        ));
    }
    Ok(out)
}

fn describe_plan(p: &Plan) -> String {
    format!(
        "{} — {} ({} {} / {} {}) every {} {}(s), trial {} days, grace {} days",
        p.name,
        crate::domain::locale::Lang::En.money(&p.price()),
        p.amount,
        p.currency,
        p.divisor,
        "minor units",
        p.interval_count,
        p.billing_interval,
        p.trial_days,
        p.grace_days
    )
}

fn plan_json(p: &Plan) -> serde_json::Value {
    crate::services::plans::view(p)
}

/// `payments list`: read from the database only.
pub fn payments_list(
    conn: &mut AnyConnection,
    user: Option<&str>,
    json: bool,
    limit: i64,
) -> Result<String, String> {
    use crate::models::payments::{self, Payment};
    let rows = payments::list(conn, user, limit).map_err(|e| format!("database error: {e}"))?;
    if json {
        let out: Vec<_> = rows
            .iter()
            .map(|(p, user_id)| payment_json(p, user_id))
            .collect();
        return Ok(serde_json::to_string_pretty(&out).unwrap_or_default());
    }
    if rows.is_empty() {
        return Ok("no payments".into());
    }
    let describe = |p: &Payment, user_id: &str| {
        let mut line = format!(
            "#{:<6} {}  {:<16} {:<8} {:<9} {:>12}  {} {}",
            p.id,
            rfc3339(p.created_at.and_utc()),
            user_id,
            p.kind,
            p.status,
            crate::domain::locale::Lang::En.money(&p.money()),
            p.gateway,
            p.gateway_reference.as_deref().unwrap_or("-"),
        );
        if p.refunded_amount > 0 {
            let refunded = crate::domain::money::Money {
                amount: p.refunded_amount,
                ..p.money()
            };
            line.push_str(&format!(
                "  refunded {}",
                crate::domain::locale::Lang::En.money(&refunded)
            ));
        }
        if let Some(reason) = &p.failure_reason {
            line.push_str(&format!("  ({reason})"));
        }
        if p.disputed_at.is_some() {
            line.push_str(&format!(
                "  DISPUTED ({})",
                p.dispute_reason.as_deref().unwrap_or("unknown")
            ));
        }
        line
    };
    Ok(rows
        .iter()
        .map(|(p, user_id)| describe(p, user_id))
        .collect::<Vec<_>>()
        .join("\n"))
}

pub fn payment_json(p: &crate::models::payments::Payment, user_id: &str) -> serde_json::Value {
    json!({
        "id": p.id, "userId": user_id, "subscriptionId": p.subscription_id, "kind": p.kind,
        "status": p.status, "amount": p.amount, "discountAmount": p.discount_amount,
        "currency": p.currency, "divisor": p.divisor, "gateway": p.gateway,
        "gatewayReference": p.gateway_reference, "failureReason": p.failure_reason,
        "refundedAmount": p.refunded_amount,
        "refundedAt": p.refunded_at.map(|t| rfc3339(t.and_utc())),
        "disputedAt": p.disputed_at.map(|t| rfc3339(t.and_utc())),
        "disputeReason": p.dispute_reason,
        "createdAt": rfc3339(p.created_at.and_utc()),
    })
}

pub fn outbox(conn: &mut AnyConnection, command: OutboxCommand) -> Result<String, String> {
    use crate::models::outbox as rows;
    let db_err = |e: diesel::result::Error| format!("database error: {e}");
    match command {
        OutboxCommand::List {
            all,
            dead,
            json,
            limit,
        } => {
            let listing = match (all, dead) {
                (_, true) => rows::Listing::Dead,
                (true, false) => rows::Listing::All,
                (false, false) => rows::Listing::Undelivered,
            };
            let entries = rows::list_recent(conn, listing, limit).map_err(db_err)?;
            if json {
                let out: Vec<_> = entries
                    .iter()
                    .map(|e| {
                        json!({
                            "id": e.id, "subscriptionId": e.subscription_id, "operation": e.operation,
                            "status": e.status, "attempts": e.attempts,
                            "nextAttemptAt": rfc3339(e.next_attempt_at.and_utc()),
                            "lastError": e.last_error, "body": serde_json::from_str::<serde_json::Value>(&e.body).ok(),
                            "createdAt": rfc3339(e.created_at.and_utc()),
                            "deliveredAt": e.delivered_at.map(|t| rfc3339(t.and_utc())),
                            "deadAt": e.dead_at.map(|t| rfc3339(t.and_utc())),
                            "skippedAt": e.skipped_at.map(|t| rfc3339(t.and_utc())),
                            "skippedBy": e.skipped_by, "skipReason": e.skip_reason,
                        })
                    })
                    .collect();
                return Ok(serde_json::to_string_pretty(&out).unwrap_or_default());
            }
            if entries.is_empty() {
                return Ok("nothing waiting for Treefort".into());
            }
            Ok(entries
                .iter()
                .map(|e| {
                    format!(
                        "#{:<6} subscription {:<6} {:<6} {:<9} attempts {:<3} next {}  {}",
                        e.id,
                        e.subscription_id,
                        e.operation,
                        e.status,
                        e.attempts,
                        rfc3339(e.next_attempt_at.and_utc()),
                        e.last_error.as_deref().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"))
        }
        OutboxCommand::Retry { id, all } => {
            if id.is_none() && !all {
                return Err("name an entry id, or --all".into());
            }
            let n = rows::retry_now(conn, id, now()).map_err(db_err)?;
            if id.is_some() && n == 0 {
                return Err(format!(
                    "no pending or dead entry #{}",
                    id.unwrap_or_default()
                ));
            }
            Ok(format!(
                "{n} update(s) due now; the worker sends them in its next round"
            ))
        }
        OutboxCommand::Skip { id, reason, by } => {
            let reason = reason.trim();
            if reason.is_empty() || crate::domain::text::has_control(reason) {
                return Err("--reason must say why, in one line".into());
            }
            let by = by
                .or_else(|| std::env::var("USER").ok())
                .filter(|b| !b.trim().is_empty() && !crate::domain::text::has_control(b))
                .ok_or("--by must name who skips the entry (or set USER)")?;
            if rows::skip(conn, id, &by, reason, now()).map_err(db_err)? == 0 {
                return Err(format!("no pending or dead entry #{id}"));
            }
            Ok(format!(
                "entry #{id} skipped by {by}; Treefort will not get it, and the later updates of its subscription go next"
            ))
        }
    }
}
