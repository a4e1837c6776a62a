// Who may talk to the service: the API token on every non-public route
// (writes by header only), compared in constant time; CORS that reflects only
// the configured origins and never with credentials; no open bind without a token.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { tokensEqual } from "../../src/http/auth.ts";
import { event, postJson, testApp } from "../helpers/app.ts";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { tempDir } from "../helpers/tmp.ts";

const TOKEN = "access-token-0123456789abcdef";
const MAIN = join(import.meta.dir, "..", "..", "src", "main.ts");
const PUBLIC = new Set(["/", "/docs", "/docs/json"]);

let svc: ServiceProcess;
const dir = tempDir("zoe-access-");
beforeAll(async () => {
  svc = await startService({
    dbPath: dir.file("zoe.db"),
    env: { ZOE_API_TOKEN: TOKEN, ZOE_CORS_ORIGINS: "http://localhost:5173,http://192.168.1.20:8765" },
  });
});
afterAll(async () => {
  await svc.kill("SIGTERM");
  dir.cleanup();
});

/** Every route the running service documents, plus the undocumented dashboard config. */
async function routes(): Promise<[string, string][]> {
  const doc = (await (await fetch(`${svc.url}/docs/json`)).json()) as {
    paths: Record<string, Record<string, unknown>>;
  };
  const list: [string, string][] = [["GET", "/dashboard/config.json"]];
  for (const [path, ops] of Object.entries(doc.paths))
    for (const method of Object.keys(ops)) list.push([method.toUpperCase(), path]);
  return list;
}

const query = (path: string) => (path.startsWith("/local/") && path !== "/local/quarantine/retry" ? "?mode=live" : "");

describe("the API token", () => {
  test("every non-public route of the real service answers 401 without the token, with a wrong one, and writes with ?token=", async () => {
    const list = await routes();
    expect(list.map(([m, p]) => `${m} ${p}`)).toEqual(
      expect.arrayContaining([
        "POST /local/events",
        "POST /local/state",
        "GET /local/stream",
        "POST /local/quarantine/retry",
      ]),
    );
    const marker = "WRONG-token-marker-0123456789";
    for (const [method, path] of list) {
      if (PUBLIC.has(path)) continue;
      const body = method === "POST" ? JSON.stringify({ mode: "live" }) : undefined;
      const headers = { "content-type": "application/json" };
      const url = `${svc.url}${path}${query(path)}`;
      const attempts = [
        await fetch(url, { method, headers, body }),
        await fetch(url, { method, headers: { ...headers, authorization: `Bearer ${marker}` }, body }),
        await fetch(url, { method, headers: { ...headers, authorization: `Basic ${btoa(`zoe:${TOKEN}`)}` }, body }),
      ];
      if (method === "POST")
        attempts.push(await fetch(`${url}${url.includes("?") ? "&" : "?"}token=${TOKEN}`, { method, headers, body }));
      for (const res of attempts) {
        const text = method === "HEAD" ? "" : await res.text();
        expect({ route: `${method} ${path}`, status: res.status }).toEqual({ route: `${method} ${path}`, status: 401 });
        // The answer never echoes what was presented.
        expect(text).not.toContain(marker);
        expect(text).not.toContain(TOKEN);
      }
    }
  });

  test("with the token every route is reachable (reads by header or ?token=, writes by header)", async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    expect((await fetch(`${svc.url}/local/events`, postJson(event("live"), auth))).status).toBe(201);
    expect((await fetch(`${svc.url}/local/events?mode=live&token=${TOKEN}`)).status).toBe(200);
    expect((await fetch(`${svc.url}/local/state?mode=live`, { headers: auth })).status).toBe(200);
    const stream = await fetch(`${svc.url}/local/stream?mode=live&token=${TOKEN}`);
    expect(stream.status).toBe(200);
    await stream.body!.cancel();
  });

  test("tokensEqual() compares fixed-length SHA-256 digests with crypto.timingSafeEqual, never the strings", () => {
    const source = readFileSync(join(import.meta.dir, "..", "..", "src", "http", "auth.ts"), "utf8");
    expect(source).toMatch(/import \{[^}]*\btimingSafeEqual\b[^}]*\} from "node:crypto"/);
    expect(source).toMatch(/timingSafeEqual\(digest\(given\), digest\(expected\)\)/);
    expect(source).toMatch(/CryptoHasher\("sha256"\)/);
    // No token is ever compared with == / === / startsWith / includes.
    expect(source).not.toMatch(/(given|expected|token)\s*[!=]==?\s*(?!null\b)[\w"'`]/);
    expect(source).not.toMatch(/(given|expected|token)\.(startsWith|endsWith|includes|localeCompare)\(/);
    // timingSafeEqual throws on buffers of different lengths: any lengths work, so the inputs are digests.
    for (const other of ["", "a", TOKEN.slice(0, -1), `${TOKEN}x`, "x".repeat(100_000), "é".repeat(50)]) {
      expect(tokensEqual(other, TOKEN)).toBe(false);
    }
    expect(tokensEqual(TOKEN, TOKEN)).toBe(true);
  });

  test("tokensEqual() takes about as long whether a guess is wrong at its first or its last character (coarse)", () => {
    const secret = "s".repeat(4096);
    const early = `x${secret.slice(1)}`;
    const late = `${secret.slice(0, -1)}x`;
    const perCall = (guess: string) => {
      const t0 = Bun.nanoseconds();
      for (let i = 0; i < 200; i++) tokensEqual(guess, secret);
      return (Bun.nanoseconds() - t0) / 200;
    };
    // Interleaved batches, medians: a string compare would differ about 4000-fold here; noise on a shared box is far below 2x.
    const a: number[] = [];
    const b: number[] = [];
    for (let i = 0; i < 40; i++) {
      a.push(perCall(early));
      b.push(perCall(late));
    }
    const median = (xs: number[]) => xs.sort((x, y) => x - y)[xs.length >> 1]!;
    const ratio = median(a) / median(b);
    expect(ratio).toBeGreaterThan(0.5);
    expect(ratio).toBeLessThan(2);
  });
});

