"""Bots that fork: multiprocessing workers, os.fork, killed parents and the
spool they leave behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time

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
