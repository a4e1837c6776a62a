// SSE over real HTTP: the app on Bun.serve (port 0), read by fetch's stream
// reader, and by a raw TCP client that stops reading for the slow-client cut-off.
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import type { Logger } from "../../src/lib/log.ts";
import type { Mode } from "../../supabase/functions/_shared/event-schema.ts";
import { formatEvent, type StreamCloseReason } from "../../src/stream/sse.ts";
import { event, postJson, type TestApp, testApp } from "../helpers/app.ts";
import { waitFor } from "../helpers/tmp.ts";

let t: TestApp;
const clients: SseClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await t?.close();
});

interface Message {
  id: string | null;
  event: string | null;
  data: string;
}

/** A minimal EventSource-like reader over fetch, recording everything it parses. */
class SseClient {
  readonly messages: Message[] = [];
  readonly comments: string[] = [];
  retry: number | null = null;
  status = 0;
  ended = false;
  private readonly abort = new AbortController();
  private readonly waiters = new Set<() => void>();
  readonly done: Promise<void>;

  constructor(url: string, headers: Record<string, string> = {}) {
    clients.push(this);
    this.done = this.run(url, headers);
  }

  private async run(url: string, headers: Record<string, string>) {
    try {
      const res = await fetch(url, { headers, signal: this.abort.signal });
      this.status = res.status;
      this.notify();
      if (!res.ok || !res.body) return;
      const decoder = new TextDecoder();
      let buf = "";
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk, { stream: true });
        let cut: number;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          this.parse(buf.slice(0, cut));
          buf = buf.slice(cut + 2);
        }
        this.notify();
      }
    } catch {
      // aborted by close(), or the server cut the connection
    } finally {
      this.ended = true;
      this.notify();
    }
  }

  private parse(block: string) {
    const m: Message = { id: null, event: null, data: "" };
    let isMessage = false;
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) this.comments.push(line);
      else if (line.startsWith("retry: ")) this.retry = Number(line.slice(7));
      else if (line.startsWith("id: ")) m.id = line.slice(4);
      else if (line.startsWith("event: ")) m.event = line.slice(7);
      else if (line.startsWith("data: ")) {
        m.data += line.slice(6);
        isMessage = true;
      }
    }
    if (isMessage) this.messages.push(m);
  }

  private notify() {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves when `check()` holds, re-checked on every chunk; rejects after `ms`. */
  until(check: () => boolean, what: string, ms = 15_000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(
          new Error(
            `SSE client: timed out waiting for ${what}; got ${this.seqs().length} messages, last ${this.seqs().at(-1)}`,
          ),
        );
      }, ms);
      const w = () => {
        if (!check()) return;
        clearTimeout(timer);
        this.waiters.delete(w);
        resolve();
      };
      this.waiters.add(w);
    });
  }

  untilSeq(seq: number) {
    return this.until(() => (this.seqs().at(-1) ?? 0) >= seq, `seq ${seq}`);
  }
  untilOpen() {
    return this.until(() => this.retry !== null || this.ended, "retry: line");
  }

  seqs(): number[] {
    return this.messages.map((m) => JSON.parse(m.data).seq as number);
  }

  close() {
    this.abort.abort();
  }
}

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

async function seed(mode: Mode, n: number, body = "x") {
  for (let i = 0; i < n; i += 500)
    await t.store.append(Array.from({ length: Math.min(500, n - i) }, () => event(mode, { body })));
}

