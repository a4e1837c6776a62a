// Every error code zoe-local answers with, in one list for both runtimes: the
// Bun service (its HTTP API and the flusher's view of the remote) and the
// zoe-ingest Edge Function. An error answer is `{error: {code, message,
// details}}` with one of these codes, lower case; callers decide by the code
// (and the status), never by matching the message. The Python client's
// failure table (clients/python/src/zoe_local/_failures.py) mirrors the
// `verdict` column, and a test holds them equal.

export interface ErrorCodeInfo {
  /** The HTTP status answered with this code. */
  readonly status: number;
  /**
   * A verdict on the events of the request: sending the same events again is
   * refused again (a client sets them aside instead of retrying).
   */
  readonly verdict: boolean;
  /** The request would pass as smaller batches (the flusher splits and retries). */
  readonly splittable: boolean;
  /** Statuses it may also be answered with, each saying which case it is. */
  readonly otherStatuses: readonly number[];
  /** Who answers with it: the Bun service, zoe-ingest, or both. */
  readonly from: "service" | "ingest" | "both";
  readonly meaning: string;
}

const code = (
  status: number,
  from: ErrorCodeInfo["from"],
  meaning: string,
  flags: { verdict?: boolean; splittable?: boolean; otherStatuses?: readonly number[] } = {},
): ErrorCodeInfo => ({
  status,
  from,
  meaning,
  verdict: flags.verdict ?? false,
  splittable: flags.splittable ?? false,
  otherStatuses: flags.otherStatuses ?? [],
});

export const ERROR_CODES = {
  // Requests and events.
  invalid_request: code(400, "both", "the request or an event does not match the schema; details name the fields", {
    verdict: true,
  }),
  malformed_json: code(400, "both", "the body is not UTF-8 JSON", { verdict: true }),
  incomplete_body: code(400, "service", "the connection closed before the body was complete"),
  payload_too_large: code(413, "both", "the body exceeds the byte limit", { verdict: true, splittable: true }),
  batch_too_large: code(400, "ingest", "the batch holds more events than the function takes", { splittable: true }),
  unsupported_media_type: code(415, "service", "the body is not application/json"),
  method_not_allowed: code(405, "both", "the route does not take this method"),
  not_found: code(404, "service", "no such route, event or quarantined event"),
  conflict: code(409, "service", "the request conflicts with what is stored", { verdict: true }),
  idempotency_conflict: code(409, "both", "an idempotency_key is reused for a different event", { verdict: true }),
  host_not_allowed: code(
    421,
    "service",
    "the Host names a host the service does not serve (DNS rebinding guard; ZOE_ALLOWED_HOSTS)",
  ),
  // Credentials.
  unauthorized: code(401, "both", "missing or wrong API token, flush secret or service-role key"),
  // The store and its limits.
  backlog_full: code(503, "service", "the unflushed backlog is at its cap (Retry-After)"),
  disk_low: code(503, "service", "free disk is under the floor (Retry-After)"),
  store_unavailable: code(503, "service", "the database cannot take writes (Retry-After)"),
  too_many_streams: code(
    429,
    "service",
    "this host's SSE streams are at their cap; 503: the service's are (Retry-After)",
    {
      otherStatuses: [503],
    },
  ),
  // Flushing, as the service reports it.
  no_remote: code(409, "service", "a flush was asked for, but no remote is configured"),
  draining: code(503, "service", "the service is shutting down (Retry-After)"),
  flush_failed: code(502, "service", "the flush asked for failed; the flusher keeps retrying"),
  remote_auth: code(502, "service", "the remote refused the credentials"),
  remote_out_of_order: code(502, "service", "the remote has not committed the previous batch yet"),
  remote_protocol: code(502, "service", "the remote answered something that is not its protocol"),
  remote_rejected: code(502, "service", "the remote refused the batch"),
  remote_timeout: code(504, "service", "the remote did not answer in time"),
  remote_unavailable: code(502, "service", "the remote answered that it is unavailable"),
  remote_unreachable: code(502, "service", "the remote cannot be reached"),
  // zoe-ingest's own.
  predecessor_not_committed: code(409, "ingest", "the batch's after_key is not committed yet; nothing was written"),
  database_unavailable: code(503, "ingest", "Postgres cannot be reached or timed out; nothing was written"),
  not_configured: code(500, "ingest", "the function lacks a setting it needs (SUPABASE_DB_URL)"),
  // Anything else.
  internal: code(500, "both", "an unexpected error; the log has it"),
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * The code of an error answer, as this list spells it: lower case, so an
 * answer from a zoe-ingest deployed before the codes were unified (upper case)
 * reads the same. Null when the answer carries none, or one not in the list.
 */
export function errorCodeOf(value: unknown): ErrorCode | null {
  if (typeof value !== "string") return null;
  const lower = value.toLowerCase();
  if (lower === "invalid_batch") return "invalid_request";
  return Object.hasOwn(ERROR_CODES, lower) ? (lower as ErrorCode) : null;
}
