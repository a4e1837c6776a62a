// Strict parsing of query parameters: anything unexpected is a 400 that names
// the parameter, never a silent default.
import { ValidationError } from "../domain/errors.ts";
import { MODES, type Mode, SEVERITIES, type Severity } from "../../supabase/functions/_shared/event-schema.ts";
import type { EventFilter } from "../store/store.ts";

function bad(param: string, message: string): ValidationError {
  return new ValidationError(`Invalid query parameter ${param}: ${message}`, [{ path: `?${param}`, message }]);
}

/** Rejects parameters a route does not know (a typo must not fall back to a default). */
export function onlyParams(url: URL, allowed: readonly string[]): void {
  const seen = new Set<string>();
  for (const name of url.searchParams.keys()) {
    if (!allowed.includes(name)) throw bad(name, `unknown parameter; expected only: ${allowed.join(", ")}`);
    if (seen.has(name)) throw bad(name, "given more than once");
    seen.add(name);
  }
}

/** `?mode=` on routes that take nothing else (besides `token`). */
export function modeOnlyQuery(url: URL): Mode {
  onlyParams(url, ["mode", "token"]);
  return modeQuery(url);
}

export function modeQuery(url: URL): Mode {
  const mode = url.searchParams.get("mode");
  if (mode === null) throw bad("mode", `required; expected one of: ${MODES.join(", ")}`);
  if (!(MODES as readonly string[]).includes(mode))
    throw bad("mode", `expected one of: ${MODES.join(", ")}, got "${mode}"`);
  return mode as Mode;
}

function intParam(value: string | null, param: string, min: number, max: number): number | undefined {
  if (value === null) return undefined;
  if (!/^\d{1,16}$/.test(value) || Number(value) < min || Number(value) > max) {
    throw bad(param, `expected an integer from ${min} to ${max}, got "${value}"`);
  }
  return Number(value);
}

/** Most values one list parameter (`subtype=A,B,…`) takes. */
export const MAX_FILTER_VALUES = 32;

/**
 * A comma-separated list of exact values, each 1..maxLength characters, none
 * twice: `subtype=BUY_FILLED,SELL_FILLED`. undefined when absent.
 */
function listParam(url: URL, param: string, maxLength: number): string[] | undefined {
  const raw = url.searchParams.get(param);
  if (raw === null) return undefined;
  const values = raw.split(",");
  if (values.length > MAX_FILTER_VALUES) throw bad(param, `at most ${MAX_FILTER_VALUES} values, got ${values.length}`);
  const seen = new Set<string>();
  for (const v of values) {
    if (v === "") throw bad(param, `expected a comma-separated list of values, got "${raw}" (an empty value)`);
    if (v.length > maxLength) throw bad(param, `each value is at most ${maxLength} characters, got ${v.length}`);
    if (seen.has(v)) throw bad(param, `"${v}" is listed twice`);
    seen.add(v);
  }
  return values;
}

/** `severity=LEVEL`: at least this severity (as `zoe-local tail --severity`), as the list of levels it keeps. */
function severityParam(url: URL): Severity[] | undefined {
  const raw = url.searchParams.get("severity");
  if (raw === null) return undefined;
  const at = (SEVERITIES as readonly string[]).indexOf(raw);
  if (at < 0)
    throw bad("severity", `expected one level, the least kept (one of ${SEVERITIES.join(", ")}), got "${raw}"`);
  return SEVERITIES.slice(at);
}

export interface EventsQuery {
  mode: Mode;
  sinceSeq: number | undefined;
  beforeSeq: number | undefined;
  limit: number;
  /** undefined when no filter parameter was given. */
  filter: EventFilter | undefined;
}

export function eventsQuery(url: URL): EventsQuery {
  onlyParams(url, ["mode", "since_seq", "before_seq", "limit", "type", "subtype", "symbol", "severity", "token"]);
  const mode = modeQuery(url);
  const sinceSeq = intParam(url.searchParams.get("since_seq"), "since_seq", 0, Number.MAX_SAFE_INTEGER);
  const beforeSeq = intParam(url.searchParams.get("before_seq"), "before_seq", 1, Number.MAX_SAFE_INTEGER);
  const limit = intParam(url.searchParams.get("limit"), "limit", 1, 1000) ?? 50;
  const filter: EventFilter = {
    types: listParam(url, "type", 128),
    subtypes: listParam(url, "subtype", 128),
    symbols: listParam(url, "symbol", 64),
    severities: severityParam(url),
  };
  const filtered = Object.values(filter).some((v) => v !== undefined);
  return { mode, sinceSeq, beforeSeq, limit, filter: filtered ? filter : undefined };
}

/**
 * Where a stream resumes: the Last-Event-ID header (a browser's automatic
 * reconnect), else `?last_event_id=` or `?since_seq=` (a new EventSource
 * cannot set headers). null means live only.
 */
export function streamPosition(request: Request, url: URL): number | null {
  onlyParams(url, ["mode", "last_event_id", "since_seq", "heartbeat", "token"]);
  streamHeartbeatEvents(url);
  const header = request.headers.get("last-event-id");
  if (header !== null && header.trim() !== "") {
    const n = intParam(header.trim(), "Last-Event-ID", 0, Number.MAX_SAFE_INTEGER);
    return n ?? null;
  }
  for (const param of ["last_event_id", "since_seq"]) {
    const n = intParam(url.searchParams.get(param), param, 0, Number.MAX_SAFE_INTEGER);
    if (n !== undefined) return n;
  }
  return null;
}

/** `?heartbeat=event`: heartbeats as named events a page can watch (EventSource hides `:` comments); `comment` (default) otherwise. */
export function streamHeartbeatEvents(url: URL): boolean {
  const value = url.searchParams.get("heartbeat");
  if (value === null || value === "comment") return false;
  if (value === "event") return true;
  throw bad("heartbeat", `expected event or comment, got "${value}"`);
}
