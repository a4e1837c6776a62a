import { expect, test } from "bun:test";
import { type BudgetEntry, createBufferBudget } from "../../src/stream/buffer-budget.ts";
import { loadConfig } from "../../src/config.ts";

/** A stream stand-in: holds `held` bytes, `backlog` of them older than its latest write. */
class FakeStream {
  held = 0;
  backlog = 0;
  cut = false;
  entry!: BudgetEntry;
  write(bytes: number, { taken = false } = {}) {
    this.backlog = taken ? 0 : this.held;
    this.held = this.backlog + bytes;
    this.entry.update();
  }
}

function join(budget: ReturnType<typeof createBufferBudget>): FakeStream {
  const s = new FakeStream();
  s.entry = budget.join({
    held: () => (s.cut ? 0 : s.held),
    backlog: () => (s.cut ? 0 : s.backlog),
    cut: () => {
      s.cut = true;
      s.entry.leave();
    },
  });
  return s;
}

test("createBufferBudget() counts what every stream holds and lets it be while the sum is within the bound", () => {
  const budget = createBufferBudget(1000);
  const [a, b] = [join(budget), join(budget)];
  a.write(400);
  b.write(500);
  expect(budget.total).toBe(900);
  expect([a.cut, b.cut]).toEqual([false, false]);
  a.entry.leave();
  expect(budget.total).toBe(500);
});

test("createBufferBudget() past the bound cuts the largest backlog first, until the sum is under three quarters of it", () => {
  const budget = createBufferBudget(1000);
  const slow = join(budget);
  const slower = join(budget);
  const reader = join(budget);
  slow.write(200);
  slower.write(300);
  slower.write(100); // 300 not taken
  reader.write(350, { taken: true }); // a big fresh write to a reader that keeps up
  expect(budget.total).toBe(950);
  slow.write(100); // 1050: over the bound
  expect(slower.cut).toBe(true);
  expect(reader.cut).toBe(false);
  // 650 left, under 750: no further cut.
  expect(slow.cut).toBe(false);
  expect(budget.total).toBe(650);
  expect(budget.cuts).toBe(1);
});

test("createBufferBudget() never cuts streams that keep up, even over the bound for a moment", () => {
  const budget = createBufferBudget(1000);
  const readers = [join(budget), join(budget), join(budget)];
  for (const r of readers) r.write(400, { taken: true });
  expect(budget.total).toBe(1200);
  expect(readers.map((r) => r.cut)).toEqual([false, false, false]);
});

test("createBufferBudget() re-reads every stream before it cuts: what readers took since no longer counts", () => {
  const budget = createBufferBudget(1000);
  const reader = join(budget);
  const stalled = join(budget);
  reader.write(800, { taken: true });
  reader.held = 0; // the socket took it; the stream has not written since
  stalled.write(100);
  stalled.write(300); // counted: 800 (stale) + 400 = 1200, really 400
  expect([reader.cut, stalled.cut]).toEqual([false, false]);
  expect(budget.total).toBe(400);
});

test("config: ZOE_SSE_MAX_TOTAL_BUFFER_BYTES (default 64 MiB)", () => {
  expect(loadConfig({}).sse.maxTotalBufferedBytes).toBe(64 * 1_048_576);
  expect(loadConfig({ ZOE_SSE_MAX_TOTAL_BUFFER_BYTES: "268435456" }).sse.maxTotalBufferedBytes).toBe(268_435_456);
  expect(() => loadConfig({ ZOE_SSE_MAX_TOTAL_BUFFER_BYTES: "1000" })).toThrow(/ZOE_SSE_MAX_TOTAL_BUFFER_BYTES/);
});
