// Vary: Origin on every answer of the app (src/http/cors.ts): whether an
// answer carries Access-Control-Allow-Origin depends on the request's Origin,
// so successes, errors, 404/405, preflights, streams and handlers that bring
// their own Vary all say so.
import { afterEach, describe, expect, test } from "bun:test";
import { Elysia } from "elysia";
import { refusedOriginLog } from "../../src/http/cors.ts";
import { manualClock } from "../../src/lib/clock.ts";
import { event, postJson, type TestApp, testApp } from "../helpers/app.ts";

let t: TestApp | null = null;
afterEach(async () => {
  await t?.close();
  t = null;
});

const TOKEN = "cors-test-token-0123456789";
const ALLOWED = "http://localhost:5173";
const varies = (vary: string | null) => (vary ?? "").split(",").some((v) => v.trim().toLowerCase() === "origin");

test("every answer says Vary: Origin, from an allowed origin, another origin or none: successes, errors, 401, 404, 405, preflights, SSE, own Vary headers", async () => {
  const ownVary = new Elysia().get("/local/gzip", () => new Response("x", { headers: { vary: "accept-encoding" } }));
  t = testApp({ apiToken: TOKEN, plugins: [ownVary] });
  const bearer = { authorization: `Bearer ${TOKEN}` };
  const requests: [string, RequestInit][] = [
    ["/local/events?mode=live", { headers: bearer }],
    ["/local/events?mode=nope", { headers: bearer }],
    ["/local/events?mode=live", {}],
    ["/local/events", postJson(event(), bearer)],
    ["/local/events", postJson("{", bearer)],
    ["/local/events", { method: "PUT", headers: bearer }],
    ["/local/nothing", { headers: bearer }],
    ["/local/events", { method: "OPTIONS", headers: { "access-control-request-method": "POST" } }],
    ["/local/stream?mode=live", { method: "HEAD", headers: bearer }],
    ["/local/gzip", { headers: bearer }],
    ["/docs/json", {}],
    ["/health", { headers: bearer }],
  ];
  const statuses: number[] = [];
  for (const origin of [ALLOWED, "http://evil.example", null]) {
    for (const [path, init] of requests) {
      const headers = { ...(init.headers as Record<string, string>), ...(origin ? { origin } : {}) };
      const res = await t.handle(path, { ...init, headers });
      if (origin === ALLOWED) statuses.push(res.status);
      expect({ origin, path, method: init.method ?? "GET", vary: varies(res.headers.get("vary")) }).toEqual({
        origin,
        path,
        method: init.method ?? "GET",
        vary: true,
      });
      if (path === "/local/gzip") expect(res.headers.get("vary")).toBe("accept-encoding, Origin");
    }
  }
  expect(statuses).toEqual([200, 400, 401, 201, 400, 405, 404, 204, 200, 200, 200, 200]);
  const stream = await t.handle(`/local/stream?mode=live&token=${TOKEN}`, { headers: { origin: ALLOWED } });
  expect(stream.status).toBe(200);
  expect(varies(stream.headers.get("vary"))).toBe(true);
  await stream.body!.cancel();
});

/** A logger that keeps what it is given. */
function recordingLogger() {
  const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  const at =
    (level: string) =>
    (msg: string, fields: Record<string, unknown> = {}) =>
      lines.push({ level, msg, fields });
  return { lines, logger: { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") } };
}

describe("a refused origin is logged", () => {
  test("a preflight, a read and a POST over the wire from a refused origin: one warning naming the origin and ZOE_CORS_ORIGINS", async () => {
    const { lines, logger } = recordingLogger();
    t = testApp({ logger });
    const url = t.listen();
    const origin = "http://localhost:4000";
    const preflight = await fetch(`${url}/local/events`, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
    });
    expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
    expect((await fetch(`${url}/local/events?mode=live`, { headers: { origin } })).status).toBe(200);
    const warnings = lines.filter((l) => l.level === "warn");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toContain("http://localhost:4000");
    expect(warnings[0]!.msg).toContain("ZOE_CORS_ORIGINS");
    expect(warnings[0]!.fields).toMatchObject({
      origin,
      setting: "ZOE_CORS_ORIGINS",
      method: "OPTIONS",
      path: "/local/events",
      allowed: ["http://localhost:5173"],
    });
    // The ingest hot path (Bun's router, not Elysia) reports its refusals too.
    const other = "http://10.0.0.7:3000";
    const posted = await fetch(`${url}/local/events`, {
      ...postJson(event()),
      headers: { ...postJson(event()).headers, origin: other },
    });
    expect(posted.status).toBe(201);
    expect(posted.headers.get("access-control-allow-origin")).toBeNull();
    expect(lines.filter((l) => l.level === "warn").map((l) => l.fields.origin)).toEqual([origin, other]);
  });

  test("allowed origins, no Origin at all and the service's own origin (same-origin POSTs carry one) log nothing", async () => {
    const { lines, logger } = recordingLogger();
    t = testApp({ logger });
    const url = t.listen();
    for (const headers of [{ origin: ALLOWED }, {}, { origin: url }] as Record<string, string>[]) {
      expect((await fetch(`${url}/local/events?mode=live`, { headers })).status).toBe(200);
      const posted = await fetch(`${url}/local/events`, {
        ...postJson(event()),
        headers: { "content-type": "application/json", ...headers },
      });
      expect(posted.status).toBe(201);
    }
    expect(lines.filter((l) => l.level === "warn")).toEqual([]);
  });

  test("rate-limited: once per origin per interval, and a flood of invented origins is counted, not logged", () => {
    const { lines, logger } = recordingLogger();
    const clock = manualClock("2026-03-09T14:30:00Z");
    const refused = refusedOriginLog({ allowed: [ALLOWED], logger, clock, intervalMs: 60_000, maxOrigins: 2 });
    const from = (origin: string) => refused(new Request("http://127.0.0.1:8765/local/state?mode=live"), origin);
    for (let i = 0; i < 50; i++) from("http://a.example");
    from("http://b.example");
    expect(lines.map((l) => l.fields.origin)).toEqual(["http://a.example", "http://b.example"]);
    for (let i = 0; i < 1000; i++) from(`http://x${i}.example`);
    expect(lines).toHaveLength(2);
    clock.advance(60_000);
    from("http://a.example");
    expect(lines).toHaveLength(3);
    expect(lines[2]!.fields).toMatchObject({ origin: "http://a.example", other_origins_not_logged: 1000 });
    from("http://c.example");
    expect(lines.map((l) => l.fields.origin).slice(3)).toEqual(["http://c.example"]);
    expect(lines[3]!.fields.other_origins_not_logged).toBeUndefined();
  });
});
