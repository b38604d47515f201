//! The cold tier's object store, opened from `--object-store`: `s3://BUCKET[/PREFIX]` (with the
//! standard `AWS_*` variables: endpoint, keys, region, `AWS_ALLOW_HTTP`) or `file:///DIR` (a
//! mounted volume). Requests time out and are retried with backoff, within bounds short enough
//! that a query needing an unreachable store fails in seconds, not minutes.

use std::sync::Arc;
use std::time::Duration;

use datafusion::object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use datafusion::object_store::local::LocalFileSystem;
use datafusion::object_store::prefix::PrefixStore;
use datafusion::object_store::{BackoffConfig, ClientConfigKey, ObjectStore, RetryConfig};

/// An `--object-store` value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ColdStoreError {
    #[error("--object-store {url:?}: {why}")]
    Url { url: String, why: String },
    #[error("--object-store {url:?}: {source}")]
    Open {
        url: String,
        #[source]
        source: datafusion::object_store::Error,
    },
}

/// Opens the object store `url` names.
pub fn open_cold_store(url: &str) -> Result<Arc<dyn ObjectStore>, ColdStoreError> {
    let bad = |why: &str| ColdStoreError::Url {
        url: url.to_string(),
        why: why.to_string(),
    };
    let open = |source| ColdStoreError::Open {
        url: url.to_string(),
        source,
    };
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket (use s3://BUCKET[/PREFIX])"));
        }
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(1),
                base: 2.0,
            },
            // Bounded by time, not by count: a store just back from an outage can answer
            // reads of older objects with 5xx or cut bodies for a few seconds (three retries
            // gave up after ~0.5 s, and a cold nearest() failed then). One that stays down
            // still fails within the timeout (58030).
            max_retries: 20,
            retry_timeout: Duration::from_secs(8),
        };
        // Set as config keys: `with_client_options` would replace what the environment set
        // (`AWS_ALLOW_HTTP` among it).
        let client = |key, value: &str| (AmazonS3ConfigKey::Client(key), value.to_string());
        let mut s3 = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_retry(retry);
        for (key, value) in [
            client(ClientConfigKey::ConnectTimeout, "3s"),
            client(ClientConfigKey::Timeout, "30s"),
        ] {
            s3 = s3.with_config(key, value);
        }
        let s3 = s3.build().map_err(open)?;
        return Ok(with_prefix(Arc::new(s3), prefix));
    }
    if let Some(dir) = url.strip_prefix("file://") {
        if !dir.starts_with('/') {
            return Err(bad("a file URL needs an absolute path (file:///DIR)"));
        }
        std::fs::create_dir_all(dir).map_err(|e| bad(&e.to_string()))?;
        let local = LocalFileSystem::new_with_prefix(dir).map_err(open)?;
        return Ok(Arc::new(local));
    }
    Err(bad("use s3://BUCKET[/PREFIX] or file:///DIR"))
}

fn with_prefix(store: Arc<dyn ObjectStore>, prefix: &str) -> Arc<dyn ObjectStore> {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        store
    } else {
        Arc::new(PrefixStore::new(store, prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_that_name_no_store_are_refused_with_the_reason() {
        for (url, why) in [
            ("s3://", "no bucket"),
            ("file://relative/dir", "absolute path"),
            ("gs://bucket", "use s3://"),
            ("/just/a/dir", "use s3://"),
        ] {
            let err = open_cold_store(url).expect_err(url).to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("file://{}/cold", dir.path().display());
        assert!(open_cold_store(&url).is_ok());
        assert!(dir.path().join("cold").is_dir());
    }
}
