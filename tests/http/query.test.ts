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
    expect(eventsQuery(url("mode=live"))).toEqual({ mode: "live", sinceSeq: undefined, limit: 50 });
    expect(eventsQuery(url("mode=live&since_seq=0&limit=1000&token=t"))).toEqual({
      mode: "live",
      sinceSeq: 0,
      limit: 1000,
    });
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
