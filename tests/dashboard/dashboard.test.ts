import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createApp } from "../../src/http/app.ts";
import { systemClock } from "../../src/lib/clock.ts";
import { buildDashboardAssets, type DashboardAssets, renderInlinePage } from "../../src/dashboard/build.ts";
import { type DashboardConfig, loadDashboardConfig } from "../../src/dashboard/config.ts";
import { dashboardPlugin } from "../../src/dashboard/plugin.ts";
import { createHealth } from "../../src/ops/health.ts";
import { createHub } from "../../src/stream/hub.ts";
import { silentLogger } from "../../src/lib/log.ts";
import { openStore } from "../../src/store/store.ts";
import { tempDir } from "../helpers/tmp.ts";

const jwt = (payload: object) =>
  [{ alg: "HS256", typ: "JWT" }, payload].map((p) => Buffer.from(JSON.stringify(p)).toString("base64url")).join(".") +
  ".c2lnbmF0dXJl";
const ANON_KEY = jwt({ role: "anon", marker: "anon-key-marker" });
const SERVICE_KEY = jwt({ role: "service_role", marker: "service-role-marker-7f3a9c" });
const SERVICE_MARKER = SERVICE_KEY.split(".")[1]!;

const env = {
  SUPABASE_URL: "http://127.0.0.1:54321",
  SUPABASE_ANON_KEY: ANON_KEY,
  SUPABASE_SERVICE_ROLE_KEY: SERVICE_KEY,
};

let assets: DashboardAssets;
beforeAll(async () => {
  assets = await buildDashboardAssets();
});

describe("loadDashboardConfig()", () => {
  test("exposes the Supabase URL and anon key, and defaults to the page's own origin", () => {
    expect(loadDashboardConfig(env)).toEqual({
      localApiUrl: "",
      supabaseUrl: "http://127.0.0.1:54321",
      supabaseAnonKey: ANON_KEY,
      pollIntervalMs: 30_000,
      realtime: false,
      maxEvents: 200,
    });
    expect(loadDashboardConfig({}, { localApiUrl: "http://localhost:8765" })).toMatchObject({
      localApiUrl: "http://localhost:8765",
      supabaseUrl: null,
      supabaseAnonKey: null,
    });
    expect(
      loadDashboardConfig({
        ZOE_DASHBOARD_LOCAL_API_URL: "http://192.168.1.20:8765/",
        ZOE_DASHBOARD_POLL_MS: "5000",
        ZOE_DASHBOARD_REALTIME: "true",
      }),
    ).toMatchObject({
      localApiUrl: "http://192.168.1.20:8765",
      pollIntervalMs: 5000,
      realtime: true,
    });
  });

  test("refuses a service-role key given as the anon key", () => {
    expect(() => loadDashboardConfig({ ...env, SUPABASE_ANON_KEY: SERVICE_KEY })).toThrow(
      /SUPABASE_ANON_KEY: is a service-role/,
    );
    expect(() =>
      loadDashboardConfig({
        SUPABASE_URL: env.SUPABASE_URL,
        SUPABASE_ANON_KEY: "opaque",
        SUPABASE_SERVICE_ROLE_KEY: "opaque",
      }),
    ).toThrow(/service-role/);
    expect(() => loadDashboardConfig({ SUPABASE_ANON_KEY: "sb_secret_abc" })).toThrow(/service-role/);
  });

  test("names the variable of a bad value", () => {
    expect(() => loadDashboardConfig({ ZOE_DASHBOARD_LOCAL_API_URL: "box:8765" })).toThrow(
      /ZOE_DASHBOARD_LOCAL_API_URL/,
    );
    expect(() => loadDashboardConfig({ ZOE_DASHBOARD_POLL_MS: "fast" })).toThrow(/ZOE_DASHBOARD_POLL_MS/);
  });
});

