//! The promo-code commands: create, list, show, disable and enable codes, for support staff.

use super::*;

pub fn promo(conn: &mut AnyConnection, command: PromoCommand) -> Result<String, String> {
    let db_err = |e: diesel::result::Error| format!("database error: {e}");
    match command {
        PromoCommand::Create(a) => {
            let expires_at = a
                .expires_at
                .as_deref()
                .map(|s| {
                    DateTime::parse_from_rfc3339(s)
                        .map(|t| t.naive_utc())
                        .map_err(|_| format!("--expires-at must be RFC 3339, e.g. 2027-01-01T00:00:00Z (got {s:?})"))
                })
                .transpose()?;
            let input = PromoInput {
                code: a.code,
                percent_off: a.percent_off,
                amount_off: a.amount_off,
                currency: a.currency,
                divisor: a.divisor,
                plan_ids: a.plans,
                first_time_only: a.first_time_only,
                max_redemptions: a.max_redemptions,
                expires_at,
                note: a.note,
                duration: a.duration,
                duration_periods: a.duration_periods,
            };
            let code = promo_rules::create(conn, &input, now()).map_err(|e| e.to_string())?;
            Ok(format!(
                "promo code {} created: {}",
                code.code,
                describe_promo(&code)
            ))
        }
        PromoCommand::List { json } => {
            let all = promo_codes::list(conn).map_err(db_err)?;
            if json {
                let mut out = Vec::new();
                for code in &all {
                    let plans = promo_codes::plan_ids(conn, code.id).map_err(db_err)?;
                    out.push(promo_json(code, &plans));
                }
                return Ok(serde_json::to_string_pretty(&out).unwrap_or_default());
            }
            if all.is_empty() {
                return Ok("no promo codes".into());
            }
            Ok(all
                .iter()
                .map(|c| format!("{:<20} {}", c.code, describe_promo(c)))
                .collect::<Vec<_>>()
                .join("\n"))
        }
        PromoCommand::Show { code } => {
            let found = find_code(conn, &code)?;
            let plans = promo_codes::plan_ids(conn, found.id).map_err(db_err)?;
            let redemptions = promo_codes::count_redemptions(conn, found.id).map_err(db_err)?;
            let mut json = promo_json(&found, &plans);
            json["redemptionsRecorded"] = redemptions.into();
            Ok(serde_json::to_string_pretty(&json).unwrap_or_default())
        }
        PromoCommand::Disable { code } => {
            let found = find_code(conn, &code)?;
            promo_codes::set_active(conn, found.id, false, now()).map_err(db_err)?;
            Ok(format!("promo code {} disabled", found.code))
        }
    }
}

pub(super) fn find_code(conn: &mut AnyConnection, code: &str) -> Result<PromoCode, String> {
    let normalized = promo_code::normalize(code)
        .ok_or_else(|| format!("{code:?} is not a promo code: letters A-Z and digits only"))?;
    promo_codes::find_by_normalized_code(conn, &normalized)
        .map_err(|e| format!("database error: {e}"))?
        .ok_or_else(|| format!("no promo code {code}"))
}

pub(super) fn describe_promo(c: &PromoCode) -> String {
    let discount = match (c.percent_off, c.amount_off) {
        (Some(p), _) => format!("{p}% off"),
        (None, Some(a)) => format!(
            "{a} {} / {} off",
            c.currency.as_deref().unwrap_or("?"),
            c.divisor.unwrap_or(1)
        ),
        _ => "no discount".into(),
    };
    let limit = c.max_redemptions.map_or_else(
        || format!("{} redeemed", c.times_redeemed),
        |m| format!("{} of {m} redeemed", c.times_redeemed),
    );
    let expiry = c.expires_at.map_or_else(
        || "no expiry".to_string(),
        |t| format!("expires {}", rfc3339(t.and_utc())),
    );
    let duration = match (c.duration.as_str(), c.duration_periods) {
        ("repeating", Some(n)) => format!("for {n} billing periods"),
        ("forever", _) => "on every charge".to_string(),
        _ => "on the first charge".to_string(),
    };
    format!(
        "{discount} {duration}, {limit}, {expiry}{}{}",
        if c.first_time_only {
            ", first-time subscribers only"
        } else {
            ""
        },
        if c.active { "" } else { ", DISABLED" }
    )
}

pub(super) fn promo_json(c: &PromoCode, plans: &[i64]) -> serde_json::Value {
    promo_rules::view(c, plans)
}
