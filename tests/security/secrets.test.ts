// No secret — the API token, the service-role key (right or wrong), the flush
// secret, the project's JWT secret — ever leaves the service through its logs,
// its answers (errors, health, metrics, quarantine), its database's flush log,
// or the dashboard it serves or builds. Exercised through full runs with
// successful and failing flushes, at debug level.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { signJwt } from "../../supabase/functions/_shared/jwt.ts";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { type SupabaseStack, startSupabaseStack } from "../helpers/supabase-stack.ts";
import { tempDir, waitFor } from "../helpers/tmp.ts";

const random = () => Buffer.from(crypto.getRandomValues(new Uint8Array(18))).toString("base64url");
const API_TOKEN = `api-${random()}`;
const FLUSH_SECRET = `flush-${random()}`;
let stack: SupabaseStack;
let wrongKey: string;
const dir = tempDir("zoe-secrets-");
/** Every answer the services gave during the test. */
const answers: string[] = [];

beforeAll(async () => {
  stack = await startSupabaseStack({ functionEnv: { ZOE_FLUSH_SECRET: FLUSH_SECRET } });
  wrongKey = await signJwt({ iss: "supabase-local", role: "service_role" }, `wrong-${random()}`);
});
afterAll(async () => {
  await stack?.stop();
  dir.cleanup();
});

/** The secret material: a JWT's header and payload are public, its signature is not. */
function secrets(): [string, string][] {
  return [
    ["API token", API_TOKEN],
    ["flush secret", FLUSH_SECRET],
    ["service-role key signature", stack.serviceKey.split(".")[2]!],
    ["JWT secret", stack.jwtSecret],
    ["wrong key signature", wrongKey.split(".")[2]!],
  ];
}

/** No secret, nor any 12-character piece of one (a truncated echo), appears in `text`. */
function expectNoSecret(where: string, text: string) {
  for (const [name, value] of secrets()) {
    let piece: string | null = null;
    for (let i = 0; i + 12 <= value.length && piece === null; i++)
      if (text.includes(value.slice(i, i + 12))) piece = value.slice(i, i + 12);
    expect({ where, leaks: piece === null ? null : `${name} (${piece})` }).toEqual({ where, leaks: null });
  }
}

function env(sink: "edge" | "direct", serviceKey: string): Record<string, string> {
  return {
    ZOE_API_TOKEN: API_TOKEN,
    ZOE_LOG_LEVEL: "debug",
    SUPABASE_URL: stack.url,
    SUPABASE_SERVICE_ROLE_KEY: serviceKey,
    SUPABASE_ANON_KEY: stack.anonKey,
    ZOE_FLUSH_SECRET: FLUSH_SECRET,
    ZOE_FLUSH_SINK: sink,
    ZOE_FLUSH_MARKET_HOURS: "false",
    ZOE_FLUSH_ACTIVE_MS: "3600000",
    ZOE_FLUSH_OFFHOURS_MS: "3600000",
    ZOE_FLUSH_BACKOFF_MIN_MS: "50",
    ZOE_FLUSH_BACKOFF_MAX_MS: "300",
    ZOE_FLUSH_TIMEOUT_MS: "2000",
    ZOE_FLUSH_STALL_MS: "3700000",
  };
}

async function call(
  svc: ServiceProcess,
  path: string,
  init: RequestInit & { token?: string | null } = {},
): Promise<Response> {
  const { token = API_TOKEN, headers, ...rest } = init;
  const res = await fetch(`${svc.url}${path}`, {
    ...rest,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
  });
  const text = await res.text();
  // The answer only (the path may carry ?token=, which the client itself sent).
  answers.push(`${init.method ?? "GET"} ${path.split("?")[0]} → ${res.status} ${[...res.headers].join(" ")} ${text}`);
  return new Response(text, { status: res.status, headers: res.headers });
}

let n = 0;
/** A critical event: the flusher sends it at once. */
const critical = () =>
  JSON.stringify({ mode: "live", source: "secrets", type: "ORDER", subtype: "BUY_FILLED", body: `fill ${++n}` });
const post = (svc: ServiceProcess, token: string | null = API_TOKEN) =>
  call(svc, "/local/events", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: critical(),
    token,
  });
const remoteCount = async () =>
  ((await stack.sql`select count(*)::int as n from zoe_events where source = 'secrets'`)[0] as { n: number }).n;

/** Every file of the service's database (db, WAL, SHM, lock), as latin1 text. */
function databaseText(prefix: string): string {
  return readdirSync(dir.path)
    .filter((f) => f.startsWith(prefix))
    .map((f) => readFileSync(join(dir.path, f)).toString("latin1"))
    .join("\n");
}

