import { afterEach, describe, expect, test } from "bun:test";
import { manualClock } from "../../src/lib/clock.ts";
import type { FlushSettings } from "../../src/config.ts";
import { backoffDelay } from "../../src/flush/pipeline.ts";
import { createFlusher } from "../../src/flush/flusher.ts";
import { createHealth } from "../../src/ops/health.ts";
import { Quarantine } from "../../src/flush/quarantine.ts";
import { manualScheduler } from "../../src/lib/scheduler.ts";
import type { EventInput, StoredEvent } from "../../supabase/functions/_shared/event-schema.ts";
import {
  type EventResult,
  RemoteAuthError,
  RemoteProtocolError,
  RemoteRejectedError,
  RemoteTimeoutError,
  RemoteUnavailableError,
  type Sink,
  type SinkBatch,
  type SinkResult,
} from "../../src/flush/sink.ts";
import { openStore } from "../../src/store/store.ts";
import { tempDir } from "../helpers/tmp.ts";

const SETTINGS: FlushSettings = {
  activeIntervalMs: 15_000,
  offHoursIntervalMs: 120_000,
  batchSize: 500,
  window: 3,
  criticalImmediate: true,
  criticalSubtypes: [
    "BUY_FILLED",
    "SELL_FILLED",
    "PNL_REALIZED",
    "TRADING_HALTED",
    "KILL_SWITCH",
    "RECONCILIATION_MISMATCH",
  ],
  marketHours: true,
  backoffMinMs: 1_000,
  backoffMaxMs: 60_000,
  stallMs: 600_000,
  shutdownMs: 10_000,
};

const verdicts = (b: SinkBatch, status: EventResult["status"] = "accepted"): SinkResult => ({
  results: b.events.map((e) => ({ idempotency_key: e.idempotency_key, seq: e.seq, status })),
});

type Handler = (batch: SinkBatch, call: number) => SinkResult | Promise<SinkResult>;

function fakeSink(handler: Handler = (b) => verdicts(b)) {
  const calls: {
    at: number;
    events: StoredEvent[];
    backlog: number;
    state: SinkBatch["state"];
    afterKey: string | null;
  }[] = [];
  const sink: Sink & { handler: Handler; ordered: boolean } = {
    name: "fake",
    handler,
    ordered: false,
    async send(batch) {
      calls.push({
        at: clockNow(),
        events: [...batch.events],
        backlog: batch.backlog,
        state: batch.state,
        afterKey: batch.afterKey ?? null,
      });
      return sink.handler(batch, calls.length);
    },
  };
  let clockNow = () => 0;
  return { sink, calls, bindClock: (c: { now(): number }) => (clockNow = () => c.now()) };
}

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Tuesday 2026-06-02 10:00 New York: the market is open. */
const MARKET_OPEN = "2026-06-02T14:00:00Z";

function setup(
  options: {
    at?: string;
    settings?: Partial<FlushSettings>;
    handler?: Handler;
    random?: () => number;
    ordered?: boolean;
  } = {},
) {
  const dir = tempDir();
  const clock = manualClock(options.at ?? MARKET_OPEN);
  const store = openStore({ path: dir.file("zoe.db"), clock, groupCommit: false });
  const quarantine = new Quarantine(store, clock);
  const scheduler = manualScheduler(clock);
  const fake = fakeSink(options.handler);
  fake.sink.ordered = options.ordered ?? false;
  fake.bindClock(clock);
  const abort = new AbortController();
  const flusher = createFlusher({
    store,
    sink: fake.sink,
    quarantine,
    clock,
    scheduler,
    signal: abort.signal,
    config: { ...SETTINGS, ...options.settings },
    random: options.random ?? (() => 0.5),
    modes: ["live"],
  });
  cleanups.push(() => {
    abort.abort();
    store.close();
    dir.cleanup();
  });
  let n = 0;
  const append = (count = 1, subtype = "TICK", extra: Partial<EventInput> = {}) =>
    store.append(
      Array.from({ length: count }, () => ({
        mode: "live" as const,
        source: "bot",
        type: "T",
        subtype,
        body: `event ${++n}`,
        ...extra,
      })),
    );
  return { store, clock, scheduler, quarantine, flusher, sink: fake.sink, calls: fake.calls, append };
}

