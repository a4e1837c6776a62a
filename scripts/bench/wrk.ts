// HTTP saturation through wrk (Debian's package, C, epoll): the bench's own
// generator (http-load.ts) tops out near the bare Bun.serve rate, so a ratio
// to "bare" taken with it is a ratio to the generator. wrk posts the body
// from a small Lua script and reports its own CPU (rusage of the child).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { cpuSecondsOf } from "./lib.ts";

export interface WrkResult {
  connections: number;
  requestsPerSecond: number;
  requests: number;
  /** Answers outside 2xx/3xx plus socket errors. */
  errors: number;
  latencyMs: { p50: number; p99: number };
  /** Cores wrk used over its run. */
  generatorCores: number;
  /** Cores the watched process (the server) used over the same run. */
  watchedCores: number | null;
}

/** Installs wrk with apt when it is missing (as the tests do for Chromium); the reason it could not, or null. */
export function ensureWrk(): string | null {
  if (Bun.which("wrk")) return null;
  const apt = Bun.spawnSync(
    ["bash", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk"],
    { stdout: "ignore", stderr: "pipe" },
  );
  if (apt.exitCode === 0 && Bun.which("wrk")) return null;
  return `wrk not found and apt-get install wrk failed: ${apt.stderr.toString().trim().split("\n").at(-1) ?? ""}`;
}

const toMs = (value: string, unit: string) =>
  Number(value) * (unit === "us" ? 0.001 : unit === "ms" ? 1 : unit === "s" ? 1000 : unit === "m" ? 60_000 : NaN);

export async function runWrk(options: {
  dir: string;
  url: string;
  path: string;
  body: string;
  connections: number;
  durationS: number;
  warmupS?: number;
  watchPid?: number;
}): Promise<WrkResult> {
  const script = join(options.dir, `wrk-${options.connections}-${Bun.hash(options.body).toString(16)}.lua`);
  writeFileSync(
    script,
    `wrk.method = "POST"\nwrk.body = ${JSON.stringify(options.body)}\nwrk.headers["Content-Type"] = "application/json"\n`,
  );
  const target = new URL(options.path, options.url).href;
  const run = async (seconds: number) => {
    const proc = Bun.spawn(
      ["wrk", "-t1", `-c${options.connections}`, `-d${seconds}s`, "--latency", "-s", script, target],
      { stdout: "pipe", stderr: "pipe" },
    );
    const watched0 = options.watchPid ? cpuSecondsOf(options.watchPid) : 0;
    const t0 = performance.now();
    const [out, err, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    const wall = (performance.now() - t0) / 1000;
    const watchedCores = options.watchPid ? (cpuSecondsOf(options.watchPid) - watched0) / wall : null;
    if (code !== 0) throw new Error(`wrk failed (exit ${code}): ${out}\n${err}`);
    const usage = proc.resourceUsage();
    const cpu = usage ? Number(usage.cpuTime.user + usage.cpuTime.system) / 1e6 : NaN;
    return { out, wall, cpu, watchedCores };
  };
  if (options.warmupS) await run(options.warmupS);
  const { out, wall, cpu, watchedCores } = await run(options.durationS);
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  const pct = (p: string) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)`, "m").exec(out);
    return m ? toMs(m[1]!, m[2]!) : NaN;
  };
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors =
    (num(/Non-2xx or 3xx responses: (\d+)/) || 0) +
    (socketErrors ? socketErrors.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return {
    connections: options.connections,
    requestsPerSecond: num(/Requests\/sec:\s+([\d.]+)/),
    requests: num(/(\d+) requests in/),
    errors,
    latencyMs: { p50: pct("50"), p99: pct("99") },
    generatorCores: cpu / wall,
    watchedCores,
  };
}
