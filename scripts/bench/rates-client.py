"""Bench child for the section "at the bot's rates": prints one JSON line.

argv[1] is JSON: {"what": "chain" | "seed", ...}.

* chain ({"url", "dir", "service_pid", "phases": [{"rate", "seconds"}...],
  "critical_every"}): a bot with the Python client (delivery helper, spool
  FULL) emitting at a steady rate, one emit() per due event in a loop that
  sleeps until the next one is due; rate 0 is idle (connected, nothing
  emitted). Each phase reports the CPU seconds of the bot (all its threads),
  its delivery helper (a live child: read from /proc) and the service (from
  /proc), and the client's events per request. Events carry meta.sent_at
  (wall clock, ms) for the SSE receiver; every ``critical_every``-th is a
  BUY_FILLED carrying meta.critical_sent_at instead.
* seed ({"dir", "phases", "synchronous"}): the seed design's bot writing SQLite
  in-process: Python sqlite3, WAL, the seed's local_events table, one commit
  per event, the same paced loop; its CPU per phase.
"""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import sys
import time
import uuid
from typing import Any, Callable, Dict, List

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python", "src"))

TICK = os.sysconf("SC_CLK_TCK")
META = {"qty": 10, "price": 187.5, "strategy": "rsi-revert"}


def proc_cpu(pid: int) -> float:
    """utime + stime of every thread of ``pid``, seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def proc_peak_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def paced(rate: float, seconds: float, emit: Callable[[int], None]) -> int:
    """Calls emit(i) for each event as it falls due; sleeps in between. Returns the count."""
    if rate <= 0:
        time.sleep(seconds)
        return 0
    total = int(rate * seconds)
    t0 = time.perf_counter()
    sent = 0
    while sent < total:
        now = time.perf_counter()
        due = min(total, int((now - t0) * rate) + 1)
        while sent < due:
            emit(sent)
            sent += 1
        wait = t0 + sent / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
    return sent


def chain(args: Dict[str, Any]) -> Dict[str, Any]:
    from zoe_local import Client

    zoe = Client(args["url"], mode="paper", spool_path=os.path.join(args["dir"], "rates-spool.db"), exit_timeout=None)
    helper = zoe._delivery.proc.pid  # type: ignore[union-attr]
    service = int(args["service_pid"])
    every = int(args.get("critical_every") or 0)
    stamped = [False]  # warm-up events carry no stamp the SSE receiver counts

    def emit(i: int) -> None:
        now = time.time() * 1000
        if every and i % every == every - 1:
            meta = {**META, "critical_sent_at" if stamped[0] else "warm_at": now}
            zoe.emit("ORDER", "BUY_FILLED", "Bought 10 AAPL @ 187.50", symbol="AAPL", meta=meta)
        else:
            meta = {**META, "sent_at" if stamped[0] else "warm_at": now}
            zoe.emit("TICK", "PRICE", "AAPL 187.50 bid 187.49 ask 187.51", symbol="AAPL", meta=meta)

    # Warm-up: the helper's first batches, the service's JIT.
    paced(500, float(args.get("warmup_s", 2.0)), emit)
    zoe.flush(30)
    stamped[0] = True
    out: List[Dict[str, Any]] = []
    for phase in args["phases"]:
        before = zoe.stats()
        b0, h0, s0, t0 = self_cpu(), proc_cpu(helper), proc_cpu(service), time.perf_counter()
        events = paced(phase["rate"], phase["seconds"], emit)
        wall = time.perf_counter() - t0
        b1, h1, s1 = self_cpu(), proc_cpu(helper), proc_cpu(service)
        left = zoe.flush(30)
        after = zoe.stats()
        batches = after.batches - before.batches
        out.append(
            {
                "rate": phase["rate"],
                "events": events,
                "seconds": wall,
                "bot_cpu": b1 - b0,
                "helper_cpu": h1 - h0,
                "service_cpu": s1 - s0,
                "requests": batches,
                "delivered": after.delivered - before.delivered,
                "left": left,
            }
        )
    peak = {"bot_mb": proc_peak_mb(os.getpid()), "helper_mb": proc_peak_mb(helper)}
    zoe.close(10)
    return {"phases": out, **peak}


SEED_SCHEMA = """
CREATE TABLE IF NOT EXISTS local_events (
  id TEXT PRIMARY KEY,
  mode TEXT NOT NULL CHECK (mode IN ('paper', 'live')),
  ts TEXT NOT NULL,
  seq INTEGER NOT NULL,
  source TEXT NOT NULL,
  type TEXT NOT NULL,
  subtype TEXT NOT NULL,
  symbol TEXT,
  severity TEXT NOT NULL DEFAULT 'info',
  body TEXT NOT NULL,
  meta_json TEXT DEFAULT '{}',
  idempotency_key TEXT UNIQUE,
  flushed INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE INDEX IF NOT EXISTS idx_local_events_unflushed ON local_events (flushed, seq ASC) WHERE flushed = 0;
CREATE INDEX IF NOT EXISTS idx_local_events_mode_seq ON local_events (mode, seq DESC);
"""


def seed(args: Dict[str, Any]) -> Dict[str, Any]:
    level = args["synchronous"]
    db = sqlite3.connect(os.path.join(args["dir"], f"seed-{level.lower()}.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={level}")
    db.execute("PRAGMA wal_autocheckpoint=1000")
    db.executescript(SEED_SCHEMA)
    seq = [0]
    sql = (
        "INSERT INTO local_events (id, mode, ts, seq, source, type, subtype, symbol, severity, body, meta_json, "
        "idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )

    def emit(i: int) -> None:
        seq[0] += 1
        eid = str(uuid.uuid4())
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
        meta = json.dumps({**META, "sent_at": time.time() * 1000})
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            sql, (eid, "paper", ts, seq[0], "bot", "TICK", "PRICE", "AAPL", "info", "AAPL 187.50 bid", meta, eid)
        )
        db.execute("COMMIT")

    paced(500, 1.0, emit)
    out = []
    for phase in args["phases"]:
        c0, t0 = self_cpu(), time.perf_counter()
        events = paced(phase["rate"], phase["seconds"], emit)
        out.append(
            {"rate": phase["rate"], "events": events, "seconds": time.perf_counter() - t0, "cpu": self_cpu() - c0}
        )
    db.close()
    return {"phases": out, "peak_mb": proc_peak_mb(os.getpid())}


def main() -> None:
    args = json.loads(sys.argv[1])
    result = chain(args) if args["what"] == "chain" else seed(args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
