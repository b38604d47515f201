//! Notifications: built when a label set fires or resolves (and, for Alertmanager, refreshed
//! while it fires so Alertmanager does not time it out), kept in the outbox, and sent by one
//! sender that retries with backoff; a webhook's notifications of one label set go in order.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::eval::alert_labels;
use super::outbox::{self, Delivery, Target, GIVE_UP_AFTER};
use super::state::{Notice, Series};
use super::{now_ms, rfc3339, Alerts, Entry};
use crate::metrics::metrics;

/// Longest sleep of the sender between two looks at the outbox.
const IDLE: Duration = Duration::from_secs(1);

impl Alerts {
    /// Puts the notification of `series`'s `notice` in the outbox, for every receiver.
    pub(super) fn notify(&self, entry: &Entry, series: &Series, notice: Notice, now: i64) {
        let status = match notice {
            Notice::Firing => "firing",
            Notice::Resolved => "resolved",
        };
        if self.receivers.webhook.is_some() {
            let id = self.next_id(now);
            let body = json!({
                "delivery_id": id,
                "status": status,
                "rule": entry.rule.name,
                "tenant": entry.tenant,
                "labels": series.labels,
                "value": series.value,
                "threshold": entry.rule.threshold(),
                "summary": entry.rule.summary,
                "sql": entry.rule.sql,
                "started_at": series.last_fired.map(rfc3339),
                "at": rfc3339(now),
            });
            self.put(delivery(
                entry,
                series,
                Target::Webhook,
                id,
                body,
                status,
                now,
            ));
        }
        self.to_alertmanager(entry, series, status, now);
    }

    /// Keeps a firing label set alive in Alertmanager.
    pub(super) fn refresh(&self, entry: &Entry, series: &Series, now: i64) {
        self.to_alertmanager(entry, series, "refresh", now);
    }

    fn to_alertmanager(&self, entry: &Entry, series: &Series, status: &str, now: i64) {
        if self.receivers.alertmanager.is_none() {
            return;
        }
        // Firing: alive until three periods (and a minute) from now unless refreshed.
        let ends = match status {
            "resolved" => now,
            _ => now + 3 * entry.rule.every.as_millis() as i64 + 60_000,
        };
        let mut annotations = json!({
            "value": series.value.map(|v| v.to_string()).unwrap_or_default(),
            "threshold": entry.rule.threshold(),
            "sql": entry.rule.sql,
        });
        if let Some(s) = &entry.rule.summary {
            annotations["summary"] = json!(s);
        }
        let id = format!(
            "am-{:x}",
            md5::compute(series_key(entry, series).as_bytes())
        );
        let body = json!({
            "labels": alert_labels(&entry.tenant, &entry.rule.name, &series.labels),
            "annotations": annotations,
            "startsAt": rfc3339(series.last_fired.unwrap_or(now)),
            "endsAt": rfc3339(ends),
        });
        let d = delivery(entry, series, Target::Alertmanager, id, body, status, now);
        self.put(d);
    }

    fn put(&self, d: Delivery) {
        let put = {
            let _guard = self.settling.lock().unwrap_or_else(|p| p.into_inner());
            self.outbox.put(&d)
        };
        if let Err(e) = put {
            tracing::error!(%e, rule = %d.rule, "a notification could not be kept in the outbox");
            return;
        }
        self.wake_delivery.notify_one();
    }
}

/// A new delivery of `series`'s notification.
fn delivery(
    entry: &Entry,
    series: &Series,
    target: Target,
    id: String,
    body: serde_json::Value,
    status: &str,
    now: i64,
) -> Delivery {
    Delivery {
        id,
        target,
        body,
        series: series_key(entry, series),
        tenant: entry.tenant.clone(),
        rule: entry.rule.name.clone(),
        labels: series.labels.clone(),
        status: status.into(),
        created_ms: now,
        attempts: 0,
        next_ms: 0,
        last_error: None,
    }
}

/// A label set's identity across the outbox: tenant, rule and labels.
fn series_key(entry: &Entry, series: &Series) -> String {
    format!(
        "{}\u{1}{}\u{1}{}",
        entry.tenant,
        entry.rule.name,
        serde_json::to_string(&series.labels).unwrap_or_default()
    )
}

/// Sends what the outbox holds, for as long as the server runs.
pub async fn run(alerts: Arc<Alerts>) {
    loop {
        let now = now_ms();
        let mut next = now + IDLE.as_millis() as i64;
        // A webhook label set's older notification goes first, even when it waits to be retried.
        let mut blocked = HashSet::new();
        let waiting = alerts.outbox.waiting();
        // A notification is put in the outbox under the rules' lock, before the state that
        // caused it is saved: waiting for that lock here means nothing is sent whose state a
        // crash could still undo (which would notify it twice, under two delivery ids).
        // (On a blocking thread: an evaluation may hold the lock through its fsyncs.)
        let book = alerts.clone();
        let _ = tokio::task::spawn_blocking(move || drop(book.book())).await;
        for d in waiting {
            if d.target == Target::Webhook && !blocked.insert(d.series.clone()) {
                continue;
            }
            if d.next_ms > now {
                next = next.min(d.next_ms);
                continue;
            }
            let sent = outbox::send(&alerts.client, &alerts.receivers, &d).await;
            alerts.settle(d, sent);
        }
        let wait = Duration::from_millis(next.saturating_sub(now_ms()).max(0) as u64);
        tokio::select! {
            _ = alerts.wake_delivery.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

impl Alerts {
    /// Removes a delivered notification, or keeps it for a later attempt (gives it up after
    /// [`GIVE_UP_AFTER`]). An Alertmanager update replaced meanwhile is left to its successor.
    fn settle(&self, mut d: Delivery, sent: Result<(), String>) {
        let target = d.target.as_str();
        let _guard = self.settling.lock().unwrap_or_else(|p| p.into_inner());
        let replaced = self.outbox.get(&d.id).map(|w| w.created_ms) != Some(d.created_ms);
        let (tenant, rule) = (d.tenant.clone(), d.rule.clone());
        match sent {
            Ok(()) => {
                metrics().alert_notification(target, "delivered");
                if !replaced {
                    let _ = self.outbox.remove(&d.id);
                }
                if d.status != "refresh" {
                    let detail = format!("{} to {target}", d.status);
                    self.record(&tenant, &rule, &d.labels, "delivered", None, detail);
                }
            }
            Err(reason) => {
                metrics().alert_notification(target, "failed");
                if replaced {
                    return;
                }
                let age = now_ms().saturating_sub(d.created_ms);
                if age > GIVE_UP_AFTER.as_millis() as i64 {
                    let _ = self.outbox.remove(&d.id);
                    let detail = format!(
                        "{} to {target} given up after {} attempts: {reason}",
                        d.status,
                        d.attempts + 1
                    );
                    self.record(&tenant, &rule, &d.labels, "undeliverable", None, detail);
                    return;
                }
                if d.attempts == 0 {
                    let detail = format!("{} to {target}: {reason}; retrying", d.status);
                    self.record(&tenant, &rule, &d.labels, "delivery_failed", None, detail);
                }
                d.next_ms = now_ms() + outbox::backoff(d.attempts).as_millis() as i64;
                d.attempts += 1;
                d.last_error = Some(reason);
                if let Err(e) = self.outbox.put(&d) {
                    tracing::error!(%e, "a retry could not be kept in the outbox");
                }
            }
        }
    }
}
