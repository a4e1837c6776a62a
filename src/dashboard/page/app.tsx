// The dashboard: badge, mode switch, state panel, flush status, the last
// hour's charts, event feed.
// The feed batches updates per animation frame and keeps at most maxEvents,
// so a burst of 1,000 events/s costs one render of a bounded list per frame.
import { memo, type FormEvent, useMemo, useState } from "react";
import { unionBySeq } from "../../client/merge.ts";
import type { RemoteReader } from "../../client/remote.ts";
import { type FeedState, type FlushHealth, type Mode, SEVERITIES, type StoredEvent } from "../../client/types.ts";
import { type LocalLive, useLocalLive } from "../../client/use-local-live.ts";
import type { DashboardConfig } from "../config.ts";
import { HistoryPanel } from "./charts.tsx";
import { type FeedFilters, matches, toggleSeverity } from "./filters.ts";
import { useHistory } from "./use-history.ts";
import { agoText, everyText, isPnlKey, moneyText, pnlText, timeText, valueText } from "./format.ts";

export interface AppProps {
  config: DashboardConfig;
  remote: RemoteReader | null;
  initialMode: Mode;
  initialToken: string | null;
  initialFilters: FeedFilters;
  onMode(mode: Mode): void;
  onFilters(filters: FeedFilters): void;
  onToken(token: string | null): void;
}

export function App({
  config,
  remote,
  initialMode,
  initialToken,
  initialFilters,
  onMode,
  onFilters,
  onToken,
}: AppProps) {
  const [mode, setMode] = useState<Mode>(initialMode);
  const [filters, setFilters] = useState<FeedFilters>(initialFilters);
  const [token, setToken] = useState<string | null>(initialToken);
  const live = useLocalLive(mode, {
    localApiUrl: config.localApiUrl,
    apiToken: token,
    remote,
    pollIntervalMs: config.pollIntervalMs,
    realtime: config.realtime,
    maxEvents: config.maxEvents,
  });
  const history = useHistory({
    baseUrl: config.localApiUrl,
    token,
    local: live.isLocal,
    connecting: live.status === "connecting",
    refreshKey: live.health,
  });
  const switchMode = (m: Mode) => {
    setMode(m);
    onMode(m);
  };
  return (
    <div className="page" data-mode={mode}>
      <ModeBanner mode={mode} />
      <header className="top">
        <h1>Zoe</h1>
        <ModeSwitch mode={mode} onChange={switchMode} />
        <Badge live={live} />
      </header>
      {live.unauthorized && (
        <TokenForm
          onSubmit={(t) => {
            setToken(t);
            onToken(t);
          }}
        />
      )}
      <main className="grid">
        <StatePanel state={live.state} lastSeq={live.lastSeq} live={live} />
        <FlushPanel health={live.health} syncedAgoS={live.syncedAgoS} live={live} />
        <HistoryPanel state={history} mode={mode} />
        <Feed
          asOf={badgeKind(live) === "offline" ? (live.health?.asOf ?? live.state?.asOf ?? null) : null}
          events={live.events}
          important={live.important}
          max={config.maxEvents}
          filters={filters}
          onFilters={(f) => {
            setFilters(f);
            onFilters(f);
          }}
        />
      </main>
    </div>
  );
}

/** Which money is at stake, before anything else on the page: live trading must never pass for paper. */
function ModeBanner({ mode }: { mode: Mode }) {
  if (mode === "live")
    return (
      <div className="mode-banner live" data-testid="mode-banner" data-mode="live" role="alert">
        <strong>LIVE TRADING</strong> · real money · every order and fill below is real
      </div>
    );
  return (
    <div className="mode-banner paper" data-testid="mode-banner" data-mode="paper">
      <strong>PAPER</strong> · simulated trading, no real money
    </div>
  );
}

function ModeSwitch({ mode, onChange }: { mode: Mode; onChange(mode: Mode): void }) {
  return (
    // biome-ignore lint/a11y/useSemanticElements: a fieldset's border and legend do not fit the header bar
    <div className="modes" role="group" aria-label="Trading mode">
      {(["paper", "live"] as const).map((m) => (
        <button key={m} type="button" data-testid={`mode-${m}`} aria-pressed={mode === m} onClick={() => onChange(m)}>
          {m}
        </button>
      ))}
    </div>
  );
}