test("a full run with flushes that succeed, fail (function down) and recover leaks no secret", async () => {
  const svc = await startService({ dbPath: dir.file("good.db"), env: env("edge", stack.serviceKey) });
  try {
    expect((await post(svc)).status).toBe(201);
    await waitFor(async () => (await remoteCount()) === 1, 10_000, "the first flush");
    await stack.stopFunction();
    expect((await post(svc)).status).toBe(201);
    await waitFor(() => /flush attempt failed/.test(svc.output()), 10_000, "a failed flush in the log");
    for (const path of ["/health", "/ready", "/metrics", "/local/state?mode=live", "/local/quarantine?mode=live"])
      await call(svc, path);
    await stack.restartFunction();
    await waitFor(async () => (await remoteCount()) === 2, 15_000, "the flush after recovery");
    // Refused and odd requests: their answers must not echo what was presented.
    await post(svc, null);
    await post(svc, `${API_TOKEN}x`);
    await call(svc, `/local/events?token=${API_TOKEN}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: critical(),
      token: null,
    });
    await call(svc, `/nowhere?token=${API_TOKEN}`, { token: null });
    await call(svc, "/local/events", { method: "POST", headers: { "content-type": "application/json" }, body: "{" });
    // The dashboard page and its config, as served.
    await call(svc, "/", { headers: { "accept-encoding": "identity" }, token: null });
    await call(svc, `/dashboard/config.json?token=${API_TOKEN}`, { token: null });
    expect(answers.some((a) => a.startsWith("GET / → 200") && a.includes("<script"))).toBe(true);
  } finally {
    expect(await svc.kill("SIGTERM")).toBe(0);
  }
  expect(svc.output()).toContain('"level":"warn"');
  expectNoSecret("good service's stdout/stderr", svc.output());
  expectNoSecret("answers", answers.join("\n"));
  expectNoSecret("good service's database and WAL", databaseText("good.db"));
}, 60_000);

test("flushes refused for a wrong service-role key (edge function and direct sink) leak neither key", async () => {
  const edge = await startService({ dbPath: dir.file("edge.db"), env: env("edge", wrongKey) });
  const direct = await startService({ dbPath: dir.file("direct.db"), env: env("direct", wrongKey) });
  try {
    for (const svc of [edge, direct]) expect((await post(svc)).status).toBe(201);
    await waitFor(
      () => /flush attempt failed/.test(edge.output()) && /flush attempt failed/.test(direct.output()),
      10_000,
      "refused flushes in the logs",
    );
    for (const svc of [edge, direct]) await call(svc, "/health");
    expect(await remoteCount()).toBe(2);
  } finally {
    for (const svc of [edge, direct]) await svc.kill("SIGTERM");
  }
  expect(edge.output()).toMatch(/401/);
  expectNoSecret("edge-sink service output", edge.output());
  expectNoSecret("direct-sink service output", direct.output());
  expectNoSecret("answers", answers.join("\n"));
  expectNoSecret("databases", databaseText("edge.db") + databaseText("direct.db"));
}, 60_000);

test("bun run build:dashboard with every secret in its environment writes none of them", async () => {
  const out = tempDir("zoe-dash-build-");
  try {
    const proc = Bun.spawn(
      ["bun", join(import.meta.dir, "..", "..", "scripts", "build-dashboard.ts"), "--outdir", out.path],
      {
        env: {
          PATH: process.env.PATH ?? "",
          HOME: process.env.HOME ?? "/tmp",
          SUPABASE_URL: stack.url,
          SUPABASE_ANON_KEY: stack.anonKey,
          SUPABASE_SERVICE_ROLE_KEY: stack.serviceKey,
          SUPABASE_JWT_SECRET: stack.jwtSecret,
          ZOE_API_TOKEN: API_TOKEN,
          ZOE_FLUSH_SECRET: FLUSH_SECRET,
        },
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    const [stdout, stderr, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    expect(code).toBe(0);
    expectNoSecret("build output", stdout + stderr);
    const files = readdirSync(out.path);
    expect(files).toEqual(expect.arrayContaining(["index.html", "app.js", "config.json"]));
    for (const f of files) expectNoSecret(`dist/${f}`, readFileSync(join(out.path, f), "utf8"));
    // The anon key is public and meant to be there.
    expect(readFileSync(join(out.path, "config.json"), "utf8")).toContain(stack.anonKey);
  } finally {
    out.cleanup();
  }
}, 60_000);

test("a remote that echoes the credentials it was sent (a misbehaving proxy) does not get them into logs, answers or the flush log", async () => {
  const echo = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req) =>
      Response.json(
        {
          code: "PGRST301",
          message: `rejected credentials: ${req.headers.get("authorization")} / ${req.headers.get("apikey")} / ${req.headers.get("x-zoe-flush-secret")}`,
        },
        { status: 401 },
      ),
  });
  const url = `http://127.0.0.1:${echo.port}`;
  const services = await Promise.all(
    (["edge", "direct"] as const).map((sink) =>
      startService({ dbPath: dir.file(`echo-${sink}.db`), env: { ...env(sink, stack.serviceKey), SUPABASE_URL: url } }),
    ),
  );
  try {
    for (const svc of services) expect((await post(svc)).status).toBe(201);
    await waitFor(
      () => services.every((svc) => /flush attempt failed/.test(svc.output())),
      10_000,
      "refused flushes in the logs",
    );
    for (const svc of services)
      for (const path of ["/health", "/ready", "/metrics", "/local/state?mode=live"]) await call(svc, path);
  } finally {
    for (const svc of services) await svc.kill("SIGTERM");
    await echo.stop(true);
  }
  for (const svc of services) {
    expect(svc.output()).toContain("rejected credentials");
    expectNoSecret("echo service output", svc.output());
  }
  expectNoSecret("answers", answers.join("\n"));
  expectNoSecret("echo services' databases", databaseText("echo-"));
}, 30_000);
