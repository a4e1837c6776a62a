// `zoe-local status`: is it up, is anything wrong, and the figures behind it.
import type { Command, Context } from "../context.ts";
import { EXIT } from "../exit.ts";
import { bytesText, count, durationText, relativeText, table } from "../format.ts";

export interface StatusBody {
  status: "ok" | "degraded" | "not_ready";
  problems: string[];
  service: {
    version: string;
    commit: string;
    bun: string;
    sqlite: string;
    pid: number;
    started_at: string;
    uptime_s: number;
  };
  ready: { ready: boolean; reasons: string[] };
  db: {
    path: string;
    size_bytes: number | null;
    wal_bytes: number | null;
    free_disk_bytes: number | null;
    store_id?: string;
  };
  remote: { configured: boolean; target: string | null };
  capacity: { accepting: string; fill_ratio: number; min_free_disk_bytes?: number | null } & Record<string, unknown>;
  // biome-ignore lint/suspicious/noExplicitAny: per-mode figures are read loosely, whatever a newer service adds
  modes: Record<string, Record<string, any>>;
}

export async function fetchStatus(ctx: Context): Promise<StatusBody> {
  return (await ctx.client.json<StatusBody>("/local/status")).body;
}

// biome-ignore lint/suspicious/noExplicitAny: a row of StatusBody.modes
function flushCell(m: Record<string, any>, now: number): string {
  if (!m.last_flush_ts) return "never";
  return `${m.last_flush_status ?? "ok"} ${relativeText(m.last_flush_ts, now)}`;
}

// biome-ignore lint/suspicious/noExplicitAny: a row of StatusBody.modes
function flusherCell(m: Record<string, any>, now: number, configured: boolean): string {
  if (!configured) return "no remote";
  const phase = String(m.flusher ?? "—");
  return m.next_attempt_at && phase !== "flushing" ? `${phase}, next ${relativeText(m.next_attempt_at, now)}` : phase;
}

export function renderStatus(s: StatusBody, url: string, ctx: Pick<Context, "paint">, now: number): string {
  const p = ctx.paint;
  const verdict =
    s.status === "ok" ? p.green("OK") : s.status === "degraded" ? p.yellow("DEGRADED") : p.red("NOT READY");
  const lines = [
    `zoe-local ${s.service.version} (commit ${s.service.commit}, bun ${s.service.bun}, sqlite ${s.service.sqlite}) at ${url}, pid ${s.service.pid}, up ${durationText(s.service.uptime_s * 1000)}`,
    `status:    ${verdict}`,
    ...s.problems.map((line) => `  ${p.red("!")} ${line}`),
    `database:  ${s.db.path}  ${bytesText(s.db.size_bytes)} (WAL ${bytesText(s.db.wal_bytes)}), disk free ${bytesText(s.db.free_disk_bytes)}`,
    ...(s.db.store_id ? [`store:     ${s.db.store_id}`] : []),
    `remote:    ${s.remote.configured ? s.remote.target : "none configured (SUPABASE_URL unset): events stay local"}`,
    `ingest:    ${s.capacity.accepting === "all" || s.capacity.accepting === "unlimited" ? "accepting all events" : s.capacity.accepting === "critical" ? p.yellow("only critical events accepted") : p.red("refusing all events")}, limits ${Math.round(s.capacity.fill_ratio * 100)}% full`,
    "",
  ];
  const modes = Object.keys(s.modes).sort();
  lines.push(
    table(
      ["mode", "backlog", "oldest", "last flush", "flusher", "failures", "quarantined", "last seq", "streams"],
      modes.map((mode) => {
        const m = s.modes[mode]!;
        return [
          mode,
          count(m.backlog ?? 0),
          m.oldest_unflushed_age_ms === null ? "—" : durationText(m.oldest_unflushed_age_ms),
          flushCell(m, now),
          flusherCell(m, now, s.remote.configured),
          String(m.consecutive_failures ?? 0),
          String(m.quarantined ?? 0),
          count(m.last_seq ?? 0),
          String(m.sse_clients ?? 0),
        ];
      }),
    ),
  );
  for (const mode of modes) {
    const err = s.modes[mode]!.last_error ?? s.modes[mode]!.last_flush_error;
    if (err) lines.push(`${mode}: last error: ${err}`);
    const range = s.modes[mode]!.store?.seq_range;
    if (range)
      lines.push(`${mode}: seqs of this start from ${range.start_seq}${range.recorded ? "" : " (no event yet)"}`);
    const second = s.modes[mode]!.second_writer;
    if (second?.active)
      lines.push(
        p.red(
          `${mode}: second writer: ${(second.writers ?? []).map((w: { store_id: string; started_at: string }) => `store ${w.store_id} (started ${w.started_at})`).join(" and ")}`,
        ),
      );
  }
  return lines.join("\n");
}

export const statusCommand: Command = {
  name: "status",
  summary: "backlog per mode, last flush, flusher state, quarantine, database size",
  help: `Usage: zoe-local status [--json]

Prints what the service reports (GET /local/status): build and uptime, the
problems it sees, database path and size, free disk, the remote, and per mode
the backlog, the oldest unflushed event's age, the last flush, the flusher's
state, failed attempts in a row, quarantined events, last seq, open streams;
the store id and where each mode's seqs of this start begin, and a second
store writing the same mode (both store ids) when Supabase has seen one.

Exits 0 when the status is ok, 1 when the service reports a problem
(degraded or not ready), 3 when it cannot be reached, 4 on a refused token.

  --json    the status document as the service answers it, plus "url"`,
  options: {},
  async run(ctx) {
    const s = await fetchStatus(ctx);
    if (ctx.json) ctx.io.out(JSON.stringify({ url: ctx.client.url, ...s }, null, 2));
    else ctx.io.out(renderStatus(s, ctx.client.url, ctx, ctx.now()));
    return s.status === "ok" ? EXIT.ok : EXIT.failed;
  },
};