describe("CORS", () => {
  const ALLOWED = ["http://localhost:5173", "http://192.168.1.20:8765"];
  const TRICKY = [
    "http://evil.example",
    "null",
    "*",
    "",
    "constructor",
    "__proto__",
    "toString",
    "hasOwnProperty",
    "http://localhost:5173/",
    "HTTP://LOCALHOST:5173",
    "https://localhost:5173",
    "http://localhost:51730",
    "http://localhost:5173.evil.example",
    "http://evil.localhost:5173",
    "http://localhost:5173@evil.example",
    "http://localhost:5173, http://evil.example",
    "localhost:5173",
    "x://localhost:5173",
    "http://192.168.1.20:8765.evil",
    " http://localhost:5173",
  ];
  const origin = fc.oneof(
    fc.constantFrom(...TRICKY),
    fc.constantFrom(...ALLOWED),
    fc.webUrl().map((u) => new URL(u).origin),
    fc.constantFrom(...ALLOWED).chain((a) => fc.string({ minLength: 1, maxLength: 6 }).map((s) => a + s)),
  );
  const request = fc.constantFrom<[string, string, boolean]>(
    ["GET", "/local/events?mode=live", false],
    ["POST", "/local/events", false],
    ["GET", "/local/state?mode=live", true],
    ["GET", "/health", false],
    ["GET", "/nowhere", false],
    ["POST", "/local/events", true],
    ["OPTIONS", "/local/events", false],
    ["OPTIONS", "/local/stream", false],
  );

  test("only a configured origin is reflected, exactly; never *, never with credentials; preflight and simple requests (fuzzed)", async () => {
    const t = testApp({ apiToken: TOKEN, corsOrigins: ALLOWED });
    try {
      await fc.assert(
        fc.asyncProperty(origin, request, fc.boolean(), async (from, [method, path, withToken], credentialsMode) => {
          const headers: Record<string, string> = { origin: from };
          if (withToken) headers.authorization = `Bearer ${TOKEN}`;
          if (credentialsMode) headers.cookie = "session=1";
          if (method === "OPTIONS") {
            headers["access-control-request-method"] = "POST";
            headers["access-control-request-headers"] = "authorization,content-type";
          }
          const init: RequestInit = { method, headers };
          if (method === "POST") Object.assign(init, postJson(event("live"), headers));
          const res = await t.handle(path, init);
          await res.body?.cancel();
          const allow = res.headers.get("access-control-allow-origin");
          expect(allow).not.toBe("*");
          expect(res.headers.get("access-control-allow-credentials")).toBeNull();
          // Headers trim surrounding whitespace: the origin the server sees is trimmed.
          if (ALLOWED.includes(from.trim())) expect(allow).toBe(from.trim());
          else expect(allow).toBeNull();
          if (allow !== null) expect(res.headers.get("vary")).toContain("Origin");
        }),
        { seed: 4242, numRuns: 400 },
      );
    } finally {
      await t.close();
    }
  });

  test("the real service (its configured origins) behaves the same over HTTP, streams included", async () => {
    for (const from of [...TRICKY.filter((o) => o.trim() !== "" && !o.includes(",")), "http://192.168.1.20:8765"]) {
      const responses = [
        await fetch(`${svc.url}/local/events?mode=live`, {
          headers: { origin: from, authorization: `Bearer ${TOKEN}` },
        }),
        await fetch(`${svc.url}/local/events`, {
          method: "OPTIONS",
          headers: { origin: from, "access-control-request-method": "POST" },
        }),
        await fetch(`${svc.url}/local/stream?mode=live&token=${TOKEN}`, { headers: { origin: from } }),
        await fetch(`${svc.url}/local/events`, postJson(event("live"), { origin: from })),
      ];
      for (const res of responses) {
        await res.body?.cancel();
        expect({ from, allow: res.headers.get("access-control-allow-origin") }).toEqual({
          from,
          allow: ALLOWED.includes(from.trim()) ? from.trim() : null,
        });
        expect(res.headers.get("access-control-allow-credentials")).toBeNull();
      }
    }
  });
});

