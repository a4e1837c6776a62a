// Bearer-token check for the API, and the guard that applies it to every
// request but the docs and CORS preflights. Tokens are compared in constant
// time over their SHA-256 digests, so neither content nor length leaks through timing.
import { timingSafeEqual } from "node:crypto";
import { Elysia } from "elysia";
import { UnauthorizedError, type ZoeError } from "../domain/errors.ts";
import { errorResponse, InvalidTokenError } from "./responses.ts";

function digest(value: string): Buffer {
  return Buffer.from(new Bun.CryptoHasher("sha256").update(value).digest());
}

export function tokensEqual(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** A check of presented tokens against one expected token, its digest computed once. */
export function tokenMatcher(expected: string): (given: string) => boolean {
  const want = digest(expected);
  return (given) => timingSafeEqual(digest(given), want);
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** The token of an `Authorization: Bearer <token>` header (null: no header, or not a bearer token). */
export function bearerToken(header: string | null): string | null {
  if (!header) return null;
  return BEARER.exec(header)?.[1] ?? null;
}

/** The token a request presents: `Authorization: Bearer`, or `?token=` on reads. */
export function presentedToken(request: Request, url: URL, allowQuery: boolean): string | null {
  const header = request.headers.get("authorization");
  if (header) return bearerToken(header);
  return allowQuery ? url.searchParams.get("token") : null;
}

const READ_MESSAGE = "Missing or invalid API token: send Authorization: Bearer <token> or ?token=<token>";
const WRITE_MESSAGE = "Missing or invalid API token: send Authorization: Bearer <token>";

/** The refusal of a request that presented `token` (null: none) that does not match. */
export function refusal(token: string | null, isRead: boolean): UnauthorizedError {
  const message = isRead ? READ_MESSAGE : WRITE_MESSAGE;
  // The same message either way; only the challenge tells a wrong token (error="invalid_token") from none.
  return token === null ? new UnauthorizedError(message) : new InvalidTokenError(message);
}

/**
 * The API token policy for a write route that reads only the header (the
 * ingest fast path): throws the refusal unless the request carries the token.
 */
export function writeAuthorizer(expected: string | null): (request: Request) => void {
  if (expected === null) return () => {};
  const matches = tokenMatcher(expected);
  return (request) => {
    const token = bearerToken(request.headers.get("authorization"));
    if (token === null || !matches(token)) throw refusal(token, false);
  };
}

/** Throws UnauthorizedError unless the request carries `expected`. */
export function assertAuthorized(request: Request, url: URL, expected: string | null): void {
  if (expected === null) return;
  const isRead = request.method === "GET" || request.method === "HEAD";
  const token = presentedToken(request, url, isRead);
  if (token !== null && tokensEqual(token, expected)) return;
  throw refusal(token, isRead);
}

const PUBLIC_PATHS = /^\/(docs(\/.*)?)?$/;

/**
 * Refuses unauthorized requests before routing. Elysia runs every plugin's
 * onRequest hooks app-wide (they come before any route is known), so the
 * guard covers the routes and the plugins mounted beside it alike.
 */
export function authGuard(apiToken: string | null) {
  return new Elysia({ name: "zoe-auth" }).onRequest(({ request }) => {
    if (request.method === "OPTIONS") return;
    const url = new URL(request.url);
    if (PUBLIC_PATHS.test(url.pathname)) return;
    try {
      assertAuthorized(request, url, apiToken);
    } catch (error) {
      return errorResponse(error as ZoeError);
    }
  });
}
