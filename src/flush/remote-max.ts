// The remote's highest seq of each mode, asked once at start-up so a new seq
// range also begins above what Supabase holds (src/store/ranges.ts). Bounded:
// the bot is never kept waiting on the remote, so whatever has not answered
// within the wait (about a second) is skipped and the range rests on its time
// base alone.
import { MODES, type Mode } from "../../supabase/functions/_shared/event-schema.ts";
import { redactCredentials } from "./sink.ts";

export interface RemoteMaxOptions {
  url: string;
  serviceKey: string;
  /** Give up after this long (default 1000 ms). */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** Highest zoe_events seq per mode (0 when the mode has none), or null with the reason when the remote did not answer in time. */
export async function fetchRemoteMaxSeqs(
  options: RemoteMaxOptions,
): Promise<{ seqs: Map<Mode, number> } | { seqs: null; reason: string }> {
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 1000;
  const signal = AbortSignal.timeout(timeoutMs);
  const base = options.url.replace(/\/+$/, "");
  const headers = { apikey: options.serviceKey, authorization: `Bearer ${options.serviceKey}` };
  const one = async (mode: Mode): Promise<number> => {
    const res = await doFetch(`${base}/rest/v1/zoe_events?select=seq&mode=eq.${mode}&order=seq.desc&limit=1`, {
      headers,
      signal,
    });
    // A proxy may echo the key it was sent; the reason ends up in the log, maybe cut short.
    if (!res.ok)
      throw new Error(
        `GET zoe_events (${mode}): ${res.status} ${redactCredentials(await res.text(), [options.serviceKey]).slice(0, 200)}`,
      );
    const rows = (await res.json()) as { seq: number | string }[];
    const seq = rows.length === 0 ? 0 : Number(rows[0]!.seq);
    if (!Number.isSafeInteger(seq) || seq < 0)
      throw new Error(`GET zoe_events (${mode}): seq ${rows[0]?.seq} unusable`);
    return seq;
  };
  try {
    const seqs = await Promise.all(MODES.map(one));
    return { seqs: new Map(MODES.map((m, i) => [m, seqs[i]!])) };
  } catch (error) {
    const reason = signal.aborted
      ? `no answer within ${timeoutMs} ms`
      : redactCredentials((error as Error).message, [options.serviceKey]);
    return { seqs: null, reason };
  }
}
