"""Bots that fork: multiprocessing workers, os.fork, killed parents and the
spool they leave behind."""

from __future__ import annotations

import glob
import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import time
from typing import Dict

import pytest
from conftest import Service, run_python
from test_faults import bodies_by_mode

from zoe_local import Client

FORKING_BOT = """
import multiprocessing, os, sys, time
from zoe_local import Client
zoe = Client(sys.argv[1], mode="paper", spool_path=sys.argv[2], delivery=sys.argv[3])
for i in range(500):  # the last one durable: with delivery="thread" nothing outlives the bot but the spool
    zoe.emit("SIGNAL", "ENTRY", f"signal {i}", durable=i == 499)
if sys.argv[4] == "multiprocessing":
    worker = multiprocessing.get_context("fork").Process(target=time.sleep, args=(120,), daemon=False)
    worker.start()
    pid = worker.pid
else:  # a C library's fork(): no at-fork hook runs in the child
    import ctypes
    pid = ctypes.CDLL(None, use_errno=True).fork()
    if pid == 0:
        time.sleep(120)
        os._exit(0)
print(pid, flush=True)
sys.stdin.readline()  # the test kills us here
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize(
    "delivery, fork", [("process", "multiprocessing"), ("thread", "multiprocessing"), ("process", "libc")]
)
def test_a_bot_killed_while_its_fork_worker_lives_restarts_on_its_spool_at_once(
    service: Service, spool: str, delivery: str, fork: str
):
    bot = run_python(
        FORKING_BOT, service.url, spool, delivery, fork, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert bot.stdout is not None
    worker = int(bot.stdout.readline())
    try:
        os.kill(bot.pid, signal.SIGKILL)  # the bot only: its multiprocessing worker stays alive
        bot.wait(10)
        assert _alive(worker)
        started = time.monotonic()
        again = Client(service.url, mode="paper", spool_path=spool, exit_timeout=None)
        opened = time.monotonic() - started
        assert again.spool_path == spool  # its own spool, not a side spool
        assert again.flush(30) == 0
        again.close(5)
        assert opened < 5.0, f"the restarted bot took {opened:.1f} s to open its spool"
        assert _alive(worker)  # the worker never let go of anything; nobody waited for it
    finally:
        try:
            os.kill(worker, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert bodies_by_mode(service)["paper"] == [f"signal {i}" for i in range(500)]


def test_a_forked_child_that_uses_its_parents_client_spools_on_its_own_and_the_parent_takes_it_over(spool: str):
    zoe = Client("http://127.0.0.1:9", mode="paper", spool_path=spool, exit_timeout=None)
    zoe.emit("T", "S", "the parent's first")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a worker: emits through its parent's Client, then ends without close() (os._exit, as pools do)
        os.close(read)
        try:
            zoe.emit("T", "S", "from the child", durable=True)
            os.write(write, zoe.spool_path.encode())
        except BaseException as error:
            os.write(write, repr(error).encode())
        os._exit(0)
    os.close(write)
    said = os.read(read, 1000).decode()
    os.waitpid(pid, 0)
    assert said.startswith(spool + ".worker-") and said.endswith(".db"), said  # a side spool of its own
    zoe.emit("T", "S", "the parent's second")
    assert zoe.flush(0.5) == 3  # the flush took the finished child's spool over: its event waits with the parent's
    assert not os.path.exists(said)
    assert zoe.close(0.2) == 3
    bodies = [
        json.loads(p)["body"] for (p,) in sqlite3.connect(spool).execute("SELECT payload FROM spool ORDER BY seq")
    ]
    assert sorted(bodies) == sorted(["the parent's first", "from the child", "the parent's second"])


_PARENT: Dict[str, Client] = {}


def _backtest(run: int) -> int:
    zoe = _PARENT["zoe"]  # the parent's Client, as a strategy made in the parent and run by optstrategy would use
    for bar in range(200):
        zoe.emit("TICK", "BAR", f"run {run} bar {bar}")
    zoe.emit("ORDER", "BUY_FILLED", f"run {run} filled")
    return os.getpid()


def test_a_fork_pool_using_the_parents_client_delivers_every_worker_event_once(service: Service, spool: str):
    zoe = Client(service.url, mode="paper", spool_path=spool, exit_timeout=None)
    _PARENT["zoe"] = zoe
    zoe.emit("RUN", "START", "optimisation starts")
    with multiprocessing.get_context("fork").Pool(2) as pool:  # leaving the block terminates the workers (SIGTERM)
        pids = pool.map(_backtest, range(4))
    assert len(set(pids)) <= 2
    zoe.emit("RUN", "END", "optimisation ends")
    assert zoe.flush(30) == 0
    zoe.close(5)
    bodies = bodies_by_mode(service)["paper"]
    assert sorted(bodies) == sorted(
        ["optimisation starts", "optimisation ends"]
        + [f"run {r} bar {b}" for r in range(4) for b in range(200)]
        + [f"run {r} filled" for r in range(4)]
    )
    for r in range(4):  # each run's events in its emit order
        mine = [b for b in bodies if b.startswith(f"run {r} ")]
        assert mine == [f"run {r} bar {b}" for b in range(200)] + [f"run {r} filled"]
    assert glob.glob(spool + ".worker-*") == []


WORKER = """
import sys, time
from zoe_local import Client
started = time.monotonic()
zoe = Client(sys.argv[1], mode="live", spool_path=sys.argv[2])
print(round(time.monotonic() - started, 2), zoe.spool_path, flush=True)
for i in range(300):
    zoe.emit("TICK", "PRICE", f"{sys.argv[3]} {i}")
assert zoe.flush(30) == 0
sys.stdin.readline()
zoe.close(5)
"""


def test_a_client_per_worker_on_one_spool_path_runs_side_by_side(service: Service, spool: str):
    workers = [
        run_python(WORKER, service.url, spool, f"w{n}", stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for n in range(2)
    ]
    opened = [w.stdout.readline().split() for w in workers]  # type: ignore[union-attr]
    for w in workers:  # both are open at once: neither waited for the other
        w.stdin.write("done\n")  # type: ignore[union-attr]
        w.stdin.flush()  # type: ignore[union-attr]
    assert [w.wait(30) for w in workers] == [0, 0]
    paths = sorted(p for _, p in opened)
    assert paths[0] == spool and paths[1].startswith(spool + ".worker-")  # one on the spool, one on a side spool
    assert all(float(t) < 3.0 for t, _ in opened), opened  # no lock wait
    bodies = bodies_by_mode(service)["live"]
    for n in range(2):
        assert [b for b in bodies if b.startswith(f"w{n} ")] == [f"w{n} {i}" for i in range(300)]
    assert glob.glob(spool + ".worker-*") == []  # the side spool was empty at close: removed
