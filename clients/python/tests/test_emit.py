"""emit() refuses misuse at once, in the caller's thread, with an error naming the field."""

from __future__ import annotations

import enum
import hashlib
import json
import math
import multiprocessing
import os
import pickle
import re
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import CLIENT_DIR, free_port

from zoe_local import Client, ClientClosed, InvalidEvent, SpoolError, uuid7
from zoe_local._event import is_iso_timestamp


class _Big(enum.IntEnum):
    ID = 2**60  # an int subclass: json encodes it as a number, so the ±2^53 rule applies


@pytest.fixture
def client(spool: str):
    # Nothing listens on this port: misuse must be caught without a service.
    c = Client(f"http://127.0.0.1:{free_port()}", mode="paper", spool_path=spool, exit_timeout=None)
    yield c
    c.close(0.5)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"severity": "fatal"}, "/severity"),
        ({"mode": "backtest"}, "/mode"),
        ({"type": ""}, "/type"),
        ({"type": 7}, "/type"),
        ({"subtype": "X" * 129}, "/subtype"),
        ({"subtype": "😀" * 65}, "/subtype"),  # 130 UTF-16 units, as the service counts
        ({"body": ""}, "/body"),
        ({"body": b"bytes"}, "/body"),
        ({"body": "a\x00b"}, "/body"),
        ({"body": "é" * 32769}, "/body"),  # 65,538 bytes of UTF-8
        ({"symbol": "S" * 65}, "/symbol"),
        ({"source": ""}, "/source"),
        ({"idempotency_key": "k" * 257}, "/idempotency_key"),
        ({"ts": "2026-03-02 09:30:00"}, "/ts"),
        ({"ts": "2026-02-30T09:30:00Z"}, "/ts"),
        ({"ts": "2026-03-02T09:30:00+16:00"}, "/ts"),
        ({"ts": datetime(2026, 3, 2, 9, 30)}, "/ts"),
        ({"meta": ["not", "a", "dict"]}, "/meta"),
        ({"meta": {"x": math.nan}}, "/meta/x"),
        ({"meta": {"x": {1, 2}}}, "/meta/x"),
        ({"meta": {"order_id": 2**53}}, "/meta/order_id"),
        ({"meta": {"order_id": -(2**53)}}, "/meta/order_id"),
        ({"meta": {"fills": [{"id": 1}, {"id": 2**60}]}}, "/meta/fills/1/id"),
        ({"meta": {"order_id": _Big.ID}}, "/meta/order_id"),
        ({"meta": {"x": [math.inf]}}, "/meta/x/0"),
        ({"meta": {"text": "a\x00b"}}, "/meta"),
        ({"body": "lone \ud800 surrogate"}, "/body"),
    ],
)
def test_emit_raises_invalid_event_naming_the_field(client: Client, kwargs, field):
    args = {"type": "ORDER", "subtype": "BUY_FILLED", "body": "Bought 10 AAPL"}
    args.update(kwargs)
    with pytest.raises(InvalidEvent) as info:
        client.emit(args.pop("type"), args.pop("subtype"), args.pop("body"), **args)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)
    assert client.stats().queued == 0 and client.stats().spooled == 0


def test_emit_refuses_meta_nested_deeper_than_the_service_accepts(client: Client):
    meta: dict = {}
    inner = meta
    for _ in range(70):
        inner["a"] = {}
        inner = inner["a"]
    with pytest.raises(InvalidEvent, match="nested more than 64 levels") as info:
        client.emit("T", "S", "deep", meta=meta)
    pointer = "/meta" + "/a" * 62
    assert info.value.field == pointer
    message = str(info.value)
    assert message.count("/meta") == 1 and len(message) < 120, message  # the pointer once, shortened
    assert message.endswith("at /meta/a/a/a/a/a/a/a/a/a…/a/a/a/a/a/a/a/a")


