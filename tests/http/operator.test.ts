// The operator routes (GET /local/status, POST /local/flush, GET /local/history)
// on the wiring of src/main.ts: a real SQLite file, the bounded store, and for
// flushes the real Edge Function of the local Supabase stack.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { EventInput } from "../../supabase/functions/_shared/event-schema.ts";
import { readBuildInfo } from "../../src/ops/build-info.ts";
import { type SupabaseStack, startSupabaseStack } from "../helpers/supabase-stack.ts";
import { wiredApp } from "../helpers/wired-app.ts";

const TOKEN = "operator-token-0123456789";
const BUILD = readBuildInfo(join(import.meta.dir, "..", ".."));
let stack: SupabaseStack;
beforeAll(async () => {
  stack = await startSupabaseStack();
}, 60_000);
afterAll(() => stack?.stop());

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function setup(options: { remote?: boolean; apiToken?: string | null; url?: string } = {}) {
  // Started 5 s ago, so the uptime it reports has a floor to check.
  const t = wiredApp({
    remote: options.remote ? { url: options.url ?? stack.url, serviceKey: stack.serviceKey } : null,
    apiToken: options.apiToken,
    startedAgoMs: 5_000,
  });
  cleanups.push(t.close);
  let n = 0;
  const events = (count: number, mode: "live" | "paper" = "live") =>
    Array.from(
      { length: count },
      (): EventInput => ({
        mode,
        source: "bot",
        type: "T",
        subtype: "TICK",
        body: `operator ${++n} ${crypto.randomUUID()}`,
      }),
    );
  return { ...t, events };
}

describe("GET /local/status", () => {
  test("answers build, uptime, database path and size, readiness and per-mode figures, status ok when nothing is wrong", async () => {
    const t = setup();
    await t.store.append(t.events(3));
    const res = await t.handle("/local/status");
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, any>;
    expect(body.status).toBe("ok");
    expect(body.problems).toEqual([]);
    expect(body.service).toMatchObject({
      version: BUILD.version,
      commit: BUILD.commit,
      bun: Bun.version,
      pid: process.pid,
    });
    expect(body.service.uptime_s).toBeGreaterThanOrEqual(5);
    expect(body.db.path).toBe(t.store.path);
    expect(body.db.path.startsWith("/")).toBe(true);
    expect(body.db.size_bytes).toBeGreaterThan(0);
    expect(body.remote).toEqual({ configured: false, target: null });
    expect(body.ready).toEqual({ ready: true, reasons: [] });
    expect(body.modes.live).toMatchObject({ backlog: 3, last_seq: 3, sse_clients: 0, remote: "no remote configured" });
    expect(body.modes.paper).toMatchObject({ backlog: 0, last_seq: 0 });
  });

  test("names each problem: quarantined events make the status degraded", async () => {
    const t = setup({ remote: true });
    await t.store.append(t.events(2));
    t.quarantine.add([{ event: t.store.unflushed("live", 1)[0]!, reason: "poison" }]);
    const body = (await (await t.handle("/local/status")).json()) as Record<string, any>;
    expect(body.status).toBe("degraded");
    expect(body.problems).toEqual(["live: 1 event quarantined, waiting for a fix and a release"]);
    expect(body.remote).toEqual({ configured: true, target: "the test stack" });
    expect(body.modes.live).toMatchObject({ backlog: 1, quarantined: 1, flusher: "idle" });
  });

  test("needs the token like every read", async () => {
    const t = setup({ apiToken: TOKEN });
    expect((await t.handle("/local/status")).status).toBe(401);
    expect((await t.handle(`/local/status?token=${TOKEN}`)).status).toBe(200);
  });
});

