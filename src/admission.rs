//! Which client connections a listener admits: a total cap and a cap per client address, each
//! held by a [`Permit`] for the connection's life, so no one client can use up the server's
//! sockets and file descriptors. A listener whose connections may sit idle (logins, gRPC,
//! syslog, HTTP keep-alive) admits a newcomer past a cap by closing its idlest connection
//! instead of refusing it ([`Full::EvictIdlest`]): idle sockets, however many, never lock
//! out a client that comes to do something.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// File descriptors kept for the server's own files (WAL, segments, sidecars, the other
/// listener) when connection caps are fitted to the process's descriptor limit.
const RESERVED_FDS: u64 = 512;

/// Evictions and refusals are logged at most this often per listener (they are counted always).
const WARN_EVERY: Duration = Duration::from_secs(10);

/// What a listener does with a newcomer when a cap is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// Refuse it (the client is told, e.g. FATAL 53300 or 503).
    Refuse,
    /// Close the idlest connection that is not busy (of the same address when the address's
    /// cap is reached): unsettled ones first, then the least recently active; refuse only when
    /// every one is busy.
    EvictIdlest,
}

/// Connection caps of one listener.
#[derive(Debug)]
pub struct Admission {
    name: &'static str,
    max_total: usize,
    max_per_address: usize,
    full: Full,
    epoch: Instant,
    open: Mutex<Counts>,
    refused: AtomicU64,
    evicted: AtomicU64,
    /// Milliseconds since `epoch` of the last warning about refusals or evictions.
    last_warning: AtomicU64,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
    /// Every admitted connection still counted, by id.
    slots: HashMap<u64, Arc<Slot>>,
    next_id: u64,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The listener has `max` connections open.
    Total { max: usize },
    /// This address has `max` connections open.
    PerAddress { max: usize },
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Total { max } => write!(f, "too many connections ({max} open)"),
            Refused::PerAddress { max } => {
                write!(f, "too many connections from this address ({max} open)")
            }
        }
    }
}

/// A listener's connection figures, for `/ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub open: usize,
    pub max: usize,
    /// Newcomers refused since the start.
    pub refused: u64,
    /// Idle connections closed to admit newcomers since the start.
    pub evicted: u64,
}

/// What a listener knows of one admitted connection, shared with the connection's task.
#[derive(Debug)]
struct Slot {
    id: u64,
    address: IpAddr,
    /// Milliseconds since the admission's epoch of the connection's last activity.
    last_active: AtomicU64,
    /// Requests (or responses) in progress: a busy connection is never evicted.
    busy: AtomicUsize,
    /// The client has shown it is a real one (logged in, sent an authenticated request).
    settled: AtomicBool,
    evict: CancellationToken,
}

/// A connection's handle on its slot: it reports activity and learns of its eviction.
#[derive(Debug, Clone)]
pub struct Activity {
    slot: Arc<Slot>,
    epoch: Instant,
}

impl Activity {
    /// The connection did something (read a message, finished a request).
    pub fn touch(&self) {
        let now = millis_since(self.epoch);
        self.slot.last_active.store(now, Ordering::Relaxed);
    }

    /// The client has authenticated: its connection is evicted only after unsettled ones.
    pub fn settle(&self) {
        self.slot.settled.store(true, Ordering::Relaxed);
        self.touch();
    }

    pub fn is_settled(&self) -> bool {
        self.slot.settled.load(Ordering::Relaxed)
    }

    /// Marks the connection busy until the guard is dropped.
    pub fn busy(&self) -> Busy {
        self.slot.busy.fetch_add(1, Ordering::Relaxed);
        self.touch();
        Busy {
            activity: self.clone(),
        }
    }

    /// Resolves when the listener closes this connection to admit another.
    pub fn evicted(&self) -> WaitForCancellationFutureOwned {
        self.slot.evict.clone().cancelled_owned()
    }

    pub fn is_evicted(&self) -> bool {
        self.slot.evict.is_cancelled()
    }
}

/// A connection is busy while this lives.
#[derive(Debug)]
pub struct Busy {
    activity: Activity,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.activity.slot.busy.fetch_sub(1, Ordering::Relaxed);
        self.activity.touch();
    }
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Permit {
    admission: Arc<Admission>,
    activity: Activity,
}

