"""Events emitted are stored once, in emit order, as they were emitted; reads and state snapshots."""

from __future__ import annotations

import json
from typing import List

import pytest
from conftest import Service, wait_until

from zoe_local import Client, DeliveryProblem, ServiceError


def test_emitted_events_are_stored_once_in_emit_order_as_emitted(service: Service, spool: str):
    with Client(service.url, mode="live", spool_path=spool) as zoe:
        ids = []
        for i in range(500):
            mode = "paper" if i % 3 == 0 else None
            ids.append(zoe.emit("TICK", "PRICE", f"tick {i}", symbol="AAPL", meta={"i": i}, mode=mode))
        fill = zoe.emit(
            "ORDER",
            "BUY_FILLED",
            "Bought 10 AAPL @ 187.50",
            symbol="AAPL",
            meta={"qty": 10, "price": 187.5},
            idempotency_key="order-4711-fill",
        )
        assert zoe.flush(10) == 0
        stats = zoe.stats()
        assert (stats.delivered, stats.spooled, stats.queued, stats.status) == (501, 0, 0, "ok")
        assert zoe.events(limit=1)[0]["idempotency_key"] == "order-4711-fill"
    stored = service.stored()
    assert len(stored) == 501
    by_id = {e["id"]: e for e in stored}
    assert set(by_id) == set(ids) | {fill}
    for mode in ("paper", "live"):
        in_mode = [by_id[i] for i in ids if by_id[i]["mode"] == mode]
        first = in_mode[0]["seq"] if in_mode else 0
        # Emit order, gapless from the first seq of this start's range.
        assert [e["seq"] for e in in_mode] == list(range(first, first + len(in_mode)))
        assert [json.loads(e["meta_json"])["i"] for e in in_mode] == sorted(
            json.loads(e["meta_json"])["i"] for e in in_mode
        )
    assert by_id[fill]["idempotency_key"] == "order-4711-fill" and by_id[fill]["seq"] == service.range_starts(
        by_id[fill]["mode"]
    )[0] + sum(1 for i in range(500) if i % 3)
    assert all(e["idempotency_key"] == e["id"] for e in stored if e["id"] != fill)


def test_reads_return_what_the_service_holds(service: Service, spool: str):
    with Client(service.url, mode="paper", spool_path=spool) as zoe:
        for i in range(30):
            zoe.emit("SIGNAL", "ENTRY", f"signal {i}")
        assert zoe.flush(10) == 0
        newest = zoe.events(limit=5)
        start = service.range_starts("paper")[0]  # the first seq of this start's range
        assert [e["seq"] for e in newest] == [start + k for k in range(25, 30)]
        page = zoe.events(since_seq=start + 9, limit=3)
        assert [e["body"] for e in page] == ["signal 10", "signal 11", "signal 12"]
        assert zoe.events(mode="live") == []
        assert zoe.state()["last_seq"] == start + 29
        with pytest.raises(ServiceError) as info:
            zoe.events(limit=5000)
        assert info.value.status == 400 and info.value.code == "invalid_request"


def test_post_state_queued_and_waited_keeps_the_newest_snapshot(service: Service, spool: str):
    with Client(service.url, mode="live", spool_path=spool) as zoe:
        assert zoe.post_state(cash=100.0, positions={"AAPL": 1}) is None  # queued
        ack = zoe.post_state(
            {"cash": 101.0, "holdings": [{"symbol": "AAPL", "qty": 2}]}, positions={"AAPL": 2}, wait=True
        )
        assert ack is not None and ack["mode"] == "live"
        assert zoe.flush(5) == 0
        state = zoe.state()
        assert (state["cash"], state["positions"], state["holdings"]) == (
            101.0,
            {"AAPL": 2},
            [{"symbol": "AAPL", "qty": 2}],
        )
        zoe.post_state(cash=102.5, positions={})
        zoe.post_state(cash=103.5, positions={})  # replaces the one before if it was not sent yet
        zoe.emit("T", "S", "after the snapshots")
        assert zoe.flush(5) == 0
        assert zoe.state()["cash"] == 103.5


def test_a_wrong_token_keeps_events_spooled_until_a_client_with_the_right_one_sends_them(service_factory, spool: str):
    token = "s3cret-token-0123456789"
    service: Service = service_factory({"ZOE_API_TOKEN": token})
    problems: List[DeliveryProblem] = []
    zoe = Client(
        service.url,
        "wrong-token-0123456789",
        mode="live",
        spool_path=spool,
        on_problem=problems.append,
        backoff_max=0.2,
    )
    for i in range(20):
        zoe.emit("T", "S", f"event {i}")
    assert zoe.flush(1.0) == 20
    stats = zoe.stats()
    assert stats.status == "rejected" and stats.dead_letters == 0 and stats.spooled == 20
    assert "401 unauthorized" in (stats.last_error or "")
    assert [p.kind for p in problems] == ["rejected"] and problems[0].status == 401
    assert token not in repr(zoe) and "wrong-token" not in repr(zoe)
    assert zoe.close(0.5) == 20
    with Client(service.url, token, mode="live", spool_path=spool) as fixed:
        assert fixed.flush(10) == 0
    assert [e["body"] for e in service.stored()] == [f"event {i}" for i in range(20)]


def test_an_outage_names_what_waits_and_recovery_clears_last_error_and_counts_state(
    service_factory, spool: str, caplog: pytest.LogCaptureFixture
):
    service: Service = service_factory()
    service.kill()
    caplog.set_level("WARNING", logger="zoe_local")
    zoe = Client(service.url, mode="paper", spool_path=spool, backoff_max=0.3, exit_timeout=None)
    for i in range(10):
        zoe.emit("SIGNAL", "ENTRY", f"signal {i}", durable=i == 9)
    zoe.post_state(cash=1.0)
    wait_until(lambda: len([r for r in caplog.records if "retried" in r.getMessage()]) >= 2, what="two warnings")
    warnings = [r.getMessage() for r in caplog.records if "retried" in r.getMessage()]
    about_events = [w for w in warnings if "events stay spooled" in w]
    about_state = [w for w in warnings if "state snapshot is kept" in w]
    assert about_events and about_state, warnings
    assert all("/local/state" not in w for w in about_events) and "10 events" in about_events[0]
    assert all("/local/state" in w for w in about_state)
    assert zoe.stats().last_error is not None

    service.start()
    assert zoe.flush(30) == 0  # the queued snapshot too
    stats = zoe.stats()
    assert stats.states_delivered == 1
    zoe.close(1)
    assert (stats.status, stats.last_error) == ("ok", None)
    assert stats.last_error_at is not None  # when the last problem was is kept
    assert stats.delivered == 10 + 1  # the events and the snapshot


def test_both_deliveries_implement_the_delivery_interface_with_its_signatures():
    import inspect

    from zoe_local._delivery import Delivery
    from zoe_local._link import HelperLink
    from zoe_local._pipeline import Pipeline

    methods = [n for n, v in vars(Delivery).items() if callable(v) and not n.startswith("_")]
    assert "offer" in methods and "close" in methods
    for impl in (HelperLink, Pipeline):
        for name in methods:
            assert inspect.signature(getattr(impl, name)) == inspect.signature(getattr(Delivery, name)), (impl, name)
        assert isinstance(impl.kind, str)
