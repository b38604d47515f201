-- The rollup views the dashboard's panels are answered from (run once, as the administrator:
-- psql -h localhost -p 5433 -U timberline -f docker/grafana/rollups.sql). The panels query
-- `logs` and need no edit: the rewrite answers them from these views.
CREATE MATERIALIZED VIEW IF NOT EXISTS volume_per_minute AS
  SELECT date_trunc('minute', ts) AS t, service, level, count(*) AS n
  FROM logs GROUP BY 1, 2, 3;
CREATE MATERIALIZED VIEW IF NOT EXISTS latency_per_minute AS
  SELECT date_trunc('minute', ts) AS t, service, count(*) AS n,
         approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY (attrs->>'duration_ms')::double) AS p99
  FROM logs GROUP BY 1, 2;
