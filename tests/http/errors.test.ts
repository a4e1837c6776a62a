// The error answers of src/http/errors.ts on the real app: a wrong method on a
// known path is a 405 that lists the methods in Allow, an unknown path a 404,
// both in the service's one error shape, and neither tells an unauthorised
// caller which paths exist.
import { afterEach, describe, expect, test } from "bun:test";
import { Elysia } from "elysia";
import { methodTable } from "../../src/http/methods.ts";
import { type TestApp, testApp } from "../helpers/app.ts";

let t: TestApp | null = null;
afterEach(async () => {
  await t?.close();
  t = null;
});

const TOKEN = "errors-test-token-0123456789";
const bearer = { authorization: `Bearer ${TOKEN}` };

async function errorBody(res: Response) {
  expect(res.headers.get("content-type")).toContain("application/json");
  const body = (await res.json()) as { error: { code: string; message: string; details: unknown } };
  expect(Object.keys(body)).toEqual(["error"]);
  expect(Object.keys(body.error).sort()).toEqual(["code", "details", "message"]);
  return body.error;
}

describe("methodTable()", () => {
  test("lists a path's methods in a fixed order, HEAD with every GET and OPTIONS always; null for an unknown path", () => {
    const allow = methodTable([
      { method: "OPTIONS", path: "/*" },
      { method: "POST", path: "/local/events" },
      { method: "GET", path: "/local/events" },
      { method: "GET", path: "/local/quarantine/:id" },
      { method: "POST", path: "/local/flush" },
      { method: "GET", path: "/files/*" },
    ]);
    expect(allow("/local/events")).toBe("GET, HEAD, POST, OPTIONS");
    expect(allow("/local/events/")).toBe("GET, HEAD, POST, OPTIONS");
    expect(allow("/local/flush")).toBe("POST, OPTIONS");
    expect(allow("/local/quarantine/0190")).toBe("GET, HEAD, OPTIONS");
    expect(allow("/files/a/b")).toBe("GET, HEAD, OPTIONS");
    expect(allow("/local/quarantine")).toBeNull();
    expect(allow("/local/quarantine/a/b")).toBeNull();
    expect(allow("/local/eventsx")).toBeNull();
    expect(allow("/")).toBeNull();
  });
});

describe("405 Method Not Allowed", () => {
  test("a wrong method on each known path answers 405 method_not_allowed with the path's methods in Allow", async () => {
    t = testApp({
      apiToken: TOKEN,
      plugins: [new Elysia().post("/local/flush", () => ({})).get("/local/quarantine/:id", () => ({}))],
    });
    const cases: [string, string, string][] = [
      ["PUT", "/local/events", "GET, HEAD, POST, OPTIONS"],
      ["DELETE", "/local/events/", "GET, HEAD, POST, OPTIONS"],
      ["PATCH", "/local/state", "GET, HEAD, POST, OPTIONS"],
      ["POST", "/local/stream?mode=live", "GET, HEAD, OPTIONS"],
      ["POST", "/health", "GET, HEAD, OPTIONS"],
      ["POST", "/local/quarantine", "GET, HEAD, OPTIONS"],
      // GET /local/quarantine/:id serves this path too (and refuses "retry" as an id).
      ["PUT", "/local/quarantine/retry", "GET, HEAD, POST, OPTIONS"],
      ["GET", "/local/flush", "POST, OPTIONS"],
      ["HEAD", "/local/flush", "POST, OPTIONS"],
      ["DELETE", "/local/quarantine/0190a8b2-0000-7000-8000-000000000001", "GET, HEAD, OPTIONS"],
      ["PUT", "/docs/json", "GET, HEAD, OPTIONS"],
    ];
    for (const [method, path, allow] of cases) {
      const res = await t.handle(path, { method, headers: bearer });
      expect({ route: `${method} ${path}`, status: res.status, allow: res.headers.get("allow") }).toEqual({
        route: `${method} ${path}`,
        status: 405,
        allow,
      });
      if (method === "HEAD") continue;
      const error = await errorBody(res);
      expect(error.code).toBe("method_not_allowed");
      expect(error.message).toBe(
        `Method ${method} is not allowed on ${new URL(path, "http://x").pathname}: use ${allow}`,
      );
      expect(error.details).toBeNull();
    }
  });

  test("an unknown path stays a 404 without Allow", async () => {
    t = testApp({ apiToken: TOKEN });
    for (const method of ["GET", "PUT"]) {
      const res = await t.handle("/local/nothing", { method, headers: bearer });
      expect(res.status).toBe(404);
      expect(res.headers.get("allow")).toBeNull();
      expect((await errorBody(res)).code).toBe("not_found");
    }
  });

  test("the token comes first: without it a wrong method on a guarded path is the same 401 as an unknown path, so nothing tells which paths exist", async () => {
    t = testApp({ apiToken: TOKEN });
    const known = await t.handle("/local/events", { method: "PUT" });
    const unknown = await t.handle("/local/nothing", { method: "PUT" });
    expect([known.status, unknown.status]).toEqual([401, 401]);
    expect(known.headers.get("allow")).toBeNull();
    expect(await errorBody(known)).toEqual(await errorBody(unknown));
    // The public docs answer 405 to anyone: the document they serve lists every path anyway.
    expect((await t.handle("/docs", { method: "POST" })).status).toBe(405);
  });

  test("the preflight and HEAD of a GET route are served, not refused", async () => {
    t = testApp({ apiToken: TOKEN });
    const pre = await t.handle("/local/state", {
      method: "OPTIONS",
      headers: { origin: "http://localhost:5173", "access-control-request-method": "POST" },
    });
    expect(pre.status).toBe(204);
    expect((await t.handle(`/local/events?mode=live&token=${TOKEN}`, { method: "HEAD" })).status).toBe(200);
  });
});