describe("stream format and positions", () => {
  test("sends retry: once, then each event as an unnamed message with id: <seq> and data: <event JSON>", async () => {
    t = testApp({ sse: { retryMs: 1234 } });
    const base = t.listen();
    await seed("live", 2);
    const c = new SseClient(`${base}/local/stream?mode=live&since_seq=0`);
    await c.untilSeq(2);
    expect(c.status).toBe(200);
    expect(c.retry).toBe(1234);
    expect(c.messages.map((m) => [m.id, m.event])).toEqual([
      ["1", null],
      ["2", null],
    ]);
    const e = JSON.parse(c.messages[0]!.data);
    expect(e).toMatchObject({ seq: 1, mode: "live", source: "bot", meta: {} });
    const listed = (await (await fetch(`${base}/local/events?mode=live&since_seq=0`)).json()) as unknown[];
    expect(c.messages.map((m) => JSON.parse(m.data))).toEqual(listed);
  });

  test("the response is text/event-stream, uncached, with CORS for an allowed origin", async () => {
    t = testApp({ corsOrigins: ["http://localhost:5173"] });
    const res = await fetch(`${t.listen()}/local/stream?mode=live`, { headers: { origin: "http://localhost:5173" } });
    expect(res.headers.get("content-type")).toStartWith("text/event-stream");
    expect(res.headers.get("cache-control")).toContain("no-cache");
    expect(res.headers.get("access-control-allow-origin")).toBe("http://localhost:5173");
    await res.body!.cancel();
  });

  test("the Last-Event-ID header resumes after that seq (a browser's reconnect)", async () => {
    t = testApp();
    const base = t.listen();
    await seed("live", 8);
    const c = new SseClient(`${base}/local/stream?mode=live`, { "Last-Event-ID": "5" });
    await c.untilSeq(8);
    expect(c.seqs()).toEqual([6, 7, 8]);
  });

  test("the header wins over query parameters", async () => {
    t = testApp();
    const base = t.listen();
    await seed("live", 4);
    const c = new SseClient(`${base}/local/stream?mode=live&since_seq=0`, { "Last-Event-ID": "3" });
    await c.untilSeq(4);
    expect(c.seqs()).toEqual([4]);
  });

  for (const param of ["last_event_id", "since_seq"]) {
    test(`?${param}= resumes after that seq (a new EventSource cannot set headers)`, async () => {
      t = testApp();
      const base = t.listen();
      await seed("paper", 6);
      await seed("live", 3);
      const c = new SseClient(`${base}/local/stream?mode=paper&${param}=4`);
      await c.untilSeq(6);
      expect(c.seqs()).toEqual([5, 6]);
      expect(c.messages.every((m) => JSON.parse(m.data).mode === "paper")).toBe(true);
    });
  }

  test("no position means live only: stored events are not replayed, new ones arrive", async () => {
    t = testApp();
    const base = t.listen();
    await seed("live", 5);
    const c = new SseClient(`${base}/local/stream?mode=live`);
    await c.untilOpen();
    await fetch(`${base}/local/events`, postJson(event("live")));
    await c.untilSeq(6);
    expect(c.seqs()).toEqual([6]);
  });

  test("a position beyond the newest seq gets `event: reset` with the newest seq, then the stream goes on live from there", async () => {
    t = testApp();
    const base = t.listen();
    await seed("live", 2);
    for (const [query, headers] of [
      ["since_seq=40", {}],
      ["last_event_id=40", {}],
      ["", { "Last-Event-ID": "40" }],
    ] as const) {
      const c = new SseClient(`${base}/local/stream?mode=live&${query}`, headers);
      await c.until(() => c.messages.length >= 1, "the reset");
      expect(c.messages[0]).toEqual({
        id: "2",
        event: "reset",
        data: JSON.stringify({ newest_seq: 2, requested_seq: 40 }),
      });
      c.close();
    }
    const c = new SseClient(`${base}/local/stream?mode=live&since_seq=40`);
    await c.until(() => c.messages.length >= 1, "the reset");
    await seed("live", 2);
    await c.until(() => c.messages.length >= 3, "two live events");
    expect(c.messages.map((m) => [m.id, m.event])).toEqual([
      ["2", "reset"],
      ["3", null],
      ["4", null],
    ]);
    // Per mode: the same position is valid where the mode has that many events.
    await seed("paper", 3);
    const paper = new SseClient(`${base}/local/stream?mode=paper&since_seq=2`);
    await paper.untilSeq(3);
    expect(paper.messages.map((m) => [m.id, m.event])).toEqual([["3", null]]);
  });

  test("a position equal to the newest seq is valid: no reset, live from there", async () => {
    t = testApp();
    const base = t.listen();
    await seed("live", 2);
    const c = new SseClient(`${base}/local/stream?mode=live&since_seq=2`);
    await c.untilOpen();
    await seed("live", 1);
    await c.untilSeq(3);
    expect(c.messages.map((m) => [m.id, m.event])).toEqual([["3", null]]);
  });

  test("an empty database answers any position but 0 with a reset to 0", async () => {
    t = testApp();
    const c = new SseClient(`${t.listen()}/local/stream?mode=live&since_seq=7`);
    await c.until(() => c.messages.length >= 1, "the reset");
    expect(c.messages[0]).toEqual({
      id: "0",
      event: "reset",
      data: JSON.stringify({ newest_seq: 0, requested_seq: 7 }),
    });
  });

  test("a position from before a rebuilt store (past its newest seq, below this start's range) goes on live with no reset", async () => {
    // A rebuilt, empty store whose range begins at 5000: a follower last saw 40 on the old store.
    t = testApp({ store: { seqFloor: () => 5000 } });
    const base = t.listen();
    const c = new SseClient(`${base}/local/stream?mode=live`, { "Last-Event-ID": "40" });
    await c.untilOpen();
    await seed("live", 2);
    await c.untilSeq(5001);
    expect(c.messages.map((m) => [m.id, m.event])).toEqual([
      ["5000", null],
      ["5001", null],
    ]);
    // Past this range's start it is a position the store never gave: a reset.
    const ahead = new SseClient(`${base}/local/stream?mode=live`, { "Last-Event-ID": "6000" });
    await ahead.until(() => ahead.messages.length >= 1, "the reset");
    expect(ahead.messages[0]!.event).toBe("reset");
  });

  test("a bad position or mode is a 400 JSON error, not a stream", async () => {
    t = testApp();
    const base = t.listen();
    for (const [query, headers] of [
      ["mode=live", { "Last-Event-ID": "abc" }],
      ["mode=live&since_seq=-3", {}],
      ["mode=live&last_event_id=1e3", {}],
      ["mode=both", {}],
      ["mode=live&from=3", {}],
      ["mode=live&heartbeat=often", {}],
    ] as const) {
      const res = await fetch(`${base}/local/stream?${query}`, { headers });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("invalid_request");
    }
  });
});

