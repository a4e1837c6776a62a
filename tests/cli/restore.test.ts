// `zoe-local restore --from-remote` against the local Supabase stack (real
// Postgres behind the PostgREST-subset gateway) and real SQLite files: a lost
// disk rebuilt and the service resumed on it, a restore killed half-way and
// completed by a second run, the --since window, and every refusal.
import { Database } from "bun:sqlite";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { runCli, spawnCli } from "../helpers/cli.ts";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { type SupabaseStack, startSupabaseStack } from "../helpers/supabase-stack.ts";
import { tempDir, waitFor } from "../helpers/tmp.ts";

const TOKEN = "cli-restore-token-0123456789abcdef";
let stack: SupabaseStack;
let remoteEnv: Record<string, string>;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  stack = await startSupabaseStack();
  remoteEnv = { SUPABASE_URL: stack.url, SUPABASE_SERVICE_ROLE_KEY: stack.serviceKey };
}, 60_000);
afterAll(async () => {
  await stack?.stop();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await stack.sql`truncate zoe_events, zoe_state, zoe_health`;
});

function newDbPath(): string {
  const dir = tempDir("zoe-restore-");
  cleanups.push(() => dir.cleanup());
  return dir.file("zoe.db");
}

async function service(dbPath: string): Promise<ServiceProcess> {
  const svc = await startService({
    dbPath,
    env: {
      ZOE_API_TOKEN: TOKEN,
      ...remoteEnv,
      ZOE_FLUSH_MARKET_HOURS: "false",
      ZOE_FLUSH_ACTIVE_MS: "3600000",
      ZOE_FLUSH_OFFHOURS_MS: "3600000",
      ZOE_FLUSH_STALL_MS: "3700000",
    },
  });
  cleanups.push(() => (svc.proc.exitCode === null && svc.proc.signalCode === null ? svc.kill("SIGKILL") : undefined));
  return svc;
}

