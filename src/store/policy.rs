//! When a segment changes tier, by the age of its newest event: the server's policy
//! (`--compact-after`, `--cold-after`, `--retention`) and each tenant's overrides, kept in
//! the tenants' settings file (`timberline tenant set …`, [`crate::tenants`]) and re-read on
//! every maintenance pass, so a running server picks a change up without a restart.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::tenants::{read_all, SettingsFileError, TenantSettings};

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

/// An override that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{what} {value:?}: use a duration such as 90d, 12h or 30min, or `never`")]
    Duration { what: &'static str, value: String },
    #[error(transparent)]
    File(#[from] SettingsFileError),
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

/// `base` with a tenant's tier overrides applied.
pub fn apply(settings: &TenantSettings, base: TierPolicy) -> Result<TierPolicy, PolicyError> {
    let mut p = base;
    if let Some(v) = &settings.compact_after {
        p.compact_after = parse_age("compact_after", v)?.unwrap_or(Duration::MAX);
    }
    if let Some(v) = &settings.cold_after {
        p.cold_after = parse_age("cold_after", v)?;
    }
    if let Some(v) = &settings.retention {
        p.retention = parse_age("retention", v)?;
    }
    Ok(p)
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
        let overrides = match read_all(data_dir) {
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
            .map(|(t, o)| match apply(&o, base) {
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
        let set = |retention: Option<&str>, cold: Option<&str>| {
            let change = TenantSettings {
                retention: retention.map(String::from),
                cold_after: cold.map(String::from),
                ..TenantSettings::default()
            };
            crate::tenants::update(dir.path(), "acme", &change, |now| {
                apply(now, TierPolicy::default()).map(|_| ())
            })
        };
        set(Some("90d"), Some("1d")).expect("set");
        set(Some("30d"), None).expect("set");
        let bad = set(Some("soon"), None);
        assert!(matches!(bad, Err(PolicyError::Duration { .. })), "{bad:?}");
        let p = Policies::load(TierPolicy::default(), dir.path());
        let day = Duration::from_secs(86_400);
        assert_eq!(p.of("acme").retention, Some(30 * day));
        assert_eq!(p.of("acme").cold_after, Some(day));
        assert_eq!(p.of("other"), TierPolicy::default());
        set(Some("never"), None).expect("set");
        let p = Policies::load(TierPolicy::default(), dir.path());
        assert_eq!(p.of("acme").retention, None);
        // Unreadable overrides delete nothing, for anyone.
        let strict = TierPolicy {
            retention: Some(day),
            ..TierPolicy::default()
        };
        std::fs::write(
            dir.path().join(crate::tenants::TENANTS_FILE),
            br#"{"acme":{"retention":"soon"}}"#,
        )
        .expect("write");
        let p = Policies::load(strict, dir.path());
        assert_eq!(
            (p.of("acme").retention, p.of("other").retention),
            (None, Some(day))
        );
        std::fs::write(dir.path().join(crate::tenants::TENANTS_FILE), b"{not json").expect("write");
        let p = Policies::load(strict, dir.path());
        assert_eq!(
            (p.of("acme").retention, p.of("other").retention),
            (None, None)
        );
    }
}
