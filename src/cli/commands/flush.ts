// `zoe-local flush`: flush now and wait, with a progress bar on a big backlog.
// The service does the work (POST /local/flush?wait=true answers when the
// queue is drained, or at the first failed attempt); the bar comes from
// polling GET /local/status, whose figures are running counters.
import { MODES } from "../../../supabase/functions/_shared/event-schema.ts";
import { apiError, apiFailure } from "../client.ts";
import type { Command, Context } from "../context.ts";
import { CliError, EXIT, usage } from "../exit.ts";
import { count, durationText, plural, progressBar } from "../format.ts";
import { fetchStatus } from "./status.ts";

/** Below this many events a flush is over before a bar would say anything. */
const BAR_FROM = 1000;

interface FlushAnswer {
  waited: boolean;
  took_ms?: number;
  modes: Record<
    string,
    { backlog_before: number; backlog: number; last_flush_status: string | null; quarantined: number }
  >;
}

function summary(body: FlushAnswer): string {
  const parts = Object.entries(body.modes).map(([mode, m]) =>
    m.backlog_before === 0 && m.backlog === 0
      ? `${mode}: nothing to flush`
      : `${mode}: ${count(m.backlog_before)} → ${count(m.backlog)} unflushed${m.quarantined > 0 ? `, ${plural(m.quarantined, "event")} quarantined` : ""}`,
  );
  return `flushed in ${durationText(body.took_ms ?? 0)}: ${parts.join("; ")}`;
}

async function watchProgress(
  ctx: Context,
  modes: string[],
  total: number,
  redraw: boolean,
  stop: AbortSignal,
): Promise<void> {
  const started = ctx.now();
  let lastLine = 0;
  const draw = (done: number) => {
    const seconds = (ctx.now() - started) / 1000;
    const line = `flushing ${modes.join("+")}: ${progressBar(done, total, seconds > 0.5 ? done / seconds : null)}`;
    if (redraw) ctx.io.err(`\r${line}\x1b[K`);
    else if (ctx.now() - lastLine >= 1000 || done >= total) {
      ctx.io.err(`${line}\n`);
      lastLine = ctx.now();
    }
  };
  draw(0);
  while (!stop.aborted) {
    await Bun.sleep(250);
    if (stop.aborted) break;
    try {
      const s = await fetchStatus(ctx);
      const left = modes.reduce((n, m) => n + Number(s.modes[m]?.backlog ?? 0), 0);
      draw(Math.max(0, total - left));
    } catch {
      // The flush request itself reports a service that went away.
    }
  }
}

export const flushCommand: Command = {
  name: "flush",
  summary: "flush to Supabase now and wait until the backlog is drained",
  help: `Usage: zoe-local flush [--mode live|paper] [--no-wait] [--progress | --no-progress]

Asks the flusher to send the backlog now (cutting a backoff wait short) and
waits until it is drained. From ${count(BAR_FROM)} events on it draws a progress bar
on stderr (redrawn on a terminal, a line a second otherwise).

Exits 0 when drained, 1 when an attempt failed (the error is printed; the
flusher keeps retrying on its own) or no remote is configured.

  --mode MODE     only this mode (default: both)
  --no-wait       ask for the flush and return at once
  --progress      draw the bar even when stderr is not a terminal
  --no-progress   never draw it`,
  options: {
    mode: { type: "string" },
    "no-wait": { type: "boolean" },
    progress: { type: "boolean" },
    "no-progress": { type: "boolean" },
  },
  async run(ctx, values) {
    const mode = values.mode as string | undefined;
    if (mode !== undefined && !(MODES as readonly string[]).includes(mode))
      throw usage(`--mode: expected ${MODES.join(" or ")}, got "${mode}"`);
    const modes = mode ? [mode] : [...MODES];
    const query = new URLSearchParams({ ...(mode ? { mode } : {}), wait: values["no-wait"] ? "false" : "true" });
    const before = await fetchStatus(ctx);
    if (!before.remote.configured)
      throw new CliError(
        EXIT.failed,
        "cannot flush: no remote is configured (SUPABASE_URL is unset), so events stay local",
      );
    const total = modes.reduce((n, m) => n + Number(before.modes[m]?.backlog ?? 0), 0);

    const stop = new AbortController();
    const wantBar =
      !values["no-wait"] &&
      !values["no-progress"] &&
      total >= BAR_FROM &&
      // With --json only an explicit --progress draws the bar: a script reads the output, not a person.
      (Boolean(values.progress) || (ctx.io.errIsTTY && !ctx.json));
    const progress = wantBar ? watchProgress(ctx, modes, total, ctx.io.errIsTTY, stop.signal) : Promise.resolve();
    const tty = ctx.io.errIsTTY;
    let res: Response;
    try {
      res = await ctx.client.fetch(`/local/flush?${query}`, {
        method: "POST",
        timeoutMs: values["no-wait"] ? undefined : 0,
        signal: ctx.signal,
      });
    } catch (error) {
      if (wantBar && tty) ctx.io.err("\n");
      if (ctx.signal.aborted) throw new CliError(EXIT.failed, "interrupted: the flush goes on in the service");
      throw error;
    } finally {
      stop.abort();
      await progress;
    }
    const body = (await res.json().catch(() => null)) as FlushAnswer | null;
    const drained = res.ok && body?.waited;
    // The bar ends at 100% when drained, else where it stood.
    if (wantBar)
      ctx.io.err(
        drained
          ? `${tty ? "\r" : ""}flushing ${modes.join("+")}: ${progressBar(total, total, null)}${tty ? "\x1b[K" : ""}\n`
          : tty
            ? "\n"
            : "",
      );
    if (res.status === 502 && apiError(body)?.code === "flush_failed")
      throw new CliError(EXIT.failed, `flush failed: ${apiError(body)!.message}`);
    if (!res.ok || !body) throw apiFailure(res.status, body, "POST /local/flush", Boolean(ctx.env.ZOE_API_TOKEN));
    if (ctx.json) ctx.io.out(JSON.stringify(body, null, 2));
    else if (!body.waited)
      ctx.io.out(
        `flush requested: ${Object.entries(body.modes)
          .map(([m, v]) => `${m} ${count(v.backlog_before)} unflushed`)
          .join(", ")}`,
      );
    else ctx.io.out(summary(body));
    return EXIT.ok;
  },
};
