// Where flushed batches go. Two sinks implement this: the Edge Function
// (src/flush/sinks/edge-function.ts) and direct PostgREST upserts (src/flush/sinks/direct.ts).
// Every failure is a SinkError that says whether retrying can help
// (`retryable`) and whether the batch's content may be to blame (`poison`:
// splitting the batch isolates the bad event), so the flusher never guesses.
import { ZoeError } from "../domain/errors.ts";
import type { ErrorCode } from "../../supabase/functions/_shared/error-codes.ts";
import type { StoredEventRef } from "../../supabase/functions/_shared/idempotency.ts";
import type { FieldError, Mode, StoredEvent } from "../../supabase/functions/_shared/event-schema.ts";
import type { StateSnapshot } from "../store/store.ts";

export type EventVerdict = "accepted" | "duplicate" | "rejected";

export interface EventResult {
  idempotency_key: string;
  seq: number;
  status: EventVerdict;
  /** With status rejected: "idempotency_conflict" when the remote holds the key for a different event. */
  code?: string;
  /** With code idempotency_conflict: the remote event that holds the key. */
  stored_event?: StoredEventRef;
  errors?: FieldError[];
}

/** What the verdicts and the marks need of an event. */
export type EventRef = Pick<StoredEvent, "id" | "mode" | "seq" | "idempotency_key">;

export interface SinkBatch {
  mode: Mode;
  /** In seq order, unique idempotency keys. May be empty when only `state` is new. */
  events: StoredEvent[];
  /** Unflushed events left locally after this batch. */
  backlog: number;
  /** Newest local state snapshot, when it changed since the last flush. */
  state: StateSnapshot | null;
  /** Aborted on shutdown or by the stall watchdog. */
  signal: AbortSignal;
  /**
   * Set when earlier batches of this mode are still in flight: the idempotency
   * key of the previous batch's last event. An ordered sink commits this batch
   * only once that event is stored, or answers RemoteOutOfOrderError. Null or
   * absent: no condition.
   */
  afterKey?: string | null;
}

/** The local store that sends: its id and when its current start began (docs/flushing.md, "Store identity"). */
export interface WriterIdentity {
  store_id: string;
  started_at: string;
}

/** What the remote says of a mode's writers after a batch (zoe_health). */
export interface WritersReport {
  /** The mode's current writer as the remote recorded it. */
  writer: WriterIdentity | null;
  /** When two writers were last seen alternating on the mode, or null. */
  second_writer_at: string | null;
  /** Both writers of that moment. */
  second_writer: (WriterIdentity & { seen_at?: string })[] | null;
}

export interface SinkResult {
  /** One verdict per event the remote acknowledged; events without one stay queued. */
  results: EventResult[];
  /** The remote's record of the mode's writers, when it keeps one. */
  writers?: WritersReport;
  /** Problems that did not affect the events (e.g. a failed health row update). */
  warnings?: string[];
}

/** A batch whose events are already a JSON array (encoded by the reader worker, off the event loop). */
export interface EncodedSinkBatch extends Omit<SinkBatch, "events"> {
  /** The events in seq order: what the verdicts must answer. */
  refs: readonly EventRef[];
  /** The same events as a JSON array, in that order. */
  json: string;
}

export interface Sink {
  readonly name: "edge" | "direct" | (string & {});
  /**
   * True when the remote honours SinkBatch.afterKey, so the flusher may keep
   * several batches of a mode in flight and still have them commit in seq
   * order. Absent or false: one batch at a time. May turn false at run time
   * (a remote too old to know afterKey).
   */
  readonly ordered?: boolean;
  send(batch: SinkBatch): Promise<SinkResult>;
  /** The same for pre-encoded events; a sink without it gets objects. */
  sendEncoded?(batch: EncodedSinkBatch): Promise<SinkResult>;
}

/**
 * `sink` with every send wrapped in `around` (metrics, history): everything
 * else — the name, whether it is ordered (which may change at run time) —
 * still reads from the sink itself.
 */
export function wrapSink(
  sink: Sink,
  around: (batch: Pick<SinkBatch, "mode" | "signal">, send: () => Promise<SinkResult>) => Promise<SinkResult>,
): Sink {
  const wrapped = Object.create(sink, {
    send: { value: (batch: SinkBatch) => around(batch, () => sink.send(batch)), enumerable: true },
  }) as Sink;
  if (sink.sendEncoded) {
    Object.defineProperty(wrapped, "sendEncoded", {
      value: (batch: EncodedSinkBatch) => around(batch, () => sink.sendEncoded!(batch)),
      enumerable: true,
    });
  }
  return wrapped;
}

