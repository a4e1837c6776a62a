// The remote schema as supabase/migrations defines it, checked in a real
// Postgres database prepared like a Supabase project (roles, default grants).
import { SQL } from "bun";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { functionVerifiesJwt } from "../../scripts/supabase-local/gateway.ts";
import { createStackDatabase, findPostgres, MIGRATIONS_DIR } from "../../scripts/supabase-local/postgres.ts";
import { type SupabaseStack, startSupabaseStack } from "../helpers/supabase-stack.ts";
import { tempDir } from "../helpers/tmp.ts";

let stack: SupabaseStack;
beforeAll(async () => {
  stack = await startSupabaseStack();
});
afterAll(async () => {
  await stack?.stop();
});

describe("remote schema", () => {
  test("zoe_events, zoe_health and zoe_state have the specified columns", async () => {
    const cols = await stack.sql`select table_name, column_name, data_type, is_nullable from information_schema.columns
      where table_schema = 'public' and table_name in ('zoe_events', 'zoe_health', 'zoe_state') order by table_name, ordinal_position`;
    const shape = (table: string) =>
      Object.fromEntries(
        cols
          .filter((c: { table_name: string }) => c.table_name === table)
          .map((c: { column_name: string; data_type: string; is_nullable: string }) => [
            c.column_name,
            `${c.data_type}${c.is_nullable === "YES" ? " null" : ""}`,
          ]),
      );
    expect(shape("zoe_events")).toEqual({
      id: "uuid",
      mode: "text",
      ts: "timestamp with time zone",
      seq: "bigint",
      source: "text",
      type: "text",
      subtype: "text",
      symbol: "text null",
      severity: "text",
      body: "text",
      meta: "jsonb",
      idempotency_key: "text",
      received_at: "timestamp with time zone",
      store_id: "uuid null",
    });
    expect(shape("zoe_health")).toEqual({
      mode: "text",
      last_flush_ts: "timestamp with time zone null",
      last_seq: "bigint null",
      last_batch_count: "integer",
      backlog: "bigint",
      updated_at: "timestamp with time zone",
      writer_store_id: "uuid null",
      writer_started_at: "timestamp with time zone null",
      writer_seen_at: "timestamp with time zone null",
      previous_writer_store_id: "uuid null",
      previous_writer_started_at: "timestamp with time zone null",
      second_writer_at: "timestamp with time zone null",
      second_writer: "jsonb null",
    });
    expect(shape("zoe_state")).toEqual({
      mode: "text",
      ts: "timestamp with time zone",
      state: "jsonb",
      updated_at: "timestamp with time zone",
    });
  });

  test("idempotency_key has a real UNIQUE constraint that ON CONFLICT can target", async () => {
    const [c] =
      await stack.sql`select con.contype, pg_get_constraintdef(con.oid) as def, idx.indpred is null as not_partial
      from pg_constraint con join pg_index idx on idx.indexrelid = con.conindid
      where con.conrelid = 'public.zoe_events'::regclass and con.contype = 'u'`;
    expect(c).toEqual({ contype: "u", def: "UNIQUE (idempotency_key)", not_partial: true });
    const insert =
      () => stack.sql`insert into zoe_events (id, mode, ts, seq, source, type, subtype, body, idempotency_key)
      values (${crypto.randomUUID()}, 'live', now(), 1, 's', 't', 'st', 'b', 'schema-test-key') on conflict (idempotency_key) do nothing returning 1`;
    expect((await insert()).length).toBe(1);
    expect((await insert()).length).toBe(0);
  });

  test("(mode, seq) is unique in zoe_events: a second event with a stored seq is refused", async () => {
    const idx =
      await stack.sql`select indexdef from pg_indexes where schemaname = 'public' and tablename = 'zoe_events'`;
    expect(idx.map((i: { indexdef: string }) => i.indexdef)).toContain(
      "CREATE UNIQUE INDEX zoe_events_mode_seq_key ON public.zoe_events USING btree (mode, seq)",
    );
    const insert = (key: string) =>
      stack.sql`insert into zoe_events (id, mode, ts, seq, source, type, subtype, body, idempotency_key)
      values (${crypto.randomUUID()}, 'paper', now(), 777001, 's', 't', 'st', 'b', ${key})`;
    await insert(`seq-a-${crypto.randomUUID()}`);
    expect(insert(`seq-b-${crypto.randomUUID()}`)).rejects.toThrow(/zoe_events_mode_seq_key/);
  });

  test("RLS is on for all three tables; anon and authenticated may only SELECT; service_role bypasses RLS", async () => {
    const tables = ["zoe_events", "zoe_health", "zoe_state"];
    const rls =
      await stack.sql`select relname, relrowsecurity from pg_class where relname in ${stack.sql(tables)} order by relname`;
    expect(rls.every((r: { relrowsecurity: boolean }) => r.relrowsecurity)).toBe(true);
    const policies =
      await stack.sql`select tablename, cmd, roles::text[] as roles from pg_policies where schemaname = 'public' and tablename in ${stack.sql(tables)} order by tablename`;
    expect(
      policies.map((p: { tablename: string; cmd: string; roles: string[] }) => [
        p.tablename,
        p.cmd,
        [...p.roles].sort(),
      ]),
    ).toEqual(tables.map((t) => [t, "SELECT", ["anon", "authenticated"]]));
    for (const table of tables) {
      for (const role of ["anon", "authenticated"]) {
        const [p] = await stack.sql`select has_table_privilege(${role}, ${`public.${table}`}, 'SELECT') as sel,
          has_table_privilege(${role}, ${`public.${table}`}, 'INSERT, UPDATE, DELETE, TRUNCATE') as write`;
        expect({ table, role, ...p }).toEqual({ table, role, sel: true, write: false });
      }
      const [s] =
        await stack.sql`select has_table_privilege('service_role', ${`public.${table}`}, 'INSERT, UPDATE, DELETE') as write`;
      expect(s.write).toBe(true);
    }
    const [bypass] = await stack.sql`select rolbypassrls from pg_roles where rolname = 'service_role'`;
    expect(bypass.rolbypassrls).toBe(true);
  });

  test("service_role writes under RLS; anon reads what it wrote", async () => {
    const key = `rls-${crypto.randomUUID()}`;
    await stack.sql.begin(async (tx) => {
      await tx`select set_config('role', 'service_role', true)`;
      await tx`insert into zoe_events (id, mode, ts, seq, source, type, subtype, body, idempotency_key) values (${crypto.randomUUID()}, 'paper', now(), 9, 's', 't', 'st', 'b', ${key})`;
    });
    const seen = await stack.sql.begin(async (tx) => {
      await tx`select set_config('role', 'anon', true)`;
      return await tx`select seq::int from zoe_events where idempotency_key = ${key}`;
    });
    expect([...seen]).toEqual([{ seq: 9 }]);
  });

  test("migrations follow the CLI's naming, are recorded like the CLI does, and can be re-applied", async () => {
    const files = readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith(".sql"));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(f).toMatch(/^\d{14}_[a-z0-9_]+\.sql$/);
    const recorded =
      await stack.sql`select version || '_' || name || '.sql' as file from supabase_migrations.schema_migrations order by version`;
    expect(recorded.map((r: { file: string }) => r.file)).toEqual(files.sort());
    for (const f of files) await stack.sql.unsafe(readFileSync(join(MIGRATIONS_DIR, f), "utf8"));
    const [policies] = await stack.sql`select count(*)::int as n from pg_policies where schemaname = 'public'`;
    expect(policies.n).toBe(3);
  });

  test("the tables join Supabase Realtime's publication where it exists", async () => {
    await stack.sql.unsafe("create publication supabase_realtime");
    try {
      for (const f of readdirSync(MIGRATIONS_DIR)
        .filter((f) => f.endsWith(".sql"))
        .sort())
        await stack.sql.unsafe(readFileSync(join(MIGRATIONS_DIR, f), "utf8"));
      const tables =
        await stack.sql`select tablename from pg_publication_tables where pubname = 'supabase_realtime' order by tablename`;
      expect(tables.map((t: { tablename: string }) => t.tablename)).toEqual(["zoe_events", "zoe_health", "zoe_state"]);
    } finally {
      await stack.sql.unsafe("drop publication supabase_realtime");
    }
  });

  test("config.toml declares the function for the CLI with verify_jwt on", () => {
    const toml = readFileSync(join(MIGRATIONS_DIR, "..", "config.toml"), "utf8");
    expect(toml).toMatch(/^\[functions\.zoe-ingest\]$/m);
    expect(functionVerifiesJwt("zoe-ingest")).toBe(true);
  });

  test("the gateway reads verify_jwt per function from config.toml", () => {
    const dir = tempDir();
    try {
      const path = dir.file("config.toml");
      writeFileSync(
        path,
        "[functions.a]\nverify_jwt = false\n\n[functions.b]\nverify_jwt = true\n[functions.c]\n# verify_jwt = false\n",
      );
      expect(["a", "b", "c", "d"].map((n) => functionVerifiesJwt(n, path))).toEqual([false, true, true, true]);
    } finally {
      dir.cleanup();
    }
  });
});

