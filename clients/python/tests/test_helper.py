"""The delivery helper process (_helper.py, _link.py): what happens to emitted
events when it dies, when it and the bot die together, when the bot forks,
and the in-process alternative (delivery="thread")."""

from __future__ import annotations

import glob
import os
import signal
import subprocess

import pytest
from conftest import Service, run_python, wait_until
from test_faults import assert_gapless, bodies_by_mode

from zoe_local import Client
from zoe_local._ring import ring_places


def rings(spool: str) -> list:
    """The ring files of this spool, wherever they are kept."""
    return [
        p
        for folder, prefix in ring_places(spool)
        for p in glob.glob(os.path.join(folder, prefix + "*"))
        if not p.endswith(".lock")
    ]


def test_a_killed_delivery_helper_is_started_again_and_loses_nothing(service: Service, spool: str):
    zoe = Client(service.url, mode="live", spool_path=spool, exit_timeout=None)
    assert zoe.delivery == "process"
    for i in range(3000):
        zoe.emit("TICK", "PRICE", f"tick {i}")
    first = zoe._delivery.proc  # type: ignore[union-attr]
    os.kill(first.pid, signal.SIGKILL)
    for i in range(3000, 6000):
        zoe.emit("TICK", "PRICE", f"tick {i}")
    wait_until(lambda: zoe._delivery.proc is not first and zoe._delivery.proc.poll() is None, what="a new helper")  # type: ignore[union-attr]
    assert zoe.flush(30) == 0
    zoe.close(5)
    assert bodies_by_mode(service)["live"] == [f"tick {i}" for i in range(6000)]
    assert_gapless(service)


BOT = """
import os, sys
from zoe_local import Client
zoe = Client(sys.argv[1], mode="paper", spool_path=sys.argv[2])
print(zoe._delivery.proc.pid, flush=True)
sys.stdin.readline()  # the test stops the helper first
for i in range(1000):
    zoe.emit("SIGNAL", "ENTRY", f"signal {i}")
print("emitted", flush=True)
sys.stdin.readline()
"""


def test_a_ring_left_by_a_bot_and_its_helper_both_killed_is_delivered_by_the_next_client(service: Service, spool: str):
    bot = run_python(
        BOT, service.url, spool, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert bot.stdin is not None and bot.stdout is not None
    helper = int(bot.stdout.readline())
    os.kill(helper, signal.SIGSTOP)  # it reads nothing more: the events stay in the ring only
    bot.stdin.write("go\n")
    bot.stdin.flush()
    assert bot.stdout.readline().strip() == "emitted"
    os.killpg(bot.pid, signal.SIGKILL)  # the bot and its helper, as a machine's OOM killer or a kill of the group would
    bot.wait(10)
    wait_until(
        lambda: not os.path.exists(f"/proc/{helper}") or open(f"/proc/{helper}/stat").read().split()[2] == "Z",
        what="the helper's end",
    )
    assert len(rings(spool)) == 1
    assert service.stored() == []

    with Client(service.url, mode="paper", spool_path=spool, exit_timeout=None) as again:
        assert again.delivery == "process"  # its helper recovered the ring (no fallback to threads)
        assert again.flush(30) == 0
    assert bodies_by_mode(service)["paper"] == [f"signal {i}" for i in range(1000)]
    assert rings(spool) == []  # recovered, then removed


@pytest.mark.parametrize("delivery", ["thread", "process"])
def test_both_deliveries_store_every_event_once_in_emit_order(service: Service, spool: str, delivery: str):
    with Client(service.url, mode="live", spool_path=spool, delivery=delivery, exit_timeout=None) as zoe:
        assert zoe.delivery == delivery
        for i in range(500):
            zoe.emit("TICK", "PRICE", f"tick {i}", durable=i % 100 == 0)
        assert zoe.flush(30) == 0
        assert zoe.stats().delivered == 500
    assert bodies_by_mode(service)["live"] == [f"tick {i}" for i in range(500)]
    assert rings(spool) == []


def test_an_unknown_delivery_is_refused_at_once(spool: str):
    with pytest.raises(ValueError, match="delivery must be one of process, thread"):
        Client("http://127.0.0.1:9", spool_path=spool, delivery="fiber")


def test_the_helper_lingers_so_events_emitted_a_millisecond_apart_share_requests(service: Service, spool: str):
    import time

    zoe = Client(service.url, mode="live", spool_path=spool, exit_timeout=None)
    zoe.emit("TICK", "PRICE", "warm")
    assert zoe.flush(30) == 0
    before = zoe.stats()
    for i in range(10):
        zoe.emit("TICK", "PRICE", f"paced {i}")
        time.sleep(0.001)
    assert zoe.flush(30) == 0
    after = zoe.stats()
    zoe.close(5)
    assert after.delivered - before.delivered == 10
    # Taken one by one (a helper that polls the ring every millisecond), they would need about ten.
    assert after.batches - before.batches <= 5
    assert bodies_by_mode(service)["live"] == ["warm"] + [f"paced {i}" for i in range(10)]


def test_a_critical_event_ends_the_linger_and_an_idle_helper_sleeps_until_rung(service: Service, spool: str):
    zoe = Client(service.url, mode="live", spool_path=spool, exit_timeout=None)
    zoe.emit("TICK", "PRICE", "warm")
    assert zoe.flush(30) == 0
    ring = zoe._delivery.ring  # type: ignore[union-attr]
    wait_until(lambda: ring.consumer_sleeping, what="the idle helper asleep")
    asleep = ring.consumer_sleep()
    zoe.emit("ORDER", "BUY_FILLED", "Bought 10 AAPL")  # critical: rung at once, however the helper waits
    wait_until(lambda: "Bought 10 AAPL" in bodies_by_mode(service).get("live", []), what="the fill delivered")
    wait_until(lambda: ring.consumer_sleeping and ring.consumer_sleep() > asleep, what="asleep again")
    zoe.close(5)
