//! Failed-login throttling per client address: each failure is answered only after a delay
//! that doubles with the address's recent failures (like PostgreSQL's `auth_delay`, but
//! growing), so guessing passwords is slow, while one mistyped password costs a moment.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures older than this are forgotten.
const WINDOW: Duration = Duration::from_secs(60);
/// The delay never grows past this.
const MAX_DELAY: Duration = Duration::from_secs(8);
/// Addresses remembered at most; past it, the stale ones are dropped (then the oldest).
const MAX_ADDRESSES: usize = 100_000;

/// Recent failed logins by address.
#[derive(Debug)]
pub struct LoginThrottle {
    base: Duration,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl LoginThrottle {
    /// A throttle whose first failure waits `base` (zero turns it off).
    pub fn new(base: Duration) -> LoginThrottle {
        LoginThrottle {
            base,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Records a failed login from `address` and returns how long to wait before answering it.
    pub fn record(&self, address: IpAddr, now: Instant) -> Duration {
        if self.base.is_zero() {
            return Duration::ZERO;
        }
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= MAX_ADDRESSES && !failures.contains_key(&address) {
            failures.retain(|_, (_, last)| now.duration_since(*last) < WINDOW);
            if failures.len() >= MAX_ADDRESSES {
                if let Some(oldest) = failures
                    .iter()
                    .min_by_key(|(_, (_, t))| *t)
                    .map(|(a, _)| *a)
                {
                    failures.remove(&oldest);
                }
            }
        }
        let entry = failures.entry(address).or_insert((0, now));
        if now.duration_since(entry.1) >= WINDOW {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        let doublings = (entry.0 - 1).min(16);
        self.base.saturating_mul(1 << doublings).min(MAX_DELAY)
    }

    /// Records a failed login from `address` and waits out its delay.
    pub async fn failed(&self, address: IpAddr) {
        let wait = self.record(address, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_per_address_and_resets_after_the_window() {
        let t = LoginThrottle::new(Duration::from_millis(100));
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let now = Instant::now();
        assert_eq!(t.record(a, now), Duration::from_millis(100));
        assert_eq!(t.record(a, now), Duration::from_millis(200));
        assert_eq!(t.record(a, now), Duration::from_millis(400));
        assert_eq!(t.record(b, now), Duration::from_millis(100));
        for _ in 0..40 {
            t.record(a, now);
        }
        assert_eq!(t.record(a, now), MAX_DELAY);
        assert_eq!(t.record(a, now + WINDOW), Duration::from_millis(100));
        assert_eq!(
            LoginThrottle::new(Duration::ZERO).record(a, now),
            Duration::ZERO
        );
    }
}