export interface SinkErrorOptions {
  cause?: unknown;
  /** HTTP status the remote answered; 0 when no response arrived. */
  remoteStatus?: number;
  details?: unknown;
  /** The remote asked us to wait at least this long (Retry-After). */
  retryAfterMs?: number;
}

export class SinkError extends ZoeError {
  readonly retryable: boolean;
  readonly poison: boolean;
  readonly remoteStatus: number;
  readonly retryAfterMs: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    flags: { retryable: boolean; poison?: boolean },
    options: SinkErrorOptions = {},
  ) {
    super(code, message, { cause: options.cause, details: options.details });
    this.retryable = flags.retryable;
    this.poison = flags.poison ?? false;
    this.remoteStatus = options.remoteStatus ?? 0;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** No answer: connection refused/reset, DNS, TLS. Retryable. */
export class RemoteUnreachableError extends SinkError {
  constructor(message: string, options: SinkErrorOptions = {}) {
    super("remote_unreachable", message, { retryable: true }, options);
  }
}

/** No answer within the per-request timeout. Retryable (the remote may have committed: replays are idempotent). */
export class RemoteTimeoutError extends SinkError {
  constructor(message: string, options: SinkErrorOptions = {}) {
    super("remote_timeout", message, { retryable: true }, options);
  }
}

/** 408, 429 or 5xx: the remote is overloaded or failing. Retryable. */
export class RemoteUnavailableError extends SinkError {
  constructor(message: string, options: SinkErrorOptions = {}) {
    super("remote_unavailable", message, { retryable: true }, options);
  }
}

/** A 2xx whose body is not the agreed shape. Retryable: proxies and half-deployed functions do this. */
export class RemoteProtocolError extends SinkError {
  constructor(message: string, options: SinkErrorOptions = {}) {
    super("remote_protocol", message, { retryable: true }, options);
  }
}

/** 401/403: wrong key or secret. Permanent until the configuration is fixed; not the events' fault. */
export class RemoteAuthError extends SinkError {
  constructor(message: string, options: SinkErrorOptions = {}) {
    super("remote_auth", message, { retryable: false }, options);
  }
}

/**
 * Any other 4xx. `poison` when the batch's content may be the cause (a bad
 * row, a too-large body): the flusher then splits the batch to find it.
 */
export class RemoteRejectedError extends SinkError {
  constructor(message: string, poison: boolean, options: SinkErrorOptions = {}) {
    super("remote_rejected", message, { retryable: false, poison }, options);
  }
}

/**
 * An ordered remote did not see the batch's predecessor commit in time (it
 * failed, or never arrived): nothing was written. Send it again once the
 * predecessor is settled, without afterKey; not a failure of the remote.
 */
export class RemoteOutOfOrderError extends SinkError {
  constructor(message: string, options: SinkErrorOptions = {}) {
    super("remote_out_of_order", message, { retryable: true }, options);
  }
}

/** Parses Retry-After (seconds or an HTTP date) into ms. */
export function retryAfterMs(header: string | null, now: number): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** True for statuses worth retrying: 408, 429, 5xx. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * Wraps whatever `fetch` threw. A timeout is told apart from the caller's own
 * abort (shutdown, watchdog), which is rethrown untouched so p-retry stops.
 */
export function fetchFailure(error: unknown, where: string, callerSignal: AbortSignal, timeoutMs: number): unknown {
  if (callerSignal.aborted) return callerSignal.reason;
  const name = (error as { name?: string })?.name;
  if (name === "TimeoutError" || name === "AbortError") {
    return new RemoteTimeoutError(`${where}: no response within ${timeoutMs} ms`, { cause: error });
  }
  return new RemoteUnreachableError(`${where}: ${(error as Error)?.message ?? String(error)}`, { cause: error });
}

/**
 * `value` (text or JSON) a remote sent back, with each credential replaced by
 * "[redacted]": a proxy or gateway may echo the headers it got, and error
 * messages end up in logs, the flush log and /health, often cut short (a
 * truncated key would slip past the logger's literal scrubbing).
 */
export function redactCredentials<T>(value: T, credentials: readonly (string | null | undefined)[]): T {
  const secrets = credentials.filter((c): c is string => typeof c === "string" && c.length >= 4);
  if (value === null || value === undefined || secrets.length === 0) return value;
  const scrub = (text: string) => secrets.reduce((t, s) => (t.includes(s) ? t.split(s).join("[redacted]") : t), text);
  if (typeof value === "string") return scrub(value) as T;
  const json = JSON.stringify(value);
  return json === undefined ? value : (JSON.parse(scrub(json)) as T);
}
