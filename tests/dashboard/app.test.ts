import { describe, expect, test } from "bun:test";
import { columnsOf } from "../../src/dashboard/page/app.tsx";

describe("columnsOf()", () => {
  test("gives the same columns whatever order the keys come in (jsonb reorders them)", () => {
    const local = [
      { symbol: "AAPL", qty: 10, avg_price: 187.12, unrealized_pnl: 12.5, venue: "X", account: "a" },
      { symbol: "MSFT", qty: 3, avg_price: 410, unrealized_pnl: -3.1, venue: "X", account: "a" },
    ];
    const remote = local.map((r) => Object.fromEntries(Object.entries(r).reverse()));
    expect(columnsOf(local)).toEqual(["symbol", "qty", "avg_price", "unrealized_pnl", "account", "venue"]);
    expect(columnsOf(remote)).toEqual(columnsOf(local));
    expect(columnsOf([{ b: 1 }, { a: 2, symbol: "X" }])).toEqual(["symbol", "a", "b"]);
    expect(columnsOf([Object.fromEntries("abcdefghij".split("").map((k) => [k, 1]))])).toHaveLength(8);
  });
});
