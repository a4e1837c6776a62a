// Strict parsing of query parameters: anything unexpected is a 400 that names
// the parameter, never a silent default.
import { ValidationError } from "../domain/errors.ts";
import { MODES, type Mode } from "../../supabase/functions/_shared/event-schema.ts";

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

export function eventsQuery(url: URL): { mode: Mode; sinceSeq: number | undefined; limit: number } {
  onlyParams(url, ["mode", "since_seq", "limit", "token"]);
  const mode = modeQuery(url);
  const sinceSeq = intParam(url.searchParams.get("since_seq"), "since_seq", 0, Number.MAX_SAFE_INTEGER);
  const limit = intParam(url.searchParams.get("limit"), "limit", 1, 1000) ?? 50;
  return { mode, sinceSeq, limit };
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
