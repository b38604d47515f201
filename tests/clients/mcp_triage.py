"""A scripted triage agent on the official MCP Python SDK: finds a seeded incident through
Timberline's /mcp tools and prints what it found as one JSON object (tests/it/mcp.rs checks it).

usage: mcp_triage.py URL API_KEY [--calls N]   (--calls: instead, time N calls of each tool)
"""

import asyncio
import json
import sys
import time

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def is_error(result):
    """Whether a tool answer is a tool error (`is_error` in SDK 2, `isError` in SDK 1)."""
    return bool(getattr(result, "is_error", getattr(result, "isError", False)))


def payload(result):
    """A tool answer's JSON (its text content), and whether it was a tool error."""
    text = "".join(c.text for c in result.content if getattr(c, "type", "") == "text")
    if is_error(result):
        return text, True
    return json.loads(text), False


async def main():
    url, key = sys.argv[1], sys.argv[2]
    calls = int(sys.argv[sys.argv.index("--calls") + 1]) if "--calls" in sys.argv else 0
    found = {"sizes": {}, "errors": {}}
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    async with http, streamable_http_client(url, http_client=http) as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            found["tools"] = sorted(t.name for t in tools.tools)
            if calls:
                print(json.dumps(await timings(session, calls)))
                return

            async def call(name, args):
                result = await session.call_tool(name, args)
                text = "".join(c.text for c in result.content if getattr(c, "type", "") == "text")
                found["sizes"][name] = max(found["sizes"].get(name, 0), len(text.encode()))
                return payload(result)

            # 1. What is there, and which service has errors?
            described, _ = await call("describe_logs", {})
            found["services"] = [r["service"] for r in described["service"]["rows"]]
            found["total_rows"] = described["totals"]["n"]
            errors, _ = await call("run_sql", {"sql": "SELECT service, count(*) AS n FROM logs WHERE level = 'ERROR' GROUP BY service ORDER BY n DESC"})
            found["worst_service"] = errors["rows"][0]["service"]
            # 2. When: the error volume of that service, per minute.
            volume, _ = await call("log_volume", {"service": found["worst_service"], "level": "ERROR", "since": "2h", "bucket": "1m"})
            peak = max(volume["rows"], key=lambda r: r["n"])
            found["peak_bucket"], found["peak_count"] = peak["bucket"], peak["n"]
            # 3. What: the templates of its errors.
            patterns, _ = await call("top_patterns", {"service": found["worst_service"], "level": "ERROR", "since": "2h"})
            found["top_pattern"] = patterns["patterns"][0]["template"]
            # 4. The rows: a search, paged.
            first, _ = await call("search_logs", {"service": found["worst_service"], "level": "ERROR", "since": "2h", "limit": 25})
            found["page1"] = len(first["rows"])
            found["page1_truncated"] = first["truncated"]
            second, _ = await call("search_logs", {"service": found["worst_service"], "level": "ERROR", "since": "2h", "limit": 25, "offset": first["next_offset"]})
            found["pages_overlap"] = bool({json.dumps(r, sort_keys=True) for r in first["rows"]} & {json.dumps(r, sort_keys=True) for r in second["rows"]})
            # 5. Around the first error: nearest rows, the host's context, the trace.
            oldest, _ = await call("run_sql", {"sql": f"SELECT ts, host, trace_id FROM logs WHERE service = '{found['worst_service']}' AND level = 'ERROR' ORDER BY ts LIMIT 1"})
            start = oldest["rows"][0]
            found["first_error"] = start["ts"]
            near, _ = await call("nearest", {"ts": start["ts"].replace(" ", "T"), "count": 5, "level": "ERROR"})
            found["nearest_services"] = sorted({r["service"] for r in near["rows"]})
            ctx, _ = await call("log_context", {"ts": start["ts"].replace(" ", "T"), "host": start["host"], "service": found["worst_service"], "before": 3, "after": 3})
            found["context_rows"] = len(ctx["rows"])
            trace, _ = await call("trace", {"trace_id": start["trace_id"], "since": "2h"})
            found["trace_services"] = [r["service"] for r in trace["rows"]]
            # 6. Caps and refusals: a huge answer is cut; bad SQL and bad arguments are tool errors.
            big, _ = await call("run_sql", {"sql": "SELECT msg, repeat('x', 2000) AS pad FROM logs", "limit": 1000})
            found["big_rows"], found["big_truncated"] = len(big["rows"]), big["truncated"]
            for name, args in [
                ("run_sql", {"sql": "SELEC 1"}),
                ("run_sql", {"sql": "DROP TABLE logs"}),
                ("search_logs", {"level": "loud"}),
                ("nearest", {"ts": "yesterday-ish"}),
                ("log_volume", {"by": "msg"}),
            ]:
                text, is_error = await call(name, args)
                found["errors"][f"{name} {json.dumps(args)}"] = text if is_error else None
            # The session still works after the errors.
            again, _ = await call("describe_logs", {"since": "2h"})
            found["after_errors"] = again["totals"]["n"]
    print(json.dumps(found))


async def timings(session, calls):
    """p50/p95 of each tool over `calls` calls, in ms, on whatever logs the server holds."""
    one = json.loads((await session.call_tool("run_sql", {"sql": "SELECT ts, service, host, coalesce(trace_id, '') AS trace_id FROM logs WHERE level = 'ERROR' ORDER BY ts DESC LIMIT 1"})).content[0].text)["rows"][0]
    at, svc = one["ts"].replace(" ", "T"), one["service"]
    cases = {
        "describe_logs": {"since": "1h"},
        "log_volume": {"service": svc, "since": "1h"},
        "search_logs": {"query": "error", "since": "1h", "limit": 50},
        "nearest": {"ts": at, "count": 10},
        "log_context": {"ts": at, "host": one["host"], "service": svc},
        "trace": {"trace_id": one["trace_id"] or "none", "since": "1h"},
        "top_patterns": {"service": svc, "since": "15m"},
        "run_sql": {"sql": "SELECT level, count(*) FROM logs WHERE ts > now() - interval '1 hour' GROUP BY level"},
    }
    out = {}
    for name, args in cases.items():
        seen = []
        for _ in range(calls):
            t = time.perf_counter()
            r = await session.call_tool(name, args)
            seen.append((time.perf_counter() - t) * 1000)
            if is_error(r):
                raise SystemExit(f"{name} failed: {r.content}")
        seen.sort()
        out[name] = {"p50": round(seen[len(seen) // 2], 1), "p95": round(seen[min(len(seen) - 1, int(len(seen) * 0.95))], 1)}
    return out


asyncio.run(main())
