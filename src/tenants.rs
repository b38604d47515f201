//! Each tenant's settings — tier overrides, ingest quotas, redaction rules, scan limit, live-tail
//! streams — kept in `tenants.json` in the data directory: written whole by `timberline tenant
//! set`, checked before anything is written, and re-read by a running server when it changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// The settings file in the data directory.
pub const TENANTS_FILE: &str = "tenants.json";

/// One tenant's settings as stored, each as people write it (`90d`, `10MiB`, `never`);
/// an absent field takes the server's value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compact_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<String>,
    /// Events a second the tenant may send (`unlimited` lifts it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest_events_per_sec: Option<String>,
    /// Bytes a second (as held in memory) the tenant may send: `5000000`, `5MB`, `4MiB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest_bytes_per_sec: Option<String>,
    /// How many seconds of its rate a tenant may send at once (`2s`, the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest_burst: Option<String>,
    /// The built-in detectors applied to the tenant's logs (`default`, `none`, or a list such
    /// as `email,card,ipv4`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redact: Option<String>,
    /// The tenant's own redaction rules, `name=regex` each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redact_custom: Option<Vec<String>>,
    /// Most bytes one query of the tenant may scan (`10GiB`; `unlimited`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_scan_bytes: Option<String>,
    /// Most live-tail streams the tenant may hold open at once (`16`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tail_streams: Option<String>,
    /// Most alert rules the tenant may keep (`20`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_alert_rules: Option<String>,
}

impl TenantSettings {
    /// `self` with every field `change` names replaced by its value.
    pub fn merged(&self, change: &TenantSettings) -> TenantSettings {
        fn pick<T: Clone>(new: &Option<T>, old: &Option<T>) -> Option<T> {
            new.clone().or_else(|| old.clone())
        }
        TenantSettings {
            compact_after: pick(&change.compact_after, &self.compact_after),
            cold_after: pick(&change.cold_after, &self.cold_after),
            retention: pick(&change.retention, &self.retention),
            ingest_events_per_sec: pick(&change.ingest_events_per_sec, &self.ingest_events_per_sec),
            ingest_bytes_per_sec: pick(&change.ingest_bytes_per_sec, &self.ingest_bytes_per_sec),
            ingest_burst: pick(&change.ingest_burst, &self.ingest_burst),
            redact: pick(&change.redact, &self.redact),
            redact_custom: pick(&change.redact_custom, &self.redact_custom),
            max_scan_bytes: pick(&change.max_scan_bytes, &self.max_scan_bytes),
            max_tail_streams: pick(&change.max_tail_streams, &self.max_tail_streams),
            max_alert_rules: pick(&change.max_alert_rules, &self.max_alert_rules),
        }
    }
}

/// The settings file cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {why}")]
pub struct SettingsFileError {
    pub path: PathBuf,
    pub why: String,
}

/// Every tenant's settings, as the data directory holds them (none when there is no file).
pub fn read_all(data_dir: &Path) -> Result<BTreeMap<String, TenantSettings>, SettingsFileError> {
    let path = data_dir.join(TENANTS_FILE);
    let err = |why: String| SettingsFileError {
        path: path.clone(),
        why,
    };
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| err(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(err(e.to_string())),
    }
}

/// Applies `change` to `tenant`'s settings and writes the file whole; `check` sees the
/// tenant's new settings first, and nothing is written when it refuses them.
pub fn update<E>(
    data_dir: &Path,
    tenant: &str,
    change: &TenantSettings,
    check: impl FnOnce(&TenantSettings) -> Result<(), E>,
) -> Result<TenantSettings, E>
where
    E: From<SettingsFileError>,
{
    let mut all = read_all(data_dir)?;
    let now = all.get(tenant).cloned().unwrap_or_default().merged(change);
    check(&now)?;
    all.insert(tenant.to_string(), now.clone());
    let path = data_dir.join(TENANTS_FILE);
    let err = |why: String| SettingsFileError {
        path: path.clone(),
        why,
    };
    std::fs::create_dir_all(data_dir).map_err(|e| err(e.to_string()))?;
    let bytes = serde_json::to_vec_pretty(&all).map_err(|e| err(e.to_string()))?;
    crate::storage::replace_file(&path, "json.tmp", &bytes).map_err(|e| err(e.to_string()))?;
    Ok(now)
}