async function post(svc: ServiceProcess, path: string, body: unknown): Promise<void> {
  const res = await fetch(`${svc.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(body),
  });
  if (res.status >= 300) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
}

const events = (mode: string, n: number, tag: string) =>
  Array.from({ length: n }, (_, i) => ({ mode, source: "bot", type: "MARKET", subtype: "TICK", body: `${tag} ${i}` }));

type Row = { id: string; mode: string; seq: number; idempotency_key: string; body: string };

async function remoteRows(): Promise<Row[]> {
  return (
    await stack.sql`select id::text, mode, seq::int8 as seq, idempotency_key, body from zoe_events order by mode, seq`
  ).map((r: Record<string, unknown>) => ({ ...(r as Row), seq: Number(r.seq) }));
}

function localRows(dbPath: string): (Row & { flushed: number })[] {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db
      .query("SELECT id, mode, seq, idempotency_key, body, flushed FROM local_events ORDER BY mode, seq")
      .all() as (Row & { flushed: number })[];
  } finally {
    db.close();
  }
}

/** Rows written straight into Postgres: what Supabase holds from an earlier store. */
async function seedRemote(mode: string, n: number, options: { ageMs?: number; firstSeq?: number } = {}) {
  const ts = new Date(Date.now() - (options.ageMs ?? 0)).toISOString();
  await stack.sql`
    insert into zoe_events (id, mode, ts, seq, source, type, subtype, severity, body, meta, idempotency_key)
    select gen_random_uuid(), ${mode}, ${ts}::timestamptz, ${options.firstSeq ?? 1} + g - 1, 'bot', 'MARKET', 'TICK', 'info',
           'seeded ' || g, jsonb_build_object('n', g), ${`seed-${mode}-${ts}-`} || g
    from generate_series(1, ${n}) as g`;
}

describe("zoe-local restore --from-remote", () => {
  test("rebuilds a lost store from Supabase (events as flushed, the state snapshot), refuses to run again without --force, changes nothing with it, and the service resumes above the restored seqs", async () => {
    const first = newDbPath();
    const a = await service(first);
    await post(a, "/local/events", events("live", 300, "before"));
    await post(a, "/local/events", events("paper", 200, "before"));
    await post(a, "/local/state", { mode: "live", cash: 1234.5, positions: { AAPL: 10 } });
    const flushed = await runCli(["flush"], { ZOE_URL: a.url, ZOE_API_TOKEN: TOKEN });
    expect(flushed.code).toBe(0);
    await waitFor(async () => (await stack.sql`select count(*)::int as n from zoe_state`)[0]!.n === 1);
    await a.kill("SIGKILL");
    // The disk is lost.
    rmSync(first, { force: true });
    for (const suffix of ["-wal", "-shm", ".lock"]) rmSync(first + suffix, { force: true });

    const dbPath = newDbPath();
    const before = await remoteRows();
    expect(before.length).toBe(500);
    const r = await runCli(["restore", "--from-remote", "--db", dbPath], remoteEnv);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.stringContaining("restoring live") });
    const top = (mode: string) => Math.max(...before.filter((row) => row.mode === mode).map((row) => row.seq));
    expect(r.stdout).toContain(
      `restore live: 300 events restored, state snapshot restored, remote seq ${top("live").toLocaleString("en")}`,
    );
    expect(r.stdout).toContain(`restore paper: 200 events restored, remote seq ${top("paper").toLocaleString("en")}`);
    const restored = localRows(dbPath);
    expect(restored.map(({ flushed, ...row }) => row)).toEqual(before);
    expect(restored.every((row) => row.flushed === 1)).toBe(true);

    const again = await runCli(["restore", "--from-remote", "--db", dbPath], remoteEnv);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`Cannot restore into ${dbPath}: it holds 500 events and 1 state snapshots`);
    expect(again.stderr).toContain("--force");
    const forced = await runCli(["restore", "--from-remote", "--db", dbPath, "--force", "--json"], remoteEnv);
    expect(forced.code).toBe(0);
    const report = JSON.parse(forced.stdout) as {
      modes: { mode: string; inserted: number; present: number; state: boolean }[];
    };
    expect(report.modes.map((m) => [m.mode, m.inserted, m.present, m.state])).toEqual([
      ["paper", 0, 200, false],
      ["live", 0, 300, false],
    ]);
    expect(localRows(dbPath)).toEqual(restored);

    // The service resumes on the restored file: its state is there, new events come after the restored ones.
    const b = await service(dbPath);
    const state = (await (
      await fetch(`${b.url}/local/state?mode=live`, { headers: { authorization: `Bearer ${TOKEN}` } })
    ).json()) as { cash: number; positions: unknown };
    expect([state.cash, state.positions]).toEqual([1234.5, { AAPL: 10 }]);
    await post(b, "/local/events", events("live", 50, "after"));
    expect((await runCli(["flush"], { ZOE_URL: b.url, ZOE_API_TOKEN: TOKEN })).code).toBe(0);
    const after = (await remoteRows()).filter((row) => row.mode === "live");
    expect(after.length).toBe(350);
    expect(new Set(after.map((row) => row.seq)).size).toBe(350);
    const newSeqs = after.filter((row) => row.body.startsWith("after")).map((row) => row.seq);
    expect(Math.min(...newSeqs)).toBeGreaterThan(top("live"));
  }, 120_000);

  test("a restore killed half-way (SIGKILL) leaves a sound store, and running it again with --force completes it exactly", async () => {
    const n = 30_000;
    await seedRemote("paper", n);
    const dbPath = newDbPath();
    const cli = spawnCli(["restore", "--from-remote", "--db", dbPath, "--mode", "paper"], remoteEnv);
    await waitFor(
      () => {
        try {
          return localRows(dbPath).length >= 2000;
        } catch {
          return false;
        }
      },
      60_000,
      "the first restored pages",
    );
    cli.proc.kill("SIGKILL");
    await cli.exited;
    const partial = localRows(dbPath);
    expect(partial.length).toBeGreaterThan(0);
    expect(partial.length).toBeLessThan(n);

    const refused = await runCli(["restore", "--from-remote", "--db", dbPath, "--mode", "paper"], remoteEnv);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("a restore cut short? Run it again with --force to complete it");
    const done = await runCli(["restore", "--from-remote", "--db", dbPath, "--mode", "paper", "--force"], remoteEnv);
    expect(done.code).toBe(0);
    expect(done.stdout).toContain(
      `restore paper: ${(n - partial.length).toLocaleString("en")} events restored, ${partial.length.toLocaleString("en")} already there`,
    );
    const local = localRows(dbPath).map(({ flushed, ...row }) => row);
    expect(local).toEqual(await remoteRows());
    const db = new Database(dbPath, { readonly: true });
    expect((db.query("PRAGMA integrity_check").get() as { integrity_check: string }).integrity_check).toBe("ok");
    db.close();
  }, 120_000);

  test("--since keeps older events in Supabase only; a mode without recent events still reports its remote seq", async () => {
    await seedRemote("live", 40, { ageMs: 10 * 86_400_000 });
    await seedRemote("live", 25, { firstSeq: 41 });
    await seedRemote("paper", 10, { ageMs: 3 * 86_400_000 });
    const dbPath = newDbPath();
    const r = await runCli(["restore", "--from-remote", "--db", dbPath, "--since", "2d", "--no-progress"], remoteEnv);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(r.stdout).toContain("restore live: 25 events restored, remote seq 65");
    expect(r.stdout).toContain("restore paper: 0 events restored, remote seq 10");
    expect(localRows(dbPath).map((row) => row.seq)).toEqual(Array.from({ length: 25 }, (_, i) => 41 + i));
  }, 60_000);

  test("bad arguments and missing settings are refused before anything is written, with exit code 2", async () => {
    const dbPath = newDbPath();
    const cases: [string[], Record<string, string>, string][] = [
      [["restore", "--db", dbPath], remoteEnv, "restore needs --from-remote"],
      [
        ["restore", "--from-remote", "--db", dbPath, "--since", "soon"],
        remoteEnv,
        "--since: expected a duration like 7d",
      ],
      [
        ["restore", "--from-remote", "--db", dbPath, "--mode", "demo"],
        remoteEnv,
        '--mode: expected live or paper, got "demo"',
      ],
      [["restore", "--from-remote", "--db", dbPath], {}, "needs SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY"],
    ];
    for (const [args, env, message] of cases) {
      const r = await runCli(args, env);
      expect({ args, code: r.code, stderr: r.stderr }).toEqual({
        args,
        code: 2,
        stderr: expect.stringContaining(message),
      });
    }
    expect(await Bun.file(dbPath).exists()).toBe(false);
  }, 60_000);

  test("refuses while the service runs on the database (its lock is held)", async () => {
    const dbPath = newDbPath();
    await service(dbPath);
    const r = await runCli(["restore", "--from-remote", "--db", dbPath], remoteEnv);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("another zoe-local process is using it");
  }, 60_000);
});
