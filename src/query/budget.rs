//! Scan budgets: the bytes one query may scan — the session's `timberline.max_scan_bytes`,
//! within its tenant's limit (`timberline tenant set … --max-scan-bytes`, else the server's
//! `--max-scan-bytes`) — checked against the plan's scan before anything runs. The plan's
//! scan is the segments left after pruning, fixed at planning, so a query that starts can
//! never read more than it was allowed.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use datafusion::error::DataFusionError;
use timberline_udfs::{sqlstate, QueryError};

use crate::config::Size;
use crate::tenants::{Snapshot, TenantSettings, WatchedSettings};

/// A tenant's scan limit as its settings give it: `None` inherits the server's; `unlimited`
/// lifts it.
pub fn tenant_limit(settings: &TenantSettings) -> Result<Option<Option<u64>>, String> {
    match settings.max_scan_bytes.as_deref().map(str::trim) {
        None => Ok(None),
        Some("unlimited" | "none" | "off") => Ok(Some(None)),
        Some(v) => Size::from_str(v)
            .ok()
            .filter(|s| s.0 > 0)
            .map(|s| Some(Some(s.0)))
            .ok_or_else(|| {
                format!("max_scan_bytes {v:?}: use a size such as 10GiB or 500MB, or `unlimited`")
            }),
    }
}

/// The budget of one query and where it came from (for the refusal's message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub bytes: u64,
    pub source: String,
}

/// The tenants' own limits, and the settings they were read from.
type Limits = (Option<Snapshot>, HashMap<String, Option<u64>>);

/// Every tenant's scan limit on a running server.
pub struct ScanBudgets {
    watched: Option<WatchedSettings>,
    server: Option<u64>,
    limits: Mutex<Limits>,
}

impl ScanBudgets {
    /// Limits from the settings file in `data_dir`, `server` for tenants without their own.
    pub fn new(data_dir: Option<&Path>, server: Option<u64>) -> ScanBudgets {
        ScanBudgets {
            watched: data_dir.map(WatchedSettings::new),
            server,
            limits: Mutex::new((None, HashMap::new())),
        }
    }

    /// `tenant`'s limit (`None`: unlimited).
    pub fn limit_of(&self, tenant: &str) -> Option<u64> {
        let Some(watched) = &self.watched else {
            return self.server;
        };
        let (snapshot, _) = watched.current();
        let mut limits = self.limits.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = limits.0.as_ref().is_some_and(|s| Arc::ptr_eq(s, &snapshot));
        if !fresh {
            // An unreadable file keeps the limits last read.
            if let Ok(all) = snapshot.as_ref() {
                limits.1 = all
                    .iter()
                    .filter_map(|(t, s)| match tenant_limit(s) {
                        Ok(Some(l)) => Some((t.clone(), l)),
                        Ok(None) => None,
                        Err(e) => {
                            tracing::warn!(tenant = t, error = %e, "a tenant's scan limit is unreadable; the server's applies");
                            None
                        }
                    })
                    .collect();
            }
            limits.0 = Some(snapshot);
        }
        limits.1.get(tenant).copied().unwrap_or(self.server)
    }

    /// The budget of a query of `tenant` whose session set `session` (`None`: no budget).
    pub fn budget(&self, tenant: &str, session: Option<u64>) -> Option<Budget> {
        let limit = self.limit_of(tenant);
        match (session, limit) {
            (Some(s), Some(l)) if l < s => Some(Budget {
                bytes: l,
                source: format!("tenant {tenant}'s limit (timberline.max_scan_bytes asks {s})"),
            }),
            (Some(s), _) => Some(Budget {
                bytes: s,
                source: "timberline.max_scan_bytes".into(),
            }),
            (None, Some(l)) => Some(Budget {
                bytes: l,
                source: format!("tenant {tenant}'s limit"),
            }),
            (None, None) => None,
        }
    }
}

/// Refuses a plan that would scan `bytes`, over `budget`, with `54000`.
pub fn check(bytes: u64, budget: Option<&Budget>) -> Result<(), DataFusionError> {
    match budget {
        Some(b) if bytes > b.bytes => Err(QueryError::new(
            sqlstate::PROGRAM_LIMIT_EXCEEDED,
            format!(
                "the query would scan about {bytes} bytes (the segments left after pruning), over its budget of {} bytes ({}); narrow its time range or filters, or raise SET timberline.max_scan_bytes within the tenant's limit",
                b.bytes, b.source
            ),
        )
        .into_df()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_budget_holds_within_the_tenants_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = ScanBudgets::new(Some(dir.path()), Some(1000));
        assert_eq!(b.budget("acme", None).map(|b| b.bytes), Some(1000));
        assert_eq!(b.budget("acme", Some(10)).map(|b| b.bytes), Some(10));
        assert_eq!(b.budget("acme", Some(5000)).map(|b| b.bytes), Some(1000));
        let set = |v: &str| {
            let change = TenantSettings {
                max_scan_bytes: Some(v.into()),
                ..TenantSettings::default()
            };
            crate::tenants::update::<crate::tenants::SettingsFileError>(
                dir.path(),
                "acme",
                &change,
                |_| Ok(()),
            )
            .expect("update");
        };
        set("1MiB");
        assert_eq!(b.budget("acme", Some(5000)).map(|b| b.bytes), Some(5000));
        assert_eq!(b.budget("acme", None).map(|b| b.bytes), Some(1 << 20));
        assert_eq!(b.budget("other", None).map(|b| b.bytes), Some(1000));
        set("unlimited");
        assert_eq!(b.budget("acme", None), None);
        assert!(check(10, b.budget("acme", Some(5)).as_ref()).is_err());
        assert!(check(5, b.budget("acme", Some(5)).as_ref()).is_ok());
        assert!(tenant_limit(&TenantSettings {
            max_scan_bytes: Some("lots".into()),
            ..TenantSettings::default()
        })
        .is_err());
    }
}
