// Real answers of the documented routes hold to the OpenAPI document the app
// serves: each status is documented for its operation, with its media type,
// its headers (WWW-Authenticate, Retry-After) and a body that validates
// against the documented schema, which is the very TypeBox schema of
// src/http/openapi.ts. On the wiring of src/main.ts: the operations, the
// operator routes, the quarantine, and for flushes the local Supabase stack.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Value } from "@sinclair/typebox/value";
import type { TSchema } from "@sinclair/typebox";
import type { EventInput } from "../../supabase/functions/_shared/event-schema.ts";
import { routeDocs } from "../../src/http/openapi.ts";
import { type SupabaseStack, startSupabaseStack } from "../helpers/supabase-stack.ts";
import { wiredApp } from "../helpers/wired-app.ts";

const TOKEN = "openapi-token-0123456789";
const auth = { authorization: `Bearer ${TOKEN}` };
let stack: SupabaseStack;
const cleanups: (() => unknown)[] = [];
beforeAll(async () => {
  stack = await startSupabaseStack();
}, 60_000);
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  stack?.stop();
});

function fullApp(options: { remote: boolean }) {
  const t = wiredApp({
    remote: options.remote ? stack : null,
    apiToken: TOKEN,
    // Small enough for a 413; one open stream, so the next one gets the cap's 503.
    maxRequestBytes: 4096,
    sse: { maxClients: 1 },
  });
  cleanups.push(t.close);
  const handle = (path: string, init: RequestInit = {}) =>
    t.handle(path, { ...init, headers: { ...auth, ...(init.headers as Record<string, string>) } });
  return { ...t, handle };
}

type Doc = {
  paths: Record<
    string,
    Record<
      string,
      {
        responses: Record<string, { headers?: Record<string, unknown>; content?: Record<string, { schema: unknown }> }>;
      }
    >
  >;
  components?: { schemas?: Record<string, unknown> };
};
type RouteKey = keyof typeof routeDocs;

/** `schema` with each `$ref` to components.schemas replaced by the schema it names. */
function dereference(doc: Doc, schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map((s) => dereference(doc, s));
  if (schema === null || typeof schema !== "object") return schema;
  const ref = (schema as { $ref?: string }).$ref;
  if (ref !== undefined) {
    const name = /^#\/components\/schemas\/(.+)$/.exec(ref)?.[1];
    const target = name === undefined ? undefined : doc.components?.schemas?.[name];
    expect({ ref, resolves: target !== undefined }).toEqual({ ref, resolves: true });
    return dereference(doc, target);
  }
  return Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, dereference(doc, v)]));
}
type Documented = { headers?: Record<string, unknown>; content?: Record<string, { schema: TSchema }> };

/** Holds `res`, the answer of `route`, to the document; returns what was checked, for the caller's list. */
async function conforms(doc: Doc, route: RouteKey, res: Response): Promise<string> {
  const [method, path] = route.split(" ") as [string, string];
  const what = `${route} → ${res.status}`;
  const op = doc.paths[path.replace(/:(\w+)/g, "{$1}")]?.[method.toLowerCase()];
  const served = op?.responses[String(res.status)];
  const local = (routeDocs[route].responses as Record<number, Documented>)[res.status];
  expect({ what, documented: served !== undefined && local !== undefined }).toEqual({ what, documented: true });
  for (const name of Object.keys(served!.headers ?? {}))
    expect({ what, header: name, present: res.headers.has(name) }).toEqual({ what, header: name, present: true });
  // On the wire Bun drops a HEAD answer's body; app.handle keeps it.
  if (method === "HEAD") return what;
  if (!served!.content) {
    expect({ what, body: await res.text() }).toEqual({ what, body: "" });
    return what;
  }
  const [mediaType] = Object.keys(served!.content) as [string];
  expect({ what, type: res.headers.get("content-type")?.split(";")[0] }).toEqual({ what, type: mediaType });
  const schema = local!.content![mediaType]!.schema;
  // The schema checked here is the one the document serves, its named schemas resolved.
  expect(JSON.parse(JSON.stringify(schema))).toEqual(dereference(doc, served!.content[mediaType]!.schema));
  if (mediaType !== "application/json") {
    if (res.body) await res.body.cancel();
    return what;
  }
  const body: unknown = await res.json();
  expect({ what, errors: [...Value.Errors(schema, body)].map((e) => `${e.path}: ${e.message}`) }).toEqual({
    what,
    errors: [],
  });
  return what;
}

