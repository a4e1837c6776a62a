// SSE clients for the soak: raw HTTP/1.1 connections to GET /local/stream,
// live from connect time. Each checks that ids arrive without a gap or a
// repeat, measures publisher-to-arrival latency from meta.sent_at, and
// reconnects with Last-Event-ID if the service cuts it off. Prints one JSON
// line per closed window; on "final <seq>" (stdin) it waits until every
// client has seen <seq>, prints the totals and exits.
import { childArgs, cpuMeter, epochMs, summarize } from "../bench/lib.ts";
import type { SseArgs, SseFinal, SseWindow } from "./protocol.ts";

const args = childArgs<SseArgs>();
const cpu = cpuMeter();
const url = new URL(args.url);
const emit = (line: SseWindow | SseFinal | { type: "ready" }) => process.stdout.write(`${JSON.stringify(line)}\n`);
const SENT_AT = '"sent_at":';
const ID = "id: ";

interface Client {
  head: boolean;
  text: string;
  lastId: number;
  ready: boolean;
}

let window = { index: 0, events: 0, gaps: 0, reconnects: 0, latencies: [] as number[] };
const totals = { events: 0, gaps: 0, duplicates: 0, reconnects: 0 };
let stopping = false;
let readyCount = 0;
const windowOf = (t: number) => Math.floor((t - args.startEpoch) / args.windowMs);

function closeWindows(now: number): void {
  if (args.startEpoch === 0) return; // not started: nothing is counted per window yet
  const current = windowOf(now);
  while (window.index < current) {
    const { index, events, gaps, reconnects, latencies } = window;
    emit({ type: "window", index, events, gaps, reconnects, latencyMs: summarize(latencies) });
    window = { index: index + 1, events: 0, gaps: 0, reconnects: 0, latencies: [] };
  }
}

/** Complete messages end with a blank line; chunk-size lines between them are skipped by the scan. */
function onText(c: Client, piece: string): void {
  c.text += piece;
  const last = c.text.lastIndexOf("\n\n");
  if (last < 0) return;
  const complete = c.text.slice(0, last);
  c.text = c.text.slice(last + 2);
  const now = epochMs();
  closeWindows(now);
  if (!c.ready && complete.includes("retry:")) {
    c.ready = true;
    readyCount++;
  }
  let at = complete.indexOf(ID);
  while (at >= 0) {
    let end = at + ID.length;
    while (end < complete.length && complete.charCodeAt(end) >= 48 && complete.charCodeAt(end) <= 57) end++;
    const id = Number(complete.slice(at + ID.length, end));
    if (c.lastId > 0 && id > c.lastId + 1) {
      window.gaps += id - c.lastId - 1;
      totals.gaps += id - c.lastId - 1;
    }
    if (id <= c.lastId) totals.duplicates++;
    else c.lastId = id;
    const s = complete.indexOf(SENT_AT, end);
    const next = complete.indexOf(ID, end);
    if (s >= 0 && (next < 0 || s < next)) {
      let e = s + SENT_AT.length;
      while (e < complete.length && "0123456789.e+-".includes(complete[e]!)) e++;
      window.latencies.push(now - Number(complete.slice(s + SENT_AT.length, e)));
    }
    window.events++;
    totals.events++;
    at = next;
  }
}

async function connect(c: Client): Promise<void> {
  c.head = false;
  c.text = "";
  let raw = "";
  const resume = c.lastId > 0 ? `Last-Event-ID: ${c.lastId}\r\n` : "";
  const socket = await Bun.connect({
    hostname: url.hostname,
    port: Number(url.port),
    socket: {
      data(_s, data) {
        if (c.head) return onText(c, data.toString("latin1"));
        raw += data.toString("latin1");
        const end = raw.indexOf("\r\n\r\n");
        if (end < 0) return;
        if (!raw.startsWith("HTTP/1.1 200")) throw new Error(`stream refused: ${raw.slice(0, 200)}`);
        c.head = true;
        onText(c, raw.slice(end + 4));
      },
      close() {
        if (stopping) return;
        window.reconnects++;
        totals.reconnects++;
        setTimeout(() => void connect(c).catch(() => {}), 100);
      },
      error() {},
    },
  });
  socket.write(
    `GET /local/stream?mode=${args.mode} HTTP/1.1\r\nHost: ${url.host}\r\nAccept: text/event-stream\r\n${resume}\r\n`,
  );
}

const clients: Client[] = Array.from({ length: args.clients }, () => ({
  head: false,
  text: "",
  lastId: 0,
  ready: false,
}));
for (const c of clients) await connect(c);
const deadline = performance.now() + 15_000;
while (readyCount < args.clients && performance.now() < deadline) await Bun.sleep(10);
emit({ type: "ready" });

// Commands on stdin: "start <epoch ms>" (the shared window origin), then "final <seq>".
for await (const line of console) {
  const start = /^start (\d+(?:\.\d+)?)/.exec(line.trim());
  if (start) {
    args.startEpoch = Number(start[1]);
    window = { index: windowOf(epochMs()), events: 0, gaps: 0, reconnects: 0, latencies: [] };
    continue;
  }
  const m = /^final (\d+)/.exec(line.trim());
  if (!m) continue;
  const target = Number(m[1]);
  const until = performance.now() + 30_000;
  while (clients.some((c) => c.lastId < target) && performance.now() < until) await Bun.sleep(20);
  break;
}
stopping = true;
closeWindows(epochMs() + args.windowMs);
const last = clients.map((c) => c.lastId);
emit({
  type: "final",
  clients: args.clients,
  ...totals,
  minLastSeq: Math.min(...last),
  maxLastSeq: Math.max(...last),
  cores: cpu(),
});
process.exit(0);
