"""The examples under clients/python/examples run against the real service,
and what they say they emitted is what the service stored."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict

from conftest import CLIENT_DIR, Service, run_python

EXAMPLES = CLIENT_DIR / "examples"


def run_example(name: str, service: Service, tmp_path: Path, *args: str) -> Dict[str, Any]:
    code = f"import runpy, sys; sys.argv = [{name!r}, *sys.argv[1:]]; runpy.run_path({str(EXAMPLES / name)!r}, run_name='__main__')"
    env = {"ZOE_URL": service.url, "ZOE_MODE": "paper", "ZOE_SPOOL_PATH": str(tmp_path / "spool.db")}
    child = run_python(code, *args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    out, err = child.communicate(timeout=300)
    assert child.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def state(service: Service) -> Dict[str, Any]:
    import urllib.request

    return json.loads(urllib.request.urlopen(f"{service.url}/local/state?mode=paper", timeout=10).read())


def test_the_backtest_example_stores_every_bar_fill_and_trade_with_numpy_values_and_naive_times(
    service: Service, tmp_path: Path
):
    bars = 3000
    summary = run_example("backtest_strategy.py", service, tmp_path, "--bars", str(bars))
    stored = service.stored("paper")
    assert summary["bars"] == bars and summary["left"] == 0 and summary["fills"] > 10 and summary["trades"] > 5
    first = stored[0]["seq"]  # the start's seq range begins at its start time x 1000
    assert [e["seq"] for e in stored] == list(range(first, first + len(stored)))
    ticks = [e for e in stored if e["subtype"] == "BAR"]
    fills = [e for e in stored if e["subtype"] in ("BUY_FILLED", "SELL_FILLED")]
    trades = [e for e in stored if e["subtype"] == "PNL_REALIZED"]
    assert (len(ticks), len(fills), len(trades)) == (bars, summary["fills"], summary["trades"])
    start = datetime(2026, 3, 2, 14, 30, tzinfo=timezone.utc)  # the naive bar times, read as UTC
    for i in (0, 1, bars - 1):
        assert datetime.fromisoformat(ticks[i]["ts"]) == start + timedelta(minutes=i)
        assert json.loads(ticks[i]["meta_json"])["bar"] == i
    warm_up, warm = json.loads(ticks[0]["meta_json"]), json.loads(ticks[40]["meta_json"])
    assert warm_up["sma_slow"] is None and warm_up["above"] is False  # NaN and np.bool_
    assert isinstance(warm["sma_slow"], float) and isinstance(warm["above"], bool)
    fill = json.loads(fills[0]["meta_json"])
    assert fill["size"] == 10 and isinstance(fill["price"], float)
    for trade in (json.loads(t["meta_json"]) for t in trades):
        assert abs(trade["pnl"] - (trade["exit"] - trade["entry"]) * trade["size"]) < 1e-9
    final = state(service)
    assert final["bar"] == bars - 1 and abs(final["cash"] - summary["cash"]) < 1e-6
    assert final["as_of"] == (start + timedelta(minutes=bars - 1)).isoformat()


def test_the_asyncio_example_stores_its_fills_and_follows_them_on_the_same_loop(service: Service, tmp_path: Path):
    summary = run_example("asyncio_bot.py", service, tmp_path, "--ticks", "1500")
    stored = service.stored("paper")
    assert summary["left"] == 0 and summary["fills"] > 0
    assert len([e for e in stored if e["subtype"] == "PRICE"]) == 1500
    fills = [e for e in stored if e["subtype"].endswith("_FILLED")]
    assert len(fills) == summary["fills"] == summary["followed_fills"]
    assert len([e for e in stored if e["subtype"] == "PNL_REALIZED"]) == summary["trades"]
    final = state(service)
    assert final["cash"] == summary["cash"] and final["last_seq"] >= summary["state_seq"]
    print(f"asyncio example: loop lag p99 {summary['lag_p99_ms']} ms", file=sys.stderr)
