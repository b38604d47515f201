//! Rollup views: Grafana-shaped queries answer the same with the rewrite on and off (the off
//! answer is a scan of the rows), over flushed segments with partials, segments backfilled
//! after the view was made, late rows, the hot buffer, and after compaction, a move to the
//! cold tier and a restart; the plan names the view; definitions that cannot be rolled up are
//! refused with a reason; only the administrator may create one.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio_postgres::Client;

use crate::support::{explain, text_rows, TestServer};

const SERVICES: [&str; 3] = ["payments", "checkout", "auth"];
const LEVELS: [&str; 4] = ["INFO", "WARN", "ERROR", "DEBUG"];
const REGIONS: [&str; 2] = ["eu", "us"];
const MINUTE_US: i64 = 60_000_000;
const HOUR_US: i64 = 60 * MINUTE_US;

/// Per service and minute: volume, latency and users (flushed at once, so backfill has no
/// segment to do for the rows that come after it).
const PER_MINUTE: &str = "CREATE MATERIALIZED VIEW per_minute AS SELECT date_trunc('minute', ts) AS t, service, level, count(*) AS n, avg((attrs->>'duration_ms')::double) AS avg_ms, max((attrs->>'duration_ms')::double) AS max_ms, min((attrs->>'duration_ms')::double) AS min_ms, sum((attrs->>'duration_ms')::double) AS sum_ms, approx_distinct(attrs->>'user') AS users FROM logs GROUP BY 1, 2, 3";
/// Errors per 5 minutes by service and region, with their p99 latency (made after data).
const ERRORS_5M: &str = "CREATE MATERIALIZED VIEW errors_5m AS SELECT date_bin(INTERVAL '5 minutes', ts) AS t, service, attrs->>'region' AS region, count(*) AS n, approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY (attrs->>'duration_ms')::double) AS p99 FROM logs WHERE level = 'ERROR' GROUP BY 1, 2, 3";

pub fn now_us() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    // Whole hours, so every run splits the same way into hours.
    (now.as_micros() as i64).div_euclid(HOUR_US) * HOUR_US
}

