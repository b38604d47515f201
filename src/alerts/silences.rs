//! Alertmanager's silences (`GET /api/v2/silences`), so a silence set there mutes the alert
//! here too: an active silence whose matchers all match an alert's labels holds its webhook
//! notification.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// Longest wait for Alertmanager's silences; past it the evaluation goes on without them.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Deserialize)]
pub struct Silence {
    pub id: String,
    pub status: Status,
    pub matchers: Vec<Matcher>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Status {
    pub state: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Matcher {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub is_regex: bool,
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl Silence {
    /// Whether this silence, if active, holds an alert with `labels`.
    pub fn holds(&self, labels: &BTreeMap<String, String>) -> bool {
        self.status.state == "active" && self.matchers.iter().all(|m| m.matches(labels))
    }
}

impl Matcher {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        // Alertmanager reads a missing label as the empty string.
        let value = labels.get(&self.name).map(String::as_str).unwrap_or("");
        let hit = if self.is_regex {
            regex::Regex::new(&format!("^(?:{})$", self.value)).is_ok_and(|r| r.is_match(value))
        } else {
            value == self.value
        };
        hit == self.is_equal
    }
}

/// The silences Alertmanager at `url` holds.
pub async fn fetch(client: &reqwest::Client, url: &str) -> Result<Vec<Silence>, String> {
    let url = format!("{}/api/v2/silences", url.trim_end_matches('/'));
    let resp = client
        .get(&url)
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("{url} answered {}", resp.status()));
    }
    resp.json().await.map_err(|e| format!("{url}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn silence(state: &str, matchers: serde_json::Value) -> Silence {
        serde_json::from_value(serde_json::json!({
            "id": "s1", "status": {"state": state}, "matchers": matchers,
            "createdBy": "me", "comment": "x"
        }))
        .unwrap()
    }

    #[test]
    fn an_active_silence_holds_the_alerts_its_matchers_match() {
        let labels: BTreeMap<String, String> = [
            ("alertname".to_string(), "payments-errors".to_string()),
            ("service".to_string(), "checkout".to_string()),
        ]
        .into();
        let s = silence(
            "active",
            serde_json::json!([{"name": "alertname", "value": "payments-errors", "isRegex": false}]),
        );
        assert!(s.holds(&labels));
        let s = silence(
            "active",
            serde_json::json!([{"name": "service", "value": "check.*", "isRegex": true},
                               {"name": "alertname", "value": "other", "isRegex": false, "isEqual": false}]),
        );
        assert!(s.holds(&labels));
        let expired = silence(
            "expired",
            serde_json::json!([{"name": "alertname", "value": "payments-errors", "isRegex": false}]),
        );
        assert!(!expired.holds(&labels));
        // Anchored: a regex must match the whole value.
        let s = silence(
            "active",
            serde_json::json!([{"name": "service", "value": "check", "isRegex": true}]),
        );
        assert!(!s.holds(&labels));
    }
}
