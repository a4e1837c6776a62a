// Store continuity end to end (issue 19): the real service (src/main.ts as a
// child process) flushing to the local Supabase-compatible stack (real
// Postgres, the real zoe-ingest function under Deno, the PostgREST-subset
// gateway), with the truth read from Postgres. A lost disk, an older backup
// restored, a first start with the remote down, and the old box back beside
// the new one: no (mode, seq) is ever shared, every acknowledged event lands
// once, and a reader polling seq > last sees the new events.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync } from "node:fs";
import { backupDatabase } from "../../src/store/backup.ts";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { startSupabaseStack, type SupabaseStack } from "../helpers/supabase-stack.ts";
import { tempDir, waitFor } from "../helpers/tmp.ts";
import { createClient } from "@supabase/supabase-js";
import { createSupabaseReader } from "../../src/client/remote.ts";
import { createFeedStore } from "../../src/client/feed-store.ts";
import { createRemoteFeed } from "../../src/client/remote-feed.ts";
import { FakeFrames, FakeTimers } from "../client/fakes.ts";

let stack: SupabaseStack;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  stack = await startSupabaseStack();
}, 60_000);
afterAll(async () => {
  await stack?.stop();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type SinkName = "edge" | "direct";

/** Flushes only when the test asks (POST /local/flush). */
function flushEnv(sink: SinkName, url = stack.url): Record<string, string> {
  return {
    SUPABASE_URL: url,
    SUPABASE_SERVICE_ROLE_KEY: stack.serviceKey,
    ZOE_FLUSH_SINK: sink,
    ZOE_FLUSH_MARKET_HOURS: "false",
    ZOE_FLUSH_ACTIVE_MS: "3600000",
    ZOE_FLUSH_OFFHOURS_MS: "3600000",
    ZOE_FLUSH_BACKOFF_MIN_MS: "50",
    ZOE_FLUSH_BACKOFF_MAX_MS: "400",
    ZOE_FLUSH_TIMEOUT_MS: "2000",
    ZOE_FLUSH_STALL_MS: "3700000",
  };
}

function dbFile(): string {
  const dir = tempDir("zoe-continuity-");
  cleanups.push(() => dir.cleanup());
  return dir.file("zoe.db");
}

async function service(env: Record<string, string>, dbPath: string): Promise<ServiceProcess> {
  const svc = await startService({ dbPath, env });
  cleanups.push(() => (svc.proc.exitCode === null && svc.proc.signalCode === null ? svc.kill("SIGKILL") : undefined));
  return svc;
}

let tag = 0;
const nextSource = () => `continuity-${process.pid}-${++tag}`;

async function post(
  svc: ServiceProcess,
  source: string,
  from: number,
  n: number,
): Promise<{ id: string; seq: number }[]> {
  const events = Array.from({ length: n }, (_, i) => ({
    mode: "live",
    source,
    type: "ORDER",
    subtype: "TICK",
    body: `${source} ${from + i}`,
  }));
  const res = await fetch(`${svc.url}/local/events`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(events),
  });
  if (res.status !== 201) throw new Error(`POST /local/events: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { events: { id: string; seq: number }[] }).events;
}

async function flush(svc: ServiceProcess): Promise<void> {
  const res = await fetch(`${svc.url}/local/flush?mode=live&wait=true`, { method: "POST" });
  if (res.status !== 200) throw new Error(`POST /local/flush: ${res.status} ${await res.text()}`);
}

interface Row {
  id: string;
  seq: number;
  body: string;
  store_id: string | null;
}

/** zoe_events rows of these sources, by seq (seqs as numbers: they are past int4). */
async function remoteRows(...sources: string[]): Promise<Row[]> {
  const rows = await stack.sql`select id::text, seq::text as seq, body, store_id::text as store_id from zoe_events
    where mode = 'live' and source in ${stack.sql(sources)} order by zoe_events.seq`;
  return (rows as (Omit<Row, "seq"> & { seq: string })[]).map((r) => ({ ...r, seq: Number(r.seq) }));
}

/** Every live seq in the table, with how many rows hold it (more than 1 is a reuse). */
async function sharedSeqs(): Promise<number> {
  const [r] =
    await stack.sql`select count(*)::int as n from (select seq from zoe_events where mode = 'live' group by seq having count(*) > 1) s`;
  return (r as { n: number }).n;
}

async function health(svc: ServiceProcess): Promise<Record<string, any>> {
  return ((await (await fetch(`${svc.url}/health`)).json()) as { modes: { live: Record<string, unknown> } }).modes.live;
}

/** What the dashboard's REMOTE fallback asks: live events after `seq`, through the gateway with the anon key. */
async function remoteAfter(seq: number): Promise<number[]> {
  const res = await fetch(`${stack.url}/rest/v1/zoe_events?select=seq&mode=eq.live&seq=gt.${seq}&order=seq.asc`, {
    headers: { apikey: stack.anonKey, authorization: `Bearer ${stack.anonKey}` },
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { seq: number | string }[]).map((r) => Number(r.seq));
}

describe.each(["edge", "direct"] as const)("store continuity through the %s sink", (sink) => {
  test("a lost disk: the new, empty store's seqs come after every seq Postgres holds, and a reader polling seq > last sees them", async () => {
    const source = nextSource();
    const old = await service(flushEnv(sink), dbFile());
    const before = await post(old, source, 1, 10);
    await flush(old);
    const oldId = (await health(old)).store.id;
    await old.kill("SIGKILL");
    const highWater = Math.max(...before.map((e) => e.seq));

    const fresh = await service(flushEnv(sink), dbFile());
    const newId = (await health(fresh)).store.id;
    expect(newId).not.toBe(oldId);
    const after = await post(fresh, source, 11, 5);
    expect(Math.min(...after.map((e) => e.seq))).toBeGreaterThan(highWater);
    // Gapless within the new range.
    expect(after.map((e) => e.seq - after[0]!.seq)).toEqual([0, 1, 2, 3, 4]);
    expect((await health(fresh)).store.seq_range).toMatchObject({ start_seq: after[0]!.seq, recorded: true });
    await flush(fresh);
    // A box replaced is a handover, not a second writer.
    expect((await health(fresh)).second_writer).toBeNull();

    const rows = await remoteRows(source);
    expect(rows.map((r) => r.id)).toEqual([...before, ...after].map((e) => e.id));
    expect(rows.map((r) => r.store_id)).toEqual([...before.map(() => oldId), ...after.map(() => newId)]);
    expect(await sharedSeqs()).toBe(0);
    expect(await remoteAfter(highWater)).toEqual(expect.arrayContaining(after.map((e) => e.seq)));
  }, 60_000);

  test("an older backup restored: the events after the backup stay, the backup's own are not sent twice, new events get new seqs", async () => {
    const source = nextSource();
    const path = dbFile();
    const original = await service(flushEnv(sink), path);
    const early = await post(original, source, 1, 5);
    const backup = `${path}.backup`;
    backupDatabase(path, backup);
    const late = await post(original, source, 6, 5);
    await flush(original);
    await original.kill("SIGKILL");

    // The disk went bad; the night's backup goes back in place.
    const restoredPath = dbFile();
    copyFileSync(backup, restoredPath);
    const restored = await service(flushEnv(sink), restoredPath);
    const fresh = await post(restored, source, 11, 5);
    expect(Math.min(...fresh.map((e) => e.seq))).toBeGreaterThan(Math.max(...late.map((e) => e.seq)));
    await flush(restored);
    expect((await health(restored)).backlog).toBe(0);

    const rows = await remoteRows(source);
    expect(rows.map((r) => r.id)).toEqual([...early, ...late, ...fresh].map((e) => e.id));
    expect(new Set(rows.map((r) => r.seq)).size).toBe(15);
    expect(await sharedSeqs()).toBe(0);
  }, 60_000);

  test("a first start with Supabase down takes events at once; once Supabase is back they land above what it held", async () => {
    const source = nextSource();
    // Something Postgres already holds for this mode, from another store.
    const other = await service(flushEnv(sink), dbFile());
    const held = await post(other, source, 1, 3);
    await flush(other);
    await other.kill("SIGKILL");

    let up = false;
    const gate = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      idleTimeout: 0,
      async fetch(req) {
        // Down: the remote never answers (the start must not wait on it).
        if (!up) return new Promise<Response>(() => {});
        const url = new URL(req.url);
        const upstream = await fetch(`${stack.url}${url.pathname}${url.search}`, {
          method: req.method,
          headers: req.headers,
          body: req.method === "GET" ? undefined : await req.arrayBuffer(),
        });
        return new Response(await upstream.arrayBuffer(), { status: upstream.status, headers: upstream.headers });
      },
    });
    cleanups.push(() => gate.stop(true));
    const svc = await service(flushEnv(sink, `http://127.0.0.1:${gate.port}`), dbFile());
    expect(svc.output()).toContain("the remote's highest seqs are unknown");
    const stored = await post(svc, source, 4, 4);
    expect(Math.min(...stored.map((e) => e.seq))).toBeGreaterThan(Math.max(...held.map((e) => e.seq)));
    up = true;
    await flush(svc);
    const rows = await remoteRows(source);
    expect(rows.map((r) => r.id)).toEqual([...held, ...stored].map((e) => e.id));
    expect(await sharedSeqs()).toBe(0);
  }, 60_000);

  test("the old box back beside the new one: no shared seq, both fully delivered, the second writer reported with both store ids", async () => {
    const source = nextSource();
    const oldPath = dbFile();
    const oldBox = await service(flushEnv(sink), oldPath);
    const oldUnflushed = await post(oldBox, source, 1, 4);
    const oldId = (await health(oldBox)).store.id;
    await oldBox.kill("SIGKILL");

    const newBox = await service(flushEnv(sink), dbFile());
    const newId = (await health(newBox)).store.id;
    const n1 = await post(newBox, source, 5, 3);
    await flush(newBox);

    // The old box comes back with its unflushed events and keeps writing.
    const back = await service(flushEnv(sink), oldPath);
    const o2 = await post(back, source, 8, 2);
    await flush(back);
    const n2 = await post(newBox, source, 10, 2);
    await flush(newBox);
    const o3 = await post(back, source, 12, 1);
    await flush(back);

    const all = [...oldUnflushed, ...n1, ...o2, ...n2, ...o3];
    const rows = await remoteRows(source);
    expect(rows).toHaveLength(all.length);
    expect(new Set(rows.map((r) => r.id))).toEqual(new Set(all.map((e) => e.id)));
    for (const e of all) expect(rows.find((r) => r.id === e.id)?.seq).toBe(e.seq);
    expect(await sharedSeqs()).toBe(0);

    for (const box of [newBox, back]) {
      const h = await health(box);
      expect(h.second_writer).toMatchObject({ active: true });
      expect(new Set(h.second_writer.writers.map((w: { store_id: string }) => w.store_id))).toEqual(
        new Set([oldId, newId]),
      );
      const status = (await (await fetch(`${box.url}/local/status`)).json()) as { problems: string[] };
      expect(status.problems.join("\n")).toContain("a second store writes this mode");
      const metrics = await (await fetch(`${box.url}/metrics`)).text();
      expect(metrics).toMatch(/^zoe_mode_writers\{mode="live"\} 2$/m);
    }
    const [row] = await stack.sql`select second_writer_at is not null as seen from zoe_health where mode = 'live'`;
    expect(row.seen).toBe(true);
  }, 90_000);
});

