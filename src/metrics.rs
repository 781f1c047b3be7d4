//! Prometheus metrics through the `prometheus` crate, in a registry of this process's own (each
//! instance reports its own; Prometheus adds them up). Counters are declared once in `counters!`,
//! each a typed field with its labels: a wrong name or label count does not compile. Request
//! latency and worker rounds are histograms. The outbox backlog is read from the database at
//! scrape time, so it is the same on every instance.

use std::time::Duration;

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

const NAMESPACE: &str = "treefort_webpay";

/// A counter whose label values are given in the order of its labels, as many as it has: a
/// wrong count does not compile.
#[derive(Clone)]
pub struct Counter<const N: usize>(IntCounterVec);

impl<const N: usize> Counter<N> {
    fn register(
        registry: &Registry,
        name: &str,
        help: &str,
        labels: [&str; N],
    ) -> prometheus::Result<Self> {
        let counter = IntCounterVec::new(Opts::new(name, help).namespace(NAMESPACE), &labels)?;
        registry.register(Box::new(counter.clone()))?;
        Ok(Self(counter))
    }

    /// Adds one with these label values.
    pub fn inc(&self, values: [&str; N]) {
        self.0.with_label_values(&values).inc();
    }
}

/// Declares the counters once: each is a field of `Counters`, with its name, labels and help.
macro_rules! counters {
    ($($field:ident: $n:literal [$($label:literal),*] $help:literal,)*) => {
        /// Every counter, by name: `metrics.counters.checkout_payments.inc(["paid"])`.
        #[derive(Clone)]
        pub struct Counters {
            $(#[doc = $help] pub $field: Counter<$n>,)*
        }

        impl Counters {
            fn register(registry: &Registry) -> prometheus::Result<Self> {
                Ok(Self {
                    $($field: Counter::register(
                        registry,
                        concat!(stringify!($field), "_total"),
                        $help,
                        [$($label),*],
                    )?,)*
                })
            }
        }
    };
}

counters! {
    entitlement_reads: 1 ["source"]
        "Entitlement checks, by where the subscriptions were read (memory or database)",
    launch_tokens: 1 ["algorithm"]
        "Launch tokens minted, by signing algorithm (EdDSA or HS256)",
    http_requests: 2 ["route", "status"]
        "HTTP requests answered, by route pattern and status",
    checkout_payments: 1 ["outcome"]
        "Checkout payment attempts, by outcome",
    renewals: 1 ["outcome"]
        "Worker turns on due subscriptions, by outcome (renewed, declined, ended_by_decline, deactivated, postponed, lease_lost, failed)",
    treefort_deliveries: 2 ["operation", "outcome"]
        "Treefort subscription updates sent, by outcome",
    cancellations: 1 ["outcome"]
        "Cancel requests, by outcome",
    sessions_created: 1 ["kind"]
        "Session URLs issued, by kind",
    gateway_events: 1 ["type"]
        "Verified webhook events from the payment gateway, by type",
    payment_disputes: 1 ["reason"]
        "Payments disputed by card holders (chargebacks), by reason",
    rate_limited: 1 ["route"]
        "Requests refused with 429, by route group",
    treefort_outbox_dead_letters: 1 ["operation"]
        "Treefort updates rejected for good (now dead letters), by operation",
    webhook_deliveries: 1 ["outcome"]
        "Webhook deliveries to the app owner's endpoints, by outcome",
    stripe_requests: 1 ["outcome"]
        "Calls to Stripe's API, one per try, by outcome (ok, card_error, invalid, rate_limited, conflict, server_error, timeout, network, unreadable)",
    stripe_retries: 1 ["reason"]
        "Stripe calls tried again under the same idempotency key, by what the try before met",
    worker_rounds: 1 ["result"]
        "Worker rounds, by whether they found more work than one round may take",
    emails: 2 ["kind", "outcome"]
        "Shoppers' emails, by kind and outcome (sent, retried, dead, not_sent)",
}

/// Request latency buckets, in seconds: a page or an API answer, 1 ms to 10 s.
const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// What the database says about the outbox at scrape time.
pub struct OutboxStats {
    pub pending: i64,
    pub dead: i64,
    /// Seconds since the oldest pending update was queued (0 when none is).
    pub oldest_pending_age_secs: f64,
}

pub struct Metrics {
    registry: Registry,
    /// The counters, one typed field each.
    pub counters: Counters,
    request_duration: HistogramVec,
    round_duration: Histogram,
    stripe_duration: Histogram,
    stripe_pacing: Histogram,
    outbox_pending: IntGauge,
    outbox_dead: IntGauge,
    outbox_oldest_age: Gauge,
    log_lines_dropped: IntGauge,
    sqlite_syncs_given_up: IntGauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new().expect("the metric definitions are valid")
    }
}

