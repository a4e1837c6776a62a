// Typed errors: every failure the service reports carries a stable `code`
// (supabase/functions/_shared/error-codes.ts), the HTTP `status` the list maps it to, optional `details` (field paths) and a cause.
import { ERROR_CODES, type ErrorCode } from "../../supabase/functions/_shared/error-codes.ts";
import type { FieldError } from "../../supabase/functions/_shared/event-schema.ts";

export interface ZoeErrorOptions {
  details?: unknown;
  cause?: unknown;
  /** Seconds a client should wait before retrying (sets Retry-After). */
  retryAfter?: number;
  /** One of the code's `otherStatuses` in the list, for the case it names. */
  status?: number;
}

export class ZoeError extends Error {
  /** One of supabase/functions/_shared/error-codes.ts, the list both runtimes answer with. */
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: unknown;
  readonly retryAfter: number | undefined;

  constructor(code: ErrorCode, message: string, options: ZoeErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    const info = ERROR_CODES[code];
    if (options.status !== undefined && !info.otherStatuses.includes(options.status))
      throw new TypeError(`Error code ${code} is not answered with status ${options.status}`);
    this.status = options.status ?? info.status;
    this.details = options.details ?? null;
    this.retryAfter = options.retryAfter;
  }

  toJSON() {
    return { error: { code: this.code, message: this.message, details: this.details } };
  }
}

export class ValidationError extends ZoeError {
  constructor(message: string, details: FieldError[] = [], options: ZoeErrorOptions = {}) {
    super("invalid_request", message, { ...options, details });
  }
}

export class MalformedJsonError extends ZoeError {
  constructor(message: string, options: ZoeErrorOptions = {}) {
    super("malformed_json", message, options);
  }
}

/** The connection closed (the client left, or stalled until the server hung up) before the body was complete. */
export class IncompleteBodyError extends ZoeError {
  constructor(message: string, options: ZoeErrorOptions = {}) {
    super("incomplete_body", message, options);
  }
}

export class UnsupportedMediaTypeError extends ZoeError {
  constructor(message: string, options: ZoeErrorOptions = {}) {
    super("unsupported_media_type", message, options);
  }
}

export class PayloadTooLargeError extends ZoeError {
  constructor(message: string, options: ZoeErrorOptions = {}) {
    super("payload_too_large", message, options);
  }
}

export class UnauthorizedError extends ZoeError {
  constructor(message = "Missing or invalid API token", options: ZoeErrorOptions = {}) {
    super("unauthorized", message, options);
  }
}

export class NotFoundError extends ZoeError {
  constructor(message: string, options: ZoeErrorOptions = {}) {
    super("not_found", message, options);
  }
}

export class ConflictError extends ZoeError {
  constructor(message: string, options: ZoeErrorOptions = {}) {
    super("conflict", message, options);
  }
}

/** An operation that needs the remote (a flush) on a service that has none (no SUPABASE_URL). */
export class NoRemoteError extends ZoeError {
  constructor(message: string, options: ZoeErrorOptions = {}) {
    super("no_remote", message, options);
  }
}

/** A flush asked for with ?wait=true failed; the flusher keeps retrying on its own. */
export class FlushFailedError extends ZoeError {
  constructor(message: string, options: ZoeErrorOptions = {}) {
    super("flush_failed", message, options);
  }
}

/**
 * An idempotency_key reused for a different event: the stored event stands,
 * the request is refused (a true repeat is a duplicate, not this).
 */
export class IdempotencyConflictError extends ZoeError {
  constructor(message: string, options: ZoeErrorOptions = {}) {
    super("idempotency_conflict", message, options);
  }
}

/** The disk or database cannot take writes; nothing of the request was stored. */
export class StoreUnavailableError extends ZoeError {
  constructor(message: string, options: ZoeErrorOptions = {}) {
    super("store_unavailable", message, { retryAfter: 5, ...options });
  }
}

/** The service refuses to start; the message names what to fix. */
export class StartupError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "StartupError";
    this.code = code;
  }
}

export class ConfigError extends StartupError {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super("invalid_config", `${variable}: ${message}`);
    this.name = "ConfigError";
    this.variable = variable;
  }
}
