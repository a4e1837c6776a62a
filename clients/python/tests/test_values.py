"""meta and state values: strict by default with one wording in emit() and
post_state(); Client(convert=True, json_default=, non_finite=, naive_ts=)
for the values numpy, pandas, datetime and Decimal hand out. Real numpy and
pandas (.ci/run installs them)."""

from __future__ import annotations

import enum
import json
import math
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from conftest import Service, free_port

from zoe_local import Client, InvalidEvent

FRAMEWORK_VALUES = {
    "int64": np.int64(7),
    "int32": np.int32(-3),
    "float32": np.float32(1.5),
    "bool_": np.bool_(True),
    "decimal": Decimal("187.50"),
    "datetime": datetime(2026, 3, 2, 9, 30, tzinfo=timezone(timedelta(hours=-5))),
    "date": date(2026, 3, 2),
    "timestamp": pd.Timestamp("2026-03-02 14:30:00.123456789", tz="UTC"),
    "datetime64": np.datetime64("2026-03-02T14:30:00.250"),
    "array": np.array([1, 2, 3], dtype=np.int64),
    "series": pd.Series([1.25, 2.5]),
    "nan": math.nan,
    "np_nan": np.float64("nan"),
    "inf": np.float32("inf"),
    "nat": pd.NaT,
    "na": pd.NA,
}


class Side(enum.Enum):
    BUY = "buy"


@pytest.fixture
def offline(spool: str):
    # Nothing listens: these are refused or converted in the caller's thread.
    clients = []

    def make(**kwargs) -> Client:
        c = Client(f"http://127.0.0.1:{free_port()}", mode="paper", spool_path=spool, exit_timeout=None, **kwargs)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close(0.5)


@pytest.mark.parametrize("name", list(FRAMEWORK_VALUES))
def test_strict_default_refuses_framework_values_with_one_wording_in_emit_and_post_state(offline, name):
    zoe = offline()
    value = FRAMEWORK_VALUES[name]
    with pytest.raises(InvalidEvent) as emitted:
        zoe.emit("T", "S", "b", meta={"x": value})
    with pytest.raises(InvalidEvent) as posted:
        zoe.post_state(x=value)
    assert emitted.value.field == "/meta/x" and posted.value.field == "/x"
    emit_text, state_text = str(emitted.value), str(posted.value)
    assert emit_text.startswith("Cannot emit event: meta/x ") and state_text.startswith("Cannot post state: x ")
    assert emit_text.split("meta/x ", 1)[1] == state_text.split(": x ", 1)[1]
    assert "Object of type" not in emit_text + state_text
    if name in ("nan", "np_nan", "nat", "na"):  # np.float32 inf is first of all a numpy value
        assert 'non_finite="null"' in emit_text
    else:
        assert "not a JSON value" in emit_text and "convert=True" in emit_text
    assert zoe.stats().queued == 0


def test_a_numpy_bool_is_named_as_numpy_not_as_bool(offline):
    with pytest.raises(InvalidEvent, match=r"meta/filled is a numpy\.bool"):
        offline().emit("T", "S", "b", meta={"filled": np.bool_(False)})


def test_convert_stores_numpy_pandas_datetime_and_decimal_values_as_json(service: Service, spool: str):
    with Client(service.url, mode="paper", spool_path=spool, convert=True, non_finite="null", naive_ts="utc") as zoe:
        zoe.emit("ORDER", "BUY_FILLED", "Bought", meta={**FRAMEWORK_VALUES, "side": Side.BUY, "at": time(9, 30)})
        assert zoe.flush(20) == 0
    [stored] = service.stored()
    assert json.loads(stored["meta_json"]) == {
        "int64": 7,
        "int32": -3,
        "float32": 1.5,
        "bool_": True,
        "decimal": "187.50",  # a string: every digit kept, no float rounding
        "datetime": "2026-03-02T09:30:00-05:00",
        "date": "2026-03-02",
        "timestamp": "2026-03-02T14:30:00.123456789+00:00",
        "datetime64": "2026-03-02T14:30:00.250000+00:00",  # numpy's are naive: naive_ts applies
        "array": [1, 2, 3],
        "series": [1.25, 2.5],
        "nan": None,
        "np_nan": None,
        "inf": None,
        "nat": None,
        "na": None,
        "side": "buy",
        "at": "09:30:00",
    }


def test_convert_refuses_non_finite_values_unless_non_finite_is_null(offline):
    zoe = offline(convert=True)
    for value in (math.nan, np.float32("nan"), Decimal("NaN"), pd.NaT):
        with pytest.raises(InvalidEvent, match="which JSON cannot carry") as info:
            zoe.emit("T", "S", "b", meta={"sma": [1.0, value]})
        assert info.value.field == "/meta/sma/1"


