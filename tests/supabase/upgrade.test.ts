// A Supabase project and a bot box made by the version before store
// identities, upgraded in place: the project has only the first migration and
// rows with seqs from 1 (on one project, a store rebuilt by that version even
// left two rows per seq); the new migration is applied over them, then the
// upgraded service flushes the old store's unflushed events and new ones.
// Real Postgres, the real zoe-ingest under Deno, the real service.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { MIGRATIONS_DIR, applyMigrations } from "../../scripts/supabase-local/postgres.ts";
import { writeSchema3Store } from "../helpers/old-store.ts";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { startSupabaseStack, type SupabaseStack } from "../helpers/supabase-stack.ts";
import { tempDir } from "../helpers/tmp.ts";

const FIRST = "20261125000000_zoe_remote_schema.sql";
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
const stacks: SupabaseStack[] = [];
afterAll(async () => {
  for (const s of stacks) await s.stop();
});

/** A stack whose database has only the first migration, as a project made by the previous version. */
async function oldProject(): Promise<{ stack: SupabaseStack; migrations: string }> {
  const dir = tempDir("zoe-upgrade-migrations-");
  cleanups.push(() => dir.cleanup());
  const migrations = join(dir.path, "migrations");
  mkdirSync(migrations);
  copyFileSync(join(MIGRATIONS_DIR, FIRST), join(migrations, FIRST));
  const stack = await startSupabaseStack({ migrationsDir: migrations });
  stacks.push(stack);
  return { stack, migrations };
}

/** Applies every migration of this version that the project does not have yet. */
async function upgradeProject(stack: SupabaseStack, migrations: string): Promise<string[]> {
  for (const f of readdirSync(MIGRATIONS_DIR)) copyFileSync(join(MIGRATIONS_DIR, f), join(migrations, f));
  return await applyMigrations(stack.sql, migrations);
}

async function insertOld(
  stack: SupabaseStack,
  seq: number,
  key: string,
  id: string = crypto.randomUUID(),
): Promise<void> {
  await stack.sql`insert into zoe_events (id, mode, ts, seq, source, type, subtype, body, idempotency_key)
    values (${id}, 'live', '2026-11-30T12:00:00Z', ${seq}, 'old', 'ORDER', 'TICK', ${`old live ${seq}`}, ${key})`;
}

async function rows(stack: SupabaseStack) {
  const r = await stack.sql`select id::text, seq::text as seq, store_id::text as store_id from zoe_events
    where mode = 'live' order by zoe_events.seq, id`;
  return (r as { id: string; seq: string; store_id: string | null }[]).map((x) => ({ ...x, seq: Number(x.seq) }));
}

async function upgradedService(stack: SupabaseStack, dbPath: string): Promise<ServiceProcess> {
  const svc = await startService({
    dbPath,
    env: {
      SUPABASE_URL: stack.url,
      SUPABASE_SERVICE_ROLE_KEY: stack.serviceKey,
      ZOE_FLUSH_SINK: "edge",
      ZOE_FLUSH_MARKET_HOURS: "false",
      ZOE_FLUSH_ACTIVE_MS: "3600000",
      ZOE_FLUSH_OFFHOURS_MS: "3600000",
    },
  });
  cleanups.push(() => (svc.proc.exitCode === null ? svc.kill("SIGKILL") : undefined));
  return svc;
}

async function postAndFlush(svc: ServiceProcess, n: number): Promise<{ id: string; seq: number }[]> {
  const events = Array.from({ length: n }, (_, i) => ({
    mode: "live",
    source: "new",
    type: "ORDER",
    subtype: "TICK",
    body: `new ${i}`,
  }));
  const res = await fetch(`${svc.url}/local/events`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(events),
  });
  expect(res.status).toBe(201);
  const stored = ((await res.json()) as { events: { id: string; seq: number }[] }).events;
  const flushed = await fetch(`${svc.url}/local/flush?mode=live&wait=true`, { method: "POST" });
  expect(flushed.status).toBe(200);
  return stored;
}