impl Permit {
    /// The connection's activity handle.
    pub fn activity(&self) -> &Activity {
        &self.activity
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.admission.lock();
        // An evicted connection's place was freed when it was evicted.
        if open.slots.remove(&self.activity.slot.id).is_some() {
            open.release(self.activity.slot.address);
        }
    }
}

impl Counts {
    fn release(&mut self, address: IpAddr) {
        self.total = self.total.saturating_sub(1);
        if let Some(n) = self.by_address.get_mut(&address) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.by_address.remove(&address);
            }
        }
    }

    /// The idlest connection not busy (of `address`, when given): unsettled before settled,
    /// then the least recently active, then the oldest.
    fn idlest(&self, address: Option<IpAddr>) -> Option<u64> {
        self.slots
            .values()
            .filter(|s| address.is_none_or(|a| s.address == a))
            .filter(|s| s.busy.load(Ordering::Relaxed) == 0)
            .min_by_key(|s| {
                (
                    s.settled.load(Ordering::Relaxed),
                    s.last_active.load(Ordering::Relaxed),
                    s.id,
                )
            })
            .map(|s| s.id)
    }

    /// Frees the place of connection `id` and tells it to close.
    fn evict(&mut self, id: u64) {
        if let Some(slot) = self.slots.remove(&id) {
            self.release(slot.address);
            slot.evict.cancel();
        }
    }
}

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Admission {
    /// Caps of `max_total` connections, `max_per_address` of them from one address (each at
    /// least 1); `full` says what happens past them. `name` names the listener in logs.
    pub fn new(
        name: &'static str,
        max_total: usize,
        max_per_address: usize,
        full: Full,
    ) -> Arc<Admission> {
        Arc::new(Admission {
            name,
            max_total: max_total.max(1),
            max_per_address: max_per_address.clamp(1, max_total.max(1)),
            full,
            epoch: Instant::now(),
            open: Mutex::new(Counts::default()),
            refused: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            last_warning: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for a connection from `address` (made by evicting the idlest connection when
    /// the listener evicts), or why there is none.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Result<Permit, Refused> {
        let address = client_key(address);
        let mut open = self.lock();
        let mut evicted = false;
        if open.by_address.get(&address).copied().unwrap_or(0) >= self.max_per_address {
            let victim = match self.full {
                Full::Refuse => None,
                Full::EvictIdlest => open.idlest(Some(address)),
            };
            let Some(victim) = victim else {
                drop(open);
                return Err(self.refuse(Refused::PerAddress {
                    max: self.max_per_address,
                }));
            };
            open.evict(victim);
            evicted = true;
        }
        if open.total >= self.max_total {
            let victim = match self.full {
                Full::Refuse => None,
                Full::EvictIdlest => open.idlest(None),
            };
            let Some(victim) = victim else {
                drop(open);
                return Err(self.refuse(Refused::Total {
                    max: self.max_total,
                }));
            };
            open.evict(victim);
            evicted = true;
        }
        open.next_id += 1;
        let slot = Arc::new(Slot {
            id: open.next_id,
            address,
            last_active: AtomicU64::new(millis_since(self.epoch)),
            busy: AtomicUsize::new(0),
            settled: AtomicBool::new(false),
            evict: CancellationToken::new(),
        });
        open.slots.insert(slot.id, slot.clone());
        *open.by_address.entry(address).or_insert(0) += 1;
        open.total += 1;
        drop(open);
        if evicted {
            self.evicted.fetch_add(1, Ordering::Relaxed);
            self.warn("closed the idlest connection to admit a new one");
        }
        Ok(Permit {
            admission: self.clone(),
            activity: Activity {
                slot,
                epoch: self.epoch,
            },
        })
    }

    fn refuse(&self, why: Refused) -> Refused {
        self.refused.fetch_add(1, Ordering::Relaxed);
        self.warn("refused a connection");
        why
    }

    /// Logs a cap being hit, at most once per [`WARN_EVERY`], with the counts so far.
    fn warn(&self, what: &str) {
        let now = millis_since(self.epoch).max(1);
        let last = self.last_warning.load(Ordering::Relaxed);
        let every = u64::try_from(WARN_EVERY.as_millis()).unwrap_or(u64::MAX);
        if last != 0 && now.saturating_sub(last) < every {
            return;
        }
        if self
            .last_warning
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let s = self.stats();
        tracing::warn!(
            listener = self.name,
            open = s.open,
            max = s.max,
            refused = s.refused,
            evicted = s.evicted,
            "{} connections at their cap: {what}",
            self.name
        );
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().total
    }

    /// The listener's figures.
    pub fn stats(&self) -> Stats {
        Stats {
            open: self.open(),
            max: self.max_total,
            refused: self.refused.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// The address a client is counted under: an IPv6 client by its /64 (one host or site holds
/// a whole /64, so counting single addresses would let it rotate past every cap), an
/// IPv4-mapped one as its IPv4 address.
pub fn client_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

/// Raises the soft limit of open files to the hard one and returns how many connections, in
/// all listeners together, fit under it with [`RESERVED_FDS`] left for the server's files.
pub fn connection_budget() -> usize {
    let (soft, hard) = match rlimit::Resource::NOFILE.get() {
        Ok(limits) => limits,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-files limit");
            return usize::MAX;
        }
    };
    let limit = match rlimit::increase_nofile_limit(hard) {
        Ok(raised) => raised,
        Err(e) => {
            tracing::warn!(error = %e, soft, "cannot raise the open-files limit");
            soft
        }
    };
    usize::try_from(limit.saturating_sub(RESERVED_FDS).max(16)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_per_address_and_in_total_and_free_on_drop() {
        let a = Admission::new("test", 3, 2, Full::Refuse);
        let one: IpAddr = [127, 0, 0, 1].into();
        let two: IpAddr = [127, 0, 0, 2].into();
        let p1 = a.admit(one).unwrap();
        let _p2 = a.admit(one).unwrap();
        assert_eq!(a.admit(one).unwrap_err(), Refused::PerAddress { max: 2 });
        let _p3 = a.admit(two).unwrap();
        assert_eq!(a.admit(two).unwrap_err(), Refused::Total { max: 3 });
        drop(p1);
        assert_eq!(a.open(), 2);
        let _p4 = a.admit(one).unwrap();
        assert_eq!(a.open(), 3);
        assert_eq!(a.stats().refused, 2);
    }

    #[test]
    fn a_full_evicting_listener_closes_its_idlest_connection_not_the_newcomer() {
        let a = Admission::new("test", 3, 2, Full::EvictIdlest);
        let one: IpAddr = [127, 0, 0, 1].into();
        let two: IpAddr = [127, 0, 0, 2].into();
        let three: IpAddr = [127, 0, 0, 3].into();
        let first = a.admit(one).unwrap();
        let settled = a.admit(two).unwrap();
        settled.activity().settle();
        let busy = a.admit(three).unwrap();
        let _working = busy.activity().busy();
        // Full: the unsettled, idle one goes, though the settled one is as old.
        let fourth = a.admit(three).unwrap();
        assert!(first.activity().is_evicted());
        assert!(!settled.activity().is_evicted() && !busy.activity().is_evicted());
        assert_eq!((a.open(), a.stats().evicted), (3, 1));
        // Dropping an evicted permit frees nothing twice.
        drop(first);
        assert_eq!(a.open(), 3);
        // An address at its own cap evicts its own idlest, never another's.
        let fifth = a.admit(three).unwrap();
        assert!(fourth.activity().is_evicted());
        assert!(!settled.activity().is_evicted());
        assert!(!busy.activity().is_evicted(), "busy connections stay");
        assert_eq!(a.open(), 3);
        drop(fifth);
        // Every connection busy: the newcomer is refused, and counted.
        let all_busy = Admission::new("test", 1, 1, Full::EvictIdlest);
        let held = all_busy.admit(one).unwrap();
        let _guard = held.activity().busy();
        assert!(all_busy.admit(two).is_err());
        assert_eq!(all_busy.stats().refused, 1);
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(client_key(mapped), IpAddr::from([10, 1, 2, 3]));
        let caps = Admission::new("test", 10, 1, Full::Refuse);
        let _held = caps.admit(a).unwrap();
        assert!(caps.admit(b).is_err());
        assert!(caps.admit(c).is_ok());
    }
}