const post = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body: typeof body === "string" ? body : JSON.stringify(body),
});
let n = 0;
const ev = (extra: Partial<EventInput> = {}): EventInput => ({
  mode: "live",
  source: "bot",
  type: "ORDER",
  subtype: "BUY_FILLED",
  body: `openapi ${++n} ${crypto.randomUUID()}`,
  ...extra,
});

describe("real answers validate against the served OpenAPI document", () => {
  test("events, state, health, readiness, metrics and the error answers (401 with its challenge, 400, 409, 413, 415)", async () => {
    const t = fullApp({ remote: false });
    const doc = (await (await t.handle("/docs/json")).json()) as Doc;
    const key = ev({ idempotency_key: "openapi-key" });
    const checked = [
      await conforms(doc, "POST /local/events", await t.handle("/local/events", post(key))),
      await conforms(doc, "POST /local/events", await t.handle("/local/events", post(key))),
      await conforms(
        doc,
        "POST /local/events",
        await t.handle("/local/events", post([ev(), ev({ mode: "paper", symbol: "AAPL", meta: { q: 1 } })])),
      ),
      await conforms(doc, "POST /local/events", await t.handle("/local/events", post({ ...key, body: "another" }))),
      await conforms(doc, "POST /local/events", await t.handle("/local/events", post("{"))),
      await conforms(doc, "POST /local/events", await t.handle("/local/events", post(ev({ body: "x".repeat(5000) })))),
      await conforms(
        doc,
        "POST /local/events",
        await t.handle("/local/events", { ...post(ev()), headers: { ...auth, "content-type": "text/plain" } }),
      ),
      await conforms(
        doc,
        "POST /local/events",
        await t.handle("/local/events", post(ev(), { authorization: "Bearer wrong" })),
      ),
      await conforms(doc, "GET /local/events", await t.handle("/local/events?mode=live&since_seq=0")),
      await conforms(doc, "GET /local/events", await t.handle("/local/events?mode=nope")),
      await conforms(
        doc,
        "GET /local/events",
        await t.handle("/local/events?mode=live", { headers: { authorization: "" } }),
      ),
      await conforms(doc, "GET /local/state", await t.handle("/local/state?mode=live")),
      await conforms(
        doc,
        "POST /local/state",
        await t.handle(
          "/local/state",
          post({ mode: "live", cash: 1000, holdings: { AAPL: 3 }, positions: [], extra: "kept" }),
        ),
      ),
      await conforms(doc, "GET /local/state", await t.handle("/local/state?mode=live")),
      await conforms(doc, "POST /local/state", await t.handle("/local/state", post({ cash: 1 }))),
      await conforms(doc, "GET /health", await t.handle("/health")),
      await conforms(doc, "GET /ready", await t.handle("/ready")),
      await conforms(doc, "GET /metrics", await t.handle("/metrics")),
    ];
    expect(checked.map((c) => c.split(" → ")[1])).toEqual([
      "201",
      "200",
      "201",
      "409",
      "400",
      "413",
      "415",
      "401",
      "200",
      "400",
      "401",
      "200",
      "201",
      "200",
      "400",
      "200",
      "200",
      "200",
    ]);
    t.store.db.close();
    await conforms(doc, "GET /health", await t.handle("/health"));
  });

  test("the quarantine routes: list, one entry, retry, and their 400/404", async () => {
    const t = fullApp({ remote: false });
    const doc = (await (await t.handle("/docs/json")).json()) as Doc;
    await t.store.append([ev(), ev()]);
    const [a, b] = t.store.unflushed("live", 2);
    if (!a || !b) throw new Error("expected two unflushed events");
    t.quarantine.add([
      {
        event: a,
        reason: "rejected by remote: /body too long",
        errors: [{ path: "/body", message: "too long" }],
        remoteStatus: 200,
      },
    ]);
    t.quarantine.add([{ event: b, reason: "poison" }]);
    const checked = [
      await conforms(doc, "GET /local/quarantine", await t.handle("/local/quarantine?mode=live")),
      await conforms(doc, "GET /local/quarantine", await t.handle("/local/quarantine?mode=live&limit=0")),
      await conforms(doc, "GET /local/quarantine/:id", await t.handle(`/local/quarantine/${a.id}`)),
      await conforms(doc, "GET /local/quarantine/:id", await t.handle("/local/quarantine/NOT-A-UUID")),
      await conforms(
        doc,
        "POST /local/quarantine/retry",
        await t.handle("/local/quarantine/retry", post({ mode: "live", ids: [b.id] })),
      ),
      await conforms(
        doc,
        "POST /local/quarantine/retry",
        await t.handle("/local/quarantine/retry", post({ mode: "live", ids: [] })),
      ),
      await conforms(doc, "GET /local/quarantine/:id", await t.handle(`/local/quarantine/${b.id}`)),
    ];
    expect(checked.map((c) => c.split(" → ")[1])).toEqual(["200", "400", "200", "400", "200", "400", "404"]);
  });

  test("the operator routes without a remote: status, history, flush's 409 no_remote and 400", async () => {
    const t = fullApp({ remote: false });
    const doc = (await (await t.handle("/docs/json")).json()) as Doc;
    await t.store.append([ev()]);
    t.history.sample();
    const checked = [
      await conforms(doc, "GET /local/status", await t.handle("/local/status")),
      await conforms(doc, "GET /local/history", await t.handle("/local/history?mode=live")),
      await conforms(doc, "GET /local/history", await t.handle("/local/history")),
      await conforms(doc, "POST /local/flush", await t.handle("/local/flush", { method: "POST" })),
      await conforms(doc, "POST /local/flush", await t.handle("/local/flush?wait=maybe", { method: "POST" })),
      await conforms(doc, "GET /local/status", await t.handle("/local/status", { headers: { authorization: "" } })),
    ];
    expect(checked.map((c) => c.split(" → ")[1])).toEqual(["200", "200", "400", "409", "400", "401"]);
  });

  test("the operator routes with a remote: flush 202 and 200 (wait=true), status and health with the flusher's figures", async () => {
    const t = fullApp({ remote: true });
    const doc = (await (await t.handle("/docs/json")).json()) as Doc;
    await t.store.append([ev(), ev({ mode: "paper" })]);
    const checked = [
      await conforms(doc, "POST /local/flush", await t.handle("/local/flush?mode=live", { method: "POST" })),
      await conforms(doc, "POST /local/flush", await t.handle("/local/flush?wait=true", { method: "POST" })),
      await conforms(doc, "GET /local/status", await t.handle("/local/status")),
      await conforms(doc, "GET /health", await t.handle("/health")),
      await conforms(doc, "GET /local/state", await t.handle("/local/state?mode=paper")),
    ];
    expect(checked.map((c) => c.split(" → ")[1])).toEqual(["202", "200", "200", "200", "200"]);
  }, 30_000);

  test("the stream: 200 text/event-stream, its 400 and 401, 503 at the open-stream cap; HEAD's 200 and 400", async () => {
    const t = fullApp({ remote: false });
    const doc = (await (await t.handle("/docs/json")).json()) as Doc;
    const open = await t.handle("/local/stream?mode=live");
    const checked = [
      await conforms(doc, "GET /local/stream", await t.handle("/local/stream?mode=live")),
      await conforms(doc, "GET /local/stream", await t.handle("/local/stream?mode=nope")),
      await conforms(
        doc,
        "GET /local/stream",
        await t.handle("/local/stream?mode=live", { headers: { authorization: "" } }),
      ),
      await conforms(doc, "HEAD /local/stream", await t.handle("/local/stream?mode=live", { method: "HEAD" })),
      await conforms(
        doc,
        "HEAD /local/stream",
        await t.handle("/local/stream?mode=live&heartbeat=loud", { method: "HEAD" }),
      ),
    ];
    expect(open.status).toBe(200);
    expect(checked.map((c) => c.split(" → ")[1])).toEqual(["503", "400", "401", "200", "400"]);
    await conforms(doc, "GET /local/stream", open);
  });
});
