"""Bench child for the Python client (clients/python): prints one JSON line.

Measures, against a running service (argv[1] = {"url", "dir", "quick"}):
- emit() latency in the caller's thread, each call timed with perf_counter_ns,
  in a tight loop (ROUNDS rounds) and in bursts of 10 per millisecond (a loop that sleeps
  between market-data ticks), while the sender delivers in the background;
  next to it the same loop calling only the encoder (no queue, no sender
  thread), which is the machine's own noise floor for that work;
- emit(durable=True): the wait until the spool committed the event (a round
  trip to the delivery helper process);
- end-to-end throughput: events emitted as fast as one thread can, until
  flush() returns (every one acknowledged by the service), with the spool at
  synchronous FULL (the default) and NORMAL.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any, Dict, List

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python", "src"))

from zoe_local import CRITICAL_SUBTYPES, Client  # noqa: E402
from zoe_local._event import EventEncoder  # noqa: E402

META = {"qty": 10, "price": 187.5, "strategy": "rsi-revert"}
ROUNDS = 5


def summary(ns: List[int]) -> Dict[str, float]:
    s = sorted(ns)
    n = len(s)
    at = lambda q: s[min(n - 1, max(0, int(q * n + 0.999999) - 1))] / 1000  # noqa: E731
    return {"count": n, "p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "p999": at(0.999), "max": s[-1] / 1000}


def timed_loop(call: Any, n: int, burst: int, clock: Any = time.perf_counter_ns) -> List[int]:
    """Times each call; with burst > 0, sleeps 1 ms after every `burst` calls."""
    pc = clock
    out = []
    for i in range(n):
        a = pc()
        call(i)
        out.append(pc() - a)
        if burst and i % burst == burst - 1:
            time.sleep(0.001)
    return out


def cpu_seconds(zoe: Client) -> float:
    """This process's CPU time plus its delivery helper's (a live child: not in RUSAGE_CHILDREN)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    total = r.ru_utime + r.ru_stime
    link = getattr(zoe, "_delivery", None)
    if getattr(link, "proc", None) is not None:
        with open(f"/proc/{link.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def latency(url: str, spool: str, n: int) -> Dict[str, Any]:
    zoe = Client(url, mode="paper", spool_path=spool, exit_timeout=None)
    encoder = EventEncoder("paper", "bot", CRITICAL_SUBTYPES, 1 << 20)

    def emit(i: int) -> None:
        zoe.emit("TICK", "PRICE", "AAPL 187.50 bid 187.49 ask 187.51", symbol="AAPL", meta=META)

    def encode(i: int) -> None:
        encoder.encode(
            "TICK", "PRICE", "AAPL 187.50 bid 187.49 ask 187.51", "AAPL", "info", META, None, None, None, None
        )

    # Warm-up: the service's first batches run while Bun's JIT compiles its
    # ingest path on the same 2 cores (a first round measured p99 30-40 us
    # where the rest measured 15-20): the figure is the steady state.
    for _ in range(5):
        timed_loop(emit, 10_000, 0)
        zoe.flush(30)
    out: Dict[str, Any] = {}
    # The tight loop runs ROUNDS times (alternating with the encoder alone):
    # on a shared VM one round's tail moves by 2x with the neighbours' load,
    # so the figure is the p99 over all rounds' calls, with each round's p99.
    emits: List[int] = []
    encodes: List[int] = []
    out["emit_tight_rounds"], out["encode_tight_rounds"] = [], []
    for _ in range(ROUNDS):
        ns = timed_loop(emit, n, 0)
        emits += ns
        out["emit_tight_rounds"].append(summary(ns)["p99"])
        zoe.flush(60)
        ns = timed_loop(encode, n, 0)
        encodes += ns
        out["encode_tight_rounds"].append(summary(ns)["p99"])
    out["emit_tight"], out["encode_tight"] = summary(emits), summary(encodes)
    out["emit_burst"] = summary(timed_loop(emit, n // 5, 10))
    zoe.flush(60)
    out["encode_burst"] = summary(timed_loop(encode, n // 5, 10))
    # durable=True while events stream (every 100th call) and alone
    pc = time.perf_counter_ns
    streaming, alone = [], []
    for i in range(20_000 if n >= 50_000 else 5_000):
        if i % 100 == 99:
            a = pc()
            zoe.emit("ORDER", "BUY_FILLED", "Bought 10 AAPL @ 187.50", symbol="AAPL", meta=META, durable=True)
            streaming.append(pc() - a)
        else:
            emit(i)
    zoe.flush(60)
    for _ in range(200):
        a = pc()
        zoe.emit("ORDER", "BUY_FILLED", "Bought 10 AAPL @ 187.50", symbol="AAPL", meta=META, durable=True)
        alone.append(pc() - a)
        zoe.flush(10)
    out["durable_streaming"] = summary(streaming)
    out["durable_alone"] = summary(alone)
    zoe.close(10)
    return out


def throughput(url: str, spool: str, n: int, synchronous: str) -> Dict[str, Any]:
    zoe = Client(url, mode="live", spool_path=spool, spool_synchronous=synchronous, exit_timeout=None)
    for i in range(2000):
        zoe.emit("TICK", "PRICE", f"warm {i}", symbol="AAPL", meta=META)
    zoe.flush(30)
    before = zoe.stats()
    cpu0 = cpu_seconds(zoe)
    t0 = time.perf_counter()
    for i in range(n):
        zoe.emit("TICK", "PRICE", f"AAPL tick {i}", symbol="AAPL", meta=META)
    emitted = time.perf_counter()
    left = zoe.flush(120)
    acked = time.perf_counter()
    cpu = cpu_seconds(zoe) - cpu0
    after = zoe.stats()
    zoe.close(10)
    batches = after.batches - before.batches
    return {
        "events": n,
        "left": left,
        "emit_per_s": n / (emitted - t0),
        "acked_per_s": n / (acked - t0),
        "seconds": acked - t0,
        "events_per_request": (after.delivered - before.delivered) / max(1, batches),
        "python_cores": cpu / (acked - t0),
        "retries": after.retries - before.retries,
    }


def main() -> None:
    args = json.loads(sys.argv[1])
    url, folder, quick = args["url"], args["dir"], bool(args.get("quick"))
    result: Dict[str, Any] = {"python": sys.version.split()[0]}
    result["latency"] = latency(url, os.path.join(folder, "py-latency.db"), 30_000 if quick else 100_000)
    n = 50_000 if quick else 200_000
    result["throughput_full"] = throughput(url, os.path.join(folder, "py-full.db"), n, "FULL")
    result["throughput_normal"] = throughput(url, os.path.join(folder, "py-normal.db"), n, "NORMAL")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