def test_non_finite_null_works_without_convert(service: Service, spool: str):
    with Client(service.url, mode="paper", spool_path=spool, non_finite="null") as zoe:
        zoe.emit("TICK", "SMA", "warm-up", meta={"sma": math.nan, "hi": [math.inf, 1.5]})
        with pytest.raises(InvalidEvent, match="numpy.int64"):  # conversion stays off
            zoe.emit("TICK", "SMA", "warm-up", meta={"n": np.int64(1)})
        assert zoe.flush(20) == 0
    assert [json.loads(e["meta_json"]) for e in service.stored()] == [{"sma": None, "hi": [None, 1.5]}]


def test_a_converted_integer_beyond_2_53_is_refused_like_a_plain_one(offline):
    zoe = offline(convert=True)
    with pytest.raises(InvalidEvent, match="beyond ±2\\^53") as info:
        zoe.emit("T", "S", "b", meta={"ids": np.array([1, 2**60], dtype=np.int64)})
    assert info.value.field == "/meta/ids/1"


def test_json_default_converts_other_types_and_may_override_the_built_ins(service: Service, spool: str):
    class Money:
        def __init__(self, cents: int) -> None:
            self.cents = cents

    def default(value):
        if isinstance(value, Money):
            return {"cents": value.cents}
        if isinstance(value, Decimal):
            return float(value)
        if isinstance(value, timedelta):
            return value.total_seconds()
        raise TypeError(type(value).__name__)  # not mine: the built-ins decide

    with Client(service.url, mode="paper", spool_path=spool, convert=True, json_default=default) as zoe:
        zoe.emit("T", "S", "b", meta={"fee": Money(125), "px": Decimal("1.5"), "hold": timedelta(minutes=2)})
        zoe.emit("T", "S", "b", meta={"n": np.int64(4)})
        ack = zoe.post_state(cash=Decimal("10.25"), n=np.int64(2), wait=True)
        assert ack is not None and zoe.flush(20) == 0
        assert zoe.state()["cash"] == 10.25 and zoe.state()["n"] == 2
    assert [json.loads(e["meta_json"]) for e in service.stored()] == [
        {"fee": {"cents": 125}, "px": 1.5, "hold": 120.0},
        {"n": 4},
    ]


def test_json_default_alone_converts_only_what_it_knows(offline):
    def only_numpy(value):
        if isinstance(value, np.generic):
            return value.item()
        raise TypeError(type(value).__name__)

    zoe = offline(json_default=only_numpy)
    assert zoe.emit("T", "S", "b", meta={"n": np.int64(1)})
    with pytest.raises(InvalidEvent, match=r"meta/d is a decimal\.Decimal"):
        zoe.emit("T", "S", "b", meta={"d": Decimal(1)})


def test_a_failing_json_default_raises_invalid_event_with_the_cause(offline):
    def broken(value):
        raise KeyError("oops")

    with pytest.raises(InvalidEvent, match="json_default failed on meta/x") as info:
        offline(json_default=broken).emit("T", "S", "b", meta={"x": object()})
    assert isinstance(info.value.__cause__, KeyError)


def test_a_json_default_that_never_converts_is_refused(offline):
    with pytest.raises(InvalidEvent, match="did not convert"):
        offline(json_default=lambda v: v).emit("T", "S", "b", meta={"x": object()})


def test_convert_posts_a_state_snapshot_with_framework_values(service: Service, spool: str):
    with Client(service.url, mode="live", spool_path=spool, convert=True, naive_ts="utc") as zoe:
        zoe.post_state(
            cash=np.float64(10250.5),
            positions={"AAPL": np.int64(10)},
            marks=pd.Series([187.5, 188.0]).to_numpy(),
            as_of=datetime(2026, 3, 2, 14, 30),
            wait=True,
        )
        state = zoe.state()
    assert state["cash"] == 10250.5 and state["positions"] == {"AAPL": 10}
    assert state["marks"] == [187.5, 188.0] and state["as_of"] == "2026-03-02T14:30:00+00:00"


def test_a_naive_datetime_in_meta_follows_naive_ts(offline):
    with pytest.raises(InvalidEvent, match='naive_ts="utc"') as info:
        offline(convert=True).emit("T", "S", "b", meta={"bar": datetime(2026, 3, 2, 9, 30)})
    assert info.value.field == "/meta/bar"


def test_bad_value_settings_are_refused_at_construction(spool: str):
    for kwargs, what in (
        ({"non_finite": "zero"}, "non_finite"),
        ({"naive_ts": "nyc"}, "naive_ts"),
        ({"json_default": "str"}, "json_default"),
    ):
        with pytest.raises(ValueError, match=what):
            Client("http://127.0.0.1:1", mode="paper", spool_path=spool, exit_timeout=None, **kwargs)


def test_nesting_past_the_limit_reads_the_same_for_converted_values(offline):
    deep: dict = {"x": np.int64(1)}
    for _ in range(70):
        deep = {"a": deep}
    with pytest.raises(InvalidEvent) as info:
        offline(convert=True).emit("T", "S", "deep", meta=deep)
    assert info.value.field == "/meta" + "/a" * 62
    assert str(info.value).endswith(
        "meta is nested more than 64 levels deep at /meta/a/a/a/a/a/a/a/a/a…/a/a/a/a/a/a/a/a"
    )
