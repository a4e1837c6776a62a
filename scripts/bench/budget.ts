// Where the time of one single-event POST goes, stage by stage, measured in
// one process with the service's own modules (no sockets, no load generator,
// so the figures are steadier than the HTTP runs): the API token check, the
// CORS header choice, reading and parsing the body, schema validation, the
// bounded-store admission and the metrics/readiness hooks, the store append
// (group commit of 64 concurrent single-event requests, ZOE_SYNCHRONOUS as the
// service default), the answer, and routing through Elysia (app.handle)
// against the precompiled handler. Bun's HTTP parsing and writing is what the
// bare Bun.serve raw limit adds on top (its run measures it on the wire).
// Args (JSON): { dir, iterations }. Prints { stages: {name: µs}, ... }.
import { join } from "node:path";
import { loadConfig } from "../../src/config.ts";
import { createApp } from "../../src/http/app.ts";
import { readJsonBody } from "../../src/http/body.ts";
import { assertEventBatch, createIngest } from "../../src/http/ingest.ts";
import { createOperations } from "../../src/http/operations.ts";
import { systemClock } from "../../src/lib/clock.ts";
import { silentLogger } from "../../src/lib/log.ts";
import { createHealth } from "../../src/ops/health.ts";
import { openStore } from "../../src/store/store.ts";
import { createHub } from "../../src/stream/hub.ts";
import { childArgs, reply, sampleEvent } from "./lib.ts";

export interface BudgetResult {
  /** µs per single-event request, by stage. */
  stages: Record<string, number>;
  /** Elysia's app.handle and the precompiled handler, whole request (store included), µs. */
  elysiaHandleUs: number;
  directHandleUs: number;
  synchronous: string;
}

const TOKEN = "bench-token-0123456789abcdef";

async function time(n: number, work: (i: number) => unknown): Promise<number> {
  for (let i = 0; i < Math.min(2000, n); i++) await work(i); // warm up the JIT
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await work(i);
  return ((performance.now() - t0) * 1000) / n;
}

/** CPU µs (this process, all threads: the WAL sync runs on the thread pool) per request with `concurrency` in flight at once (what group commit needs). */
async function timeConcurrent(n: number, concurrency: number, work: () => Promise<unknown>): Promise<number> {
  const run = async (count: number) => {
    let left = count;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (left-- > 0) await work();
      }),
    );
  };
  await run(Math.min(4000, n));
  const c0 = process.cpuUsage();
  await run(n);
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

if (import.meta.main) {
  const { dir, iterations } = childArgs<{ dir: string; iterations: number }>();
  const config = loadConfig({ ZOE_API_TOKEN: TOKEN });
  const body = JSON.stringify(sampleEvent(1));
  const headers = {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(body)),
    authorization: `Bearer ${TOKEN}`,
  };
  const request = () => new Request("http://127.0.0.1:8765/local/events", { method: "POST", headers, body });
  const store = openStore({
    path: join(dir, `budget-${process.pid}.db`),
    synchronous: config.synchronous,
    checkpointIntervalMs: config.checkpointIntervalMs,
  });
  const hub = createHub();
  store.onAppend((events) => hub.publish(events));
  const ops = createOperations({
    store,
    hub,
    clock: systemClock,
    logger: silentLogger,
    limits: config.limits,
    criticalSubtypes: config.flush.criticalSubtypes,
    processMetrics: false,
  });
  const ingest = createIngest({
    store,
    maxRequestBytes: config.maxRequestBytes,
    apiToken: TOKEN,
    corsOrigins: config.corsOrigins,
    logger: silentLogger,
    hooks: ops.hooks,
  });
  const app = createApp({
    store,
    hub,
    health: createHealth({ store, clock: systemClock, startedAt: Date.now() }),
    logger: silentLogger,
    apiToken: TOKEN,
    corsOrigins: config.corsOrigins,
    maxRequestBytes: config.maxRequestBytes,
    sse: config.sse,
    hooks: ops.hooks,
    plugins: [ops.plugin],
  });
  const parsed = JSON.parse(body);
  const n = iterations;
  const stages: Record<string, number> = {};
  // Building the Request is the test's cost, not the service's (Bun builds it natively from the socket).
  const build = await time(n, request);
  const buildCpu = await timeConcurrent(n, 64, async () => request());
  stages["request object (harness, subtracted)"] = build;
  const digest = (v: string) => Buffer.from(new Bun.CryptoHasher("sha256").update(v).digest());
  const expected = digest(TOKEN);
  stages["auth: bearer token, sha256 + constant-time compare"] = await time(n, () =>
    require("node:crypto").timingSafeEqual(digest(TOKEN), expected),
  );
  stages["CORS: origin header lookup"] = (await time(n, () => request().headers.get("origin"))) - build;
  stages["body: read, UTF-8, JSON.parse, depth and range checks"] =
    (await time(n, () => readJsonBody(request(), config.maxRequestBytes, "events"))) - build;
  stages["validation: shared schema (compiled TypeBox + extra checks)"] = await time(n, () =>
    assertEventBatch([parsed], true),
  );
  stages["admission (caps) + metrics + readiness hooks"] = await time(n, () => {
    const release = ops.hooks.admit!([parsed]);
    release();
    ops.hooks.ingested!([parsed], [{ id: "x", seq: 1, idempotency_key: "x", duplicate: false }], 0.5);
  });
  stages["answer: JSON.stringify + Response"] = await time(
    n,
    () =>
      new Response(
        JSON.stringify({
          id: "01900000-0000-7000-8000-000000000001",
          seq: 123456,
          idempotency_key: "01900000-0000-7000-8000-000000000001",
          duplicate: false,
        }),
        { status: 201, headers: { "content-type": "application/json" } },
      ),
  );
  stages[`store.append, group commit of 64 in flight (CPU, synchronous=${config.synchronous})`] = await timeConcurrent(
    n,
    64,
    () => store.append([parsed]),
  );
  const normal = openStore({
    path: join(dir, `budget-normal-${process.pid}.db`),
    synchronous: "NORMAL",
    checkpointIntervalMs: config.checkpointIntervalMs,
  });
  stages["(store.append as above, synchronous=NORMAL)"] = await timeConcurrent(n, 64, () => normal.append([parsed]));
  normal.close();
  const directHandleUs = (await timeConcurrent(n, 64, () => ingest(request()))) - buildCpu;
  const elysiaHandleUs = (await timeConcurrent(n, 64, () => app.handle(request()))) - buildCpu;
  store.close();
  reply({ stages, elysiaHandleUs, directHandleUs, synchronous: config.synchronous } satisfies BudgetResult);
}
