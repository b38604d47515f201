//! [`CachedStore`]: the cold tier's object store as queries read it — byte ranges kept in a
//! least-recently-used cache within `--cache-bytes`, and every request to the store counted,
//! so a repeated read of cold data costs no GET and `EXPLAIN ANALYZE` can say how many it made.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::object_store::path::Path;
use datafusion::object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use futures::stream::BoxStream;
use lru::LruCache;

/// Requests the cold store has served, and reads the cache saved it (since the server started).
#[derive(Debug, Default)]
pub struct StoreCounters {
    /// GET requests sent to the object store (whole objects or ranges).
    pub gets: AtomicU64,
    /// Bytes those GETs returned.
    pub get_bytes: AtomicU64,
    /// Range reads answered from the cache.
    pub hits: AtomicU64,
    /// PUT, HEAD, LIST and DELETE requests.
    pub other: AtomicU64,
}

/// A copy of [`StoreCounters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StoreCount {
    pub gets: u64,
    pub get_bytes: u64,
    pub hits: u64,
    pub other: u64,
}

impl StoreCount {
    /// What happened between `earlier` and this.
    pub fn since(self, earlier: StoreCount) -> StoreCount {
        StoreCount {
            gets: self.gets.saturating_sub(earlier.gets),
            get_bytes: self.get_bytes.saturating_sub(earlier.get_bytes),
            hits: self.hits.saturating_sub(earlier.hits),
            other: self.other.saturating_sub(earlier.other),
        }
    }
}

type RangeKey = (Path, u64, u64);

/// Cached ranges and the bytes they hold.
struct Ranges {
    lru: LruCache<RangeKey, Bytes>,
    bytes: u64,
}

/// An object store whose range reads are cached in memory (objects are immutable: a key is
/// never rewritten with other bytes, so a cached range never goes stale).
pub struct CachedStore {
    inner: Arc<dyn ObjectStore>,
    ranges: Mutex<Ranges>,
    capacity: u64,
    pub counters: StoreCounters,
}

impl fmt::Debug for CachedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CachedStore({}, {} bytes)", self.inner, self.capacity)
    }
}

impl fmt::Display for CachedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cached({})", self.inner)
    }
}

impl CachedStore {
    /// `inner` with a cache of up to `capacity` bytes of ranges (0: no cache).
    pub fn new(inner: Arc<dyn ObjectStore>, capacity: u64) -> CachedStore {
        CachedStore {
            inner,
            ranges: Mutex::new(Ranges {
                lru: LruCache::unbounded(),
                bytes: 0,
            }),
            capacity,
            counters: StoreCounters::default(),
        }
    }

    /// The store without the cache (uploads, listings and deletes of the tier manager).
    pub fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    /// The counters now.
    pub fn count(&self) -> StoreCount {
        let c = &self.counters;
        StoreCount {
            gets: c.gets.load(Ordering::Relaxed),
            get_bytes: c.get_bytes.load(Ordering::Relaxed),
            hits: c.hits.load(Ordering::Relaxed),
            other: c.other.load(Ordering::Relaxed),
        }
    }

    /// Bytes the cache holds now.
    pub fn cached_bytes(&self) -> u64 {
        self.lock().bytes
    }

