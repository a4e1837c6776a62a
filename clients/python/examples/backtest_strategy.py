"""A backtest in the style of backtrader, reporting to zoe-local.

A bar loop calls the strategy's ``next()`` per bar and ``notify_order()`` /
``notify_trade()`` as orders fill and trades close, the way ``cerebro.run()``
does. What a framework hands the strategy is what it emits: numpy scalars,
NaN from an indicator's warm-up, naive bar datetimes. ``convert=True``,
``non_finite="null"`` and ``naive_ts="utc"`` let it emit them as they are.

    ZOE_URL=http://127.0.0.1:8765 ZOE_MODE=paper python3 examples/backtest_strategy.py --bars 5000

Prints one JSON line with what it emitted. Needs numpy (the client does not).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import List, Optional

import numpy as np

from zoe_local import Client


@dataclass
class Order:
    ref: int
    side: str  # "buy" | "sell"
    size: np.int64
    status: str = "Submitted"
    price: Optional[np.float64] = None
    when: Optional[datetime] = None


@dataclass
class Trade:
    size: np.int64
    entry: np.float64
    exit: np.float64
    pnl: np.float64
    closed_at: datetime


class SmaCross:
    """Buys when the fast SMA crosses above the slow one, sells when it crosses below."""

    def __init__(self, zoe: Client, symbol: str, fast: int = 10, slow: int = 30, size: int = 10) -> None:
        self.zoe, self.symbol, self.size = zoe, symbol, np.int64(size)
        self.fast, self.slow = fast, slow
        self.broker: "Broker"
        self.fills = 0
        self.trades = 0

    def next(self, i: int, bar_time: datetime, close: np.ndarray) -> None:
        fast = close[max(0, i - self.fast + 1) : i + 1].mean() if i + 1 >= self.fast else np.float64("nan")
        slow = close[max(0, i - self.slow + 1) : i + 1].mean() if i + 1 >= self.slow else np.float64("nan")
        self.zoe.emit(
            "TICK",
            "BAR",
            f"{self.symbol} {close[i]:.2f}",
            symbol=self.symbol,
            severity="debug",
            ts=bar_time,  # naive, as backtrader's data.datetime.datetime(0)
            meta={"bar": i, "close": close[i], "sma_fast": fast, "sma_slow": slow, "above": fast > slow},
        )
        if np.isnan(slow):
            return  # warm-up: the SMAs are NaN (sent as null)
        if self.broker.position == 0 and fast > slow:
            self.broker.submit(Order(self.broker.next_ref(), "buy", self.size))
        elif self.broker.position > 0 and fast < slow:
            self.broker.submit(Order(self.broker.next_ref(), "sell", self.broker.position))

    def notify_order(self, order: Order) -> None:
        if order.status != "Completed":
            return
        self.fills += 1
        subtype = "BUY_FILLED" if order.side == "buy" else "SELL_FILLED"
        self.zoe.emit(
            "ORDER",
            subtype,
            f"{'Bought' if order.side == 'buy' else 'Sold'} {order.size} {self.symbol} @ {order.price:.2f}",
            symbol=self.symbol,
            ts=order.when,
            meta={"ref": order.ref, "size": order.size, "price": order.price, "value": order.size * order.price},
        )

    def notify_trade(self, trade: Trade) -> None:
        self.trades += 1
        self.zoe.emit(
            "PNL",
            "PNL_REALIZED",
            f"Closed {trade.size} {self.symbol}: {trade.pnl:+.2f}",
            symbol=self.symbol,
            ts=trade.closed_at,
            meta={"size": trade.size, "entry": trade.entry, "exit": trade.exit, "pnl": trade.pnl},
        )


class Broker:
    """Market orders fill at the next bar's open; a sell of the whole position closes the trade."""

    def __init__(self, strategy: SmaCross, cash: float) -> None:
        self.strategy = strategy
        self.cash = np.float64(cash)
        self.position = np.int64(0)
        self.entry = np.float64(0)
        self.pending: List[Order] = []
        self._ref = 0

    def next_ref(self) -> int:
        self._ref += 1
        return self._ref

    def submit(self, order: Order) -> None:
        self.pending.append(order)
        self.strategy.notify_order(order)

    def execute(self, bar_time: datetime, open_price: np.float64) -> None:
        for order in self.pending:
            order.status, order.price, order.when = "Completed", open_price, bar_time
            if order.side == "buy":
                self.cash -= order.size * open_price
                self.position += order.size
                self.entry = open_price
                self.strategy.notify_order(order)
            else:
                self.cash += order.size * open_price
                self.position -= order.size
                self.strategy.notify_order(order)
                pnl = (open_price - self.entry) * order.size
                self.strategy.notify_trade(Trade(order.size, self.entry, open_price, pnl, bar_time))
        self.pending.clear()


def run(zoe: Client, bars: int, seed: int = 7) -> dict:
    rng = np.random.default_rng(seed)
    close = 100 + np.cumsum(rng.normal(0, 0.2, bars))
    opens = np.concatenate([[100.0], close[:-1]]) + rng.normal(0, 0.05, bars)
    start = datetime(2026, 3, 2, 14, 30)  # naive minute bars
    strategy = SmaCross(zoe, "AAPL")
    broker = strategy.broker = Broker(strategy, cash=100_000.0)
    for i in range(bars):
        bar_time = start + timedelta(minutes=i)
        broker.execute(bar_time, opens[i])
        strategy.next(i, bar_time, close)
        if i % 100 == 99:
            zoe.post_state(cash=broker.cash, positions={"AAPL": broker.position}, bar=i, as_of=bar_time)
    last = start + timedelta(minutes=bars - 1)
    zoe.post_state(cash=broker.cash, positions={"AAPL": broker.position}, bar=bars - 1, as_of=last, wait=True)
    return {"bars": bars, "fills": strategy.fills, "trades": strategy.trades, "cash": float(broker.cash)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bars", type=int, default=5000)
    args = parser.parse_args()
    mode = os.environ.get("ZOE_MODE") or "paper"
    with Client.from_env(mode=mode, convert=True, non_finite="null", naive_ts="utc") as zoe:
        summary = run(zoe, args.bars)
        summary["left"] = zoe.flush(30)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
