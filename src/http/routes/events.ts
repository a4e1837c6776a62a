// POST /local/events and GET /local/events. The POST route only calls the
// precompiled ingest handler (src/http/ingest.ts), the same function serveApp
// hands to Bun's router: app.handle() tests run what the wire runs.
import { Elysia } from "elysia";
import type { EventStore } from "../../store/store.ts";
import { routeDocs } from "../openapi.ts";
import { eventsQuery } from "../query.ts";
import { json } from "../responses.ts";

export interface EventRoutesOptions {
  store: EventStore;
  /** The precompiled POST /local/events handler (createIngest). */
  ingest: (request: Request) => Promise<Response>;
}

export function eventRoutes(options: EventRoutesOptions) {
  const { store, ingest } = options;
  return new Elysia({ name: "zoe-events" })
    .post("/local/events", ({ request }) => ingest(request), { parse: "none", detail: routeDocs["POST /local/events"] })
    .get(
      "/local/events",
      ({ request }) => {
        const q = eventsQuery(new URL(request.url));
        return json(
          store.list(q.mode, { sinceSeq: q.sinceSeq, beforeSeq: q.beforeSeq, limit: q.limit, filter: q.filter }),
        );
      },
      { detail: routeDocs["GET /local/events"] },
    );
}
