"""Nothing emitted is lost or stored twice when the service or the bot dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from typing import Dict, List

import pytest
from conftest import Service, assert_gapless_within_ranges, run_python, wait_until

from zoe_local import Client, ClientClosed


def bodies_by_mode(service: Service) -> Dict[str, List[str]]:
    out: Dict[str, List[str]] = {"paper": [], "live": []}
    for e in service.stored():  # ordered by mode, seq
        out[e["mode"]].append(e["body"])
    return out


def assert_gapless(service: Service) -> None:
    for mode in ("paper", "live"):
        seqs = [e["seq"] for e in service.stored(mode)]
        assert_gapless_within_ranges(seqs, service.range_starts(mode), f"{mode} seqs")


def test_kill_9_of_the_service_four_times_during_10000_events_loses_and_duplicates_nothing(
    service: Service, spool: str
):
    zoe = Client(service.url, mode="live", spool_path=spool, backoff_max=0.3, exit_timeout=None)
    restarts: List[threading.Thread] = []
    emitted: Dict[str, List[str]] = {"paper": [], "live": []}
    for i in range(10_000):
        mode = "paper" if i % 2 else "live"
        zoe.emit("TICK", "PRICE", f"tick {i}", mode=mode, meta={"i": i})
        emitted[mode].append(f"tick {i}")
        if i % 20 == 19:
            time.sleep(0.002)  # ~ 2 s of stream, so the kills land while batches are in flight
        if i in (2_000, 4_000, 6_000, 8_000):
            if restarts:
                restarts[-1].join(30)  # the previous restart is listening again
            assert service.running and zoe.stats().delivered > 0
            service.kill()  # SIGKILL, mid-stream
            restart = threading.Thread(target=service.start)  # same port, same database
            restart.start()
            restarts.append(restart)
    for r in restarts:
        r.join(30)
    assert zoe.flush(60) == 0
    stats = zoe.stats()
    assert zoe.close(2) == 0
    assert bodies_by_mode(service) == emitted  # every event once, in emit order per mode
    assert_gapless(service)
    assert stats.retries > 0  # the kills were felt
    assert stats.delivered - stats.duplicates <= 10_000 <= stats.delivered  # resends were answered as duplicates
    print(f"retries {stats.retries}, duplicates answered {stats.duplicates}")


def test_events_emitted_while_the_service_is_down_are_spooled_then_delivered(service_factory, spool: str):
    service: Service = service_factory()
    service.kill()  # it has a port now, and nothing listens on it
    zoe = Client(service.url, mode="paper", spool_path=spool, backoff_max=0.3, exit_timeout=None)
    for i in range(1000):
        zoe.emit("SIGNAL", "ENTRY", f"signal {i}")
    assert zoe.flush(0.5) == 1000
    stats = zoe.stats()
    assert (stats.spooled, stats.status) == (1000, "unreachable")
    assert "connection refused" in (stats.last_error or "")
    service.start()
    assert zoe.flush(30) == 0
    assert zoe.stats().status == "ok"
    zoe.close(1)
    assert bodies_by_mode(service)["paper"] == [f"signal {i}" for i in range(1000)]


BOT = """
import sys, time
from zoe_local import Client
url, spool, tag = sys.argv[1:4]
zoe = Client(url, mode="live", spool_path=spool, backoff_max=0.2)
i = 0
while True:
    durable = i % 100 == 99
    zoe.emit("TICK", "PRICE", f"{tag} {i}", meta={"i": i}, durable=durable)
    if durable:
        print(i, flush=True)  # everything up to i is in the spool
    i += 1
    if i % 10 == 0:
        time.sleep(0.001)
