"""emit()'s checks give the service's verdicts: a corpus of edge cases is posted
to the real service as the client would post it (an array of one event), and
each verdict is compared with what emit() says about the same fields."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Dict

import pytest
from conftest import Service, free_port

from zoe_local import Client, InvalidEvent


def nested(levels: int) -> Dict[str, Any]:
    meta: Dict[str, Any] = {}
    inner = meta
    for _ in range(levels):
        inner["a"] = {}
        inner = inner["a"]
    return meta


CORPUS = {
    "ts with offset and fraction": {"ts": "2026-03-02T09:30:00.5-05:00"},
    "ts in UTC": {"ts": "2026-03-02T09:30:00Z"},
    "ts on a leap day": {"ts": "2024-02-29T00:00:00Z"},
    "ts on a day 2026 has not": {"ts": "2026-02-29T00:00:00Z"},
    "ts at hour 24": {"ts": "2026-03-02T24:00:00Z"},
    "ts offset +15:59": {"ts": "2026-03-02T09:30:00+15:59"},
    "ts offset +16:00": {"ts": "2026-03-02T09:30:00+16:00"},
    "ts with 10 fraction digits": {"ts": "2026-03-02T09:30:00.1234567891Z"},
    "ts in year 0": {"ts": "0000-01-01T00:00:00Z"},
    "ts without offset": {"ts": "2026-03-02T09:30:00"},
    "type of 128 characters": {"type": "T" * 128},
    "type of 129 characters": {"type": "T" * 129},
    "type of 64 emoji (128 UTF-16 units)": {"type": "😀" * 64},
    "type of 65 emoji (130 UTF-16 units)": {"type": "😀" * 65},
    "body of 65,536 ASCII bytes": {"body": "b" * 65536},
    "body of 65,537 ASCII bytes": {"body": "b" * 65537},
    "body of 65,536 UTF-8 bytes": {"body": "é" * 32768},
    "body of 65,538 UTF-8 bytes": {"body": "é" * 32769},
    "body with NUL": {"body": "a\x00b"},
    "symbol of 64": {"symbol": "S" * 64},
    "symbol of 65": {"symbol": "S" * 65},
    "symbol null": {"symbol": None},
    "key of 256": {"idempotency_key": "k" * 256},
    "key of 257": {"idempotency_key": "k" * 257},
    "meta with NUL": {"meta": {"a": "x\x00"}},
    "meta with the text \\u0000": {"meta": {"a": "\\u0000"}},
    "meta with the text \\ud800": {"meta": {"a": "\\ud800"}},
    "meta nested 61 levels": {"meta": nested(61)},
    "meta nested 62 levels": {"meta": nested(62)},
    "meta with unicode": {"meta": {"name": "Zürich 😀"}},
}


def service_verdict(url: str, fields: Dict[str, Any]) -> bool:
    event = {"mode": "paper", "source": "bot", "type": "T", "subtype": "S", "body": "b", **fields}
    data = json.dumps([event], ensure_ascii=False).encode("utf-8")
    req = urllib.request.Request(f"{url}/local/events", data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status in (200, 201)
    except urllib.error.HTTPError as error:
        assert error.code == 400, error.read()
        return False


def client_verdict(client: Client, fields: Dict[str, Any]) -> bool:
    args = {"type": "T", "subtype": "S", "body": "b", **fields}
    try:
        client.emit(args.pop("type"), args.pop("subtype"), args.pop("body"), **args)
        return True
    except InvalidEvent:
        return False


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory):
    dir = tmp_path_factory.mktemp("parity")
    svc = Service(dir / "zoe.db").start()
    client = Client(
        f"http://127.0.0.1:{free_port()}", mode="paper", spool_path=str(dir / "spool.db"), exit_timeout=None
    )
    try:
        # The service accepts "k"*256 once; repeats are duplicates (also 2xx).
        yield {name: (service_verdict(svc.url, f), client_verdict(client, f)) for name, f in CORPUS.items()}
    finally:
        client.close(0.2)
        svc.kill()


@pytest.mark.parametrize("name", list(CORPUS))
def test_emit_accepts_exactly_what_the_service_accepts(verdicts, name):
    service, client = verdicts[name]
    assert client == service, (
        f"{name}: service {'accepts' if service else 'refuses'}, emit() {'accepts' if client else 'refuses'}"
    )


def test_emit_is_stricter_than_the_service_only_for_integers_past_2_53(verdicts, tmp_path):
    # The service stores 2**53 + 1 as a JavaScript number, i.e. rounded: emit()
    # refuses it rather than let an order id change silently.
    c = Client(f"http://127.0.0.1:{free_port()}", mode="paper", spool_path=str(tmp_path / "s.db"), exit_timeout=None)
    try:
        assert client_verdict(c, {"meta": {"id": 2**53 - 1}})
        assert not client_verdict(c, {"meta": {"id": 2**53 + 1}})
    finally:
        c.close(0.2)