pub fn iso(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .expect("in range")
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// `n` events over the `hours` before `end`, a tenth of them on a minute boundary.
pub fn events(rng: &mut StdRng, n: usize, end: i64, hours: i64) -> Vec<Value> {
    (0..n)
        .map(|_| {
            let ts = match rng.gen_range(0..10) {
                0 => end - rng.gen_range(1..hours * 60) * MINUTE_US,
                _ => end - rng.gen_range(1..hours * HOUR_US),
            };
            let service = SERVICES[rng.gen_range(0..SERVICES.len())];
            json!({
                "ts": iso(ts), "service": service, "host": format!("{service}-{}", rng.gen_range(0..2)),
                "level": LEVELS[rng.gen_range(0..LEVELS.len())], "msg": "m",
                "region": REGIONS[rng.gen_range(0..2)],
                "duration_ms": rng.gen_range(1..5_000) as f64 / 10.0,
                "user": format!("u{}", rng.gen_range(0..200)),
            })
        })
        .collect()
}

/// A Grafana-shaped query over `[from, to]`, its macros expanded as Grafana expands them.
pub fn query(rng: &mut StdRng, from: i64, to: i64) -> String {
    let time = [
        "floor(extract(epoch from ts)/300)*300 AS \"time\"",
        "date_trunc('hour', ts) AS \"time\"",
        "date_bin(INTERVAL '15 minutes', ts) AS \"time\"",
        "date_trunc('minute', ts) AS \"time\"",
        "floor(extract(epoch from ts)/60)*60 AS \"time\"",
    ][rng.gen_range(0..5)];
    let errors = rng.gen_bool(0.4);
    let (dims, filters, aggs) = if errors {
        let dims = [
            "",
            ", service",
            ", attrs->>'region' AS region",
            ", service, attrs->>'region'",
        ][rng.gen_range(0..4)];
        let filter =
            ["", " AND service = 'auth'", " AND attrs->>'region' = 'eu'"][rng.gen_range(0..3)];
        let aggs = ["count(*) AS errors", "count(*), approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY (attrs->>'duration_ms')::double) AS p99"]
            [rng.gen_range(0..2)];
        (dims, format!(" AND level = 'ERROR'{filter}"), aggs)
    } else {
        let dims = ["", ", service", ", level", ", service, level"][rng.gen_range(0..4)];
        let filter = [
            "",
            " AND level IN ('ERROR', 'WARN')",
            " AND service = 'payments'",
            " AND service <> 'auth'",
        ][rng.gen_range(0..4)];
        let aggs = [
            "count(*)",
            "avg((attrs->>'duration_ms')::double) AS avg_ms, max((attrs->>'duration_ms')::double)",
            "count(*), sum((attrs->>'duration_ms')::double), min((attrs->>'duration_ms')::double)",
            "approx_distinct(attrs->>'user') AS users",
        ][rng.gen_range(0..4)];
        (dims, filter.to_string(), aggs)
    };
    let n_groups = 1 + dims.matches(',').count();
    let order: Vec<String> = (1..=n_groups).map(|i| i.to_string()).collect();
    format!(
        "SELECT {time}{dims}, {aggs} FROM logs WHERE ts BETWEEN '{}' AND '{}'{filters} GROUP BY {} ORDER BY {}",
        iso(from),
        iso(to),
        order.join(", "),
        order.join(", ")
    )
}

/// A random range: whole hours, whole minutes, or bounds inside minutes.
pub fn range(rng: &mut StdRng, end: i64, hours: i64) -> (i64, i64) {
    let a = end - rng.gen_range(0..hours * HOUR_US);
    let b = end - rng.gen_range(0..hours * HOUR_US);
    let (lo, hi) = (a.min(b), a.max(b));
    match rng.gen_range(0..3) {
        0 => (
            lo.div_euclid(HOUR_US) * HOUR_US,
            hi.div_euclid(HOUR_US) * HOUR_US - 1,
        ),
        1 => (
            lo.div_euclid(MINUTE_US) * MINUTE_US,
            hi.div_euclid(MINUTE_US) * MINUTE_US,
        ),
        _ => (lo, hi),
    }
}

async fn set(client: &Client, mode: &str) {
    client
        .batch_execute(&format!("SET timberline.rollups = {mode}"))
        .await
        .expect("set");
}

/// Cells equal, numbers within a relative 1e-9 (sums of floats depend on their order).
pub fn same(a: &[String], b: &[String]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.split('|').zip(y.split('|')).all(|(p, q)| {
                p == q
                    || match (p.parse::<f64>(), q.parse::<f64>()) {
                        (Ok(p), Ok(q)) => (p - q).abs() <= 1e-9 * p.abs().max(q.abs()).max(1.0),
                        _ => false,
                    }
            })
        })
}

/// Runs `queries` with the rewrite off and on; the answers must agree. Returns how many were
/// answered from a user view, and the answers.
async fn both_ways(client: &Client, queries: &[String]) -> (usize, Vec<Vec<String>>) {
    let mut answered = 0;
    let mut answers = Vec::new();
    for sql in queries {
        // approx_percentile_cont's digest depends on how states merge: compared with a
        // tolerance below, not here.
        set(client, "off").await;
        let off = text_rows(client, sql).await;
        set(client, "on").await;
        let on = text_rows(client, sql).await;
        if sql.contains("p99") {
            assert_eq!(off.len(), on.len(), "{sql}");
        } else {
            assert!(same(&off, &on), "{sql}\noff: {off:?}\non: {on:?}");
        }
        let plan = explain(client, sql).await;
        if plan.contains("rollup=per_minute") || plan.contains("rollup=errors_5m") {
            answered += 1;
        } else {
            eprintln!("not from a view: {sql}");
        }
        answers.push(on);
    }
    (answered, answers)
}

async fn view_state(client: &Client, name: &str) -> String {
    text_rows(
        client,
        &format!("SELECT state FROM rollups WHERE name = '{name}'"),
    )
    .await
    .join(",")
}

