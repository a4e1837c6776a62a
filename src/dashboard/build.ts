// Bundles the dashboard page with Bun's bundler (TSX + CSS, minified, for
// browsers) and renders its HTML: with the JS, CSS and config inline when the
// service serves it (one public document at `/`), or as separate files for a
// static build. Only the page's own code and its libraries go in the bundle;
// the config is added at render time and holds public values only.
import { join } from "node:path";
import type { DashboardConfig } from "./config.ts";

export interface DashboardAssets {
  js: string;
  css: string;
}

const ENTRY = join(import.meta.dir, "page", "main.tsx");

export class DashboardBuildError extends Error {
  readonly code = "dashboard_build_failed";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DashboardBuildError";
  }
}

export async function buildDashboardAssets(options: { minify?: boolean } = {}): Promise<DashboardAssets> {
  const result = await Bun.build({
    entrypoints: [ENTRY],
    target: "browser",
    format: "esm",
    minify: options.minify ?? true,
    // Nothing from the build environment may leak into the bundle.
    env: "disable",
    define: { "process.env.NODE_ENV": JSON.stringify("production") },
  });
  if (!result.success) {
    throw new DashboardBuildError(`Cannot build the dashboard from ${ENTRY}: ${result.logs.map(String).join("; ")}`, {
      cause: result.logs,
    });
  }
  let js = "";
  let css = "";
  for (const out of result.outputs) {
    if (out.path.endsWith(".js")) js += await out.text();
    else if (out.path.endsWith(".css")) css += await out.text();
  }
  return { js, css };
}

/** JSON safe inside <script>: no `</script>`, no HTML comment openers. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/>/g, "\\u003e").replace(/&/g, "\\u0026");
}

const HEAD = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>Zoe dashboard</title>`;

export interface InlinePage {
  html: string;
  /** Content-Security-Policy for `html`: only its own script and style, connections to the configured APIs. */
  csp: string;
}

function sha256(text: string): string {
  return `'sha256-${new Bun.CryptoHasher("sha256").update(text).digest("base64")}'`;
}

/** Origins the page may connect to: the local API and Supabase (HTTP and Realtime's WebSocket). */
function connectSources(config: DashboardConfig): string[] {
  const sources = ["'self'"];
  for (const url of [config.localApiUrl, config.supabaseUrl]) {
    const origin = url && URL.canParse(url) ? new URL(url).origin : null;
    if (!origin || origin === "null") continue;
    sources.push(origin);
    if (url === config.supabaseUrl) sources.push(origin.replace(/^http/, "ws"));
  }
  return sources;
}

/** The page as one document: JS, CSS and config inline. */
export function renderInlinePage(assets: DashboardAssets, config: DashboardConfig): InlinePage {
  const js = assets.js.replace(/<\/(script)/gi, "<\\/$1");
  const css = assets.css.replace(/<\/(style)/gi, "<\\/$1");
  const csp = [
    "default-src 'none'",
    `script-src ${sha256(js)}`,
    `style-src ${sha256(css)}`,
    `connect-src ${connectSources(config).join(" ")}`,
    "img-src data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
  const html = `${HEAD}
<style>${css}</style>
</head>
<body>
<div id="root"></div>
<script id="zoe-dashboard-config" type="application/json">${scriptJson(config)}</script>
<script type="module">${js}</script>
</body>
</html>
`;
  return { html, csp };
}

/** The page for static hosting: loads app.js, app.css and (at run time) config.json beside it. */
export function renderStaticPage(): string {
  return `${HEAD}
<link rel="stylesheet" href="app.css">
</head>
<body>
<div id="root"></div>
<script type="module" src="app.js"></script>
</body>
</html>
`;
}
