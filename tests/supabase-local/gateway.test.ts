// The local gateway: PostgREST subset over real Postgres (RLS really
// enforced), supabase-js against it, CORS, and the functions proxy.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { join } from "node:path";
import { signJwt } from "../../supabase/functions/_shared/jwt.ts";
import { type SupabaseStack, startSupabaseStack } from "../helpers/supabase-stack.ts";
import { tempDir, waitFor } from "../helpers/tmp.ts";

let stack: SupabaseStack;
let anon: SupabaseClient;
let service: SupabaseClient;
const clientOptions = { auth: { persistSession: false, autoRefreshToken: false } };

beforeAll(async () => {
  stack = await startSupabaseStack();
  anon = createClient(stack.url, stack.anonKey, clientOptions);
  service = createClient(stack.url, stack.serviceKey, clientOptions);
});
afterAll(async () => {
  await stack?.stop();
});

let n = 0;
function row(seq: number, patch: Record<string, unknown> = {}) {
  n++;
  return {
    id: crypto.randomUUID(),
    mode: "live",
    ts: new Date(Date.UTC(2026, 0, 5, 15, 0, seq)).toISOString(),
    seq,
    source: "bot",
    type: "ORDER",
    subtype: "BUY_FILLED",
    symbol: "MSFT",
    severity: "info",
    body: `row ${seq}`,
    meta: { seq },
    idempotency_key: `gw-${n}-${seq}`,
    ...patch,
  };
}

const rest = (path: string, init: RequestInit & { key?: string } = {}) => {
  const { key = stack.anonKey, headers, ...rest } = init;
  return fetch(`${stack.url}/rest/v1/${path}`, {
    ...rest,
    headers: { apikey: key, authorization: `Bearer ${key}`, ...headers },
  });
};

describe("gateway: row level security through /rest/v1", () => {
  test("anon can read all three tables", async () => {
    await service.from("zoe_events").insert(row(1));
    for (const table of ["zoe_events", "zoe_health", "zoe_state"]) {
      const res = await rest(`${table}?select=*`);
      expect({ table, status: res.status }).toEqual({ table, status: 200 });
      expect(Array.isArray(await res.json())).toBe(true);
    }
    const { data, error } = await anon.from("zoe_events").select("seq, body").eq("seq", 1);
    expect(error).toBeNull();
    expect(data).toEqual([{ seq: 1, body: "row 1" }]);
  });

  test("anon cannot write: 401 with a PostgREST error body, nothing stored", async () => {
    const r = row(2);
    const res = await rest("zoe_events", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(r),
    });
    expect(res.status).toBe(401);
    const body = await res.json();
    expect(body).toEqual({
      code: "42501",
      details: null,
      hint: null,
      message: "permission denied for table zoe_events",
    });
    const { error, status } = await anon
      .from("zoe_health")
      .upsert({ mode: "live", backlog: 1 }, { onConflict: "mode" });
    expect(status).toBe(401);
    expect(error?.code).toBe("42501");
    expect(
      (await stack.sql`select count(*)::int as n from zoe_events where idempotency_key = ${r.idempotency_key}`)[0].n,
    ).toBe(0);
  });

  test("an authenticated (non-service) user cannot write either: 403", async () => {
    const userKey = await signJwt({ role: "authenticated", sub: crypto.randomUUID() }, stack.jwtSecret);
    const res = await rest("zoe_state", {
      key: userKey,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ mode: "live", ts: "2026-01-01T00:00:00Z", state: {} }),
    });
    expect(res.status).toBe(403);
    expect((await res.json()).code).toBe("42501");
    expect((await rest("zoe_state?select=mode", { key: userKey })).status).toBe(200);
  });

  test("service_role writes: 201 with Content-Range */N", async () => {
    const rows = [row(3), row(4)];
    const res = await rest("zoe_events", {
      key: stack.serviceKey,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(rows),
    });
    expect(res.status).toBe(201);
    expect(res.headers.get("content-range")).toBe("*/2");
    expect(await res.text()).toBe("");
  });

  test("the policies are what protects the data: RLS on, anon SQL writes refused in Postgres itself", async () => {
    const err = await stack.sql
      .begin(async (tx) => {
        await tx`select set_config('role', 'anon', true)`;
        await tx`insert into zoe_health (mode) values ('paper')`;
      })
      .catch((e: { errno?: string }) => e);
    expect((err as { errno?: string }).errno).toBe("42501");
  });
});

