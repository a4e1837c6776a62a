// Serves the dashboard from the service: GET / is the page (one document,
// gzip when the browser accepts it) and GET /dashboard/config.json its
// config, for tools. The bundle is built once, on first need, from source.
import { Elysia } from "elysia";
import type { DashboardAssets } from "./build.ts";
import { renderInlinePage } from "./build.ts";
import type { DashboardConfig } from "./config.ts";

export interface DashboardPluginOptions {
  config: DashboardConfig;
  /** Builds (or loads) the page's JS and CSS; called once, its promise cached. */
  assets: () => Promise<DashboardAssets>;
}

interface Rendered {
  html: Uint8Array<ArrayBuffer>;
  gzip: Uint8Array<ArrayBuffer>;
  etag: string;
  csp: string;
}

export function dashboardPlugin(options: DashboardPluginOptions) {
  let rendered: Promise<Rendered> | null = null;
  const render = () => {
    rendered ??= options.assets().then((assets) => {
      const page = renderInlinePage(assets, options.config);
      const html = new TextEncoder().encode(page.html);
      return {
        html,
        csp: page.csp,
        gzip: Bun.gzipSync(html) as Uint8Array<ArrayBuffer>,
        etag: `"${Bun.hash(html).toString(36)}"`,
      };
    });
    // A failed build is retried on the next request instead of cached forever.
    rendered.catch(() => (rendered = null));
    return rendered;
  };

  return new Elysia({ name: "zoe-dashboard" })
    .get(
      "/",
      async ({ request }) => {
        const page = await render();
        const headers: Record<string, string> = {
          "content-type": "text/html; charset=utf-8",
          "cache-control": "no-cache",
          etag: page.etag,
          vary: "accept-encoding",
          "x-content-type-options": "nosniff",
          "referrer-policy": "no-referrer",
          "content-security-policy": page.csp,
        };
        if (request.headers.get("if-none-match") === page.etag) return new Response(null, { status: 304, headers });
        if (/\bgzip\b/.test(request.headers.get("accept-encoding") ?? "")) {
          return new Response(page.gzip, { headers: { ...headers, "content-encoding": "gzip" } });
        }
        return new Response(page.html, { headers });
        // A page for people, like /docs itself: not part of the API's description.
      },
      { detail: { hide: true } },
    )
    .get(
      "/dashboard/config.json",
      () =>
        new Response(JSON.stringify(options.config), {
          headers: { "content-type": "application/json", "cache-control": "no-cache" },
        }),
    );
}
