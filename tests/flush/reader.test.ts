import { afterEach, describe, expect, test } from "bun:test";
import { inlineReader, startReaderWorker } from "../../src/flush/reader.ts";
import { silentLogger } from "../../src/lib/log.ts";
import type { StoredEvent } from "../../supabase/functions/_shared/event-schema.ts";
import { openStore } from "../../src/store/store.ts";
import { tempDir } from "../helpers/tmp.ts";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

async function storeWith(count: number) {
  const dir = tempDir("zoe-reader-");
  const store = openStore({ path: dir.file("zoe.db") });
  cleanups.push(() => (store.close(), dir.cleanup()));
  await store.append(
    Array.from({ length: count }, (_, i) => ({
      mode: "live" as const,
      source: "bot",
      type: "ORDER",
      subtype: "BUY_SUBMITTED",
      symbol: "AAPL",
      body: `order ${i} “quoted” ✓`,
      meta: { n: i, nested: { tag: "x" } },
    })),
  );
  return { store, dir };
}

const signal = new AbortController().signal;

describe("startReaderWorker()", () => {
  test("reads, checks and encodes the same batch as the event-loop reader: refs, JSON and schema failures", async () => {
    const { store } = await storeWith(40);
    // One stored row the shared schema refuses (as a row from an older version might be).
    store.db.run("UPDATE local_events SET ts = 'not a timestamp' WHERE seq = 7");
    const loop = inlineReader(store);
    const worker = startReaderWorker({
      path: store.path,
      fallback: loop,
      logger: silentLogger,
      lastSeq: (mode) => store.lastSeq(mode),
    });
    cleanups.push(() => worker.close());
    const a = await loop.read("live", 25, 3, signal);
    const b = await worker.read("live", 25, 3, signal);
    expect(b.count).toBe(a.count);
    expect(b.lastSeq).toBe(a.lastSeq);
    expect(b.lastSeq).toBe(28);
    expect(b.good).toEqual(
      a.good.map((e) => ({ id: e.id, mode: e.mode, seq: e.seq, idempotency_key: e.idempotency_key })),
    );
    expect(b.events).toBeNull();
    expect(JSON.parse(b.json!) as StoredEvent[]).toEqual(a.events!);
    expect(b.json).toBe(JSON.stringify(a.events));
    expect(b.bad.map((x) => [x.event.seq, x.reason])).toEqual(a.bad.map((x) => [x.event.seq, x.reason]));
    expect(b.bad.map((x) => x.event.seq)).toEqual([7]);
  });

  test("sees what the service's connection committed a moment ago, and an empty read past the end", async () => {
    const { store } = await storeWith(3);
    const worker = startReaderWorker({
      path: store.path,
      fallback: inlineReader(store),
      logger: silentLogger,
      lastSeq: (mode) => store.lastSeq(mode),
    });
    cleanups.push(() => worker.close());
    expect((await worker.read("live", 10, 0, signal)).count).toBe(3);
    await store.append([{ mode: "live", source: "bot", type: "T", subtype: "X", body: "late" }]);
    const more = await worker.read("live", 10, 3, signal);
    expect(more.good.map((e) => e.seq)).toEqual([4]);
    expect(await worker.read("live", 10, 4, signal)).toMatchObject({ count: 0, lastSeq: 4, good: [] });
  });

  test("a worker that cannot open the database hands over to the event-loop reader, and says so once", async () => {
    const { store, dir } = await storeWith(5);
    const errors: string[] = [];
    const logger = { ...silentLogger, error: (message: string) => void errors.push(message) };
    const worker = startReaderWorker({
      path: dir.file("not-there/zoe.db"),
      fallback: inlineReader(store),
      logger,
      lastSeq: (mode) => store.lastSeq(mode),
    });
    cleanups.push(() => worker.close());
    const first = await worker.read("live", 10, 0, signal);
    const second = await worker.read("live", 10, 0, signal);
    expect(first.count).toBe(5);
    expect(first.events).not.toBeNull();
    expect(second.count).toBe(5);
    expect(errors).toEqual(["flush reader worker failed: reading on the event loop from now on"]);
  });
});

test("the worker reads no further than the store's durable seq: a group committed but not yet synced stays out of the batch", async () => {
  const { store } = await storeWith(5);
  // The worker's connection sees every commit; the store answers (and lets the
  // flusher read) only what is on disk. A bound below the table's end stands
  // for that moment between a group's commit and its fdatasync.
  let bound = 3;
  const worker = startReaderWorker({
    path: store.path,
    fallback: inlineReader(store),
    logger: silentLogger,
    lastSeq: () => bound,
  });
  cleanups.push(() => worker.close());
  expect((await worker.read("live", 10, 0, signal)).good.map((e) => e.seq)).toEqual([1, 2, 3]);
  bound = store.lastSeq("live");
  expect((await worker.read("live", 10, 3, signal)).good.map((e) => e.seq)).toEqual([4, 5]);
});
