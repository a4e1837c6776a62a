// Closed-loop HTTP/1.1 load generator over raw keep-alive sockets: exactly
// `connections` TCP connections, each sending the next request as soon as the
// previous response is complete. Hand-written HTTP keeps the generator cheap
// (fetch's pooling would also hide how many connections are really open).
// Prints one JSON line: throughput and latency of the measured window.
import { connectHttp, postRequest } from "./http1.ts";
import { childArgs, cpuMeter, cpuSecondsOf, reply, summarize } from "./lib.ts";

export interface LoadArgs {
  url: string;
  path: string;
  /** JSON request body, sent unchanged on every request. */
  body: string;
  connections: number;
  warmupMs: number;
  durationMs: number;
  /** A process (the server under test) whose CPU use over the measured window is reported. */
  watchPid?: number;
}

export interface LoadResult {
  connections: number;
  requests: number;
  errors: number;
  firstError: string | null;
  requestsPerSecond: number;
  latencyMs: ReturnType<typeof summarize>;
  generatorCores: number;
  openConnections: number;
  /** Cores the watched process used during the measured window. */
  watchedCores: number | null;
}

if (import.meta.main) {
  const args = childArgs<LoadArgs>();
  const url = new URL(args.url);
  const request = postRequest(url, args.path, args.body);
  let phase: "warmup" | "measure" | "stop" = "warmup";
  const latencies: number[] = [];
  let requests = 0;
  let errors = 0;
  let firstError: string | null = null;
  let inFlight = 0;

  const open = async () => {
    let sentAt = 0;
    const conn = await connectHttp(url, {
      response(status, raw) {
        inFlight--;
        if (phase === "measure") {
          if (status === 200 || status === 201) {
            requests++;
            latencies.push(performance.now() - sentAt);
          } else {
            errors++;
            firstError ??= raw.slice(0, 500);
          }
        }
        if (phase !== "stop") send();
      },
      closed(reason) {
        if (phase !== "stop") {
          errors++;
          firstError ??= reason;
        }
      },
    });
    const send = () => {
      inFlight++;
      sentAt = performance.now();
      conn.send(request);
    };
    return { conn, send };
  };

  const conns = await Promise.all(Array.from({ length: args.connections }, open));
  const cpu = cpuMeter();
  for (const c of conns) c.send();
  await Bun.sleep(args.warmupMs);
  phase = "measure";
  const watched0 = args.watchPid ? cpuSecondsOf(args.watchPid) : 0;
  const t0 = performance.now();
  await Bun.sleep(args.durationMs);
  phase = "stop";
  const elapsed = performance.now() - t0;
  const watchedCores = args.watchPid ? (cpuSecondsOf(args.watchPid) - watched0) / (elapsed / 1000) : null;
  const cores = cpu();
  const deadline = performance.now() + 5000;
  while (inFlight > 0 && performance.now() < deadline && conns.some((c) => !c.conn.closed)) await Bun.sleep(5);
  const openConnections = conns.filter((c) => !c.conn.closed).length;
  for (const c of conns) c.conn.close();
  reply({
    connections: args.connections,
    requests,
    errors,
    firstError,
    requestsPerSecond: (requests / elapsed) * 1000,
    latencyMs: summarize(latencies),
    generatorCores: cores,
    openConnections,
    watchedCores,
  } satisfies LoadResult);
}
