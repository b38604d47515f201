//! Alert rules: a query over `logs` returning a number (one alert per label set), checked every
//! so often on the query threads; a label set over its threshold for long enough fires, and its
//! notification goes through a persisted outbox to Alertmanager and/or a signed webhook, with a
//! resolved notification when the value falls back.
//!
//! - [`rule`]: a rule as written and checked; [`state`]: what one evaluation means;
//! - [`eval`]: the evaluator; [`deliver`]: the outbox's sender; [`outbox`]: the deliveries kept
//!   on disk, and sending one; [`silences`]: Alertmanager's silences, which mute here too;
//! - [`tables`]: the `alerts` and `alert_events` tables.
//!
//! Rules and their state live in `alerts/rules.json` of the data directory, the history in
//! `alerts/events.jsonl`; both survive a restart.

pub mod deliver;
pub mod eval;
pub mod outbox;
pub mod rule;
pub mod silences;
pub mod state;
pub mod tables;

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::query::statement::{SqlError, SqlRunner};
use crate::tenants::{TenantSettings, WatchedSettings};
use outbox::{Outbox, Receivers};
use rule::{Rule, RuleError, RuleSpec};
use state::{Labels, Series};

/// Events the history keeps, of all tenants (in memory and, about as many, on disk).
pub const HISTORY: usize = 10_000;
/// The pg user rule queries run as.
pub const RULE_USER: &str = "_alerts";
/// Most bytes of Arrow memory a rule's answer may take.
const ANSWER_BYTES: usize = 16 << 20;

/// A rule, its state, and its label sets'.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub tenant: String,
    pub rule: Rule,
    pub created_ms: i64,
    /// Muted until then (ms since the epoch; `i64::MAX`: until unmuted).
    #[serde(default)]
    pub muted_until: Option<i64>,
    /// The label sets followed, by their labels' JSON.
    #[serde(default)]
    pub series: BTreeMap<String, Series>,
    #[serde(default)]
    pub last_eval_ms: Option<i64>,
    #[serde(default)]
    pub last_error: Option<String>,
    /// The Alertmanager silence holding its notifications at the last evaluation.
    #[serde(default)]
    pub silenced_by: Option<String>,
    #[serde(skip)]
    pub next_due: i64,
}

impl Entry {
    pub fn muted(&self, now: i64) -> bool {
        self.muted_until.is_some_and(|t| t > now)
    }
}

/// One line of the history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub at_ms: i64,
    pub tenant: String,
    pub rule: String,
    pub labels: Labels,
    pub event: String,
    pub value: Option<f64>,
    pub detail: String,
}

/// Why an alert request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error("the rule's query: {0}")]
    Sql(SqlError),
    #[error("the rule's query: {0}")]
    Answer(String),
    #[error("no alert rule named {0:?}")]
    NotFound(String),
    #[error("an alert rule named {0:?} exists; remove it first (timberline alert rm)")]
    Exists(String),
    #[error("tenant {tenant} has {count} alert rules, its limit ({set_by})")]
    Limit {
        tenant: String,
        count: usize,
        set_by: &'static str,
    },
    #[error("saving the alert rules in {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The rules of every tenant, their history, and where notifications go.
pub struct Alerts {
    dir: PathBuf,
    book: Mutex<BTreeMap<(String, String), Entry>>,
    history: Mutex<VecDeque<Event>>,
    pub(crate) outbox: Outbox,
    pub receivers: Receivers,
    runner: Arc<dyn SqlRunner>,
    client: reqwest::Client,
    /// The server's rule limit per tenant, and the tenants' own (`max_alert_rules`).
    max_rules: usize,
    settings: Option<WatchedSettings>,
    wake_eval: Notify,
    wake_delivery: Notify,
    ids: AtomicU64,
    /// Held while an outbox file is written or settled, so a retry never overwrites a newer
    /// Alertmanager update of the same label set.
    settling: Mutex<()>,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts").field("dir", &self.dir).finish()
    }
}

/// A tenant's rule limit as its settings give it (`None`: the server's).
pub fn tenant_limit(settings: &TenantSettings) -> Result<Option<usize>, String> {
    match settings.max_alert_rules.as_deref().map(str::trim) {
        None => Ok(None),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100_000).contains(n))
            .map(Some)
            .ok_or_else(|| format!("max_alert_rules {v:?}: use a count from 1 to 100000")),
    }
}

pub fn now_ms() -> i64 {
    crate::model::now_micros() / 1000
}

