// `zoe-local tail`: follow the SSE stream, filtered. Each mode is one stream;
// a lost connection is resumed with Last-Event-ID (the seq last seen), so a
// restart of the service loses nothing and repeats nothing.
import { MODES } from "../../../supabase/functions/_shared/event-schema.ts";
import { apiFailure } from "../client.ts";
import type { Command, Context } from "../context.ts";
import { CliError, EXIT, usage } from "../exit.ts";
import { fetchStatus } from "./status.ts";

const SEVERITIES = ["debug", "info", "warn", "error", "critical"] as const;
/** A note on stderr about the stream (a retry, a reconnect): a JSON line with --json, like the events. */
function notice(ctx: Context, mode: string, message: string): void {
  ctx.io.err(ctx.json ? `${JSON.stringify({ notice: message, mode })}\n` : `zoe-local: ${mode}: ${message}\n`);
}

/** The service sends a heartbeat every 15 s by default; this much silence means a dead link. */
const SILENCE_MS = 45_000;

interface StreamEvent {
  seq: number;
  mode: string;
  ts: string;
  type: string;
  subtype: string;
  symbol: string | null;
  severity: string;
  source: string;
  body: string;
}

export interface TailFilter {
  types: string[] | null;
  subtypes: string[] | null;
  symbols: string[] | null;
  minSeverity: number;
}

export function matches(e: StreamEvent, f: TailFilter): boolean {
  if (f.types && !f.types.includes(e.type)) return false;
  if (f.subtypes && !f.subtypes.includes(e.subtype)) return false;
  if (f.symbols && !f.symbols.includes(e.symbol ?? "")) return false;
  return SEVERITIES.indexOf(e.severity as (typeof SEVERITIES)[number]) >= f.minSeverity;
}

function eventLine(e: StreamEvent, ctx: Context): string {
  const p = ctx.paint;
  const sev = e.severity.toUpperCase().padEnd(8);
  const painted =
    e.severity === "critical" || e.severity === "error"
      ? p.red(sev)
      : e.severity === "warn"
        ? p.yellow(sev)
        : e.severity === "debug"
          ? p.dim(sev)
          : sev;
  return `${p.dim(e.ts)} ${e.mode} #${e.seq} ${painted} ${e.type}/${e.subtype}${e.symbol ? ` ${e.symbol}` : ""} ${p.dim(`[${e.source}]`)} ${e.body}`;
}

/** Splits an SSE byte stream into messages; returns the `data` of each that has one. */
async function* sseData(body: ReadableStream<Uint8Array>, signal: AbortSignal): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let data: string[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const silence = () =>
    new Promise<never>((_, reject) => {
      clearTimeout(timer);
      timer = setTimeout(() => reject(new Error(`no data nor heartbeat for ${SILENCE_MS / 1000} s`)), SILENCE_MS);
    });
  const onAbort = () => void reader.cancel().catch(() => {});
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), silence()]);
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, "");
        buffer = buffer.slice(nl + 1);
        if (line === "") {
          if (data.length > 0) yield data.join("\n");
          data = [];
        } else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
    }
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
    reader.releaseLock();
  }
}

interface Follow {
  mode: string;
  /** Seq last printed or skipped; the position to resume from. */
  position: number | null;
}

/** Follows one mode until the signal aborts or `remaining` runs out; reconnects on loss. */
async function follow(
  ctx: Context,
  f: Follow,
  filter: TailFilter,
  emit: (e: StreamEvent) => boolean,
  done: AbortSignal,
): Promise<void> {
  let delay = 500;
  let connectedOnce = false;
  while (!done.aborted) {
    const query = new URLSearchParams({ mode: f.mode });
    const headers: Record<string, string> = { accept: "text/event-stream" };
    if (f.position !== null) headers["last-event-id"] = String(f.position);
    let res: Response;
    try {
      res = await ctx.client.fetch(`/local/stream?${query}`, { headers, timeoutMs: 0, signal: done });
    } catch (error) {
      if (done.aborted) return;
      if (!connectedOnce) throw error;
      notice(ctx, f.mode, `${(error as Error).message}; retrying in ${delay / 1000} s`);
      await Bun.sleep(delay);
      delay = Math.min(delay * 2, 10_000);
      continue;
    }
    if (res.status === 429 || res.status === 503) {
      const wait = Number(res.headers.get("retry-after") ?? 5) * 1000;
      notice(ctx, f.mode, `the service refused the stream (${res.status}); retrying in ${wait / 1000} s`);
      await res.body?.cancel();
      await Bun.sleep(wait);
      continue;
    }
    if (!res.ok || !res.body)
      throw apiFailure(
        res.status,
        await res.json().catch(() => null),
        `GET /local/stream?mode=${f.mode}`,
        Boolean(ctx.env.ZOE_API_TOKEN),
      );
    if (connectedOnce) notice(ctx, f.mode, `reconnected, resuming after seq ${f.position ?? "(live)"}`);
    connectedOnce = true;
    delay = 500;
    try {
      for await (const data of sseData(res.body, done)) {
        const e = JSON.parse(data) as StreamEvent;
        if (f.position !== null && e.seq <= f.position) continue;
        f.position = e.seq;
        if (matches(e, filter) && !emit(e)) return;
      }
      if (done.aborted) return;
      notice(ctx, f.mode, `the stream ended (service stopping?); reconnecting`);
    } catch (error) {
      if (done.aborted) return;
      notice(ctx, f.mode, `stream lost: ${(error as Error).message}; reconnecting`);
    }
    await Bun.sleep(delay);
  }
}

