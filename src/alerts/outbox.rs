//! Notifications waiting to be delivered, one file each under `alerts/outbox/`, written before
//! the first attempt and removed after the receiver took it: a delivery survives a restart and
//! is retried with backoff. Sending itself: Alertmanager's v2 API, or a webhook whose JSON body
//! is signed with HMAC-SHA256.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::state::Labels;

/// Longest wait between two attempts of one delivery.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A delivery still failing after this long is given up (and the history says so).
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(86_400);
/// Longest one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The header carrying a webhook body's signature: `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Timberline-Signature";

/// Where a notification goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Alertmanager,
    Webhook,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Alertmanager => "alertmanager",
            Target::Webhook => "webhook",
        }
    }
}

/// One notification to deliver.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    /// Its file's name; an Alertmanager update of a label set reuses the name, so only its
    /// newest state waits.
    pub id: String,
    pub target: Target,
    pub body: Value,
    /// The label set's key: a webhook delivery waits for the older ones of its label set.
    pub series: String,
    pub tenant: String,
    pub rule: String,
    pub labels: Labels,
    /// `firing`, `resolved`, or `refresh` (an Alertmanager alert kept alive).
    pub status: String,
    pub created_ms: i64,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub next_ms: i64,
    #[serde(default)]
    pub last_error: Option<String>,
}

/// The outbox directory.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    pub fn open(dir: &Path) -> std::io::Result<Outbox> {
        std::fs::create_dir_all(dir)?;
        Ok(Outbox {
            dir: dir.to_path_buf(),
        })
    }

    /// Keeps `d` (replacing a waiting one of the same id).
    pub fn put(&self, d: &Delivery) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(d).map_err(std::io::Error::other)?;
        crate::storage::replace_file(&self.path(&d.id), "tmp", &bytes)?;
        crate::storage::sync_dir(&self.dir)
    }

    /// Forgets a delivery (delivered or given up).
    pub fn remove(&self, id: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The waiting delivery `id`.
    pub fn get(&self, id: &str) -> Option<Delivery> {
        let bytes = std::fs::read(self.path(id)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Every waiting delivery, oldest first. A file that does not read is set aside as `.bad`.
    pub fn waiting(&self) -> Vec<Delivery> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return out;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            match std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Delivery>(&b).ok())
            {
                Some(d) => out.push(d),
                None => {
                    tracing::warn!(path = %path.display(), "an outbox file does not read; set aside");
                    let _ = std::fs::rename(&path, path.with_extension("bad"));
                }
            }
        }
        out.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        out
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }
}

/// The wait before attempt `attempts + 1`: 1 s, doubling, at most [`MAX_BACKOFF`].
pub fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(16)).min(MAX_BACKOFF)
}

/// Where notifications go, and the webhook's signing secret.
#[derive(Debug, Clone, Default)]
pub struct Receivers {
    pub alertmanager: Option<String>,
    pub webhook: Option<String>,
    pub webhook_secret: Option<String>,
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    format!(
        "sha256={}",
        hex::encode(ring::hmac::sign(&key, body).as_ref())
    )
}

/// One attempt at delivering `d`.
pub async fn send(client: &reqwest::Client, to: &Receivers, d: &Delivery) -> Result<(), String> {
    let (url, body) = match d.target {
        Target::Alertmanager => (
            to.alertmanager
                .as_deref()
                .map(|u| format!("{}/api/v2/alerts", u.trim_end_matches('/'))),
            serde_json::to_vec(&[&d.body]),
        ),
        Target::Webhook => (to.webhook.clone(), serde_json::to_vec(&d.body)),
    };
    let url = url.ok_or_else(|| format!("no {} is configured any more", d.target.as_str()))?;
    let body = body.map_err(|e| e.to_string())?;
    let mut req = client
        .post(&url)
        .timeout(ATTEMPT_TIMEOUT)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    if d.target == Target::Webhook {
        req = req.header("X-Timberline-Delivery", &d.id);
        if let Some(secret) = &to.webhook_secret {
            req = req.header(SIGNATURE_HEADER, signature(secret, &body));
        }
    }
    let resp = req
        .body(body)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let text = resp.text().await.unwrap_or_default();
    Err(format!(
        "{url} answered {status}: {}",
        text.chars().take(200).collect::<String>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn the_signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn deliveries_survive_reopening_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        let d = |id: &str, created_ms| Delivery {
            id: id.into(),
            target: Target::Webhook,
            body: serde_json::json!({"n": id}),
            series: "s".into(),
            tenant: "t".into(),
            rule: "r".into(),
            labels: Labels::new(),
            status: "firing".into(),
            created_ms,
            attempts: 0,
            next_ms: 0,
            last_error: None,
        };
        outbox.put(&d("b", 2)).unwrap();
        outbox.put(&d("a", 1)).unwrap();
        std::fs::write(dir.path().join("junk.json"), b"{").unwrap();
        let again = Outbox::open(dir.path()).unwrap();
        let ids: Vec<_> = again.waiting().into_iter().map(|d| d.id).collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(dir.path().join("junk.bad").exists());
        again.remove("a").unwrap();
        again.remove("a").unwrap();
        assert_eq!(again.waiting().len(), 1);
    }
}