impl Alerts {
    /// Opens the rules kept under `data_dir/alerts` (none yet: an empty book).
    pub fn open(
        data_dir: &Path,
        runner: Arc<dyn SqlRunner>,
        receivers: Receivers,
        max_rules: usize,
    ) -> Result<Arc<Alerts>, AlertError> {
        let dir = data_dir.join("alerts");
        let io = |source| AlertError::Io {
            path: dir.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let outbox = Outbox::open(&dir.join("outbox")).map_err(io)?;
        let rules_path = dir.join("rules.json");
        let entries: Vec<Entry> = match std::fs::read(&rules_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| AlertError::Io {
                path: rules_path.clone(),
                source: std::io::Error::other(e),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(e)),
        };
        let book = entries
            .into_iter()
            .map(|e| ((e.tenant.clone(), e.rule.name.clone()), e))
            .collect();
        let history = read_history(&dir.join("events.jsonl"));
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Ok(Arc::new(Alerts {
            dir,
            book: Mutex::new(book),
            history: Mutex::new(history),
            outbox,
            receivers,
            runner,
            client,
            max_rules: max_rules.max(1),
            settings: Some(WatchedSettings::new(data_dir)),
            wake_eval: Notify::new(),
            wake_delivery: Notify::new(),
            ids: AtomicU64::new(0),
            settling: Mutex::new(()),
        }))
    }

    /// Starts the evaluator and the outbox's sender on `work` (the query threads).
    pub fn start(self: &Arc<Self>, work: &tokio::runtime::Handle) {
        work.spawn(eval::run(self.clone()));
        work.spawn(deliver::run(self.clone()));
    }

    fn book(&self) -> MutexGuard<'_, BTreeMap<(String, String), Entry>> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a rule for `tenant` once its query runs and answers a number.
    pub async fn add(&self, tenant: &str, spec: &RuleSpec) -> Result<Entry, AlertError> {
        let rule = spec.check()?;
        self.room_for(tenant, &rule.name)?;
        // The query must run now, or the user would learn of a typo from the history only.
        let rows = self
            .runner
            .run(
                RULE_USER,
                tenant,
                &rule.sql,
                state::MAX_SERIES,
                ANSWER_BYTES,
            )
            .await
            .map_err(AlertError::Sql)?;
        state::series_of(&rows).map_err(AlertError::Answer)?;
        let now = now_ms();
        let entry = Entry {
            tenant: tenant.to_string(),
            rule,
            created_ms: now,
            muted_until: None,
            series: BTreeMap::new(),
            last_eval_ms: None,
            last_error: None,
            silenced_by: None,
            next_due: 0,
        };
        {
            let mut book = self.book();
            self.room_for_in(&book, tenant, &entry.rule.name)?;
            book.insert((tenant.to_string(), entry.rule.name.clone()), entry.clone());
            self.save(&book)?;
        }
        self.record(
            &entry.tenant,
            &entry.rule.name,
            &Labels::new(),
            "created",
            None,
            entry.rule.threshold(),
        );
        self.wake_eval.notify_one();
        Ok(entry)
    }

    fn room_for(&self, tenant: &str, name: &str) -> Result<(), AlertError> {
        self.room_for_in(&self.book(), tenant, name)
    }

    fn room_for_in(
        &self,
        book: &BTreeMap<(String, String), Entry>,
        tenant: &str,
        name: &str,
    ) -> Result<(), AlertError> {
        if book.contains_key(&(tenant.to_string(), name.to_string())) {
            return Err(AlertError::Exists(name.to_string()));
        }
        let count = book.keys().filter(|(t, _)| t == tenant).count();
        let (limit, set_by) = self.limit_of(tenant);
        if count >= limit {
            return Err(AlertError::Limit {
                tenant: tenant.to_string(),
                count,
                set_by,
            });
        }
        Ok(())
    }

    fn limit_of(&self, tenant: &str) -> (usize, &'static str) {
        let server = (self.max_rules, "--alert-max-rules");
        let Some(watched) = &self.settings else {
            return server;
        };
        match watched.own_limit(tenant, tenant_limit) {
            Some(n) => (n, "the tenant's max_alert_rules"),
            None => server,
        }
    }

    /// The tenant's rules, by name.
    pub fn list(&self, tenant: &str) -> Vec<Entry> {
        self.book()
            .values()
            .filter(|e| e.tenant == tenant)
            .cloned()
            .collect()
    }

    /// Every tenant's rules (for the system table's filtering).
    pub fn all(&self) -> Vec<Entry> {
        self.book().values().cloned().collect()
    }

    /// Mutes a rule until `until` (ms; none: until unmuted), or unmutes it.
    pub fn mute(&self, tenant: &str, name: &str, until: Option<i64>) -> Result<Entry, AlertError> {
        let entry = {
            let mut book = self.book();
            let entry = book
                .get_mut(&(tenant.to_string(), name.to_string()))
                .ok_or_else(|| AlertError::NotFound(name.to_string()))?;
            entry.muted_until = until;
            let entry = entry.clone();
            self.save(&book)?;
            entry
        };
        let what = if until.is_some() { "muted" } else { "unmuted" };
        let detail = match until {
            Some(i64::MAX) | None => String::new(),
            Some(t) => format!("until {}", rfc3339(t)),
        };
        self.record(
            &entry.tenant,
            &entry.rule.name,
            &Labels::new(),
            what,
            None,
            detail,
        );
        self.wake_eval.notify_one();
        Ok(entry)
    }

    /// Removes a rule; receivers told of its firing label sets are told they resolved.
    pub fn remove(&self, tenant: &str, name: &str) -> Result<Entry, AlertError> {
        let entry = {
            let mut book = self.book();
            let entry = book
                .remove(&(tenant.to_string(), name.to_string()))
                .ok_or_else(|| AlertError::NotFound(name.to_string()))?;
            // Under the book's lock, so no evaluation of the rule can notify after these.
            let now = now_ms();
            for s in entry.series.values().filter(|s| s.notified) {
                self.notify(&entry, s, state::Notice::Resolved, now);
            }
            self.save(&book)?;
            entry
        };
        self.record(
            &entry.tenant,
            &entry.rule.name,
            &Labels::new(),
            "removed",
            None,
            String::new(),
        );
        Ok(entry)
    }

    /// The history of `tenant`'s rules (all tenants' for `None`), oldest first.
    pub fn events(&self, tenant: Option<&str>) -> Vec<Event> {
        let history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        history
            .iter()
            .filter(|e| tenant.is_none_or(|t| e.tenant == t))
            .cloned()
            .collect()
    }

    /// Writes every rule and its state (under the book's lock).
    fn save(&self, book: &BTreeMap<(String, String), Entry>) -> Result<(), AlertError> {
        let path = self.dir.join("rules.json");
        let entries: Vec<&Entry> = book.values().collect();
        let bytes = serde_json::to_vec_pretty(&entries).map_err(|e| AlertError::Io {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        crate::storage::replace_file(&path, "tmp", &bytes)
            .and_then(|()| crate::storage::sync_dir(&self.dir))
            .map_err(|source| AlertError::Io { path, source })
    }

    /// Adds an event to the history (memory and `events.jsonl`).
    fn record(
        &self,
        tenant: &str,
        rule: &str,
        labels: &Labels,
        event: &str,
        value: Option<f64>,
        detail: String,
    ) {
        let e = Event {
            at_ms: now_ms(),
            tenant: tenant.to_string(),
            rule: rule.to_string(),
            labels: labels.clone(),
            event: event.to_string(),
            value,
            detail,
        };
        let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let path = self.dir.join("events.jsonl");
        let written = serde_json::to_vec(&e)
            .map_err(std::io::Error::other)
            .and_then(|mut line| {
                line.push(b'\n');
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)?
                    .write_all(&line)
            });
        if let Err(err) = written {
            tracing::warn!(%err, "the alert history could not be written");
        }
        history.push_back(e);
        if history.len() > HISTORY {
            history.pop_front();
            // The file keeps about as much as memory: rewritten once it holds twice as much.
            if std::fs::metadata(&path).is_ok_and(|m| m.len() > 16 << 20) {
                let mut text = Vec::new();
                for e in history.iter() {
                    if let Ok(mut line) = serde_json::to_vec(e) {
                        line.push(b'\n');
                        text.extend(line);
                    }
                }
                let _ = crate::storage::replace_file(&path, "tmp", &text);
            }
        }
    }

    /// A fresh delivery id.
    fn next_id(&self, now: i64) -> String {
        // Zero-padded, so the outbox's order (by time, then id) is the order they were made.
        format!(
            "wh-{now:013}-{:010}",
            self.ids.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// The history's newest [`HISTORY`] events from `path`.
fn read_history(path: &Path) -> VecDeque<Event> {
    let mut out = VecDeque::new();
    let Ok(file) = std::fs::File::open(path) else {
        return out;
    };
    for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
        if let Ok(e) = serde_json::from_str::<Event>(&line) {
            out.push_back(e);
            if out.len() > HISTORY {
                out.pop_front();
            }
        }
    }
    out
}

/// `ms` since the epoch as RFC 3339 (UTC).
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
