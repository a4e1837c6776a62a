// GET /local/stream: the SSE feed of one mode (replay from Last-Event-ID or
// ?after=, then live), under the open-stream caps; HEAD /local/stream checks
// the same parameters without opening a stream.
import { Elysia } from "elysia";
import type { Logger } from "../../lib/log.ts";
import type { Hub } from "../../stream/hub.ts";
import { createBufferBudget } from "../../stream/buffer-budget.ts";
import type { ReplayReader } from "../../stream/replay-reader.ts";
import { openEventStream, SSE_HEADERS } from "../../stream/sse.ts";
import { createSseLimiter, type SseLimits } from "../../stream/sse-limiter.ts";
import type { EventStore } from "../../store/store.ts";
import { clientAddress, originalRequest } from "../client-address.ts";
import type { AppHooks } from "../hooks.ts";
import { routeDocs } from "../openapi.ts";
import { modeQuery, streamHeartbeatEvents, streamPosition } from "../query.ts";

export interface StreamRoutesOptions {
  store: EventStore;
  hub: Hub;
  logger: Logger;
  /** maxClients / maxClientsPerAddress: open-stream caps (none when absent). */
  sse: {
    heartbeatMs: number;
    stallMs?: number;
    retryMs: number;
    maxBufferedBytes: number;
    /** What all streams together may hold (no total bound when absent). */
    maxTotalBufferedBytes?: number;
    coalesceMs: number;
  } & Partial<SseLimits>;
  /** Aborted at shutdown: open SSE streams end so the server can stop. */
  shutdown?: AbortSignal;
  /** Reads replay pages off the event loop (without it: on the loop, in turns). */
  replayReader?: ReplayReader;
  hooks?: AppHooks;
}

export function streamRoutes(options: StreamRoutesOptions) {
  const { store, hub, logger } = options;
  const streams = createSseLimiter({
    maxClients: options.sse.maxClients ?? Number.POSITIVE_INFINITY,
    maxClientsPerAddress: options.sse.maxClientsPerAddress ?? Number.POSITIVE_INFINITY,
    exemptLoopback: options.sse.exemptLoopback,
  });
  const { maxTotalBufferedBytes, ...sse } = options.sse;
  const budget = maxTotalBufferedBytes === undefined ? undefined : createBufferBudget(maxTotalBufferedBytes);
  return (
    new Elysia({ name: "zoe-stream" })
      .get(
        "/local/stream",
        ({ request, server }) => {
          const url = new URL(request.url);
          const mode = modeQuery(url);
          const after = streamPosition(request, url);
          const release = streams.acquire(clientAddress(server, request));
          // Bun closes sockets idle for idleTimeout; a stream's liveness is the
          // heartbeat's business (which also cuts off stuck clients).
          server?.timeout(originalRequest(request), 0);
          const stream = openEventStream({
            store,
            hub,
            mode,
            after,
            heartbeatEvents: streamHeartbeatEvents(url),
            signal: request.signal,
            shutdown: options.shutdown,
            ...sse,
            budget,
            replayReader: options.replayReader,
            onClose: (reason) => {
              options.hooks?.streamClosed?.(mode, reason);
              release();
              if (reason === "slow") logger.warn("sse client cut off: too far behind", { mode });
            },
          });
          return new Response(stream, { headers: SSE_HEADERS });
        },
        { detail: routeDocs["GET /local/stream"] },
      )
      // Elysia answers a HEAD by running the GET handler and reading the whole
      // body for Content-Length: on a stream that never ends it would buffer
      // every live event until shutdown. A HEAD gets the headers, no stream.
      .head(
        "/local/stream",
        ({ request }) => {
          const url = new URL(request.url);
          modeQuery(url);
          streamPosition(request, url);
          return new Response(null, { headers: SSE_HEADERS });
        },
        { detail: routeDocs["HEAD /local/stream"] },
      )
  );
}
