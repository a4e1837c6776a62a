// What the caller of createApp plugs in around the routes: admission control
// and observation of requests. src/http/operations.ts supplies them (the
// bounded store, metrics, readiness, the 5xx log). The routes call them
// directly, so an absent hook costs an optional call, not a lifecycle hook.
import type { EventInput, Mode } from "../../supabase/functions/_shared/event-schema.ts";
import type { StreamCloseReason } from "../stream/sse.ts";
import type { AppendResult } from "../store/store.ts";

export interface AppHooks {
  /** Throws a 503 ZoeError to refuse a batch; the returned function runs once the append settled. */
  admit?(events: EventInput[]): () => void;
  /** The append committed; `ms` since the ingest handler started. */
  ingested?(events: EventInput[], results: AppendResult[], ms: number): void;
  /** A request on any route ended in this error answer (request null: an error Bun caught outside any request handler). */
  failed?(error: unknown, status: number, request: Request | null): void;
  streamClosed?(mode: Mode, reason: StreamCloseReason): void;
}