describe.each([
  ["on the event loop", false],
  ["on the replay worker", true],
])("replay/live seam, pages read %s", (_, replayWorker) => {
  test("clients joining during concurrent posting get every event exactly once, in seq order", async () => {
    t = testApp({ replayWorker });
    const base = t.listen();
    await seed("live", 650); // replay spans several pages
    const writers = 6;
    const perWriter = 40;
    const total = 650 + writers * perWriter;
    const clientsAt: { pos: number | null; header?: boolean; c: SseClient }[] = [];
    let posted = 0;
    const join = () => {
      const k = clientsAt.length;
      const pos = k % 4 === 3 ? null : [0, 100, 640][k % 4]! + (k >> 2);
      const url = `${base}/local/stream?mode=live${pos !== null && k % 2 === 0 ? `&since_seq=${pos}` : ""}`;
      const headers: Record<string, string> = pos !== null && k % 2 === 1 ? { "Last-Event-ID": String(pos) } : {};
      clientsAt.push({ pos, c: new SseClient(url, headers) });
    };
    join();
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let i = 0; i < perWriter; i++) {
          const res = await fetch(`${base}/local/events`, postJson(event("live", { body: `w${w}-${i}` })));
          expect(res.status).toBe(201);
          if (++posted % 30 === 0) join();
        }
      }),
    );
    expect(clientsAt.length).toBeGreaterThan(6);
    for (const { pos, c } of clientsAt) {
      await c.untilSeq(total);
      const seqs = c.seqs();
      if (pos !== null) expect(seqs).toEqual(range(pos + 1, total));
      else expect(seqs).toEqual(range(seqs[0] ?? total + 1, total)); // live only: contiguous from where it joined
    }
  });

  test("a live burst bigger than the client's buffer is paged from SQLite, not dropped and not cut off", async () => {
    const warnings: string[] = [];
    t = testApp({ sse: { maxBufferedBytes: 16 * 1024 }, logger: captureLogger(warnings), replayWorker });
    const base = t.listen();
    const c = new SseClient(`${base}/local/stream?mode=live`);
    await c.untilOpen();
    const res = await fetch(
      `${base}/local/events`,
      postJson(Array.from({ length: 300 }, () => event("live", { body: "y".repeat(1000) }))),
    );
    expect(res.status).toBe(201);
    await c.untilSeq(300);
    expect(c.seqs()).toEqual(range(1, 300));
    expect(c.ended).toBe(false);
    expect(warnings).toEqual([]);
    // and it is live again afterwards
    await fetch(`${base}/local/events`, postJson(event("live")));
    await c.untilSeq(301);
  });
});

test("a replay whose worker fails goes on from the event loop: every event, in order", async () => {
  let asked = 0;
  const failing = {
    async page() {
      asked++;
      return null; // what startReplayReader() answers once its worker failed
    },
    close() {},
  };
  t = testApp({ replayReader: failing });
  const base = t.listen();
  await seed("live", 650);
  const c = new SseClient(`${base}/local/stream?mode=live&since_seq=0`);
  await c.untilSeq(650);
  expect(c.seqs()).toEqual(range(1, 650));
  expect(asked).toBe(1);
  await fetch(`${base}/local/events`, postJson(event("live")));
  await c.untilSeq(651);
});

