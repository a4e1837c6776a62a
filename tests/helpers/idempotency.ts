// The fields an idempotency key pins down, for the tests of both places that
// enforce it: the local store and the zoe-ingest Edge Function. One table, so a
// field that one of them stops comparing fails a test in both.
import type { EventInput } from "../../supabase/functions/_shared/event-schema.ts";

/** Per compared field, a change that makes an event differ from its earlier self in that field alone. */
export const CONFLICTING_CHANGES: readonly [field: string, change: Partial<EventInput>][] = [
  ["mode", { mode: "paper" }],
  ["body", { body: "another body" }],
  ["type", { type: "SIGNAL" }],
  ["subtype", { subtype: "SELL_FILLED" }],
  ["symbol", { symbol: "MSFT" }],
  ["severity", { severity: "critical" }],
  ["meta", { meta: { qty: 11 } }],
  ["source", { source: "other-bot" }],
];
