// The remote half refuses whoever holds only the public (anon) key: the
// zoe-ingest Edge Function answers 401, and row level security stops anon and
// authenticated writes through the gateway. Nothing reaches the tables.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createClient, FunctionsHttpError, type SupabaseClient } from "@supabase/supabase-js";
import { signJwt } from "../../supabase/functions/_shared/jwt.ts";
import { FUNCTION_NAME, type SupabaseStack, startSupabaseStack } from "../helpers/supabase-stack.ts";

const FLUSH_SECRET = "flush-secret-0123456789abcdef";
let stack: SupabaseStack;
let anon: SupabaseClient;
let user: SupabaseClient;
let userKey: string;
const clientOptions = { auth: { persistSession: false, autoRefreshToken: false } };

beforeAll(async () => {
  stack = await startSupabaseStack({ functionEnv: { ZOE_FLUSH_SECRET: FLUSH_SECRET } });
  anon = createClient(stack.url, stack.anonKey, clientOptions);
  userKey = await signJwt({ role: "authenticated", sub: "someone" }, stack.jwtSecret);
  user = createClient(stack.url, userKey, clientOptions);
});
afterAll(async () => {
  await stack?.stop();
});

const counts = async () =>
  (
    await stack.sql`select (select count(*) from zoe_events)::int as events, (select count(*) from zoe_state)::int as state, (select count(*) from zoe_health)::int as health`
  )[0] as {
    events: number;
    state: number;
    health: number;
  };

let n = 0;
function storedEvent() {
  n++;
  return {
    id: crypto.randomUUID(),
    mode: "live",
    ts: "2026-01-05T15:00:00.000Z",
    seq: 1_000 + n,
    source: "sec",
    type: "ORDER",
    subtype: "BUY_FILLED",
    symbol: null,
    severity: "info",
    body: `security ${n}`,
    meta: {},
    idempotency_key: `sec-${process.pid}-${n}`,
  };
}
const batch = () => ({
  mode: "live",
  events: [storedEvent()],
  backlog: 0,
  state: { ts: "2026-01-05T15:00:00.000Z", state: { cash: 1 } },
});

describe("zoe-ingest Edge Function", () => {
  test("refuses callers without a service credential with 401 and writes nothing", async () => {
    const before = await counts();
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const unsigned = `${b64({ alg: "none", typ: "JWT" })}.${b64({ role: "service_role" })}.`;
    const expired = await signJwt({ role: "service_role", exp: Math.floor(Date.now() / 1000) - 60 }, stack.jwtSecret);
    const forged = await signJwt({ role: "service_role" }, "not-the-project-secret-0123456789");
    const callers: [string, Record<string, string>][] = [
      ["no credentials", {}],
      ["the anon key", { apikey: stack.anonKey, authorization: `Bearer ${stack.anonKey}` }],
      ["an authenticated user's JWT", { apikey: stack.anonKey, authorization: `Bearer ${userKey}` }],
      [
        "the anon key and a wrong flush secret",
        { apikey: stack.anonKey, authorization: `Bearer ${stack.anonKey}`, "x-zoe-flush-secret": `${FLUSH_SECRET}x` },
      ],
      ["a service_role JWT signed with another secret", { apikey: stack.anonKey, authorization: `Bearer ${forged}` }],
      ["an unsigned (alg none) service_role JWT", { apikey: stack.anonKey, authorization: `Bearer ${unsigned}` }],
      ["an expired service_role JWT", { apikey: stack.anonKey, authorization: `Bearer ${expired}` }],
      [
        "the service key as apikey only, anon as bearer",
        { apikey: stack.serviceKey, authorization: `Bearer ${stack.anonKey}` },
      ],
    ];
    for (const [who, headers] of callers) {
      const res = await fetch(stack.functionUrl, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify(batch()),
      });
      const text = await res.text();
      expect({ who, status: res.status }).toEqual({ who, status: 401 });
      expect(text).not.toContain(stack.serviceKey);
      expect(text).not.toContain(FLUSH_SECRET);
    }
    expect(await counts()).toEqual(before);
  });

  test("supabase-js invoke() with the anon key gets a 401 FunctionsHttpError; the service key and the flush secret pass", async () => {
    const before = await counts();
    const { error } = await anon.functions.invoke(FUNCTION_NAME, { body: batch() });
    expect(error).toBeInstanceOf(FunctionsHttpError);
    expect((error as FunctionsHttpError).context.status).toBe(401);
    expect(await counts()).toEqual(before);
    const service = createClient(stack.url, stack.serviceKey, clientOptions);
    const ok = await service.functions.invoke(FUNCTION_NAME, { body: batch() });
    expect(ok.error).toBeNull();
    const withSecret = await fetch(stack.functionUrl, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        apikey: stack.anonKey,
        authorization: `Bearer ${stack.anonKey}`,
        "x-zoe-flush-secret": FLUSH_SECRET,
      },
      body: JSON.stringify(batch()),
    });
    expect(withSecret.status).toBe(200);
    expect((await counts()).events).toBe(before.events + 2);
  });
});

describe("row level security through the gateway", () => {
  test("anon and authenticated clients cannot insert, upsert, update or delete any table; reads still work", async () => {
    const service = createClient(stack.url, stack.serviceKey, clientOptions);
    const seeded = storedEvent();
    expect((await service.from("zoe_events").insert(seeded)).error).toBeNull();
    const before = await counts();
    const snapshot = await stack.sql`select id::text, body from zoe_events order by seq`;
    for (const [who, client] of [
      ["anon", anon],
      ["authenticated", user],
    ] as const) {
      const attempts = {
        insertEvent: await client.from("zoe_events").insert(storedEvent()),
        upsertEvent: await client
          .from("zoe_events")
          .upsert({ ...seeded, body: "tampered" }, { onConflict: "idempotency_key" }),
        updateEvent: await client.from("zoe_events").update({ body: "tampered" }).eq("id", seeded.id),
        deleteEvent: await client.from("zoe_events").delete().eq("id", seeded.id),
        insertState: await client
          .from("zoe_state")
          .insert({ mode: "live", ts: "2026-01-05T15:00:00Z", state: { cash: 0 } }),
        insertHealth: await client.from("zoe_health").insert({ mode: "live" }),
      };
      for (const [what, { error, status }] of Object.entries(attempts)) {
        // Refused outright (401/403 permission denied) — never a 2xx.
        expect({ who, what, refused: error !== null && status >= 400 }).toEqual({ who, what, refused: true });
      }
      const read = await client.from("zoe_events").select("id").eq("id", seeded.id);
      expect(read.error).toBeNull();
      expect(read.data).toEqual([{ id: seeded.id }]);
    }
    expect(await counts()).toEqual(before);
    expect(await stack.sql`select id::text, body from zoe_events order by seq`).toEqual(snapshot);
  });
});
