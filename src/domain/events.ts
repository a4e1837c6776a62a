// Event vocabulary the whole service shares: what a stored event is, and which
// subtypes are critical (flushed at once, admitted into the backlog's reserve).
import type { StoredEvent } from "../../supabase/functions/_shared/event-schema.ts";

export type ZoeEvent = StoredEvent;

export const CRITICAL_SUBTYPES = [
  "BUY_FILLED",
  "SELL_FILLED",
  "PNL_REALIZED",
  "TRADING_HALTED",
  "KILL_SWITCH",
  "RECONCILIATION_MISMATCH",
] as const;
