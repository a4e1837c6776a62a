import { describe, expect, test } from "bun:test";
import { SEVERITIES } from "../../src/client/types.ts";
import {
  DEFAULT_FILTERS,
  type FeedFilters,
  matches,
  readFilters,
  toggleSeverity,
  writeFilters,
} from "../../src/dashboard/page/filters.ts";
import { event } from "../client/fakes.ts";

describe("feed filters", () => {
  test("hide debug by default and leave the URL alone", () => {
    expect(readFilters("")).toEqual(DEFAULT_FILTERS);
    expect(DEFAULT_FILTERS.severities).not.toContain("debug");
    expect(writeFilters("?mode=live", DEFAULT_FILTERS)).toBe("?mode=live");
    expect(matches(event(1, "paper", { severity: "debug" }), DEFAULT_FILTERS)).toBe(false);
    expect(matches(event(1, "paper", { severity: "info" }), DEFAULT_FILTERS)).toBe(true);
  });

  test("round-trip through the URL, keeping its other parameters", () => {
    const cases: FeedFilters[] = [
      { severities: SEVERITIES, type: null, symbol: null },
      { severities: ["error", "critical"], type: "ORDER", symbol: "AAPL" },
      { severities: [], type: null, symbol: "BRK.B" },
      { severities: ["debug"], type: "STRATEGY", symbol: null },
    ];
    for (const f of cases) {
      const search = writeFilters("?mode=live", f);
      expect(new URLSearchParams(search).get("mode")).toBe("live");
      expect(readFilters(search)).toEqual(f);
    }
    expect(writeFilters("?sev=all&type=X", DEFAULT_FILTERS)).toBe("");
  });

  test("match severity, type exactly and symbol whatever its case", () => {
    const f: FeedFilters = { severities: ["info"], type: "ORDER", symbol: "aapl" };
    expect(matches(event(1, "paper", { type: "ORDER", symbol: "AAPL" }), f)).toBe(true);
    expect(matches(event(1, "paper", { type: "STRATEGY", symbol: "AAPL" }), f)).toBe(false);
    expect(matches(event(1, "paper", { type: "ORDER", symbol: "MSFT" }), f)).toBe(false);
    expect(matches(event(1, "paper", { type: "ORDER", symbol: null }), f)).toBe(false);
    expect(matches(event(1, "paper", { type: "ORDER", symbol: "AAPL", severity: "warn" }), f)).toBe(false);
  });

  test("take the defaults for what they cannot read, and toggle one severity at a time", () => {
    expect(readFilters("?sev=loud&type=%20&symbol=").severities).toEqual(DEFAULT_FILTERS.severities);
    expect(readFilters("?sev=none").severities).toEqual([]);
    expect(toggleSeverity(DEFAULT_FILTERS, "debug").severities).toEqual(SEVERITIES);
    expect(toggleSeverity(DEFAULT_FILTERS, "info").severities).toEqual(["warn", "error", "critical"]);
  });
});
