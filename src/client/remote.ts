// Reading what the flusher wrote to Supabase, with the anon key: zoe_events,
// zoe_health and zoe_state (RLS lets anon SELECT, nothing more). The feed
// only sees the RemoteReader interface, so tests can hand it a fake.
import type { SupabaseClient } from "@supabase/supabase-js";
import { toEvent, unionBySeq } from "./merge.ts";
import { type FeedState, type FlushHealth, IMPORTANT_SUBTYPES, type Mode, type StoredEvent } from "./types.ts";

export interface RemoteSubscription {
  unsubscribe(): void;
}

export interface RemoteReader {
  /** The newest `limit` events of `mode` with seq > afterSeq, in any order. */
  events(mode: Mode, afterSeq: number, limit: number): Promise<StoredEvent[]>;
  /**
   * The newest `limit` important events of `mode` (an IMPORTANT_SUBTYPES
   * subtype, or severity error or critical), in any order: however many ticks
   * came after them, REMOTE mode still shows the fills and kill switches.
   */
  importantEvents?(mode: Mode, limit: number): Promise<StoredEvent[]>;
  health(mode: Mode): Promise<FlushHealth | null>;
  state(mode: Mode): Promise<FeedState | null>;
  /**
   * Pushes new events as they are inserted (Supabase Realtime). `onStatus`
   * gets "subscribed" once live and "failed" if the channel cannot be used.
   */
  subscribe?(
    mode: Mode,
    onEvent: (event: StoredEvent) => void,
    onStatus: (status: "subscribed" | "failed", detail?: string) => void,
  ): RemoteSubscription;
}

export class RemoteReadError extends Error {
  readonly code = "remote_read_failed";
  constructor(what: string, detail: string, options?: { cause?: unknown }) {
    super(`Cannot read ${what} from Supabase: ${detail}`, options);
    this.name = "RemoteReadError";
  }
}

// supabase-js reports errors as plain objects in `error`; turn them into Errors.
function unwrap<T>(
  what: string,
  result: { data: T | null; error: { message?: string; code?: string } | null },
): T | null {
  if (result.error)
    throw new RemoteReadError(
      what,
      `${result.error.message ?? "unknown error"}${result.error.code ? ` (${result.error.code})` : ""}`,
      { cause: result.error },
    );
  return result.data;
}

const num = (v: unknown): number | null =>
  v === null || v === undefined || v === "" || !Number.isFinite(Number(v)) ? null : Number(v);
const str = (v: unknown): string | null => (typeof v === "string" && v !== "" ? v : null);

/** A zoe_health row → FlushHealth. The flusher writes it after each successful flush. */
export function remoteHealth(row: Record<string, unknown>): FlushHealth {
  const lastFlushTs = str(row.last_flush_ts);
  return {
    backlog: num(row.backlog),
    lastFlushTs,
    lastFlushStatus: str(row.last_flush_status) ?? (lastFlushTs ? "ok" : null),
    lastFlushError: str(row.last_flush_error),
    lastBatchCount: num(row.last_batch_count),
    syncedAt: lastFlushTs,
    remoteConfigured: true,
    source: "remote",
    asOf: str(row.updated_at) ?? lastFlushTs,
  };
}

/** A zoe_state row ({mode, ts, state}) → FeedState. */
export function remoteState(row: Record<string, unknown>): FeedState {
  const state = (row.state !== null && typeof row.state === "object" ? row.state : {}) as Record<string, unknown>;
  return {
    cash: state.cash ?? null,
    holdings: state.holdings ?? null,
    positions: state.positions ?? null,
    ts: str(row.ts),
    lastSeq: num(state.last_seq),
    asOf: str(row.updated_at) ?? str(row.ts),
  };
}

export function createSupabaseReader(
  // biome-ignore lint/suspicious/noExplicitAny: any generated Database type the dashboard uses
  client: Pick<SupabaseClient<any, any, any>, "from" | "channel" | "removeChannel">,
): RemoteReader {
  return {
    async events(mode, afterSeq, limit) {
      // Newest first so a long absence loads the latest window, not the oldest.
      const rows = unwrap(
        "zoe_events",
        await client
          .from("zoe_events")
          .select("*")
          .eq("mode", mode)
          .gt("seq", afterSeq)
          .order("seq", { ascending: false })
          .limit(limit),
      );
      return ((rows ?? []) as unknown[]).map(toEvent).filter((e): e is StoredEvent => e !== null);
    },
    async importantEvents(mode, limit) {
      const newest = async (what: string, column: "subtype" | "severity", values: readonly string[]) => {
        const rows = unwrap(
          what,
          await client
            .from("zoe_events")
            .select("*")
            .eq("mode", mode)
            .in(column, [...values])
            .order("seq", { ascending: false })
            .limit(limit),
        );
        return ((rows ?? []) as unknown[])
          .map(toEvent)
          .filter((e): e is StoredEvent => e !== null)
          .sort((a, b) => a.seq - b.seq);
      };
      const [bySubtype, bySeverity] = await Promise.all([
        newest("zoe_events (important subtypes)", "subtype", IMPORTANT_SUBTYPES),
        newest("zoe_events (errors)", "severity", ["error", "critical"]),
      ]);
      return unionBySeq(bySubtype, bySeverity).slice(-limit);
    },
    async health(mode) {
      const rows = unwrap("zoe_health", await client.from("zoe_health").select("*").eq("mode", mode).limit(1));
      const row = (rows as Record<string, unknown>[] | null)?.[0];
      return row ? remoteHealth(row) : null;
    },
    async state(mode) {
      const rows = unwrap("zoe_state", await client.from("zoe_state").select("*").eq("mode", mode).limit(1));
      const row = (rows as Record<string, unknown>[] | null)?.[0];
      return row ? remoteState(row) : null;
    },
    subscribe(mode, onEvent, onStatus) {
      const channel = client
        .channel(`zoe-events-${mode}`)
        .on(
          "postgres_changes",
          { event: "INSERT", schema: "public", table: "zoe_events", filter: `mode=eq.${mode}` },
          (payload) => {
            const e = toEvent(payload.new);
            if (e) onEvent(e);
          },
        )
        .subscribe((status, error) => {
          if (status === "SUBSCRIBED") onStatus("subscribed");
          else onStatus("failed", error?.message ?? status);
        });
      return { unsubscribe: () => void client.removeChannel(channel) };
    },
  };
}