function syncedText(live: LocalLive): string {
  if (live.syncedAgoS !== null) return `Supabase synced ${agoText(live.syncedAgoS)}`;
  if (live.health?.remoteConfigured === false) return "Supabase: no remote configured";
  return "Supabase not synced yet";
}

export type BadgeKind = "local" | "remote" | "offline" | "connecting";

/** OFFLINE when the local API is away and there is no Supabase to fall back to: nothing on the page is current. */
export function badgeKind(live: LocalLive): BadgeKind {
  if (live.isLocal) return "local";
  if (live.status !== "remote") return "connecting";
  return live.remote.configured ? "remote" : "offline";
}

const BADGE_LABEL: Record<BadgeKind, string> = {
  local: "LOCAL LIVE",
  remote: "REMOTE",
  offline: "OFFLINE",
  connecting: "CONNECTING",
};

export function Badge({ live }: { live: LocalLive }) {
  const kind = badgeKind(live);
  return (
    <div className={`badge ${kind}`} data-testid="badge" data-status={kind} data-next-probe={live.nextProbeAt ?? ""}>
      <div className="badge-title">
        <span className="dot" aria-hidden="true">
          {kind === "local" ? "●" : "○"}
        </span>
        <span data-testid="badge-label" role="status">
          {BADGE_LABEL[kind]}
        </span>
      </div>
      {kind === "remote" && (
        <div data-testid="badge-polling">
          {live.remote.via === "realtime" ? "Realtime" : `Polling every ${everyText(live.remote.pollIntervalMs)}`}
        </div>
      )}
      {kind === "offline" && (
        <div data-testid="badge-detail">
          {live.unauthorized ? "the local API refused the token" : "local API unreachable"} · Supabase not configured
        </div>
      )}
      {kind !== "offline" && <div data-testid="badge-synced">{syncedText(live)}</div>}
    </div>
  );
}

/** "as of <time>" for figures the page keeps showing once their source stopped answering live. */
function AsOf({ at, testId, source }: { at: string | null | undefined; testId: string; source?: string }) {
  if (!at) return null;
  return (
    <span className="as-of" data-testid={testId}>
      as of {timeText(at)}
      {source ? ` (${source})` : ""}
    </span>
  );
}

function TokenForm({ onSubmit }: { onSubmit(token: string): void }) {
  const [value, setValue] = useState("");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (value.trim()) onSubmit(value.trim());
  };
  return (
    <form className="token" onSubmit={submit}>
      <label>
        The local API needs its token (ZOE_API_TOKEN):{" "}
        <input type="password" autoComplete="off" value={value} onChange={(e) => setValue(e.target.value)} />
      </label>
      <button type="submit">Connect</button>
    </form>
  );
}

/** Columns read best in this order; other keys follow alphabetically, so the order never depends on the source. */
const COLUMN_ORDER = [
  "symbol",
  "side",
  "qty",
  "quantity",
  "avg_price",
  "price",
  "last_price",
  "market_value",
  "unrealized_pnl",
  "realized_pnl",
  "pnl",
];

/**
 * The columns of a table of objects: the same for the same rows whatever
 * order their keys come in (jsonb from Supabase reorders them; the local API
 * keeps the bot's order), at most `max`.
 */
export function columnsOf(rows: readonly object[], max = 8): string[] {
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const rank = (k: string) => {
    const i = COLUMN_ORDER.indexOf(k);
    return i === -1 ? COLUMN_ORDER.length : i;
  };
  return keys.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0)).slice(0, max);
}

/** A value under `key`: P&L with its sign and colour, anything else as text. */
function Cell({ name, value }: { name: string; value: unknown }) {
  if (isPnlKey(name)) {
    const { text, sign } = pnlText(value);
    if (sign) return <span className={`pnl ${sign}`}>{text}</span>;
  }
  return <>{valueText(value)}</>;
}

