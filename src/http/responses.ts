// The JSON answers every route gives, and the one shape of an error answer:
// `{error:{code,message,details}}` with the typed error's status (and its
// Retry-After when it has one).
import type { ZoeError } from "../domain/errors.ts";

export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

export function errorResponse(error: ZoeError): Response {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (error.retryAfter !== undefined) headers["retry-after"] = String(error.retryAfter);
  return new Response(JSON.stringify(error.toJSON()), { status: error.status, headers });
}
