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
use datafusion::object_store::ObjectStoreExt;
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
    /// Requests that failed (after the client's own retries).
    pub errors: AtomicU64,
}

/// A copy of [`StoreCounters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StoreCount {
    pub gets: u64,
    pub get_bytes: u64,
    pub hits: u64,
    pub other: u64,
    pub errors: u64,
}

impl StoreCount {
    /// What happened between `earlier` and this.
    pub fn since(self, earlier: StoreCount) -> StoreCount {
        StoreCount {
            gets: self.gets.saturating_sub(earlier.gets),
            get_bytes: self.get_bytes.saturating_sub(earlier.get_bytes),
            hits: self.hits.saturating_sub(earlier.hits),
            other: self.other.saturating_sub(earlier.other),
            errors: self.errors.saturating_sub(earlier.errors),
        }
    }
}

/// Bytes of one cached block: reads are rounded out to whole blocks.
pub const BLOCK: u64 = 512 * 1024;

/// An object and the number of one of its blocks.
type RangeKey = (Path, u64);

/// Cached blocks and the bytes they hold; the size of each object read.
struct Ranges {
    lru: LruCache<RangeKey, Bytes>,
    bytes: u64,
    sizes: std::collections::HashMap<Path, u64>,
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
                sizes: Default::default(),
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
            errors: c.errors.load(Ordering::Relaxed),
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
        ranges.sizes.remove(location);
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
        if len == 0 || len > self.capacity {
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

    /// `r`, counted among the errors when it is one.
    fn counted<T>(&self, r: Result<T>) -> Result<T> {
        if r.is_err() {
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// The size of the object at `location` (a HEAD the first time, remembered after).
    async fn size(&self, location: &Path) -> Result<u64> {
        if let Some(&n) = self.lock().sizes.get(location) {
            return Ok(n);
        }
        self.other();
        let meta = self.counted(self.inner.head(location).await)?;
        self.lock().sizes.insert(location.clone(), meta.size);
        Ok(meta.size)
    }

    /// `range` of `location`, read in aligned blocks of [`BLOCK`] bytes: those cached are not
    /// fetched again, and each run of missing ones is one GET. Blocks rather than the exact
    /// ranges asked for, so that reads near one another (the pages around successive
    /// `nearest()` targets, the column chunks of one row group) share what was fetched.
    async fn range(&self, location: &Path, range: Range<u64>) -> Result<Bytes> {
        if range.start >= range.end {
            return Ok(Bytes::new());
        }
        let size = self.size(location).await?;
        let end = range.end.min(size);
        if range.start >= end {
            return Ok(Bytes::new());
        }
        let (first, last) = (range.start / BLOCK, (end - 1) / BLOCK);
        let mut blocks: Vec<Option<Bytes>> = (first..=last)
            .map(|b| self.cached(&(location.clone(), b)))
            .collect();
        let mut b = 0;
        while b < blocks.len() {
            if blocks[b].is_some() {
                b += 1;
                continue;
            }
            let run_start = b;
            while b < blocks.len() && blocks[b].is_none() {
                b += 1;
            }
            let from = (first + run_start as u64) * BLOCK;
            let to = ((first + b as u64) * BLOCK).min(size);
            let opts = GetOptions {
                range: Some(GetRange::Bounded(from..to)),
                ..GetOptions::default()
            };
            let got = match self.inner.get_opts(location, opts).await {
                Ok(got) => got.bytes().await,
                Err(e) => Err(e),
            };
            let bytes = self.counted(got)?;
            self.fetched(bytes.len() as u64);
            if bytes.len() as u64 != to - from {
                return Err(datafusion::object_store::Error::Generic {
                    store: "cold",
                    source: format!(
                        "{location}: asked for bytes {from}..{to}, got {}",
                        bytes.len()
                    )
                    .into(),
                });
            }
            for (i, slot) in blocks[run_start..b].iter_mut().enumerate() {
                let lo = (i as u64 * BLOCK) as usize;
                let hi = (lo + BLOCK as usize).min(bytes.len());
                let block = bytes.slice(lo.min(hi)..hi);
                self.keep(
                    (location.clone(), first + run_start as u64 + i as u64),
                    &block,
                );
                *slot = Some(block);
            }
        }
        let offset = (range.start - first * BLOCK) as usize;
        let len = (end - range.start) as usize;
        if let [Some(one)] = blocks.as_slice() {
            let end = (offset + len).min(one.len());
            return Ok(one.slice(offset.min(end)..end));
        }
        let mut out = bytes::BytesMut::with_capacity(blocks.len() * BLOCK as usize);
        for block in blocks.into_iter().flatten() {
            out.extend_from_slice(&block);
        }
        let out = out.freeze();
        Ok(out.slice(offset.min(out.len())..(offset + len).min(out.len())))
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
        let put = self.inner.put_opts(location, payload, opts).await;
        self.counted(put)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.other();
        let started = self.inner.put_multipart_opts(location, opts).await;
        self.counted(started)
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
            let head = self.inner.get_opts(location, options).await;
            return self.counted(head);
        }
        let result = self.counted(self.inner.get_opts(location, options).await)?;
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
        let listed = self.inner.list_with_delimiter(prefix).await;
        self.counted(listed)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.other();
        let copied = self.inner.copy_opts(from, to, options).await;
        self.counted(copied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::object_store::memory::InMemory;

    #[tokio::test]
    async fn reads_go_by_cached_blocks_and_the_cache_stays_within_its_bytes() {
        let inner = Arc::new(InMemory::new());
        let path = Path::from("segments/a.parquet");
        let object: Vec<u8> = (0..(3 * BLOCK + 100)).map(|i| (i % 251) as u8).collect();
        inner
            .put(&path, PutPayload::from(object.clone()))
            .await
            .expect("put");
        let store = CachedStore::new(inner, 2 * BLOCK);
        let want = |r: Range<u64>| Bytes::from(object[r.start as usize..r.end as usize].to_vec());
        // One GET brings the block; a read near it is answered from the cache.
        assert_eq!(
            store.get_range(&path, 10..100).await.expect("get"),
            want(10..100)
        );
        assert_eq!(
            store.get_range(&path, 5000..9000).await.expect("get"),
            want(5000..9000)
        );
        assert_eq!((store.count().gets, store.count().hits), (1, 1));
        // A read across blocks fetches only the missing run, in one GET.
        let across = BLOCK - 10..2 * BLOCK + 10;
        assert_eq!(
            store.get_range(&path, across.clone()).await.expect("get"),
            want(across)
        );
        assert_eq!(store.count().gets, 2);
        assert!(
            store.cached_bytes() <= 2 * BLOCK,
            "{}",
            store.cached_bytes()
        );
        // The last block is short; a range past the end stops at it.
        let tail = 3 * BLOCK..3 * BLOCK + 100;
        assert_eq!(
            store.get_range(&path, tail.clone()).await.expect("get"),
            want(tail)
        );
        let many = store
            .get_ranges(&path, &[0..10, 3 * BLOCK + 90..3 * BLOCK + 100])
            .await
            .expect("ranges");
        assert_eq!(
            many,
            vec![want(0..10), want(3 * BLOCK + 90..3 * BLOCK + 100)]
        );
        store.forget(&path);
        assert_eq!(store.cached_bytes(), 0);
    }
}
