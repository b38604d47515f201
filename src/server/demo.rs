//! `serve --demo`: fills an empty server with realistic logs, then keeps a trickle going.

use std::time::Duration;

use crate::generate::Generator;
use crate::ingest::Ingestor;
use crate::model::now_micros;

/// Backfills the last 15 minutes (if the store is empty) and then writes ~20 events/s, all through
/// the durable ingest path.
pub async fn run_demo(ingestor: Ingestor, backfill: bool) {
    const BACKFILL: usize = 30_000;
    let now = now_micros();
    if backfill {
        let window = 15 * 60 * 1_000_000;
        let mut gen = Generator::new(42, now - window, window / BACKFILL as i64);
        for _ in 0..BACKFILL / 1000 {
            let mut batch: Vec<_> = (0..1000)
                .map(|_| gen.next_record())
                .map(|mut r| {
                    r.ts = r.ts.min(now);
                    r.ingest_ts = now;
                    r
                })
                .collect();
            if let Err(e) = ingestor.accept(&mut batch).await {
                tracing::warn!(error = %e, "demo backfill batch refused");
            }
        }
        tracing::info!(rows = BACKFILL, "demo backfill written");
    }
    let mut gen = Generator::new(now as u64, now_micros(), 50_000);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let mut batch: Vec<_> = (0..10)
            .map(|_| {
                let mut r = gen.next_record();
                let t = now_micros();
                r.ts = t;
                r.ingest_ts = t;
                r
            })
            .collect();
        if let Err(e) = ingestor.accept(&mut batch).await {
            tracing::warn!(error = %e, "demo batch refused");
        }
    }
}
