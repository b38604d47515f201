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
use datafusion::logical_expr::Expr;
use lru::LruCache;
use tokio::sync::watch;

/// Most entries kept, whatever their bytes.
const MAX_ENTRIES: usize = 65_536;

/// What an entry costs besides its states (key, bookkeeping).
const ENTRY_BYTES: u64 = 256;

/// An aggregate's shape: what its states are computed from. Compared as expressions (never as
/// their text, which two different filters can share).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Shape {
    pub dims: Vec<Expr>,
    pub measures: Vec<Expr>,
    pub filters: Vec<Expr>,
    /// The states' time buckets (width, origin; µs).
    pub bucket: (i64, i64),
    /// The session's `TimeZone`, which functions of `ts` may read.
    pub zone: String,
}

/// One entry's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub tenant: String,
    pub shape: Arc<Shape>,
    pub segment: u64,
    /// Where the segment's file is (tier and object key).
    pub location: String,
}

/// What is kept for a key.
enum Kept {
    States(Arc<RecordBatch>),
    /// Its states were too large to keep: computed by each query, nobody waits for them.
    TooLarge,
}

/// A key some query is computing.
struct Pending {
    owner: usize,
    done: watch::Receiver<bool>,
}

struct Inner {
    kept: LruCache<Key, (Kept, u64)>,
    pending: HashMap<Key, Pending>,
    /// Pending keys per query.
    leases: HashMap<usize, usize>,
    bytes: u64,
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
    /// Compute it, unkept: this query computes it elsewhere in its plan, or it already leads
    /// other keys (waiting then could make two queries wait on each other), or its states are
    /// too large to keep.
    Unkept,
}

impl ResultCache {
    /// A cache of at most `max_bytes` of states (0: nothing is kept).
    pub fn new(max_bytes: u64) -> Arc<ResultCache> {
        Arc::new(ResultCache {
            max_bytes,
            inner: Mutex::new(Inner {
                kept: LruCache::unbounded(),
                pending: HashMap::new(),
                leases: HashMap::new(),
                bytes: 0,
            }),
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
        (inner.kept.len(), inner.bytes)
    }

    /// The states kept under `key`, if they are (never a lease).
    pub fn get(&self, key: &Key) -> Option<Arc<RecordBatch>> {
        match self.lock().kept.get(key) {
            Some((Kept::States(states), _)) => Some(states.clone()),
            _ => None,
        }
    }

    /// Looks `key` up for the query `owner`.
    pub fn lookup(self: &Arc<Self>, key: &Key, owner: usize) -> Lookup {
        let mut inner = self.lock();
        match inner.kept.get(key) {
            Some((Kept::States(states), _)) => return Lookup::Hit(states.clone()),
            Some((Kept::TooLarge, _)) => return Lookup::Unkept,
            None => {}
        }
        let leading = inner.leases.get(&owner).is_some_and(|n| *n > 0);
        match inner.pending.get(key) {
            Some(p) if p.owner == owner || leading => Lookup::Unkept,
            Some(p) => Lookup::Wait(p.done.clone()),
            None => {
                let (tx, rx) = watch::channel(false);
                inner
                    .pending
                    .insert(key.clone(), Pending { owner, done: rx });
                *inner.leases.entry(owner).or_default() += 1;
                Lookup::Lead(Lease {
                    cache: self.clone(),
                    key: Some(key.clone()),
                    owner,
                    done: tx,
                })
            }
        }
    }

    /// Ends `key`'s pending slot; keeps `states` under it (a marker when they are over an
    /// eighth of the cache), evicting the least recently used entries past the bounds.
    fn settle(&self, key: Key, owner: usize, states: Option<Arc<RecordBatch>>) {
        let mut inner = self.lock();
        inner.pending.remove(&key);
        if let Some(n) = inner.leases.get_mut(&owner) {
            *n -= 1;
            if *n == 0 {
                inner.leases.remove(&owner);
            }
        }
        let Some(states) = states else { return };
        let size = states.get_array_memory_size() as u64;
        let (kept, bytes) = if size > self.max_bytes / 8 {
            (Kept::TooLarge, ENTRY_BYTES)
        } else {
            (Kept::States(states), size + ENTRY_BYTES)
        };
        inner.bytes += bytes;
        if let Some((_, old)) = inner.kept.put(key, (kept, bytes)) {
            inner.bytes -= old;
        }
        while inner.bytes > self.max_bytes || inner.kept.len() > MAX_ENTRIES {
            let Some((_, (_, freed))) = inner.kept.pop_lru() else {
                break;
            };
            inner.bytes -= freed;
        }
    }
}

/// The right, and duty, to compute one entry. Dropped unfulfilled (the query failed or was
/// cancelled), its slot is freed and the waiting queries look again.
pub struct Lease {
    cache: Arc<ResultCache>,
    key: Option<Key>,
    owner: usize,
    done: watch::Sender<bool>,
}

impl Lease {
    /// Keeps the states computed for the lease's key and wakes the waiting queries.
    pub fn fulfil(mut self, states: Arc<RecordBatch>) {
        if let Some(key) = self.key.take() {
            self.cache.settle(key, self.owner, Some(states));
        }
        let _ = self.done.send(true);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.cache.settle(key, self.owner, None);
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
            shape: Arc::new(Shape {
                dims: vec![datafusion::logical_expr::col("service")],
                measures: Vec::new(),
                filters: Vec::new(),
                bucket: (60, 0),
                zone: "UTC".into(),
            }),
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
        assert!(matches!(cache.lookup(&key(1), 1), Lookup::Unkept));
        // A query that leads a key never waits for another's.
        let Lookup::Lead(other) = cache.lookup(&key(7), 3) else {
            panic!("leads")
        };
        assert!(matches!(cache.lookup(&key(1), 3), Lookup::Unkept));
        drop(other);
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
        let one = states(1000).get_array_memory_size() as u64 + ENTRY_BYTES;
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
    fn states_too_large_are_not_kept_and_nobody_waits_for_them() {
        let cache = ResultCache::new(8192);
        let Lookup::Lead(lease) = cache.lookup(&key(1), 1) else {
            panic!()
        };
        lease.fulfil(states(10_000));
        assert_eq!(cache.size(), (1, ENTRY_BYTES));
        assert!(matches!(cache.lookup(&key(1), 2), Lookup::Unkept));
    }

    #[test]
    fn shapes_are_compared_as_expressions_not_text() {
        use datafusion::logical_expr::{col, lit};
        let shape = |filters: Vec<Expr>| {
            Arc::new(Shape {
                dims: Vec::new(),
                measures: Vec::new(),
                filters,
                bucket: (60, 0),
                zone: "UTC".into(),
            })
        };
        // One filter whose literal spells two filters' text.
        let one = shape(vec![col("service").eq(lit("a\") ; host = Utf8(\"b"))]);
        let two = shape(vec![col("service").eq(lit("a")), col("host").eq(lit("b"))]);
        assert_ne!(one, two);
    }
}
