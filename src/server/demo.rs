//! `serve --demo`: fills an empty server with realistic logs and a planted incident, then keeps
//! a trickle going.

use std::time::Duration;

use crate::generate::Generator;
use crate::ingest::Ingestor;
use crate::model::{now_micros, LogRecord, Micros, DEFAULT_TENANT};

/// The planted incident starts this long before the server does (the README's tour names it).
pub const INCIDENT_AGO_MICROS: Micros = 10 * 60 * 1_000_000;
/// The trace that runs through the incident's first failed checkout, across four services.
pub const INCIDENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Backfills the last 15 minutes with a planted incident (if the store is empty) and then writes ~20 events/s, all through
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
            if let Err(e) = ingestor.accept(&mut batch, "demo").await {
                tracing::warn!(error = %e, "demo backfill batch refused");
            }
        }
        let mut incident = planted_incident(now - INCIDENT_AGO_MICROS);
        if let Err(e) = ingestor.accept(&mut incident, "demo").await {
            tracing::warn!(error = %e, "demo incident refused");
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
        if let Err(e) = ingestor.accept(&mut batch, "demo").await {
            tracing::warn!(error = %e, "demo batch refused");
        }
    }
}

/// A burst of payment errors, ten minutes before `start`'s server: an issuer gateway times
/// out, `payments` declines cards for half a minute on every host (`card declined`, ERROR, with
/// `error_code` and `duration_ms`), and one checkout's trace ([`INCIDENT_TRACE`]) runs through
/// api-gateway, checkout, payments-07 and fraud before its circuit breaker opens.
fn planted_incident(start: Micros) -> Vec<LogRecord> {
    let start = start - start.rem_euclid(1_000_000);
    let ms = 1_000;
    let record = |at: Micros,
                  service: &str,
                  host: &str,
                  level: &str,
                  msg: String,
                  trace: Option<&str>,
                  attrs: serde_json::Value| LogRecord {
        ts: start + at,
        ingest_ts: start + at,
        tenant: DEFAULT_TENANT.into(),
        service: service.into(),
        host: host.into(),
        level: level.into(),
        msg,
        trace_id: trace.map(str::to_string),
        attrs: attrs.to_string(),
        parse_failed: false,
        truncated: false,
    };
    let t = Some(INCIDENT_TRACE);
    let order = "o-88412";
    let mut out = vec![
        record(
            0,
            "api-gateway",
            "api-gateway-02",
            "INFO",
            format!("POST /api/v1/checkout order {order} routed to checkout"),
            t,
            serde_json::json!({"http_method": "POST", "http_path": "/api/v1/checkout", "user_id": "u4711"}),
        ),
        record(
            9 * ms,
            "checkout",
            "checkout-03",
            "INFO",
            format!("checkout started for order {order}, 3 items, total 129.90 EUR"),
            t,
            serde_json::json!({"order_id": order, "user_id": "u4711"}),
        ),
        record(
            21 * ms,
            "fraud",
            "fraud-01",
            "INFO",
            format!("risk score 12 for order {order}: accept"),
            t,
            serde_json::json!({"order_id": order, "score": 12}),
        ),
        record(
            40 * ms,
            "payments",
            "payments-07",
            "WARN",
            "issuer gateway latency 2875 ms above the 2000 ms budget".into(),
            t,
            serde_json::json!({"duration_ms": 2875, "gateway": "issuer-eu"}),
        ),
        record(
            3_040 * ms,
            "payments",
            "payments-07",
            "ERROR",
            "card declined: issuer gateway timeout after 3000 ms".into(),
            t,
            serde_json::json!({"duration_ms": 3000, "error_code": "ISSUER_TIMEOUT", "gateway": "issuer-eu", "order_id": order}),
        ),
        record(
            3_052 * ms,
            "checkout",
            "checkout-03",
            "ERROR",
            format!("payment failed for order {order}: card declined"),
            t,
            serde_json::json!({"order_id": order, "user_id": "u4711"}),
        ),
        record(
            3_060 * ms,
            "api-gateway",
            "api-gateway-02",
            "WARN",
            "POST /api/v1/checkout answered 502 in 3061 ms".into(),
            t,
            serde_json::json!({"http_status": 502, "duration_ms": 3061}),
        ),
    ];
    for i in 0..60_i64 {
        let host = format!("payments-{:02}", [7, 2, 7, 4, 9, 7][(i % 6) as usize]);
        let trace = format!(
            "{:032x}",
            0x9e37_79b9_7f4a_7c15_u128.wrapping_mul(i as u128 + 1)
        );
        out.push(record(
            3_500 * ms + i * 450 * ms,
            "payments",
            &host,
            "ERROR",
            "card declined: issuer gateway timeout after 3000 ms".into(),
            Some(&trace),
            serde_json::json!({"duration_ms": 3000 + i % 7, "error_code": "ISSUER_TIMEOUT", "gateway": "issuer-eu"}),
        ));
    }
    out.push(record(
        31_000 * ms,
        "payments",
        "payments-07",
        "ERROR",
        "issuer gateway circuit breaker open after 61 timeouts in 30 s".into(),
        None,
        serde_json::json!({"gateway": "issuer-eu", "error_code": "CIRCUIT_OPEN"}),
    ));
    out
}