const seqs = (events: StoredEvent[]) => events.map((e) => e.seq);

/** A sink handler that holds its first send until `gate` settles; every send is accepted. */
const firstWaitsFor =
  (gate: Promise<void>): Handler =>
  async (b, call) => {
    if (call === 1) await gate;
    return verdicts(b);
  };

/**
 * A flusher whose first send of `events` got a 503 and that now waits out a
 * 30 s backoff (the top of its jitter); every later send is accepted.
 */
async function inBackoff(events: number) {
  const t = setup({
    settings: { backoffMinMs: 30_000 },
    random: () => 0.999_999,
    handler: (b, call) => {
      if (call === 1) throw new RemoteUnavailableError("503");
      return verdicts(b);
    },
  });
  await t.append(events);
  t.flusher.start();
  await t.scheduler.settle();
  return t;
}

describe("backoffDelay()", () => {
  const s = { backoffMinMs: 1_000, backoffMaxMs: 60_000 };
  test("doubles the ceiling per attempt up to the cap", () => {
    const top = () => 0.999_999;
    expect([1, 2, 3, 4, 5, 6, 7, 8, 20].map((n) => backoffDelay(n, s, top))).toEqual([
      1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000,
    ]);
  });
  test("draws uniformly below the ceiling (full jitter)", () => {
    expect(backoffDelay(3, s, () => 0)).toBe(0);
    expect(backoffDelay(3, s, () => 0.25)).toBe(1000);
    expect(backoffDelay(30, s, () => 0.5)).toBe(30_000);
  });
  test("honours Retry-After but never exceeds the cap", () => {
    expect(backoffDelay(1, s, () => 0, 5_000)).toBe(5_000);
    expect(backoffDelay(1, s, () => 0, 3_600_000)).toBe(60_000);
  });
});

