//! The time source. Services ask the clock instead of `Utc::now()`, so tests can move time forward
//! instead of sleeping. Every instant is UTC and truncated to microseconds, the precision both
//! backends keep.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    /// A clock that only moves when told to (tests, simulations).
    Manual(Arc<Mutex<DateTime<Utc>>>),
    /// The system clock moved ahead by an offset (microseconds) that only grows: local mode's
    /// time travel. Time still passes, so pages and leases behave as in production.
    Offset(Arc<AtomicI64>),
}

impl Clock {
    pub fn manual(start: DateTime<Utc>) -> Self {
        Clock::Manual(Arc::new(Mutex::new(truncate(start))))
    }

    /// The system clock, movable forward (`advance`).
    pub fn offset() -> Self {
        Clock::Offset(Arc::new(AtomicI64::new(0)))
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => truncate(Utc::now()),
            Clock::Manual(t) => *t.lock().unwrap_or_else(|e| e.into_inner()),
            Clock::Offset(by) => {
                truncate(Utc::now() + TimeDelta::microseconds(by.load(Ordering::Relaxed)))
            }
        }
    }

    /// Whether `advance` moves this clock (the system clock cannot be moved).
    pub fn is_movable(&self) -> bool {
        !matches!(self, Clock::System)
    }

    /// Moves a manual or offset clock forward (never back); the system clock cannot be moved.
    pub fn advance(&self, by: TimeDelta) {
        if by <= TimeDelta::zero() {
            return;
        }
        match self {
            Clock::System => {}
            Clock::Manual(t) => {
                let mut t = t.lock().unwrap_or_else(|e| e.into_inner());
                *t = truncate(*t + by);
            }
            Clock::Offset(offset) => {
                let micros = by.num_microseconds().unwrap_or(i64::MAX);
                let _ = offset.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| {
                    Some(o.saturating_add(micros))
                });
            }
        }
    }
}

fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}

/// The RFC 3339 form Treefort is sent: UTC, `Z`, milliseconds.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A UTC instant as the database stores it (a naive date-time, always UTC).
pub fn naive(t: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDateTime {
    t.naive_utc()
}

/// A stored date-time (always UTC) as an instant.
pub fn utc(t: chrono::NaiveDateTime) -> chrono::DateTime<chrono::Utc> {
    t.and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_clock_runs_with_real_time_and_only_moves_forward() {
        let clock = Clock::offset();
        let before = Utc::now();
        clock.advance(TimeDelta::days(30));
        clock.advance(TimeDelta::days(-400));
        let now = clock.now();
        assert!(now >= before + TimeDelta::days(30));
        assert!(now < Utc::now() + TimeDelta::days(30) + TimeDelta::seconds(1));
        assert!(clock.is_movable());
        assert!(!Clock::System.is_movable());
    }
}
