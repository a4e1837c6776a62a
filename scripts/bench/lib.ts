// Shared plumbing for the benchmark: child processes that answer with one JSON
// line, latency summaries, /proc sampling of the service, machine facts.
import type { Subprocess } from "bun";
import { readFileSync, readlinkSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";

export const BENCH_DIR = import.meta.dir;
export const ROOT = join(import.meta.dir, "..", "..");

/** Wall-clock milliseconds comparable across processes (process.hrtime is not). */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function summarize(values: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  const at = (q: number) => (n === 0 ? NaN : sorted[Math.min(n - 1, Math.ceil(q * n) - 1)]!);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
  return {
    count: n,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: n ? sorted[n - 1]! : NaN,
    mean: n ? sum / n : NaN,
  };
}

/** CPU time (user+system) this process used, in cores, since `since`. */
export function cpuMeter(): () => number {
  const start = process.cpuUsage();
  const t0 = performance.now();
  return () => {
    const u = process.cpuUsage(start);
    return (u.user + u.system) / 1000 / Math.max(1, performance.now() - t0);
  };
}

/**
 * Runs `<runtime> <script> <json args>` (bun, or python3 for the bench's Python
 * scripts) and returns the last JSON line it prints; a child still running
 * after `timeoutMs` is killed.
 */
export async function runJson<T>(
  script: string,
  args: unknown,
  env: Record<string, string> = {},
  timeoutMs = 120_000,
  runtime: "bun" | "python3" = "bun",
): Promise<T> {
  const proc = Bun.spawn([runtime, join(BENCH_DIR, script), JSON.stringify(args)], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...env },
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]).finally(() => clearTimeout(timer));
  const line = out
    .trim()
    .split("\n")
    .reverse()
    .find((l) => l.startsWith("{"));
  if (code !== 0 || !line) throw new Error(`bench child ${script} failed (exit ${code}):\n${out}\n${err}`);
  return JSON.parse(line) as T;
}

/** Prints the child's result for runJson() and exits. */
export function reply(result: unknown): never {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

export function childArgs<T>(): T {
  return JSON.parse(process.argv[2] ?? "{}") as T;
}

export interface ListeningChild {
  url: string;
  proc: Subprocess<"pipe", "pipe", "pipe">;
  output(): string;
  stop(): Promise<void>;
}

/** Spawns a long-running child and waits until it prints `<marker> <url>`. */
export async function spawnListening(
  cmd: string[],
  env: Record<string, string>,
  marker: RegExp,
  timeoutMs = 20_000,
): Promise<ListeningChild> {
  const proc = Bun.spawn(cmd, { stdin: "pipe", stdout: "pipe", stderr: "pipe", env });
  let out = "";
  let resolveUrl!: (url: string) => void;
  const found = new Promise<string>((r) => (resolveUrl = r));
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      out += decoder.decode(chunk, { stream: true });
      const m = marker.exec(out);
      if (m) resolveUrl(m[1]!);
    }
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const url = await Promise.race([
    found,
    proc.exited.then((code) => {
      throw new Error(`${cmd.join(" ")} exited with ${code} before listening:\n${out}`);
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        proc.kill("SIGKILL");
        reject(new Error(`${cmd.join(" ")} did not listen within ${timeoutMs} ms:\n${out}`));
      }, timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
  return {
    url,
    proc,
    output: () => out,
    async stop() {
      if (proc.exitCode !== null) return;
      proc.kill("SIGTERM");
      const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(5000).then(() => false)]);
      if (!exited) {
        proc.kill("SIGKILL");
        await proc.exited;
      }
    },
  };
}

/** VmRSS / VmHWM of a process in MB, from /proc. */
export function memoryOf(pid: number): { rssMb: number; peakMb: number } {
  const status = read(`/proc/${pid}/status`);
  if (status === null) return { rssMb: NaN, peakMb: NaN }; // the process is gone
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rssMb: kb("VmRSS") / 1024, peakMb: kb("VmHWM") / 1024 };
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** CPU seconds (user+system) a process has used so far, from /proc/<pid>/stat. */
export function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** Busy share of all CPUs since the call (from /proc/stat): how loaded the whole machine was. */
export function machineBusyMeter(): () => number {
  const read = () => {
    const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = fields[3]! + (fields[4] ?? 0);
    return { idle, total: fields.reduce((a, b) => a + b, 0) };
  };
  const start = read();
  return () => {
    const end = read();
    const total = end.total - start.total;
    return total > 0 ? 1 - (end.idle - start.idle) / total : NaN;
  };
}

/** Measures how many cores `pid` used while `work` ran. */
export async function withCpu<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; cores: number }> {
  const c0 = cpuSecondsOf(pid);
  const t0 = performance.now();
  const result = await work();
  return { result, cores: (cpuSecondsOf(pid) - c0) / ((performance.now() - t0) / 1000) };
}

export interface Machine {
  cpu: string;
  cores: number;
  memoryGb: number;
  disk: string;
  bun: string;
  kernel: string;
  loadBefore: number[];
}

function read(path: string): string | null {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return null;
  }
}

/** The block device holding `dir`, e.g. "vda (virtio_blk, non-rotational, ext4)". */
export function describeDisk(dir: string): string {
  const df = (col: string) =>
    Bun.spawnSync(["df", `--output=${col}`, dir])
      .stdout.toString()
      .trim()
      .split("\n")
      .at(-1)
      ?.trim() ?? "?";
  const source = df("source");
  const parent = Bun.spawnSync(["lsblk", "-no", "PKNAME", source]).stdout.toString().trim();
  const dev = parent || source.replace(/^\/dev\//, "");
  let driver = "?";
  try {
    driver = readlinkSync(`/sys/block/${dev}/device/driver`).split("/").at(-1) ?? "?";
  } catch {
    // not every device exposes its driver (e.g. overlay filesystems)
  }
  const rota = read(`/sys/block/${dev}/queue/rotational`);
  return `${dev} (${driver}, ${rota === "0" ? "non-rotational" : rota === "1" ? "rotational" : "?"}, ${df("fstype")})`;
}

export function machine(tmpDir: string): Machine {
  return {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    disk: describeDisk(tmpDir),
    bun: Bun.version,
    kernel: read("/proc/sys/kernel/osrelease") ?? "?",
    loadBefore: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

/** A representative bot event (~300 bytes of JSON). */
export function sampleEvent(i: number, meta: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    mode: "paper",
    source: "bot",
    type: "ORDER",
    subtype: "BUY_SUBMITTED",
    symbol: "AAPL",
    severity: "info",
    body: `submitted buy 10 AAPL @ 187.20 limit, strategy momentum-5m, order ${i}`,
    meta: { order_id: `ord-${i}`, qty: 10, limit: 187.2, strategy: "momentum-5m", ...meta },
  };
}
