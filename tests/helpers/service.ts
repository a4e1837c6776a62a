// Runs the real service (src/main.ts) as a child process on a free port, for
// tests where the process boundary is the point: crashes, signals, browsers.
import type { Subprocess } from "bun";
import { join } from "node:path";

const MAIN = join(import.meta.dir, "..", "..", "src", "main.ts");

export interface ServiceProcess {
  url: string;
  port: number;
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Everything the process printed so far (stdout + stderr). */
  output(): string;
  /** Sends a signal and waits for the process to exit; returns the exit code. */
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartServiceOptions {
  dbPath: string;
  env?: Record<string, string>;
  /** Listen port; 0 (default) picks a free one. */
  port?: number;
  timeoutMs?: number;
}

export async function startService(options: StartServiceOptions): Promise<ServiceProcess> {
  const proc = Bun.spawn(["bun", MAIN], {
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/tmp",
      HOST: "127.0.0.1",
      PORT: String(options.port ?? 0),
      ZOE_DB_PATH: options.dbPath,
      ZOE_LOG_LEVEL: "warn",
      ...options.env,
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  const decoder = new TextDecoder();
  let resolveUrl!: (url: string) => void;
  const urlPromise = new Promise<string>((r) => (resolveUrl = r));
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      out += decoder.decode(chunk, { stream: true });
      const m = /zoe-local listening on (http:\/\/[^\s"]+)/.exec(out);
      if (m) resolveUrl(m[1]!);
    }
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  const timeoutMs = options.timeoutMs ?? 15_000;
  let listening = false;
  const url = await Promise.race([
    urlPromise,
    proc.exited.then((code) => {
      throw new Error(`Service exited with code ${code} before listening:\n${out}`);
    }),
    Bun.sleep(timeoutMs).then(() => {
      // Only if it never listened: this timer is not cancelled, and a service
      // that did listen must not be killed timeoutMs after its start.
      if (listening) return new Promise<never>(() => {});
      proc.kill("SIGKILL");
      throw new Error(`Service did not listen within ${timeoutMs} ms:\n${out}`);
    }),
  ]);
  listening = true;
  return {
    url,
    port: Number(new URL(url).port),
    proc,
    output: () => out,
    async kill(signal = "SIGKILL") {
      proc.kill(signal);
      return await proc.exited;
    },
  };
}
