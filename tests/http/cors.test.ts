// Vary: Origin on every answer of the app (src/http/cors.ts): whether an
// answer carries Access-Control-Allow-Origin depends on the request's Origin,
// so successes, errors, 404/405, preflights, streams and handlers that bring
// their own Vary all say so.
import { afterEach, expect, test } from "bun:test";
import { Elysia } from "elysia";
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
