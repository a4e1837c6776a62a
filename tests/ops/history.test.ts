import { afterEach, expect, test } from "bun:test";
import { manualClock } from "../../src/lib/clock.ts";
import { createHistory } from "../../src/ops/history.ts";
import type { EventInput } from "../../supabase/functions/_shared/event-schema.ts";
import { RemoteUnavailableError, type Sink, type SinkBatch } from "../../src/flush/sink.ts";
import { openStore } from "../../src/store/store.ts";
import { tempDir } from "../helpers/tmp.ts";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function setup(options: { intervalMs?: number; windowMs?: number } = {}) {
  const dir = tempDir("zoe-history-");
  const clock = manualClock("2026-06-02T14:00:00Z");
  const store = openStore({ path: dir.file("zoe.db"), clock });
  cleanups.push(() => (store.close(), dir.cleanup()));
  const history = createHistory({ store, clock, intervalMs: 10_000, ...options });
  let n = 0;
  const append = (mode: "live" | "paper", count: number) =>
    store.append(
      Array.from(
        { length: count },
        (): EventInput => ({ mode, source: "bot", type: "T", subtype: "TICK", body: `e${++n}` }),
      ),
    );
  return { store, clock, history, append };
}

const batchOf = (mode: "live" | "paper", signal = new AbortController().signal): SinkBatch => ({
  mode,
  events: [],
  backlog: 0,
  state: null,
  signal,
});

test("each sample holds the backlog, the ingest rate from the advance of seqs and the age of the oldest unflushed event", async () => {
  const { store, clock, history, append } = setup();
  await append("live", 50);
  clock.advance(10_000);
  history.sample();
  await append("live", 20);
  await append("paper", 5);
  store.markFlushed(store.unflushed("live", 30).map((e) => e.id));
  clock.advance(10_000);
  history.sample();
  const live = history.read("live");
  expect(live.t).toEqual([Date.parse("2026-06-02T14:00:10Z"), Date.parse("2026-06-02T14:00:20Z")]);
  expect(live.backlog).toEqual([50, 40]);
  expect(live.ingest_per_s).toEqual([5, 2]);
  // The first 30 were stored at 14:00:00; the oldest left was too.
  expect(live.oldest_unflushed_s).toEqual([10, 20]);
  const paper = history.read("paper");
  expect(paper.backlog).toEqual([0, 5]);
  expect(paper.ingest_per_s).toEqual([0, 0.5]);
  expect(paper.oldest_unflushed_s).toEqual([0, 10]); // stored at 14:00:10
});

test("sends through the instrumented sink give the drain rate, their mean and longest duration, and failures per interval", async () => {
  const { clock, history } = setup();
  let fail = false;
  let hold: Promise<void> = Promise.resolve();
  const sink: Sink = {
    name: "fake",
    async send() {
      await hold;
      if (fail) throw new RemoteUnavailableError("502 from the gateway");
      return {
        results: [
          { idempotency_key: "a", seq: 1, status: "accepted" },
          { idempotency_key: "b", seq: 2, status: "duplicate" },
          { idempotency_key: "c", seq: 3, status: "rejected" },
        ],
      };
    },
  };
  const wrapped = history.instrumentSink(sink);
  expect(wrapped.name).toBe("fake");
  let release!: () => void;
  hold = new Promise((r) => (release = r));
  const slow = wrapped.send(batchOf("live"));
  await Bun.sleep(30);
  release();
  await slow;
  hold = Promise.resolve();
  await wrapped.send(batchOf("live"));
  fail = true;
  await expect(wrapped.send(batchOf("live"))).rejects.toBeInstanceOf(RemoteUnavailableError);
  clock.advance(10_000);
  history.sample();
  clock.advance(10_000);
  history.sample();
  const live = history.read("live");
  expect(live.flushed_per_s).toEqual([0.4, 0]); // 4 acknowledged (2 per ok send) in 10 s
  expect(live.flush_failures).toEqual([1, 0]);
  expect(live.flush_ms_max[0]).toBeGreaterThanOrEqual(25);
  expect(live.flush_ms_avg[0]!).toBeLessThan(live.flush_ms_max[0]!);
  expect(live.flush_ms_avg[1]).toBeNull();
  expect(live.flush_ms_max[1]).toBeNull();
  expect(history.read("paper").flush_failures).toEqual([0, 0]);
});

test("a send cut short by shutdown is not a failure", async () => {
  const { clock, history } = setup();
  const controller = new AbortController();
  const wrapped = history.instrumentSink({
    name: "fake",
    send: () => (controller.abort(), Promise.reject(new Error("aborted"))),
  });
  await wrapped.send(batchOf("live", controller.signal)).catch(() => {});
  clock.advance(10_000);
  history.sample();
  expect(history.read("live").flush_failures).toEqual([0]);
});

test("keeps only the window: the oldest samples give way, in order", () => {
  const { clock, history } = setup({ intervalMs: 10_000, windowMs: 30_000 });
  for (let i = 1; i <= 5; i++) {
    clock.advance(10_000);
    history.sample();
  }
  const view = history.read("live");
  expect(view.window_ms).toBe(30_000);
  expect(view.t.map((t) => (t - Date.parse("2026-06-02T14:00:00Z")) / 1000)).toEqual([30, 40, 50]);
});

test("start() samples on its own every interval and stops when the signal aborts", async () => {
  const dir = tempDir("zoe-history-");
  const store = openStore({ path: dir.file("zoe.db") });
  cleanups.push(() => (store.close(), dir.cleanup()));
  const history = createHistory({ store, clock: { now: () => Date.now() }, intervalMs: 20 });
  const stop = new AbortController();
  history.start(stop.signal);
  while (history.read("live").t.length < 3) await Bun.sleep(5);
  stop.abort();
  const n = history.read("live").t.length;
  await Bun.sleep(80);
  expect(history.read("live").t.length).toBe(n);
});
