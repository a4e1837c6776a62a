// The soak's processes: the JSON-line children (load.ts, sse.ts) it drives
// over stdin/stdout, the service it starts and stops, and its /metrics scrape.
import { join } from "node:path";

/** A long-running child that prints JSON lines; `lines` collects them by type. */
export function jsonChild<W, F>(script: string, args: unknown) {
  const proc = Bun.spawn(["bun", join(import.meta.dir, script), JSON.stringify(args)], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "inherit",
  });
  const windows: W[] = [];
  let resolveReady!: () => void;
  let resolveFinal!: (f: F) => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  const final = new Promise<F>((r) => (resolveFinal = r));
  const pump = (async () => {
    let buffer = "";
    for await (const chunk of proc.stdout) {
      buffer += new TextDecoder().decode(chunk);
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (!line.startsWith("{")) continue;
        const msg = JSON.parse(line) as { type: string };
        if (msg.type === "ready") resolveReady();
        else if (msg.type === "window") windows.push(msg as W);
        else if (msg.type === "final") resolveFinal(msg as F);
      }
    }
  })();
  // Exited, and every line it printed read: only then is a missing report an error.
  const exited = Promise.all([proc.exited, pump]).then(([code]) => {
    throw new Error(`soak child ${script} exited with ${code} before it reported`);
  });
  exited.catch(() => {});
  return {
    proc,
    windows,
    ready: () => Promise.race([ready, exited]),
    finish: (command: string) => {
      proc.stdin.write(`${command}\n`);
      proc.stdin.flush();
      return Promise.race([final, exited]);
    },
  };
}

/** The `zoe_*` samples of a /metrics page, keyed `name{labels}` as printed. */
export async function scrape(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line.startsWith("zoe_")) continue;
    const at = line.lastIndexOf(" ");
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/**
 * Spawns the service and waits for its "listening on" line. (Not bench's
 * spawnListening: its start-up timeout is never cancelled and SIGKILLs the
 * child 20 s later, mid-soak.)
 */
export async function startListening(cmd: string[], env: Record<string, string>, marker: RegExp, timeoutMs = 20_000) {
  const proc = Bun.spawn(cmd, { stdin: "ignore", stdout: "pipe", stderr: "pipe", env });
  let out = "";
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) out += decoder.decode(chunk, { stream: true });
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  const deadline = performance.now() + timeoutMs;
  let url: string | undefined;
  while (!(url = marker.exec(out)?.[1])) {
    if (proc.exitCode !== null || proc.signalCode !== null)
      throw new Error(`${cmd.join(" ")} exited before listening:\n${out}`);
    if (performance.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`${cmd.join(" ")} did not listen within ${timeoutMs} ms:\n${out}`);
    }
    await Bun.sleep(20);
  }
  return {
    url,
    proc,
    output: () => out,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGTERM");
      if (!(await Promise.race([proc.exited.then(() => true), Bun.sleep(30_000).then(() => false)]))) {
        proc.kill("SIGKILL");
        await proc.exited;
      }
    },
  };
}