impl Metrics {
    fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let counters = Counters::register(&registry)?;
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to answer an HTTP request, by route pattern and method",
            )
            .namespace(NAMESPACE)
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "method"],
        )?;
        registry.register(Box::new(request_duration.clone()))?;
        let histogram = |name, help, buckets: &[f64]| -> prometheus::Result<Histogram> {
            let h = Histogram::with_opts(
                HistogramOpts::new(name, help)
                    .namespace(NAMESPACE)
                    .buckets(buckets.to_vec()),
            )?;
            registry.register(Box::new(h.clone()))?;
            Ok(h)
        };
        let int_gauge = |name, help| -> prometheus::Result<IntGauge> {
            let g = IntGauge::with_opts(Opts::new(name, help).namespace(NAMESPACE))?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let outbox_oldest_age = Gauge::with_opts(
            Opts::new(
                "outbox_oldest_pending_age_seconds",
                "How long the oldest undelivered Treefort update has waited",
            )
            .namespace(NAMESPACE),
        )?;
        registry.register(Box::new(outbox_oldest_age.clone()))?;
        Ok(Self {
            counters,
            request_duration,
            round_duration: histogram(
                "worker_round_duration_seconds",
                "Time a worker round takes (renewals, Treefort updates, reconciliation)",
                &[
                    0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                ],
            )?,
            stripe_duration: histogram(
                "stripe_request_duration_seconds",
                "Time one try of a Stripe call takes, until its answer or its timeout",
                &LATENCY_BUCKETS,
            )?,
            stripe_pacing: histogram(
                "stripe_pacing_wait_seconds",
                "Time a Stripe call waited for its turn under STRIPE_MAX_REQUESTS_PER_SECOND",
                &LATENCY_BUCKETS,
            )?,
            outbox_pending: int_gauge(
                "outbox_pending",
                "Treefort updates waiting to be delivered",
            )?,
            outbox_dead: int_gauge(
                "outbox_dead",
                "Treefort updates rejected for good, waiting for an operator",
            )?,
            outbox_oldest_age,
            log_lines_dropped: int_gauge(
                "log_lines_dropped",
                "Log lines dropped since start because the log reader did not keep up",
            )?,
            sqlite_syncs_given_up: int_gauge(
                "sqlite_syncs_given_up",
                "Syncs of the SQLite database file given up after 2 s since start (a stuck disk)",
            )?,
            registry,
        })
    }

    /// One answered request: counted by route and status, timed by route and method (methods
    /// outside the standard ones count as `OTHER`: a client cannot add series at will).
    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let method = match method {
            "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" => method,
            _ => "OTHER",
        };
        self.counters
            .http_requests
            .inc([route, &status.to_string()]);
        if let Ok(h) = self
            .request_duration
            .get_metric_with_label_values(&[route, method])
        {
            h.observe(elapsed.as_secs_f64());
        }
    }

    /// One worker round and how long it took.
    pub fn observe_round(&self, elapsed: Duration, full: bool) {
        self.round_duration.observe(elapsed.as_secs_f64());
        self.counters
            .worker_rounds
            .inc([if full { "full" } else { "done" }]);
    }

    /// One try of a Stripe call: its outcome and how long it took.
    pub fn observe_stripe_call(&self, outcome: &str, elapsed: Duration) {
        self.counters.stripe_requests.inc([outcome]);
        self.stripe_duration.observe(elapsed.as_secs_f64());
    }

    /// How long a Stripe call waited for its turn under the pace.
    pub fn observe_stripe_wait(&self, waited: Duration) {
        self.stripe_pacing.observe(waited.as_secs_f64());
    }

    /// What the process itself reports at scrape time: log lines dropped, and (SQLite) the
    /// database file's syncs given up.
    pub fn observe_process(&self, log_lines_dropped: u64, sqlite_syncs_given_up: u64) {
        self.log_lines_dropped.set(log_lines_dropped as i64);
        self.sqlite_syncs_given_up.set(sqlite_syncs_given_up as i64);
    }

    /// The exposition text. `outbox` is `None` when the database could not be read: the gauges
    /// are then left out rather than reported stale.
    pub fn render(&self, outbox: Option<OutboxStats>) -> String {
        if let Some(stats) = &outbox {
            self.outbox_pending.set(stats.pending);
            self.outbox_dead.set(stats.dead);
            self.outbox_oldest_age.set(stats.oldest_pending_age_secs);
        }
        let mut families = self.registry.gather();
        if outbox.is_none() {
            families.retain(|f| !f.name().starts_with("treefort_webpay_outbox_"));
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            tracing::warn!(error = %e, "metrics could not be encoded");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_histograms_and_gauges_are_exposed() {
        let metrics = Metrics::default();
        metrics.counters.checkout_payments.inc(["paid"]);
        metrics
            .counters
            .treefort_deliveries
            .inc(["update", "delivered"]);
        metrics.observe_request("GET", "/checkout/{token}", 200, Duration::from_millis(3));
        metrics.observe_round(Duration::from_millis(20), false);
        let text = metrics.render(Some(OutboxStats {
            pending: 2,
            dead: 0,
            oldest_pending_age_secs: 4.5,
        }));
        for line in [
            "treefort_webpay_checkout_payments_total{outcome=\"paid\"} 1",
            "treefort_webpay_treefort_deliveries_total{operation=\"update\",outcome=\"delivered\"} 1",
            "treefort_webpay_http_requests_total{route=\"/checkout/{token}\",status=\"200\"} 1",
            "treefort_webpay_http_request_duration_seconds_bucket{method=\"GET\",route=\"/checkout/{token}\",le=\"0.005\"} 1",
            "treefort_webpay_worker_round_duration_seconds_count 1",
            "treefort_webpay_outbox_pending 2",
            "treefort_webpay_outbox_oldest_pending_age_seconds 4.5",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        metrics.observe_request("BREW", "unmatched", 405, Duration::from_millis(1));
        assert!(metrics.render(None).contains(
            "http_request_duration_seconds_count{method=\"OTHER\",route=\"unmatched\"} 1"
        ));
        assert!(!metrics.render(None).contains("outbox_pending"));
    }
}