/// What the settings file held when last read.
pub type Snapshot = Arc<Result<BTreeMap<String, TenantSettings>, String>>;

/// The settings file as a running server sees it: re-read when its modification time or
/// length changes (one `stat` a call), otherwise the last reading.
#[derive(Debug)]
pub struct WatchedSettings {
    data_dir: PathBuf,
    last: Mutex<(Option<(SystemTime, u64, u64)>, Snapshot)>,
}

impl WatchedSettings {
    pub fn new(data_dir: &Path) -> WatchedSettings {
        WatchedSettings {
            data_dir: data_dir.to_path_buf(),
            last: Mutex::new((None, Arc::new(Ok(BTreeMap::new())))),
        }
    }

    /// `tenant`'s own value of a limit, as `read` takes it from its settings (none: unset, not
    /// readable, or the settings file does not read — the server's limit then applies).
    pub fn own_limit<T>(
        &self,
        tenant: &str,
        read: impl Fn(&TenantSettings) -> Result<Option<T>, String>,
    ) -> Option<T> {
        let (snapshot, _) = self.current();
        match snapshot.as_ref() {
            Ok(all) => all.get(tenant).and_then(|s| read(s).ok().flatten()),
            Err(_) => None,
        }
    }

    /// The current settings and whether they changed since the last call that saw them.
    pub fn current(&self) -> (Snapshot, bool) {
        let stamp = std::fs::metadata(self.data_dir.join(TENANTS_FILE))
            .ok()
            .map(|m| {
                (
                    m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    m.len(),
                    inode(&m),
                )
            });
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.0 == stamp && stamp.is_some() {
            return (last.1.clone(), false);
        }
        if stamp.is_none() && last.0.is_none() {
            return (last.1.clone(), false);
        }
        let read = read_all(&self.data_dir).map_err(|e| e.to_string());
        if let Err(e) = &read {
            tracing::warn!(error = %e, "tenant settings unreadable");
        }
        *last = (stamp, Arc::new(read));
        (last.1.clone(), true)
    }
}

/// The file's inode: `tenant set` replaces the file, so a new inode is a new file even when
/// its modification time has not ticked.
#[cfg(unix)]
fn inode(m: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(m)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_replaces_only_what_it_names_and_a_refused_one_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let watched = WatchedSettings::new(dir.path());
        assert!(!watched.current().1, "no file, nothing changed");
        let change = TenantSettings {
            retention: Some("90d".into()),
            ingest_events_per_sec: Some("100".into()),
            ..TenantSettings::default()
        };
        update::<SettingsFileError>(dir.path(), "acme", &change, |_| Ok(())).expect("update");
        let (snap, changed) = watched.current();
        assert!(changed);
        let acme = snap.as_ref().as_ref().expect("readable")["acme"].clone();
        assert_eq!(acme.ingest_events_per_sec.as_deref(), Some("100"));
        let change = TenantSettings {
            retention: Some("30d".into()),
            ..TenantSettings::default()
        };
        let now =
            update::<SettingsFileError>(dir.path(), "acme", &change, |_| Ok(())).expect("update");
        assert_eq!(
            (
                now.retention.as_deref(),
                now.ingest_events_per_sec.as_deref()
            ),
            (Some("30d"), Some("100"))
        );
        #[derive(Debug)]
        struct No;
        impl From<SettingsFileError> for No {
            fn from(_: SettingsFileError) -> No {
                No
            }
        }
        let refused = update(dir.path(), "acme", &TenantSettings::default(), |_| Err(No));
        assert!(refused.is_err());
        assert_eq!(read_all(dir.path()).expect("read")["acme"], now);
    }
}
