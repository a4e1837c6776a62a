import { afterEach, beforeEach, expect, test } from "bun:test";
import { manualClock } from "../../src/lib/clock.ts";
import { manualScheduler } from "../../src/lib/scheduler.ts";
import { PRUNE_CHUNK, runRetention } from "../../src/store/retention.ts";
import { type EventStore, openStore } from "../../src/store/store.ts";
import { tempDir } from "../helpers/tmp.ts";

const DAY = 86_400_000;
let dir: ReturnType<typeof tempDir>;
let store: EventStore;
const clock = manualClock("2026-01-05T00:00:00Z");
beforeEach(() => {
  dir = tempDir("zoe-retention-");
  store = openStore({ path: dir.file("zoe.db"), clock, retentionMs: DAY });
});
afterEach(() => {
  store.close();
  dir.cleanup();
});

async function flushedEvents(n: number): Promise<void> {
  const r = await store.append(
    Array.from({ length: n }, (_, i) => ({
      mode: "live" as const,
      source: "bot",
      type: "T",
      subtype: "X",
      body: `e${i}`,
    })),
  );
  store.markFlushed(r.map((x) => x.id));
}

test("runRetention() prunes past retention chunk by chunk, letting the event loop run between chunks, then sleeps its interval", async () => {
  await flushedEvents(2 * PRUNE_CHUNK + 500);
  clock.advance(2 * DAY);
  const scheduler = manualScheduler(clock);
  const abort = new AbortController();
  const steps: { n: number; otherWorkRan: boolean }[] = [];
  let otherWorkRan = false;
  const passes: number[] = [];
  const done = runRetention({
    step: (limit) => {
      const n = store.pruneSome(limit);
      steps.push({ n, otherWorkRan });
      otherWorkRan = false;
      setImmediate(() => (otherWorkRan = true)); // stands for a request waiting its turn
      return n;
    },
    scheduler,
    signal: abort.signal,
    intervalMs: 3_600_000,
    onPruned: (n) => passes.push(n),
  });
  await scheduler.advance(0);
  expect(steps.map((s) => s.n)).toEqual([PRUNE_CHUNK, PRUNE_CHUNK, 499]); // the newest event of the mode is kept
  expect(steps.slice(1).every((s) => s.otherWorkRan)).toBe(true);
  expect(passes).toEqual([2 * PRUNE_CHUNK + 499]);

  await scheduler.advance(3_600_000 - 1);
  expect(steps).toHaveLength(3); // not before the interval
  await scheduler.advance(1);
  expect(steps).toHaveLength(4);
  await flushedEvents(3);
  await scheduler.advance(2 * DAY);
  // The old newest event goes once it is no longer the newest; the new newest stays.
  expect(passes.slice(1).reduce((a, b) => a + b, 0)).toBe(3);
  expect(store.list("live", { sinceSeq: 0, limit: 10 }).map((e) => e.seq)).toEqual([2 * PRUNE_CHUNK + 503]);
  abort.abort();
  await done;
  expect(scheduler.pending()).toBe(0);
});

test("runRetention() reports a failing pass and keeps its schedule", async () => {
  const scheduler = manualScheduler(clock);
  const abort = new AbortController();
  const errors: unknown[] = [];
  let calls = 0;
  const done = runRetention({
    step: () => {
      calls++;
      throw new Error("disk I/O error");
    },
    scheduler,
    signal: abort.signal,
    intervalMs: 1000,
    onError: (e) => errors.push(e),
  });
  await scheduler.advance(0);
  await scheduler.advance(1000);
  expect(calls).toBe(2);
  expect(errors).toHaveLength(2);
  abort.abort();
  await done;
});
