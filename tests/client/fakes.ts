// Hand-driven stand-ins for what the live feed injects: EventSource, fetch,
// timers, frame scheduling and the Supabase reader. Each records what is
// still open so teardown tests can assert nothing leaked.
import type { EventSourceLike, Timers } from "../../src/client/live-feed.ts";
import { isImportant } from "../../src/client/merge.ts";
import type { RemoteReader } from "../../src/client/remote.ts";
import type { FeedState, FlushHealth, Mode, StoredEvent } from "../../src/client/types.ts";

export function event(seq: number, mode: Mode = "paper", extra: Partial<StoredEvent> = {}): StoredEvent {
  return {
    id: `00000000-0000-7000-8000-${String(seq).padStart(12, "0")}`,
    mode,
    seq,
    ts: new Date(Date.UTC(2026, 0, 5, 15, 0, 0, seq)).toISOString(),
    source: "bot",
    type: "ORDER",
    subtype: "TICK",
    symbol: "AAPL",
    severity: "info",
    body: `event ${seq}`,
    meta: {},
    idempotency_key: `k-${mode}-${seq}`,
    ...extra,
  };
}

export class FakeEventSource implements EventSourceLike {
  onopen: ((event: Event) => void) | null = null;
  onmessage: ((event: MessageEvent) => void) | null = null;
  onerror: ((event: Event) => void) | null = null;
  closed = false;
  private readonly named = new Map<string, ((event: MessageEvent) => void)[]>();
  constructor(readonly url: string) {}
  addEventListener(type: string, listener: (event: MessageEvent) => void) {
    this.named.set(type, [...(this.named.get(type) ?? []), listener]);
  }
  /** Dispatches a named event (`heartbeat`, `reset`) as the server would send it. */
  emit(type: string, data: unknown, id?: number) {
    const message = new MessageEvent(type, {
      data: JSON.stringify(data),
      lastEventId: id === undefined ? "" : String(id),
    });
    for (const l of this.named.get(type) ?? []) l(message);
  }
  heartbeat(newestSeq = 0, intervalMs = 2000) {
    this.emit("heartbeat", { newest_seq: newestSeq, interval_ms: intervalMs });
  }
  open() {
    this.onopen?.(new Event("open"));
  }
  send(e: StoredEvent) {
    this.onmessage?.(new MessageEvent("message", { data: JSON.stringify(e), lastEventId: String(e.seq) }));
  }
  fail() {
    this.onerror?.(new Event("error"));
  }
  close() {
    this.closed = true;
  }
  /** The stream position the feed asked for. */
  get from(): number {
    return Number(new URL(this.url, "http://x").searchParams.get("last_event_id"));
  }
}

export class EventSources {
  all: FakeEventSource[] = [];
  factory = (url: string) => {
    const es = new FakeEventSource(url);
    this.all.push(es);
    return es;
  };
  get last(): FakeEventSource {
    const es = this.all.at(-1);
    if (!es) throw new Error("no EventSource was created");
    return es;
  }
  open(): FakeEventSource[] {
    return this.all.filter((e) => !e.closed);
  }
}

interface Timer {
  id: number;
  at: number;
  fn: () => void;
}

/** Manual clock: timers run only from advance(). */
export class FakeTimers implements Timers {
  now = 1_000_000;
  private next = 1;
  private pending = new Map<number, Timer>();
  setTimeout = (fn: () => void, ms: number) => {
    const id = this.next++;
    this.pending.set(id, { id, at: this.now + ms, fn });
    return id;
  };
  clearTimeout = (handle: unknown) => {
    this.pending.delete(handle as number);
  };
  count(): number {
    return this.pending.size;
  }
  /** Delays (from now) of pending timers, soonest first. */
  delays(): number[] {
    return [...this.pending.values()].map((t) => t.at - this.now).sort((a, b) => a - b);
  }
  /** Runs every timer due within `ms`, in time order, letting promises settle between. */
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    for (;;) {
      await settle();
      const due = [...this.pending.values()].filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.pending.delete(due.id);
      this.now = due.at;
      due.fn();
    }
    this.now = end;
    await settle();
  }
}

/** Lets pending promise callbacks (fake fetches, async feed steps) run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}

type Route = (url: URL) => Response | Promise<Response> | "hang" | "down";

/** fetch that answers from `route`; "hang" never answers (until aborted), "down" rejects like a refused connection. */
export class FakeFetch {
  calls: string[] = [];
  inFlight = 0;
  constructor(public route: Route) {}
  fetch = (url: string, init?: { signal?: AbortSignal }): Promise<Response> => {
    this.calls.push(url);
    const answer = this.route(new URL(url, "http://page.test"));
    if (answer === "down") return Promise.reject(new TypeError("Failed to fetch"));
    if (answer !== "hang") return Promise.resolve(answer);
    this.inFlight++;
    return new Promise((_, reject) => {
      init?.signal?.addEventListener("abort", () => {
        this.inFlight--;
        reject(new DOMException("aborted", "AbortError"));
      });
    });
  };
}

export function localStateResponse(mode: Mode, lastSeq: number, health: Record<string, unknown> = {}): Response {
  return Response.json({
    mode,
    cash: 1000,
    holdings: { AAPL: 1 },
    positions: [],
    state_ts: null,
    last_seq: lastSeq,
    health: { backlog: 0, last_flush_ts: null, last_flush_status: null, ...health },
  });
}

export class FakeRemote implements RemoteReader {
  rows: StoredEvent[] = [];
  healthRow: FlushHealth | null = null;
  stateRow: FeedState | null = null;
  calls: string[] = [];
  subscriptions = 0;
  realtime: "none" | "ok" | "fail" = "none";
  pushers: ((e: StoredEvent) => void)[] = [];
  async events(mode: Mode, afterSeq: number, limit: number) {
    this.calls.push(`events ${mode} >${afterSeq} ${limit}`);
    return this.rows
      .filter((e) => e.mode === mode && e.seq > afterSeq)
      .sort((a, b) => b.seq - a.seq)
      .slice(0, limit);
  }
  async importantEvents(mode: Mode, limit: number) {
    this.calls.push(`important ${mode} ${limit}`);
    return this.rows
      .filter((e) => e.mode === mode && isImportant(e))
      .sort((a, b) => b.seq - a.seq)
      .slice(0, limit);
  }
  async health(mode: Mode) {
    this.calls.push(`health ${mode}`);
    return this.healthRow;
  }
  async state(mode: Mode) {
    this.calls.push(`state ${mode}`);
    return this.stateRow;
  }
  subscribe(mode: Mode, onEvent: (e: StoredEvent) => void, onStatus: (s: "subscribed" | "failed", d?: string) => void) {
    this.subscriptions++;
    this.pushers.push(onEvent);
    queueMicrotask(() => (this.realtime === "ok" ? onStatus("subscribed") : onStatus("failed", "CHANNEL_ERROR")));
    return {
      unsubscribe: () => {
        this.subscriptions--;
        this.pushers = this.pushers.filter((p) => p !== onEvent);
      },
    };
  }
}

/** Frame scheduler that runs only when flushed, counting frames. */
export class FakeFrames {
  queued: (() => void)[] = [];
  frames = 0;
  schedule = (fn: () => void) => {
    this.queued.push(fn);
    return () => {
      this.queued = this.queued.filter((f) => f !== fn);
    };
  };
  flush() {
    const q = this.queued;
    this.queued = [];
    if (q.length) this.frames++;
    for (const f of q) f();
  }
}