describe("gateway: supabase-js", () => {
  test("upsert with onConflict + ignoreDuplicates stores each key once and ignores replays", async () => {
    const rows = [row(10), row(11), row(12)];
    const first = await service
      .from("zoe_events")
      .upsert(rows, { onConflict: "idempotency_key", ignoreDuplicates: true });
    expect(first.error).toBeNull();
    expect(first.status).toBe(201);
    const replay = rows.map((r) => ({ ...r, id: crypto.randomUUID(), body: "changed" }));
    const second = await service
      .from("zoe_events")
      .upsert([...replay, row(13)], { onConflict: "idempotency_key", ignoreDuplicates: true })
      .select("seq");
    expect(second.error).toBeNull();
    expect(second.data).toEqual([{ seq: 13 }]);
    const stored =
      await stack.sql`select body from zoe_events where idempotency_key in ${stack.sql(rows.map((r) => r.idempotency_key))}`;
    expect(stored.map((r: { body: string }) => r.body)).toEqual(["row 10", "row 11", "row 12"]);
  });

  test("upsert with merge-duplicates overwrites the existing row", async () => {
    const a = await service
      .from("zoe_health")
      .upsert({ mode: "paper", backlog: 5, last_batch_count: 1 }, { onConflict: "mode" });
    expect(a.error).toBeNull();
    const b = await service
      .from("zoe_health")
      .upsert({ mode: "paper", backlog: 9, last_batch_count: 2 }, { onConflict: "mode" })
      .select()
      .single();
    expect(b.error).toBeNull();
    expect(b.data).toMatchObject({ mode: "paper", backlog: 9, last_batch_count: 2 });
  });

  test("a plain insert of a duplicate key is 409 23505", async () => {
    const r = row(20);
    expect((await service.from("zoe_events").insert(r)).error).toBeNull();
    const dup = await service.from("zoe_events").insert({ ...r, id: crypto.randomUUID() });
    expect(dup.status).toBe(409);
    expect(dup.error).toMatchObject({ code: "23505" });
    expect(dup.error?.details).toContain("idempotency_key");
  });

  test("select / eq / gt / order / limit / offset / count / single work", async () => {
    const mode = "paper";
    const rows = Array.from({ length: 8 }, (_, i) => row(300 + i, { mode, symbol: i % 2 ? "AAPL" : "TSLA" }));
    expect((await service.from("zoe_events").insert(rows)).error).toBeNull();
    const desc = await anon
      .from("zoe_events")
      .select("seq,symbol")
      .eq("mode", mode)
      .gte("seq", 300)
      .order("seq", { ascending: false })
      .limit(3);
    expect(desc.data).toEqual([
      { seq: 307, symbol: "AAPL" },
      { seq: 306, symbol: "TSLA" },
      { seq: 305, symbol: "AAPL" },
    ]);
    const page = await anon
      .from("zoe_events")
      .select("seq", { count: "exact" })
      .eq("mode", mode)
      .gt("seq", 301)
      .lt("seq", 307)
      .neq("symbol", "TSLA")
      .order("seq")
      .range(1, 2);
    expect(page.data).toEqual([{ seq: 305 }]);
    expect(page.count).toBe(2);
    const inList = await anon.from("zoe_events").select("seq").in("seq", [300, 302, 999]).order("seq");
    expect(inList.data).toEqual([{ seq: 300 }, { seq: 302 }]);
    const one = await anon.from("zoe_events").select("body").eq("seq", 304).single();
    expect(one.data).toEqual({ body: "row 304" });
    const none = await anon.from("zoe_events").select("body").eq("seq", 99_999).maybeSingle();
    expect(none).toMatchObject({ data: null, error: null });
    const many = await anon.from("zoe_events").select("body").eq("mode", mode).single();
    expect(many.status).toBe(406);
    expect(many.error?.code).toBe("PGRST116");
    const head = await anon.from("zoe_events").select("*", { count: "exact", head: true }).eq("mode", mode);
    expect(head.count).toBe(8);
  });

  test("timestamps, bigints and jsonb come back as PostgREST serialises them", async () => {
    const r = row(400, { ts: "2026-07-04T13:30:00.5-04:00", meta: { a: [1, "x"], b: null } });
    await service.from("zoe_events").insert(r);
    const { data } = await anon
      .from("zoe_events")
      .select("ts,seq,meta")
      .eq("idempotency_key", r.idempotency_key)
      .single();
    expect(data).toEqual({ ts: "2026-07-04T17:30:00.5+00:00", seq: 400, meta: { a: [1, "x"], b: null } });
  });
});

