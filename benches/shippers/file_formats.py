"""Writes the same generated events as files in the shapes `timberline ingest` detects, for the
file-ingest figures: logfmt, CRI, access log, Java-style text with a stack trace every 100
records, glog, JSON lines with ECS keys, PostgreSQL's server log (a DETAIL and STATEMENT after
every 50th record), rsyslog's traditional file format, java.util.logging's two-line records
(12-hour clock) and CPython logging with a chained traceback every 100 records.

    python3 file_formats.py EVENTS.ndjson OUT_DIR
"""
import json
import os
import sys
from datetime import datetime


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    files = {n: open(os.path.join(out, f"{n}.log"), "w") for n in ["logfmt", "cri", "access", "java", "glog", "ecs", "postgres", "syslog", "jul", "python"]}
    pg_levels = {"DEBUG": "DEBUG1", "INFO": "LOG", "WARN": "WARNING", "ERROR": "ERROR", "FATAL": "FATAL"}
    jul_levels = {"DEBUG": "FINE", "INFO": "INFO", "WARN": "WARNING", "ERROR": "SEVERE", "FATAL": "SEVERE"}
    py_levels = {"DEBUG": "DEBUG", "INFO": "INFO", "WARN": "WARNING", "ERROR": "ERROR", "FATAL": "CRITICAL"}
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
        ms = f"{t.microsecond // 1000:03d}"
        files["postgres"].write(f"{t.strftime('%Y-%m-%d %H:%M:%S')}.{ms} UTC [{1000 + i % 50}] {pg_levels[lvl]}:  {msg}\n")
        if i % 50 == 49:
            files["postgres"].write(f"{t.strftime('%Y-%m-%d %H:%M:%S')}.{ms} UTC [{1000 + i % 50}] DETAIL:  Key (id)=({i}) already exists.\n")
            files["postgres"].write(f"{t.strftime('%Y-%m-%d %H:%M:%S')}.{ms} UTC [{1000 + i % 50}] STATEMENT:  INSERT INTO t VALUES ({i});\n")
        files["syslog"].write(f"{t.strftime('%b %e %H:%M:%S')} {host} {svc}[{100 + i % 900}]: {lvl} {msg}\n")
        files["jul"].write(f"{t.strftime('%b %d, %Y')} {t.hour % 12 or 12}:{t.strftime('%M:%S')} {'PM' if t.hour >= 12 else 'AM'} com.shop.{svc.capitalize()} handle\n{jul_levels[lvl]}: {msg}\n")
        files["python"].write(f"{t.strftime('%Y-%m-%d %H:%M:%S')},{ms} - {svc} - {py_levels[lvl]} - {msg}\n")
        if i % 100 == 99:
            files["python"].write('Traceback (most recent call last):\n  File "app.py", line 3, in f\n    int(x)\nValueError: bad\n\n'
                                  'The above exception was the direct cause of the following exception:\n\n'
                                  'Traceback (most recent call last):\n  File "app.py", line 9, in g\nKeyError: \'amount\'\n')
        files["ecs"].write(json.dumps({"@timestamp": ts, "message": msg, "log": {"level": lvl.lower()},
                                       "service": {"name": svc}, "host": {"name": host}, "labels": e.get("meta", {})}) + "\n")
    for f in files.values():
        f.close()


if __name__ == "__main__":
    main()
