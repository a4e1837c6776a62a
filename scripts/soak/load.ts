// Open-loop ingest load for the soak: `rate` single-event POSTs a second on
// `connections` keep-alive connections, each event scheduled at a fixed time.
// Latency runs from the scheduled time to the answer, so a stalled service
// shows up as latency (no coordinated omission) rather than as a lower rate.
// Every event has idempotency_key `<run>-<n>`; the final report lists the n
// that were not acknowledged, so the soak can check Postgres for every other.
// Prints one JSON line per closed window and one at "stop" (stdin).
import { connectHttp, type HttpConnection, postRequest } from "../bench/http1.ts";
import { childArgs, cpuMeter, epochMs, summarize } from "../bench/lib.ts";
import { CRITICAL_EVERY, type LoadArgs, type LoadFinal, type LoadWindow } from "./protocol.ts";

const args = childArgs<LoadArgs>();
const cpu = cpuMeter();
const url = new URL(args.url);
const emit = (line: LoadWindow | LoadFinal | { type: "ready" }) => process.stdout.write(`${JSON.stringify(line)}\n`);

interface Slot {
  conn: HttpConnection | null;
  busy: { n: number; at: number } | null;
}

let window = { index: 0, sent: 0, acked: 0, errors: 0, latencies: [] as number[] };
let sent = 0;
let acked = 0;
let errors = 0;
const unacked: number[] = [];
const statuses: Record<string, number> = {};
let stopping = false;
const windowOf = (t: number) => Math.floor((t - args.startEpoch) / args.windowMs);

function closeWindows(now: number): void {
  const current = windowOf(now);
  while (window.index < current) {
    const { index, sent, acked, errors, latencies } = window;
    emit({ type: "window", index, sent, acked, errors, latencyMs: summarize(latencies), queued: queue.length });
    window = { index: index + 1, sent: 0, acked: 0, errors: 0, latencies: [] };
  }
}

const queue: { n: number; at: number }[] = [];
const slots: Slot[] = [];

function settle(slot: Slot, status: number | string): void {
  const job = slot.busy;
  if (!job) return;
  slot.busy = null;
  const now = epochMs();
  closeWindows(now);
  statuses[String(status)] = (statuses[String(status)] ?? 0) + 1;
  if (status === 201 || status === 200) {
    acked++;
    window.acked++;
    window.latencies.push(now - job.at);
  } else {
    errors++;
    window.errors++;
    unacked.push(job.n);
  }
  dispatch();
}

async function open(slot: Slot): Promise<void> {
  slot.conn = await connectHttp(url, {
    response: (status) => settle(slot, status),
    closed: (reason) => {
      settle(slot, `closed: ${reason}`);
      slot.conn = null;
      if (!stopping) void open(slot).then(dispatch, () => {});
    },
  });
}

function body(n: number): string {
  const critical = n % CRITICAL_EVERY === 0;
  return JSON.stringify({
    mode: args.mode,
    source: args.run,
    type: critical ? "ORDER" : "SOAK",
    subtype: critical ? "BUY_FILLED" : "TICK",
    symbol: "SOAK",
    body: `soak event ${n}`,
    idempotency_key: `${args.run}-${n}`,
    meta: { n, sent_at: epochMs() },
  });
}

function dispatch(): void {
  for (const slot of slots) {
    if (queue.length === 0) return;
    if (slot.busy || !slot.conn || slot.conn.closed) continue;
    const job = queue.shift()!;
    slot.busy = job;
    slot.conn.send(postRequest(url, "/local/events", body(job.n)));
  }
}

for (let i = 0; i < args.connections; i++) {
  const slot: Slot = { conn: null, busy: null };
  slots.push(slot);
  await open(slot);
}
emit({ type: "ready" });

// Commands on stdin: "start <epoch ms>" (the shared window origin), then "stop".
const commands = console[Symbol.asyncIterator]();
for (;;) {
  const { value, done } = await commands.next();
  if (done) process.exit(1);
  const m = /^start (\d+(?:\.\d+)?)/.exec(String(value).trim());
  if (m) {
    args.startEpoch = Number(m[1]);
    break;
  }
}
window.index = windowOf(epochMs());
const t0 = epochMs();
const timer = setInterval(() => {
  if (stopping) return;
  const now = epochMs();
  closeWindows(now);
  const due = Math.floor(((now - t0) * args.rate) / 1000);
  while (sent < due) {
    queue.push({ n: sent, at: t0 + (sent * 1000) / args.rate });
    sent++;
    window.sent++;
  }
  dispatch();
}, 2);

for (;;) {
  const { value, done } = await commands.next();
  if (done || String(value).trim() === "stop") break;
}
stopping = true;
clearInterval(timer);
// Events scheduled but never sent were not acknowledged either.
for (const job of queue.splice(0)) unacked.push(job.n);
const deadline = performance.now() + 15_000;
while (slots.some((s) => s.busy) && performance.now() < deadline) await Bun.sleep(10);
for (const s of slots) {
  if (s.busy) unacked.push(s.busy.n);
  s.conn?.close();
}
closeWindows(epochMs() + args.windowMs); // the last, partial window
emit({ type: "final", sent, acked, errors, unacked: unacked.sort((a, b) => a - b), statuses, cores: cpu() });
process.exit(0);
