import { describe, expect, test } from "bun:test";
import { ValidationError } from "../../src/domain/errors.ts";
import { eventsQuery, modeOnlyQuery, modeQuery, onlyParams, streamPosition } from "../../src/http/query.ts";

const url = (q: string) => new URL(`http://localhost/x?${q}`);
const request = (q: string, headers: Record<string, string> = {}) =>
  [new Request(`http://localhost/x?${q}`, { headers }), url(q)] as const;

function rejected(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error("accepted");
}

describe("modeQuery()", () => {
  test("accepts paper and live; anything else names the parameter and the choices", () => {
    expect(modeQuery(url("mode=paper"))).toBe("paper");
    expect(modeQuery(url("mode=live"))).toBe("live");
    const e = rejected(() => modeQuery(url("mode=LIVE")));
    expect(e.details).toEqual([{ path: "?mode", message: 'expected one of: paper, live, got "LIVE"' }]);
    expect(rejected(() => modeQuery(url(""))).message).toBe(
      "Invalid query parameter mode: required; expected one of: paper, live",
    );
  });
});

describe("eventsQuery()", () => {
  test("limit defaults to 50; since_seq is optional", () => {
    expect(eventsQuery(url("mode=live"))).toEqual({
      mode: "live",
      sinceSeq: undefined,
      beforeSeq: undefined,
      limit: 50,
      filter: undefined,
    });
    expect(eventsQuery(url("mode=live&since_seq=0&limit=1000&token=t"))).toEqual({
      mode: "live",
      sinceSeq: 0,
      beforeSeq: undefined,
      limit: 1000,
      filter: undefined,
    });
  });

  test("filters: comma lists of types, subtypes and symbols, severity as the least level kept, before_seq", () => {
    const q = eventsQuery(
      url("mode=live&subtype=BUY_FILLED,SELL_FILLED&type=ORDER&symbol=AAPL,msft&severity=warn&before_seq=9"),
    );
    expect(q.beforeSeq).toBe(9);
    expect(q.filter).toEqual({
      types: ["ORDER"],
      subtypes: ["BUY_FILLED", "SELL_FILLED"],
      symbols: ["AAPL", "msft"],
      severities: ["warn", "error", "critical"],
    });
    expect(eventsQuery(url("mode=live&severity=debug")).filter?.severities).toEqual([
      "debug",
      "info",
      "warn",
      "error",
      "critical",
    ]);
    expect(eventsQuery(url("mode=live&severity=critical")).filter).toEqual({ severities: ["critical"] });
  });

  test("rejects bad filter values by name and says why", () => {
    for (const [q, param, why] of [
      ["mode=live&subtype=", "subtype", "empty value"],
      ["mode=live&subtype=BUY_FILLED,", "subtype", "empty value"],
      ["mode=live&subtype=A,,B", "subtype", "empty value"],
      ["mode=live&subtype=A,A", "subtype", "listed twice"],
      [`mode=live&subtype=${"S".repeat(129)}`, "subtype", "at most 128 characters"],
      [`mode=live&symbol=${"X".repeat(65)}`, "symbol", "at most 64 characters"],
      [`mode=live&type=${Array.from({ length: 33 }, (_, i) => `T${i}`).join(",")}`, "type", "at most 32 values"],
      ["mode=live&severity=ERROR", "severity", "one of debug, info, warn, error, critical"],
      ["mode=live&severity=warn,error", "severity", "one level"],
      ["mode=live&severity=", "severity", "one level"],
      ["mode=live&before_seq=0", "before_seq", "from 1"],
      ["mode=live&before_seq=x", "before_seq", "integer"],
      ["mode=live&type=A&type=B", "type", "more than once"],
    ] as const) {
      const e = rejected(() => eventsQuery(url(q)));
      expect(e.details).toEqual([{ path: `?${param}`, message: expect.stringContaining(why) }]);
    }
  });

  test("rejects out-of-range, non-integer, repeated and unknown parameters by name", () => {
    for (const [q, param] of [
      ["mode=live&limit=0", "limit"],
      ["mode=live&limit=1001", "limit"],
      ["mode=live&limit=", "limit"],
      ["mode=live&limit=+5", "limit"],
      ["mode=live&since_seq=1e3", "since_seq"],
      ["mode=live&since_seq=99999999999999999", "since_seq"],
      ["mode=live&since_seq=1&since_seq=2", "since_seq"],
      ["mode=live&offset=10", "offset"],
    ] as const) {
      const e = rejected(() => eventsQuery(url(q)));
      expect(e.details).toEqual([{ path: `?${param}`, message: expect.any(String) }]);
    }
  });
});

describe("streamPosition()", () => {
  test("null (live only) without a position", () => {
    expect(streamPosition(...request("mode=live"))).toBeNull();
    expect(streamPosition(...request("mode=live", { "last-event-id": " " }))).toBeNull();
  });

  test("the Last-Event-ID header first, then ?last_event_id=, then ?since_seq=", () => {
    expect(streamPosition(...request("mode=live&last_event_id=3&since_seq=2", { "last-event-id": "7" }))).toBe(7);
    expect(streamPosition(...request("mode=live&last_event_id=3&since_seq=2"))).toBe(3);
    expect(streamPosition(...request("mode=live&since_seq=2"))).toBe(2);
    expect(streamPosition(...request("mode=live&since_seq=0"))).toBe(0);
  });

  test("a non-numeric position is a 400 naming where it came from", () => {
    expect(rejected(() => streamPosition(...request("mode=live", { "last-event-id": "abc" }))).details).toEqual([
      { path: "?Last-Event-ID", message: expect.stringContaining('"abc"') },
    ]);
    expect(rejected(() => streamPosition(...request("mode=live&last_event_id=-1"))).message).toContain("last_event_id");
    expect(rejected(() => streamPosition(...request("mode=live&limit=5"))).message).toContain("limit");
  });
});

test("onlyParams()/modeOnlyQuery() list what is accepted", () => {
  expect(rejected(() => onlyParams(url("a=1&b=2"), ["a"])).message).toBe(
    "Invalid query parameter b: unknown parameter; expected only: a",
  );
  expect(modeOnlyQuery(url("mode=live&token=x"))).toBe("live");
  expect(() => modeOnlyQuery(url("mode=live&since_seq=1"))).toThrow(ValidationError);
});
