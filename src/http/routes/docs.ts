// GET /docs (the API reference page) and GET /docs/json (the OpenAPI
// document), generated from the routes' own schemas and details. Public:
// the auth guard lets /docs through.
import { openapi } from "@elysiajs/openapi";
import { apiReferences, securitySchemes, servers } from "../openapi.ts";

export function docsRoutes() {
  return openapi({
    path: "/docs",
    references: apiReferences,
    documentation: {
      info: {
        title: "zoe-local",
        version: "1",
        description:
          "Local-first event store for the Zoe trading bot. Writes need `Authorization: Bearer <token>` when ZOE_API_TOKEN is set; reads take the header or `?token=`. " +
          "Every error is `{error:{code,message,details}}`; a method a known path does not serve is 405 `method_not_allowed` with `Allow` (after the token check); every answer says `Vary: Origin`.",
      },
      servers,
      // Writes by default; each operation states its own (reads also take ?token=).
      security: [{ bearerToken: [] }],
      components: { securitySchemes },
    },
  });
}
