//! What each tenant's settings ask of its ingest — its quota's buckets and its redaction rules —
//! rebuilt when the settings file changes. A tenant without settings gets the server's
//! redaction rules and no quota; a tenant whose stored settings no longer build keeps what it
//! had (or the server's rules), and the server says so in its log.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::quota::{Buckets, Quota, QuotaSettingError, Verdict};
use super::redact::{Redactor, RuleError};
use crate::model::LogRecord;
use crate::tenants::{Snapshot, TenantSettings, WatchedSettings};

/// Settings that cannot be used, as `timberline tenant set` reports them.
#[derive(Debug, thiserror::Error)]
pub enum IngestSettingError {
    #[error(transparent)]
    Quota(#[from] QuotaSettingError),
    #[error("redaction: {0}")]
    Redaction(#[from] RuleError),
}

/// Checks the ingest part of a tenant's settings (quota and redaction rules) as the server
/// would build them.
pub fn check(settings: &TenantSettings, server_redact: &str) -> Result<(), IngestSettingError> {
    Quota::of(settings)?;
    redactor_of(settings, server_redact)?;
    Ok(())
}

fn redactor_of(settings: &TenantSettings, server_redact: &str) -> Result<Redactor, RuleError> {
    let detectors = settings.redact.as_deref().unwrap_or(server_redact);
    let custom = settings.redact_custom.as_deref().unwrap_or_default();
    Redactor::new(detectors, custom)
}

struct State {
    /// The snapshot the rules below were built from.
    built_from: Option<Snapshot>,
    quotas: HashMap<String, Buckets>,
    redactors: HashMap<String, Arc<Redactor>>,
}

/// The tenants' ingest rules of a running server.
pub struct TenantRules {
    watched: Option<WatchedSettings>,
    server_redact: String,
    server: Arc<Redactor>,
    state: Mutex<State>,
}

impl TenantRules {
    /// Rules from the settings file in `data_dir` (none: the server's rules for everyone).
    pub fn new(data_dir: Option<&Path>, server_redact: &str) -> Result<TenantRules, RuleError> {
        Ok(TenantRules {
            watched: data_dir.map(WatchedSettings::new),
            server_redact: server_redact.to_string(),
            server: Arc::new(Redactor::new(server_redact, &[])?),
            state: Mutex::new(State {
                built_from: None,
                quotas: HashMap::new(),
                redactors: HashMap::new(),
            }),
        })
    }

    /// The state, rebuilt first when the settings file changed.
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some(watched) = &self.watched else {
            return state;
        };
        let (snapshot, _) = watched.current();
        if state
            .built_from
            .as_ref()
            .is_some_and(|b| Arc::ptr_eq(b, &snapshot))
        {
            return state;
        }
        state.built_from = Some(snapshot.clone());
        let Ok(all) = snapshot.as_ref() else {
            // Unreadable: keep the rules built from the last good reading.
            return state;
        };
        let now = Instant::now();
        let mut quotas = HashMap::new();
        let mut redactors = HashMap::new();
        for (tenant, settings) in all {
            match Quota::of(settings) {
                Ok(Some(q)) => {
                    // An unchanged quota keeps its buckets' level.
                    let b = match state.quotas.remove(tenant) {
                        Some(b) if b.quota == q => b,
                        _ => Buckets::new(q, now),
                    };
                    quotas.insert(tenant.clone(), b);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(tenant, error = %e, "a tenant's ingest quota is unreadable; keeping the last one");
                    if let Some(b) = state.quotas.remove(tenant) {
                        quotas.insert(tenant.clone(), b);
                    }
                }
            }
            if settings.redact.is_some() || settings.redact_custom.is_some() {
                match redactor_of(settings, &self.server_redact) {
                    Ok(r) => {
                        redactors.insert(tenant.clone(), Arc::new(r));
                    }
                    Err(e) => {
                        tracing::error!(tenant, error = %e, "a tenant's redaction rules do not build; keeping the last ones");
                        if let Some(r) = state.redactors.remove(tenant) {
                            redactors.insert(tenant.clone(), r);
                        }
                    }
                }
            }
        }
        state.quotas = quotas;
        state.redactors = redactors;
        state
    }

    /// The redaction rules of `tenant`.
    pub fn redactor(&self, tenant: &str) -> Arc<Redactor> {
        self.state()
            .redactors
            .get(tenant)
            .cloned()
            .unwrap_or_else(|| self.server.clone())
    }

    /// The tenant's quota, as its error messages name it.
    pub fn describe_quota(&self, tenant: &str) -> String {
        let state = self.state();
        let Some(q) = state.quotas.get(tenant).map(|b| b.quota) else {
            return "no quota".to_string();
        };
        let mut parts = Vec::new();
        if let Some(e) = q.events_per_sec {
            parts.push(format!("{e} events/s"));
        }
        if let Some(b) = q.bytes_per_sec {
            parts.push(format!("{b} bytes/s"));
        }
        parts.push(format!("burst {}s", q.burst_secs));
        parts.join(", ")
    }

    /// Charges `records` (one tenant's) to its quota: all taken when it has none.
    pub fn admit(&self, tenant: &str, records: &[LogRecord], may_shed: bool) -> Verdict {
        let mut state = self.state();
        match state.quotas.get_mut(tenant) {
            Some(b) => b.admit(records, may_shed, Instant::now()),
            None => Verdict::Take { shed: Vec::new() },
        }
    }
}
