//! Billing periods in calendar terms. Period ends are always computed from the anchor (the start of
//! the first paid period), so Jan 31 + 1 month = Feb 28/29 and the 31st comes back in March.

use chrono::{DateTime, Months, TimeDelta, Utc};

/// End of the `n`-th period (1 = the first) of a plan billed every `count` `unit`s from `anchor`.
pub fn period_end(anchor: DateTime<Utc>, unit: &str, count: i32, n: u32) -> DateTime<Utc> {
    let per_period = if unit == "year" { 12 } else { 1 } * count.max(1) as u32;
    anchor
        .checked_add_months(Months::new(per_period.saturating_mul(n)))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

pub fn trial_end(start: DateTime<Utc>, trial_days: i32) -> DateTime<Utc> {
    start + TimeDelta::days(trial_days.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn months_clamp_to_month_end_and_the_anchor_day_comes_back() {
        let anchor = at("2027-01-31T12:00:00Z");
        assert_eq!(
            period_end(anchor, "month", 1, 1),
            at("2027-02-28T12:00:00Z")
        );
        assert_eq!(
            period_end(anchor, "month", 1, 2),
            at("2027-03-31T12:00:00Z")
        );
        assert_eq!(
            period_end(at("2028-01-31T00:00:00Z"), "month", 1, 1),
            at("2028-02-29T00:00:00Z")
        );
        assert_eq!(
            period_end(anchor, "month", 3, 1),
            at("2027-04-30T12:00:00Z")
        );
        assert_eq!(
            period_end(at("2028-02-29T00:00:00Z"), "year", 1, 1),
            at("2029-02-28T00:00:00Z")
        );
    }

    #[test]
    fn trials_last_whole_days() {
        assert_eq!(
            trial_end(at("2026-11-22T10:00:00Z"), 7),
            at("2026-11-29T10:00:00Z")
        );
    }
}
