// The Host header over the wire (fetch() normalises Host, so these speak raw
// HTTP over TCP): no Host is served, a malformed one is a JSON 400 that never
// shows Bun's error page or the token, and without a token only loopback
// names are served (DNS rebinding).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { serveApp } from "../../src/http/app.ts";
import { rawExchange } from "../fuzz/wire.ts";
import { opsAppsClosedAfterEach, parseMetrics } from "../helpers/ops.ts";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { tempDir } from "../helpers/tmp.ts";

const TOKEN = "host-token-0123456789abcdef";

/** Sends one raw request and splits the answer into status, lower-case headers and body. */
async function raw(port: number, head: string, body = "") {
  const { response } = await rawExchange(port, [`${head}\r\n\r\n${body}`]);
  const at = response.indexOf("\r\n\r\n");
  const lines = response.slice(0, at).split("\r\n");
  const headers = new Map(
    lines.slice(1).map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]),
  );
  return { status: Number(lines[0]!.split(" ")[1]), headers, body: response.slice(at + 4), response };
}

const get = (path: string, host: string | null, extra = "") =>
  host === null ? `GET ${path} HTTP/1.0${extra}` : `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close${extra}`;

function post(host: string, body: string, extra = "") {
  return [
    `POST /local/events HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}${extra}`,
    body,
  ] as const;
}

const killSwitch = (body: string) =>
  JSON.stringify({ mode: "live", source: "web", type: "RISK", subtype: "KILL_SWITCH", body });

describe("with a token", () => {
  let svc: ServiceProcess;
  const dir = tempDir("zoe-host-");
  beforeAll(async () => {
    svc = await startService({ dbPath: dir.file("zoe.db"), env: { ZOE_API_TOKEN: TOKEN, ZOE_LOG_LEVEL: "debug" } });
  });
  afterAll(async () => {
    await svc.kill("SIGTERM");
    dir.cleanup();
  });

  test("serveApp() answers GET /health over HTTP/1.0 without Host with 200 JSON, as a health check sends it", async () => {
    const res = await raw(svc.port, get(`/health?token=${TOKEN}`, null));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(JSON.parse(res.body)).toMatchObject({ status: "ok", db: "ok" });
    // An empty Host (a target without authority) is the same.
    expect((await raw(svc.port, get(`/ready?token=${TOKEN}`, ""))).status).toBe(200);
    // The token is still asked for.
    expect((await raw(svc.port, get("/health", null))).status).toBe(401);
  });

  test("an event posted without Host over HTTP/1.0 is stored, and a bad one gets the usual 400", async () => {
    const body = killSwitch("no host");
    const res = await raw(
      svc.port,
      `POST /local/events HTTP/1.0\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}`,
      body,
    );
    expect(res.status).toBe(201);
    const bad = await raw(
      svc.port,
      `POST /local/events HTTP/1.0\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 2`,
      "{}",
    );
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error.code).toBe("invalid_request");
  });

  test("a malformed Host is a 400 invalid_request in JSON on every path, never Bun's HTML error page, and the token shows nowhere", async () => {
    for (const host of ["a?", "x y", "localhost:99999", "a:b", "[::1", "a/b", "a@b"]) {
      for (const path of [`/health?token=${TOKEN}`, `/local/events?mode=live&token=${TOKEN}`, "/docs", "/nope"]) {
        const res = await raw(svc.port, get(path, host));
        expect(res.status, `${host} ${path}`).toBe(400);
        expect(res.headers.get("content-type")).toBe("application/json");
        expect(JSON.parse(res.body).error).toMatchObject({ code: "invalid_request", details: [{ path: "Host" }] });
        expect(res.response).not.toContain(TOKEN);
        expect(res.response.toLowerCase()).not.toContain("<html");
      }
      const [head, body] = post(host, killSwitch(`malformed ${host}`), `\r\nAuthorization: Bearer ${TOKEN}`);
      const res = await raw(svc.port, head, body);
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body).error.code).toBe("invalid_request");
    }
    const stored = (await (
      await fetch(`${svc.url}/local/events?mode=live&limit=1000`, { headers: { authorization: `Bearer ${TOKEN}` } })
    ).json()) as { body: string }[];
    expect(stored.filter((e) => e.body.startsWith("malformed"))).toEqual([]);
    // Logged at debug level and on stderr alike: nothing carries the token.
    expect(svc.output()).not.toContain(TOKEN);
    expect(svc.output().toLowerCase()).not.toContain("<html");
  });

  test("with a token and no ZOE_ALLOWED_HOSTS any Host name is served: the token is the guard", async () => {
    const res = await raw(
      svc.port,
      get("/local/events?mode=live", `bot-box.example:${svc.port}`, `\r\nAuthorization: Bearer ${TOKEN}`),
    );
    expect(res.status).toBe(200);
    expect((await raw(svc.port, get("/local/events?mode=live", "attacker.example"))).status).toBe(401);
  });
});

