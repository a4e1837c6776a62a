// Which subtypes are critical: flushed at once, admitted into the backlog's
// reserve. (What a stored event is, StoredEvent, is the shared schema's.)

export const CRITICAL_SUBTYPES = [
  "BUY_FILLED",
  "SELL_FILLED",
  "PNL_REALIZED",
  "TRADING_HALTED",
  "KILL_SWITCH",
  "RECONCILIATION_MISMATCH",
] as const;
