// The JSON answers every route gives, and the one shape of an error answer:
// `{error:{code,message,details}}` with the typed error's status, and the
// headers some statuses carry: Retry-After when the error has one, the
// Bearer challenge on a 401 (RFC 6750), Allow on a 405 (RFC 9110).
import { UnauthorizedError, ZoeError } from "../domain/errors.ts";

export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

/** The challenge of a 401 that presented no token (or not as a Bearer token). */
export const BEARER_CHALLENGE = 'Bearer realm="zoe-local"';
/** The challenge of a 401 that presented a token, and not the right one. */
export const INVALID_TOKEN_CHALLENGE = 'Bearer realm="zoe-local", error="invalid_token"';

/** A Bearer token was presented and is not the API token: the challenge says error="invalid_token". */
export class InvalidTokenError extends UnauthorizedError {}

/** A known path asked with a method it does not serve; `allow` lists the ones it does. */
export class MethodNotAllowedError extends ZoeError {
  readonly allow: string;
  constructor(message: string, allow: string) {
    super("method_not_allowed", message);
    this.allow = allow;
  }
}

/** The headers of `error`'s answer besides content-type. */
export function errorHeaders(error: ZoeError, headers: Record<string, string>): Record<string, string> {
  if (error.retryAfter !== undefined) headers["retry-after"] = String(error.retryAfter);
  if (error.status === 401)
    headers["www-authenticate"] = error instanceof InvalidTokenError ? INVALID_TOKEN_CHALLENGE : BEARER_CHALLENGE;
  if (error instanceof MethodNotAllowedError) headers.allow = error.allow;
  return headers;
}

export function errorResponse(error: ZoeError): Response {
  return new Response(JSON.stringify(error.toJSON()), {
    status: error.status,
    headers: errorHeaders(error, { "content-type": "application/json" }),
  });
}