def test_a_second_client_of_one_process_on_a_spool_says_why_without_waiting_3_s(client: Client, spool: str):
    started = time.monotonic()
    with pytest.raises(SpoolError, match="another open Client of this process"):
        Client("http://127.0.0.1:1", mode="paper", spool_path=spool)
    assert time.monotonic() - started < 2.5


def test_a_client_cannot_be_pickled_for_a_spawn_child_and_says_what_to_do(client: Client):
    with pytest.raises(TypeError, match="make a Client in the child"):
        pickle.dumps(client)
    child = multiprocessing.get_context("spawn").Process(target=print, args=(client,))
    with pytest.raises(TypeError, match="'spawn' or 'forkserver' child"):
        child.start()


def test_the_ring_file_is_where_the_readme_says(client: Client, spool: str):
    digest = hashlib.sha256(os.path.abspath(spool).encode()).hexdigest()[:16]
    ring = client._delivery.ring_path  # type: ignore[union-attr]
    assert re.fullmatch(rf"/dev/shm/zoe-local-{digest}\.ring-{os.getpid()}-[0-9a-f]{{8}}", ring), ring
    assert os.path.exists(ring) and os.path.exists(ring + ".lock")
    readme = (CLIENT_DIR / "README.md").read_text()
    assert "/dev/shm/zoe-local-<hash>.ring-<pid>-<random>" in readme and "(plus a `.lock`)" in readme


def test_emit_refuses_an_event_larger_than_the_request_limit(spool: str):
    c = Client(
        f"http://127.0.0.1:{free_port()}", mode="live", spool_path=spool, max_request_bytes=4096, exit_timeout=None
    )
    try:
        with pytest.raises(InvalidEvent, match="over the service's request limit of 4096 bytes"):
            c.emit("T", "S", "x" * 5000)
    finally:
        c.close(0.5)


def test_emit_without_a_mode_anywhere_raises(spool: str):
    c = Client(f"http://127.0.0.1:{free_port()}", spool_path=spool, exit_timeout=None)
    try:
        with pytest.raises(InvalidEvent, match="no mode"):
            c.emit("T", "S", "b")
        assert re.fullmatch(r"[0-9a-f-]{36}", c.emit("T", "S", "b", mode="live"))
    finally:
        c.close(0.5)


def test_client_refuses_bad_settings_at_construction(spool: str):
    with pytest.raises(ValueError, match="mode"):
        Client("http://127.0.0.1:1", mode="demo", spool_path=spool)
    with pytest.raises(ValueError, match="url"):
        Client("127.0.0.1:8765", spool_path=spool)
    with pytest.raises(ValueError, match="max_batch"):
        Client("http://127.0.0.1:1", spool_path=spool, max_batch=5000)
    with pytest.raises(ValueError, match="spool_synchronous"):
        Client("http://127.0.0.1:1", spool_path=spool, spool_synchronous="OFF")


def test_a_second_client_on_the_same_spool_is_refused(client: Client, spool: str):
    with pytest.raises(SpoolError, match="another process"):
        Client("http://127.0.0.1:1", mode="paper", spool_path=spool)


def test_emit_after_close_raises_client_closed(client: Client):
    client.close(0.5)
    with pytest.raises(ClientClosed):
        client.emit("T", "S", "b")
    with pytest.raises(ClientClosed):
        client.post_state(cash=1.0)


