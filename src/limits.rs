//! Rate limits, counted by each instance in its own memory (with several instances behind a load
//! balancer, each one allows the configured rate). A request over a limit gets 429 with
//! `Retry-After`.
//!
//! - **Authenticated keys** (a provider key on `/treefort`, an API key on `/v1`): counted per key
//!   once the key is proven, with a default far above any real app's traffic.
//! - **Failed authentications**, per client address: a client that keeps presenting wrong,
//!   unknown or missing keys (a new random key each time included) is refused before its key is
//!   looked at, until its budget refills.
//! - **Shopper pages**, per client address.
//!
//! Unknown `/v1` key ids are remembered briefly, so a well-formed key that does not exist costs
//! one database lookup per minute, not one per request. All of this memory is bounded: the
//! caches by size and age, the limiters' keys forgotten by [`RateLimits::forget_idle`], which
//! the server runs on its own clock.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// How long an unknown key id is answered 401 from memory.
pub const UNKNOWN_KEY_MEMORY: Duration = Duration::from_secs(60);
/// At most this many unknown key ids and refused addresses are remembered (the oldest go first).
const MEMORY_CAPACITY: u64 = 100_000;

/// The limits of one instance.
pub struct RateLimits {
    keys: DefaultKeyedRateLimiter<String>,
    failures: DefaultKeyedRateLimiter<IpAddr>,
    /// Addresses over their failed-authentication budget, until when.
    refused: moka::sync::Cache<IpAddr, Instant>,
    unknown_keys: moka::sync::Cache<String, ()>,
    pages: DefaultKeyedRateLimiter<IpAddr>,
}

/// The per-minute budgets (each may be used up in a burst of that size).
#[derive(Debug, Clone, Copy)]
pub struct Budgets {
    pub per_key: NonZeroU32,
    pub failed_auth_per_address: NonZeroU32,
    pub pages_per_address: NonZeroU32,
}

impl RateLimits {
    pub fn new(budgets: Budgets) -> Self {
        Self {
            keys: RateLimiter::keyed(Quota::per_minute(budgets.per_key)),
            failures: RateLimiter::keyed(Quota::per_minute(budgets.failed_auth_per_address)),
            refused: moka::sync::Cache::builder()
                .max_capacity(MEMORY_CAPACITY)
                .time_to_live(Duration::from_secs(60))
                .build(),
            unknown_keys: moka::sync::Cache::builder()
                .max_capacity(MEMORY_CAPACITY)
                .time_to_live(UNKNOWN_KEY_MEMORY)
                .build(),
            pages: RateLimiter::keyed(Quota::per_minute(budgets.pages_per_address)),
        }
    }

    /// `Err(wait)` when the proven key `key` (a name, never the secret) is over its limit.
    pub fn check_key(&self, key: &str) -> Result<(), Duration> {
        self.keys
            .check_key(&key.to_string())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// `Err(wait)` while `client` is refused for its failed authentications. Costs no count.
    pub fn check_refused(&self, client: IpAddr) -> Result<(), Duration> {
        match self.refused.get(&client) {
            Some(until) => match until.checked_duration_since(Instant::now()) {
                Some(wait) if !wait.is_zero() => Err(wait),
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// Counts a failed authentication of `client`. Over the budget, the address is refused until
    /// the budget has a request again.
    pub fn note_failed_auth(&self, client: IpAddr) {
        if let Err(not_until) = self.failures.check_key(&client) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            self.refused.insert(client, Instant::now() + wait);
        }
    }

    /// Whether the `/v1` key id `key_id` was found not to exist within the last minute.
    pub fn is_unknown_key(&self, key_id: &str) -> bool {
        self.unknown_keys.contains_key(key_id)
    }

    pub fn note_unknown_key(&self, key_id: &str) {
        self.unknown_keys.insert(key_id.to_string(), ());
    }

    pub fn check_pages(&self, client: IpAddr) -> Result<(), Duration> {
        self.pages
            .check_key(&client)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets callers that have not been seen for a while, so that memory stays bounded however
    /// many addresses and keys come by.
    pub fn forget_idle(&self) {
        self.keys.retain_recent();
        self.failures.retain_recent();
        self.pages.retain_recent();
        self.keys.shrink_to_fit();
        self.failures.shrink_to_fit();
        self.pages.shrink_to_fit();
        self.refused.run_pending_tasks();
        self.unknown_keys.run_pending_tasks();
    }

    /// How many callers the limiters hold now (logged after each pruning, and tested).
    pub fn callers(&self) -> usize {
        self.keys.len() + self.failures.len() + self.pages.len()
    }
}

/// The client's address: the peer's, or the one proxy headers name when TRUST_PROXY_HEADERS
/// says a trusted proxy sets them.
pub fn client_address(req: &actix_web::HttpRequest, trust_proxy_headers: bool) -> Option<IpAddr> {
    if trust_proxy_headers {
        let info = req.connection_info();
        if let Some(ip) = info.realip_remote_addr().and_then(|a| {
            a.parse::<std::net::SocketAddr>()
                .map(|s| s.ip())
                .ok()
                .or_else(|| a.parse().ok())
        }) {
            return Some(ip);
        }
    }
    req.peer_addr().map(|a| a.ip())
}

/// Whole seconds for `Retry-After`, at least one.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(failures: u32) -> RateLimits {
        RateLimits::new(Budgets {
            per_key: NonZeroU32::new(1000).unwrap(),
            failed_auth_per_address: NonZeroU32::new(failures).unwrap(),
            pages_per_address: NonZeroU32::new(10).unwrap(),
        })
    }

    #[test]
    fn an_address_is_refused_only_after_its_failures_use_the_budget() {
        let limits = limits(3);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert!(limits.check_refused(ip).is_ok());
            limits.note_failed_auth(ip);
        }
        assert!(
            limits.check_refused(ip).is_ok(),
            "three failures are allowed"
        );
        limits.note_failed_auth(ip);
        let wait = limits.check_refused(ip).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limits.check_refused(other).is_ok(), "per address");
    }

    #[test]
    fn unknown_keys_are_remembered() {
        let limits = limits(3);
        assert!(!limits.is_unknown_key("abc"));
        limits.note_unknown_key("abc");
        assert!(limits.is_unknown_key("abc"));
        assert!(!limits.is_unknown_key("abd"));
    }

    #[test]
    fn idle_callers_are_forgotten() {
        // Budgets so large that a used cell refills within nanoseconds: idle at once.
        let max = NonZeroU32::new(u32::MAX).unwrap();
        let limits = RateLimits::new(Budgets {
            per_key: max,
            failed_auth_per_address: max,
            pages_per_address: max,
        });
        limits.check_key("k").unwrap();
        limits.check_pages("192.0.2.1".parse().unwrap()).unwrap();
        limits.note_failed_auth("192.0.2.1".parse().unwrap());
        assert_eq!(limits.callers(), 3);
        std::thread::sleep(Duration::from_millis(5));
        limits.forget_idle();
        assert_eq!(limits.callers(), 0);
    }
}
