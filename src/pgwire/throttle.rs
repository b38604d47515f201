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
    /// Per address: failures in the window, the last one, and when the next answer may go.
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    next_answer: Instant,
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
    /// Failures from one address are answered one after another, each its delay after the
    /// previous answer: guessing in parallel is no faster than guessing in turn.
    pub fn record(&self, address: IpAddr, now: Instant) -> Duration {
        if self.base.is_zero() {
            return Duration::ZERO;
        }
        let address = crate::admission::client_key(address);
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= MAX_ADDRESSES && !failures.contains_key(&address) {
            failures.retain(|_, f| now.duration_since(f.last) < WINDOW);
            if failures.len() >= MAX_ADDRESSES {
                let oldest = failures.iter().min_by_key(|(_, f)| f.last).map(|(a, _)| *a);
                if let Some(oldest) = oldest {
                    failures.remove(&oldest);
                }
            }
        }
        let f = failures.entry(address).or_insert(Failures {
            count: 0,
            last: now,
            next_answer: now,
        });
        if now.duration_since(f.last) >= WINDOW {
            f.count = 0;
        }
        f.count = f.count.saturating_add(1);
        f.last = now;
        let doublings = (f.count - 1).min(16);
        let delay = self.base.saturating_mul(1 << doublings).min(MAX_DELAY);
        f.next_answer = f.next_answer.max(now) + delay;
        f.next_answer.duration_since(now)
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
    fn delay_doubles_per_address_serialises_and_resets_after_the_window() {
        let ms = Duration::from_millis;
        let t = LoginThrottle::new(ms(100));
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let now = Instant::now();
        // In turn (each answered before the next): 100, 200, 400 ms.
        assert_eq!(t.record(a, now), ms(100));
        assert_eq!(t.record(a, now + ms(100)), ms(200));
        assert_eq!(t.record(a, now + ms(300)), ms(400));
        assert_eq!(t.record(b, now), ms(100));
        // In parallel (all at once): each also waits for the answers before it.
        let p = LoginThrottle::new(ms(100));
        let waits: Vec<Duration> = (0..4).map(|_| p.record(a, now)).collect();
        assert_eq!(waits, [ms(100), ms(300), ms(700), ms(1500)]);
        // The delay stops growing, and a quiet minute forgets the address.
        let later = now + ms(100_000);
        let mut last = Duration::ZERO;
        for i in 0..40 {
            last = t.record(a, later + ms(i * 10_000));
        }
        assert_eq!(last, MAX_DELAY);
        assert_eq!(t.record(a, later + ms(1_000_000)), ms(100));
        assert_eq!(
            LoginThrottle::new(Duration::ZERO).record(a, now),
            Duration::ZERO
        );
    }
}
