// Runs one Supabase Edge Function (supabase/functions/<name>/index.ts) under
// the real Deno from node_modules, on a free loopback port, with the
// environment Supabase injects. Deno.serve() takes its address from
// DENO_SERVE_ADDRESS; port 0 lets the kernel pick, and Deno prints it.
import type { Subprocess } from "bun";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { denoBinary, denoEnv, ensureFunctionDependencies, FUNCTIONS_DIR } from "./deno.ts";

export { REPO_ROOT, FUNCTIONS_DIR, denoBinary } from "./deno.ts";

export interface EdgeFunctionProcess {
  name: string;
  pid: number;
  /** Base URL of the Deno server, e.g. http://127.0.0.1:41234 */
  url: string;
  output(): string;
  stop(): Promise<void>;
}

export interface StartEdgeFunctionOptions {
  name: string;
  env: Record<string, string>;
  timeoutMs?: number;
}

/**
 * Deno's flags for a function: its own deno.json, network and env, reading
 * only the functions directory. function-host.ts imports the real index.ts.
 */
export function denoRunArgs(name: string): string[] {
  const dir = join(FUNCTIONS_DIR, name);
  return [
    "run",
    "--no-prompt",
    // Never rewrite deno.lock from a test run: what runs is what the lock pins.
    "--frozen",
    `--config=${join(dir, "deno.json")}`,
    "--allow-net",
    "--allow-env",
    `--allow-read=${FUNCTIONS_DIR}`,
    join(import.meta.dir, "function-host.ts"),
    pathToFileURL(join(dir, "index.ts")).href,
  ];
}

export async function startEdgeFunction({
  name,
  env,
  timeoutMs = 30_000,
}: StartEdgeFunctionOptions): Promise<EdgeFunctionProcess> {
  if (!existsSync(join(FUNCTIONS_DIR, name, "index.ts")))
    throw new Error(`No edge function ${name} in ${FUNCTIONS_DIR}`);
  const baseEnv = denoEnv();
  // A cold cache is filled here, once per process, so a registry Deno cannot
  // use is one clear error rather than a server that exits before listening.
  await ensureFunctionDependencies(name, baseEnv);
  const proc: Subprocess<"pipe", "pipe", "pipe"> = Bun.spawn([denoBinary(), ...denoRunArgs(name)], {
    cwd: join(FUNCTIONS_DIR, name),
    env: {
      ...baseEnv,
      DENO_SERVE_ADDRESS: "tcp:127.0.0.1:0",
      ...env,
    },
    // Never written: it closes when this process dies, and function-host.ts exits then.
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  let resolveUrl!: (url: string) => void;
  const listening = new Promise<string>((r) => (resolveUrl = r));
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      out += decoder.decode(chunk, { stream: true });
      const m = /Listening on (http:\/\/[\d.]+:\d+)/.exec(out);
      if (m) resolveUrl(m[1]!);
      if (out.length > 1_000_000) out = out.slice(-500_000);
    }
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  let timer: Timer | undefined;
  try {
    const url = await Promise.race([
      listening,
      proc.exited.then((code) => {
        throw new Error(`Edge function ${name} exited with code ${code} before listening:\n${out}`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`Edge function ${name} did not listen within ${timeoutMs} ms:\n${out}`)),
          timeoutMs,
        );
      }),
    ]);
    return {
      name,
      pid: proc.pid,
      url,
      output: () => out,
      async stop() {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
        const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(3000).then(() => false)]);
        if (!exited) {
          proc.kill("SIGKILL");
          await proc.exited;
        }
      },
    };
  } catch (error) {
    proc.kill("SIGKILL");
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
