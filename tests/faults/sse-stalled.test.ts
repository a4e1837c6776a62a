// Stalled SSE clients cannot take the box's memory: 1,000 clients that never
// read (raw sockets, paused after the response head) and 20 that do, all on
// one mode, while 16 MiB of events are published to it. Each stalled client
// alone stays under its own cap (ZOE_SSE_MAX_BUFFER_BYTES, 4 MiB), which
// together would be 4 GB; the total bound (ZOE_SSE_MAX_TOTAL_BUFFER_BYTES, 64
// MiB by default) cuts the most buffered first, so the service's RSS (VmRSS
// of the child, from /proc) stays under 512 MB, and the readers get every
// event, in order, without being cut. The stall timer is set out of reach:
// only the byte bounds act here.
import { afterAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import net from "node:net";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { tempDir, waitFor } from "../helpers/tmp.ts";

const MiB = 1024 * 1024;
const openFilesLimit = Number(/Max open files\s+(\d+)/.exec(readFileSync("/proc/self/limits", "utf8"))?.[1] ?? 1024);
const STALLED = Math.min(1000, Math.max(50, openFilesLimit - 200));
const READERS = 20;
if (STALLED < 1000)
  console.log(`sse stalled: ulimit -n is ${openFilesLimit}, so ${STALLED} stalled clients instead of 1000`);

const dir = tempDir("zoe-sse-stalled-");
const sockets: net.Socket[] = [];
let svc: ServiceProcess | null = null;
afterAll(async () => {
  for (const s of sockets) s.destroy();
  if (svc) await svc.kill("SIGKILL");
  dir.cleanup();
});

const rssBytes = (pid: number) =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) * 1024;

interface Client {
  /** Seqs received, in arrival order (readers only). */
  seqs: number[];
  closed: boolean;
  ready: Promise<void>;
}

/** An SSE client on a raw socket; a stalled one stops reading once the response head arrived. */
function connect(port: number, stalled: boolean): Client {
  const socket = net.connect(port, "127.0.0.1");
  sockets.push(socket);
  let resolveReady!: () => void;
  const client: Client = { seqs: [], closed: false, ready: new Promise((r) => (resolveReady = r)) };
  let tail = "";
  socket.setEncoding("latin1");
  socket.on("connect", () =>
    socket.write("GET /local/stream?mode=paper HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"),
  );
  socket.on("data", (chunk: string) => {
    if (stalled) {
      socket.pause();
      resolveReady();
      return;
    }
    const text = tail + chunk;
    const cut = text.lastIndexOf("\n");
    tail = text.slice(cut + 1);
    for (const m of text.slice(0, cut + 1).matchAll(/^id: (\d+)\r?$/gm)) client.seqs.push(Number(m[1]));
    if (text.includes("retry:")) resolveReady();
  });
  socket.on("close", () => (client.closed = true));
  socket.on("error", () => {});
  return client;
}

async function metric(url: string, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

const percentile = (xs: number[], p: number) =>
  xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? 0;
const summary = (xs: number[]) => `${percentile(xs, 50).toFixed(1)} / ${percentile(xs, 99).toFixed(1)}`;
/** The slowest POST of each tenth of the run, in order: when the stalled clients cost, and when no more. */
const tenths = (xs: number[]) =>
  Array.from({ length: 10 }, (_, i) =>
    Math.max(...xs.slice(Math.floor((i * xs.length) / 10), Math.floor(((i + 1) * xs.length) / 10))).toFixed(0),
  ).join(" ");

test(`${STALLED} stalled SSE clients: the total buffer bound cuts them, RSS stays under 512 MB, readers get every event`, async () => {
  svc = await startService({
    dbPath: dir.file("zoe.db"),
    env: {
      ZOE_LOG_LEVEL: "error",
      ZOE_SSE_MAX_CLIENTS: "5000",
      ZOE_SSE_STALL_MS: "3600000",
    },
  });
  const { pid, url, port } = { pid: svc.proc.pid, url: svc.url, port: svc.port };
  const padding = "p".repeat(2000);
  const publish = async (batches: number, tag: string): Promise<number[]> => {
    const latencies: number[] = [];
    for (let b = 0; b < batches; b++) {
      const t0 = performance.now();
      const res = await fetch(`${url}/local/events`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(
          Array.from({ length: 100 }, (_, i) => ({
            mode: "paper",
            source: "stalled",
            type: "T",
            subtype: "TICK",
            body: `${tag}-${b}-${i} ${padding}`,
          })),
        ),
      });
      const answer = (await res.json()) as { events: { seq: number }[] };
      expect(res.status).toBe(201);
      latencies.push(performance.now() - t0);
      newestSeq = answer.events.at(-1)!.seq;
      if (b % 4 === 0) peak = Math.max(peak, rssBytes(pid));
    }
    return latencies;
  };
  let peak = 0;
  // The store's seq range begins at its start time x 1000: the answers say where it is.
  let newestSeq = 0;
  const idleLatencies = await publish(10, "warm-up");
  const warmUpSeq = newestSeq;
  const rssStart = rssBytes(pid);
  peak = rssStart;

  const readers = Array.from({ length: READERS }, () => connect(port, false));
  await Promise.all(readers.map((c) => c.ready));
  const stalled: Client[] = [];
  for (let i = 0; i < STALLED; i += 100) {
    const batch = Array.from({ length: Math.min(100, STALLED - i) }, () => connect(port, true));
    stalled.push(...batch);
    await Promise.all(batch.map((c) => c.ready));
  }
  expect(await metric(url, "zoe_sse_clients", 'mode="paper"')).toBe(READERS + STALLED);
  const rssConnected = rssBytes(pid);

  const batches = Math.ceil((16 * MiB) / (100 * 2100));
  const loadedLatencies = await publish(batches, "load");
  const lastSeq = newestSeq;
  await waitFor(
    async () => (await metric(url, "zoe_sse_disconnects_total", 'reason="slow"')) >= STALLED,
    30_000,
    `${STALLED} stalled clients cut off`,
  );
  await waitFor(() => readers.every((c) => c.seqs.at(-1) === lastSeq), 30_000, "every event at every reader").catch(
    (e) => {
      console.log(readers.map((r) => `${r.closed} ${r.seqs.length} ${r.seqs.at(-1)}`).join("\n"));
      throw e;
    },
  );
  peak = Math.max(peak, rssBytes(pid));
  const mb = (n: number) => (n / MiB).toFixed(1);
  console.log(
    `sse stalled: ${STALLED} stalled + ${READERS} readers; RSS ${mb(rssStart)} MiB at start, ${mb(rssConnected)} connected, ` +
      `peak ${mb(peak)} while 16 MiB were published; POST (100 events) p50 / p99 ${summary(idleLatencies)} ms ` +
      `with no stream, ${summary(loadedLatencies)} ms with the stalled clients (by tenths: ${tenths(loadedLatencies)})`,
  );
  expect(peak).toBeLessThan(512 * MiB);
  const firstSeq = readers[0]!.seqs[0]!;
  for (const r of readers) {
    expect(r.closed).toBe(false);
    expect(r.seqs).toEqual(Array.from({ length: lastSeq - firstSeq + 1 }, (_, i) => firstSeq + i));
  }
  expect(firstSeq).toBeLessThanOrEqual(warmUpSeq + 1);
  expect(await metric(url, "zoe_sse_clients", 'mode="paper"')).toBe(READERS);
  expect((await fetch(`${url}/health`)).status).toBe(200);
}, 180_000);