describe("without a token (DNS rebinding)", () => {
  let svc: ServiceProcess;
  const dir = tempDir("zoe-host-");
  beforeAll(async () => {
    svc = await startService({ dbPath: dir.file("zoe.db") });
  });
  afterAll(async () => {
    await svc.kill("SIGTERM");
    dir.cleanup();
  });

  test("a POST with Host attacker.example:PORT is refused with 421 host_not_allowed and nothing is stored; reads are refused too", async () => {
    const [head, body] = post(`attacker.example:${svc.port}`, killSwitch("rebound"));
    const res = await raw(svc.port, head, body);
    expect(res.status).toBe(421);
    expect(res.headers.get("content-type")).toBe("application/json");
    const error = JSON.parse(res.body).error;
    expect(error.code).toBe("host_not_allowed");
    expect(error.message).toContain("ZOE_ALLOWED_HOSTS");
    for (const path of [
      "/local/events?mode=live",
      "/local/state?mode=live",
      "/health",
      "/local/stream?mode=live",
      "/",
    ]) {
      expect((await raw(svc.port, get(path, `attacker.example:${svc.port}`))).status, path).toBe(421);
    }
    // Upper case and a trailing dot are the same name.
    expect((await raw(svc.port, get("/health", "ATTACKER.example."))).status).toBe(421);
    const stored = (await (await fetch(`${svc.url}/local/events?mode=live`)).json()) as unknown[];
    expect(stored).toEqual([]);
  });

  test("loopback names are served with or without the port, and a Host-less request too", async () => {
    for (const host of [
      "127.0.0.1",
      `127.0.0.1:${svc.port}`,
      "localhost",
      `LocalHost:${svc.port}`,
      "[::1]",
      `[::1]:${svc.port}`,
    ]) {
      const [head, body] = post(host, killSwitch(`via ${host}`));
      expect((await raw(svc.port, head, body)).status, host).toBe(201);
    }
    expect((await raw(svc.port, get("/health", null))).status).toBe(200);
  });
});

test("ZOE_ALLOWED_HOSTS adds names to the loopback ones, with a token or without", async () => {
  const dir = tempDir("zoe-host-");
  const open = await startService({
    dbPath: dir.file("a.db"),
    env: { ZOE_ALLOWED_HOSTS: "bot-box.local, 192.168.1.20" },
  });
  const guarded = await startService({
    dbPath: dir.file("b.db"),
    env: { ZOE_API_TOKEN: TOKEN, ZOE_ALLOWED_HOSTS: "bot-box.local" },
  });
  try {
    expect((await raw(open.port, get("/health", "bot-box.local:8765"))).status).toBe(200);
    expect((await raw(open.port, get("/health", "192.168.1.20"))).status).toBe(200);
    expect((await raw(open.port, get("/health", "localhost"))).status).toBe(200);
    expect((await raw(open.port, get("/health", "other.local"))).status).toBe(421);
    const auth = `\r\nAuthorization: Bearer ${TOKEN}`;
    expect((await raw(guarded.port, get("/health", "bot-box.local", auth))).status).toBe(200);
    expect((await raw(guarded.port, get("/health", "127.0.0.1", auth))).status).toBe(200);
    const refused = await raw(guarded.port, get("/health", "attacker.example", auth));
    expect(refused.status).toBe(421);
    expect(JSON.parse(refused.body).error.message).toContain("not in ZOE_ALLOWED_HOSTS");
  } finally {
    await open.kill("SIGTERM");
    await guarded.kill("SIGTERM");
    dir.cleanup();
  }
});

const setup = opsAppsClosedAfterEach();

test("serveApp() answers what escapes every handler with a JSON 500 counted in zoe_http_server_errors_total, never Bun's page", async () => {
  const t = setup();
  const server = serveApp(t.app, { hostname: "127.0.0.1", port: 0 });
  try {
    const app = t.app as { fetch: unknown };
    const fetchOf = app.fetch;
    app.fetch = () => {
      throw new Error(`boom at http://localhost/health?token=${TOKEN}`);
    };
    const res = await raw(server.port!, get(`/health?token=${TOKEN}`, "localhost"));
    app.fetch = fetchOf;
    expect(res.status).toBe(500);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(JSON.parse(res.body)).toEqual({ error: { code: "internal", message: "Internal error", details: null } });
    expect(res.response).not.toContain(TOKEN);
    const m = parseMetrics(await t.ops.metrics.text());
    expect(m.get('zoe_http_server_errors_total{code="internal"}')).toBe(1);
  } finally {
    await server.stop(true);
  }
});