"""


def run_bot_until(service: Service, spool: str, tag: str, confirmed: int) -> int:
    """Runs a bot child until it confirmed `confirmed` durable emits, then kill -9; returns the last confirmed index."""
    child = run_python(BOT, service.url, spool, tag, stdout=subprocess.PIPE, text=True)
    last = -1
    try:
        assert child.stdout is not None
        for _ in range(confirmed):
            line = child.stdout.readline()
            assert line, "the bot died"
            last = int(line)
    finally:
        child.kill()  # SIGKILL: no atexit, no close(), a request possibly in flight
        child.wait(10)
    return last


def test_a_bot_killed_with_kill_9_and_restarted_on_its_spool_delivers_everything_once(service: Service, spool: str):
    last1 = run_bot_until(service, spool, "r1", 20)  # service up: killed while sending
    service.kill()
    last2 = run_bot_until(service, spool, "r2", 10)  # service down: killed with a full spool
    service.start()
    with Client(service.url, mode="live", spool_path=spool) as zoe:  # the restarted bot
        assert zoe.stats().spooled > 0
        for i in range(100):
            zoe.emit("TICK", "PRICE", f"r3 {i}")
        assert zoe.flush(30) == 0
    stored = bodies_by_mode(service)["live"]
    assert len(stored) == len(set(stored)), "an event was stored twice"
    rounds: Dict[str, List[int]] = {"r1": [], "r2": [], "r3": []}
    for body in stored:
        tag, i = body.split()
        rounds[tag].append(int(i))
    # Each run's events are stored in emit order with no hole: what reached the
    # spool is a prefix of what was emitted, and all of it was delivered.
    for tag, last in (("r1", last1), ("r2", last2), ("r3", 99)):
        n = len(rounds[tag])
        assert rounds[tag] == list(range(n)) and n > last, f"{tag}: {n} stored, confirmed up to {last}"
    assert [b.split()[0] for b in stored] == sorted(b.split()[0] for b in stored)  # runs in order
    assert_gapless(service)


def test_a_bot_that_exits_without_close_delivers_its_events_at_exit(service: Service, spool: str):
    code = """
import sys
from zoe_local import Client
zoe = Client(sys.argv[1], mode="paper", spool_path=sys.argv[2])
for i in range(300):
    zoe.emit("T", "S", f"exit {i}")
"""
    assert run_python(code, service.url, spool).wait(30) == 0
    assert bodies_by_mode(service)["paper"] == [f"exit {i}" for i in range(300)]


def test_close_returns_within_its_deadline_while_the_service_hangs(service: Service, spool: str):
    zoe = Client(service.url, mode="live", spool_path=spool, timeout=60, exit_timeout=None)
    for i in range(10):
        zoe.emit("T", "S", f"before {i}")
    assert zoe.flush(10) == 0
    service.pause()  # SIGSTOP: connections open, no answers
    try:
        for i in range(100):
            zoe.emit("T", "S", f"during {i}")
        started = time.monotonic()
        left = zoe.close(1.0)
        elapsed = time.monotonic() - started
    finally:
        service.resume()
    assert elapsed < 2.0, f"close(1.0) took {elapsed:.2f} s"
    assert left == 100
    with Client(service.url, mode="live", spool_path=spool) as again:
        assert again.flush(30) == 0
    assert bodies_by_mode(service)["live"] == [f"before {i}" for i in range(10)] + [f"during {i}" for i in range(100)]


def test_the_spool_file_holds_unacknowledged_events_as_emitted(spool: str):
    zoe = Client("http://127.0.0.1:9", mode="live", spool_path=spool, exit_timeout=None)  # discard port: refused
    ids = [zoe.emit("ORDER", "BUY_FILLED", f"fill {i}", meta={"i": i}) for i in range(5)]
    assert zoe.close(0.5) == 5
    import sqlite3

    rows = sqlite3.connect(spool).execute("SELECT payload, critical FROM spool ORDER BY seq").fetchall()
    assert [json.loads(p)["id"] for p, _ in rows] == ids
    assert all(c == 1 for _, c in rows)  # BUY_FILLED is critical


def test_an_exit_during_a_slow_spool_commit_waits_for_the_commit_and_loses_nothing(service: Service, spool: str):
    # The writer thread is inside a spool transaction (a slow disk: the commit
    # takes 0.5 s) when the bot exits with a 0.05 s exit_timeout. A daemon
    # thread killed mid-transaction rolls it back, so close() must wait for
    # the commit, deadline or not, and then spool what is still queued. The
    # slow disk is patched into this process, so delivery runs in threads here.
    code = """
import sys, threading, time
from zoe_local import Client
from zoe_local._spool import Spool
inside = threading.Event()
insert = Spool._insert
def slow_insert(self, items):
    first = insert(self, items)
    inside.set()
    time.sleep(0.5)
    return first
