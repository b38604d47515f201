//! The result cache: the partial aggregate states one repeated aggregate (a dashboard panel's
//! query) computed over one immutable segment, kept in memory so the next refresh reads them
//! instead of the segment. The hot buffer, and segments only partly inside the query's time
//! range, are always recomputed ([`super::rollup`] plans which is which).
//!
//! An entry is keyed by the tenant, the aggregate's shape (groups, aggregates, filters other
//! than the `ts` range) and the segment's id and location: compaction and retention replace or
//! remove segments, a move changes the location, and late rows reach new segments, so none of
//! them can make an entry answer for rows it did not see. Bounded in bytes, least recently used
//! out first. Concurrent identical misses compute once: the first query takes a [`Lease`] and
//! the others wait for its states (or take the lease over if it fails or is cancelled).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use datafusion::arrow::record_batch::RecordBatch;
use tokio::sync::watch;

/// Most entries kept, whatever their bytes.
const MAX_ENTRIES: usize = 65_536;

/// One entry's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub tenant: String,
    /// The aggregate's shape, canonical text.
    pub shape: Arc<str>,
    pub segment: u64,
    /// Where the segment's file is (tier and object key).
    pub location: String,
}

enum Slot {
    Ready {
        states: Arc<RecordBatch>,
        bytes: u64,
        used: u64,
    },
    /// A query is computing it; `owner` names that query.
    Pending {
        owner: usize,
        done: watch::Receiver<bool>,
    },
}

#[derive(Default)]
struct Inner {
    slots: HashMap<Key, Slot>,
    bytes: u64,
    tick: u64,
}

/// The cache; see the module docs.
pub struct ResultCache {
    max_bytes: u64,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for ResultCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (entries, bytes) = self.size();
        write!(
            f,
            "ResultCache({entries} entries, {bytes} of {} bytes)",
            self.max_bytes
        )
    }
}

/// What a lookup found.
pub enum Lookup {
    Hit(Arc<RecordBatch>),
    /// Another query is computing it: wait, then look again.
    Wait(watch::Receiver<bool>),
    /// Nobody has it: compute it, and [`Lease::fulfil`] the lease with the states.
    Lead(Lease),
    /// This same query is computing it elsewhere in its plan: compute it again, unkept.
    Own,
}

impl ResultCache {
    /// A cache of at most `max_bytes` of states (0: nothing is kept).
    pub fn new(max_bytes: u64) -> Arc<ResultCache> {
        Arc::new(ResultCache {
            max_bytes,
            inner: Mutex::new(Inner::default()),
        })
    }

    pub fn enabled(&self) -> bool {
        self.max_bytes > 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Entries and bytes held.
    pub fn size(&self) -> (usize, u64) {
        let inner = self.lock();
        (inner.slots.len(), inner.bytes)
    }

    /// The states kept under `key`, if they are (never a lease).
    pub fn get(&self, key: &Key) -> Option<Arc<RecordBatch>> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        match inner.slots.get_mut(key) {
            Some(Slot::Ready { states, used, .. }) => {
                *used = tick;
                Some(states.clone())
            }
            _ => None,
        }
    }

    /// Looks `key` up for the query `owner`.
    pub fn lookup(self: &Arc<Self>, key: &Key, owner: usize) -> Lookup {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        match inner.slots.get_mut(key) {
            Some(Slot::Ready { states, used, .. }) => {
                *used = tick;
                Lookup::Hit(states.clone())
            }
            Some(Slot::Pending { owner: o, .. }) if *o == owner => Lookup::Own,
            Some(Slot::Pending { done, .. }) => Lookup::Wait(done.clone()),
            None => {
                let (tx, rx) = watch::channel(false);
                inner
                    .slots
                    .insert(key.clone(), Slot::Pending { owner, done: rx });
                Lookup::Lead(Lease {
                    cache: self.clone(),
                    key: Some(key.clone()),
                    done: tx,
                })
            }
        }
    }

