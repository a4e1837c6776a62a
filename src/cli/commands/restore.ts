// `zoe-local restore --from-remote`: rebuilds a lost store from Supabase. It
// works on the database file itself (the service must be stopped: the store's
// instance lock says when it is not) and reads Supabase with the service's own
// settings (SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY, ZOE_DB_PATH; --env-file
// reads the systemd EnvironmentFile). The local side is src/store/restore.ts.
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { loadConfig, loadFlushConfig } from "../../config.ts";
import { StartupError } from "../../domain/errors.ts";
import { MODES, type Mode, type StoredEvent } from "../../../supabase/functions/_shared/event-schema.ts";
import { type RestoreProgress, type RestoreSource, restoreFromRemote } from "../../store/restore.ts";
import type { Command, Context } from "../context.ts";
import { CliError, EXIT, usage } from "../exit.ts";
import { count, plural, progressBar } from "../format.ts";

const COLUMNS = "id,mode,ts,seq,source,type,subtype,symbol,severity,body,meta,idempotency_key";

/** `7d`, `36h`, `90m`, `all`: how far back events are restored. */
export function parseSince(text: string, now: number): Date {
  if (text === "all") return new Date(0);
  const m = /^(\d+)([dhm])$/.exec(text.trim());
  if (!m || Number(m[1]) === 0)
    throw usage(`--since: expected a duration like 7d, 36h or 90m, or "all", got "${text}"`);
  const unit = { d: 86_400_000, h: 3_600_000, m: 60_000 }[m[2] as "d" | "h" | "m"];
  return new Date(now - Number(m[1]) * unit);
}

/** Supabase's tables through PostgREST (supabase-js), each answer checked. */
export function supabaseSource(url: string, serviceKey: string, timeoutMs: number): RestoreSource {
  const db: SupabaseClient = createClient(url, serviceKey, {
    auth: { persistSession: false, autoRefreshToken: false },
    global: {
      fetch: ((input: RequestInfo | URL, init?: RequestInit) =>
        fetch(input, { ...init, signal: AbortSignal.timeout(timeoutMs) })) as typeof fetch,
    },
  });
  const fail = (what: string, error: { message?: string; code?: string } | null) => {
    const reason = error?.message || error?.code || "no answer";
    return new CliError(EXIT.failed, `cannot read ${what} from Supabase at ${url}: ${reason}`, { cause: error });
  };
  return {
    async count(mode, sinceIso) {
      const { count: n, error } = await db
        .from("zoe_events")
        .select("id", { count: "exact", head: true })
        .eq("mode", mode)
        .gte("ts", sinceIso);
      if (error) throw fail(`the ${mode} event count`, error);
      return n ?? null;
    },
    async page(mode, sinceIso, fromSeq, limit) {
      const { data, error } = await db
        .from("zoe_events")
        .select(COLUMNS)
        .eq("mode", mode)
        .gte("ts", sinceIso)
        .gte("seq", fromSeq)
        .order("seq", { ascending: true })
        .order("id", { ascending: true })
        .limit(limit);
      if (error) throw fail(`${mode} events from seq ${fromSeq}`, error);
      // bigint columns may come back as strings: seqs are numbers locally.
      return (data as unknown as StoredEvent[]).map((e) => ({ ...e, seq: Number(e.seq) }));
    },
    async maxSeq(mode) {
      const { data, error } = await db
        .from("zoe_events")
        .select("seq")
        .eq("mode", mode)
        .order("seq", { ascending: false })
        .limit(1);
      if (error) throw fail(`the highest ${mode} seq`, error);
      const row = (data as { seq: number | string }[])[0];
      return row ? Number(row.seq) : null;
    },
    async latestState(mode) {
      const { data, error } = await db.from("zoe_state").select("ts,state").eq("mode", mode).limit(1);
      if (error) throw fail(`the ${mode} state snapshot`, error);
      const row = (data as { ts: string; state: unknown }[])[0];
      return row ?? null;
    },
  };
}

function progressPrinter(ctx: Context, wanted: boolean): (p: RestoreProgress) => void {
  const tty = ctx.io.errIsTTY;
  const started = new Map<Mode, number>();
  let lastLine = 0;
  return (p) => {
    if (!wanted) return;
    if (!started.has(p.mode)) started.set(p.mode, ctx.now());
    const seconds = (ctx.now() - started.get(p.mode)!) / 1000;
    const total = p.total ?? p.read;
    const done = p.total !== null && p.read >= p.total;
    // Without a terminal, one line per second at most (and the last), so a log stays readable.
    if (!tty && !done && ctx.now() - lastLine < 1000) return;
    lastLine = ctx.now();
    const bar = progressBar(p.read, total, seconds > 0.5 ? p.read / seconds : null);
    ctx.io.err(`${tty ? "\r" : ""}restoring ${p.mode}: ${bar}${tty ? "\x1b[K" : "\n"}`);
    if (tty && done) ctx.io.err("\n");
  };
}

