// Open SSE streams are capped in total (503) and per client address (429),
// both with Retry-After, so one host cannot take every socket of the box.
import { afterEach, describe, expect, test } from "bun:test";
import net from "node:net";
import { serveApp } from "../../src/http/app.ts";
import { loadConfig } from "../../src/config.ts";
import { createSseLimiter, TooManyStreamsError } from "../../src/stream/sse-limiter.ts";
import { type TestApp, testApp } from "../helpers/app.ts";
import { startService } from "../helpers/service.ts";
import { tempDir, waitFor } from "../helpers/tmp.ts";

function refusal(fn: () => unknown): TooManyStreamsError {
  try {
    fn();
  } catch (error) {
    if (error instanceof TooManyStreamsError) return error;
    throw error;
  }
  throw new Error("expected TooManyStreamsError");
}

describe("createSseLimiter()", () => {
  test("caps streams per address with a 429 and in total with a 503, both with Retry-After", () => {
    const limiter = createSseLimiter({ maxClients: 5, maxClientsPerAddress: 2 });
    limiter.acquire("192.168.1.7");
    limiter.acquire("192.168.1.7");
    const perAddress = refusal(() => limiter.acquire("192.168.1.7"));
    expect({ status: perAddress.status, code: perAddress.code, retryAfter: perAddress.retryAfter }).toEqual({
      status: 429,
      code: "too_many_streams",
      retryAfter: 5,
    });
    expect(perAddress.message).toContain("192.168.1.7");
    limiter.acquire("192.168.1.8");
    limiter.acquire("fe80::1");
    limiter.acquire(null);
    expect(limiter.open).toBe(5);
    const total = refusal(() => limiter.acquire("192.168.1.9"));
    expect({ status: total.status, retryAfter: total.retryAfter }).toEqual({ status: 503, retryAfter: 5 });
  });

  test("a release frees exactly one slot, once; a refused acquire takes none", () => {
    const limiter = createSseLimiter({ maxClients: 10, maxClientsPerAddress: 1 });
    const release = limiter.acquire("10.0.0.1");
    refusal(() => limiter.acquire("10.0.0.1"));
    expect(limiter.open).toBe(1);
    release();
    release();
    expect(limiter.open).toBe(0);
    const again = limiter.acquire("10.0.0.1");
    refusal(() => limiter.acquire("10.0.0.1"));
    again();
    expect(limiter.open).toBe(0);
  });

  test("loopback clients (the box itself, or a reverse proxy) are bound by the total only", () => {
    const limiter = createSseLimiter({ maxClients: 8, maxClientsPerAddress: 1 });
    for (const address of ["127.0.0.1", "127.0.0.1", "::1", "::1", "::ffff:127.0.0.1", "127.0.0.2", "127.0.0.1"])
      limiter.acquire(address);
    limiter.acquire(null);
    expect(refusal(() => limiter.acquire("127.0.0.1")).status).toBe(503);
  });

  test("an unknown address is never exempt: every stream without one shares one per-address count", () => {
    const limiter = createSseLimiter({ maxClients: 10, maxClientsPerAddress: 2 });
    limiter.acquire(null);
    limiter.acquire(null);
    const refused = refusal(() => limiter.acquire(null));
    expect(refused.status).toBe(429);
    expect(refused.message).toContain("unknown address");
    limiter.acquire("192.168.1.7");
    expect(limiter.open).toBe(3);
  });

  test("config: ZOE_SSE_MAX_CLIENTS (default 1000) and ZOE_SSE_MAX_CLIENTS_PER_IP (default 50)", () => {
    expect(loadConfig({}).sse).toMatchObject({ maxClients: 1000, maxClientsPerAddress: 50 });
    expect(loadConfig({ ZOE_SSE_MAX_CLIENTS: "20", ZOE_SSE_MAX_CLIENTS_PER_IP: "3" }).sse).toMatchObject({
      maxClients: 20,
      maxClientsPerAddress: 3,
    });
    expect(() => loadConfig({ ZOE_SSE_MAX_CLIENTS: "0" })).toThrow(/ZOE_SSE_MAX_CLIENTS/);
    expect(() => loadConfig({ ZOE_SSE_MAX_CLIENTS_PER_IP: "lots" })).toThrow(/ZOE_SSE_MAX_CLIENTS_PER_IP/);
  });
});

