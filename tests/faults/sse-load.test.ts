// Resource exhaustion over SSE: 1,000 idle clients on one mode plus 10 that
// never read on the other, while 36 MiB of events are published to the
// non-readers' mode. The service's memory (VmRSS of the child, from /proc)
// must stay bounded: it must not grow with what the stuck clients fail to
// read, who are cut off instead. The idle clients must still receive every
// probe event; their delivery latency is reported.
//
// Needs ~1,050 file descriptors in this process and in the service
// (ulimit -n); with fewer the client count is scaled down and a note printed.
import { afterAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import net from "node:net";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { tempDir, waitFor } from "../helpers/tmp.ts";

const MiB = 1024 * 1024;
const openFilesLimit = Number(/Max open files\s+(\d+)/.exec(readFileSync("/proc/self/limits", "utf8"))?.[1] ?? 1024);
const IDLE = Math.min(1000, Math.max(50, openFilesLimit - 200));
const STUCK = 10;
if (IDLE < 1000) console.log(`sse load: ulimit -n is ${openFilesLimit}, so ${IDLE} idle clients instead of 1000`);

const dir = tempDir("zoe-sse-load-");
const sockets: net.Socket[] = [];
let svc: ServiceProcess | null = null;
afterAll(async () => {
  for (const s of sockets) s.destroy();
  if (svc) await svc.kill("SIGKILL");
  dir.cleanup();
});

function rssBytes(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kb) * 1024;
}

interface Client {
  socket: net.Socket;
  /** Arrival time of each seq seen (performance.now of this process). */
  seen: Map<number, number>;
  bytes: number;
  ready: Promise<void>;
}

/** An SSE client on a raw socket; `stuck` clients stop reading after the response headers. */
function connect(port: number, mode: string, stuck: boolean): Client {
  const socket = net.connect(port, "127.0.0.1");
  sockets.push(socket);
  const seen = new Map<number, number>();
  let tail = "";
  let resolveReady!: () => void;
  const client: Client = { socket, seen, bytes: 0, ready: new Promise((r) => (resolveReady = r)) };
  socket.setEncoding("utf8");
  socket.on("connect", () =>
    socket.write(`GET /local/stream?mode=${mode} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`),
  );
  socket.on("data", (chunk: string) => {
    client.bytes += chunk.length;
    if (stuck) {
      socket.pause();
      resolveReady();
      return;
    }
    const now = performance.now();
    const text = tail + chunk;
    const cut = text.lastIndexOf("\n");
    tail = text.slice(cut + 1);
    for (const m of text.slice(0, cut + 1).matchAll(/^id: (\d+)$/gm)) seen.set(Number(m[1]), now);
    if (text.startsWith("HTTP/1.1 200") || client.bytes > 0) resolveReady();
  });
  socket.on("error", () => {});
  return client;
}

