// The feed's filters (severities shown, one type, one symbol) and their place
// in the page's URL, so a filtered view survives a reload and can be shared.
// Debug is hidden unless asked for: ticks would bury everything else.
import { SEVERITIES, type Severity, type StoredEvent } from "../../client/types.ts";

export interface FeedFilters {
  /** Shown severities, in SEVERITIES order. */
  severities: readonly Severity[];
  /** Only this event type (exact), or every type. */
  type: string | null;
  /** Only this symbol (case-insensitive), or every symbol. */
  symbol: string | null;
}

export const DEFAULT_SEVERITIES: readonly Severity[] = SEVERITIES.filter((s) => s !== "debug");

export const DEFAULT_FILTERS: FeedFilters = { severities: DEFAULT_SEVERITIES, type: null, symbol: null };

const blank = (v: string | null): string | null => (v?.trim() ? v.trim() : null);

/** `?sev=info,warn&type=ORDER&symbol=AAPL` → filters; absent or unreadable parameters take the defaults. */
export function readFilters(search: string): FeedFilters {
  const q = new URLSearchParams(search);
  const sev = q.get("sev");
  let severities = DEFAULT_SEVERITIES;
  if (sev !== null) {
    const asked = new Set(sev.split(",").map((s) => s.trim()));
    if (asked.has("all")) severities = SEVERITIES;
    else {
      const known = SEVERITIES.filter((s) => asked.has(s));
      if (known.length > 0 || sev.trim() === "none") severities = known;
    }
  }
  return { severities, type: blank(q.get("type")), symbol: blank(q.get("symbol")) };
}

/** `search` with the filters' parameters set (defaults left out), every other parameter kept. */
export function writeFilters(search: string, f: FeedFilters): string {
  const q = new URLSearchParams(search);
  const sameAsDefault =
    f.severities.length === DEFAULT_SEVERITIES.length && f.severities.every((s) => DEFAULT_SEVERITIES.includes(s));
  if (sameAsDefault) q.delete("sev");
  else q.set("sev", f.severities.length === SEVERITIES.length ? "all" : f.severities.join(",") || "none");
  for (const [key, value] of [
    ["type", f.type],
    ["symbol", f.symbol],
  ] as const) {
    if (value) q.set(key, value);
    else q.delete(key);
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

export function matches(e: StoredEvent, f: FeedFilters): boolean {
  if (!f.severities.includes(e.severity)) return false;
  if (f.type !== null && e.type !== f.type) return false;
  if (f.symbol !== null && (e.symbol ?? "").toUpperCase() !== f.symbol.toUpperCase()) return false;
  return true;
}

export function toggleSeverity(f: FeedFilters, s: Severity): FeedFilters {
  const on = new Set(f.severities);
  if (on.has(s)) on.delete(s);
  else on.add(s);
  return { ...f, severities: SEVERITIES.filter((x) => on.has(x)) };
}
