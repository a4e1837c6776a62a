"""A full service (503 backlog_full + Retry-After): the client waits as told, and
critical events overtake the refused ordinary ones into the critical reserve."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from typing import List

import pytest
from conftest import Service, wait_until

from zoe_local import Client, DeliveryProblem, Dropped

FULL = {"ZOE_MAX_BACKLOG_EVENTS": "10", "ZOE_CRITICAL_RESERVE_EVENTS": "5"}  # ordinary events stop at 5


def test_retry_after_is_honoured_and_critical_events_overtake_refused_ordinary_ones(service_factory, spool: str):
    service: Service = service_factory(FULL)
    problems: List[DeliveryProblem] = []
    zoe = Client(
        service.url, mode="live", spool_path=spool, on_problem=problems.append, backoff_max=0.2, exit_timeout=None
    )
    for i in range(5):
        zoe.emit("TICK", "PRICE", f"tick {i}")
    assert zoe.flush(10) == 0
    for i in range(5, 8):
        zoe.emit("TICK", "PRICE", f"tick {i}")
    assert zoe.flush(1.0) == 3  # refused
    refused_at = zoe.stats().last_error_at
    assert refused_at is not None
    stats = zoe.stats()
    assert stats.status == "refused" and "503 backlog_full" in (stats.last_error or "")
    assert 13.0 < stats.retry_in <= 15.0  # the service said Retry-After: 15
    assert problems[0].kind == "refused" and problems[0].retry_in == 15.0

    kill = zoe.emit("RISK", "KILL_SWITCH", "daily loss limit hit: trading halted", severity="critical")
    wait_until(lambda: any(e["id"] == kill for e in service.stored()), 5, "the kill switch to overtake")
    assert [e["body"] for e in service.stored()][-1] == "daily loss limit hit: trading halted"
    assert zoe.stats().spooled == 3  # the ordinary ones still wait

    # Make room at once; the client must still not retry before Retry-After ran out.
    service.kill()
    service.start({})
    assert zoe.flush(30) == 0
    delivered_at = time.time()
    assert delivered_at - refused_at >= 14.9, f"retried {delivered_at - refused_at:.1f} s after a Retry-After of 15 s"
    zoe.close(1)
    # The kill switch overtook the three refused ticks; each mode's seqs stay gapless.
    assert [e["body"] for e in service.stored()] == [f"tick {i}" for i in range(5)] + [
        "daily loss limit hit: trading halted",
        "tick 5",
        "tick 6",
        "tick 7",
    ]


def test_the_spool_bound_drops_new_ordinary_events_but_never_critical_ones(spool: str):
    dropped = []
    zoe = Client(
        "http://127.0.0.1:9",
        mode="live",
        spool_path=spool,
        spool_max_bytes=20_000,
        on_drop=dropped.append,
        exit_timeout=None,
    )
    for i in range(200):
        zoe.emit("TICK", "PRICE", f"tick {i}", durable=i % 20 == 0)  # durable: wait until spooled
    fill = zoe.emit("ORDER", "SELL_FILLED", "Sold 10 AAPL @ 190.00", symbol="AAPL")
    stats = zoe.stats()
    assert stats.dropped == len(dropped) > 0
    assert {d.reason for d in dropped} == {"spool_full"}
    assert all(d.subtype == "PRICE" for d in dropped)
    left = zoe.close(0.5)
    assert left == 200 + 1 - len(dropped)

    payloads = [json.loads(p) for (p,) in sqlite3.connect(spool).execute("SELECT payload FROM spool ORDER BY seq")]
    assert payloads[-1]["id"] == fill  # the fill got in over the bound
    kept = [p["body"] for p in payloads[:-1]]
    assert kept == [f"tick {i}" for i in range(len(kept))]  # the oldest are kept, the newest refused


def test_a_tight_loop_of_200000_events_is_delivered_whole_with_overflow_block(service: Service, spool: str):
    dropped: List[Dropped] = []
    zoe = Client(
        service.url, mode="paper", spool_path=spool, overflow="block", on_drop=dropped.append, exit_timeout=None
    )
    for i in range(200_000):  # as fast as emit() goes: faster than a starved helper spools
        zoe.emit("TICK", "PRICE", f"tick {i}", symbol="AAPL", meta={"i": i, "px": 187.5})
    assert zoe.flush(300) == 0
    stats = zoe.stats()
    zoe.close(5)
    assert (stats.dropped, dropped) == (0, [])
    db = sqlite3.connect(f"file:{service.db_path}?mode=ro", uri=True)
    bodies = [b for (b,) in db.execute("SELECT body FROM local_events WHERE mode = 'paper' ORDER BY seq")]
    assert bodies == [f"tick {i}" for i in range(200_000)]


@pytest.mark.parametrize("delivery", ["process", "thread"])
def test_overflow_block_waits_at_most_block_timeout_for_room_then_drops_without_waiting(spool: str, delivery: str):
    dropped: List[Dropped] = []
    zoe = Client(
        "http://127.0.0.1:9",
        mode="paper",
        spool_path=spool,
        queue_max=50,
        overflow="block",
        block_timeout=0.5,
        on_drop=dropped.append,
        delivery=delivery,
        exit_timeout=None,
    )
    stalled = getattr(zoe._delivery, "proc", None) and zoe._delivery.proc.pid  # type: ignore[union-attr]
    if stalled:
        os.kill(stalled, signal.SIGSTOP)  # the helper takes nothing from the ring: it fills
    else:
        zoe._delivery.writer._lock.acquire()  # type: ignore[union-attr]  # the writer spools nothing: the queue fills
    try:
        for i in range(50):
            zoe.emit("TICK", "PRICE", f"tick {i}")
        assert dropped == []
        started = time.monotonic()
        zoe.emit("TICK", "PRICE", "tick 50")  # waits for room, then drops
        waited = time.monotonic() - started
        assert [d.reason for d in dropped] == ["queue_full"]
        assert waited >= 0.45
        started = time.monotonic()
        zoe.emit("TICK", "PRICE", "tick 51")  # still full: dropped without a second wait
        assert time.monotonic() - started < 0.45 and len(dropped) == 2
        fill = zoe.emit("ORDER", "BUY_FILLED", "Bought 1 AAPL")  # critical: never waits, never dropped
        assert len(dropped) == 2
    finally:
        if stalled:
            os.kill(stalled, signal.SIGCONT)
        else:
            zoe._delivery.writer._lock.release()  # type: ignore[union-attr]
    wait_until(lambda: zoe.stats().queued == 0, what="the queue to be spooled")
    zoe.emit("TICK", "PRICE", "tick 52")  # room again: queued
    assert len(dropped) == 2
    assert zoe.close(0.5) == 52
    ids = [json.loads(p)["body"] for (p,) in sqlite3.connect(spool).execute("SELECT payload FROM spool ORDER BY seq")]
    assert ids == [f"tick {i}" for i in range(50)] + ["Bought 1 AAPL", "tick 52"]
    assert fill


def test_an_unknown_overflow_policy_is_refused(spool: str):
    with pytest.raises(ValueError, match="overflow must be one of drop, block"):
        Client("http://127.0.0.1:9", spool_path=spool, overflow="wait")