describe("readers across a box replacement", () => {
  test("the dashboard's REMOTE fallback (supabase-js reader, seq > last polling) shows the new box's events without a reset", async () => {
    const source = nextSource();
    const old = await service(flushEnv("edge"), dbFile());
    const before = await post(old, source, 1, 6);
    await flush(old);

    const timers = new FakeTimers();
    const feed = createFeedStore({
      mode: "live",
      maxEvents: 200,
      schedule: new FakeFrames().schedule,
      remote: {
        configured: true,
        via: "polling",
        pollIntervalMs: 1_000,
        lastPollAt: null,
        error: null,
        realtimeError: null,
      },
    });
    const reader = createSupabaseReader(
      createClient(stack.url, stack.anonKey, { auth: { persistSession: false, autoRefreshToken: false } }),
    );
    const remote = createRemoteFeed({
      mode: "live",
      remote: reader,
      realtime: false,
      pollIntervalMs: 1_000,
      maxEvents: 200,
      feed,
      timers,
      now: () => timers.now,
    });
    cleanups.push(() => remote.stop());
    remote.start();
    const oldMax = before.at(-1)!.seq;
    await waitFor(() => feed.snapshot().lastSeq >= oldMax, 10_000, "the old box's events in the feed");

    await old.kill("SIGKILL");
    const fresh = await service(flushEnv("edge"), dbFile());
    const after = await post(fresh, source, 7, 4);
    await flush(fresh);
    const newMax = after.at(-1)!.seq;
    await waitFor(
      async () => {
        await timers.advance(1_000);
        return feed.snapshot().lastSeq === newMax;
      },
      10_000,
      "the new box's events in the feed",
    );
    const mine = feed.snapshot().events.filter((e) => e.source === source);
    expect(mine.map((e) => e.id)).toEqual([...before, ...after].map((e) => e.id));
    expect(feed.snapshot().remote.error).toBeNull();
  }, 60_000);

  test("a local SSE client resuming with a Last-Event-ID from before the rebuild gets the new store's events, in order", async () => {
    const source = nextSource();
    const old = await service({}, dbFile());
    const before = await post(old, source, 1, 3);
    await old.kill("SIGKILL");
    const fresh = await service({}, dbFile());
    const after = await post(fresh, source, 4, 3);

    const res = await fetch(`${fresh.url}/local/stream?mode=live`, {
      headers: { "last-event-id": String(before.at(-1)!.seq) },
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    const ids = () => [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    while (!after.every((e) => ids().includes(e.seq))) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    await reader.cancel();
    expect(text).not.toContain("event: reset");
    expect(ids()).toEqual(after.map((e) => e.seq));
  }, 60_000);
});