const list = (v: unknown) =>
  typeof v === "string"
    ? v
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean)
    : null;

export const tailCommand: Command = {
  name: "tail",
  summary: "follow the event stream, filtered by mode, type, severity",
  help: `Usage: zoe-local tail [--mode live|paper] [--type T,...] [--subtype S,...] [--symbol X,...]
                     [--severity LEVEL] [-n N | --since-seq N] [--count N] [--json]

Prints the newest N events (default 10), then every new one as it is stored,
until Ctrl-C. A lost connection is resumed from the last seq seen
(Last-Event-ID): nothing is missed, nothing printed twice.

  --mode MODE       one mode (default: both)
  --type T,...      only these event types (e.g. ORDER,RISK)
  --subtype S,...   only these subtypes (e.g. BUY_FILLED,KILL_SWITCH)
  --symbol X,...    only these symbols
  --severity LEVEL  at least this severity: debug, info, warn, error, critical
  -n, --lines N     start with the newest N events (before filtering; 0: only new ones)
  --since-seq N     start after this seq instead (one --mode only)
  --count N         exit after N matching events
  --json            one event JSON per line (NDJSON)`,
  options: {
    mode: { type: "string" },
    type: { type: "string" },
    subtype: { type: "string" },
    symbol: { type: "string" },
    severity: { type: "string" },
    lines: { type: "string", short: "n" },
    "since-seq": { type: "string" },
    count: { type: "string" },
  },
  async run(ctx, values) {
    const mode = values.mode as string | undefined;
    if (mode !== undefined && !(MODES as readonly string[]).includes(mode))
      throw usage(`--mode: expected ${MODES.join(" or ")}, got "${mode}"`);
    const severity = (values.severity as string | undefined)?.toLowerCase();
    if (severity !== undefined && !(SEVERITIES as readonly string[]).includes(severity))
      throw usage(`--severity: expected one of ${SEVERITIES.join(", ")}, got "${severity}"`);
    const int = (name: string): number | null => {
      const v = values[name] as string | undefined;
      if (v === undefined) return null;
      if (!/^\d+$/.test(v)) throw usage(`--${name}: expected a whole number, got "${v}"`);
      return Number(v);
    };
    const lines = int("lines") ?? 10;
    const sinceSeq = int("since-seq");
    const limit = int("count");
    if (sinceSeq !== null && !mode) throw usage("--since-seq needs --mode (seqs are per mode)");
    const filter: TailFilter = {
      types: list(values.type),
      subtypes: list(values.subtype),
      symbols: list(values.symbol),
      minSeverity: severity ? SEVERITIES.indexOf(severity as (typeof SEVERITIES)[number]) : 0,
    };
    const modes = mode ? [mode] : [...MODES];
    // Where to start: the newest seq now, less N; this also checks the service answers before streaming.
    const status = await fetchStatus(ctx);
    const follows: Follow[] = modes.map((m) => ({
      mode: m,
      position: sinceSeq ?? Math.max(0, Number(status.modes[m]?.last_seq ?? 0) - lines),
    }));

    const done = new AbortController();
    ctx.signal.addEventListener("abort", () => done.abort(), { once: true });
    let printed = 0;
    const emit = (e: StreamEvent) => {
      ctx.io.out(ctx.json ? JSON.stringify(e) : eventLine(e, ctx));
      printed++;
      if (limit !== null && printed >= limit) {
        done.abort();
        return false;
      }
      return true;
    };
    if (limit === 0) return EXIT.ok;
    const results = await Promise.allSettled(follows.map((f) => follow(ctx, f, filter, emit, done.signal)));
    done.abort();
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed)
      throw failed.reason instanceof CliError ? failed.reason : new CliError(EXIT.failed, String(failed.reason));
    return EXIT.ok;
  },
};