Spool._insert = slow_insert
zoe = Client("http://127.0.0.1:9", mode="paper", spool_path=sys.argv[1], exit_timeout=0.05, delivery="thread")
for i in range(200):
    zoe.emit("T", "S", f"slow {i}")
assert inside.wait(10), "the writer never began a commit"
for i in range(200, 300):
    zoe.emit("T", "S", f"slow {i}")
"""
    assert run_python(code, spool).wait(30) == 0
    with Client(service.url, mode="paper", spool_path=spool, exit_timeout=None) as again:
        assert again.flush(30) == 0
    assert bodies_by_mode(service)["paper"] == [f"slow {i}" for i in range(300)]


SIGTERMED_BOT = """
import signal, sys
from zoe_local import Client
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # the README's handler: close() runs at exit
zoe = Client(sys.argv[1], mode="paper", spool_path=sys.argv[2], exit_timeout=2.0)
for i in range(2000):
    zoe.emit("SIGNAL", "ENTRY", f"signal {i}")
print("emitted", flush=True)
sys.stdin.readline()
"""


def test_close_returns_within_its_timeout_when_sigterm_kills_the_helper_too_and_nothing_is_lost(
    service_factory, spool: str
):
    service: Service = service_factory()
    service.kill()  # it has a port, nothing listens: the events stay spooled
    bot = run_python(
        SIGTERMED_BOT,
        service.url,
        spool,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert bot.stdout is not None and bot.stdout.readline().strip() == "emitted"
    started = time.monotonic()
    os.killpg(bot.pid, signal.SIGTERM)  # what systemctl stop does: the bot and its helper at the same moment
    assert bot.wait(30) == 0
    took = time.monotonic() - started
    assert took < 2.0 + 1.5, f"close(2.0) at exit took {took:.1f} s with the helper dead"
    service.start()
    with Client(service.url, mode="paper", spool_path=spool, exit_timeout=None) as again:
        assert again.flush(30) == 0
    assert bodies_by_mode(service)["paper"] == [f"signal {i}" for i in range(2000)]


def test_close_and_stats_do_not_wait_for_a_helper_that_died(spool: str):
    zoe = Client("http://127.0.0.1:9", mode="paper", spool_path=spool, exit_timeout=None)
    for i in range(100):
        zoe.emit("T", "S", f"e {i}")
    wait_until(lambda: zoe.stats().spooled == 100, what="the events to be spooled")
    helper = zoe._delivery.proc  # type: ignore[union-attr]
    os.kill(helper.pid, signal.SIGSTOP)  # hung: it never answers close()
    try:
        started = time.monotonic()
        left = zoe.close(1.0)
        took = time.monotonic() - started
    finally:
        os.kill(helper.pid, signal.SIGKILL)
    assert took < 1.0 + 1.0, f"close(1.0) took {took:.1f} s with a hung helper"
    assert left == 100  # counted from the spool file without the helper
    started = time.monotonic()
    with pytest.raises(ClientClosed):
        zoe.emit("T", "S", "after close")
    with pytest.raises(ClientClosed):
        zoe.stats()
    assert zoe.close(1.0) == 100 and time.monotonic() - started < 0.5


def test_flush_after_an_outage_retries_at_once_instead_of_waiting_out_the_backoff(service_factory, spool: str):
    service: Service = service_factory()
    service.kill()
    zoe = Client(service.url, mode="paper", spool_path=spool, backoff_base=30.0, backoff_max=30.0, exit_timeout=None)
    for i in range(100):
        zoe.emit("SIGNAL", "ENTRY", f"signal {i}")
    # Full jitter: some waits are short; wait for one long enough to tell a retry at once from one after it.
    wait_until(lambda: zoe.stats().retry_in > 10.0, timeout=60, what="a long backoff")
    service.start()
    started = time.monotonic()
    assert zoe.flush(8.0) == 0
    assert zoe.stats().retry_in == 0.0
    zoe.close(1)
    assert time.monotonic() - started < 8.0
    assert bodies_by_mode(service)["paper"] == [f"signal {i}" for i in range(100)]