    /// Keeps `states` under `key` (replacing its pending slot), evicting the least recently
    /// used entries past the bounds. States over an eighth of the cache are not kept.
    fn keep(&self, key: Key, states: Arc<RecordBatch>) {
        let bytes = states.get_array_memory_size() as u64 + key.shape.len() as u64 + 64;
        let mut inner = self.lock();
        if bytes > self.max_bytes / 8 {
            inner.slots.remove(&key);
            return;
        }
        inner.tick += 1;
        let used = inner.tick;
        inner.bytes += bytes;
        inner.slots.insert(
            key,
            Slot::Ready {
                states,
                bytes,
                used,
            },
        );
        while inner.bytes > self.max_bytes || inner.slots.len() > MAX_ENTRIES {
            let oldest = inner
                .slots
                .iter()
                .filter_map(|(k, s)| match s {
                    Slot::Ready { used, bytes, .. } => Some((*used, *bytes, k)),
                    Slot::Pending { .. } => None,
                })
                .min_by_key(|(used, _, _)| *used)
                .map(|(_, bytes, k)| (bytes, k.clone()));
            let Some((freed, k)) = oldest else { break };
            inner.slots.remove(&k);
            inner.bytes -= freed;
        }
    }

    /// Forgets a pending slot whose lease was dropped unfulfilled.
    fn abandon(&self, key: &Key) {
        let mut inner = self.lock();
        if matches!(inner.slots.get(key), Some(Slot::Pending { .. })) {
            inner.slots.remove(key);
        }
    }
}

/// The right, and duty, to compute one entry. Dropped unfulfilled (the query failed or was
/// cancelled), its slot is freed and the waiting queries look again.
pub struct Lease {
    cache: Arc<ResultCache>,
    key: Option<Key>,
    done: watch::Sender<bool>,
}

impl Lease {
    /// Keeps the states computed for the lease's key and wakes the waiting queries.
    pub fn fulfil(mut self, states: Arc<RecordBatch>) {
        if let Some(key) = self.key.take() {
            self.cache.keep(key, states);
        }
        let _ = self.done.send(true);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.cache.abandon(&key);
            let _ = self.done.send(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;

    fn key(segment: u64) -> Key {
        Key {
            tenant: "t".into(),
            shape: "count(*)".into(),
            segment,
            location: "warm/x".into(),
        }
    }

    fn states(n: usize) -> Arc<RecordBatch> {
        let column = Arc::new(Int64Array::from(vec![1i64; n]));
        Arc::new(RecordBatch::try_from_iter([("n", column as _)]).unwrap())
    }

    #[test]
    fn a_lease_fulfilled_is_a_hit_and_a_lease_dropped_frees_the_slot() {
        let cache = ResultCache::new(1 << 20);
        let Lookup::Lead(lease) = cache.lookup(&key(1), 1) else {
            panic!("first lookup leads")
        };
        assert!(matches!(cache.lookup(&key(1), 2), Lookup::Wait(_)));
        assert!(matches!(cache.lookup(&key(1), 1), Lookup::Own));
        lease.fulfil(states(3));
        let Lookup::Hit(s) = cache.lookup(&key(1), 2) else {
            panic!("fulfilled is a hit")
        };
        assert_eq!(s.num_rows(), 3);

        let Lookup::Lead(lease) = cache.lookup(&key(2), 1) else {
            panic!("another segment leads")
        };
        let Lookup::Wait(mut done) = cache.lookup(&key(2), 2) else {
            panic!("waits")
        };
        drop(lease);
        assert!(*done.borrow_and_update());
        assert!(matches!(cache.lookup(&key(2), 2), Lookup::Lead(_)));
    }

    #[test]
    fn the_least_recently_used_go_first_and_the_bytes_stay_bounded() {
        let one = states(1000).get_array_memory_size() as u64 + 100;
        let cache = ResultCache::new(one * 8 * 3 / 2 * 2);
        for s in 0..40 {
            if let Lookup::Lead(l) = cache.lookup(&key(s), 1) {
                l.fulfil(states(1000));
            }
            // Segment 0 stays in use.
            assert!(matches!(cache.lookup(&key(0), 1), Lookup::Hit(_)));
        }
        let (entries, bytes) = cache.size();
        assert!(bytes <= cache.max_bytes, "{bytes} > {}", cache.max_bytes);
        assert!(entries < 40);
        assert!(matches!(cache.lookup(&key(39), 1), Lookup::Hit(_)));
        assert!(matches!(cache.lookup(&key(1), 1), Lookup::Lead(_)));
    }

    #[test]
    fn states_too_large_are_not_kept() {
        let cache = ResultCache::new(1024);
        let Lookup::Lead(lease) = cache.lookup(&key(1), 1) else {
            panic!()
        };
        lease.fulfil(states(10_000));
        assert_eq!(cache.size(), (0, 0));
    }
}
