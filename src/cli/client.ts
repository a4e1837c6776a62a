// The CLI's only way into the service: its HTTP API, with the token from the
// environment. Every failure becomes a CliError whose message says what to do
// and whose exit code scripts can test (see EXIT in ./exit.ts).
import { CliError, EXIT } from "./exit.ts";

export interface ClientOptions {
  /** Base URL, e.g. http://127.0.0.1:8765 */
  url: string;
  token: string | null;
  /** Per-request timeout (default 10 s); 0: none (a waiting flush, a stream). */
  timeoutMs?: number;
}

export interface ApiError {
  code: string;
  message: string;
  details: unknown;
}

/** How fetch fails when nothing answers, in words an operator at 3 a.m. can act on. */
function unreachable(url: string, error: unknown, timeoutMs: number): CliError {
  const e = error as { name?: string; code?: string; message?: string };
  let why: string;
  if (e?.name === "TimeoutError")
    why = `no answer within ${timeoutMs / 1000} s — is it hung? (journalctl -u zoe-local)`;
  else if (e?.code === "ECONNREFUSED" || e?.code === "ConnectionRefused")
    why = "connection refused — is it running? `bun start`";
  else if (e?.code === "ENOTFOUND") why = "no such host — check ZOE_URL or --url";
  else if (e?.code === "ECONNRESET" || e?.code === "ConnectionClosed")
    why = "the connection was closed — did it just stop?";
  else why = `${e?.message ?? String(error)} — is it running? \`bun start\``;
  return new CliError(EXIT.unreachable, `cannot reach zoe-local at ${url}: ${why}`, { cause: error });
}

export class Client {
  readonly url: string;
  private readonly token: string | null;
  private readonly timeoutMs: number;

  constructor(options: ClientOptions) {
    this.url = options.url.replace(/\/+$/, "");
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.token ? { authorization: `Bearer ${this.token}` } : {}), ...extra };
  }

  /** Raw request: connection failures are CliErrors, HTTP statuses are the caller's. */
  async fetch(path: string, init: RequestInit & { timeoutMs?: number } = {}): Promise<Response> {
    const timeoutMs = init.timeoutMs ?? this.timeoutMs;
    const signals = [init.signal, timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : null].filter((s): s is AbortSignal =>
      Boolean(s),
    );
    try {
      return await fetch(`${this.url}${path}`, {
        ...init,
        headers: this.headers(init.headers as Record<string, string> | undefined),
        signal: signals.length > 0 ? AbortSignal.any(signals) : undefined,
      });
    } catch (error) {
      if (init.signal?.aborted) throw error;
      throw unreachable(this.url, error, timeoutMs);
    }
  }

  /** JSON request; 2xx answers the body, the statuses in `accept` too, anything else is a CliError. */
  async json<T>(
    path: string,
    init: RequestInit & { timeoutMs?: number; accept?: number[] } = {},
  ): Promise<{ status: number; body: T }> {
    const res = await this.fetch(path, init);
    const text = await res.text();
    let body: unknown;
    try {
      body = text === "" ? null : JSON.parse(text);
    } catch {
      throw new CliError(
        EXIT.failed,
        `${init.method ?? "GET"} ${path} answered ${res.status} with something that is not JSON: ${text.slice(0, 200)} — is ${this.url} really zoe-local?`,
      );
    }
    if (res.ok || init.accept?.includes(res.status)) return { status: res.status, body: body as T };
    throw apiFailure(res.status, body, `${init.method ?? "GET"} ${path}`, Boolean(this.token));
  }
}

export function apiError(body: unknown): ApiError | null {
  const e = (body as { error?: ApiError } | null)?.error;
  return e && typeof e.code === "string" ? e : null;
}

/** A non-2xx answer as a CliError: 401 tells how to give the token, the rest quote the service. */
export function apiFailure(status: number, body: unknown, what: string, hadToken: boolean): CliError {
  const e = apiError(body);
  if (status === 401) {
    const hint = hadToken
      ? "ZOE_API_TOKEN does not match the service's token"
      : "the service needs its token: set ZOE_API_TOKEN (or --env-file /etc/zoe-local/zoe-local.env)";
    return new CliError(EXIT.unauthorized, `${what}: unauthorized — ${hint}`);
  }
  return new CliError(EXIT.failed, `${what} answered ${status}${e ? ` ${e.code}: ${e.message}` : ""}`, {
    details: e?.details,
  });
}
