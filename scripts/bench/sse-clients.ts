// SSE receivers for the benchmark: `clients` raw HTTP/1.1 connections to
// GET /local/stream (live only), with a hand-written chunked decoder so the
// arrival time is when the bytes reach this process. Each event's latency is
// arrival minus its meta.sent_at (wall clock of the publisher process).
// Prints "READY" once every stream is open, then waits for "stop" on stdin
// and prints one JSON line. A "mark" line on stdin prints the figures since
// the previous mark as a JSON line ({"mark": n, ...}) and starts afresh.
// Events stamped meta.critical_sent_at (critical ones) are summarised apart.
import { childArgs, cpuMeter, epochMs, reply, summarize } from "./lib.ts";

export interface SseClientsArgs {
  url: string;
  mode: string;
  clients: number;
}

export interface SseClientsResult {
  clients: number;
  connected: number;
  /** Clients whose stream ended before "stop" (cut off as slow, or errors). */
  ended: number;
  events: number;
  minPerClient: number;
  maxPerClient: number;
  latencyMs: ReturnType<typeof summarize>;
  /** Events stamped meta.critical_sent_at: arrival minus that stamp. */
  criticalLatencyMs: ReturnType<typeof summarize>;
  receiverCores: number;
}

export interface SseMark {
  mark: number;
  events: number;
  latencyMs: ReturnType<typeof summarize>;
  criticalLatencyMs: ReturnType<typeof summarize>;
  receiverCores: number;
}

const SENT_AT = '"sent_at":';
const CRITICAL_SENT_AT = '"critical_sent_at":';

interface Client {
  head: boolean;
  chunked: boolean;
  raw: string;
  remaining: number;
  text: string;
  events: number;
  ready: boolean;
  ended: boolean;
}

if (import.meta.main) {
  const args = childArgs<SseClientsArgs>();
  const url = new URL(args.url);
  const latencies: number[] = [];
  const critical: number[] = [];
  let cpu = cpuMeter();
  let ready = 0;
  let markReady!: () => void;
  const allReady = new Promise<void>((r) => (markReady = r));

  // Handles decoded body text: complete SSE messages end with a blank line.
  const onText = (c: Client, piece: string, now: number) => {
    c.text += piece;
    const last = c.text.lastIndexOf("\n\n");
    if (last < 0) return;
    const complete = c.text.slice(0, last);
    c.text = c.text.slice(last + 2);
    if (!c.ready && complete.includes("retry:")) {
      c.ready = true;
      if (++ready === args.clients) markReady();
    }
    const stamps = (key: string, into: number[]) => {
      let at = complete.indexOf(key);
      while (at >= 0) {
        const start = at + key.length;
        let end = start;
        while (end < complete.length && "0123456789.e+-".includes(complete[end]!)) end++;
        into.push(now - Number(complete.slice(start, end)));
        c.events++;
        at = complete.indexOf(key, end);
      }
    };
    stamps(SENT_AT, latencies);
    stamps(CRITICAL_SENT_AT, critical);
  };

  // De-chunks Transfer-Encoding: chunked (latin1 strings: one char per byte).
  const onData = (c: Client, data: string) => {
    const now = epochMs();
    c.raw += data;
    if (!c.head) {
      const end = c.raw.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = c.raw.slice(0, end);
      if (!head.startsWith("HTTP/1.1 200")) throw new Error(`stream refused: ${head}`);
      c.chunked = /\r\ntransfer-encoding:\s*chunked/i.test(head);
      c.head = true;
      c.raw = c.raw.slice(end + 4);
    }
    if (!c.chunked) {
      onText(c, c.raw, now);
      c.raw = "";
      return;
    }
    for (;;) {
      if (c.remaining === -1) {
        const eol = c.raw.indexOf("\r\n");
        if (eol < 0) return;
        c.remaining = parseInt(c.raw.slice(0, eol), 16);
        c.raw = c.raw.slice(eol + 2);
        if (c.remaining === 0) {
          c.ended = true;
          return;
        }
      } else if (c.remaining === -2) {
        if (c.raw.length < 2) return;
        c.raw = c.raw.slice(2);
        c.remaining = -1;
      } else {
        if (c.raw.length === 0) return;
        const take = Math.min(c.remaining, c.raw.length);
        onText(c, c.raw.slice(0, take), now);
        c.raw = c.raw.slice(take);
        c.remaining -= take;
        if (c.remaining === 0) c.remaining = -2;
      }
    }
  };

  const clients: Client[] = [];
  for (let i = 0; i < args.clients; i++) {
    const c: Client = {
      head: false,
      chunked: false,
      raw: "",
      remaining: -1,
      text: "",
      events: 0,
      ready: false,
      ended: false,
    };
    clients.push(c);
    const socket = await Bun.connect({
      hostname: url.hostname,
      port: Number(url.port),
      socket: {
        data: (_s, data) => onData(c, data.toString("latin1")),
        close: () => void (c.ended = true),
        error: () => void (c.ended = true),
      },
    });
    socket.write(
      `GET /local/stream?mode=${args.mode} HTTP/1.1\r\nHost: ${url.host}\r\nAccept: text/event-stream\r\n\r\n`,
    );
  }
  await Promise.race([allReady, Bun.sleep(15_000)]);
  latencies.length = 0;
  for (const c of clients) c.events = 0;
  cpu = cpuMeter();
  console.log(`READY ${ready}`);

  let marks = 0;
  for await (const line of console) {
    if (line.trim() === "stop") break;
    if (line.trim() === "mark") {
      const events = latencies.length + critical.length;
      const mark: SseMark = {
        mark: ++marks,
        events,
        latencyMs: summarize(latencies),
        criticalLatencyMs: summarize(critical),
        receiverCores: cpu(),
      };
      console.log(JSON.stringify(mark));
      latencies.length = 0;
      critical.length = 0;
      cpu = cpuMeter();
    }
  }
  const counts = clients.map((c) => c.events);
  reply({
    clients: args.clients,
    connected: ready,
    ended: clients.filter((c) => c.ended).length,
    events: latencies.length,
    minPerClient: Math.min(...counts),
    maxPerClient: Math.max(...counts),
    latencyMs: summarize(latencies),
    criticalLatencyMs: summarize(critical),
    receiverCores: cpu(),
  } satisfies SseClientsResult);
}