describe("keep-alive and cleanup", () => {
  test("sends a `:` comment heartbeat at the configured interval", async () => {
    t = testApp({ sse: { heartbeatMs: 40 } });
    const c = new SseClient(`${t.listen()}/local/stream?mode=live`);
    await c.until(() => c.comments.length >= 3, "3 heartbeats");
    expect(c.comments.every((l) => l === ":")).toBe(true);
    expect(c.messages).toEqual([]);
    expect(c.ended).toBe(false);
  });

  test("?heartbeat=event sends a heartbeat at once, then every interval, as `event: heartbeat` with the newest seq, never ahead of pending live data", async () => {
    t = testApp({ sse: { heartbeatMs: 40, coalesceMs: 30 } });
    const base = t.listen();
    await seed("live", 1);
    const c = new SseClient(`${base}/local/stream?mode=live&since_seq=0&heartbeat=event`);
    await c.until(() => c.messages.filter((m) => m.event === "heartbeat").length >= 2, "2 heartbeat events");
    for (let i = 0; i < 5; i++) await seed("live", 1);
    await c.until(
      () => c.messages.some((m) => m.event === "heartbeat" && JSON.parse(m.data).newest_seq === 6),
      "a heartbeat naming seq 6",
    );
    expect(c.comments).toEqual([]);
    // The first comes before the replay (it names the newest stored seq, 1, not yet sent).
    expect(c.messages[0]).toEqual({
      id: null,
      event: "heartbeat",
      data: JSON.stringify({ newest_seq: 1, interval_ms: 40 }),
    });
    // Once live, every event a heartbeat names as stored came before it on the stream.
    let seen = 0;
    for (const m of c.messages.slice(1)) {
      if (m.event === null) seen = JSON.parse(m.data).seq;
      else
        expect({ heartbeat: JSON.parse(m.data).newest_seq, seenBefore: seen }).toEqual({
          heartbeat: seen,
          seenBefore: seen,
        });
    }
  });

  test("closed connections are unsubscribed at once", async () => {
    t = testApp();
    const base = t.listen();
    const cs = Array.from(
      { length: 5 },
      (_, i) => new SseClient(`${base}/local/stream?mode=${i % 2 ? "paper" : "live"}`),
    );
    for (const c of cs) await c.untilOpen();
    expect(t.hub.subscriberCount()).toBe(5);
    cs[0]!.close();
    cs[1]!.close();
    await waitFor(() => t.hub.subscriberCount() === 3, 5_000, "two unsubscribes");
    for (const c of cs) c.close();
    await waitFor(() => t.hub.subscriberCount() === 0, 5_000, "all unsubscribed");
  });

  test("the app's shutdown signal ends open streams cleanly", async () => {
    t = testApp();
    const base = t.listen();
    const a = new SseClient(`${base}/local/stream?mode=live`);
    const b = new SseClient(`${base}/local/stream?mode=paper&since_seq=0`);
    await a.untilOpen();
    await b.untilOpen();
    t.shutdown.abort();
    await Promise.all([a.done, b.done]);
    expect(a.ended && b.ended).toBe(true);
    expect(t.hub.subscriberCount()).toBe(0);
  });
});

function captureLogger(warnings: string[]): Logger {
  return { debug() {}, info() {}, warn: (msg) => warnings.push(msg), error: (msg) => warnings.push(msg) };
}

