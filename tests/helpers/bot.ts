// A client that behaves like the trading bot under faults: it posts single
// events and batches with idempotency keys, and when a request fails (service
// killed, 503, connection refused) it sends the very same request again until
// it is acknowledged. Everything it was told is written to a Ledger, which the
// invariant (tests/helpers/invariant.ts) holds the stores to.
import type { Mode } from "../../supabase/functions/_shared/event-schema.ts";

export interface Intent {
  key: string;
  mode: Mode;
  subtype: string;
  /** Unique per logical event (it is the key): a copy under another key would show. */
  body: string;
}

export interface Ack {
  key: string;
  id: string;
  seq: number;
  mode: Mode;
  duplicate: boolean;
}

export class Ledger {
  readonly intents = new Map<string, Intent>();
  /** Every 2xx verdict, repeats included (a replay must repeat the same id and seq). */
  readonly acks: Ack[] = [];
  /** Answers a bot must never get (4xx, 5xx other than 503, malformed 2xx). */
  readonly unexpected: string[] = [];
  requests = 0;
  failedRequests = 0;
  /** 503s: the Retry-After each carried and its error code. */
  readonly unavailable: { retryAfter: string | null; code: string | null }[] = [];

  constructor(readonly source: string) {}

  acked(): Map<string, Ack> {
    const first = new Map<string, Ack>();
    for (const a of this.acks) if (!first.has(a.key)) first.set(a.key, a);
    return first;
  }
}

export interface BotOptions {
  /** The service's current base URL (it moves on every restart), or null while it is down. */
  url: () => string | null;
  ledger: Ledger;
  random: () => number;
  workers?: number;
  /** Largest batch per request (1 = singles only). */
  maxBatch?: number;
  /** Share of requests that are one event, not an array. */
  singleShare?: number;
  /** Share of events with a critical subtype (flushed at once). */
  criticalShare?: number;
  /** Share of requests that re-send an already acknowledged event. */
  replayShare?: number;
  /** Pause between requests of one worker (ms, uniform up to this). */
  paceMs?: number;
  /** Wait before re-sending a failed request. */
  retryDelayMs?: number;
  requestTimeoutMs?: number;
  modes?: Mode[];
  /** Event body size filler, in bytes. */
  padding?: number;
}

export interface Bot {
  /** No new events from now on; pending requests are still retried until acknowledged. */
  stopProducing(): void;
  /** Resolves once every worker has no unacknowledged request left (after stopProducing); rejects after `timeoutMs`. */
  settled(timeoutMs?: number): Promise<void>;
  /** Stops at once, leaving whatever is pending. */
  abort(): Promise<void>;
  pending(): number;
}

interface Request {
  intents: Intent[];
  single: boolean;
}

export function startBot(o: BotOptions): Bot {
  const { ledger, random } = o;
  const modes = o.modes ?? ["live", "paper"];
  let producing = true;
  let aborted = false;
  let counter = 0;
  const pendingRequests = new Set<Request>();
  const pad = o.padding ? "x".repeat(o.padding) : "";

  const newIntent = (): Intent => {
    const key = `${ledger.source}-${++counter}`;
    const intent: Intent = {
      key,
      mode: modes[Math.floor(random() * modes.length)]!,
      subtype: random() < (o.criticalShare ?? 0.05) ? "BUY_FILLED" : "TICK",
      body: pad ? `${key} ${pad}` : key,
    };
    ledger.intents.set(key, intent);
    return intent;
  };

  const newRequest = (): Request => {
    const replayable = ledger.acks.length > 0 && random() < (o.replayShare ?? 0.03);
    if (replayable) {
      const a = ledger.acks[Math.floor(random() * ledger.acks.length)]!;
      return { intents: [ledger.intents.get(a.key)!], single: true };
    }
    const single = random() < (o.singleShare ?? 0.6);
    const n = single ? 1 : 1 + Math.floor(random() * (o.maxBatch ?? 20));
    return { intents: Array.from({ length: n }, newIntent), single };
  };

  /** true when the request got its verdict (acknowledged, or refused for good). */
  const send = async (url: string, r: Request): Promise<boolean> => {
    const wire = r.intents.map((i) => ({
      mode: i.mode,
      source: ledger.source,
      type: "ORDER",
      subtype: i.subtype,
      body: i.body,
      idempotency_key: i.key,
    }));
    ledger.requests++;
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${url}/local/events`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(r.single ? wire[0] : wire),
        signal: AbortSignal.timeout(o.requestTimeoutMs ?? 10_000),
      });
      text = await res.text();
    } catch {
      ledger.failedRequests++;
      return false;
    }
    if (res.status === 503) {
      ledger.failedRequests++;
      let code: string | null = null;
      try {
        code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? null;
      } catch {
        // the code is informative only
      }
      ledger.unavailable.push({ retryAfter: res.headers.get("retry-after"), code });
      return false;
    }
    if (res.status !== 200 && res.status !== 201) {
      ledger.unexpected.push(`POST /local/events → ${res.status}: ${text.slice(0, 300)}`);
      return true;
    }
    try {
      const body = JSON.parse(text) as
        | { id: string; seq: number; idempotency_key: string; duplicate: boolean }
        | { events: { id: string; seq: number; idempotency_key: string; duplicate: boolean }[] };
      const results = "events" in body ? body.events : [body];
      if (results.length !== r.intents.length)
        throw new Error(`${results.length} results for ${r.intents.length} events`);
      results.forEach((x, i) => {
        const intent = r.intents[i]!;
        if (x.idempotency_key !== intent.key)
          throw new Error(`result ${i} answers ${x.idempotency_key}, not ${intent.key}`);
        ledger.acks.push({ key: intent.key, id: x.id, seq: x.seq, mode: intent.mode, duplicate: x.duplicate });
      });
    } catch (error) {
      ledger.unexpected.push(
        `POST /local/events → ${res.status} with an unreadable body (${(error as Error).message}): ${text.slice(0, 300)}`,
      );
    }
    return true;
  };

  const worker = async () => {
    let current: Request | null = null;
    while (!aborted) {
      if (!current) {
        if (!producing) return;
        current = newRequest();
        pendingRequests.add(current);
      }
      const url = o.url();
      if (url !== null && (await send(url, current))) {
        pendingRequests.delete(current);
        current = null;
        if (o.paceMs) await Bun.sleep(random() * o.paceMs);
      } else {
        await Bun.sleep(o.retryDelayMs ?? 25);
      }
    }
  };

  const workers = Array.from({ length: o.workers ?? 4 }, () => worker());
  const all = Promise.all(workers).then(() => {});
  return {
    stopProducing() {
      producing = false;
    },
    settled(timeoutMs = 30_000) {
      let timer: Timer | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `bot: ${pendingRequests.size} requests still unacknowledged after ${timeoutMs} ms (${ledger.failedRequests} failures so far)`,
              ),
            ),
          timeoutMs,
        );
      });
      return Promise.race([all, late]).finally(() => clearTimeout(timer));
    },
    async abort() {
      aborted = true;
      await all;
    },
    pending: () => pendingRequests.size,
  };
}

/** Deterministic PRNG (mulberry32): a run is replayed from its printed seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed from FAULT_SEED, or a fresh one; printed so a failing run can be replayed. */
export function faultSeed(what: string): number {
  const fromEnv = process.env.FAULT_SEED;
  const seed = fromEnv !== undefined && fromEnv !== "" ? Number(fromEnv) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
  console.log(`${what}: seed ${seed} (replay with FAULT_SEED=${seed})`);
  return seed;
}
