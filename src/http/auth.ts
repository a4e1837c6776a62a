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

/** The token a request presents: `Authorization: Bearer`, or `?token=` on reads. */
export function presentedToken(request: Request, url: URL, allowQuery: boolean): string | null {
  const header = request.headers.get("authorization");
  if (header) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m ? m[1]! : null;
  }
  return allowQuery ? url.searchParams.get("token") : null;
}

/** Throws UnauthorizedError unless the request carries `expected`. */
export function assertAuthorized(request: Request, url: URL, expected: string | null): void {
  if (expected === null) return;
  const isRead = request.method === "GET" || request.method === "HEAD";
  const token = presentedToken(request, url, isRead);
  if (token !== null && tokensEqual(token, expected)) return;
  const message = isRead
    ? "Missing or invalid API token: send Authorization: Bearer <token> or ?token=<token>"
    : "Missing or invalid API token: send Authorization: Bearer <token>";
  // The same message either way; only the challenge tells a wrong token (error="invalid_token") from none.
  throw token === null ? new UnauthorizedError(message) : new InvalidTokenError(message);
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