    /// Drops every cached range of `location` (its object was deleted).
    pub fn forget(&self, location: &Path) {
        let mut ranges = self.lock();
        let keys: Vec<RangeKey> = ranges
            .lru
            .iter()
            .filter(|(k, _)| &k.0 == location)
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            if let Some(b) = ranges.lru.pop(&k) {
                ranges.bytes -= b.len() as u64;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ranges> {
        self.ranges.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cached(&self, key: &RangeKey) -> Option<Bytes> {
        let hit = self.lock().lru.get(key).cloned();
        if hit.is_some() {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    fn keep(&self, key: RangeKey, bytes: &Bytes) {
        let len = bytes.len() as u64;
        if len == 0 || len > self.capacity / 4 {
            return;
        }
        let mut ranges = self.lock();
        if let Some(old) = ranges.lru.put(key, bytes.clone()) {
            ranges.bytes -= old.len() as u64;
        }
        ranges.bytes += len;
        while ranges.bytes > self.capacity {
            match ranges.lru.pop_lru() {
                Some((_, b)) => ranges.bytes -= b.len() as u64,
                None => break,
            }
        }
    }

    fn fetched(&self, bytes: u64) {
        self.counters.gets.fetch_add(1, Ordering::Relaxed);
        self.counters.get_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn other(&self) {
        self.counters.other.fetch_add(1, Ordering::Relaxed);
    }

    async fn range(&self, location: &Path, range: Range<u64>) -> Result<Bytes> {
        let key = (location.clone(), range.start, range.end);
        if let Some(b) = self.cached(&key) {
            return Ok(b);
        }
        let opts = GetOptions {
            range: Some(GetRange::Bounded(range)),
            ..GetOptions::default()
        };
        let bytes = self.inner.get_opts(location, opts).await?.bytes().await?;
        self.fetched(bytes.len() as u64);
        self.keep(key, &bytes);
        Ok(bytes)
    }
}

#[async_trait]
impl ObjectStore for CachedStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.other();
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.other();
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let plain = options.if_match.is_none()
            && options.if_none_match.is_none()
            && options.if_modified_since.is_none()
            && options.if_unmodified_since.is_none()
            && options.version.is_none()
            && !options.head;
        if let (true, Some(GetRange::Bounded(range))) = (plain, &options.range) {
            // A range read: through the cache, answered as a GET of that range would be.
            let range = range.clone();
            let meta = ObjectMeta {
                location: location.clone(),
                last_modified: chrono::DateTime::<chrono::Utc>::MIN_UTC,
                size: range.end,
                e_tag: None,
                version: None,
            };
            let bytes = self.range(location, range.clone()).await?;
            let range = range.start..range.start + bytes.len() as u64;
            let stream = futures::stream::once(async move { Ok(bytes) });
            return Ok(GetResult {
                payload: GetResultPayload::Stream(Box::pin(stream)),
                meta,
                range,
                attributes: Default::default(),
            });
        }
        if options.head {
            self.other();
            return self.inner.get_opts(location, options).await;
        }
        let result = self.inner.get_opts(location, options).await?;
        self.fetched(result.range.end - result.range.start);
        Ok(result)
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let mut out = Vec::with_capacity(ranges.len());
        for r in ranges {
            out.push(self.range(location, r.clone()).await?);
        }
        Ok(out)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.other();
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.other();
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.other();
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.other();
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::object_store::memory::InMemory;
    use datafusion::object_store::ObjectStoreExt;

    #[tokio::test]
    async fn a_repeated_range_read_costs_no_get_and_the_cache_stays_within_its_bytes() {
        let inner = Arc::new(InMemory::new());
        let path = Path::from("segments/a.parquet");
        inner
            .put(&path, PutPayload::from(vec![7u8; 1000]))
            .await
            .expect("put");
        let store = CachedStore::new(inner, 400);
        let first = store.get_range(&path, 0..100).await.expect("get");
        let again = store.get_range(&path, 0..100).await.expect("get");
        assert_eq!(first, again);
        assert_eq!((store.count().gets, store.count().hits), (1, 1));
        // Ranges beyond the capacity push out the least recently used.
        for i in 1..6 {
            store
                .get_range(&path, i * 100..i * 100 + 90)
                .await
                .expect("get");
        }
        assert!(store.cached_bytes() <= 400, "{}", store.cached_bytes());
        store.get_range(&path, 0..100).await.expect("get");
        assert_eq!(store.count().gets, 7, "the first range was evicted");
        let many = store
            .get_ranges(&path, &[500..590, 0..100])
            .await
            .expect("ranges");
        assert_eq!(many[1].len(), 100);
        store.forget(&path);
        assert_eq!(store.cached_bytes(), 0);
    }
}