async function post(url: string, body: unknown): Promise<{ seq: number }[]> {
  const res = await fetch(`${url}/local/events`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (res.status !== 201) throw new Error(`POST: ${res.status} ${await res.text()}`);
  const json = (await res.json()) as { seq: number } | { events: { seq: number }[] };
  return "events" in json ? json.events : [json];
}

/** One sample of a Prometheus metric from GET /metrics (0 when absent). */
async function metric(url: string, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

const percentile = (xs: number[], p: number) =>
  xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? 0;

test(`${IDLE} idle SSE clients and ${STUCK} that never read: memory stays bounded, the idle ones get every event`, async () => {
  svc = await startService({
    dbPath: dir.file("zoe.db"),
    env: {
      ZOE_LOG_LEVEL: "warn",
      ZOE_SSE_MAX_CLIENTS: "5000",
      ZOE_SSE_MAX_CLIENTS_PER_IP: "5000",
      ZOE_SSE_MAX_BUFFER_BYTES: String(256 * 1024),
      ZOE_SSE_HEARTBEAT_MS: "1000",
      ZOE_SSE_STALL_MS: "1000",
    },
  });
  const pid = svc.proc.pid;
  const url = svc.url;
  await post(url, { mode: "live", source: "load", type: "T", subtype: "TICK", body: "warm-up" });
  const rssStart = rssBytes(pid);

  const idle: Client[] = [];
  for (let i = 0; i < IDLE; i += 100) {
    const batch = Array.from({ length: Math.min(100, IDLE - i) }, () => connect(svc!.port, "live", false));
    idle.push(...batch);
    await Promise.all(batch.map((c) => c.ready));
  }
  const stuck = Array.from({ length: STUCK }, () => connect(svc!.port, "paper", true));
  await Promise.all(stuck.map((c) => c.ready));
  const watcher = connect(svc.port, "paper", false);
  await watcher.ready;
  expect(await metric(url, "zoe_sse_clients", 'mode="live"')).toBe(IDLE);
  const rssConnected = rssBytes(pid);

  const padding = "p".repeat(2000);
  const probes = new Map<number, number>();
  /** Publishes `mib` MiB to paper, with a probe to the idle clients every few batches; returns the peak RSS seen. */
  const publish = async (mib: number, phase: number): Promise<number> => {
    let peak = rssBytes(pid);
    const batches = Math.ceil((mib * MiB) / (100 * 2100));
    for (let b = 0; b < batches; b++) {
      await post(
        url,
        Array.from({ length: 100 }, (_, i) => ({
          mode: "paper",
          source: "load",
          type: "T",
          subtype: "TICK",
          body: `${phase}-${b}-${i} ${padding}`,
        })),
      );
      if (b % 4 === 0) {
        const sentAt = performance.now();
        const [{ seq }] = (await post(url, {
          mode: "live",
          source: "load",
          type: "T",
          subtype: "TICK",
          body: `probe ${phase}-${b}`,
        })) as [{ seq: number }];
        probes.set(seq, sentAt);
      }
      if (b % 8 === 0) peak = Math.max(peak, rssBytes(pid));
    }
    return Math.max(peak, rssBytes(pid));
  };

  const peakFirst = await publish(12, 1);
  // Stuck clients are cut off once their unsent data passes the bound (or a heartbeat finds them stalled for ZOE_SSE_STALL_MS).
  await waitFor(
    async () => (await metric(url, "zoe_sse_disconnects_total", 'reason="slow"')) >= STUCK,
    15_000,
    `${STUCK} stuck clients cut off`,
  );
  const peakSecond = await publish(24, 2);

  await waitFor(
    () => idle.every((c) => [...probes.keys()].every((seq) => c.seen.has(seq))),
    20_000,
    "every probe at every idle client",
  );
  const latencies: number[] = [];
  for (const c of idle) for (const [seq, sentAt] of probes) latencies.push(c.seen.get(seq)! - sentAt);
  const mb = (n: number) => (n / MiB).toFixed(1);
  console.log(
    `sse load: ${IDLE} idle + ${STUCK} stuck clients; RSS ${mb(rssStart)} MiB at start, ${mb(rssConnected)} connected, ` +
      `peak ${mb(peakFirst)} while 12 MiB were published, ${mb(peakSecond)} during the next 24 MiB; ` +
      `paper watcher read ${mb(watcher.bytes)} MiB; probe delivery to idle clients p50 ${percentile(latencies, 50).toFixed(1)} ms, ` +
      `p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms over ${probes.size} probes`,
  );
  expect(watcher.bytes).toBeGreaterThan(36 * MiB);
  // Bounded: twice the volume again does not raise the peak (memory tracking what the stuck clients
  // failed to read would add ~10 × 24 MiB), and the whole run stays far below that.
  expect(peakSecond - peakFirst).toBeLessThan(48 * MiB);
  expect(Math.max(peakFirst, peakSecond) - rssStart).toBeLessThan(256 * MiB);
  // The idle clients were not starved (each got every probe, checked above) nor dropped.
  expect(await metric(url, "zoe_sse_clients", 'mode="live"')).toBe(IDLE);
  expect((await fetch(`${url}/health`)).status).toBe(200);
}, 120_000);
