"""Writes the same generated events as files in the shapes `timberline ingest` detects, for the
file-ingest figures: logfmt, CRI, access log, Java-style text with a stack trace every 100
records, glog, and JSON lines with ECS keys.

    python3 file_formats.py EVENTS.ndjson OUT_DIR
"""
import json
import os
import sys
from datetime import datetime


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    files = {n: open(os.path.join(out, f"{n}.log"), "w") for n in ["logfmt", "cri", "access", "java", "glog", "ecs"]}
    for i, line in enumerate(open(src)):
        e = json.loads(line)
        ts = e["ts"]
        t = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        lvl, msg, svc, host = e["level"], e["msg"], e["service"], e["host"]
        quoted = msg.replace("\\", "\\\\").replace('"', '\\"')
        files["logfmt"].write(f'ts={ts} level={lvl.lower()} service={svc} host={host} msg="{quoted}"\n')
        files["cri"].write(f"{t.strftime('%Y-%m-%dT%H:%M:%S.%f')}000Z stdout F {lvl} {msg}\n")
        status = {"ERROR": 502, "WARN": 404}.get(lvl, 200)
        files["access"].write(f'10.0.{i % 256}.{i % 7} - - [{t.strftime("%d/%b/%Y:%H:%M:%S +0000")}] "GET /api/{svc}/{i} HTTP/1.1" {status} {len(msg)} "-" "bench/1.0"\n')
        files["java"].write(f"{t.strftime('%Y-%m-%d %H:%M:%S')},{t.microsecond // 1000:03d} {lvl} [worker-{i % 8}] {svc} - {msg}\n")
        if i % 100 == 99:
            files["java"].write("java.lang.IllegalStateException: boom\n\tat com.shop.A.b(A.java:1)\n\tat com.shop.C.d(C.java:2)\n")
        glog_level = {"ERROR": "E", "WARN": "W", "FATAL": "F"}.get(lvl, "I")  # glog has only I, W, E, F
        files["glog"].write(f"{glog_level}{t.strftime('%m%d %H:%M:%S')}.{t.microsecond:06d}  {i % 99} {svc}.go:{i % 300}] {msg}\n")
        files["ecs"].write(json.dumps({"@timestamp": ts, "message": msg, "log": {"level": lvl.lower()},
                                       "service": {"name": svc}, "host": {"name": host}, "labels": e.get("meta", {})}) + "\n")
    for f in files.values():
        f.close()


if __name__ == "__main__":
    main()
