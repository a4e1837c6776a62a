// GET /health: liveness, with each mode's flush health. (GET /ready and
// GET /metrics, which need the operations wiring, are src/http/operations.ts.)
import { Elysia } from "elysia";
import type { HealthSource } from "../../ops/health.ts";
import type { EventStore } from "../../store/store.ts";
import { routeDocs } from "../openapi.ts";
import { onlyParams } from "../query.ts";
import { json } from "../responses.ts";

export interface HealthRoutesOptions {
  store: EventStore;
  health: HealthSource;
}

export function healthRoutes(options: HealthRoutesOptions) {
  const { store } = options;
  return new Elysia({ name: "zoe-health" }).get(
    "/health",
    ({ request }) => {
      onlyParams(new URL(request.url), ["token"]);
      if (!store.ping()) return json({ status: "unavailable", db: "unavailable", modes: null }, 503);
      const modes = { paper: options.health.health("paper"), live: options.health.health("live") };
      return json({ status: "ok", db: "ok", modes });
    },
    { detail: routeDocs["GET /health"] },
  );
}
