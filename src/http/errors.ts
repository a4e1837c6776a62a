// Every failed request, on any route (and a request no route matches), ends
// in the same error answer: typed errors keep their code and status, Elysia's
// own 404 and parse errors are mapped to ours (a 404 on a path that is served
// with other methods becomes a 405 with Allow), anything else is a logged 500
// that says nothing of its cause.
import { Elysia } from "elysia";
import { NotFoundError, ValidationError, ZoeError } from "../domain/errors.ts";
import type { Logger } from "../lib/log.ts";
import type { AppHooks } from "./hooks.ts";
import { errorResponse, json, MethodNotAllowedError } from "./responses.ts";

/** The answer to `error`; `code` is Elysia's error code ("NOT_FOUND", "PARSE", …). */
export function errorAnswer(
  error: unknown,
  code: unknown,
  request: Request,
  logger: Logger,
  allowedMethods?: AllowedMethods,
): Response {
  if (error instanceof ZoeError) return errorResponse(error);
  if (code === "NOT_FOUND") {
    const path = new URL(request.url).pathname;
    const allow = allowedMethods?.(path) ?? null;
    if (allow !== null)
      return errorResponse(
        new MethodNotAllowedError(`Method ${request.method} is not allowed on ${path}: use ${allow}`, allow),
      );
    return errorResponse(new NotFoundError(`No route for ${request.method} ${path}`));
  }
  if (code === "PARSE" || code === "VALIDATION") {
    return errorResponse(new ValidationError(`Cannot read request: ${(error as Error).message}`));
  }
  logger.error("unhandled error", { error, path: new URL(request.url).pathname });
  return json({ error: { code: "internal", message: "Internal error", details: null } }, 500);
}

/** The Allow value of a path served with other methods, or null for a path no route serves. */
export type AllowedMethods = (pathname: string) => string | null;

export interface ErrorAnswersOptions {
  logger: Logger;
  hooks?: AppHooks;
  /** Tells a wrong method on a known path (405) from an unknown path (404). */
  allowedMethods?: AllowedMethods;
}

/**
 * The onError hook, global: Elysia keeps a plugin's hooks to the plugin's own
 * routes unless told otherwise, and this one must cover the app's routes and
 * its 404s. Like any hook it covers the routes added after it.
 */
export function errorAnswers(options: ErrorAnswersOptions) {
  return new Elysia({ name: "zoe-errors" }).onError({ as: "global" }, ({ error, code, request }) => {
    const response = errorAnswer(error, code, request, options.logger, options.allowedMethods);
    options.hooks?.failed?.(error, response.status, request);
    return response;
  });
}
