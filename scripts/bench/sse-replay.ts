// Resuming SSE clients for the scale and SSE sections: `streams` concurrent
// GET /local/stream with Last-Event-ID, each read as fast as the socket gives,
// until the event with seq `untilSeq` arrives. Counts frames without parsing
// them (the client's own cost stays small next to the service's) and checks
// the last id. Args (JSON): { url, mode, after, untilSeq, timeoutMs, streams? }.
// Prints one JSON line: the first stream's figures, and every stream's in `all`.
import { childArgs, cpuMeter, reply } from "./lib.ts";

export interface SseReplayArgs {
  url: string;
  mode: string;
  after: number;
  untilSeq: number;
  timeoutMs: number;
  /** Concurrent replays (default 1). */
  streams?: number;
}

export interface StreamReplay {
  events: number;
  bytes: number;
  /** Request sent → first byte of the body. */
  firstByteMs: number;
  /** Request sent → the frame with id untilSeq received. */
  totalMs: number;
  lastId: number | null;
  complete: boolean;
}

export interface SseReplayResult extends StreamReplay {
  /** Every stream, the first one included. */
  all: StreamReplay[];
  clientCores: number;
}

const FRAME = Buffer.from("\n\nid: ");

async function replayOnce(args: SseReplayArgs, signal: AbortSignal): Promise<StreamReplay> {
  const t0 = performance.now();
  const response = await fetch(`${args.url}/local/stream?mode=${args.mode}`, {
    headers: { "last-event-id": String(args.after) },
    signal,
  });
  if (response.status !== 200 || !response.body) throw new Error(`GET /local/stream answered ${response.status}`);
  const expected = args.untilSeq - args.after;
  const target = Buffer.from(`id: ${args.untilSeq}\n`);
  let events = 0;
  let bytes = 0;
  let firstByteMs = NaN;
  let tail = Buffer.alloc(0);
  let complete = false;
  let lastId: number | null = null;
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { value: chunk, done } = await reader.read();
      if (done) break;
      if (Number.isNaN(firstByteMs)) firstByteMs = performance.now() - t0;
      bytes += chunk.byteLength;
      // A frame marker split across chunks is found in tail + chunk; tail is shorter than the marker.
      const buf = tail.length
        ? Buffer.concat([tail, chunk])
        : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      // Frames past the target (events stored after it, e.g. in a later seq range) are not the replay's.
      const end = buf.indexOf(target);
      const stop = end >= 0 ? end + 1 : buf.length;
      for (let at = buf.indexOf(FRAME); at >= 0 && at < stop; at = buf.indexOf(FRAME, at + FRAME.length)) events++;
      if (events >= expected && end >= 0) {
        complete = true;
        const last = buf.lastIndexOf(FRAME);
        lastId =
          last >= 0 ? Number(buf.subarray(last + FRAME.length, buf.indexOf(10, last + FRAME.length)).toString()) : null;
        break;
      }
      tail = Buffer.from(buf.subarray(Math.max(0, buf.length - (FRAME.length - 1))));
    }
  } catch (error) {
    if (!signal.aborted) throw error;
  } finally {
    void reader.cancel().catch(() => {});
  }
  return { events, bytes, firstByteMs, totalMs: performance.now() - t0, lastId, complete };
}

if (import.meta.main) {
  const args = childArgs<SseReplayArgs>();
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), args.timeoutMs);
  const cpu = cpuMeter();
  const all = await Promise.all(Array.from({ length: args.streams ?? 1 }, () => replayOnce(args, abort.signal)));
  clearTimeout(timer);
  abort.abort();
  reply({ ...all[0]!, all, clientCores: cpu() } satisfies SseReplayResult);
}
