//! The server's Prometheus metrics: one registry (`prometheus-client`), counted where things
//! happen (ingest, the WAL's group commit, flushes, queries, HTTP answers) and read at scrape
//! time where they are state (hot buffer, segments per tier, connections), served as text by
//! `GET /metrics`. Tenant labels are bounded: the first [`MAX_TENANT_LABELS`] tenants seen keep
//! their name, later ones count as `other`, so a tenant flood cannot grow the registry.

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The ingest protocols, as the `protocol` label names them.
pub const PROTOCOLS: [&str; 7] = [
    "http",
    "otlp_http",
    "otlp_grpc",
    "loki",
    "bulk",
    "syslog",
    "demo",
];

/// What became of a segment a scan considered (the `fate` label).
pub const SEGMENT_FATES: [&str; 5] = [
    "pruned_time",
    "pruned_bloom",
    "pruned_index",
    "counted",
    "scanned",
];

/// Distinct tenant label values before the rest are `other`.
pub const MAX_TENANT_LABELS: usize = 100;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Ingested {
    pub tenant: String,
    pub protocol: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Refused {
    pub protocol: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShedLabels {
    pub tenant: String,
    pub level: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Redacted {
    pub tenant: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Answered {
    pub route: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabels {
    pub receiver: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    pub kind: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabels {
    pub tier: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreOp {
    pub op: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SegmentFate {
    pub fate: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    pub listener: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabels {
    pub tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheOutcome {
    pub outcome: String,
}

fn seconds() -> Histogram {
    // 100 µs … ~100 s.
    Histogram::new(exponential_buckets(0.0001, 4.0, 11))
}

/// Every metric of the server.
pub struct Metrics {
    registry: Registry,
    tenants: Mutex<HashSet<String>>,
    pub ingest_events: Family<Ingested, Counter>,
    pub ingest_bytes: Family<Ingested, Counter>,
    pub ingest_refused: Family<Refused, Counter>,
    pub ingest_shed: Family<ShedLabels, Counter>,
    pub redactions: Family<Redacted, Counter>,
    pub audit_dropped: Counter,
    pub http_responses: Family<Answered, Counter>,
    pub wal_fsync_seconds: Histogram,
    pub wal_group_commit_batches: Histogram,
    pub flushes: Family<Outcome, Counter>,
    pub flush_seconds: Histogram,
    pub maintenance_passes: Family<Outcome, Counter>,
    pub maintenance_seconds: Histogram,
    pub queries: Family<QueryLabels, Counter>,
    pub query_seconds: Family<QueryLabels, Histogram, fn() -> Histogram>,
    pub hot_buffer_bytes: Gauge,
    pub segments: Family<TierLabels, Gauge>,
    pub segment_bytes: Family<TierLabels, Gauge>,
    pub connections: Family<ListenerLabels, Gauge>,
    pub object_store_requests: Family<StoreOp, Counter>,
    pub object_store_get_bytes: Counter,
    pub range_cache_hits: Counter,
    pub object_store_errors: Counter,
    pub scan_segments: Family<SegmentFate, Counter>,
    pub scan_bytes: Family<TierLabels, Counter>,
    pub index_fallbacks: Counter,
    pub rows_counted: Counter,
    pub rollup_rewrites: Counter,
    pub result_cache_segments: Family<CacheOutcome, Counter>,
    pub tail_streams: Family<TenantLabels, Gauge>,
    pub tail_rows: Counter,
    pub tail_dropped: Counter,
    pub alert_evaluations: Family<Outcome, Counter>,
    pub alert_notifications: Family<NotificationLabels, Counter>,
    /// Held while counters kept elsewhere are brought up to their totals.
    synced: Mutex<()>,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("timberline");
        let m = Metrics {
            registry: Registry::default(),
            tenants: Mutex::new(HashSet::new()),
            ingest_events: Family::default(),
            ingest_bytes: Family::default(),
            ingest_refused: Family::default(),
            ingest_shed: Family::default(),
            redactions: Family::default(),
            audit_dropped: Counter::default(),
            http_responses: Family::default(),
            wal_fsync_seconds: seconds(),
            wal_group_commit_batches: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            flushes: Family::default(),
            flush_seconds: seconds(),
            maintenance_passes: Family::default(),
            maintenance_seconds: seconds(),
            queries: Family::default(),
            query_seconds: Family::new_with_constructor(seconds),
            hot_buffer_bytes: Gauge::default(),
            segments: Family::default(),
            segment_bytes: Family::default(),
            connections: Family::default(),
            object_store_requests: Family::default(),
            object_store_get_bytes: Counter::default(),
            range_cache_hits: Counter::default(),
            object_store_errors: Counter::default(),
            scan_segments: Family::default(),
            scan_bytes: Family::default(),
            index_fallbacks: Counter::default(),
            rows_counted: Counter::default(),
            rollup_rewrites: Counter::default(),
            result_cache_segments: Family::default(),
            tail_streams: Family::default(),
            tail_rows: Counter::default(),
            tail_dropped: Counter::default(),
            alert_evaluations: Family::default(),
            alert_notifications: Family::default(),
            synced: Mutex::new(()),
        };
        let r = &mut registry;
        r.register(
            "ingest_events",
            "Events accepted (durable), by tenant and protocol",
            m.ingest_events.clone(),
        );
        r.register(
            "ingest_bytes",
            "Bytes of events accepted, by tenant and protocol",
            m.ingest_bytes.clone(),
        );
        r.register(
            "ingest_refused",
            "Batches refused at the accept path, by protocol and reason",
            m.ingest_refused.clone(),
        );
        r.register(
            "ingest_shed",
            "Events a tenant's ingest quota shed (lowest levels first), by tenant and level",
            m.ingest_shed.clone(),
        );
        r.register(
            "audit_dropped",
            "Audit events dropped: the audit queue was full, or the WAL failed ten times",
            m.audit_dropped.clone(),
        );
        r.register(
            "redactions",
            "PII findings redacted at ingest, by tenant and detector (a tenant's own rules: custom)",
            m.redactions.clone(),
        );
        r.register(
            "http_responses",
            "HTTP answers by route and status",
            m.http_responses.clone(),
        );
        r.register(
            "wal_fsync_seconds",
            "Time of one WAL group write and fsync",
            m.wal_fsync_seconds.clone(),
        );
        r.register(
            "wal_group_commit_batches",
            "Batches made durable by one WAL fsync",
            m.wal_group_commit_batches.clone(),
        );
        r.register(
            "flushes",
            "Flushes of the hot buffer to segments, by outcome",
            m.flushes.clone(),
        );
        r.register(
            "flush_seconds",
            "Time of one flush",
            m.flush_seconds.clone(),
        );
        r.register(
            "maintenance_passes",
            "Maintenance passes (compaction, moves, retention), by outcome",
            m.maintenance_passes.clone(),
        );
        r.register(
            "maintenance_seconds",
            "Time of one maintenance pass",
            m.maintenance_seconds.clone(),
        );
        r.register(
            "queries",
            "SQL statements answered over pgwire, by kind and outcome",
            m.queries.clone(),
        );
        r.register(
            "query_seconds",
            "Time from a statement's arrival to its last row, by kind and outcome",
            m.query_seconds.clone(),
        );
        r.register(
            "hot_buffer_bytes",
            "Bytes held in the hot buffer",
            m.hot_buffer_bytes.clone(),
        );
        r.register(
            "segments",
            "Segments in the catalog, by tier",
            m.segments.clone(),
        );
        r.register(
            "segment_bytes",
            "Bytes of segments, by tier",
            m.segment_bytes.clone(),
        );
        r.register(
            "connections",
            "Open connections, by listener",
            m.connections.clone(),
        );
        r.register(
            "object_store_requests",
            "Requests to the cold tier's object store, by operation (get; other: put, head, list, delete)",
            m.object_store_requests.clone(),
        );
        r.register(
            "object_store_get_bytes",
            "Bytes the object store's GETs returned",
            m.object_store_get_bytes.clone(),
        );
        r.register(
            "range_cache_hits",
            "Cold range reads answered from the in-memory range cache",
            m.range_cache_hits.clone(),
        );
        r.register(
            "object_store_errors",
            "Object-store requests that failed after the client's retries",
            m.object_store_errors.clone(),
        );
        r.register(
            "scan_segments",
            "Segments the queries' scans considered, by fate (pruned_time, pruned_bloom, pruned_index, counted from count tables or rollup partials, scanned)",
            m.scan_segments.clone(),
        );
        r.register(
            "scan_bytes",
            "Bytes of the segments the queries' scans read, by tier",
            m.scan_bytes.clone(),
        );
        r.register(
            "index_fallbacks",
            "Segments scanned whole because their index could not answer (missing, unreadable, or a query it cannot serve)",
            m.index_fallbacks.clone(),
        );
        r.register(
            "rows_counted",
            "Rows answered from count tables or rollup partials without being read",
            m.rows_counted.clone(),
        );
        r.register(
            "rollup_rewrites",
            "Aggregates answered from a rollup view's partials (the count tables' built-in view included)",
            m.rollup_rewrites.clone(),
        );
        r.register(
            "result_cache_segments",
            "Segments whose aggregate states the result cache had (hit) or a query computed (miss)",
            m.result_cache_segments.clone(),
        );
        r.register(
            "tail_streams",
            "Live-tail streams open, by tenant",
            m.tail_streams.clone(),
        );
        r.register(
            "tail_rows",
            "Rows sent to live-tail streams as they were ingested",
            m.tail_rows.clone(),
        );
        r.register(
            "tail_dropped_rows",
            "Matching rows live-tail streams dropped because their client read too slowly",
            m.tail_dropped.clone(),
        );
        r.register(
            "alert_evaluations",
            "Alert rule evaluations, by outcome (ok, error)",
            m.alert_evaluations.clone(),
        );
        r.register(
            "alert_notifications",
            "Alert notification attempts, by receiver and outcome (delivered, failed)",
            m.alert_notifications.clone(),
        );
        for outcome in ["hit", "miss"] {
            let _ = m.result_cache_segments.get_or_create(&CacheOutcome {
                outcome: outcome.into(),
            });
        }
        for fate in SEGMENT_FATES {
            let _ = m
                .scan_segments
                .get_or_create(&SegmentFate { fate: fate.into() });
        }
        for tier in ["hot", "warm", "cold"] {
            let _ = m
                .scan_bytes
                .get_or_create(&TierLabels { tier: tier.into() });
        }
        // Every series a dashboard or alert divides by exists from the start, at zero (a
        // missing series is not a zero to PromQL).
        for protocol in PROTOCOLS {
            for reason in ["buffer_full", "too_large", "wal", "batch"] {
                let _ = m.ingest_refused.get_or_create(&Refused {
                    protocol: protocol.into(),
                    reason: reason.into(),
                });
            }
        }
        for kind in ["point", "search", "aggregate", "rollup", "select"] {
            for outcome in ["ok", "error", "cancelled"] {
                let labels = QueryLabels {
                    kind: kind.into(),
                    outcome: outcome.into(),
                };
                let _ = m.queries.get_or_create(&labels);
                let _ = m.query_seconds.get_or_create(&labels);
            }
        }
        for outcome in ["ok", "error"] {
            let labels = Outcome {
                outcome: outcome.into(),
            };
            let _ = m.flushes.get_or_create(&labels);
            let _ = m.maintenance_passes.get_or_create(&labels);
        }
        for op in ["get", "other"] {
            let _ = m
                .object_store_requests
                .get_or_create(&StoreOp { op: op.into() });
        }
        Metrics { registry, ..m }
    }

    /// `tenant` as a label value: its name while fewer than [`MAX_TENANT_LABELS`] are named.
    pub fn tenant_label(&self, tenant: &str) -> String {
        let mut seen = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains(tenant) {
            return tenant.to_string();
        }
        if seen.len() < MAX_TENANT_LABELS {
            seen.insert(tenant.to_string());
            return tenant.to_string();
        }
        "other".to_string()
    }

    /// Counts an alert rule's evaluation.
    pub fn alert_evaluation(&self, outcome: &str) {
        self.alert_evaluations
            .get_or_create(&Outcome {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Counts an attempt at delivering an alert notification.
    pub fn alert_notification(&self, receiver: &str, outcome: &str) {
        self.alert_notifications
            .get_or_create(&NotificationLabels {
                receiver: receiver.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// A live-tail stream of `tenant` opened (`1`) or closed (`-1`).
    pub fn tail_stream(&self, tenant: &str, delta: i64) {
        let labels = TenantLabels {
            tenant: self.tenant_label(tenant),
        };
        self.tail_streams.get_or_create(&labels).inc_by(delta);
    }

    /// Counts a batch made durable.
    pub fn ingested(&self, tenant: &str, protocol: &str, events: usize, bytes: usize) {
        let labels = Ingested {
            tenant: self.tenant_label(tenant),
            protocol: protocol.to_string(),
        };
        self.ingest_events
            .get_or_create(&labels)
            .inc_by(events as u64);
        self.ingest_bytes
            .get_or_create(&labels)
            .inc_by(bytes as u64);
    }

    /// Counts a batch refused at the accept path.
    pub fn refused(&self, protocol: &str, reason: &str) {
        self.ingest_refused
            .get_or_create(&Refused {
                protocol: protocol.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Counts events a quota shed; the level is one of the canonical six or `other`.
    pub fn shed(&self, tenant: &str, level: &str, events: usize) {
        let level = match level {
            "TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR" | "FATAL" => level,
            _ => "other",
        };
        self.ingest_shed
            .get_or_create(&ShedLabels {
                tenant: self.tenant_label(tenant),
                level: level.to_string(),
            })
            .inc_by(events as u64);
    }

    /// Counts redacted findings of a detector (`custom` for a tenant's own rules).
    pub fn redacted(&self, tenant: &str, kind: &str, findings: u64) {
        self.redactions
            .get_or_create(&Redacted {
                tenant: self.tenant_label(tenant),
                kind: kind.to_string(),
            })
            .inc_by(findings);
    }

    /// Counts a statement and its time.
    pub fn query(&self, kind: &str, outcome: &str, took: Duration) {
        let labels = QueryLabels {
            kind: kind.to_string(),
            outcome: outcome.to_string(),
        };
        self.queries.get_or_create(&labels).inc();
        self.query_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// Brings counters kept elsewhere (the object store's) up to their totals, at scrape time.
    pub fn sync_store(&self, gets: u64, get_bytes: u64, other: u64, hits: u64, errors: u64) {
        let _one = self.synced.lock().unwrap_or_else(|p| p.into_inner());
        let up_to = |c: &Counter, total: u64| {
            c.inc_by(total.saturating_sub(c.get()));
        };
        let op = |name: &str| StoreOp { op: name.into() };
        up_to(&self.object_store_requests.get_or_create(&op("get")), gets);
        up_to(
            &self.object_store_requests.get_or_create(&op("other")),
            other,
        );
        up_to(&self.object_store_get_bytes, get_bytes);
        up_to(&self.range_cache_hits, hits);
        up_to(&self.object_store_errors, errors);
    }

    /// The registry in Prometheus's text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_labels_are_bounded_and_the_text_names_them() {
        let m = Metrics::new();
        for i in 0..MAX_TENANT_LABELS + 5 {
            m.ingested(&format!("t{i}"), "http", 2, 10);
        }
        let text = m.render();
        assert!(
            text.contains(r#"timberline_ingest_events_total{tenant="t0",protocol="http"} 2"#),
            "{text}"
        );
        // The five past the bound are one `other` series.
        assert!(
            text.contains(r#"timberline_ingest_events_total{tenant="other",protocol="http"} 10"#),
            "{text}"
        );
        assert_eq!(
            text.matches("timberline_ingest_events_total{").count(),
            MAX_TENANT_LABELS + 1
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
