//! Crash: SIGKILL the server at random points while a client ingests; every acknowledged event
//! must be present exactly once after restart.

use std::collections::HashSet;

use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::support::TestServer;

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_events_survive_sigkill_exactly_once() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x7157);
    let mut server = TestServer::start_with(&["--flush-bytes", "200000"]);
    let mut acked: HashSet<String> = HashSet::new();
    let mut sent = 0usize;
    for round in 0..4 {
        let http = server.http.clone();
        let kill_after = rng.gen_range(5..40);
        // Four concurrent writers; the server dies under them after `kill_after` acks.
        let client = crate::support::http();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<String>>();
        let mut writers = Vec::new();
        for w in 0..4 {
            let (client, http, tx) = (client.clone(), http.clone(), tx.clone());
            writers.push(tokio::spawn(async move {
                for b in 0.. {
                    let ids: Vec<String> =
                        (0..50).map(|i| format!("r{round}-w{w}-b{b}-{i}")).collect();
                    let logs: Vec<_> = ids
                        .iter()
                        .map(|id| json!({"msg": id, "level": "INFO"}))
                        .collect();
                    let resp = client
                        .post(format!("{http}/v1/ingest"))
                        .json(&json!({"source": {"service": "crash"}, "logs": logs}))
                        .send()
                        .await;
                    match resp {
                        Ok(r) if r.status().as_u16() == 202 => {
                            if tx.send(ids).is_err() {
                                return;
                            }
                        }
                        _ => return,
                    }
                }
            }));
        }
        drop(tx);
        let mut acks = 0;
        while let Some(ids) = rx.recv().await {
            sent += ids.len();
            acked.extend(ids);
            acks += 1;
            if acks == kill_after {
                server.kill();
            }
        }
        for w in writers {
            let _ = w.await;
        }
        server = server.restart();
    }
    assert!(sent > 0);
    let pg = server.pg().await;
    let rows = pg
        .query("SELECT msg FROM logs WHERE service = 'crash'", &[])
        .await
        .unwrap();
    let mut seen: HashSet<String> = HashSet::new();
    for r in &rows {
        let msg: String = r.get(0);
        assert!(seen.insert(msg.clone()), "duplicate row {msg}");
    }
    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| !seen.contains(*id))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but lost: {missing:?} (of {})",
        acked.len()
    );
}