def test_emit_returns_a_uuidv7_that_is_also_the_idempotency_key(client: Client, spool: str):
    before = datetime.now(timezone.utc)
    event_id = client.emit("ORDER", "BUY_FILLED", "Bought", meta={"qty": 10, "price": 187.5, "note": "Zürich"})
    assert uuid.UUID(event_id).version == 7
    client.close(0.5)  # nothing listens: the event stays in the spool, as emitted
    import sqlite3

    payload = json.loads(sqlite3.connect(spool).execute("SELECT payload FROM spool").fetchone()[0])
    assert payload["id"] == payload["idempotency_key"] == event_id
    stamped = datetime.fromisoformat(payload["ts"].replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= stamped <= datetime.now(timezone.utc)
    assert payload["meta"] == {"qty": 10, "price": 187.5, "note": "Zürich"}
    assert is_iso_timestamp(payload["ts"])


def test_uuid7_ids_of_a_forked_child_never_repeat_the_parents(tmp_path: Path):
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read)
        os.write(write, "\n".join(uuid7() for _ in range(1000)).encode())
        os._exit(0)
    os.close(write)
    mine = {uuid7() for _ in range(1000)}
    chunks = []
    while True:
        chunk = os.read(read, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.waitpid(pid, 0)
    theirs = set(b"".join(chunks).decode().split("\n"))
    assert len(theirs) == 1000 and len(mine) == 1000
    assert not mine & theirs


def test_uuid7_has_version_7_the_rfc_variant_and_the_call_time_in_its_first_48_bits():
    ids = [uuid7() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    now_ms = time.time_ns() // 1_000_000
    for text in ids[::97]:
        u = uuid.UUID(text)
        assert str(u) == text and u.version == 7 and u.variant == uuid.RFC_4122
        assert 0 <= now_ms - (u.int >> 80) < 10_000
    assert uuid7(1_764_000_000_123_456_789).startswith("019ab697-e87b-7")  # 1764000000123 ms


def test_a_naive_ts_is_refused_by_default_and_read_by_naive_ts_when_set(service, spool: str):
    import pandas as pd

    bar = datetime(2026, 3, 2, 9, 30, 0, 250000)  # what backtrader's data.datetime.datetime(0) hands out
    with Client(service.url, mode="paper", spool_path=spool, exit_timeout=None) as zoe:
        with pytest.raises(InvalidEvent, match='naive_ts="utc"') as info:
            zoe.emit("TICK", "BAR", "bar", ts=bar)
        assert info.value.field == "/ts"
    with Client(service.url, mode="paper", spool_path=spool, naive_ts="utc", exit_timeout=None) as zoe:
        zoe.emit("TICK", "BAR", "utc", ts=bar)
        zoe.emit("TICK", "BAR", "pandas", ts=pd.Timestamp(bar))
        zoe.emit("TICK", "BAR", "aware", ts=bar.replace(tzinfo=timezone(timedelta(hours=-5))))
        assert zoe.flush(20) == 0
    with Client(service.url, mode="paper", spool_path=spool, naive_ts="local", exit_timeout=None) as zoe:
        zoe.emit("TICK", "BAR", "local", ts=bar)
        assert zoe.flush(20) == 0
    stored = {e["body"]: datetime.fromisoformat(e["ts"].replace("Z", "+00:00")) for e in service.stored()}
    assert stored["utc"] == stored["pandas"] == bar.replace(tzinfo=timezone.utc)
    assert stored["aware"] == bar.replace(tzinfo=timezone(timedelta(hours=-5)))  # an offset is never overridden
    assert stored["local"] == bar.astimezone()


def test_ts_takes_unix_epoch_seconds_as_a_float_or_int(service, spool: str):
    import numpy as np

    with Client(service.url, mode="live", spool_path=spool, exit_timeout=None) as zoe:
        zoe.emit("TICK", "BAR", "float", ts=1_772_443_800.123456)
        zoe.emit("TICK", "BAR", "int", ts=1_772_443_800)
        zoe.emit("TICK", "BAR", "numpy", ts=np.float64(1_772_443_800.5))
        zoe.emit("TICK", "BAR", "1960", ts=-315_619_200.0)
        for bad in (1_772_443_800_123, math.nan, math.inf, True):  # milliseconds, not finite, a bool
            with pytest.raises(InvalidEvent) as info:
                zoe.emit("TICK", "BAR", "bad", ts=bad)
            assert info.value.field == "/ts"
        assert zoe.flush(20) == 0
    assert {e["body"]: e["ts"] for e in service.stored()} == {
        "float": "2026-03-02T09:30:00.123456Z",
        "int": "2026-03-02T09:30:00.000000Z",
        "numpy": "2026-03-02T09:30:00.500000Z",
        "1960": "1960-01-01T00:00:00.000000Z",
    }
