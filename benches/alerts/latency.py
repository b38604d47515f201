"""Time from an alert rule's threshold crossing to its webhook notification.

Starts `timberline serve` (BIN) with a webhook pointing at a receiver in this process, adds a
rule (`count(*)` of the ERROR rows of the last 2 periods + 1 s above 0, `--every EVERY`, no
cooldown), then ROUNDS times: waits a random part of a period (so crossings fall at any phase of
the schedule), posts one ERROR row (the crossing: its 202 is t0), waits for the `firing`
notification (t1), then for `resolved` once the row ages out. Prints p50/p95/max of t1 - t0.

usage: latency.py BIN ROUNDS EVERY
"""

import http.server
import json
import queue
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

BIN, ROUNDS, EVERY = sys.argv[1], int(sys.argv[2]), sys.argv[3]
got = queue.Queue()


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        got.put((time.time(), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
threading.Thread(target=hook.serve_forever, daemon=True).start()
data = tempfile.mkdtemp()
server = subprocess.Popen(
    [BIN, "serve", "--data-dir", data, "--http-addr", "127.0.0.1:0", "--pg-addr", "127.0.0.1:0",
     "--alert-webhook-url", f"http://127.0.0.1:{hook.server_address[1]}/hook"],
    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
line = server.stdout.readline()
while not line.startswith("timberline ready"):
    line = server.stdout.readline()
api = "http://" + line.split("http=")[1].split()[0]


def post(path, body):
    req = urllib.request.Request(api + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": "Bearer timberline", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return r.status


period = float(EVERY.rstrip("s"))
window = int(2 * period + 1)
try:
    post("/v1/alerts", {"name": "bench", "above": 0, "every": EVERY, "cooldown": "0",
                        "sql": f"SELECT count(*) FROM logs WHERE level = 'ERROR' AND ts > now() - interval '{window} seconds'"})
    seen = []
    for i in range(ROUNDS):
        time.sleep(random.random() * period)
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
        assert post("/v1/ingest", {"logs": [{"ts": ts, "level": "ERROR", "msg": f"crossing {i}"}]}) == 202
        t0 = time.time()
        while True:
            t1, body = got.get(timeout=60)
            if body["status"] == "firing":
                break
        seen.append((t1 - t0) * 1000)
        while got.get(timeout=60)[1]["status"] != "resolved":
            pass
    seen.sort()
    pick = lambda q: seen[min(len(seen) - 1, int(len(seen) * q))]
    print(f"every {EVERY}: {ROUNDS} crossings, crossing (ingest 202) to webhook notification "
          f"p50 {pick(0.5):.0f} ms, p95 {pick(0.95):.0f} ms, max {seen[-1]:.0f} ms")
finally:
    server.kill()
