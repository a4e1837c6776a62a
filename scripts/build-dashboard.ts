// `bun run build:dashboard [--outdir dir]`: the dashboard as static files
// (index.html, app.js, app.css, config.json) for hosting anywhere. config.json
// is written from env — SUPABASE_URL, SUPABASE_ANON_KEY,
// ZOE_DASHBOARD_LOCAL_API_URL (default http://localhost:8765),
// ZOE_DASHBOARD_POLL_MS, ZOE_DASHBOARD_REALTIME, ZOE_DASHBOARD_MAX_EVENTS — and
// can be edited after the build. The service-role key is never read.
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { buildDashboardAssets, renderStaticPage } from "../src/dashboard/build.ts";
import { loadDashboardConfig } from "../src/dashboard/config.ts";

const { values } = parseArgs({ args: process.argv.slice(2), options: { outdir: { type: "string" } } });
const outdir = resolve(values.outdir ?? join(import.meta.dir, "..", "dist", "dashboard"));

let config: ReturnType<typeof loadDashboardConfig>;
try {
  config = loadDashboardConfig(process.env, { localApiUrl: "http://localhost:8765" });
} catch (error) {
  console.error(`build:dashboard: ${(error as Error).message}`);
  process.exit(2);
}
const assets = await buildDashboardAssets();
mkdirSync(outdir, { recursive: true });
writeFileSync(join(outdir, "index.html"), renderStaticPage());
writeFileSync(join(outdir, "app.js"), assets.js);
writeFileSync(join(outdir, "app.css"), assets.css);
writeFileSync(join(outdir, "config.json"), `${JSON.stringify(config, null, 2)}\n`);
console.log(`dashboard built to ${outdir} (app.js ${(assets.js.length / 1024).toFixed(0)} KiB)`);
console.log(`local API: ${config.localApiUrl}; Supabase: ${config.supabaseUrl ?? "not configured"}`);
