import { describe, expect, test } from "bun:test";
import {
  checkEventInput,
  checkStoredEvent,
  isIsoTimestamp,
  isUuid,
  MAX_BODY_BYTES,
} from "../../supabase/functions/_shared/event-schema.ts";

const valid = { mode: "live", source: "bot", type: "ORDER", subtype: "BUY_FILLED", body: "bought 1 AAPL" };
const paths = (value: unknown, prefix?: string) => checkEventInput(value, prefix).map((e) => e.path);

describe("isIsoTimestamp()", () => {
  test("accepts ISO 8601 date-times with Z or an offset, real dates, up to nanoseconds", () => {
    for (const ts of [
      "2026-01-02T03:04:05Z",
      "2026-01-02T03:04:05.1+05:30",
      "2024-02-29T23:59:59.123456789-08:00",
      "0001-01-01T00:00:00Z",
      "2026-12-31T00:00:00+15:59",
    ]) {
      expect([ts, isIsoTimestamp(ts)]).toEqual([ts, true]);
    }
  });

  test("refuses what is not a full date-time with offset, or not a real instant", () => {
    for (const ts of [
      "2026-01-02",
      "2026-01-02T03:04:05",
      "2026-01-02 03:04:05Z",
      "2026-01-02T03:04Z",
      "2026-1-02T03:04:05Z",
      "2023-02-29T00:00:00Z",
      "2026-04-31T00:00:00Z",
      "2026-13-01T00:00:00Z",
      "2026-01-01T24:00:00Z",
      "2026-01-01T00:60:00Z",
      "2026-01-01T00:00:60Z",
      "0000-01-01T00:00:00Z",
      "2026-01-01T00:00:00+16:00",
      "2026-01-01T00:00:00+0100",
      "2026-01-01T00:00:00.Z",
      "2026-01-01T00:00:00.1234567890Z",
      "2026-01-01t00:00:00z",
      " 2026-01-01T00:00:00Z",
    ]) {
      expect([ts, isIsoTimestamp(ts)]).toEqual([ts, false]);
    }
  });
});

test("isUuid() accepts canonical lower-case UUIDs only", () => {
  expect(isUuid("0190a6f0-0000-7000-8000-000000000001")).toBe(true);
  expect(isUuid("0190A6F0-0000-7000-8000-000000000001")).toBe(false);
  expect(isUuid("0190a6f000007000800000000000000001")).toBe(false);
  expect(isUuid("{0190a6f0-0000-7000-8000-000000000001}")).toBe(false);
});

describe("checkEventInput()", () => {
  test("a minimal event and a full one are valid", () => {
    expect(checkEventInput(valid)).toEqual([]);
    expect(
      checkEventInput({
        ...valid,
        symbol: null,
        severity: "critical",
        ts: "2026-01-02T03:04:05Z",
        meta: { a: [1, { b: null }] },
        idempotency_key: "k",
        id: "0190a6f0-0000-7000-8000-000000000001",
      }),
    ).toEqual([]);
  });

  test("each problem is reported with its JSON-pointer path under the given prefix", () => {
    expect(paths({ ...valid, mode: "demo" }, "/4")).toEqual(["/4/mode"]);
    expect(checkEventInput({ ...valid, mode: "demo" })[0]!.message).toBe("Expected one of: paper, live");
    expect(checkEventInput({ ...valid, severity: "fatal" })[0]!.message).toBe(
      "Expected one of: debug, info, warn, error, critical",
    );
    expect(paths({ ...valid, extra: 1 })).toEqual(["/extra"]);
    expect(paths({ mode: "live" })).toEqual(expect.arrayContaining(["/source", "/type", "/subtype", "/body"]));
    expect(paths({ ...valid, ts: "yesterday" })).toEqual(["/ts"]);
    expect(paths({ ...valid, id: "not-a-uuid" })).toEqual(["/id"]);
    expect(paths({ ...valid, meta: "x" })).toContain("/meta");
    expect(paths({ ...valid, symbol: "" })).toContain("/symbol");
    expect(paths({ ...valid, source: "s".repeat(129) })).toEqual(["/source"]);
    expect(paths([valid])).toEqual([""]);
    expect(paths(null)).toEqual([""]);
  });

  test("body is limited to 64 KiB of UTF-8, not of UTF-16 code units", () => {
    expect(checkEventInput({ ...valid, body: "a".repeat(MAX_BODY_BYTES) })).toEqual([]);
    expect(checkEventInput({ ...valid, body: "é".repeat(MAX_BODY_BYTES / 2) })).toEqual([]);
    expect(checkEventInput({ ...valid, body: "é".repeat(MAX_BODY_BYTES / 2 + 1) })).toEqual([
      { path: "/body", message: `Expected at most ${MAX_BODY_BYTES} bytes of UTF-8` },
    ]);
    expect(paths({ ...valid, body: "a".repeat(MAX_BODY_BYTES + 1) })).toEqual(["/body"]);
  });

  test("refuses what Postgres or UTF-8 cannot hold: NUL anywhere, lone surrogates", () => {
    expect(paths({ ...valid, body: "a\u0000" })).toEqual(["/body"]);
    expect(paths({ ...valid, meta: { note: "x\u0000y" } })).toEqual(["/meta"]);
    expect(paths({ ...valid, subtype: "\ud800" })).toEqual(["/subtype"]);
    expect(paths({ ...valid, meta: { deep: ["\udc00"] } })).toEqual(["/meta"]);
    expect(checkEventInput({ ...valid, body: "emoji 😀 is fine" })).toEqual([]);
  });

  test("reports at most 20 problems for one event", () => {
    const junk = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`f${i}`, i]));
    expect(checkEventInput({ ...valid, ...junk }).length).toBe(20);
  });
});

describe("checkStoredEvent()", () => {
  const stored = {
    ...valid,
    id: "0190a6f0-0000-7000-8000-000000000001",
    seq: 1,
    ts: "2026-01-02T03:04:05Z",
    symbol: null,
    severity: "info",
    meta: {},
    idempotency_key: "k",
  };
  test("requires every column the flusher ships", () => {
    expect(checkStoredEvent(stored)).toEqual([]);
    const { seq: _seq, ...noSeq } = stored;
    expect(checkStoredEvent(noSeq).map((e) => e.path)).toContain("/seq");
    expect(checkStoredEvent({ ...stored, seq: 0 }).map((e) => e.path)).toEqual(["/seq"]);
    expect(checkStoredEvent({ ...stored, seq: 1.5 }).map((e) => e.path)).toEqual(["/seq"]);
  });
});
