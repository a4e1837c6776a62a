import { afterEach, describe, expect, test } from "bun:test";
import { createApp } from "../../src/http/app.ts";
import { manualClock } from "../../src/lib/clock.ts";
import { createHealth } from "../../src/ops/health.ts";
import { createHub } from "../../src/stream/hub.ts";
import { silentLogger } from "../../src/lib/log.ts";
import { checkRetryInput, Quarantine } from "../../src/flush/quarantine.ts";
import { openStore } from "../../src/store/store.ts";
import { tempDir } from "../helpers/tmp.ts";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function setup() {
  const dir = tempDir();
  const clock = manualClock("2026-06-02T14:00:00Z");
  const store = openStore({ path: dir.file("zoe.db"), clock, groupCommit: false, retentionMs: 1000 });
  const quarantine = new Quarantine(store, clock);
  const retried: string[] = [];
  const app = createApp({
    store,
    hub: createHub(),
    health: createHealth({ store, clock, startedAt: clock.now() }),
    logger: silentLogger,
    apiToken: null,
    corsOrigins: [],
    maxRequestBytes: 65_536,
    sse: { heartbeatMs: 60_000, retryMs: 1000, maxBufferedBytes: 1 << 20, coalesceMs: 0 },
    quarantine: {
      list: (mode, o) => quarantine.list(mode, o),
      count: (mode) => quarantine.count(mode),
      retry(mode, ids) {
        retried.push(mode);
        return quarantine.release(mode, ids);
      },
    },
  });
  cleanups.push(() => {
    store.close();
    dir.cleanup();
  });
  const handle = (path: string, init?: RequestInit) => app.handle(new Request(`http://localhost${path}`, init));
  const post = (path: string, body: unknown) =>
    handle(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const append = async (n: number) =>
    store.append(
      Array.from({ length: n }, (_, i) => ({
        mode: "live" as const,
        source: "bot",
        type: "T",
        subtype: "TICK",
        body: `e${i + 1}`,
      })),
    );
  return { store, clock, quarantine, handle, post, append, retried };
}

describe("Quarantine", () => {
  test("add() takes events out of the flush queue and the backlog, with their reason", async () => {
    const t = setup();
    await t.append(3);
    const [, second] = t.store.unflushed("live", 10);
    expect(
      t.quarantine.add([
        {
          event: second!,
          reason: "rejected by remote: /body bad",
          errors: [{ path: "/body", message: "bad" }],
          remoteStatus: 200,
        },
      ]),
    ).toBe(1);
    expect(t.store.unflushed("live", 10).map((e) => e.seq)).toEqual([1, 3]);
    expect(t.store.backlog("live")).toBe(2);
    expect(t.store.backlogUsage("live").events).toBe(2);
    expect(t.quarantine.count("live")).toBe(1);
    expect(t.quarantine.list("live", { limit: 10 })).toEqual([
      {
        event: second!,
        reason: "rejected by remote: /body bad",
        errors: [{ path: "/body", message: "bad" }],
        remote_status: 200,
        attempts: 1,
        quarantined_at: "2026-06-02T14:00:00.000Z",
      },
    ]);
  });

  test("release() puts them back in seq order; a second rejection counts another attempt", async () => {
    const t = setup();
    await t.append(3);
    const events = t.store.unflushed("live", 10);
    const before = t.store.backlogUsage("live");
    t.quarantine.add([
      { event: events[0]!, reason: "a" },
      { event: events[2]!, reason: "b" },
    ]);
    expect(t.store.backlogUsage("live").events).toBe(1);
    expect(t.quarantine.release("live", [events[2]!.id])).toBe(1);
    expect(t.store.unflushed("live", 10).map((e) => e.seq)).toEqual([2, 3]);
    expect(t.quarantine.release("live")).toBe(1);
    expect(t.quarantine.release("live")).toBe(0);
    expect(t.store.unflushed("live", 10).map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(t.store.backlogUsage("live")).toEqual(before);
    t.quarantine.add([{ event: events[0]!, reason: "again" }]);
    expect(t.quarantine.list("live", { limit: 10 })[0]).toMatchObject({ reason: "again", attempts: 2 });
  });

  test("add() ignores events already flushed, and quarantined events survive retention pruning", async () => {
    const t = setup();
    await t.append(3);
    const events = t.store.unflushed("live", 10);
    t.store.markFlushed([events[0]!.id, events[1]!.id]);
    expect(
      t.quarantine.add([
        { event: events[0]!, reason: "late" },
        { event: events[2]!, reason: "bad" },
      ]),
    ).toBe(1);
    t.clock.advance(10_000);
    t.store.prune();
    expect(t.quarantine.list("live", { limit: 10 }).map((q) => q.event.seq)).toEqual([3]);
  });
});

describe("GET /local/quarantine and POST /local/quarantine/retry", () => {
  test("list the quarantined events of a mode and page with since_seq", async () => {
    const t = setup();
    await t.append(4);
    const events = t.store.unflushed("live", 10);
    t.quarantine.add(events.slice(1).map((event) => ({ event, reason: "bad" })));
    const res = await t.handle("/local/quarantine?mode=live&limit=2");
    expect(res.status).toBe(200);
    const body = (await res.json()) as { mode: string; count: number; events: { event: { seq: number } }[] };
    expect(body.mode).toBe("live");
    expect(body.count).toBe(3);
    expect(body.events.map((e) => e.event.seq)).toEqual([2, 3]);
    const next = (await (await t.handle("/local/quarantine?mode=live&since_seq=3")).json()) as typeof body;
    expect(next.events.map((e) => e.event.seq)).toEqual([4]);
    expect((await t.handle("/local/quarantine")).status).toBe(400);
    expect((await t.handle("/local/quarantine?mode=paper")).status).toBe(200);
  });

  test("retry releases all, or the listed ids, and reports what is left", async () => {
    const t = setup();
    await t.append(3);
    const events = t.store.unflushed("live", 10);
    t.quarantine.add(events.map((event) => ({ event, reason: "bad" })));
    let res = await t.post("/local/quarantine/retry", { mode: "live", ids: [events[1]!.id] });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ mode: "live", released: 1, quarantined: 2 });
    res = await t.post("/local/quarantine/retry", { mode: "live" });
    expect(await res.json()).toEqual({ mode: "live", released: 2, quarantined: 0 });
    expect(t.store.backlog("live")).toBe(3);
    expect(t.retried).toEqual(["live", "live"]);
  });

  test("retry refuses a malformed body with the shared error shape", async () => {
    const t = setup();
    for (const body of [
      [],
      { mode: "demo" },
      { mode: "live", ids: [] },
      { mode: "live", ids: ["nope"] },
      { mode: "live", extra: 1 },
    ]) {
      const res = await t.post("/local/quarantine/retry", body);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("invalid_request");
    }
    expect(() => checkRetryInput({ mode: "paper" })).not.toThrow();
  });
});
