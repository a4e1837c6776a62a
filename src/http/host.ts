// The Host header: which names the service answers to. A tokenless service on
// loopback trusts whoever can reach it, and a web page the trader opens can
// reach it too once its own DNS name resolves to 127.0.0.1 (DNS rebinding):
// the browser then treats the service as the page's own origin and lets it
// read and write. The only trace of that is the Host header, which still
// names the attacker's domain, so without a token only loopback names are
// served. A Host that is not a host at all (`a?`, `x y`, port 99999) is a
// bad request, answered before anything parses a URL from it.
import { ValidationError, ZoeError } from "../domain/errors.ts";
import { hostName } from "../lib/host-name.ts";
import { errorResponse } from "./responses.ts";

/** The names a tokenless service answers to, whatever the port. */
export const LOOPBACK_HOSTS: readonly string[] = ["127.0.0.1", "localhost", "[::1]"];

/** A Host name the service does not answer to. */
export class HostNotAllowedError extends ZoeError {
  constructor(message: string) {
    super("host_not_allowed", message);
  }
}

export interface HostPolicyOptions {
  apiToken: string | null;
  /** ZOE_ALLOWED_HOSTS: names served besides the loopback ones; null when unset. */
  allowedHosts: readonly string[] | null;
}

/**
 * Returns the check every request passes before anything reads its URL: the
 * error answer for a malformed or refused Host, or null. No Host at all (an
 * HTTP/1.0 health check, HAProxy's `option httpchk`) or an empty one is not
 * a browser, and is served. With a token, any name is served unless
 * ZOE_ALLOWED_HOSTS is given: a page that rebinds its name still has no token.
 */
export function hostCheck(options: HostPolicyOptions): (request: Request) => Response | null {
  const listed = options.allowedHosts;
  const allowed = options.apiToken !== null && listed === null ? null : new Set([...LOOPBACK_HOSTS, ...(listed ?? [])]);
  const servedNames = allowed === null ? "" : [...allowed].join(", ");
  // One Host value is by far the most common: remember the last one served.
  let lastServed: string | null = null;
  return (request) => {
    const host = request.headers.get("host");
    if (host === null || host === "" || host === lastServed) return null;
    const name = hostName(host);
    if (name === null) {
      return answer(
        new ValidationError(
          `Invalid Host header ${quoted(host)}: expected a host name or address and an optional port`,
          [{ path: "Host", message: "Expected host[:port] with a port from 0 to 65535" }],
        ),
      );
    }
    if (allowed !== null && !allowed.has(name)) {
      const why =
        options.apiToken === null
          ? "without ZOE_API_TOKEN only loopback names are served (a guard against DNS rebinding)"
          : "it is not in ZOE_ALLOWED_HOSTS";
      return answer(
        new HostNotAllowedError(
          `Host ${quoted(name)} is not served: ${why}; served names: ${servedNames}. Add the name to ZOE_ALLOWED_HOSTS to serve it`,
        ),
      );
    }
    lastServed = host;
    return null;
  };
}

const quoted = (value: string) => JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value);

function answer(error: ZoeError): Response {
  const response = errorResponse(error);
  response.headers.set("vary", "Origin");
  return response;
}
