//! When a segment changes tier, by the age of its newest event: the server's policy
//! (`--compact-after`, `--cold-after`, `--retention`) and each tenant's overrides, kept in
//! `tenants.json` in the data directory (`timberline tenant set …`) and re-read on every
//! maintenance pass, so a running server picks a change up without a restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The overrides file in the data directory.
pub const TENANTS_FILE: &str = "tenants.json";

/// One tenant's (or the server's) tier policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierPolicy {
    /// A tenant-hour whose newest event is this old is compacted into warm segments.
    pub compact_after: Duration,
    /// A segment whose newest event is this old moves to the object store (`None`: never).
    pub cold_after: Option<Duration>,
    /// A segment whose newest event is this old is deleted everywhere (`None`: kept forever).
    pub retention: Option<Duration>,
}

impl Default for TierPolicy {
    fn default() -> TierPolicy {
        TierPolicy {
            compact_after: Duration::from_secs(3600),
            cold_after: Some(Duration::from_secs(7 * 86_400)),
            retention: None,
        }
    }
}

/// A tenant's overrides as stored: each a duration as people write it (`90d`, `12h`), or
/// `never` (keep forever / never move).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compact_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<String>,
}

/// An override that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{what} {value:?}: use a duration such as 90d, 12h or 30min, or `never`")]
    Duration { what: &'static str, value: String },
    #[error("{path}: {why}")]
    File { path: PathBuf, why: String },
}

/// `never` (None) or a duration.
pub fn parse_age(what: &'static str, value: &str) -> Result<Option<Duration>, PolicyError> {
    let v = value.trim();
    if matches!(v, "never" | "forever" | "off") {
        return Ok(None);
    }
    if v == "0" {
        return Ok(Some(Duration::ZERO));
    }
    humantime::parse_duration(v)
        .map(Some)
        .map_err(|_| PolicyError::Duration {
            what,
            value: value.to_string(),
        })
}

impl TenantOverrides {
    /// `base` with these overrides applied.
    pub fn apply(&self, base: TierPolicy) -> Result<TierPolicy, PolicyError> {
        let mut p = base;
        if let Some(v) = &self.compact_after {
            p.compact_after = parse_age("compact_after", v)?.unwrap_or(Duration::MAX);
        }
        if let Some(v) = &self.cold_after {
            p.cold_after = parse_age("cold_after", v)?;
        }
        if let Some(v) = &self.retention {
            p.retention = parse_age("retention", v)?;
        }
        Ok(p)
    }
}

/// Every tenant's overrides, as the data directory holds them.
pub fn read_overrides(data_dir: &Path) -> Result<BTreeMap<String, TenantOverrides>, PolicyError> {
    let path = data_dir.join(TENANTS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| PolicyError::File {
            path,
            why: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(PolicyError::File {
            path,
            why: e.to_string(),
        }),
    }
}

/// Sets `tenant`'s overrides (each one given replaces the stored one); checks every value
/// before anything is written, and writes the file whole.
pub fn set_overrides(
    data_dir: &Path,
    tenant: &str,
    change: TenantOverrides,
) -> Result<TenantOverrides, PolicyError> {
    change.apply(TierPolicy::default())?;
    let mut all = read_overrides(data_dir)?;
    let entry = all.entry(tenant.to_string()).or_default();
    if change.compact_after.is_some() {
        entry.compact_after = change.compact_after;
    }
    if change.cold_after.is_some() {
        entry.cold_after = change.cold_after;
    }
    if change.retention.is_some() {
        entry.retention = change.retention;
    }
    let result = entry.clone();
    let path = data_dir.join(TENANTS_FILE);
    let file_err = |e: std::io::Error| PolicyError::File {
        path: path.clone(),
        why: e.to_string(),
    };
    std::fs::create_dir_all(data_dir).map_err(file_err)?;
    let bytes = serde_json::to_vec_pretty(&all).map_err(|e| PolicyError::File {
        path: path.clone(),
        why: e.to_string(),
    })?;
    crate::storage::replace_file(&path, "json.tmp", &bytes).map_err(file_err)?;
    Ok(result)
}

/// The policy of each tenant: the server's, with the tenant's overrides when it has any.
#[derive(Debug, Clone)]
pub struct Policies {
    pub base: TierPolicy,
    pub tenants: BTreeMap<String, TierPolicy>,
}

impl Policies {
    /// The server's policy and the overrides in `data_dir`. Retention fails closed: when the
    /// overrides cannot be read, nothing is deleted this pass (a tenant's override may keep
    /// data longer than the server's policy), and a tenant whose override is unreadable keeps
    /// everything; compaction and moves go on by the server's policy.
    pub fn load(base: TierPolicy, data_dir: &Path) -> Policies {
        let keep = |p: TierPolicy| TierPolicy {
            retention: None,
            ..p
        };
        let overrides = match read_overrides(data_dir) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "tenant tier overrides unreadable; no retention this pass");
                return Policies {
                    base: keep(base),
                    tenants: BTreeMap::new(),
                };
            }
        };
        let tenants = overrides
            .into_iter()
            .map(|(t, o)| match o.apply(base) {
                Ok(p) => (t, p),
                Err(e) => {
                    tracing::warn!(tenant = t, error = %e, "a tenant's tier override is unreadable; keeping its data");
                    (t, keep(base))
                }
            })
            .collect();
        Policies { base, tenants }
    }

    pub fn of(&self, tenant: &str) -> TierPolicy {
        self.tenants.get(tenant).copied().unwrap_or(self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_only_what_they_name_and_bad_values_change_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let set = |retention: Option<&str>, cold: Option<&str>| TenantOverrides {
            retention: retention.map(String::from),
            cold_after: cold.map(String::from),
            compact_after: None,
        };
        set_overrides(dir.path(), "acme", set(Some("90d"), Some("1d"))).expect("set");
        set_overrides(dir.path(), "acme", set(Some("30d"), None)).expect("set");
        let bad = set_overrides(dir.path(), "acme", set(Some("soon"), None));
        assert!(matches!(bad, Err(PolicyError::Duration { .. })), "{bad:?}");
        let p = Policies::load(TierPolicy::default(), dir.path());
        let day = Duration::from_secs(86_400);
        assert_eq!(p.of("acme").retention, Some(30 * day));
        assert_eq!(p.of("acme").cold_after, Some(day));
        assert_eq!(p.of("other"), TierPolicy::default());
        set_overrides(dir.path(), "acme", set(Some("never"), None)).expect("set");
        let p = Policies::load(TierPolicy::default(), dir.path());
        assert_eq!(p.of("acme").retention, None);
        // Unreadable overrides delete nothing, for anyone.
        let strict = TierPolicy {
            retention: Some(day),
            ..TierPolicy::default()
        };
        std::fs::write(
            dir.path().join(TENANTS_FILE),
            br#"{"acme":{"retention":"soon"}}"#,
        )
        .expect("write");
        let p = Policies::load(strict, dir.path());
        assert_eq!(
            (p.of("acme").retention, p.of("other").retention),
            (None, Some(day))
        );
        std::fs::write(dir.path().join(TENANTS_FILE), b"{not json").expect("write");
        let p = Policies::load(strict, dir.path());
        assert_eq!(
            (p.of("acme").retention, p.of("other").retention),
            (None, None)
        );
    }
}