describe("binding", () => {
  async function runToExit(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
    const proc = Bun.spawn(["bun", MAIN], {
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "/tmp",
        PORT: "0",
        ZOE_DB_PATH: dir.file("refused.db"),
        ...env,
      },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
    const [out, err, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    clearTimeout(timer);
    return { code, output: out + err };
  }

  for (const host of ["0.0.0.0", "::", "192.0.2.2", "0", "127.0.0.1.nip.io", "::ffff:127.0.0.1"]) {
    test(`HOST=${host} without ZOE_API_TOKEN: exit 2 naming HOST and ZOE_API_TOKEN, nothing listens`, async () => {
      const { code, output } = await runToExit({ HOST: host });
      expect(code).toBe(2);
      // A log line in the run's format (JSON here: stdout is a pipe), naming the variable.
      const refusal = JSON.parse(output.split("\n").find((l) => l.includes("refusing to start"))!);
      expect(refusal).toMatchObject({
        level: "error",
        variable: "HOST",
        msg: `refusing to start: HOST: binding to non-loopback address ${host} requires ZOE_API_TOKEN to be set`,
      });
      expect(output).not.toContain("listening");
    });
  }

  test("a non-loopback HOST with a short token is refused too; loopback needs none", async () => {
    const short = await runToExit({ HOST: "0.0.0.0", ZOE_API_TOKEN: "short" });
    expect(short.code).toBe(2);
    expect(short.output).toContain("ZOE_API_TOKEN: expected at least 16 characters");
    expect(short.output).not.toContain("short\n");
  });
});
