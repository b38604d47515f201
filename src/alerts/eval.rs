//! The evaluator: each rule's query run every `every` on the query threads — one rule at a time
//! per tenant (so a tenant's rules never take more than one of its query places, and its slow
//! rules delay only its own), a few tenants at once — its answer stepped through each label
//! set's state, and the notifications due put in the outbox.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::silences::{self, Silence};
use super::state::{self, Labels, Phase, Series};
use super::{now_ms, Alerts, Entry, ANSWER_BYTES, RULE_USER};
use crate::metrics::metrics;

/// Longest sleep between two looks at the rules (a changed rule wakes the evaluator at once).
const IDLE: Duration = Duration::from_secs(1);
/// Rules evaluated at once (of different tenants).
const AT_ONCE: usize = 4;

/// Evaluates the rules as they come due, for as long as the server runs.
pub async fn run(alerts: Arc<Alerts>) {
    let slots = Arc::new(Semaphore::new(AT_ONCE));
    let busy: Arc<std::sync::Mutex<HashSet<String>>> = Arc::default();
    loop {
        let now = now_ms();
        // The first due rule of each tenant not already evaluating one.
        let due: Vec<Entry> = {
            let mut book = alerts.book();
            let mut busy = busy.lock().unwrap_or_else(|p| p.into_inner());
            let mut picked = Vec::new();
            for e in book.values_mut() {
                if e.next_due > now || busy.contains(&e.tenant) {
                    continue;
                }
                busy.insert(e.tenant.clone());
                // Behind by more than a period (a slow query, a restart): the next is a period
                // from now, not a burst to catch up.
                let every = i64::try_from(e.rule.every.as_millis()).unwrap_or(i64::MAX);
                e.next_due = if e.next_due.saturating_add(every) > now {
                    e.next_due.max(now - every).saturating_add(every)
                } else {
                    now.saturating_add(every)
                };
                picked.push(e.clone());
            }
            picked
        };
        for entry in due {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let (alerts, busy) = (alerts.clone(), busy.clone());
            tokio::spawn(async move {
                alerts.evaluate(&entry).await;
                busy.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&entry.tenant);
                drop(slot);
                alerts.wake_eval.notify_one();
            });
        }
        let next = alerts
            .book()
            .values()
            .map(|e| e.next_due)
            .min()
            .unwrap_or(i64::MAX);
        let wait = Duration::from_millis(next.saturating_sub(now_ms()).max(0) as u64).min(IDLE);
        tokio::select! {
            _ = alerts.wake_eval.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

impl Alerts {
    /// One evaluation of `entry`'s rule.
    async fn evaluate(&self, entry: &Entry) {
        let rule = &entry.rule;
        let timeout = rule
            .every
            .clamp(Duration::from_secs(5), Duration::from_secs(60));
        let answer = tokio::time::timeout(
            timeout,
            self.runner.run(
                RULE_USER,
                &entry.tenant,
                &rule.sql,
                state::MAX_SERIES + 1,
                ANSWER_BYTES,
            ),
        )
        .await;
        let answer = match answer {
            Err(_) => Err(format!(
                "the query took longer than {}s and was stopped",
                timeout.as_secs()
            )),
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok(rows)) => state::series_of(&rows),
        };
        let (values, complete) = match answer {
            Ok((values, more)) => {
                metrics().alert_evaluation("ok");
                if more > 0 {
                    tracing::warn!(rule = %rule.name, more, "an alert rule's answer has more label sets than are followed");
                }
                (values, more == 0)
            }
            Err(reason) => {
                metrics().alert_evaluation("error");
                self.failed(entry, reason);
                return;
            }
        };
        let quiet_all = entry.muted(now_ms());
        let breaching = values
            .iter()
            .any(|(_, v)| v.is_some_and(|v| rule.breached(v)));
        // Alertmanager's silences, read only when some label set breaches.
        let mut silences: Vec<Silence> = Vec::new();
        if breaching && !quiet_all {
            if let Some(url) = &self.receivers.alertmanager {
                silences = silences::fetch(&self.client, url)
                    .await
                    .unwrap_or_else(|e| {
                        tracing::warn!(%e, "Alertmanager's silences could not be read");
                        Vec::new()
                    });
            }
        }
        self.apply(entry, values, complete, &silences);
    }

    /// Records a failed evaluation (once per distinct reason in the history).
    fn failed(&self, entry: &Entry, reason: String) {
        let changed = {
            let mut book = self.book();
            let Some(e) = book.get_mut(&(entry.tenant.clone(), entry.rule.name.clone())) else {
                return;
            };
            e.last_eval_ms = Some(now_ms());
            let changed = e.last_error.as_deref() != Some(reason.as_str());
            e.last_error = Some(reason.clone());
            if changed {
                let _ = self.save(&book);
            }
            changed
        };
        if changed {
            self.record(
                &entry.tenant,
                &entry.rule.name,
                &Labels::new(),
                "error",
                None,
                reason,
            );
        }
    }

    /// Steps each label set of the rule with its value in this answer (`complete`: the answer
    /// holds every label set, so one it lacks has fallen back). The notifications due are put in
    /// the outbox before the new state is saved, so a crash between them repeats a notification
    /// rather than losing it.
    fn apply(&self, entry: &Entry, values: state::Values, complete: bool, silences: &[Silence]) {
        let now = now_ms();
        let mut events = Vec::new();
        let mut notices = Vec::new();
        let mut refresh = Vec::new();
        {
            let mut book = self.book();
            let Some(e) = book.get_mut(&(entry.tenant.clone(), entry.rule.name.clone())) else {
                return;
            };
            if e.rule != entry.rule {
                // Replaced while its query ran: the new rule's own evaluation follows.
                return;
            }
            let muted = e.muted(now);
            e.last_eval_ms = Some(now);
            let had_error = e.last_error.take().is_some();
            let mut seen = std::collections::BTreeSet::new();
            let mut silenced_by = None;
            let mut step_one = |e: &mut Entry, labels: Labels, value: Option<f64>| {
                let key = serde_json::to_string(&labels).unwrap_or_default();
                let am_labels = alert_labels(&e.tenant, &e.rule.name, &labels);
                let silence = silences.iter().find(|s| s.holds(&am_labels));
                if let Some(s) = silence {
                    silenced_by = Some(s.id.clone());
                }
                let series = e.series.entry(key).or_insert_with(|| Series::new(labels));
                let stepped = state::step(series, value, &e.rule, now, muted || silence.is_some());
                if let Some(what) = stepped.event {
                    let detail = match (what, muted, silence) {
                        ("firing", true, _) => "the rule is muted: not notified".to_string(),
                        ("firing", _, Some(s)) => {
                            format!("silenced in Alertmanager ({}): not notified", s.id)
                        }
                        ("firing", _, _) if stepped.notice.is_none() => {
                            "within the cooldown of the last notification: not notified".into()
                        }
                        _ => String::new(),
                    };
                    events.push((series.labels.clone(), what, series.value, detail));
                }
                if let Some(n) = stepped.notice {
                    notices.push((series.clone(), n));
                } else if series.phase == Phase::Firing && series.notified && !muted {
                    refresh.push(series.clone());
                }
            };
            for (labels, value) in values {
                seen.insert(serde_json::to_string(&labels).unwrap_or_default());
                step_one(e, labels, value);
            }
            // Label sets the answer no longer has fall back (and resolve if firing).
            let gone: Vec<Labels> = e
                .series
                .iter()
                .filter(|(k, _)| complete && !seen.contains(*k))
                .map(|(_, s)| s.labels.clone())
                .collect();
            for labels in gone {
                step_one(e, labels, None);
            }
            // A label set at rest and gone from the answer is forgotten once its cooldown is
            // over (so a burst right after it went quiet is not told twice).
            let cooldown = i64::try_from(e.rule.cooldown.as_millis()).unwrap_or(i64::MAX);
            e.series.retain(|_, s| {
                s.phase != Phase::Ok
                    || s.value.is_some()
                    || s.last_notified
                        .is_some_and(|t| now.saturating_sub(t) < cooldown)
            });
            e.silenced_by = silenced_by;
            let snapshot = e.clone();
            let changed = !events.is_empty();
            // In the history before the sender can attempt (and record) a delivery of it. A crash
            // before the save below undoes the state but not the event: the firing is then
            // recorded again when it is evaluated again (a repeated event, never a lost one).
            for (labels, what, value, detail) in events {
                self.record(
                    &snapshot.tenant,
                    &snapshot.rule.name,
                    &labels,
                    what,
                    value,
                    detail,
                );
            }
            for (series, notice) in &notices {
                self.notify(&snapshot, series, *notice, now);
            }
            for series in &refresh {
                self.refresh(&snapshot, series, now);
            }
            if had_error || changed {
                let _ = self.save(&book);
            }
        }
    }
}

/// The labels an alert carries to Alertmanager: `alertname`, `tenant`, and the rule's own
/// (names made valid for Alertmanager: letters, digits and `_`).
pub fn alert_labels(tenant: &str, rule: &str, labels: &Labels) -> Labels {
    let mut out = Labels::new();
    for (k, v) in labels {
        let mut name: String = k
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            name.insert(0, '_');
        }
        out.insert(name, v.clone());
    }
    out.insert("alertname".into(), rule.to_string());
    out.insert("tenant".into(), tenant.to_string());
    out
}
