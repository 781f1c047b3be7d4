//! Waits between tries of something that failed: exponential (the first wait, doubling per try,
//! up to a cap), and jittered so that instances retrying the same thing do not retry in step.

use std::time::Duration;

/// The wait after `tries` failed tries (1 or more): `first`, doubled for each try after the first,
/// at most `cap`.
pub fn exponential(first: Duration, tries: u32, cap: Duration) -> Duration {
    let doublings = tries.clamp(1, 31) - 1;
    first.saturating_mul(1 << doublings).min(cap)
}

/// `wait`, moved by up to ±20 % at random.
pub fn jittered(wait: Duration) -> Duration {
    let fifth = (wait.as_millis() / 5) as i64;
    let millis = wait.as_millis() as i64 + rand::random_range(-fifth..=fifth);
    Duration::from_millis(millis.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap() {
        let (first, cap) = (Duration::from_secs(30), Duration::from_secs(6 * 3600));
        assert_eq!(exponential(first, 1, cap), first);
        assert_eq!(exponential(first, 2, cap), Duration::from_secs(60));
        assert_eq!(exponential(first, 5, cap), Duration::from_secs(480));
        assert_eq!(exponential(first, 1000, cap), cap);
        assert_eq!(exponential(first, 0, cap), first);
    }

    #[test]
    fn jitter_stays_within_a_fifth() {
        for _ in 0..100 {
            let wait = jittered(Duration::from_secs(10)).as_millis();
            assert!((8_000..=12_000).contains(&wait), "{wait}");
        }
    }
}