/** A raw HTTP/1.1 client that stops reading from its socket after the headers. */
async function stuckClient(base: string, path: string) {
  const { hostname, port } = new URL(base);
  let received = 0;
  let text = "";
  let resolveOpen!: () => void;
  let resolveClosed!: () => void;
  const opened = new Promise<void>((r) => (resolveOpen = r));
  const closed = new Promise<void>((r) => (resolveClosed = r));
  const socket = await Bun.connect({
    hostname,
    port: Number(port),
    socket: {
      data(_s, data) {
        received += data.byteLength;
        if (text.length < 4096) text += new TextDecoder().decode(data);
        if (text.includes("retry: ")) resolveOpen();
      },
      close() {
        resolveClosed();
      },
      error() {
        resolveClosed();
      },
    },
  });
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAccept: text/event-stream\r\n\r\n`);
  await opened;
  socket.pause();
  return {
    get received() {
      return received;
    },
    head: () => text,
    closed,
    resume: () => socket.resume(),
    end: () => socket.end(),
  };
}

/** What the kernel can hold for one loopback connection (send + receive buffers). */
function kernelSocketBytes(): number {
  const max = (file: string) => Number(readFileSync(file, "utf8").trim().split(/\s+/).at(-1));
  return max("/proc/sys/net/ipv4/tcp_wmem") + max("/proc/sys/net/ipv4/tcp_rmem");
}

describe("slow clients", () => {
  const BOUND = 256 * 1024;

  test("a live client that stops reading is cut off after a bounded buffer, and its queued bytes are dropped", async () => {
    const warnings: string[] = [];
    t = testApp({ sse: { maxBufferedBytes: BOUND }, logger: captureLogger(warnings) });
    const base = t.listen();
    const stuck = await stuckClient(base, "/local/stream?mode=live");
    expect(stuck.head()).toStartWith("HTTP/1.1 200");
    const healthy = new SseClient(`${base}/local/stream?mode=live`);
    await healthy.untilOpen();
    expect(t.hub.subscriberCount("live")).toBe(2);

    // What the server had to send the stuck client, in SSE bytes.
    let published = 0;
    t.hub.subscribe("live", (events) => {
      for (const e of events) published += formatEvent(e).length;
    });
    const body = "z".repeat(8 * 1024);
    let seq = 0;
    // Batches below the bound, so they are written live (a bigger burst would be paged from SQLite).
    while (t.hub.subscriberCount("live") === 3 && published < kernelSocketBytes() + 8 * BOUND) {
      const r = await t.store.append(Array.from({ length: 20 }, () => event("live", { body })));
      seq = r.at(-1)!.seq;
      await healthy.untilSeq(seq); // the reader keeps up; only the stuck one falls behind
    }
    expect(t.hub.subscriberCount("live")).toBe(2); // the healthy client and our byte counter
    expect(warnings).toContain("sse client cut off: too far behind");

    // The server dropped the connection and the bytes queued for it: the client
    // gets what the kernel already held, then the close.
    stuck.resume();
    await stuck.closed;
    expect(stuck.received).toBeLessThan(published - BOUND / 2);

    // The healthy client was never affected and resumes normally.
    await t.store.append([event("live")]);
    await healthy.untilSeq(seq + 1);
    expect(healthy.seqs()).toEqual(range(1, seq + 1));
  }, 60_000);

  test("a replaying client that takes nothing for ZOE_SSE_STALL_MS is cut off", async () => {
    // The stream's own close is awaited, not sampled: on a loaded machine a
    // 100 ms heartbeat can cut the client off before the test gets to look.
    let streamClosed!: (reason: StreamCloseReason) => void;
    const closedAs = new Promise<StreamCloseReason>((resolve) => (streamClosed = resolve));
    t = testApp({
      sse: { maxBufferedBytes: BOUND, heartbeatMs: 50, stallMs: 100 },
      hooks: { streamClosed: (_mode, reason) => streamClosed(reason) },
    });
    const base = t.listen();
    await seed("live", 2000, "r".repeat(8 * 1024)); // ~16 MiB: more than the kernel holds
    const stuck = await stuckClient(base, "/local/stream?mode=live&since_seq=0");
    expect(stuck.head()).toStartWith("HTTP/1.1 200"); // it was streaming…
    expect(await closedAs).toBe("slow"); // …and was cut off as stuck, not closed by anyone else
    expect(t.hub.subscriberCount("live")).toBe(0);
    stuck.resume();
    await stuck.closed;
    expect(stuck.received).toBeLessThan(2000 * 8 * 1024);
  }, 60_000);

  test("a slow client resumes with Last-Event-ID and misses nothing", async () => {
    t = testApp({ sse: { maxBufferedBytes: BOUND } });
    const base = t.listen();
    await seed("live", 1500, "q".repeat(4 * 1024));
    const first = new SseClient(`${base}/local/stream?mode=live&since_seq=0`);
    await first.untilSeq(700);
    first.close();
    const got = first.seqs();
    const lastId = first.messages[got.length - 1]!.id!;
    const second = new SseClient(`${base}/local/stream?mode=live`, { "Last-Event-ID": lastId });
    await second.untilSeq(1500);
    expect([...got, ...second.seqs()]).toEqual(range(1, 1500));
  }, 60_000);
});

test("a request whose Host header is very short is still routed by its real path", async () => {
  // A tokenless service serves only loopback names unless told (src/http/host.ts).
  t = testApp({ allowedHosts: ["pi"] });
  const base = t.listen();
  const { port } = new URL(base);
  const answer = await new Promise<string>((resolve) => {
    let text = "";
    void Bun.connect({
      hostname: "127.0.0.1",
      port: Number(port),
      socket: {
        data(_s, d) {
          text += new TextDecoder().decode(d);
          if (text.includes("\r\n\r\n") && text.includes("]")) resolve(text);
        },
        open(s) {
          s.write("GET /local/events?mode=live HTTP/1.1\r\nHost: pi\r\nConnection: close\r\n\r\n");
        },
        close() {
          resolve(text);
        },
      },
    });
  });
  expect(answer).toStartWith("HTTP/1.1 200");
  expect(answer).toContain("[]");
});
