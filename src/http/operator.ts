// Routes for the operator (and the `zoe-local` CLI, which uses nothing else):
// GET /local/status is everything `zoe-local status` prints in one answer,
// with the problems already named; POST /local/flush flushes now (and waits
// with ?wait=true); GET /local/history is the last hour the dashboard plots;
// GET /local/quarantine/:id is one quarantined event in full. The status
// report itself is src/ops/status.ts.
import { Elysia } from "elysia";
import { FlushFailedError, NoRemoteError, NotFoundError, ValidationError, ZoeError } from "../domain/errors.ts";
import { isUuid, MODES, type Mode } from "../../supabase/functions/_shared/event-schema.ts";
import type { Flusher } from "../flush/flusher.ts";
import type { QuarantineEntry } from "../flush/quarantine.ts";
import type { Clock } from "../lib/clock.ts";
import type { BuildInfo } from "../ops/build-info.ts";
import type { HealthSource } from "../ops/health.ts";
import type { History } from "../ops/history.ts";
import type { Readiness } from "../ops/readiness.ts";
import { createStatusReport } from "../ops/status.ts";
import type { Limits } from "../store/limits.ts";
import type { EventStore } from "../store/store.ts";
import type { Hub } from "../stream/hub.ts";
import { routeDocs } from "./openapi.ts";
import { modeOnlyQuery, modeQuery, onlyParams } from "./query.ts";

export interface OperatorRoutesOptions {
  store: EventStore;
  hub: Hub;
  health: HealthSource;
  readiness: Readiness;
  limits: Limits;
  history: History;
  build: BuildInfo;
  clock: Clock;
  startedAt: number;
  /** The flusher, once there is one; null: no remote configured. */
  flusher: () => Flusher | null;
  /** Where batches go, for display (no secret): e.g. "https://x.supabase.co/functions/v1/zoe-ingest (edge function)". */
  remoteTarget: string | null;
  /** One quarantined event by id (GET /local/quarantine/:id). */
  quarantine: { get(id: string): QuarantineEntry | null };
  /** How often a waiting flush checks for a failed attempt (default 100 ms). */
  flushPollMs?: number;
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

function flushQuery(url: URL): { modes: Mode[]; wait: boolean } {
  onlyParams(url, ["mode", "wait"]);
  const modes = url.searchParams.has("mode") ? [modeQuery(url)] : [...MODES];
  const raw = url.searchParams.get("wait");
  if (raw !== null && !["true", "false", "1", "0"].includes(raw)) {
    throw new ValidationError(`Invalid query parameter wait: expected true or false, got "${raw}"`, [
      { path: "?wait", message: "expected true or false" },
    ]);
  }
  return { modes, wait: raw === "true" || raw === "1" };
}

const failures = (flusher: Flusher, mode: Mode) => Number(flusher.status(mode).consecutive_failures ?? 0);

/**
 * Waits for the flushes asked for to end, or for one of their attempts to
 * fail (during an outage the flusher retries for as long as it takes, which
 * is no reason to keep the caller waiting without news).
 */
async function waitForFlush(
  flusher: Flusher,
  done: Promise<unknown>,
  before: Map<Mode, number>,
  signal: AbortSignal,
  pollMs: number,
): Promise<Mode | null> {
  let finished = false;
  void done.then(() => (finished = true));
  const failedMode = () => [...before].find(([m, n]) => failures(flusher, m) > n)?.[0] ?? null;
  while (!finished && !signal.aborted) {
    const failed = failedMode();
    if (failed) return failed;
    await Promise.race([done, Bun.sleep(pollMs)]);
  }
  // A refusal that is not retried (401, a missing table) ends the flush at once: still a failure.
  return failedMode();
}

export function operatorRoutes(options: OperatorRoutesOptions) {
  const { store, hub, health, readiness, limits, history, build, clock } = options;
  const pollMs = options.flushPollMs ?? 100;

  const status = createStatusReport({
    store,
    hub,
    health,
    readiness,
    limits,
    build,
    clock,
    startedAt: options.startedAt,
    flusher: options.flusher,
    remoteTarget: options.remoteTarget,
  });

  return new Elysia({ name: "zoe-operator" })
    .get(
      "/local/status",
      ({ request }) => {
        onlyParams(new URL(request.url), ["token"]);
        return json(status());
      },
      { detail: routeDocs["GET /local/status"] },
    )
    .post(
      "/local/flush",
      async ({ request, server }) => {
        const { modes, wait } = flushQuery(new URL(request.url));
        const flusher = options.flusher();
        if (!flusher)
          throw new NoRemoteError(
            "Cannot flush: no remote is configured (SUPABASE_URL is unset), so events stay local",
          );
        if (readiness.check().checks.draining)
          throw new ZoeError(
            "draining",
            "Cannot flush: the service is shutting down (it makes one last flush on its own)",
            { retryAfter: 5 },
          );
        const before = new Map(modes.map((m) => [m, failures(flusher, m)]));
        const backlogBefore = new Map(modes.map((m) => [m, store.backlogUsage(m).events]));
        const started = clock.now();
        const done = Promise.all(modes.map((m) => flusher.requestFlush(m, { urgent: true })));
        const view = (m: Mode) => {
          const h = health.health(m);
          return {
            backlog_before: backlogBefore.get(m)!,
            backlog: store.backlogUsage(m).events,
            flusher: h.flusher,
            last_flush_ts: h.last_flush_ts,
            last_flush_status: h.last_flush_status,
            quarantined: h.quarantined,
          };
        };
        const answer = () => Object.fromEntries(modes.map((m) => [m, view(m)]));
        if (!wait) return json({ waited: false, modes: answer() }, 202);
        // A drain of a big backlog takes longer than the idle timeout.
        server?.timeout(request, 0);
        const failed = await waitForFlush(flusher, done, before, request.signal, pollMs);
        if (failed) {
          const s = flusher.status(failed);
          throw new FlushFailedError(
            `Cannot flush ${failed}: ${s.last_error ?? "the attempt failed"} (${s.consecutive_failures} failed attempt${s.consecutive_failures === 1 ? "" : "s"} in a row); the flusher keeps retrying on its own${s.next_attempt_at ? `, next at ${s.next_attempt_at}` : ""}`,
            { details: { mode: failed, modes: answer() } },
          );
        }
        return json({ waited: true, took_ms: clock.now() - started, modes: answer() });
      },
      {
        parse: "none",
        detail: routeDocs["POST /local/flush"],
      },
    )
    .get(
      "/local/quarantine/:id",
      ({ request, params }) => {
        onlyParams(new URL(request.url), ["token"]);
        if (!isUuid(params.id))
          throw new ValidationError(`Invalid event id "${params.id.slice(0, 64)}": expected a lower-case UUID`, [
            { path: "id", message: "expected a lower-case UUID" },
          ]);
        const entry = options.quarantine.get(params.id);
        if (!entry)
          throw new NotFoundError(`Event ${params.id} is not in the quarantine (never quarantined, or released)`);
        return json(entry);
      },
      { detail: routeDocs["GET /local/quarantine/:id"] },
    )
    .get("/local/history", ({ request }) => json(history.read(modeOnlyQuery(new URL(request.url)))), {
      detail: routeDocs["GET /local/history"],
    });
}
