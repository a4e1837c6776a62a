// Where one 500-event batch's time goes, stage by stage, one batch at a time
// (nothing else in flight), on a copy of the drain's backlog: the service's
// read + schema check + JSON encoding (on the event loop, and in the reader
// worker), the HTTP round trip through the gateway to the Edge Function with
// the function's own Server-Timing (body read, JSON parse, schema check,
// Postgres transaction), the answer's parse, and the local mark.
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { inlineReader, startReaderWorker } from "../../src/flush/reader.ts";
import { markAcked } from "../../src/flush/batch.ts";
import type { StoredEvent } from "../../supabase/functions/_shared/event-schema.ts";
import { silentLogger } from "../../src/lib/log.ts";
import { openStore } from "../../src/store/store.ts";
import { type LatencySummary, summarize } from "./lib.ts";

export type StageTimes = Record<
  | "readCheckLoop"
  | "encodeLoop"
  | "readCheckEncodeWorker"
  | "http"
  | "fnRead"
  | "fnParse"
  | "fnCheck"
  | "fnDb"
  | "answerParse"
  | "mark",
  LatencySummary
>;

interface Remote {
  functionUrl: string;
  serviceKey: string;
}

/** `samples` batches of the `template` backlog, each stage timed. */
export async function measureStages(
  dir: string,
  template: string,
  remote: Remote,
  samples: number,
): Promise<StageTimes> {
  const path = join(dir, "stages.db");
  copyFileSync(template, path);
  const store = openStore({ path });
  const loop = inlineReader(store);
  const worker = startReaderWorker({
    path,
    fallback: loop,
    logger: silentLogger,
    lastSeq: (mode) => store.lastSeq(mode),
  });
  const t: Record<string, number[]> = {};
  const time = async <T>(stage: string, fn: () => T | Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const v = await fn();
    (t[stage] ??= []).push(performance.now() - t0);
    return v;
  };
  const signal = new AbortController().signal;
  const headers = { "content-type": "application/json", authorization: `Bearer ${remote.serviceKey}` };
  try {
    // Warm-up: JIT, the worker's connection, the function's pool.
    for (let i = 0, after = 0; i <= samples; i++) {
      const batch = await time("readCheckLoop", () => loop.read("live", 500, after, signal));
      const events = batch.events as StoredEvent[];
      const body = await time("encodeLoop", () => JSON.stringify({ mode: "live", events, backlog: 0, state: null }));
      await time("readCheckEncodeWorker", () => worker.read("live", 500, after, signal));
      const res = await time("http", async () => {
        const r = await fetch(remote.functionUrl, { method: "POST", headers, body });
        return { status: r.status, text: await r.text(), timing: r.headers.get("server-timing") ?? "" };
      });
      if (res.status !== 200)
        throw new Error(`flush stages: the function answered ${res.status}: ${res.text.slice(0, 200)}`);
      for (const m of res.timing.split(",")) {
        const [name, dur] = m.trim().split(";dur=");
        if (name && dur) (t[`fn${name[0]!.toUpperCase()}${name.slice(1)}`] ??= []).push(Number(dur));
      }
      await time("answerParse", () => JSON.parse(res.text));
      await time("mark", () => markAcked(store, batch.good));
      after = batch.lastSeq;
      if (i === 0) for (const k of Object.keys(t)) t[k] = [];
    }
  } finally {
    worker.close();
    store.close();
  }
  return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, summarize(v)])) as StageTimes;
}
