import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { isPnlKey, pnlText, timeText } from "../../src/dashboard/page/format.ts";

const savedTz = process.env.TZ;
beforeAll(() => {
  process.env.TZ = "America/New_York";
});
afterAll(() => {
  process.env.TZ = savedTz;
});

describe("timeText()", () => {
  test("gives the date, the time and the zone in the browser's time zone", () => {
    expect(timeText("2026-01-05T15:00:01.234Z")).toBe("2026-01-05 10:00:01 EST");
    expect(timeText("2026-07-05T15:00:01.234Z", { ms: true })).toBe("2026-07-05 11:00:01.234 EDT");
    // Across midnight the date is the local one.
    expect(timeText("2026-01-06T03:00:00Z")).toBe("2026-01-05 22:00:00 EST");
  });

  test("shows what it cannot read as it came, and nothing as —", () => {
    expect(timeText("yesterday")).toBe("yesterday");
    expect(timeText("")).toBe("—");
  });
});

describe("pnlText()", () => {
  test("spells out the sign and gives the direction for colour", () => {
    expect(pnlText(12.5)).toEqual({ text: "+12.50", sign: "up" });
    expect(pnlText(-3.1)).toEqual({ text: "\u22123.10", sign: "down" });
    expect(pnlText("-1234.5")).toEqual({ text: "\u22121,234.50", sign: "down" });
    expect(pnlText(0)).toEqual({ text: "0.00", sign: "flat" });
    expect(pnlText(-0.001)).toEqual({ text: "0.00", sign: "flat" });
    expect(pnlText(null)).toEqual({ text: "—", sign: null });
    expect(pnlText("n/a")).toEqual({ text: "n/a", sign: null });
  });

  test("knows P&L fields by name", () => {
    for (const k of ["pnl", "unrealized_pnl", "realizedPnL", "P&L", "day_profit"]) expect(isPnlKey(k)).toBe(true);
    for (const k of ["qty", "symbol", "avg_price", "plan"]) expect(isPnlKey(k)).toBe(false);
  });
});