describe("POST /local/flush", () => {
  test("?wait=true answers once the backlog is in Postgres, with the backlog before and after", async () => {
    const t = setup({ remote: true });
    await t.store.append(t.events(1200));
    await t.store.append(t.events(7, "paper"));
    const res = await t.handle("/local/flush?wait=true", { method: "POST" });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, any>;
    expect(body.waited).toBe(true);
    expect(body.modes.live).toMatchObject({
      backlog_before: 1200,
      backlog: 0,
      last_flush_status: "ok",
      quarantined: 0,
    });
    expect(body.modes.paper).toMatchObject({ backlog_before: 7, backlog: 0 });
    const [row] = await stack.sql`select count(*)::int as n from zoe_events where body like 'operator %'`;
    expect(row.n).toBeGreaterThanOrEqual(1207);
  }, 60_000);

  test("without wait answers 202 at once; ?mode= flushes only that mode", async () => {
    const t = setup({ remote: true });
    await t.store.append(t.events(5));
    await t.store.append(t.events(4, "paper"));
    const res = await t.handle("/local/flush?mode=paper", { method: "POST" });
    expect(res.status).toBe(202);
    const body = (await res.json()) as Record<string, any>;
    expect(Object.keys(body.modes)).toEqual(["paper"]);
    expect(body.modes.paper.backlog_before).toBe(4);
    while (t.store.backlogUsage("paper").events > 0) await Bun.sleep(10);
    expect(t.store.backlogUsage("live").events).toBe(5);
  }, 30_000);

  test("?wait=true answers 502 flush_failed as soon as an attempt fails, naming the error; the events stay queued", async () => {
    // Nothing listens on port 9 of loopback: every send fails to connect.
    const t = setup({ remote: true, url: "http://127.0.0.1:9" });
    await t.store.append(t.events(3));
    const res = await t.handle("/local/flush?mode=live&wait=true", { method: "POST" });
    expect(res.status).toBe(502);
    const body = (await res.json()) as { error: { code: string; message: string; details: Record<string, any> } };
    expect(body.error.code).toBe("flush_failed");
    expect(body.error.message).toStartWith("Cannot flush live: ");
    expect(body.error.message).toContain("the flusher keeps retrying on its own");
    expect(body.error.details.modes.live.backlog).toBe(3);
  }, 30_000);

  test("without a remote answers 409 no_remote", async () => {
    const t = setup();
    const res = await t.handle("/local/flush", { method: "POST" });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string; message: string } }).error).toMatchObject({
      code: "no_remote",
      message: "Cannot flush: no remote is configured (SUPABASE_URL is unset), so events stay local",
    });
  });

  test("is a write: it needs the bearer token, ?token= is not enough", async () => {
    const t = setup({ apiToken: TOKEN });
    expect((await t.handle(`/local/flush?token=${TOKEN}`, { method: "POST" })).status).toBe(401);
    expect(
      (await t.handle("/local/flush", { method: "POST", headers: { authorization: `Bearer ${TOKEN}` } })).status,
    ).toBe(409);
  });

  test("refuses an unknown mode or parameter with a 400 naming it", async () => {
    const t = setup({ remote: true });
    const bad = async (q: string) =>
      (
        (await (await t.handle(`/local/flush?${q}`, { method: "POST" })).json()) as {
          error: { details: { path: string }[] };
        }
      ).error.details[0]!.path;
    expect(await bad("mode=demo")).toBe("?mode");
    expect(await bad("wait=soon")).toBe("?wait");
    expect(await bad("mdoe=live")).toBe("?mdoe");
  });
});

test("GET /local/history answers the sampled columns of one mode", async () => {
  const t = setup();
  await t.store.append(t.events(10));
  t.history.sample();
  const res = await t.handle("/local/history?mode=live");
  expect(res.status).toBe(200);
  const body = (await res.json()) as Record<string, any>;
  expect(body).toMatchObject({
    mode: "live",
    interval_ms: 1000,
    window_ms: 3_600_000,
    backlog: [10],
    flush_ms_max: [null],
  });
  expect(body.t).toHaveLength(1);
  expect((await t.handle("/local/history")).status).toBe(400);
});

test("GET /local/quarantine/:id answers one quarantined event in full, 404 when it is not quarantined, 400 for a bad id", async () => {
  const t = setup();
  const [stored] = await t.store.append(t.events(1));
  expect((await t.handle(`/local/quarantine/${stored!.id}`)).status).toBe(404);
  t.quarantine.add([
    {
      event: t.store.unflushed("live", 1)[0]!,
      reason: "rejected by remote: /body too long",
      errors: [{ path: "/body", message: "too long" }],
      remoteStatus: 200,
    },
  ]);
  const res = await t.handle(`/local/quarantine/${stored!.id}`);
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject({
    event: { id: stored!.id, seq: 1 },
    reason: "rejected by remote: /body too long",
    errors: [{ path: "/body", message: "too long" }],
    remote_status: 200,
    attempts: 1,
  });
  const bad = await t.handle("/local/quarantine/not-a-uuid");
  expect(bad.status).toBe(400);
  expect(((await bad.json()) as { error: { message: string } }).error.message).toBe(
    'Invalid event id "not-a-uuid": expected a lower-case UUID',
  );
  t.quarantine.release("live");
  expect((await t.handle(`/local/quarantine/${stored!.id}`)).status).toBe(404);
});