/// Waits (by asking, a bounded number of times) for a view's backfill to finish.
async fn backfilled(client: &Client, name: &str) {
    for _ in 0..600 {
        if view_state(client, name).await == "ready" {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("view {name} never finished its backfill");
}

#[tokio::test(flavor = "multi_thread")]
async fn grafana_queries_answer_the_same_from_views_across_flushes_late_rows_and_tiers() {
    let cold = tempfile::tempdir().expect("tempdir");
    let store = format!("file://{}", cold.path().display());
    let server = TestServer::start_with(&[
        "--object-store",
        &store,
        "--compact-after",
        "1h",
        "--cold-after",
        "2d",
        "--maintenance-interval",
        "0",
    ]);
    let client = server.pg().await;
    let mut rng = StdRng::seed_from_u64(18);
    let end = now_us();
    let hours = 72;
    client.batch_execute(PER_MINUTE).await.expect("per_minute");
    for _ in 0..3 {
        server
            .ingest_ndjson(events(&mut rng, 1_500, end, hours))
            .await;
        server.flush().await;
    }
    // Made after data: its partials are backfilled.
    client.batch_execute(ERRORS_5M).await.expect("errors_5m");
    backfilled(&client, "errors_5m").await;
    backfilled(&client, "per_minute").await;
    // Late rows, into hours that already have segments, some flushed and some left hot.
    server
        .ingest_ndjson(events(&mut rng, 800, end, hours))
        .await;
    server.flush().await;
    server
        .ingest_ndjson(events(&mut rng, 500, end, hours))
        .await;

    let queries: Vec<String> = (0..60)
        .map(|_| {
            let (from, to) = range(&mut rng, end, hours);
            query(&mut rng, from, to)
        })
        .collect();
    let (answered, before) = both_ways(&client, &queries).await;
    assert!(answered >= 45, "only {answered} of 60 queries used a view");

    // Compaction and the cold tier change where partials live, not the answers.
    let report = server.maintain().await;
    assert!(report["compacted_segments"].as_u64() > Some(0), "{report}");
    assert!(report["moved_segments"].as_u64() > Some(0), "{report}");
    let (answered_after, after) = both_ways(&client, &queries).await;
    assert_eq!(answered_after, answered);
    for ((b, a), sql) in before.iter().zip(&after).zip(&queries) {
        if !sql.contains("p99") {
            assert!(same(b, a), "{sql}");
        }
    }
    // A restart keeps the views and their partials.
    let server = server.restart();
    let client = server.pg().await;
    let views = text_rows(&client, "SELECT name FROM rollups ORDER BY name").await;
    assert_eq!(views, ["errors_5m", "per_minute"]);
    let (answered_restarted, _) = both_ways(&client, &queries[..20]).await;
    assert!(answered_restarted >= 10);

    // p99 from merged digests stays near the exact percentile.
    let sql = "SELECT service, approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY (attrs->>'duration_ms')::double), percentile_cont(0.99) WITHIN GROUP (ORDER BY (attrs->>'duration_ms')::double) FROM logs WHERE level = 'ERROR' GROUP BY 1 ORDER BY 1";
    for row in text_rows(&client, sql).await {
        let cells: Vec<f64> = row
            .split('|')
            .skip(1)
            .filter_map(|c| c.parse().ok())
            .collect();
        assert!((cells[0] - cells[1]).abs() <= 25.0, "{row}");
    }
}

fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code().map(|c| c.code().to_string()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn views_are_defined_listed_dropped_and_refused_with_reasons() {
    let server = TestServer::start();
    let client = server.pg().await;
    let mut rng = StdRng::seed_from_u64(3);
    server
        .ingest_ndjson(events(&mut rng, 400, now_us(), 3))
        .await;
    server.flush().await;
    for (sql, code, says) in [
        ("CREATE MATERIALIZED VIEW v AS SELECT date_trunc('minute', ts), msg, count(*) FROM logs GROUP BY 1, 2", "0A000", "msg"),
        ("CREATE MATERIALIZED VIEW v AS SELECT date_trunc('second', ts), count(*) FROM logs GROUP BY 1", "0A000", "finer than a minute"),
        ("CREATE MATERIALIZED VIEW v AS SELECT date_trunc('month', ts), count(*) FROM logs GROUP BY 1", "0A000", "fixed width"),
        ("CREATE MATERIALIZED VIEW v AS SELECT service, count(*) FROM logs GROUP BY 1", "0A000", "time bucket"),
        ("CREATE MATERIALIZED VIEW v AS SELECT date_trunc('minute', ts), count(DISTINCT host) FROM logs GROUP BY 1", "0A000", "approx_distinct"),
        ("CREATE MATERIALIZED VIEW v AS SELECT date_trunc('minute', ts), median((attrs->>'x')::double) FROM logs GROUP BY 1", "0A000", "median"),
        ("CREATE MATERIALIZED VIEW v AS SELECT date_trunc('minute', ts), count(*) FROM logs WHERE ts > now() - INTERVAL '1 hour' GROUP BY 1", "0A000", "now"),
        ("CREATE MATERIALIZED VIEW v AS SELECT date_trunc('minute', ts), count(*) FROM segments GROUP BY 1", "", ""),
        ("CREATE MATERIALIZED VIEW logs AS SELECT date_trunc('minute', ts), count(*) FROM logs GROUP BY 1", "42P07", "exists"),
        ("CREATE VIEW v AS SELECT 1", "25006", "read-only"),
        ("DROP MATERIALIZED VIEW nope", "42P01", "does not exist"),
        ("REFRESH MATERIALIZED VIEW nope", "42P01", "does not exist"),
    ] {
        let e = client.batch_execute(sql).await.expect_err(sql);
        if !code.is_empty() {
            assert_eq!(sqlstate(&e), code, "{sql}: {e:?}");
            assert!(format!("{e:?}").contains(says), "{sql}: {e:?}");
        }
    }
    client
        .batch_execute("CREATE MATERIALIZED VIEW hourly AS SELECT date_trunc('hour', ts) AS hour, level, count(*) AS n FROM logs GROUP BY 1, 2")
        .await
        .expect("create");
    client
        .batch_execute("CREATE MATERIALIZED VIEW IF NOT EXISTS hourly AS SELECT date_trunc('hour', ts) AS hour, count(*) FROM logs GROUP BY 1")
        .await
        .expect("if not exists");
    let e = client
        .batch_execute("CREATE MATERIALIZED VIEW hourly AS SELECT date_trunc('hour', ts), count(*) FROM logs GROUP BY 1")
        .await
        .expect_err("twice");
    assert_eq!(sqlstate(&e), "42P07");
    backfilled(&client, "hourly").await;
    client
        .batch_execute("REFRESH MATERIALIZED VIEW hourly")
        .await
        .expect("refresh");
    // Selected like a table, it answers what its definition over the rows answers.
    let from_view = text_rows(&client, "SELECT hour, level, n FROM hourly ORDER BY 1, 2").await;
    let plan = explain(&client, "SELECT hour, level, n FROM hourly").await;
    assert!(plan.contains("rollup=hourly"), "{plan}");
    set(&client, "off").await;
    let from_rows = text_rows(
        &client,
        "SELECT date_trunc('hour', ts), level, count(*) FROM logs GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .await;
    assert_eq!(from_view, from_rows);
    assert!(!from_view.is_empty());
    // In a zone whose hours are not UTC hours, the hourly view cannot answer by the hour: the
    // same answer comes from the rows.
    client
        .batch_execute("SET TimeZone = 'Asia/Kolkata'")
        .await
        .expect("zone");
    let local = "SELECT date_trunc('hour', ts), count(*) FROM logs GROUP BY 1 ORDER BY 1";
    let by_rows = text_rows(&client, local).await;
    set(&client, "on").await;
    assert_eq!(text_rows(&client, local).await, by_rows);
    set(&client, "off").await;
    client
        .batch_execute("SET TimeZone = 'UTC'")
        .await
        .expect("utc");

    // `require` makes a query no view answers an error; `on` scans it.
    set(&client, "require").await;
    let e = client
        .simple_query("SELECT service, max(ts) FROM logs GROUP BY 1")
        .await
        .expect_err("no view keeps max(ts)");
    assert_eq!(sqlstate(&e), "0A000", "{e:?}");
    let e = client
        .simple_query("SELECT count(*) FROM logs WHERE msg LIKE '%m%'")
        .await
        .expect_err("msg is in no view");
    assert_eq!(sqlstate(&e), "0A000", "{e:?}");
    text_rows(&client, "SELECT level, count(*) FROM logs GROUP BY 1").await;
    let e = client
        .batch_execute("SET timberline.rollups = sometimes")
        .await
        .expect_err("bad mode");
    assert_eq!(sqlstate(&e), "22023", "{e:?}");
    assert!(format!("{e:?}").contains("off, on or require"), "{e:?}");
    set(&client, "on").await;

    // Listed as materialized views; psql's \dm reads pg_class.relkind = 'm'.
    let listed = text_rows(
        &client,
        "SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relkind = 'm' ORDER BY 1",
    )
    .await;
    assert!(listed.contains(&"hourly".to_string()), "{listed:?}");

    // Only the administrator defines views.
    let add = std::process::Command::new(crate::support::bin())
        .args(["user", "add", "ana", "--tenant", "acme", "--data-dir"])
        .arg(server.dir.path())
        .env("TIMBERLINE_NEW_PASSWORD", "pw-ana")
        .output()
        .expect("user add");
    assert!(add.status.success());
    let ana = crate::support::pg_login(server.pg_port, "ana", "pw-ana")
        .await
        .expect("ana");
    let e = ana
        .batch_execute("DROP MATERIALIZED VIEW hourly")
        .await
        .expect_err("not admin");
    assert_eq!(sqlstate(&e), "42501");
    // Ana's tenant has no rows: the view answers nothing of another tenant's.
    assert!(text_rows(&ana, "SELECT * FROM hourly").await.is_empty());

    client
        .batch_execute("DROP MATERIALIZED VIEW hourly")
        .await
        .expect("drop");
    client
        .batch_execute("DROP MATERIALIZED VIEW IF EXISTS hourly")
        .await
        .expect("drop if exists");
    assert!(text_rows(&client, "SELECT name FROM rollups")
        .await
        .is_empty());
    assert!(!server.dir.path().join("rollups").join("1").exists());
    let e = client
        .simple_query("SELECT * FROM hourly")
        .await
        .expect_err("gone");
    assert_eq!(sqlstate(&e), "42P01");
}

/// Grafana's expansion of a panel's macros over `[from, to]` with `interval_s` seconds.
fn expand(sql: &str, from: i64, to: i64, interval_s: i64) -> String {
    let quoted = |us: i64| format!("'{}'", iso(us));
    sql.replace(
        "$__timeGroupAlias(ts, $__interval)",
        &format!("floor(extract(epoch from ts)/{interval_s})*{interval_s} AS \"time\""),
    )
    .replace(
        "$__timeFilter(ts)",
        &format!("ts BETWEEN {} AND {}", quoted(from), quoted(to)),
    )
    .replace("$__timeTo()", &quoted(to))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shipped_dashboards_panels_are_answered_from_its_views() {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(crate::support::repo_path(
            "docker/grafana/dashboards/timberline.json",
        ))
        .expect("dashboard"),
    )
    .expect("json");
    let views = std::fs::read_to_string(crate::support::repo_path("docker/grafana/rollups.sql"))
        .expect("rollups.sql");
    let server = TestServer::start();
    let client = server.pg().await;
    let mut rng = StdRng::seed_from_u64(24);
    let end = now_us();
    for _ in 0..2 {
        server.ingest_ndjson(events(&mut rng, 2_000, end, 24)).await;
        server.flush().await;
    }
    let ddl: String = views
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    client
        .batch_execute(&ddl)
        .await
        .expect("the dashboard's views");
    backfilled(&client, "volume_per_minute").await;
    backfilled(&client, "latency_per_minute").await;
    server.ingest_ndjson(events(&mut rng, 300, end, 24)).await;

    let panels = dashboard["panels"].as_array().expect("panels");
    let mut from_views = Vec::new();
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or_default();
        let raw = panel["targets"][0]["rawSql"].as_str().expect("rawSql");
        let sql = expand(raw, end - 24 * HOUR_US, end, 60);
        // Panels order by time only: rows within a minute come in any order.
        set(&client, "off").await;
        let mut off = text_rows(&client, &sql).await;
        set(&client, "on").await;
        let mut on = text_rows(&client, &sql).await;
        off.sort();
        on.sort();
        assert!(!on.is_empty(), "{title}: {sql}");
        if sql.contains("approx_percentile_cont") {
            assert_eq!(off.len(), on.len(), "{title}");
        } else {
            assert!(same(&off, &on), "{title}: {sql}");
        }
        if explain(&client, &sql).await.contains("rollup=") {
            from_views.push(title.to_string());
        }
    }
    assert_eq!(
        from_views,
        [
            "Volume by level",
            "Errors per service",
            "p99 latency per service"
        ]
    );
}
