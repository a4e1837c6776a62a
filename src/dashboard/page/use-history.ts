// The service's hour of history (GET /local/history, one request per mode)
// for the charts. It lives in the service's memory, so it exists only while
// the page is LOCAL: away from the box the hook answers "unreachable" and
// holds no samples, so the charts can never pass old lines off as live. It
// refetches whenever `refreshKey` changes: the page passes the flush health
// the feed replaces on each of its state refreshes, so the charts follow the
// page's own cadence instead of running a timer of their own.
import { useEffect, useState } from "react";
import type { Mode } from "../../client/types.ts";
import type { HistoryView } from "../../ops/history.ts";

export type HistoryState =
  | { status: "connecting" }
  | { status: "unreachable" }
  | { status: "loading" }
  | { status: "error"; error: string }
  | { status: "ok"; views: Record<Mode, HistoryView> };

export interface UseHistoryOptions {
  /** Base URL of the local API; "" = the page's origin. */
  baseUrl: string;
  token: string | null;
  /** True while the page is LOCAL LIVE. */
  local: boolean;
  /** True while the page has not yet found the local API or Supabase (its first connect). */
  connecting?: boolean;
  refreshKey: unknown;
}

const MODES: readonly Mode[] = ["paper", "live"];

export function historyUrl(baseUrl: string, mode: Mode, token: string | null): string {
  const url = `${baseUrl.replace(/\/+$/, "")}/local/history?mode=${mode}`;
  return token ? `${url}&token=${encodeURIComponent(token)}` : url;
}

async function fetchView(url: string, signal: AbortSignal): Promise<HistoryView> {
  const res = await fetch(url, { signal, cache: "no-store" });
  if (!res.ok) throw new Error(`GET /local/history answered ${res.status}`);
  return (await res.json()) as HistoryView;
}

export function useHistory({ baseUrl, token, local, connecting = false, refreshKey }: UseHistoryOptions): HistoryState {
  const [state, setState] = useState<HistoryState>(
    local ? { status: "loading" } : { status: connecting ? "connecting" : "unreachable" },
  );
  // biome-ignore lint/correctness/useExhaustiveDependencies: refreshKey is the signal to refetch, not a value read
  useEffect(() => {
    if (!local) {
      setState({ status: connecting ? "connecting" : "unreachable" });
      return;
    }
    const abort = new AbortController();
    Promise.all(MODES.map((m) => fetchView(historyUrl(baseUrl, m, token), abort.signal)))
      .then(([paper, live]) => {
        if (!abort.signal.aborted) setState({ status: "ok", views: { paper: paper!, live: live! } });
      })
      .catch((error: unknown) => {
        if (!abort.signal.aborted)
          setState({ status: "error", error: error instanceof Error ? error.message : String(error) });
      });
    return () => abort.abort();
  }, [baseUrl, token, local, connecting, refreshKey]);
  return state;
}
