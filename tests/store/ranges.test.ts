import { afterEach, describe, expect, test } from "bun:test";
import { manualClock } from "../../src/lib/clock.ts";
import { nextRangeStart, rangeFloor } from "../../src/store/ranges.ts";
import { openStore, type EventStore } from "../../src/store/store.ts";
import { tempDir } from "../helpers/tmp.ts";

const dirs: ReturnType<typeof tempDir>[] = [];
const stores: EventStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) d.cleanup();
});

function path(): string {
  const dir = tempDir("zoe-ranges-");
  dirs.push(dir);
  return dir.file("zoe.db");
}

function open(p: string, at: number, remote: Partial<Record<"paper" | "live", number>> = {}): EventStore {
  const clock = manualClock(at);
  const s = openStore({
    path: p,
    clock,
    groupCommit: false,
    seqFloor: (mode) => rangeFloor(clock.now(), remote[mode] ?? null),
  });
  stores.push(s);
  return s;
}

const ev = (i: number, mode: "paper" | "live" = "live") => ({
  mode,
  source: "ranges-test",
  type: "ORDER",
  subtype: "TICK",
  body: `event ${i}`,
});

async function append(s: EventStore, n: number, mode: "paper" | "live" = "live"): Promise<number[]> {
  const seqs: number[] = [];
  for (let i = 0; i < n; i++) seqs.push((await s.append([ev(i, mode)]))[0]!.seq);
  return seqs;
}

const T0 = Date.parse("2026-12-07T15:00:00Z");

describe("the seq range rule", () => {
  test("rangeFloor() is the start ms x 1000, raised above the remote's highest seq, and a safe integer", () => {
    expect(rangeFloor(T0)).toBe(T0 * 1000);
    expect(rangeFloor(T0, T0 * 1000 + 41)).toBe(T0 * 1000 + 42);
    expect(rangeFloor(T0, 5)).toBe(T0 * 1000);
    expect(rangeFloor(0)).toBe(1);
    expect(Number.isSafeInteger(rangeFloor(Date.parse("2255-01-01T00:00:00Z")))).toBe(true);
    expect(() => rangeFloor(Date.parse("2290-01-01T00:00:00Z"))).toThrow(/not a safe integer/);
  });

  test("nextRangeStart() is above the local max and every recorded range, and at least the floor", () => {
    expect(nextRangeStart(0, 0, 1)).toBe(1);
    expect(nextRangeStart(100, 1, 50)).toBe(101);
    expect(nextRangeStart(100, 1, 5000)).toBe(5000);
    // The clock went back: the local max keeps one store monotonic.
    expect(nextRangeStart(T0 * 1000 + 10, T0 * 1000, (T0 - 60_000) * 1000)).toBe(T0 * 1000 + 11);
    expect(nextRangeStart(3, 10, 1)).toBe(11);
  });
});

describe("openStore() seq ranges", () => {
  test("every start begins a new range: gapless within it, a jump forward to the next, each recorded with the store id", async () => {
    const p = path();
    const first = open(p, T0);
    const storeId = first.storeId;
    expect(storeId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(first.currentRange("live")).toMatchObject({ start_seq: T0 * 1000, recorded: false, store_id: storeId });
    expect(await append(first, 3)).toEqual([T0 * 1000, T0 * 1000 + 1, T0 * 1000 + 2]);
    expect(first.currentRange("live").recorded).toBe(true);
    first.close();
    stores.length = 0;

    const second = open(p, T0 + 5_000);
    expect(second.storeId).toBe(storeId);
    expect(await append(second, 2)).toEqual([(T0 + 5_000) * 1000, (T0 + 5_000) * 1000 + 1]);
    expect(second.seqRanges("live").map((r) => r.start_seq)).toEqual([(T0 + 5_000) * 1000, T0 * 1000]);
    expect(second.seqRanges("live").every((r) => r.store_id === storeId)).toBe(true);
    // A mode that stored nothing this start records no range.
    expect(second.seqRanges("paper")).toEqual([]);
  });

  test("a start with the clock set back continues above the store's max, never below it", async () => {
    const p = path();
    const first = open(p, T0);
    await append(first, 2);
    first.close();
    stores.length = 0;
    const back = open(p, T0 - 3_600_000);
    expect(await append(back, 1)).toEqual([T0 * 1000 + 2]);
  });

  test("the remote's highest seq raises the range when it is above the time base", async () => {
    const s = open(path(), T0, { live: T0 * 1000 + 9_999 });
    expect(await append(s, 1)).toEqual([T0 * 1000 + 10_000]);
    expect(await append(s, 1, "paper")).toEqual([T0 * 1000]);
  });

  test("a store opened without a floor continues right above its max", async () => {
    const p = path();
    const s = openStore({ path: p, groupCommit: false });
    stores.push(s);
    expect(await append(s, 2)).toEqual([1, 2]);
    expect(s.seqRanges("live")).toMatchObject([{ start_seq: 1 }]);
  });

  test("lastSeq() stays at the stored max until the new range's first event is durable", async () => {
    const p = path();
    const first = open(p, T0);
    await append(first, 1);
    first.close();
    stores.length = 0;
    const second = open(p, T0 + 1_000);
    expect(second.lastSeq("live")).toBe(T0 * 1000);
    expect(second.list("live", { sinceSeq: 0, limit: 10 }).map((e) => e.seq)).toEqual([T0 * 1000]);
    await append(second, 1);
    expect(second.lastSeq("live")).toBe((T0 + 1_000) * 1000);
  });
});
