// Runs the `zoe-local` command (src/cli/main.ts) as a child process, as an
// operator would, with only the environment a test gives it.
import { join } from "node:path";

const CLI = join(import.meta.dir, "..", "..", "src", "cli", "main.ts");

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function env(extra: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", NO_COLOR: "1", ...extra };
}

/** Runs `zoe-local <args>` to its end. */
export async function runCli(
  args: string[],
  extraEnv: Record<string, string> = {},
  options: { cwd?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  const proc = Bun.spawn(["bun", CLI, ...args], {
    env: env(extraEnv),
    cwd: options.cwd,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), options.timeoutMs ?? 60_000);
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

export interface RunningCli {
  proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  /** Lines printed on stdout so far. */
  lines(): string[];
  stderr(): string;
  exited: Promise<number>;
}

/** Starts a long-running command (tail) and collects its output as it comes. */
export function spawnCli(args: string[], extraEnv: Record<string, string> = {}): RunningCli {
  const proc = Bun.spawn(["bun", CLI, ...args], {
    env: env(extraEnv),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  let err = "";
  const pump = async (stream: ReadableStream<Uint8Array>, add: (s: string) => void) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) add(decoder.decode(chunk, { stream: true }));
  };
  const done = Promise.all([pump(proc.stdout, (s) => (out += s)), pump(proc.stderr, (s) => (err += s))]);
  return {
    proc,
    lines: () => out.split("\n").filter(Boolean),
    stderr: () => err,
    exited: done.then(() => proc.exited),
  };
}

/** A loopback port nothing listens on (one the OS just handed out and took back). */
export function deadPort(): number {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const port = server.port!;
  server.stop(true);
  return port;
}
