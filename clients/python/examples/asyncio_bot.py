"""An asyncio bot in the style of ib-async / ccxt bots, reporting to zoe-local.

Three coroutines share one loop and one Client: a market-data feed (a seeded
random walk, one tick a millisecond), a strategy that sends orders and awaits
their fills from a simulated exchange, and a monitor that follows the stored
events with ``afollow()`` and counts the fills it sees. ``emit()`` is the same
non-blocking call as in a synchronous bot; what waits is awaited.

    ZOE_URL=http://127.0.0.1:8765 ZOE_MODE=paper python3 examples/asyncio_bot.py --ticks 2000

Prints one JSON line with what it emitted, what the monitor followed and the
loop's lag (a 1 ms ticker).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from typing import List

from zoe_local import Client


class Exchange:
    """Fills a market order after a short delay, at the price of the moment."""

    def __init__(self) -> None:
        self.price = 187.5

    async def place(self, side: str, qty: int) -> float:
        await asyncio.sleep(0.002)
        return self.price


async def feed(zoe: Client, exchange: Exchange, ticks: int, prices: "asyncio.Queue[float]") -> None:
    rng = random.Random(7)
    for i in range(ticks):
        exchange.price = round(exchange.price + rng.gauss(0, 0.05), 2)
        zoe.emit("TICK", "PRICE", f"AAPL {exchange.price:.2f}", symbol="AAPL", severity="debug", meta={"i": i})
        prices.put_nowait(exchange.price)
        await asyncio.sleep(0.001)
    prices.put_nowait(-1.0)  # end of the feed


async def strategy(zoe: Client, exchange: Exchange, prices: "asyncio.Queue[float]") -> dict:
    window: List[float] = []
    position, cash, fills, trades, entry = 0, 100_000.0, 0, 0, 0.0
    while True:
        price = await prices.get()
        if price < 0:
            break
        window = (window + [price])[-20:]
        if len(window) < 20:
            continue
        mean = sum(window) / len(window)
        side = (
            "BUY" if position == 0 and price < mean - 0.05 else "SELL" if position > 0 and price > mean + 0.05 else ""
        )
        if not side:
            continue
        zoe.emit("ORDER", f"{side}_SUBMITTED", f"{side} 10 AAPL at market", symbol="AAPL", meta={"qty": 10})
        filled = await exchange.place(side, 10)
        fills += 1
        zoe.emit(
            "ORDER",
            f"{side}_FILLED",
            f"{side} 10 AAPL @ {filled:.2f}",
            symbol="AAPL",
            meta={"qty": 10, "price": filled},
        )
        if side == "BUY":
            position, cash, entry = 10, cash - 10 * filled, filled
        else:
            trades += 1
            pnl = round((filled - entry) * 10, 2)
            position, cash = 0, cash + 10 * filled
            zoe.emit("PNL", "PNL_REALIZED", f"Closed 10 AAPL: {pnl:+.2f}", symbol="AAPL", meta={"pnl": pnl})
        zoe.post_state(cash=round(cash, 2), positions={"AAPL": position})  # queued: never blocks
    ack = await zoe.apost_state(cash=round(cash, 2), positions={"AAPL": position})
    return {"fills": fills, "trades": trades, "cash": round(cash, 2), "state_seq": ack["last_seq"]}


async def monitor(zoe: Client, since_seq: int, seen: List[dict]) -> None:
    async for event in zoe.afollow(since_seq=since_seq):
        if event["subtype"].endswith("_FILLED"):
            seen.append(event)


async def ticker(lags: List[float]) -> None:
    while True:
        t = time.perf_counter()
        await asyncio.sleep(0.001)
        lags.append(time.perf_counter() - t - 0.001)


async def main(ticks: int) -> dict:
    mode = os.environ.get("ZOE_MODE") or "paper"
    async with await Client.aopen(
        os.environ.get("ZOE_URL") or "http://127.0.0.1:8765",
        os.environ.get("ZOE_API_TOKEN") or None,
        mode=mode,
        spool_path=os.environ.get("ZOE_SPOOL_PATH") or None,
    ) as zoe:
        start_seq = (await zoe.astate())["last_seq"]
        exchange, prices = Exchange(), asyncio.Queue()  # type: asyncio.Queue[float]
        seen: List[dict] = []
        lags: List[float] = []
        watcher = asyncio.ensure_future(monitor(zoe, start_seq, seen))
        lagger = asyncio.ensure_future(ticker(lags))
        trader = asyncio.ensure_future(strategy(zoe, exchange, prices))
        await feed(zoe, exchange, ticks, prices)
        summary = await trader
        left = await zoe.aflush(30)
        deadline = time.monotonic() + 30
        while len(seen) < summary["fills"] and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # the monitor sees the last fills a moment after the flush
        for task in (watcher, lagger):
            task.cancel()
        await asyncio.gather(watcher, lagger, return_exceptions=True)
    lags.sort()
    return {
        "ticks": ticks,
        **summary,
        "followed_fills": len(seen),
        "left": left,
        "lag_p99_ms": round(lags[int(0.99 * (len(lags) - 1))] * 1000, 2) if lags else None,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ticks", type=int, default=2000)
    print(json.dumps(asyncio.run(main(parser.parse_args().ticks))))