export const restoreCommand: Command = {
  name: "restore",
  summary: "rebuild a lost store from Supabase (--from-remote)",
  help: `Usage: zoe-local restore --from-remote [--since 7d] [--mode live|paper] [--db PATH] [--force]

Rebuilds a lost or corrupt store from Supabase, the system of record: each
mode's events of the last --since (stored as already flushed, with the ids and
seqs Supabase holds), its latest state snapshot, and the seq position (the
service's next start numbers new events above every restored one). Stop the
service first; run it as the service's user with its settings, e.g.
  sudo -u zoe zoe-local --env-file /etc/zoe-local.env restore --from-remote

Safe to repeat: a restore cut short is completed by running it again (with
--force, as the store is no longer empty), and a second run changes nothing.

  --from-remote  read from SUPABASE_URL with SUPABASE_SERVICE_ROLE_KEY
  --since D      how far back: 7d (default), 36h, 90m, or all
  --mode M       only this mode (default: both)
  --db PATH      the database file (default: ZOE_DB_PATH, else ./data/zoe-local.db)
  --force        restore into a store that already holds events or snapshots
                 (what it holds stays; remote events that would share a seq
                 with a local one are reported and left out)
  --no-progress  no progress bar on stderr`,
  options: {
    "from-remote": { type: "boolean" },
    since: { type: "string" },
    mode: { type: "string" },
    db: { type: "string" },
    force: { type: "boolean" },
    "no-progress": { type: "boolean" },
  },
  async run(ctx, values, positionals) {
    if (positionals.length > 0) throw usage("restore takes no arguments");
    if (!values["from-remote"]) throw usage("restore needs --from-remote (Supabase is the only source)");
    const mode = values.mode as string | undefined;
    if (mode !== undefined && !(MODES as readonly string[]).includes(mode))
      throw usage(`--mode: expected live or paper, got "${mode}"`);
    const since = parseSince((values.since as string | undefined) ?? "7d", ctx.now());
    let dbPath: string;
    let remote: { url: string; serviceKey: string } | null;
    let timeoutMs: number;
    try {
      dbPath = (values.db as string | undefined) ?? loadConfig(ctx.env).dbPath;
      const flush = loadFlushConfig(ctx.env);
      remote = flush.remote;
      timeoutMs = flush.timeoutMs;
    } catch (error) {
      throw new CliError(EXIT.usage, `invalid settings: ${(error as Error).message}`, { cause: error });
    }
    if (dbPath === "" || dbPath === ":memory:") throw usage("--db: expected a database file");
    if (!remote)
      throw new CliError(
        EXIT.usage,
        "restore --from-remote needs SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY (the service's settings: --env-file FILE)",
      );
    let report: Awaited<ReturnType<typeof restoreFromRemote>>;
    try {
      report = await restoreFromRemote({
        path: dbPath,
        source: supabaseSource(remote.url, remote.serviceKey, timeoutMs),
        since,
        force: Boolean(values.force),
        modes: mode ? [mode as Mode] : MODES,
        onProgress: progressPrinter(ctx, !values["no-progress"] && !ctx.json),
        signal: ctx.signal,
      });
    } catch (error) {
      if (error instanceof CliError) throw error;
      if (error instanceof StartupError) throw new CliError(EXIT.failed, error.message, { cause: error });
      if (ctx.signal.aborted)
        throw new CliError(EXIT.failed, "restore interrupted: run it again with --force to complete it", {
          cause: error,
        });
      throw new CliError(EXIT.failed, `restore failed: ${(error as Error).message}`, { cause: error });
    }
    if (ctx.json) {
      ctx.io.out(JSON.stringify(report));
    } else {
      for (const m of report.modes) {
        const parts = [
          `${plural(m.inserted, "event")} restored`,
          m.present > 0 ? `${count(m.present)} already there` : null,
          m.conflicts.length > 0 ? `${count(m.conflicts.length)} left out (seq or key taken locally)` : null,
          m.state ? "state snapshot restored" : null,
          `remote seq ${m.remoteMaxSeq === null ? "none" : count(m.remoteMaxSeq)}`,
        ].filter(Boolean);
        ctx.io.out(`restore ${m.mode}: ${parts.join(", ")}`);
        for (const c of m.conflicts.slice(0, 10)) ctx.io.out(`  left out ${c.id}: ${c.reason}`);
      }
      ctx.io.out(`restore: ${report.path} is ready; start the service (new events continue above the restored seqs)`);
    }
    return report.modes.some((m) => m.conflicts.length > 0) ? EXIT.failed : EXIT.ok;
  },
};