describe("local stack Postgres", () => {
  test("falls back to a throwaway cluster from Debian's binaries when asked (as when nothing answers on 5432)", async () => {
    const pg = await findPostgres({ ZOE_PG_THROWAWAY: "1" });
    try {
      expect(pg.owned).toBe(true);
      expect(pg.adminUrl).not.toContain(":5432/");
      const db = await createStackDatabase(pg.adminUrl);
      const sql = new SQL({ url: db.url, max: 1 });
      try {
        const [r] =
          await sql`select count(*)::int as n from pg_tables where schemaname = 'public' and tablename like 'zoe_%'`;
        expect(r.n).toBe(3);
      } finally {
        await sql.close();
        await db.drop();
      }
    } finally {
      await pg.stop();
    }
  });

  test("each stack gets its own database", async () => {
    const other = await startSupabaseStack();
    try {
      expect(other.dbUrl).not.toBe(stack.dbUrl);
      await other.sql`insert into zoe_health (mode, backlog) values ('live', 1)`;
      expect(
        (await stack.sql`select count(*)::int as n from zoe_health where backlog = 1 and mode = 'live'`)[0].n,
      ).toBe(0);
    } finally {
      await other.stop();
    }
    const [gone] =
      await stack.sql`select count(*)::int as n from pg_database where datname = ${new URL(other.dbUrl).pathname.slice(1)}`;
    expect(gone.n).toBe(0);
  });
});
