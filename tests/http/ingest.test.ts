// POST /local/events runs a precompiled handler (src/http/ingest.ts): Bun's
// router calls it straight from the socket, and the Elysia route calls the
// same function. These tests hold the two entries to the same answers.
import { afterEach, expect, test } from "bun:test";
import { testApp, type TestApp } from "../helpers/app.ts";
import { opsAppsClosedAfterEach, parseMetrics } from "../helpers/ops.ts";
import { serveApp } from "../../src/http/app.ts";

const TOKEN = "ingest-test-token-0123456789";
const apps: TestApp[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});
const opsApp = opsAppsClosedAfterEach();

const ev = (n: number, extra: Record<string, unknown> = {}) => ({
  mode: "live",
  source: "bot",
  type: "ORDER",
  subtype: "BUY_FILLED",
  body: `fill ${n}`,
  id: `01900000-0000-7000-8000-${String(n).padStart(12, "0")}`,
  idempotency_key: `fill-${n}`,
  ts: "2026-03-02T14:30:00.000Z",
  meta: { n, ключ: "värde 😀" },
  ...extra,
});

interface Case {
  name: string;
  path?: string;
  headers?: Record<string, string>;
  body: string;
}

const json = { "content-type": "application/json" };
const auth = { ...json, authorization: `Bearer ${TOKEN}` };
const CASES: Case[] = [
  {
    name: "one event, allowed origin",
    headers: { ...auth, origin: "http://localhost:5173" },
    body: JSON.stringify(ev(1)),
  },
  { name: "the same event again", headers: auth, body: JSON.stringify(ev(1)) },
  { name: "its key with another body", headers: auth, body: JSON.stringify(ev(1, { body: "other" })) },
  { name: "a batch", headers: { ...auth, origin: "http://evil.example" }, body: JSON.stringify([ev(2), ev(3)]) },
  { name: "a batch with a repeat inside", headers: auth, body: JSON.stringify([ev(4), ev(4)]) },
  { name: "an event without body", headers: auth, body: JSON.stringify({ ...ev(5), body: undefined }) },
  { name: "an unknown field", headers: auth, body: JSON.stringify({ ...ev(6), extra: 1 }) },
  { name: "malformed JSON", headers: { ...auth, origin: "http://localhost:5173" }, body: '{"mode":' },
  { name: "an empty array", headers: auth, body: "[]" },
  {
    name: "too deep",
    headers: auth,
    body: JSON.stringify({ ...ev(7), meta: JSON.parse(`{"a":${"[".repeat(70)}${"]".repeat(70)}}`) }),
  },
  {
    name: "a number out of range",
    headers: auth,
    body: `{"mode":"live","source":"s","type":"t","subtype":"x","body":"b","meta":{"x":1e400}}`,
  },
  {
    name: "an integer beyond 2^53",
    headers: auth,
    body: `{"mode":"live","source":"s","type":"t","subtype":"x","body":"b","meta":{"order":12345678901234567890}}`,
  },
  {
    name: "text/plain",
    headers: { "content-type": "text/plain", authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(ev(8)),
  },
  { name: "no token", headers: { ...json, origin: "http://localhost:5173" }, body: JSON.stringify(ev(9)) },
  {
    name: "a wrong token",
    headers: { ...json, authorization: "Bearer wrong-token-wrong-token" },
    body: JSON.stringify(ev(9)),
  },
  { name: "a body over the limit", headers: auth, body: JSON.stringify({ ...ev(10), body: "x".repeat(70_000) }) },
  { name: "the loose path", path: "/local/events/", headers: auth, body: JSON.stringify(ev(11)) },
  { name: "a query string", path: "/local/events?x=1", headers: auth, body: JSON.stringify(ev(12)) },
];

const comparable = async (res: Response) => ({
  status: res.status,
  headers: [...res.headers].filter(([k]) => k !== "date" && k !== "content-length").sort(),
  body: await res.text(),
});

test("the wire (Bun's router → precompiled handler) answers POST /local/events exactly as app.handle does: status, headers and body, case by case", async () => {
  const wire = testApp({ apiToken: TOKEN, maxRequestBytes: 65_536 });
  const routed = testApp({ apiToken: TOKEN, maxRequestBytes: 65_536 });
  apps.push(wire, routed);
  const url = wire.listen();
  for (const c of CASES) {
    // The wire always declares the length; a Request built in-process does only when told.
    const init = {
      method: "POST",
      headers: { ...(c.headers ?? auth), "content-length": String(Buffer.byteLength(c.body)) },
      body: c.body,
    };
    const a = await comparable(await fetch(`${url}${c.path ?? "/local/events"}`, init));
    const b = await comparable(await routed.handle(c.path ?? "/local/events", init));
    expect({ case: c.name, ...a }).toEqual({ case: c.name, ...b });
  }
  // The stores agree too: same events, same seqs.
  expect(wire.store.list("live", { sinceSeq: 0, limit: 100 })).toEqual(
    routed.store.list("live", { sinceSeq: 0, limit: 100 }),
  );
  expect(wire.store.lastSeq("live")).toBe(6); // 1, 2, 3, 4 (once), 11, 12
});

test("on the wire the hooks still run: refusals by the bounded store and invalid requests are counted, acknowledged ones too", async () => {
  const t = opsApp({ limits: { maxBacklogEvents: 2, criticalReserveEvents: 0 } });
  const server = serveApp(t.app, { hostname: "127.0.0.1", port: 0 });
  try {
    const post = (body: unknown) =>
      fetch(`http://127.0.0.1:${server.port}/local/events`, {
        method: "POST",
        headers: json,
        body: JSON.stringify(body),
      });
    expect((await post([t.ev(), t.ev()])).status).toBe(201);
    const refused = await post(t.ev());
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("15");
    expect((await post({ mode: "nope" })).status).toBe(400);
    const m = parseMetrics(await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text());
    expect(m.get('zoe_ingest_requests_total{outcome="created"}')).toBe(1);
    expect(m.get('zoe_ingest_requests_total{outcome="refused"}')).toBe(1);
    expect(m.get('zoe_ingest_requests_total{outcome="invalid"}')).toBe(1);
    expect(m.get('zoe_ingest_events_total{mode="live",outcome="created"}')).toBe(2);
  } finally {
    await server.stop(true);
  }
});

test('on the wire the ingest fast path challenges a 401 (error="invalid_token" for a wrong token) and says Vary: Origin on every answer', async () => {
  const t = testApp({ apiToken: TOKEN });
  apps.push(t);
  const url = t.listen();
  const post = (headers: Record<string, string>, body = JSON.stringify(ev(1))) =>
    fetch(`${url}/local/events`, { method: "POST", headers: { ...json, ...headers }, body });
  const none = await post({ origin: "http://localhost:5173" });
  expect(none.status).toBe(401);
  expect(none.headers.get("www-authenticate")).toBe('Bearer realm="zoe-local"');
  expect(none.headers.get("access-control-allow-origin")).toBe("http://localhost:5173");
  const wrong = await post({ authorization: "Bearer wrong-token-wrong-token" });
  expect(wrong.status).toBe(401);
  expect(wrong.headers.get("www-authenticate")).toBe('Bearer realm="zoe-local", error="invalid_token"');
  const created = await post({ authorization: `Bearer ${TOKEN}` });
  const invalid = await post({ authorization: `Bearer ${TOKEN}`, origin: "http://evil.example" }, "[]");
  expect([created.status, invalid.status]).toEqual([201, 400]);
  for (const res of [none, wrong, created, invalid]) expect(res.headers.get("vary")).toBe("Origin");
  for (const res of [created, invalid]) expect(res.headers.get("www-authenticate")).toBeNull();
});

test("on the wire a wrong method on /local/events is 405 with Allow (after the token check, as on every route), not the fast path", async () => {
  const t = testApp({ apiToken: TOKEN });
  apps.push(t);
  const url = t.listen();
  for (const method of ["PUT", "DELETE", "PATCH"]) {
    const res = await fetch(`${url}/local/events`, {
      method,
      headers: { ...auth, origin: "http://localhost:5173" },
      body: JSON.stringify(ev(1)),
    });
    expect({ method, status: res.status, allow: res.headers.get("allow"), vary: res.headers.get("vary") }).toEqual({
      method,
      status: 405,
      allow: "GET, HEAD, POST, OPTIONS",
      vary: "Origin",
    });
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("method_not_allowed");
    const anonymous = await fetch(`${url}/local/events`, { method, headers: json, body: "{}" });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("allow")).toBeNull();
  }
  expect(t.store.lastSeq("live")).toBe(0);
});
