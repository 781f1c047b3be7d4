//! Prometheus counters kept in process memory (each instance reports its own; Prometheus adds them
//! up). The outbox backlog is read from the database at scrape time, so it is the same everywhere.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, String), u64>>,
}

const HELP: [(&str, &str); 9] = [
    (
        "http_requests_total",
        "HTTP requests answered, by route pattern and status",
    ),
    (
        "checkout_payments_total",
        "Checkout payment attempts, by outcome",
    ),
    (
        "treefort_deliveries_total",
        "Treefort subscription updates sent, by outcome",
    ),
    ("cancellations_total", "Cancel requests, by outcome"),
    ("sessions_created_total", "Session URLs issued, by kind"),
    (
        "gateway_events_total",
        "Verified webhook events from the payment gateway, by type",
    ),
    (
        "payment_disputes_total",
        "Payments disputed by card holders (chargebacks), by reason",
    ),
    (
        "rate_limited_total",
        "Requests refused with 429, by route group",
    ),
    (
        "treefort_outbox_dead_letters_total",
        "Treefort updates rejected for good (now dead letters), by operation",
    ),
];

impl Metrics {
    /// Adds one to `name` with the given label set (already formatted, e.g. `outcome="paid"`).
    pub fn incr(&self, name: &'static str, labels: String) {
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        *counters.entry((name, labels)).or_default() += 1;
    }

    pub fn render(&self, outbox: Option<(i64, i64)>) -> String {
        let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for (name, help) in HELP {
            let _ = writeln!(out, "# HELP treefort_webpay_{name} {help}");
            let _ = writeln!(out, "# TYPE treefort_webpay_{name} counter");
            for ((_, labels), value) in counters
                .range((name, String::new())..)
                .take_while(|((n, _), _)| *n == name)
            {
                let _ = writeln!(out, "treefort_webpay_{name}{{{labels}}} {value}");
            }
        }
        if let Some((pending, dead)) = outbox {
            out.push_str(
                "# HELP treefort_webpay_outbox_pending Treefort updates waiting to be delivered\n",
            );
            out.push_str("# TYPE treefort_webpay_outbox_pending gauge\n");
            let _ = writeln!(out, "treefort_webpay_outbox_pending {pending}");
            out.push_str("# HELP treefort_webpay_outbox_dead Treefort updates rejected for good, waiting for an operator\n");
            out.push_str("# TYPE treefort_webpay_outbox_dead gauge\n");
            let _ = writeln!(out, "treefort_webpay_outbox_dead {dead}");
        }
        out
    }
}

/// Formats one label value safely for the exposition format.
pub fn label(name: &str, value: &str) -> String {
    let escaped = value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("{name}=\"{escaped}\"")
}
