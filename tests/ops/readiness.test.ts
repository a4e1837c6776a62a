import { describe, expect, test } from "bun:test";
import { type OpsApp, opsAppsClosedAfterEach } from "../helpers/ops.ts";

const setup = opsAppsClosedAfterEach();

async function ready(t: OpsApp) {
  const res = await t.handle("/ready");
  return {
    status: res.status,
    body: (await res.json()) as { status: string; reasons: string[]; checks: Record<string, unknown> },
  };
}

/** Makes the database refuse to grow: the next bulky insert fails with SQLITE_FULL. */
function fillDatabase(t: OpsApp): () => void {
  const pages = (t.store.db.query("PRAGMA page_count").get() as { page_count: number }).page_count;
  t.store.db.run(`PRAGMA max_page_count = ${pages}`);
  return () => t.store.db.run("PRAGMA max_page_count = 1073741823");
}

const bulky = (t: OpsApp) => Array.from({ length: 20 }, () => t.ev({ body: "x".repeat(4_000) }));

describe("GET /ready", () => {
  test("200 ready with its checks when the store takes events", async () => {
    const t = setup();
    expect((await t.post(t.ev())).status).toBe(201);
    expect(await ready(t)).toEqual({
      status: 200,
      body: {
        status: "ready",
        reasons: [],
        checks: { draining: false, db: "ok", recent_write_failures: 0, last_write_error: null, accepting: "all" },
      },
    });
  });

  test("one failed write is noise; three within the window make it not ready; the next success makes it ready again", async () => {
    const t = setup({ readiness: { failureThreshold: 3, windowMs: 60_000 } });
    const restore = fillDatabase(t);
    const first = await t.post(bulky(t));
    expect(first.status).toBe(503);
    expect(((await first.json()) as { error: { code: string } }).error.code).toBe("store_unavailable");
    expect((await ready(t)).status).toBe(200);
    expect((await ready(t)).body.checks.recent_write_failures).toBe(1);

    for (let i = 0; i < 2; i++) expect((await t.post(bulky(t))).status).toBe(503);
    const down = await ready(t);
    expect(down.status).toBe(503);
    expect(down.body.status).toBe("not_ready");
    expect(down.body.reasons).toEqual([
      expect.stringMatching(
        /^3 failed writes in the last 60 s \(last: Cannot store events: disk or database is full\)$/,
      ),
    ]);

    restore();
    expect((await t.post(t.ev())).status).toBe(201);
    expect(await ready(t)).toMatchObject({
      status: 200,
      body: { checks: { recent_write_failures: 0, last_write_error: null } },
    });
  });

  test("failures older than the window no longer count", async () => {
    const t = setup({ readiness: { failureThreshold: 2, windowMs: 10_000 } });
    fillDatabase(t);
    await t.post(bulky(t));
    t.clock.advance(11_000);
    await t.post(bulky(t));
    expect((await ready(t)).status).toBe(200);
    await t.post(bulky(t));
    expect((await ready(t)).status).toBe(503);
  });

  test("refusals by the bounded store are not write failures, but a store refusing ordinary events is not ready", async () => {
    const t = setup({ limits: { maxBacklogEvents: 3, criticalReserveEvents: 1 } });
    await t.post([t.ev(), t.ev()]);
    for (let i = 0; i < 5; i++) expect((await t.post(t.ev())).status).toBe(503);
    const r = await ready(t);
    expect(r.status).toBe(503);
    expect(r.body.checks).toMatchObject({ recent_write_failures: 0, accepting: "critical" });
    expect(r.body.reasons).toEqual(["backlog or disk limit reached: only critical events are accepted"]);
    t.store.markFlushed(t.store.unflushed("live", 10).map((e) => e.id));
    expect((await ready(t)).status).toBe(200);
  });

  test("not ready once draining for shutdown", async () => {
    const t = setup();
    t.ops.readiness.drain();
    const r = await ready(t);
    expect(r.status).toBe(503);
    expect(r.body.reasons).toEqual(["draining: the service is shutting down"]);
  });

  test("needs the token like other reads; GET /health stays the liveness probe", async () => {
    const token = "ready-token-0123456789";
    const t = setup({ apiToken: token });
    expect((await t.handle("/ready")).status).toBe(401);
    expect((await t.handle("/ready", { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await t.handle(`/ready?token=${token}`)).status).toBe(200);
    t.ops.readiness.drain();
    expect((await t.handle("/health", { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
  });
});
