// POST /local/state (the bot's latest snapshot: cash, holdings, positions)
// and GET /local/state (that snapshot with the mode's last seq and health).
import { Elysia } from "elysia";
import { checkStateInput } from "../../domain/state.ts";
import type { HealthSource } from "../../ops/health.ts";
import type { EventStore } from "../../store/store.ts";
import { readJsonBody } from "../body.ts";
import { routeDocs } from "../openapi.ts";
import { modeOnlyQuery } from "../query.ts";
import { json } from "../responses.ts";

export interface StateRoutesOptions {
  store: EventStore;
  health: HealthSource;
  maxRequestBytes: number;
}

export function stateRoutes(options: StateRoutesOptions) {
  const { store } = options;
  return new Elysia({ name: "zoe-state" })
    .post(
      "/local/state",
      async ({ request }) => {
        const body = await readJsonBody(request, options.maxRequestBytes, "state snapshot");
        const { mode, state } = checkStateInput(body);
        const snapshot = store.putState(mode, state);
        return json({ mode, ts: snapshot.ts, last_seq: store.lastSeq(mode) }, 201);
      },
      { parse: "none", detail: routeDocs["POST /local/state"] },
    )
    .get(
      "/local/state",
      ({ request }) => {
        const mode = modeOnlyQuery(new URL(request.url));
        const snapshot = store.latestState(mode);
        const state = snapshot?.state ?? {};
        return json({
          ...state,
          mode,
          cash: state.cash ?? null,
          holdings: state.holdings ?? null,
          positions: state.positions ?? null,
          state_ts: snapshot?.ts ?? null,
          last_seq: store.lastSeq(mode),
          health: options.health.health(mode),
        });
      },
      { detail: routeDocs["GET /local/state"] },
    );
}