const storeId = async (svc: ServiceProcess) =>
  ((await (await fetch(`${svc.url}/health`)).json()) as { modes: { live: { store: { id: string } } } }).modes.live.store
    .id;

describe("upgrading a project and a box made by the previous version", () => {
  test("a clean project gets (mode, seq) unique; the old store's unflushed events and the new ones land once, with the store id", async () => {
    const { stack, migrations } = await oldProject();
    const dir = tempDir("zoe-upgrade-box-");
    cleanups.push(() => dir.cleanup());
    const dbPath = dir.file("zoe.db");
    // The box flushed live 1-3; 4-5 were still queued when it was upgraded.
    const old = writeSchema3Store(
      dbPath,
      [1, 2, 3, 4, 5].map((seq) => ({ mode: "live" as const, seq, flushed: seq <= 3 })),
    );
    for (const e of old.slice(0, 3)) await insertOld(stack, e.seq, e.idempotency_key, e.id);

    expect(await upgradeProject(stack, migrations)).toEqual(["20261207000000_zoe_store_identity.sql"]);
    const [index] = await stack.sql`select indexdef from pg_indexes where indexname = 'zoe_events_mode_seq_key'`;
    expect(index.indexdef).toBe(
      "CREATE UNIQUE INDEX zoe_events_mode_seq_key ON public.zoe_events USING btree (mode, seq)",
    );

    const svc = await upgradedService(stack, dbPath);
    const fresh = await postAndFlush(svc, 3);
    const id = await storeId(svc);
    const all = await rows(stack);
    expect(all.map((r) => r.id)).toEqual([...old.map((e) => e.id), ...fresh.map((e) => e.id)]);
    expect(all.map((r) => r.store_id)).toEqual([null, null, null, id, id, id, id, id]);
    expect(fresh[0]!.seq).toBeGreaterThan(5);
    const [health] = await stack.sql`select writer_store_id::text as w from zoe_health where mode = 'live'`;
    expect(health.w).toBe(id);
  }, 90_000);

  test("a project whose old rows already share seqs keeps them; (mode, seq) is unique for every row written with a store id", async () => {
    const { stack, migrations } = await oldProject();
    // A store rebuilt by the previous version restarted at 1: seqs 1-3 twice.
    for (const seq of [1, 2, 3]) {
      await insertOld(stack, seq, `first-box-${seq}`);
      await insertOld(stack, seq, `second-box-${seq}`);
    }
    expect(await upgradeProject(stack, migrations)).toEqual(["20261207000000_zoe_store_identity.sql"]);
    const [index] = await stack.sql`select indexdef from pg_indexes where indexname = 'zoe_events_mode_seq_key'`;
    expect(index.indexdef).toBe(
      "CREATE UNIQUE INDEX zoe_events_mode_seq_key ON public.zoe_events USING btree (mode, seq) WHERE (store_id IS NOT NULL)",
    );
    expect(await rows(stack)).toHaveLength(6);

    const dir = tempDir("zoe-upgrade-box-");
    cleanups.push(() => dir.cleanup());
    const svc = await upgradedService(stack, dir.file("zoe.db"));
    const fresh = await postAndFlush(svc, 2);
    const all = await rows(stack);
    expect(all).toHaveLength(8);
    expect(all.slice(6).map((r) => r.id)).toEqual(fresh.map((e) => e.id));
    // A second row with a store id at a seq already held is refused.
    const insertAt = (seq: number) =>
      stack.sql`insert into zoe_events (id, mode, ts, seq, source, type, subtype, body, idempotency_key, store_id)
        values (${crypto.randomUUID()}, 'live', now(), ${seq}, 's', 't', 'st', 'b', ${crypto.randomUUID()}, ${crypto.randomUUID()})`;
    expect(insertAt(fresh[0]!.seq)).rejects.toThrow(/zoe_events_mode_seq_key/);
  }, 90_000);
});
