// Events in the shape the flusher posts to zoe-ingest, for tests that talk to
// the Edge Function directly.
import type { StoredEvent } from "../../supabase/functions/_shared/event-schema.ts";

let counter = 0;

/** A valid stored event at `seq`; each call gets a fresh id and key unless `patch` sets them. */
export function remoteEvent(seq: number, patch: Partial<StoredEvent> = {}): StoredEvent {
  counter++;
  const hex = counter.toString(16).padStart(12, "0");
  return {
    id: `0190a6f0-0000-7000-8000-${hex}`,
    mode: "live",
    seq,
    ts: new Date(Date.UTC(2026, 2, 9, 14, 30, 0, seq % 1000)).toISOString(),
    source: "bot",
    type: "ORDER",
    subtype: "BUY_FILLED",
    symbol: "AAPL",
    severity: "info",
    body: `event ${seq}`,
    meta: { n: seq },
    idempotency_key: `key-${hex}`,
    ...patch,
  };
}