describe("createFlusher()", () => {
  test("on start, events a previous run left unflushed go out at once", async () => {
    const t = setup();
    await t.append(3);
    t.flusher.start();
    await t.scheduler.settle();
    expect(t.calls).toHaveLength(1);
    expect(seqs(t.calls[0]!.events)).toEqual([1, 2, 3]);
    expect(t.store.backlog("live")).toBe(0);
    expect(t.store.lastFlush("live")).toMatchObject({ status: "ok", count: 3, last_seq: 3 });
  });

  test("flushes every 15 s while the market is open", async () => {
    const t = setup();
    t.flusher.start();
    await t.scheduler.settle();
    await t.append(2);
    await t.scheduler.advance(14_999);
    expect(t.calls).toHaveLength(0);
    await t.scheduler.advance(1);
    expect(t.calls).toHaveLength(1);
    expect(t.calls[0]!.at).toBe(Date.parse(MARKET_OPEN) + 15_000);
  });

  test("flushes every 120 s off hours (Saturday)", async () => {
    const t = setup({ at: "2026-06-06T15:00:00Z" });
    t.flusher.start();
    await t.scheduler.settle();
    await t.append(1);
    await t.scheduler.advance(60_000);
    expect(t.calls).toHaveLength(0);
    await t.scheduler.advance(60_000);
    expect(t.calls).toHaveLength(1);
  });

  test("switches to the active cadence at the 09:30 open", async () => {
    const t = setup({ at: "2026-06-02T13:29:00Z" });
    t.flusher.start();
    await t.scheduler.settle();
    await t.append(1);
    await t.scheduler.advance(60_000);
    expect(t.calls.map((c) => new Date(c.at).toISOString())).toEqual(["2026-06-02T13:30:00.000Z"]);
    expect(t.flusher.status("live")).toMatchObject({ cadence: "market_hours", interval_ms: 15_000 });
  });

  test("a critical event flushes at once, without the clock moving", async () => {
    const t = setup();
    t.flusher.start();
    await t.scheduler.settle();
    await t.append(2);
    await t.append(1, "BUY_FILLED");
    await t.scheduler.settle();
    expect(t.calls).toHaveLength(1);
    expect(t.calls[0]!.events.map((e) => e.subtype)).toEqual(["TICK", "TICK", "BUY_FILLED"]);
  });

  test("a full batch triggers a flush before the interval and the backlog drains batch by batch", async () => {
    const t = setup({ settings: { batchSize: 10 } });
    t.flusher.start();
    await t.scheduler.settle();
    await t.append(25);
    await t.scheduler.settle();
    expect(t.calls.map((c) => c.events.length)).toEqual([10, 10, 5]);
    expect(t.calls.map((c) => c.backlog)).toEqual([15, 5, 0]);
    expect(t.store.backlog("live")).toBe(0);
  });

  test("a full batch's marks are written while the next batch is out, and still when that one fails", async () => {
    let headDuringSecondSend = 0;
    const t = setup({
      settings: { batchSize: 10 },
      handler: async (b, call) => {
        if (call === 2) {
          await Promise.resolve();
          headDuringSecondSend = t.store.unflushed("live", 100)[0]!.seq;
          throw new RemoteAuthError("401");
        }
        return verdicts(b);
      },
    });
    await t.append(25);
    t.flusher.start();
    await t.scheduler.settle();
    expect(t.calls.map((c) => seqs(c.events)[0])).toEqual([1, 11]);
    // The first batch was marked by the time the second request was out.
    expect(headDuringSecondSend).toBe(11);
    expect(t.store.backlog("live")).toBe(15);
    expect(t.store.backlogUsage("live").events).toBe(15);
  });

  test("a backlog bigger than a read slice goes out in seq order, each event once, with the marks written", async () => {
    const t = setup({ settings: { batchSize: 250 } });
    await t.append(640);
    t.flusher.start();
    await t.flusher.requestFlush("live");
    expect(t.calls.map((c) => c.events.length)).toEqual([250, 250, 140]);
    expect(t.calls.flatMap((c) => seqs(c.events))).toEqual(Array.from({ length: 640 }, (_, i) => i + 1));
    expect(t.store.backlog("live")).toBe(0);
    expect(t.store.backlogUsage("live").events).toBe(0);
  });

  test("marks exactly the acknowledged events flushed", async () => {
    const t = setup({
      handler: (b) => ({
        results: [
          { idempotency_key: b.events[0]!.idempotency_key, seq: 1, status: "accepted" },
          { idempotency_key: b.events[1]!.idempotency_key, seq: 2, status: "duplicate" },
          { idempotency_key: "not-in-this-batch", seq: 99, status: "accepted" },
        ],
      }),
    });
    await t.append(3);
    t.flusher.start();
    await t.scheduler.settle();
    expect(seqs(t.store.unflushed("live", 10))).toEqual([3]);
    expect(t.store.lastFlush("live")).toMatchObject({
      status: "partial",
      count: 2,
      error: "0 quarantined, 1 unacknowledged",
    });
  });

  test("an event the remote rejects is quarantined with its reason, and the rest flows", async () => {
    const t = setup({
      handler: (b) => ({
        results: b.events.map((e) =>
          e.body === "event 2"
            ? {
                idempotency_key: e.idempotency_key,
                seq: e.seq,
                status: "rejected" as const,
                errors: [{ path: "/body", message: "Bad body" }],
              }
            : { idempotency_key: e.idempotency_key, seq: e.seq, status: "accepted" as const },
        ),
      }),
    });
    await t.append(3);
    t.flusher.start();
    await t.scheduler.settle();
    expect(t.store.backlog("live")).toBe(0);
    const q = t.quarantine.list("live", { limit: 10 });
    expect(q.map((e) => e.event.seq)).toEqual([2]);
    expect(q[0]).toMatchObject({
      reason: "rejected by remote: /body Bad body",
      errors: [{ path: "/body", message: "Bad body" }],
      attempts: 1,
    });
    expect(t.flusher.status("live")).toMatchObject({ quarantined: 1 });
    expect(t.store.lastFlush("live")).toMatchObject({ status: "partial", count: 2 });

    // After the fix, the operator releases it and it is flushed.
    t.sink.handler = (b) => verdicts(b);
    expect(t.quarantine.release("live")).toBe(1);
    await t.flusher.requestFlush("live");
    expect(seqs(t.calls.at(-1)!.events)).toEqual([2]);
    expect(t.quarantine.count("live")).toBe(0);
    expect(t.store.backlog("live")).toBe(0);
  });

  test("a batch refused as a whole is bisected until the poison event is isolated", async () => {
    const t = setup({
      handler: (b) => {
        if (b.events.some((e) => e.body === "event 6"))
          throw new RemoteRejectedError("400 invalid input syntax", true, { remoteStatus: 400 });
        return verdicts(b);
      },
    });
    await t.append(8);
    t.flusher.start();
    await t.scheduler.settle();
    expect(t.quarantine.list("live", { limit: 10 }).map((q) => q.event.seq)).toEqual([6]);
    expect(t.quarantine.list("live", { limit: 10 })[0]).toMatchObject({
      remote_status: 400,
      reason: "400 invalid input syntax",
    });
    expect(t.store.backlog("live")).toBe(0);
    // Accepted halves arrive in seq order.
    const accepted = t.calls.filter((c) => !c.events.some((e) => e.body === "event 6")).flatMap((c) => seqs(c.events));
    expect(accepted).toEqual([1, 2, 3, 4, 5, 7, 8]);
    expect(t.calls.length).toBeLessThanOrEqual(8);
  });

  test("an event that fails the shared schema locally is quarantined without being sent", async () => {
    const t = setup();
    await t.append(2);
    t.store.db.run("UPDATE local_events SET ts = 'yesterday' WHERE seq = 1");
    t.flusher.start();
    await t.scheduler.settle();
    expect(seqs(t.calls[0]!.events)).toEqual([2]);
    expect(t.quarantine.list("live", { limit: 10 })[0]!.reason).toStartWith(
      "fails the shared event schema locally: /ts",
    );
  });

  test("500s, timeouts and garbage are retried with backoff until the remote recovers; nothing is lost", async () => {
    const failures = [
      new RemoteUnavailableError("503 down", { remoteStatus: 503 }),
      new RemoteTimeoutError("no response within 10000 ms"),
      new RemoteProtocolError("200 with a body that is not JSON"),
    ];
    const t = setup({
      random: () => 0.999_999,
      handler: (b, call) => {
        if (call <= failures.length) throw failures[call - 1];
        return verdicts(b);
      },
    });
    await t.append(4);
    t.flusher.start();
    await t.scheduler.settle();
    expect(t.calls).toHaveLength(1);
    expect(t.flusher.status("live")).toMatchObject({
      flusher: "backoff",
      consecutive_failures: 1,
      last_error: "503 down",
    });
    expect(t.flusher.status("live").next_attempt_at).toBe(new Date(Date.parse(MARKET_OPEN) + 1000).toISOString());
    await t.append(1); // arrives during the outage: goes out with the retry
    await t.scheduler.advance(1000);
    expect(t.calls).toHaveLength(2);
    await t.scheduler.advance(2000);
    expect(t.calls).toHaveLength(3);
    await t.scheduler.advance(3999);
    expect(t.calls).toHaveLength(3);
    await t.scheduler.advance(1);
    expect(t.calls).toHaveLength(4);
    expect(t.calls.map((c) => c.at - Date.parse(MARKET_OPEN))).toEqual([0, 1000, 3000, 7000]);
    expect(seqs(t.calls[3]!.events)).toEqual([1, 2, 3, 4, 5]);
    expect(t.store.backlog("live")).toBe(0);
    expect(t.flusher.status("live")).toMatchObject({ consecutive_failures: 0, last_error: null });
    const log = t.store.db.query("SELECT status FROM local_flush_log ORDER BY id").all() as { status: string }[];
    expect(log.map((r) => r.status)).toEqual(["error", "error", "error", "ok"]);
  });

  test("the backoff is capped", async () => {
    const t = setup({
      random: () => 0.999_999,
      settings: { backoffMaxMs: 5_000 },
      handler: () => {
        throw new RemoteUnavailableError("502");
      },
    });
    await t.append(1);
    t.flusher.start();
    await t.scheduler.advance(60_000);
    const gaps = t.calls.slice(1).map((c, i) => c.at - t.calls[i]!.at);
    expect(gaps.slice(0, 4)).toEqual([1000, 2000, 4000, 5000]);
    expect(Math.max(...gaps)).toBe(5000);
  });

  test("a critical event cuts a pending backoff wait short", async () => {
    const t = await inBackoff(1);
    expect(t.flusher.status("live")).toMatchObject({ flusher: "backoff" });
    await t.append(1, "KILL_SWITCH");
    await t.scheduler.settle();
    expect(t.calls).toHaveLength(2);
    expect(t.calls[1]!.at).toBe(t.calls[0]!.at);
    expect(seqs(t.calls[1]!.events)).toEqual([1, 2]);
  });

  test("a stream of critical events during an outage retries at most once per backoffMinMs", async () => {
    const t = setup({
      settings: { backoffMinMs: 1_000, backoffMaxMs: 60_000 },
      random: () => 0.999_999,
      handler: () => {
        throw new RemoteUnavailableError("503");
      },
    });
    await t.append(1);
    t.flusher.start();
    await t.scheduler.settle();
    // A fill every 250 ms for 5 s while the remote is down.
    for (let i = 0; i < 20; i++) {
      await t.append(1, "BUY_FILLED");
      await t.scheduler.settle();
      await t.scheduler.advance(250);
    }
    const gaps = t.calls.slice(1).map((c, i) => c.at - t.calls[i]!.at);
    expect(t.calls.length).toBeGreaterThan(2);
    expect(t.calls.length).toBeLessThanOrEqual(7);
    // The first critical event retries at once; later early retries are spaced.
    expect(gaps[0]).toBe(0);
    expect(Math.min(...gaps.slice(1))).toBeGreaterThanOrEqual(1_000);
  });

  test("a permanent error is not retried before the next interval", async () => {
    const t = setup({
      handler: (b, call) => {
        if (call === 1) throw new RemoteAuthError("401 invalid JWT", { remoteStatus: 401 });
        return verdicts(b);
      },
    });
    await t.append(1);
    t.flusher.start();
    await t.scheduler.advance(14_999);
    expect(t.calls).toHaveLength(1);
    expect(t.flusher.status("live")).toMatchObject({
      consecutive_failures: 1,
      last_error: "401 invalid JWT",
      flusher: "idle",
    });
    expect(t.quarantine.count("live")).toBe(0);
    await t.scheduler.advance(1);
    expect(t.calls).toHaveLength(2);
    expect(t.store.backlog("live")).toBe(0);
  });

  test("at most one flush is in flight per mode, and one more is queued", async () => {
    const gate = deferred<void>();
    const t = setup({ handler: firstWaitsFor(gate.promise) });
    t.flusher.start();
    await t.scheduler.settle();
    await t.append(1, "BUY_FILLED");
    await t.scheduler.settle();
    for (let i = 0; i < 3; i++) await t.append(1, "SELL_FILLED");
    await t.scheduler.settle();
    expect(t.calls).toHaveLength(1);
    gate.resolve();
    await t.scheduler.settle();
    expect(t.calls).toHaveLength(2);
    expect(seqs(t.calls[1]!.events)).toEqual([2, 3, 4]);
    expect(t.store.backlog("live")).toBe(0);
  });

  test("an ordered sink gets up to `window` batches before the first answer, each naming the last event of the one before", async () => {
    const gates = [deferred<void>(), deferred<void>(), deferred<void>()];
    const t = setup({
      ordered: true,
      settings: { batchSize: 10, window: 3 },
      handler: async (b, call) => {
        if (call <= 3) await gates[call - 1]!.promise;
        return verdicts(b);
      },
    });
    await t.append(45);
    t.flusher.start();
    await t.scheduler.settle();
    expect(t.calls.map((c) => seqs(c.events)[0])).toEqual([1, 11, 21]);
    expect(t.calls.map((c) => c.afterKey)).toEqual([
      null,
      t.calls[0]!.events.at(-1)!.idempotency_key,
      t.calls[1]!.events.at(-1)!.idempotency_key,
    ]);
    expect(t.flusher.status("live")).toMatchObject({ in_flight_batches: 3, window: 3, flushed_through_seq: 0 });
    // Answers in reverse: nothing is applied before the oldest batch's answer.
    gates[2]!.resolve();
    gates[1]!.resolve();
    await t.scheduler.settle();
    expect(t.store.backlog("live")).toBe(45);
    gates[0]!.resolve();
    await t.scheduler.settle();
    expect(t.calls.map((c) => seqs(c.events)[0])).toEqual([1, 11, 21, 31, 41]);
    expect(t.store.backlog("live")).toBe(0);
    const log = t.store.db.query("SELECT last_seq FROM local_flush_log ORDER BY id").all() as { last_seq: number }[];
    expect(log.map((r) => r.last_seq)).toEqual([10, 20, 30, 40, 45]);
    expect(t.flusher.status("live")).toMatchObject({ in_flight_batches: 0, flushed_through_seq: 45 });
  });

  test("a sink that does not commit in order gets one batch at a time whatever the window", async () => {
    const gate = deferred<void>();
    const t = setup({
      settings: { batchSize: 10, window: 3 },
      handler: firstWaitsFor(gate.promise),
    });
    await t.append(30);
    t.flusher.start();
    await t.scheduler.settle();
    expect(t.calls).toHaveLength(1);
    expect(t.flusher.status("live")).toMatchObject({ in_flight_batches: 1, window: 1 });
    gate.resolve();
    await t.scheduler.settle();
    expect(t.calls.map((c) => c.afterKey)).toEqual([null, null, null]);
  });

  test("ingest does not wait for a remote that hangs", async () => {
    const t = setup({ handler: () => new Promise<SinkResult>(() => {}) });
    t.flusher.start();
    await t.append(1, "BUY_FILLED");
    await t.scheduler.settle();
    expect(t.calls).toHaveLength(1);
    const results = await t.append(50);
    expect(results.map((r) => r.seq).at(-1)).toBe(51);
  });

  test("the stall watchdog restarts a worker stuck in a send that ignores its signal", async () => {
    const t = setup({
      settings: { stallMs: 120_000 },
      handler: (b, call) => (call === 1 ? new Promise<SinkResult>(() => {}) : verdicts(b)),
    });
    await t.append(2);
    t.flusher.start();
    await t.scheduler.advance(90_000);
    expect(t.calls).toHaveLength(1);
    await t.scheduler.advance(60_000);
    expect(t.calls).toHaveLength(2);
    expect(t.store.backlog("live")).toBe(0);
  });

  test("stop() lets the flush in flight finish, then makes one last flush", async () => {
    const gate = deferred<void>();
    const t = setup({ handler: firstWaitsFor(gate.promise) });
    await t.append(2);
    t.flusher.start();
    await t.scheduler.settle();
    await t.append(3); // not critical: waits for the interval, or the last flush
    const stopped = t.flusher.stop();
    await t.scheduler.settle();
    gate.resolve();
    expect(await stopped).toEqual({ left: 0 });
    expect(t.calls.map((c) => seqs(c.events))).toEqual([
      [1, 2],
      [3, 4, 5],
    ]);
  });

  test("stop() gives up at the deadline and leaves the events queued", async () => {
    const t = setup({ settings: { shutdownMs: 5_000 }, handler: () => new Promise<SinkResult>(() => {}) });
    await t.append(2);
    t.flusher.start();
    await t.scheduler.settle();
    const stopped = t.flusher.stop();
    await t.scheduler.advance(5_000);
    expect(await stopped).toEqual({ left: 2 });
  });

  test("stop() during a backoff wait makes one last attempt at once", async () => {
    const t = await inBackoff(2);
    expect(await t.flusher.stop()).toEqual({ left: 0 });
    expect(t.calls).toHaveLength(2);
  });

  test("the newest state snapshot rides along with the next batch, once", async () => {
    const t = setup();
    t.flusher.start();
    await t.scheduler.settle();
    expect(t.calls).toHaveLength(0);
    t.store.putState("live", { cash: 100 });
    await t.append(1, "BUY_FILLED");
    await t.scheduler.settle();
    expect(t.calls[0]).toMatchObject({ state: { state: { cash: 100 } } });
    await t.append(1, "SELL_FILLED");
    await t.scheduler.settle();
    expect(t.calls[1]).toMatchObject({ state: null });
  });

  test("a new snapshot with no event pending goes out on its own within one flush interval, and only when it changed", async () => {
    const t = setup();
    t.flusher.start();
    await t.scheduler.settle();
    t.clock.advance(5_000);
    t.store.putState("live", { cash: 100 });
    await t.scheduler.advance(9_999);
    expect(t.calls).toHaveLength(0);
    await t.scheduler.advance(1); // 15 s after the last cycle
    expect(t.calls).toEqual([
      {
        at: Date.parse(MARKET_OPEN) + 15_000,
        events: [],
        backlog: 0,
        state: { ts: new Date(Date.parse(MARKET_OPEN) + 5_000).toISOString(), state: { cash: 100 } },
        afterKey: null,
      },
    ]);
    await t.scheduler.advance(15_000);
    expect(t.calls).toHaveLength(1); // unchanged: nothing to send
    t.store.putState("live", { cash: 100, positions: { AAPL: 1 } });
    await t.scheduler.advance(15_000);
    expect(t.calls.map((c) => c.state?.state)).toEqual([{ cash: 100 }, { cash: 100, positions: { AAPL: 1 } }]);
    expect(t.flusher.status("live")).toMatchObject({ consecutive_failures: 0 });
  });

  test("on start a stored snapshot goes out at once; off hours it waits for the 120 s cadence", async () => {
    const t = setup({ at: "2026-06-06T15:00:00Z" });
    t.store.putState("live", { cash: 1 });
    t.flusher.start();
    await t.scheduler.settle();
    expect(t.calls.map((c) => [c.events.length, c.state?.state])).toEqual([[0, { cash: 1 }]]);
    t.store.putState("live", { cash: 2 });
    await t.scheduler.advance(119_999);
    expect(t.calls).toHaveLength(1);
    await t.scheduler.advance(1);
    expect(t.calls.map((c) => c.state?.state)).toEqual([{ cash: 1 }, { cash: 2 }]);
  });

  test("a state-only send that fails is retried with backoff until the remote takes it", async () => {
    const t = setup({
      handler: (b, call) => {
        if (call <= 2) throw new RemoteUnavailableError("503 from the remote");
        return verdicts(b);
      },
    });
    t.store.putState("live", { cash: 7 });
    t.flusher.start();
    await t.scheduler.settle();
    expect(t.calls).toHaveLength(1);
    expect(t.flusher.status("live")).toMatchObject({ flusher: "backoff", consecutive_failures: 1 });
    await t.scheduler.advance(60_000);
    expect(t.calls.map((c) => c.state?.state)).toEqual([{ cash: 7 }, { cash: 7 }, { cash: 7 }]);
    expect(t.flusher.status("live")).toMatchObject({ flusher: "idle", consecutive_failures: 0 });
    await t.scheduler.advance(15_000);
    expect(t.calls).toHaveLength(3); // delivered: not sent again
  });

  test("health shows backlog, oldest age, failures, next attempt and quarantined count", async () => {
    const t = setup({
      random: () => 0.999_999,
      handler: () => {
        throw new RemoteUnavailableError("503 down");
      },
    });
    const health = createHealth({ store: t.store, clock: t.clock, startedAt: t.clock.now(), flusher: t.flusher });
    await t.append(3);
    t.flusher.start();
    await t.scheduler.settle();
    t.clock.advance(500);
    expect(health.health("live")).toMatchObject({
      backlog: 3,
      oldest_unflushed_age_ms: 500,
      last_flush_status: "error",
      last_flush_error: "503 down",
      remote: "fake",
      consecutive_failures: 1,
      next_attempt_at: new Date(Date.parse(MARKET_OPEN) + 1000).toISOString(),
      quarantined: 0,
    });
  });
});
