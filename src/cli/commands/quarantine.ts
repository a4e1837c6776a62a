// `zoe-local quarantine list|show|release`: the poison events the flusher set
// aside, why, and putting them back in the queue once the cause is fixed.
import { isUuid, MODES } from "../../../supabase/functions/_shared/event-schema.ts";
import type { Command, Context } from "../context.ts";
import { CliError, EXIT, usage } from "../exit.ts";
import { count, plural, relativeText, table } from "../format.ts";

interface Entry {
  event: {
    id: string;
    seq: number;
    mode: string;
    ts: string;
    type: string;
    subtype: string;
    symbol: string | null;
    body: string;
  } & Record<string, unknown>;
  reason: string;
  errors: { path: string; message: string }[];
  remote_status: number | null;
  attempts: number;
  quarantined_at: string;
}

const PAGE = 1000;

async function listMode(ctx: Context, mode: string, limit: number): Promise<{ count: number; events: Entry[] }> {
  const events: Entry[] = [];
  let after = 0;
  let total = 0;
  while (events.length < limit) {
    const want = Math.min(PAGE, limit - events.length);
    const q = new URLSearchParams({ mode, limit: String(want), ...(after > 0 ? { since_seq: String(after) } : {}) });
    const { body } = await ctx.client.json<{ count: number; events: Entry[] }>(`/local/quarantine?${q}`);
    total = body.count;
    events.push(...body.events);
    if (body.events.length < want) break;
    after = body.events.at(-1)!.event.seq;
  }
  return { count: total, events };
}

const modeOption = (v: unknown): string[] => {
  if (v === undefined) return [...MODES];
  if (!(MODES as readonly string[]).includes(v as string))
    throw usage(`--mode: expected ${MODES.join(" or ")}, got "${v}"`);
  return [v as string];
};

async function list(ctx: Context, values: Record<string, unknown>): Promise<number> {
  const modes = modeOption(values.mode);
  const raw = values.limit as string | undefined;
  if (raw !== undefined && !/^[1-9]\d*$/.test(raw))
    throw usage(`--limit: expected a positive whole number, got "${raw}"`);
  const limit = raw ? Number(raw) : 100;
  const found = await Promise.all(modes.map(async (m) => ({ mode: m, ...(await listMode(ctx, m, limit)) })));
  if (ctx.json) {
    ctx.io.out(
      JSON.stringify(Object.fromEntries(found.map((f) => [f.mode, { count: f.count, events: f.events }])), null, 2),
    );
    return EXIT.ok;
  }
  const now = ctx.now();
  const rows = found.flatMap((f) =>
    f.events.map((e) => [
      f.mode,
      String(e.event.seq),
      e.event.id,
      `${e.event.type}/${e.event.subtype}`,
      String(e.attempts),
      relativeText(e.quarantined_at, now),
      e.reason.slice(0, 80),
    ]),
  );
  const total = found.reduce((n, f) => n + f.count, 0);
  if (total === 0) {
    ctx.io.out(`no quarantined events${modes.length === 1 ? ` in ${modes[0]}` : ""}`);
    return EXIT.ok;
  }
  ctx.io.out(table(["mode", "seq", "id", "type/subtype", "attempts", "since", "reason"], rows));
  const shown = rows.length;
  ctx.io.out(
    `\n${plural(total, "quarantined event")}${shown < total ? ` (${count(shown)} shown; --limit for more)` : ""}. Details: zoe-local quarantine show <id>; after a fix: zoe-local quarantine release --mode <mode> --all`,
  );
  return EXIT.ok;
}

async function show(ctx: Context, positionals: string[]): Promise<number> {
  const id = positionals[0];
  if (!id || positionals.length > 1) throw usage("quarantine show takes one event id");
  if (!isUuid(id)) throw usage(`"${id}" is not an event id (a lower-case UUID)`);
  const res = await ctx.client.json<Entry>(`/local/quarantine/${id}`, { accept: [404] });
  if (res.status === 404)
    throw new CliError(EXIT.failed, `event ${id} is not in the quarantine (already released, or never quarantined)`);
  const e = res.body;
  if (ctx.json) {
    ctx.io.out(JSON.stringify(e, null, 2));
    return EXIT.ok;
  }
  ctx.io.out(
    [
      `event ${e.event.id} (${e.event.mode} #${e.event.seq}, ${e.event.type}/${e.event.subtype}${e.event.symbol ? ` ${e.event.symbol}` : ""}, ts ${e.event.ts})`,
      `reason:         ${e.reason}`,
      ...e.errors.map((x) => `  ${x.path || "/"}: ${x.message}`),
      `remote status:  ${e.remote_status ?? "—"}`,
      `attempts:       ${e.attempts}`,
      `quarantined:    ${e.quarantined_at} (${relativeText(e.quarantined_at, ctx.now())})`,
      "event:",
      JSON.stringify(e.event, null, 2),
    ].join("\n"),
  );
  return EXIT.ok;
}

async function release(ctx: Context, values: Record<string, unknown>, ids: string[]): Promise<number> {
  const mode = values.mode as string | undefined;
  if (mode === undefined) throw usage("quarantine release needs --mode (live or paper)");
  modeOption(mode);
  if (ids.length === 0 && !values.all)
    throw usage("quarantine release needs event ids, or --all to release every quarantined event of the mode");
  if (ids.length > 0 && values.all) throw usage("give event ids or --all, not both");
  for (const id of ids) if (!isUuid(id)) throw usage(`"${id}" is not an event id (a lower-case UUID)`);
  const { body } = await ctx.client.json<{ mode: string; released: number; quarantined: number }>(
    "/local/quarantine/retry",
    {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(ids.length > 0 ? { mode, ids } : { mode }),
    },
  );
  if (ctx.json) ctx.io.out(JSON.stringify(body));
  else
    ctx.io.out(
      `released ${plural(body.released, "event")} of ${mode} back into the flush queue (a flush starts now); ${count(body.quarantined)} still quarantined`,
    );
  return ids.length > 0 && body.released < ids.length ? EXIT.failed : EXIT.ok;
}

export const quarantineCommand: Command = {
  name: "quarantine",
  summary: "list, show and release events the remote rejected",
  help: `Usage: zoe-local quarantine list [--mode MODE] [--limit N] [--json]
       zoe-local quarantine show <event-id> [--json]
       zoe-local quarantine release --mode MODE (--all | <event-id>...)

Events the remote refused for good (or that fail the shared schema) are set
aside so the queue keeps moving. Find out why (show), fix the cause (remote
schema, function version, constraint), then release them: they go back in the
queue and a flush starts at once; one refused again returns with attempts + 1.

  list      by seq, with the reason (default: both modes, at most 100 each)
  show      one event in full: reason, field errors, remote status, attempts
  release   --all releases every quarantined event of --mode; ids release
            those (exit 1 when some were not in the quarantine)`,
  options: { mode: { type: "string" }, limit: { type: "string" }, all: { type: "boolean" } },
  async run(ctx, values, positionals) {
    const [sub, ...rest] = positionals;
    if (sub === "list" && rest.length === 0) return list(ctx, values);
    if (sub === "show") return show(ctx, rest);
    if (sub === "release") return release(ctx, values, rest);
    throw usage(
      sub ? `unknown quarantine command "${[sub, ...rest].join(" ")}"` : "quarantine needs list, show or release",
    );
  },
};
