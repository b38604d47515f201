"""Sends known log records to Timberline with the real shipper libraries people run.

    ship.py otlp-http  http://127.0.0.1:PORT  KEY   # OpenTelemetry SDK, OTLP/HTTP protobuf exporter, gzip
    ship.py otlp-grpc  127.0.0.1:PORT         KEY   # OpenTelemetry SDK, OTLP/gRPC exporter, gzip
    ship.py es         http://127.0.0.1:PORT  KEY   # elasticsearch client, helpers.bulk
    ship.py loki       http://127.0.0.1:PORT  KEY   # python-logging-loki (JSON push)

Each prints one JSON line describing what it sent (the test compares the stored rows with it)
and exits non-zero when the library reports a failure.
"""
import json
import logging
import sys
import time


def otel(kind, target, key):
    from opentelemetry import trace
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    if kind == "otlp-http":
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

        from opentelemetry.exporter.otlp.proto.http import Compression

        exporter = OTLPLogExporter(endpoint=f"{target}/v1/logs", headers={"authorization": f"Bearer {key}"},
                                   compression=Compression.Gzip)
    else:
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        from grpc import Compression as GrpcCompression

        exporter = OTLPLogExporter(endpoint=target, insecure=True, headers=(("authorization", f"Bearer {key}"),),
                                   compression=GrpcCompression.Gzip)
    results = []
    real_export = exporter.export

    def export(batch):
        r = real_export(batch)
        results.append(r.name)
        return r

    exporter.export = export
    service = f"shop-{kind}"
    provider = LoggerProvider(resource=Resource.create({"service.name": service, "host.name": "web-7"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    log = logging.getLogger(f"shop.{kind}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=provider))
    tracer = TracerProvider().get_tracer("ship")
    with tracer.start_as_current_span("checkout") as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
        log.error("card declined for order %s", "o-17", extra={"order.id": "o-17", "amount": 12.5})
    log.warning("retrying payment")
    log.info("order placed")
    provider.shutdown()
    if results != ["SUCCESS"] * 3:
        sys.exit(f"exporter results: {results}")
    print(json.dumps({"service": service, "host": "web-7", "trace_id": trace_id,
                      "rows": [["ERROR", "card declined for order o-17"], ["WARN", "retrying payment"],
                               ["INFO", "order placed"]]}))


def es(target, key):
    from elasticsearch import Elasticsearch, helpers

    client = Elasticsearch(target, api_key=key, request_timeout=30)
    info = client.info()
    docs = [
        {"_index": "shop-es", "_source": {"@timestamp": "2024-01-15T10:30:45.123Z", "message": "card declined",
                                          "log": {"level": "error"}, "service": {"name": "payments"},
                                          "host": {"name": "pay-3"}, "trace": {"id": "es-trace-1"},
                                          "user": {"id": 42}}},
        {"_index": "shop-es", "_id": "fixed-2", "_source": {"@timestamp": "2024-01-15T10:30:46Z",
                                                            "message": "retry ok", "log.level": "info",
                                                            "service.name": "payments", "host.name": "pay-3"}},
    ]
    ok, errors = helpers.bulk(client, docs, raise_on_error=False)
    if ok != 2 or errors:
        sys.exit(f"bulk: ok={ok} errors={errors}")
    print(json.dumps({"version": info["version"]["number"], "ok": ok}))


def loki(target, key):
    import logging_loki

    handler = logging_loki.LokiHandler(url=f"{target}/loki/api/v1/push", tags={"app": "shop-loki", "host": "edge-1"},
                                       auth=("loki", key), version="1")
    failures = []
    handler.handleError = lambda record: failures.append(sys.exc_info()[1])
    log = logging.getLogger("shop.loki")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)
    log.error("upstream timeout", extra={"tags": {"region": "eu-1"}})
    log.info("recovered")
    if failures:
        sys.exit(f"loki push failed: {failures}")
    print(json.dumps({"service": "shop-loki", "host": "edge-1"}))


def main():
    kind, target, key = sys.argv[1:4]
    if kind.startswith("otlp"):
        otel(kind, target, key)
    elif kind == "es":
        es(target, key)
    elif kind == "loki":
        loki(target, key)
    else:
        sys.exit(f"unknown shipper {kind}")


if __name__ == "__main__":
    main()