describe("gateway: PostgREST errors and protocol", () => {
  test("missing apikey → 401; bad JWT → 401 PGRST301; unknown table → 404; unknown column → 400", async () => {
    const noKey = await fetch(`${stack.url}/rest/v1/zoe_events`);
    expect(noKey.status).toBe(401);
    const badJwt = await fetch(`${stack.url}/rest/v1/zoe_events`, {
      headers: { apikey: stack.anonKey, authorization: "Bearer abc.def.ghi" },
    });
    expect(badJwt.status).toBe(401);
    expect((await badJwt.json()).code).toBe("PGRST301");
    const forged = await signJwt({ role: "service_role" }, "some-other-secret-of-sufficient-length");
    expect((await rest("zoe_events", { key: forged })).status).toBe(401);
    const table = await rest("nope?select=*");
    expect(table.status).toBe(404);
    expect(await table.json()).toMatchObject({ code: "PGRST205", details: null, hint: null });
    const col = await rest("zoe_events?select=nope");
    expect(col.status).toBe(400);
    expect((await col.json()).code).toBe("42703");
    const insertCol = await rest("zoe_events?columns=nope", {
      key: stack.serviceKey,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "[]",
    });
    expect(insertCol.status).toBe(400);
    expect((await insertCol.json()).code).toBe("PGRST204");
    const badJson = await rest("zoe_events", {
      key: stack.serviceKey,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{",
    });
    expect(badJson.status).toBe(400);
    expect((await badJson.json()).code).toBe("PGRST102");
    const badOp = await rest("zoe_events?seq=approx.3");
    expect(badOp.status).toBe(400);
    expect((await badOp.json()).code).toBe("PGRST100");
    const keysDiffer = await rest("zoe_health", {
      key: stack.serviceKey,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify([{ mode: "live" }, { mode: "paper", backlog: 1 }]),
    });
    expect(keysDiffer.status).toBe(400);
  });

  test("a constraint violation is 400 with the Postgres code, and one bad row fails the whole insert", async () => {
    const good = row(500);
    const bad = row(501, { mode: "demo" });
    const res = await rest("zoe_events", {
      key: stack.serviceKey,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify([good, bad]),
    });
    expect(res.status).toBe(400);
    expect((await res.json()).code).toBe("23514");
    expect(
      (await stack.sql`select count(*)::int as n from zoe_events where idempotency_key = ${good.idempotency_key}`)[0].n,
    ).toBe(0);
  });

  test("Prefer: missing=default fills absent keys from column defaults", async () => {
    const res = await rest("zoe_health?columns=mode,backlog,updated_at", {
      key: stack.serviceKey,
      method: "POST",
      headers: {
        "content-type": "application/json",
        prefer: "missing=default, return=representation, resolution=merge-duplicates",
      },
      body: JSON.stringify([{ mode: "live", backlog: 4 }]),
    });
    expect(res.status).toBe(201);
    const [created] = await res.json();
    expect(created.backlog).toBe(4);
    expect(typeof created.updated_at).toBe("string");
  });

  test("requests run with the request's role and claims set like PostgREST", async () => {
    await stack.sql.unsafe(`create or replace view public.test_whoami with (security_invoker = true) as
      select current_user::text as role, current_setting('request.jwt.claims', true)::jsonb ->> 'role' as claim_role,
             current_setting('request.method', true) as method, current_setting('transaction_read_only') as read_only;
      grant select on public.test_whoami to anon, service_role;`);
    try {
      const res = await rest("test_whoami?select=*");
      expect(await res.json()).toEqual([{ role: "anon", claim_role: "anon", method: "GET", read_only: "on" }]);
      const svc = await rest("test_whoami?select=role", { key: stack.serviceKey });
      expect(await svc.json()).toEqual([{ role: "service_role" }]);
    } finally {
      await stack.sql.unsafe("drop view public.test_whoami");
    }
  });

  test("CORS: preflight and responses carry Supabase's headers", async () => {
    const pre = await fetch(`${stack.url}/rest/v1/zoe_events`, {
      method: "OPTIONS",
      headers: {
        origin: "http://localhost:5173",
        "access-control-request-method": "GET",
        "access-control-request-headers": "apikey, authorization, x-client-info",
      },
    });
    expect(pre.status).toBeLessThan(300);
    expect(pre.headers.get("access-control-allow-origin")).toBe("*");
    const allowed = pre.headers
      .get("access-control-allow-headers")!
      .split(",")
      .map((h) => h.trim());
    for (const h of [
      "apikey",
      "authorization",
      "content-type",
      "x-client-info",
      "prefer",
      "accept-profile",
      "content-profile",
    ])
      expect(allowed).toContain(h);
    const get = await rest("zoe_health?select=*", { headers: { origin: "http://localhost:5173" } });
    expect(get.headers.get("access-control-allow-origin")).toBe("*");
    expect(get.headers.get("access-control-expose-headers")).toContain("content-range");
  });
});

describe("gateway: functions proxy", () => {
  test("verify_jwt: no or bad Authorization → 401 before the function runs", async () => {
    expect((await fetch(stack.functionUrl, { method: "POST", body: "{}" })).status).toBe(401);
    expect(
      (await fetch(stack.functionUrl, { method: "POST", body: "{}", headers: { authorization: "Bearer x.y.z" } }))
        .status,
    ).toBe(401);
    expect(
      (
        await fetch(`${stack.url}/functions/v1/unknown-fn`, {
          method: "POST",
          headers: { authorization: `Bearer ${stack.serviceKey}` },
        })
      ).status,
    ).toBe(404);
  });

  test("a stopped function answers 502; restartFunction() brings it back on the same URL", async () => {
    const post = () =>
      fetch(stack.functionUrl, {
        method: "POST",
        headers: { authorization: `Bearer ${stack.serviceKey}`, "content-type": "application/json" },
        body: JSON.stringify({ mode: "live", events: [row(900)] }),
      });
    await stack.stopFunction();
    expect((await post()).status).toBe(502);
    await stack.restartFunction();
    const res = await post();
    expect(res.status).toBe(200);
    expect((await res.json()).accepted).toBe(1);
  });

  test("supabase.functions.invoke reaches the function", async () => {
    const { data, error } = await service.functions.invoke("zoe-ingest", {
      body: { mode: "paper", events: [row(901, { mode: "paper" })] },
    });
    expect(error).toBeNull();
    expect(data.accepted).toBe(1);
  });
});

describe("local stack processes", () => {
  test("the Deno function exits by itself when the process that started it is SIGKILLed", async () => {
    const owner = Bun.spawn(["bun", join(import.meta.dir, "..", "fixtures", "function-owner.ts")], {
      stdout: "pipe",
      stderr: "inherit",
    });
    let out = "";
    const reader = owner.stdout.getReader();
    while (!/function pid \d+/.test(out)) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    const pid = Number(/function pid (\d+)/.exec(out)?.[1]);
    const url = /url (\S+)/.exec(out)?.[1];
    expect((await fetch(url!, { method: "POST" })).status).toBe(401);
    owner.kill("SIGKILL");
    await owner.exited;
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await waitFor(() => !alive(), 10_000, `deno ${pid} to exit`);
  });
});

describe("bun run supabase:local", () => {
  test("on an empty Deno cache, starts a stack whose Edge Function stores a batch, prints the variables to export, and drops its database on SIGINT", async () => {
    // A new machine: nothing cached, so the function's npm packages are fetched by this start.
    const denoDir = tempDir("zoe-supabase-local-deno-");
    const proc = Bun.spawn(["bun", join(import.meta.dir, "..", "..", "scripts", "supabase-local.ts")], {
      env: { ...process.env, PORT: "0", DENO_DIR: denoDir.path },
      stdout: "pipe",
      stderr: "pipe",
    });
    try {
      let out = "";
      const reader = proc.stdout.getReader();
      while (!out.includes("Ctrl-C")) {
        const { value, done } = await reader.read();
        if (done)
          throw new Error(`supabase:local exited before it was up: ${out}${await new Response(proc.stderr).text()}`);
        out += new TextDecoder().decode(value);
      }
      const url = /export SUPABASE_URL=(\S+)/.exec(out)?.[1];
      const anonKey = /export SUPABASE_ANON_KEY=(\S+)/.exec(out)?.[1];
      const serviceKey = /export SUPABASE_SERVICE_ROLE_KEY=(\S+)/.exec(out)?.[1];
      const db = new URL(/export SUPABASE_DB_URL=(\S+)/.exec(out)![1]!).pathname.slice(1);
      const res = await fetch(`${url}/rest/v1/zoe_events?select=seq&limit=1`, { headers: { apikey: anonKey! } });
      expect(res.status).toBe(200);
      const event = {
        id: "0190a6f0-0000-7000-8000-5ba5e10ca100",
        mode: "paper",
        seq: 1,
        ts: "2026-03-09T14:30:00.000Z",
        source: "bot",
        type: "SIGNAL",
        subtype: "ENTRY",
        symbol: null,
        severity: "info",
        body: "cold cache",
        meta: {},
        idempotency_key: "supabase-local-cold-cache",
      };
      const flushed = await fetch(`${url}/functions/v1/zoe-ingest`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${serviceKey}`, apikey: serviceKey! },
        body: JSON.stringify({ mode: "paper", events: [event], backlog: 0 }),
      });
      expect({ status: flushed.status, body: await flushed.json() }).toMatchObject({
        status: 200,
        body: { accepted: 1, rejected: 0 },
      });
      proc.kill("SIGINT");
      expect(await proc.exited).toBe(0);
      const left = await stack.sql`select count(*)::int as n from pg_database where datname = ${db}`;
      expect(left[0].n).toBe(0);
    } finally {
      if (proc.exitCode === null) proc.kill("SIGKILL");
      denoDir.cleanup();
    }
  });
});
