//! The evaluator: each rule's query run every `every` on the query threads, one rule at a time
//! (so rules never take more than one of a tenant's query places), its answer stepped through
//! each label set's state, and the notifications due put in the outbox.

use std::time::Duration;

use std::sync::Arc;

use super::silences::{self, Silence};
use super::state::{self, Labels, Phase, Series};
use super::{now_ms, Alerts, Entry, ANSWER_BYTES, RULE_USER};
use crate::metrics::metrics;

/// Longest sleep between two looks at the rules (a changed rule wakes the evaluator at once).
const IDLE: Duration = Duration::from_secs(1);

/// Evaluates the rules as they come due, for as long as the server runs.
pub async fn run(alerts: Arc<Alerts>) {
    loop {
        let now = now_ms();
        let due: Vec<Entry> = {
            let mut book = alerts.book();
            book.values_mut()
                .filter(|e| e.next_due <= now)
                .map(|e| {
                    // Behind by more than a period (a slow query, a restart): the next is a
                    // period from now, not a burst to catch up.
                    let every = e.rule.every.as_millis() as i64;
                    e.next_due = if e.next_due + every > now {
                        e.next_due.max(now - every) + every
                    } else {
                        now + every
                    };
                    e.clone()
                })
                .collect()
        };
        // Alertmanager's silences, read at most once a pass and only when some rule breaches.
        let mut silences: Option<Vec<Silence>> = None;
        for entry in due {
            alerts.evaluate(&entry, &mut silences).await;
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
    async fn evaluate(&self, entry: &Entry, silences: &mut Option<Vec<Silence>>) {
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
        let values = match answer {
            Ok((values, more)) => {
                metrics().alert_evaluation("ok");
                if more > 0 {
                    tracing::warn!(rule = %rule.name, more, "an alert rule's answer has more label sets than are followed");
                }
                values
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
        if breaching && !quiet_all && silences.is_none() {
            if let Some(url) = &self.receivers.alertmanager {
                *silences = Some(
                    silences::fetch(&self.client, url)
                        .await
                        .unwrap_or_else(|e| {
                            tracing::warn!(%e, "Alertmanager's silences could not be read");
                            Vec::new()
                        }),
                );
            }
        }
        self.apply(entry, values, silences.as_deref().unwrap_or(&[]));
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

    /// Steps each label set of the rule with its value in this answer.
    fn apply(&self, entry: &Entry, values: state::Values, silences: &[Silence]) {
        let now = now_ms();
        let mut events = Vec::new();
        let mut notices = Vec::new();
        let mut refresh = Vec::new();
        let snapshot = {
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
                .filter(|(k, _)| !seen.contains(*k))
                .map(|(_, s)| s.labels.clone())
                .collect();
            for labels in gone {
                step_one(e, labels, None);
            }
            // A label set at rest and gone from the answer is forgotten.
            e.series
                .retain(|_, s| s.phase != Phase::Ok || s.value.is_some());
            e.silenced_by = silenced_by;
            if had_error || !events.is_empty() {
                let _ = self.save(&book);
            }
            book.get(&(entry.tenant.clone(), entry.rule.name.clone()))
                .cloned()
        };
        let Some(snapshot) = snapshot else { return };
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
        for (series, notice) in notices {
            self.notify(&snapshot, &series, notice, now);
        }
        for series in refresh {
            self.refresh(&snapshot, &series, now);
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
