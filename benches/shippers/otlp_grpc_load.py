"""OTLP/gRPC load: pre-built ExportLogsServiceRequests (generated events, 1,000 records each)
sent by the official grpcio stub from several threads for a fixed time; prints events/s.

    python3 otlp_grpc_load.py HOST:PORT KEY SECONDS THREADS
"""
import sys
import threading
import time

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.resource.v1 import resource_pb2


def kv(k, v):
    return common_pb2.KeyValue(key=k, value=common_pb2.AnyValue(string_value=v))


def request(seed, n=1000):
    now = time.time_ns()
    rls = []
    for i in range(n):
        svc = f"svc-{(seed * 7 + i) % 50}"
        rec = logs_pb2.LogRecord(
            time_unix_nano=now + i * 1000, severity_text=["INFO", "WARN", "ERROR"][i % 3],
            body=common_pb2.AnyValue(string_value=f"request {seed}-{i} served in {i % 97} ms from pool blk_{i * 7919}"),
            attributes=[kv("user_id", f"u{i % 1000}"), kv("region", "eu-west-1")],
            trace_id=bytes.fromhex(f"{seed:016x}{i:016x}"))
        rls.append(logs_pb2.ResourceLogs(
            resource=resource_pb2.Resource(attributes=[kv("service.name", svc), kv("host.name", f"{svc}-h{i % 10}")]),
            scope_logs=[logs_pb2.ScopeLogs(log_records=[rec])]))
    return logs_service_pb2.ExportLogsServiceRequest(resource_logs=rls)


def main():
    target, key, seconds, threads = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    reqs = [request(s) for s in range(8)]
    per = sum(len(r.resource_logs) for r in reqs) // len(reqs)
    meta = (("authorization", f"Bearer {key}"),)
    sent = [0] * threads
    deadline = time.time() + seconds

    def worker(w):
        stub = logs_service_pb2_grpc.LogsServiceStub(grpc.insecure_channel(target))
        i = w
        while time.time() < deadline:
            stub.Export(reqs[i % len(reqs)], metadata=meta, timeout=30)
            sent[w] += per
            i += threads

    started = time.time()
    ts = [threading.Thread(target=worker, args=(w,)) for w in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    secs = time.time() - started
    print(f"durable ingest (OtlpGrpc, grpcio client): {sum(sent)} events in {secs:.1f}s = {sum(sent) / secs:.0f} events/s (batch {per}, {threads} threads)")


if __name__ == "__main__":
    main()
