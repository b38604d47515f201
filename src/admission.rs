//! Which client connections a listener admits: a total cap and a cap per client address, each
//! held by a [`Permit`] for the connection's life, so no one client can use up the server's
//! sockets and file descriptors.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// File descriptors kept for the server's own files (WAL, segments, sidecars, the other
/// listener) when connection caps are fitted to the process's descriptor limit.
const RESERVED_FDS: u64 = 512;

/// Connection caps of one listener.
#[derive(Debug)]
pub struct Admission {
    max_total: usize,
    max_per_address: usize,
    open: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
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

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Permit {
    admission: Arc<Admission>,
    address: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.admission.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_address.get_mut(&self.address) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

impl Admission {
    /// Caps of `max_total` connections, `max_per_address` of them from one address (each at
    /// least 1).
    pub fn new(max_total: usize, max_per_address: usize) -> Arc<Admission> {
        Arc::new(Admission {
            max_total: max_total.max(1),
            max_per_address: max_per_address.clamp(1, max_total.max(1)),
            open: Mutex::new(Counts::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for a connection from `address`, or why there is none.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Result<Permit, Refused> {
        let address = client_key(address);
        let mut open = self.lock();
        if open.total >= self.max_total {
            return Err(Refused::Total {
                max: self.max_total,
            });
        }
        let mine = open.by_address.entry(address).or_insert(0);
        if *mine >= self.max_per_address {
            return Err(Refused::PerAddress {
                max: self.max_per_address,
            });
        }
        *mine += 1;
        open.total += 1;
        Ok(Permit {
            admission: self.clone(),
            address,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().total
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
        let a = Admission::new(3, 2);
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
        let caps = Admission::new(10, 1);
        let _held = caps.admit(a).unwrap();
        assert!(caps.admit(b).is_err());
        assert!(caps.admit(c).is_ok());
    }
}
