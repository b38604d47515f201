"""CPython logging with the usual `asctime - name - levelname - message` format on stderr,
logging chained exceptions (tracebacks with blank lines and the sentences between them) and a
multi-line message. The truth (time, level, message) goes to argv[1] through a second handler."""
import json
import logging
import sys
import time

logging.Formatter.converter = time.gmtime
log = logging.getLogger("billing")
console = logging.StreamHandler(sys.stderr)
console.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
truth = []


class Truth(logging.Handler):
    def emit(self, record):
        ms = int(record.created) * 1000 + int(record.msecs)
        truth.append({"ts_ms": ms, "level": record.levelname, "contains": [record.getMessage().split("\n")[0]]})


log.addHandler(console)
log.addHandler(Truth())
log.setLevel(logging.DEBUG)


def parse(raw):
    try:
        return {"amount": int(raw)}
    except ValueError as e:
        raise KeyError("amount") from e


log.info("invoice run started")
log.debug("3 invoices due")
try:
    parse("12x")
except KeyError:
    log.exception("invoice 17 failed")
    truth[-1]["contains"] += ["The above exception was the direct cause", "KeyError: 'amount'"]
try:
    try:
        {}["missing"]
    except KeyError:
        1 / 0
except ZeroDivisionError:
    log.error("invoice 18 failed", exc_info=True)
    truth[-1]["contains"] += ["During handling of the above exception", "ZeroDivisionError"]
log.warning("totals:\n  paid 3\n  failed 2")
truth[-1]["contains"] += ["failed 2"]
log.critical("ledger out of balance")
json.dump(truth, open(sys.argv[1], "w"))
