//! [`RemoteFile`]: an object read by byte ranges from blocking code, as Parquet's synchronous
//! reader asks for them (`nearest()` decodes a few pages of a cold segment this way, each a
//! ranged GET through the cache).

use std::sync::Arc;

use bytes::{Buf, Bytes};
use datafusion::object_store::path::Path as ObjectPath;
use datafusion::object_store::{ObjectStore, ObjectStoreExt};
use datafusion::parquet::errors::{ParquetError, Result};
use datafusion::parquet::file::reader::{ChunkReader, Length};

/// An object of known size in a store, read from a thread that may block (never an async
/// worker: each read waits on the runtime `rt`).
#[derive(Debug, Clone)]
pub struct RemoteFile {
    pub store: Arc<dyn ObjectStore>,
    pub key: ObjectPath,
    pub size: u64,
    pub rt: tokio::runtime::Handle,
    /// The last read's failure, kept whole: Parquet's reader passes it on only as text.
    pub failed: Arc<std::sync::Mutex<Option<String>>>,
}

impl RemoteFile {
    /// The store's error behind the last failed read, if a read failed.
    pub fn failure(&self) -> Option<String> {
        self.failed.lock().ok().and_then(|f| f.clone())
    }
}

impl Length for RemoteFile {
    fn len(&self) -> u64 {
        self.size
    }
}

impl ChunkReader for RemoteFile {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> Result<Self::T> {
        let length = usize::try_from(self.size.saturating_sub(start))
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        Ok(self.get_bytes(start, length)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> Result<Bytes> {
        let end = start.saturating_add(length as u64).min(self.size);
        if start >= end {
            return Ok(Bytes::new());
        }
        self.rt
            .block_on(self.store.get_range(&self.key, start..end))
            .map_err(|e| {
                if let Ok(mut f) = self.failed.lock() {
                    *f = Some(e.to_string());
                }
                ParquetError::External(Box::new(e))
            })
    }
}