describe("GET /local/stream over HTTP", () => {
  let t: TestApp;
  const opened: AbortController[] = [];
  afterEach(async () => {
    for (const c of opened.splice(0)) c.abort();
    await t?.close();
  });

  async function open(base: string, path = "/local/stream?mode=live"): Promise<Response> {
    const abort = new AbortController();
    opened.push(abort);
    return await fetch(`${base}${path}`, { signal: abort.signal, headers: { origin: "http://localhost:5173" } });
  }

  test("past the total cap: 503 JSON with Retry-After (and CORS); closed streams free their slots", async () => {
    t = testApp({ sse: { maxClients: 3, maxClientsPerAddress: 1 } });
    const base = t.listen();
    const streams = [await open(base), await open(base), await open(base)];
    expect(streams.map((r) => r.status)).toEqual([200, 200, 200]);
    const refused = await open(base);
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("5");
    expect(refused.headers.get("access-control-allow-origin")).toBe("http://localhost:5173");
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("too_many_streams");
    // Bad requests and HEADs take no slot.
    expect((await open(base, "/local/stream?mode=nope")).status).toBe(400);
    expect((await fetch(`${base}/local/stream?mode=live`, { method: "HEAD" })).status).toBe(200);
    for (const c of opened.splice(0, 3)) c.abort();
    await waitFor(
      async () => {
        const r = await open(base);
        return r.status === 200;
      },
      5_000,
      "a freed slot",
    );
    expect((await open(base)).status).toBe(200);
    expect((await open(base)).status).toBe(200);
    expect((await open(base)).status).toBe(503);
  });

  // Traffic stays on loopback (the only addresses tests may use); with the
  // loopback exemption off, 127.0.0.1 is an ordinary client address.
  test("past the per-address cap: 429 for that address, read from the real socket", async () => {
    t = testApp({ sse: { maxClients: 100, maxClientsPerAddress: 2, exemptLoopback: false } });
    const server = serveApp(t.app, { hostname: "127.0.0.1", port: 0 });
    try {
      const base = `http://127.0.0.1:${server.port}`;
      expect([(await open(base)).status, (await open(base)).status]).toEqual([200, 200]);
      const refused = await open(base);
      expect(refused.status).toBe(429);
      expect(refused.headers.get("retry-after")).toBe("5");
      expect(((await refused.json()) as { error: { message: string } }).error.message).toContain("127.0.0.1");
      for (const c of opened.splice(0)) c.abort();
      await waitFor(async () => (await open(base)).status === 200, 5_000, "a slot freed by a closed stream");
    } finally {
      for (const c of opened.splice(0)) c.abort();
      await server.stop(true);
    }
  });

  // Host `x` is too short for Elysia's router, so serveApp rebuilds the
  // request; the cap must still see the socket's address (fetch normalises
  // Host, hence raw sockets). With a token set, any Host name is served (a LAN
  // host reaching the box by whatever name it knows).
  test("a short Host header does not hide the client's address: the 51st stream from one address gets 429", async () => {
    const token = "sse-limit-test-token-0123456789";
    t = testApp({ apiToken: token, sse: { maxClients: 1000, maxClientsPerAddress: 50, exemptLoopback: false } });
    const server = serveApp(t.app, { hostname: "127.0.0.1", port: 0 });
    const sockets: net.Socket[] = [];
    /** Opens a stream with `Host: x`; resolves with the answer's head, and a refusal's body too. */
    const rawStream = () =>
      new Promise<string>((resolve, reject) => {
        const socket = net.connect(server.port!, "127.0.0.1");
        sockets.push(socket);
        let text = "";
        socket.setEncoding("latin1");
        socket.on("connect", () =>
          socket.write(`GET /local/stream?mode=live HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`),
        );
        socket.on("data", (chunk: string) => {
          text += chunk;
          const end = text.indexOf("\r\n\r\n");
          if (end >= 0 && (text.startsWith("HTTP/1.1 200") || text.endsWith("}"))) resolve(text);
        });
        socket.on("error", reject);
        socket.on("close", () => resolve(text));
      });
    try {
      const heads: string[] = [];
      for (let i = 0; i < 50; i++) heads.push(await rawStream());
      expect(heads.filter((h) => h.startsWith("HTTP/1.1 200")).length).toBe(50);
      const refused = await rawStream();
      expect(refused).toStartWith("HTTP/1.1 429");
      expect(refused.toLowerCase()).toContain("retry-after: 5");
      // Counted under the socket's address, not as an unknown one.
      expect(refused).toContain("streams are open from 127.0.0.1");
    } finally {
      for (const s of sockets) s.destroy();
      await server.stop(true);
    }
  });
});

test("the service reads the caps from its environment", async () => {
  const dir = tempDir("zoe-sse-cap-");
  const svc = await startService({ dbPath: dir.file("zoe.db"), env: { ZOE_SSE_MAX_CLIENTS: "2" } });
  const aborts = [new AbortController(), new AbortController()];
  try {
    const statuses: number[] = [];
    for (const a of aborts)
      statuses.push((await fetch(`${svc.url}/local/stream?mode=paper`, { signal: a.signal })).status);
    const third = await fetch(`${svc.url}/local/stream?mode=paper`);
    statuses.push(third.status);
    expect(statuses).toEqual([200, 200, 503]);
    expect(third.headers.get("retry-after")).toBe("5");
  } finally {
    for (const a of aborts) a.abort();
    await svc.kill("SIGTERM");
    dir.cleanup();
  }
});
