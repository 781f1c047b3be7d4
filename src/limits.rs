//! Rate limits, counted by each instance in its own memory (with several instances behind a load
//! balancer, each one allows the configured rate): per provider key on the Treefort routes, and
//! per client address on the shopper pages. A request over the limit gets 429 with `Retry-After`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub struct RateLimits {
    treefort: DefaultKeyedRateLimiter<String>,
    pages: DefaultKeyedRateLimiter<IpAddr>,
}

impl RateLimits {
    /// `treefort_per_minute` per provider key, `pages_per_minute` per client address; each may
    /// be used up in a burst of that size.
    pub fn new(treefort_per_minute: NonZeroU32, pages_per_minute: NonZeroU32) -> Self {
        Self {
            treefort: RateLimiter::keyed(Quota::per_minute(treefort_per_minute)),
            pages: RateLimiter::keyed(Quota::per_minute(pages_per_minute)),
        }
    }

    /// `Err(wait)` when `caller` (a provider key's fingerprint, or a client address) is over the
    /// Treefort routes' limit.
    pub fn check_treefort(&self, caller: &str) -> Result<(), Duration> {
        self.treefort
            .check_key(&caller.to_string())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    pub fn check_pages(&self, client: IpAddr) -> Result<(), Duration> {
        self.pages
            .check_key(&client)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets callers that have not been seen for a while (the worker calls this), so that
    /// memory stays bounded however many addresses come by.
    pub fn forget_idle(&self) {
        self.treefort.retain_recent();
        self.pages.retain_recent();
        self.treefort.shrink_to_fit();
        self.pages.shrink_to_fit();
    }
}

/// Whole seconds for `Retry-After`, at least one.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}
