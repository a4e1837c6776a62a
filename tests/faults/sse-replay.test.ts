// Replays share the event loop: while many clients replay a large store from
// seq 0 over real HTTP (the service in its own process), /health keeps
// answering, and every replay still delivers every event once, in seq order.
import { afterAll, expect, test } from "bun:test";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { tempDir } from "../helpers/tmp.ts";

const EVENTS = 40_000;
const STREAMS = 20;

const dir = tempDir("zoe-sse-replay-");
let svc: ServiceProcess | null = null;
afterAll(async () => {
  if (svc) await svc.kill("SIGKILL");
  dir.cleanup();
});

interface Replay {
  /** Events received so far, each checked to be the next seq. */
  received: number;
  /** The last seq received (the store's one range: gapless from its first seq). */
  last: number | null;
  /** The first seq that did not follow its predecessor, if any. */
  outOfOrder: string | null;
  done: Promise<void>;
}

/** Reads /local/stream from `after` 0 until `until` events came, checking each id is the next one. */
function replay(url: string, until: number, signal: AbortSignal): Replay {
  const r: Replay = { received: 0, last: null, outOfOrder: null, done: Promise.resolve() };
  r.done = (async () => {
    const res = await fetch(`${url}/local/stream?mode=paper&since_seq=0`, { signal });
    expect(res.status).toBe(200);
    const decoder = new TextDecoder();
    let tail = "";
    for await (const chunk of res.body!) {
      const text = tail + decoder.decode(chunk, { stream: true });
      const cut = text.lastIndexOf("\n");
      tail = text.slice(cut + 1);
      for (const m of text.slice(0, cut + 1).matchAll(/^id: (\d+)$/gm)) {
        const seq = Number(m[1]);
        if (r.last !== null && seq !== r.last + 1) r.outOfOrder ??= `expected ${r.last + 1}, got ${seq}`;
        r.last = seq;
        r.received++;
      }
      if (r.received >= until) return;
    }
  })();
  return r;
}

test(`${STREAMS} concurrent replays of ${EVENTS.toLocaleString("en-US")} events: /health answers meanwhile, every replay gets every event in order`, async () => {
  svc = await startService({ dbPath: dir.file("zoe.db"), env: { ZOE_SSE_MAX_CLIENTS_PER_IP: "1000" } });
  const padding = "p".repeat(200);
  for (let i = 0; i < EVENTS; i += 500) {
    const batch = Array.from({ length: 500 }, (_, j) => ({
      mode: "paper",
      source: "replay-test",
      type: "T",
      subtype: "TICK",
      body: `${i + j} ${padding}`,
    }));
    const res = await fetch(`${svc.url}/local/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(batch),
    });
    expect(res.status).toBe(201);
  }

  const abort = new AbortController();
  try {
    const replays = Array.from({ length: STREAMS }, () => replay(svc!.url, EVENTS, abort.signal));
    let finished = false;
    const all = Promise.all(replays.map((r) => r.done)).finally(() => (finished = true));
    // /health is asked again and again while the replays run; each answer is
    // counted as "during" if some replay had not yet received its last event.
    let answeredDuring = 0;
    while (!finished) {
      const res = await fetch(`${svc.url}/health`, { signal: AbortSignal.timeout(60_000) });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      if (replays.some((r) => r.received < EVENTS)) answeredDuring++;
      await Promise.race([all, Bun.sleep(10)]);
    }
    await all;
    console.log(`sse replay: /health answered ${answeredDuring} times while replays ran`);
    for (const r of replays) {
      expect(r.outOfOrder).toBeNull();
      expect(r.received).toBe(EVENTS);
    }
    // The loop was not held for a whole replay: /health got turns between pages.
    expect(answeredDuring).toBeGreaterThanOrEqual(10);
  } finally {
    abort.abort();
  }
}, 120_000);