describe("the dashboard bundle", () => {
  test("never contains the service-role key, even when the build environment has it", async () => {
    process.env.SUPABASE_SERVICE_ROLE_KEY = SERVICE_KEY;
    try {
      const built = await buildDashboardAssets();
      const page = renderInlinePage(built, loadDashboardConfig(env)).html;
      for (const text of [built.js, built.css, page]) {
        expect(text).not.toContain(SERVICE_MARKER);
        expect(text).not.toContain("SUPABASE_SERVICE_ROLE_KEY");
      }
      expect(page).toContain(ANON_KEY);
    } finally {
      delete process.env.SUPABASE_SERVICE_ROLE_KEY;
    }
  });

  test("bun run build:dashboard writes static files with config.json and no service-role key", async () => {
    const dir = tempDir();
    try {
      const proc = Bun.spawn(["bun", "run", "build:dashboard", "--outdir", dir.path], {
        cwd: join(import.meta.dir, "..", ".."),
        env: {
          PATH: process.env.PATH ?? "",
          HOME: process.env.HOME ?? "/tmp",
          ...env,
          ZOE_DASHBOARD_LOCAL_API_URL: "http://192.168.1.20:8765",
        },
        stdout: "pipe",
        stderr: "pipe",
      });
      expect(await proc.exited).toBe(0);
      expect(readdirSync(dir.path).sort()).toEqual(["app.css", "app.js", "config.json", "index.html"]);
      for (const f of readdirSync(dir.path))
        expect(readFileSync(join(dir.path, f), "utf8")).not.toContain(SERVICE_MARKER);
      expect(JSON.parse(readFileSync(join(dir.path, "config.json"), "utf8"))).toMatchObject({
        localApiUrl: "http://192.168.1.20:8765",
        supabaseAnonKey: ANON_KEY,
      });
      expect(readFileSync(join(dir.path, "index.html"), "utf8")).toContain('<script type="module" src="app.js">');
    } finally {
      dir.cleanup();
    }
  });

  test("keeps inline config from closing its script element", () => {
    const config: DashboardConfig = {
      ...loadDashboardConfig({}),
      localApiUrl: "http://x</script><script>alert(1)</script>",
    };
    const page = renderInlinePage({ js: "", css: "" }, config).html;
    expect(page).not.toContain("</script><script>alert(1)");
  });
});

describe("dashboardPlugin()", () => {
  const config = loadDashboardConfig(env);
  const plugin = () => dashboardPlugin({ config, assets: async () => assets });

  test("serves the page at / with its config inline, gzip when accepted, 304 on a matching ETag", async () => {
    const app = plugin();
    const plain = await app.handle(new Request("http://localhost/"));
    expect(plain.status).toBe(200);
    expect(plain.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const html = await plain.text();
    expect(html).toContain('<div id="root"></div>');
    expect(html).toContain('id="zoe-dashboard-config"');
    expect(html).toContain(ANON_KEY);
    expect(html).not.toContain(SERVICE_MARKER);

    const zipped = await app.handle(new Request("http://localhost/", { headers: { "accept-encoding": "gzip, br" } }));
    expect(zipped.headers.get("content-encoding")).toBe("gzip");
    expect(new TextDecoder().decode(Bun.gunzipSync(new Uint8Array(await zipped.arrayBuffer())))).toBe(html);

    const again = await app.handle(
      new Request("http://localhost/", { headers: { "if-none-match": plain.headers.get("etag")! } }),
    );
    expect(again.status).toBe(304);
  });

  test("sends a Content-Security-Policy that allows only its own script and the configured APIs", async () => {
    const res = await plugin().handle(new Request("http://localhost/"));
    const csp = res.headers.get("content-security-policy")!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+'/);
    expect(csp).toContain("connect-src 'self' http://127.0.0.1:54321 ws://127.0.0.1:54321");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain("unsafe-inline");
  });

  test("serves /dashboard/config.json without the service-role key", async () => {
    const res = await plugin().handle(new Request("http://localhost/dashboard/config.json"));
    expect(await res.json()).toEqual(config);
  });

  test("retries a failed build on the next request", async () => {
    let calls = 0;
    const app = dashboardPlugin({
      config,
      assets: async () => {
        if (calls++ === 0) throw new Error("boom");
        return assets;
      },
    });
    expect((await app.handle(new Request("http://localhost/"))).status).toBe(500);
    expect((await app.handle(new Request("http://localhost/"))).status).toBe(200);
  });
});

describe("the service with the dashboard mounted", () => {
  const dir = tempDir();
  const store = openStore({ path: dir.file("zoe.db") });
  afterAll(() => {
    store.close();
    dir.cleanup();
  });
  const app = createApp({
    store,
    hub: createHub(),
    health: createHealth({ store, clock: systemClock, startedAt: Date.now() }),
    logger: silentLogger,
    apiToken: "a-long-enough-test-token",
    corsOrigins: ["http://localhost:5173"],
    maxRequestBytes: 1_048_576,
    sse: { heartbeatMs: 15_000, retryMs: 2000, maxBufferedBytes: 1 << 20, coalesceMs: 2 },
    plugins: [dashboardPlugin({ config: loadDashboardConfig(env), assets: async () => assets })],
  });

  test("serves the page without the API token, but the local API still needs it", async () => {
    expect((await app.handle(new Request("http://localhost/"))).status).toBe(200);
    expect((await app.handle(new Request("http://localhost/local/state?mode=paper"))).status).toBe(401);
    expect(
      (await app.handle(new Request("http://localhost/local/state?mode=paper&token=a-long-enough-test-token"))).status,
    ).toBe(200);
  });
});
