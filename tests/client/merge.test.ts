import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { isImportant, mergeEvents, toEvent, unionBySeq } from "../../src/client/merge.ts";
import { IMPORTANT_SUBTYPES, type StoredEvent } from "../../src/client/types.ts";
import { CRITICAL_SUBTYPES } from "../../src/domain/events.ts";
import { event } from "./fakes.ts";

/** What a merge must produce: the newest `max` distinct seqs of `mode`, ascending. */
function reference(batches: StoredEvent[][], max: number): number[] {
  const all = [
    ...new Set(
      batches
        .flat()
        .filter((e) => e.mode === "paper")
        .map((e) => e.seq),
    ),
  ].sort((a, b) => a - b);
  return all.slice(Math.max(0, all.length - max));
}

describe("mergeEvents()", () => {
  test("keeps the newest max events of the mode, unique by seq, ascending, whatever the arrival order", () => {
    const ev = fc
      .record({ seq: fc.integer({ min: 1, max: 60 }), live: fc.boolean() })
      .map(({ seq, live }) => event(seq, live ? "live" : "paper"));
    fc.assert(
      fc.property(
        fc.array(fc.array(ev, { maxLength: 30 }), { maxLength: 8 }),
        fc.integer({ min: 1, max: 25 }),
        (batches, max) => {
          const merged: StoredEvent[] = [];
          for (const b of batches) mergeEvents(merged, b, "paper", max);
          expect(merged.map((e) => e.seq)).toEqual(reference(batches, max));
          expect(merged.every((e) => e.mode === "paper")).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  test("fills a gap from either source: stream 1–3 and 6, Supabase 3–5", () => {
    const merged: StoredEvent[] = [];
    mergeEvents(
      merged,
      [1, 2, 3, 6].map((s) => event(s)),
      "paper",
      200,
    );
    mergeEvents(
      merged,
      [5, 4, 3].map((s) => event(s)),
      "paper",
      200,
    );
    expect(merged.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  test("keeps the first copy of a seq", () => {
    const merged = mergeEvents([], [event(1, "paper", { body: "from stream" })], "paper", 10);
    mergeEvents(merged, [event(1, "paper", { body: "from supabase" })], "paper", 10);
    expect(merged.map((e) => e.body)).toEqual(["from stream"]);
  });

  test("appends a newer event without copying the list", () => {
    const merged = mergeEvents([], [event(1)], "paper", 10);
    const same = mergeEvents(merged, [event(2)], "paper", 10);
    expect(same).toBe(merged);
  });
});

describe("toEvent()", () => {
  test("accepts a Supabase row (string seq, jsonb meta) and a local stream event alike", () => {
    const row = { ...event(7), seq: "7", meta: { a: 1 }, received_at: "2026-01-05T15:00:01+00:00" };
    expect(toEvent(row)).toMatchObject({ seq: 7, meta: { a: 1 }, mode: "paper" });
    expect(toEvent({ ...event(8), meta: undefined, meta_json: '{"b":2}' })?.meta).toEqual({ b: 2 });
  });

  test("rejects rows without a usable mode or seq", () => {
    expect(toEvent({ ...event(1), seq: 0 })).toBeNull();
    expect(toEvent({ ...event(1), seq: 1.5 })).toBeNull();
    expect(toEvent({ ...event(1), mode: "demo" })).toBeNull();
    expect(toEvent("nope")).toBeNull();
  });
});

describe("isImportant()", () => {
  test("is the service's critical subtypes (the client cannot import them) and anything error or critical", () => {
    expect([...IMPORTANT_SUBTYPES]).toEqual([...CRITICAL_SUBTYPES]);
    expect(isImportant(event(1, "paper", { subtype: "BUY_FILLED", severity: "info" }))).toBe(true);
    expect(isImportant(event(1, "paper", { subtype: "KILL_SWITCH", severity: "debug" }))).toBe(true);
    expect(isImportant(event(1, "paper", { subtype: "TICK", severity: "error" }))).toBe(true);
    expect(isImportant(event(1, "paper", { subtype: "TICK", severity: "critical" }))).toBe(true);
    expect(isImportant(event(1, "paper", { subtype: "TICK", severity: "warn" }))).toBe(false);
  });
});

describe("unionBySeq()", () => {
  test("merges two ascending lists into one, each seq once, whatever the overlap", () => {
    const seqs = fc.uniqueArray(fc.integer({ min: 1, max: 80 }), { maxLength: 40 }).map((a) => a.sort((x, y) => x - y));
    fc.assert(
      fc.property(seqs, seqs, (a, b) => {
        const got = unionBySeq(
          a.map((n) => event(n)),
          b.map((n) => event(n)),
        ).map((e) => e.seq);
        expect(got).toEqual([...new Set([...a, ...b])].sort((x, y) => x - y));
      }),
    );
  });
});
