// `zoe-local flush`, `quarantine` and `tail` against the real service (a child
// process) flushing to the local Supabase stack (real Postgres, the real Edge
// Function under Deno). A gate between the service and the stack answers 401
// while closed: the flusher does not retry that on its own, so a backlog builds
// up that only the CLI's flush sends.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { runCli, spawnCli } from "../helpers/cli.ts";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { refusePoisonRows, type SupabaseStack, startSupabaseStack } from "../helpers/supabase-stack.ts";
import { tempDir, waitFor } from "../helpers/tmp.ts";

const TOKEN = "cli-remote-token-0123456789abcdef";
let stack: SupabaseStack;
let gate: ReturnType<typeof Bun.serve>;
let open = true;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  stack = await startSupabaseStack();
  await refusePoisonRows(stack);
  gate = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      if (!open)
        return Response.json({ error: { code: "unauthorized", message: "gate closed by the test" } }, { status: 401 });
      const url = new URL(req.url);
      const upstream = await fetch(`${stack.url}${url.pathname}${url.search}`, {
        method: req.method,
        headers: req.headers,
        body: await req.arrayBuffer(),
      });
      return new Response(await upstream.arrayBuffer(), { status: upstream.status, headers: upstream.headers });
    },
  });
}, 60_000);
afterAll(async () => {
  gate?.stop(true);
  await stack?.stop();
});
afterEach(async () => {
  open = true;
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function service(
  env: Record<string, string> = {},
  options: { dbPath?: string; port?: number } = {},
): Promise<ServiceProcess & { dbPath: string; env: Record<string, string> }> {
  let dbPath = options.dbPath;
  if (!dbPath) {
    const dir = tempDir("zoe-cli-remote-");
    cleanups.push(() => dir.cleanup());
    dbPath = dir.file("zoe.db");
  }
  const svc = await startService({
    dbPath,
    port: options.port,
    env: {
      ZOE_API_TOKEN: TOKEN,
      SUPABASE_URL: `http://127.0.0.1:${gate.port}`,
      SUPABASE_SERVICE_ROLE_KEY: stack.serviceKey,
      // Only what the test asks for flushes: intervals of an hour, no market clock.
      ZOE_FLUSH_MARKET_HOURS: "false",
      ZOE_FLUSH_ACTIVE_MS: "3600000",
      ZOE_FLUSH_OFFHOURS_MS: "3600000",
      ZOE_FLUSH_BACKOFF_MIN_MS: "50",
      ZOE_FLUSH_BACKOFF_MAX_MS: "400",
      ZOE_FLUSH_TIMEOUT_MS: "5000",
      ZOE_FLUSH_STALL_MS: "3700000",
      ZOE_SSE_HEARTBEAT_MS: "1000",
      ...env,
    },
  });
  cleanups.push(() => (svc.proc.exitCode === null && svc.proc.signalCode === null ? svc.kill("SIGKILL") : undefined));
  return Object.assign(svc, { dbPath, env: { ZOE_URL: svc.url, ZOE_API_TOKEN: TOKEN } });
}

let tag = 0;
async function post(svc: ServiceProcess, events: Record<string, unknown>[]): Promise<{ id: string; seq: number }[]> {
  const res = await fetch(`${svc.url}/local/events`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(events),
  });
  if (res.status !== 201) throw new Error(`POST /local/events: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { events: { id: string; seq: number }[] }).events;
}
const ev = (source: string, extra: Record<string, unknown> = {}) => ({
  mode: "live",
  source,
  type: "MARKET",
  subtype: "TICK",
  body: `${source} ${++tag}`,
  ...extra,
});
async function remoteCount(source: string): Promise<number> {
  return ((await stack.sql`select count(*)::int as n from zoe_events where source = ${source}`)[0] as { n: number }).n;
}
async function liveStatus(svc: ServiceProcess): Promise<Record<string, any>> {
  return (
    (await (await fetch(`${svc.url}/local/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as {
      modes: { live: Record<string, any> };
    }
  ).modes.live;
}

describe("zoe-local flush", () => {
  test("drains a big backlog into Postgres and waits for it, drawing a progress bar from 0% to 100%", async () => {
    const svc = await service();
    const source = `cli-flush-${process.pid}`;
    open = false;
    for (let i = 0; i < 20; i++)
      await post(
        svc,
        Array.from({ length: 1000 }, () => ev(source)),
      );
    // Full batches woke the flusher; the closed gate refused it, and a 401 is not retried on its own.
    await waitFor(
      async () => (await liveStatus(svc)).flusher === "idle",
      10_000,
      "the flusher to give up on the closed gate",
    );
    expect((await liveStatus(svc)).backlog).toBe(20_000);
    open = true;
    const r = await runCli(["flush", "--mode", "live", "--progress"], svc.env);
    expect({ code: r.code, stdout: r.stdout }).toEqual({
      code: 0,
      stdout: expect.stringMatching(/^flushed in \d+(m \d+)?s: live: 20,000 → 0 unflushed\n$/),
    });
    const bars = r.stderr.trim().split("\n");
    expect(bars[0]).toMatch(/^flushing live: \[░{24}\]\s+0% {2}0 of 20,000$/);
    expect(bars.at(-1)).toMatch(/^flushing live: \[█{24}\] 100% {2}20,000 of 20,000$/);
    expect(await remoteCount(source)).toBe(20_000);
    expect((await liveStatus(svc)).backlog).toBe(0);
  }, 120_000);

  test("an attempt that fails is exit 1 with the remote's error; the events stay queued", async () => {
    const svc = await service();
    await post(svc, [ev("cli-flush-fail")]);
    open = false;
    const r = await runCli(["flush"], svc.env);
    expect(r.code).toBe(1);
    expect(r.stderr).toStartWith("zoe-local: flush failed: Cannot flush live: ");
    expect(r.stderr).toContain("401");
    expect(r.stderr).toContain("the flusher keeps retrying on its own");
    expect((await liveStatus(svc)).backlog).toBe(1);
  }, 60_000);

  test("without a remote says so, exit 1", async () => {
    const dir = tempDir("zoe-cli-local-");
    cleanups.push(() => dir.cleanup());
    const svc = await startService({ dbPath: dir.file("zoe.db") });
    cleanups.push(() => svc.kill("SIGKILL"));
    expect(await runCli(["flush"], { ZOE_URL: svc.url })).toMatchObject({
      code: 1,
      stderr: "zoe-local: cannot flush: no remote is configured (SUPABASE_URL is unset), so events stay local\n",
    });
  }, 30_000);
});

describe("zoe-local quarantine", () => {
  test("lists and shows a poison event with its reason, status turns degraded, release after the fix sends it", async () => {
    const svc = await service();
    const source = `cli-q-${process.pid}`;
    const [, poison] = await post(svc, [ev(source), ev(source, { body: "poison" }), ev(source)]);
    expect((await runCli(["flush"], svc.env)).code).toBe(0);
    await waitFor(async () => (await liveStatus(svc)).quarantined === 1, 10_000, "the quarantine");

    const status = await runCli(["status"], svc.env);
    expect(status.code).toBe(1);
    expect(status.stdout).toContain(
      "status:    DEGRADED\n  ! live: 1 event quarantined, waiting for a fix and a release\n",
    );

    const list = await runCli(["quarantine", "list"], svc.env);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(
      new RegExp(
        `^live\\s+${poison!.seq}\\s+${poison!.id}\\s+MARKET/TICK\\s+1\\s+\\d+s ago\\s+rejected by remote`,
        "m",
      ),
    );
    expect(list.stdout).toContain("1 quarantined event.");

    const show = await runCli(["quarantine", "show", poison!.id], svc.env);
    expect(show.code).toBe(0);
    expect(show.stdout).toStartWith(`event ${poison!.id} (live #${poison!.seq}, MARKET/TICK, ts `);
    expect(show.stdout).toContain("poison row refused");
    expect(show.stdout).toContain('"body": "poison"');
    const json = JSON.parse((await runCli(["quarantine", "show", poison!.id, "--json"], svc.env)).stdout);
    expect(json).toMatchObject({ event: { id: poison!.id, body: "poison" }, attempts: 1 });
    const unknown = crypto.randomUUID();
    expect(await runCli(["quarantine", "show", unknown], svc.env)).toMatchObject({
      code: 1,
      stderr: `zoe-local: event ${unknown} is not in the quarantine (already released, or never quarantined)\n`,
    });

    expect(await runCli(["quarantine", "release", "--mode", "live"], svc.env)).toMatchObject({ code: 2 });
    await stack.sql.unsafe("alter table public.zoe_events disable trigger refuse_poison");
    try {
      const released = await runCli(["quarantine", "release", "--mode", "live", "--all"], svc.env);
      expect(released).toMatchObject({
        code: 0,
        stdout: "released 1 event of live back into the flush queue (a flush starts now); 0 still quarantined\n",
      });
      await waitFor(async () => (await remoteCount(source)) === 3, 10_000, "the released event in Postgres");
    } finally {
      await stack.sql.unsafe("alter table public.zoe_events enable trigger refuse_poison");
    }
    expect((await runCli(["quarantine", "list", "--mode", "live"], svc.env)).stdout).toBe(
      "no quarantined events in live\n",
    );
  }, 60_000);
});

describe("zoe-local tail", () => {
  test("prints the matching events as they come, resumes after a restart with nothing lost or repeated, and stops after --count", async () => {
    const svc = await service();
    const source = `cli-tail-${process.pid}`;
    await post(svc, [ev(source, { type: "ORDER", subtype: "BUY_FILLED", severity: "warn" }), ev(source)]);
    const tail = spawnCli(
      ["tail", "--mode", "live", "--type", "ORDER", "--severity", "warn", "--json", "--count", "5"],
      svc.env,
    );
    cleanups.push(() => (tail.proc.exitCode === null ? tail.proc.kill("SIGKILL") : undefined));
    // -n 10 by default: the newest events first, filtered.
    await waitFor(() => tail.lines().length === 1, 10_000, "the replayed ORDER");
    const wanted = (i: number) =>
      ev(source, {
        type: "ORDER",
        subtype: "KILL_SWITCH",
        severity: i % 2 ? "critical" : "error",
        body: `wanted ${i}`,
      });
    await post(svc, [wanted(1), ev(source, { type: "ORDER", severity: "info" }), ev(source, { severity: "critical" })]);
    await waitFor(() => tail.lines().length === 2, 10_000, "the live ORDER");

    // A restart on the same port and database: the stream ends, the CLI reconnects with Last-Event-ID.
    expect(await svc.kill("SIGTERM")).toBe(0);
    const again = await service({}, { dbPath: svc.dbPath, port: svc.port });
    await post(again, [wanted(2), wanted(3)]);
    await post(again, [wanted(4), wanted(5)]);
    expect(await tail.exited).toBe(0);
    const printed = tail
      .lines()
      .map((l) => JSON.parse(l) as { seq: number; type: string; severity: string; body: string });
    expect(printed.map((e) => e.body)).toEqual([printed[0]!.body, "wanted 1", "wanted 2", "wanted 3", "wanted 4"]);
    expect(printed.every((e) => e.type === "ORDER" && ["warn", "error", "critical"].includes(e.severity))).toBe(true);
    const seqs = printed.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    // With --json the notices on stderr are JSON lines too.
    const notices = tail
      .stderr()
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { notice: string; mode: string });
    expect(notices.map((n) => n.mode)).toEqual(notices.map(() => "live"));
    expect(notices.some((n) => n.notice.startsWith("reconnected, resuming after seq "))).toBe(true);
  }, 60_000);
});
