"""Settings: one frozen, validated configuration object, passed whole to the delivery helper."""

from __future__ import annotations

import dataclasses
from typing import List

import pytest
from conftest import wait_until

from zoe_local import Client, Dropped, Settings, default_spool_path


def test_settings_refuse_a_bad_value_naming_the_field():
    for kwargs, what in (
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"backoff_max": "5"}, "backoff_max must be a positive number"),
        ({"queue_max": 1.5}, "queue_max must be a positive integer"),
        ({"ring_bytes": -1}, "ring_bytes must be a positive integer"),
        ({"max_batch": 1001}, "max_batch must be an integer from 1 to 1000"),
        ({"delivery": "fiber"}, "delivery must be one of process, thread"),
        ({"spool_synchronous": "OFF"}, "spool_synchronous must be one of"),
        ({"token": ""}, "token must be a non-empty string"),
        ({"url": "127.0.0.1:8765"}, "url must be http:// or https://"),
        ({"mode": "demo"}, "mode must be one of"),
        ({"helper_nice": "10"}, "helper_nice must be an integer"),
        ({"critical_subtypes": "BUY_FILLED"}, "critical_subtypes must be strings"),
        ({"on_drop": "print"}, "on_drop must be a callable"),
        ({"non_finite": "zero"}, "non_finite must be one of"),
    ):
        with pytest.raises(ValueError, match=what):
            Settings(**kwargs)


def test_settings_are_frozen_and_normalised():
    settings = Settings(timeout=3, critical_subtypes=["KILL_SWITCH"], token="secret")
    assert settings.timeout == 3.0 and isinstance(settings.timeout, float)
    assert settings.critical_subtypes == frozenset({"KILL_SWITCH"})
    assert "secret" not in repr(settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.timeout = 1.0  # type: ignore[misc]


def test_client_takes_settings_whole_and_keyword_arguments_override_them(spool: str):
    base = Settings(url="http://127.0.0.1:9", queue_max=7, overflow="block", exit_timeout=None)
    with Client(settings=base, mode="paper", spool_path=spool, delivery="thread") as zoe:
        assert zoe.settings == dataclasses.replace(base, mode="paper", spool_path=spool, delivery="thread")
        assert (zoe.mode, zoe.spool_path, zoe.delivery) == ("paper", spool, "thread")


def test_client_keyword_arguments_build_the_settings_and_unknown_ones_are_refused(spool: str):
    with Client("http://127.0.0.1:9", None, "live", spool_path=spool, max_batch=10, exit_timeout=None) as zoe:
        assert (zoe.settings.url, zoe.settings.mode, zoe.settings.max_batch) == ("http://127.0.0.1:9", "live", 10)
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['spool'\]"):
        Client("http://127.0.0.1:9", spool=spool)
    with pytest.raises(ValueError, match="settings must be a zoe_local.Settings"):
        Client(settings={"mode": "live"})  # type: ignore[arg-type]


def test_client_without_spool_path_takes_the_default_of_its_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    with Client("http://127.0.0.1:9", mode="paper", delivery="thread", exit_timeout=None) as zoe:
        assert zoe.spool_path == default_spool_path("paper") == str(tmp_path / "zoe-local" / "spool-paper.db")


def test_settings_survive_the_trip_to_the_helper_with_hooks_standing_in_for_callbacks():
    settings = Settings(mode="live", spool_path="/tmp/x.db", on_drop=print, logger=None, json_default=str)
    data = settings.to_json()
    assert data["hooks"] == ["on_drop"] and "json_default" not in data and "logger" not in data
    calls: List[str] = []
    back = Settings.from_json(data, lambda name: lambda value: calls.append(name))
    assert dataclasses.replace(back, on_drop=print, json_default=str) == settings
    back.on_drop(Dropped("id", "live", "T", "S", "queue_full"))  # type: ignore[misc]
    assert calls == ["on_drop"]


def test_the_helper_decides_with_the_clients_settings_and_calls_back_through_its_hooks(spool: str):
    drops: List[Dropped] = []
    # spool_max_bytes and on_drop reach the helper: it refuses the second event for a full spool.
    with Client("http://127.0.0.1:9", mode="paper", spool_path=spool, spool_max_bytes=1, on_drop=drops.append) as zoe:
        assert zoe.delivery == "process"
        zoe.emit("TICK", "PRICE", "tick 0", durable=True)
        second = zoe.emit("TICK", "PRICE", "tick 1")
        wait_until(lambda: drops, what="the helper's drop")
        assert [(d.id, d.reason) for d in drops] == [(second, "spool_full")]
        assert zoe.stats().dropped == 1
        zoe.close(0.2)