function Structured({ value }: { value: unknown }) {
  if (value === null || value === undefined) return <span className="muted">—</span>;
  if (Array.isArray(value)) {
    if (value.length === 0) return <span className="muted">none</span>;
    if (value.every((v) => v !== null && typeof v === "object" && !Array.isArray(v))) {
      const cols = columnsOf(value as object[]);
      return (
        <table className="mini">
          <thead>
            <tr>
              {cols.map((c) => (
                <th key={c}>{c}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {value.map((row, i) => (
              // biome-ignore lint/suspicious/noArrayIndexKey: rows have no identity of their own; the table is redrawn whole
              <tr key={i}>
                {cols.map((c) => (
                  <td key={c}>
                    <Cell name={c} value={(row as Record<string, unknown>)[c]} />
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      );
    }
    return <span>{value.map(valueText).join(", ")}</span>;
  }
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (entries.length === 0) return <span className="muted">none</span>;
    return (
      <dl className="kv">
        {entries.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>
              <Cell name={k} value={v} />
            </dd>
          </div>
        ))}
      </dl>
    );
  }
  return <span>{valueText(value)}</span>;
}

function StatePanel({ state, lastSeq, live }: { state: FeedState | null; lastSeq: number; live: LocalLive }) {
  const seq = Math.max(lastSeq, state?.lastSeq ?? 0);
  return (
    <section className="panel state" data-testid="state" data-stale={!live.isLocal && state !== null}>
      <h2>
        State{" "}
        {!live.isLocal && (
          <AsOf
            at={state?.asOf}
            testId="state-as-of"
            source={live.status === "remote" && live.remote.configured ? "Supabase" : undefined}
          />
        )}
      </h2>
      <dl className="facts">
        <div>
          <dt>Cash</dt>
          <dd data-testid="cash">{moneyText(state?.cash)}</dd>
        </div>
        <div>
          <dt>Last seq</dt>
          <dd data-testid="last-seq">{seq > 0 ? seq : "—"}</dd>
        </div>
        <div>
          <dt>Snapshot</dt>
          <dd data-testid="snapshot">{state?.ts ? timeText(state.ts) : "—"}</dd>
        </div>
      </dl>
      <h3>Holdings</h3>
      <Structured value={state?.holdings} />
      <h3>Positions</h3>
      <Structured value={state?.positions} />
    </section>
  );
}

function lastFlushText(health: FlushHealth | null): string {
  if (!health) return "—";
  if (health.lastFlushTs) {
    const n = health.lastBatchCount;
    const count = n !== null ? ` · ${n} event${n === 1 ? "" : "s"}` : "";
    return `${health.lastFlushStatus ?? "ok"} · ${timeText(health.lastFlushTs)}${count}`;
  }
  return health.remoteConfigured === false ? "— (Supabase not configured)" : "none yet";
}

function FlushPanel({
  health,
  syncedAgoS,
  live,
}: {
  health: FlushHealth | null;
  syncedAgoS: number | null;
  live: LocalLive;
}) {
  const status = health?.lastFlushStatus ?? null;
  const note = [
    health ? `as reported by ${health.source === "local" ? "the local service" : "Supabase (zoe_health)"}` : null,
    !live.isLocal && live.localError ? `local: ${live.localError}` : null,
    live.remote.error && !live.isLocal && live.remote.configured ? `remote: ${live.remote.error}` : null,
  ].filter((part) => part !== null);
  return (
    <section className="panel flush" data-testid="flush" data-stale={!live.isLocal && health !== null}>
      <h2>
        Flush to Supabase{" "}
        {!live.isLocal && (
          <AsOf at={health?.asOf} testId="flush-as-of" source={health?.source === "remote" ? "Supabase" : undefined} />
        )}
      </h2>
      <dl className="facts">
        <div>
          <dt>Backlog</dt>
          <dd data-testid="backlog">{health?.backlog ?? "—"}</dd>
        </div>
        <div>
          <dt>Last flush</dt>
          <dd data-testid="last-flush" className={status === "error" ? "bad" : status === "partial" ? "warn" : ""}>
            {lastFlushText(health)}
          </dd>
        </div>
        <div>
          <dt>Synced</dt>
          <dd data-testid="synced">{syncedAgoS === null ? "—" : agoText(syncedAgoS)}</dd>
        </div>
      </dl>
      {health?.lastFlushError && <p className="bad">{health.lastFlushError}</p>}
      <p className="muted small" data-testid="source">
        {note.join(" · ")}
      </p>
    </section>
  );
}

const EventRow = memo(function EventRow({ e }: { e: StoredEvent }) {
  return (
    <tr className={`sev-${e.severity}`} data-seq={e.seq} data-mode={e.mode}>
      <td className="time">{timeText(e.ts, { ms: true })}</td>
      <td className="seq">{e.seq}</td>
      <td>
        <span className={`sev sev-${e.severity}`}>{e.severity}</span>
      </td>
      <td className="kind">
        {e.type}/<b>{e.subtype}</b>
      </td>
      <td className="sym">{e.symbol ?? ""}</td>
      <td className="body">{e.body}</td>
    </tr>
  );
});

function FilterBar({
  filters,
  types,
  onChange,
}: {
  filters: FeedFilters;
  types: readonly string[];
  onChange(f: FeedFilters): void;
}) {
  return (
    <div className="filters" data-testid="filters">
      {/* biome-ignore lint/a11y/useSemanticElements: a fieldset's border and legend do not fit the toolbar */}
      <span className="sevs" role="group" aria-label="Severities shown">
        {SEVERITIES.map((s) => (
          <label key={s} className={`sev sev-${s}`}>
            <input
              type="checkbox"
              data-testid={`filter-sev-${s}`}
              checked={filters.severities.includes(s)}
              onChange={() => onChange(toggleSeverity(filters, s))}
            />
            {s}
          </label>
        ))}
      </span>
      <label>
        Type{" "}
        <select
          data-testid="filter-type"
          value={filters.type ?? ""}
          onChange={(e) => onChange({ ...filters, type: e.target.value || null })}
        >
          <option value="">all</option>
          {types.map((t) => (
            <option key={t} value={t}>
              {t}
            </option>
          ))}
        </select>
      </label>
      <label>
        Symbol{" "}
        <input
          data-testid="filter-symbol"
          size={8}
          placeholder="all"
          value={filters.symbol ?? ""}
          onChange={(e) => onChange({ ...filters, symbol: e.target.value.trim() ? e.target.value : null })}
        />
      </label>
    </div>
  );
}

function Feed({
  asOf,
  events,
  important,
  max,
  filters,
  onFilters,
}: {
  asOf: string | null;
  events: readonly StoredEvent[];
  important: readonly StoredEvent[];
  max: number;
  filters: FeedFilters;
  onFilters(f: FeedFilters): void;
}) {
  const all = useMemo(() => unionBySeq(events, important), [events, important]);
  const types = useMemo(() => {
    const seen = new Set(all.map((e) => e.type));
    if (filters.type) seen.add(filters.type);
    return [...seen].sort();
  }, [all, filters.type]);
  const rows = [];
  for (let i = all.length - 1; i >= 0; i--) {
    const e = all[i]!;
    if (matches(e, filters)) rows.push(<EventRow key={e.seq} e={e} />);
  }
  return (
    <section className="panel feed">
      <h2>
        Events{" "}
        <span className="muted small">
          newest first: the last {max}, and the last {max} fills, kill switches and errors however many ticks came after
          them
        </span>{" "}
        <AsOf at={asOf} testId="feed-as-of" />
      </h2>
      <FilterBar filters={filters} types={types} onChange={onFilters} />
      <p className="muted small" data-testid="feed-count">
        {rows.length} shown of {all.length}
        {all.length > rows.length ? " (the rest filtered out)" : ""}
      </p>
      <div className="scroll">
        <table data-testid="feed">
          <thead>
            <tr>
              <th>Time</th>
              <th>Seq</th>
              <th>Severity</th>
              <th>Type/subtype</th>
              <th>Symbol</th>
              <th>Body</th>
            </tr>
          </thead>
          <tbody>{rows}</tbody>
        </table>
        {all.length === 0 && <p className="muted empty">No events yet.</p>}
        {all.length > 0 && rows.length === 0 && <p className="muted empty">No event matches the filters.</p>}
      </div>
    </section>
  );
}
