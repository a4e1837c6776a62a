// GET /docs (the API reference page) and GET /docs/json (the OpenAPI
// document), generated from the routes' own schemas and details. Public:
// the auth guard lets /docs through.
//
// @elysiajs/openapi is imported on the first request to either route, not at
// start-up: loading it costs 15–25 ms before /health could answer, for pages
// an operator opens now and then. The routes are this plugin's own, and the
// document is @elysiajs/openapi's toOpenAPISchema() of the mounted app
// merged with our documentation, as its openapi() plugin does it; the page is
// the one that plugin renders.
import { Elysia } from "elysia";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { apiReferences, securitySchemes, servers, withNamedSchemas } from "../openapi.ts";

const OPENAPI_VERSION = "3.1.2";

let cachedVersion: string | null = null;
/** package.json's version, read when the first routes are built (src/ may not import files outside it). */
function packageVersion(): string {
  if (cachedVersion !== null) return cachedVersion;
  let found = "unknown";
  try {
    const pkg = JSON.parse(readFileSync(join(import.meta.dir, "..", "..", "..", "package.json"), "utf8"));
    if (typeof pkg.version === "string") found = pkg.version;
  } catch {
    // A broken package.json does not take the docs down.
  }
  cachedVersion = found;
  return found;
}

const describeApi = (version: string) => ({
  info: {
    title: "zoe-local",
    description:
      "Local-first event store for the Zoe trading bot. Writes need `Authorization: Bearer <token>` when ZOE_API_TOKEN is set; reads take the header or `?token=`. " +
      "Every error is `{error:{code,message,details}}`; a method a known path does not serve is 405 `method_not_allowed` with `Allow` (after the token check); every answer says `Vary: Origin`.",
    // The API changes with the package: a generated client names the release it was built from.
    version,
  },
  servers,
  // Writes by default; each operation states its own (reads also take ?token=).
  security: [{ bearerToken: [] }],
  components: { securitySchemes },
});

type OpenApiModule = typeof import("@elysiajs/openapi");
let loaded: Promise<OpenApiModule> | null = null;
const openapiModule = () => (loaded ??= import("@elysiajs/openapi"));

export function docsRoutes() {
  const app = new Elysia({ name: "zoe-local/docs" });
  const documentation = describeApi(packageVersion());
  let page: Promise<{ html: string; type: string }> | null = null;
  let cached: { routes: number; doc: unknown } | null = null;
  return app
    .get(
      "/docs",
      async () => {
        page ??= openapiModule().then(async ({ openapi }) => {
          const rendered = await openapi({ path: "/docs", documentation }).handle(new Request("http://localhost/docs"));
          return {
            html: await rendered.text(),
            type: rendered.headers.get("content-type") ?? "text/html; charset=utf8",
          };
        });
        const { html, type } = await page;
        return new Response(html, { headers: { "content-type": type } });
      },
      { detail: { hide: true } },
    )
    .get(
      "/docs/json",
      async () => {
        const { toOpenAPISchema } = await openapiModule();
        if (cached && cached.routes === app.routes.length) return cached.doc;
        const { paths, components } = toOpenAPISchema(app, undefined, apiReferences, undefined, OPENAPI_VERSION);
        const doc = withNamedSchemas({
          ...documentation,
          openapi: OPENAPI_VERSION,
          paths: { ...paths },
          components: { ...documentation.components, schemas: { ...components.schemas } },
        });
        cached = { routes: app.routes.length, doc };
        return doc;
      },
      { detail: { hide: true } },
    );
}
