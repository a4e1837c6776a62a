"""An event the service refuses for good goes to the dead-letter table with the
service's error; the events around it are delivered, in order."""

from __future__ import annotations

import json
import sqlite3
from typing import List

from conftest import Service

from zoe_local import Client, DeadLetter


def test_an_event_over_the_services_request_limit_is_dead_lettered_and_the_rest_delivered(service_factory, spool: str):
    # The service was configured with a smaller body limit than the client assumes.
    service: Service = service_factory({"ZOE_MAX_REQUEST_BYTES": "16384"})
    letters: List[DeadLetter] = []
    zoe = Client(service.url, mode="live", spool_path=spool, on_dead_letter=letters.append, exit_timeout=None)
    for i in range(300):
        zoe.emit("TICK", "PRICE", f"tick {i}")
        if i == 150:
            big = zoe.emit("REPORT", "DAILY", "x" * 20_000)
    assert zoe.flush(30) == 0
    stats = zoe.stats()
    assert (stats.dead_letters, stats.spooled, stats.delivered) == (1, 0, 300)
    [letter] = zoe.dead_letters()
    assert letters == [letter]
    assert letter.event["id"] == big and letter.event["body"] == "x" * 20_000
    assert (letter.status, letter.code) == (413, "payload_too_large")
    assert "16384" in letter.message
    assert [e["body"] for e in service.stored()] == [f"tick {i}" for i in range(300)]

    # After the service's limit is raised, the dead letter can be sent again.
    zoe.close(1)
    service.kill()
    service.start({"ZOE_MAX_REQUEST_BYTES": "1048576"})
    with Client(service.url, mode="live", spool_path=spool) as again:
        assert again.stats().dead_letters == 1
        assert again.requeue_dead_letters() == 1
        assert again.flush(10) == 0
        assert again.stats().dead_letters == 0
    assert service.stored()[-1]["id"] == big


def test_a_spooled_event_the_service_finds_invalid_is_dead_lettered_with_its_json_pointer(service: Service, spool: str):
    # A spool written by an older client that let a bad severity through.
    zoe = Client("http://127.0.0.1:9", mode="paper", spool_path=spool, exit_timeout=None)
    for i in range(40):
        zoe.emit("TICK", "PRICE", f"tick {i}")
    zoe.close(0.2)
    db = sqlite3.connect(spool)
    seq, payload = db.execute("SELECT seq, payload FROM spool WHERE seq = 21").fetchone()
    event = json.loads(payload)
    event["severity"] = "fatal"
    bad = json.dumps(event).encode()
    db.execute("UPDATE spool SET payload = ?, size = ? WHERE seq = ?", (bad, len(bad), seq))
    db.commit()
    db.close()

    with Client(service.url, mode="paper", spool_path=spool) as zoe:
        assert zoe.flush(10) == 0
        [letter] = zoe.dead_letters()
    assert (letter.status, letter.code) == (400, "invalid_request")
    assert letter.event["id"] == event["id"]
    assert any(d["path"].endswith("/severity") for d in letter.details)
    assert [e["body"] for e in service.stored()] == [f"tick {i}" for i in range(40) if i != 20]


def test_a_reused_idempotency_key_for_another_event_is_dead_lettered_with_the_conflict(service: Service, spool: str):
    letters: List[DeadLetter] = []
    with Client(service.url, mode="live", spool_path=spool, on_dead_letter=letters.append) as zoe:
        zoe.emit("ORDER", "BUY_FILLED", "Bought 10 AAPL @ 187.50", idempotency_key="order-4711-fill")
        assert zoe.flush(10) == 0
        for i in range(20):
            zoe.emit("TICK", "PRICE", f"tick {i}")
            if i == 10:  # the bot's bug: the same key for a different fill
                wrong = zoe.emit("ORDER", "BUY_FILLED", "Bought 20 MSFT @ 410.00", idempotency_key="order-4711-fill")
            if i == 12:  # a true retry of the first fill is no conflict: answered as a duplicate
                zoe.emit("ORDER", "BUY_FILLED", "Bought 10 AAPL @ 187.50", idempotency_key="order-4711-fill")
        assert zoe.flush(10) == 0
        stats = zoe.stats()
    [letter] = letters
    assert (letter.status, letter.code, letter.event["id"]) == (409, "idempotency_conflict", wrong)
    assert letter.details[0]["stored_event"]["seq"] == service.stored()[0]["seq"]
    assert stats.dead_letters == 1
    assert [e["body"] for e in service.stored()] == ["Bought 10 AAPL @ 187.50"] + [f"tick {i}" for i in range(20)]
