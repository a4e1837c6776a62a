// The real service as a child process: startup, refusals, crash durability,
// single instance, graceful stop.
import { Database } from "bun:sqlite";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { type ServiceProcess, startService } from "./helpers/service.ts";
import { tempDir, waitFor } from "./helpers/tmp.ts";

const MAIN = join(import.meta.dir, "..", "src", "main.ts");

let dir: ReturnType<typeof tempDir>;
const running: ServiceProcess[] = [];
beforeEach(() => {
  dir = tempDir("zoe-main-");
});
afterEach(async () => {
  for (const s of running.splice(0)) if (s.proc.exitCode === null) await s.kill("SIGKILL");
  dir.cleanup();
});

async function start(env: Record<string, string> = {}, dbPath = dir.file("zoe.db")) {
  const s = await startService({ dbPath, env });
  running.push(s);
  return s;
}

/** Every line of `output` as JSON; a line that is not JSON fails the test. */
function jsonLines(output: string): Record<string, unknown>[] {
  return output
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new Error(`not a JSON log line: ${line}`);
      }
    });
}

const startLine = (output: string) =>
  jsonLines(output).find((l) => String(l.msg).startsWith("zoe-local listening on "));

/** Runs src/main.ts to its exit; for startups that must be refused. */
async function runToExit(
  env: Record<string, string>,
  timeoutMs = 15_000,
  args: string[] = [],
): Promise<{ code: number | null; output: string }> {
  const proc = Bun.spawn(["bun", MAIN, ...args], {
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/tmp",
      HOST: "127.0.0.1",
      PORT: "0",
      ZOE_LOG_LEVEL: "warn",
      ZOE_DB_PATH: dir.file("zoe.db"),
      ...env,
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  clearTimeout(timer);
  return { code, output: out + err };
}

interface Ack {
  id: string;
  seq: number;
  idempotency_key: string;
}

async function allEvents(url: string, mode = "live"): Promise<{ id: string; seq: number; idempotency_key: string }[]> {
  const out: { id: string; seq: number; idempotency_key: string }[] = [];
  for (;;) {
    const page = (await (
      await fetch(`${url}/local/events?mode=${mode}&since_seq=${out.at(-1)?.seq ?? 0}&limit=1000`)
    ).json()) as Ack[];
    out.push(...page);
    if (page.length < 1000) return out;
  }
}

const event = (key: string) => ({
  mode: "live",
  source: "crash-test",
  type: "T",
  subtype: "S",
  body: key,
  idempotency_key: key,
});

describe("startup", () => {
  test("prints the address, the database and that no remote is configured, then serves", async () => {
    const s = await start();
    expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await waitFor(() => /no remote configured/.test(s.output()), 5_000, "the remote line");
    // One JSON start line (stdout is a pipe here), printed even at ZOE_LOG_LEVEL=warn.
    const started = startLine(s.output());
    expect(started).toMatchObject({
      level: "info",
      url: s.url,
      db: dir.file("zoe.db"),
      remote: expect.stringMatching(/^no remote configured/),
    });
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
    expect(existsSync(dir.file("zoe.db"))).toBe(true);
  });

  const refusals: [string, Record<string, string>, RegExp][] = [
    ["a non-loopback HOST without a token", { HOST: "0.0.0.0" }, /refusing to start: HOST: .*requires ZOE_API_TOKEN/],
    ["a bad PORT", { PORT: "eighty" }, /refusing to start: PORT: expected an integer/],
    [
      "an unknown ZOE_SYNCHRONOUS",
      { ZOE_SYNCHRONOUS: "OFF" },
      /refusing to start: ZOE_SYNCHRONOUS: expected one of NORMAL, FULL, EXTRA/,
    ],
    ["a wildcard CORS origin", { ZOE_CORS_ORIGINS: "*" }, /refusing to start: ZOE_CORS_ORIGINS/],
  ];
  for (const [what, env, message] of refusals) {
    test(`refuses to start with ${what}: clear message, non-zero exit`, async () => {
      const { code, output } = await runToExit(env);
      expect(code).not.toBe(0);
      expect(output).toMatch(message);
      expect(output).not.toContain("listening on");
    });
  }

  test("refuses to start when the port is taken, naming host and port", async () => {
    const blocker = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("busy") });
    try {
      const { code, output } = await runToExit({ PORT: String(blocker.port) });
      expect(code).not.toBe(0);
      expect(output).toContain(`cannot listen on 127.0.0.1:${blocker.port}`);
    } finally {
      blocker.stop(true);
    }
  });

  test("a second instance on the same database refuses with a clear message and a non-zero exit", async () => {
    const first = await start();
    const { code, output } = await runToExit({});
    expect(code).not.toBe(0);
    expect(output).toContain("another zoe-local process is using it");
    expect(output).toContain(dir.file("zoe.db"));
    // the first one is unharmed
    expect(
      (
        await fetch(`${first.url}/local/events`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(event("still-here")),
        })
      ).status,
    ).toBe(201);
  });

  test("after the first instance dies, even by SIGKILL, the lock is free again", async () => {
    const first = await start();
    await first.kill("SIGKILL");
    const second = await start();
    expect((await fetch(`${second.url}/health`)).status).toBe(200);
  });
});

describe("logs: one format per run", () => {
  test("stdout not a terminal: every line the service prints is JSON, from a warning and the start line to the last line at SIGTERM", async () => {
    const s = await start({ ZOE_SYNCRONOUS: "NORMAL", ZOE_LOG_LEVEL: "info" });
    await fetch(`${s.url}/local/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{",
    });
    expect(await s.kill("SIGTERM")).toBe(0);
    const lines = jsonLines(s.output());
    expect(lines.map((l) => l.msg)).toEqual(
      expect.arrayContaining([
        expect.stringContaining("configuration warning: ZOE_SYNCRONOUS"),
        `zoe-local listening on ${s.url}`,
        "shutting down",
        "stopped",
      ]),
    );
  });

  test("a refused start is JSON too, naming the variable", async () => {
    const { code, output } = await runToExit({ PORT: "eighty" });
    expect(code).toBe(2);
    expect(jsonLines(output)).toEqual([
      expect.objectContaining({
        level: "error",
        msg: expect.stringContaining("refusing to start: PORT:"),
        variable: "PORT",
      }),
    ]);
  });

  test("ZOE_LOG_FORMAT=pretty gives readable lines on a pipe: time, level, message, key=value", async () => {
    const s = await start({ ZOE_LOG_FORMAT: "pretty" });
    const line = s
      .output()
      .split("\n")
      .find((l) => l.includes("zoe-local listening on"))!;
    expect(line).toMatch(
      new RegExp(`^\\d{4}-\\d{2}-\\d{2}T[\\d:.]+Z INFO  zoe-local listening on ${s.url.replace(/\./g, "\\.")} url=`),
    );
    expect(line).toContain(' remote="no remote configured');
    expect(s.output()).not.toMatch(/^\{/m);
  });

  test.skipIf(Bun.which("script") === null)(
    "on a terminal the lines are readable by default; ZOE_LOG_FORMAT=json forces JSON there",
    () => {
      // util-linux `script` runs the service on a pseudo-terminal, as a person starting it would.
      const onTerminal = (env: Record<string, string>) => {
        const r = Bun.spawnSync(["script", "-qec", `bun ${MAIN}`, "/dev/null"], {
          env: {
            PATH: process.env.PATH ?? "",
            HOME: process.env.HOME ?? "/tmp",
            ZOE_DB_PATH: dir.file("t.db"),
            ...env,
          },
          stdout: "pipe",
          stderr: "pipe",
        });
        return r.stdout.toString().replace(/\r/g, "").trim();
      };
      const readable = onTerminal({ PORT: "eighty" });
      expect(readable).toMatch(/^\S+Z ERROR refusing to start: PORT: expected an integer.* variable=PORT$/);
      const forced = onTerminal({ PORT: "eighty", ZOE_LOG_FORMAT: "json" });
      expect(JSON.parse(forced)).toMatchObject({ level: "error", variable: "PORT" });
    },
  );

  test("a bad ZOE_LOG_FORMAT refuses the start, naming the choices", async () => {
    const { code, output } = await runToExit({ ZOE_LOG_FORMAT: "xml" });
    expect(code).toBe(2);
    expect(output).toContain("refusing to start: ZOE_LOG_FORMAT: expected one of auto, json, pretty");
  });
});

describe("configuration check", () => {
  test("a misspelt ZOE_* variable is reported at start, naming the nearest known one, and the service still serves", async () => {
    const s = await start({ ZOE_SYNCRONOUS: "NORMAL" });
    await waitFor(() => /did you mean ZOE_SYNCHRONOUS/.test(s.output()), 5_000, "the warning");
    const warning = jsonLines(s.output()).find((l) => l.variable === "ZOE_SYNCRONOUS");
    expect(warning).toMatchObject({
      level: "warn",
      msg: "configuration warning: ZOE_SYNCRONOUS is not a zoe-local setting and is ignored; did you mean ZOE_SYNCHRONOUS?",
      suggestion: "ZOE_SYNCHRONOUS",
    });
    expect(startLine(s.output())?.synchronous).toBe("FULL"); // the misspelt value did not apply
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
  });

  test("a refused start names every bad variable, not only the first", async () => {
    const { code, output } = await runToExit({ PORT: "eighty", ZOE_LOG_LEVEL: "loud" });
    expect(code).toBe(2);
    expect(output).toContain("refusing to start: PORT: expected an integer");
    expect(output).toContain("refusing to start: ZOE_LOG_LEVEL: expected one of debug, info, warn, error");
  });

  test("--check-config prints the effective settings with secrets masked and exits 0 without starting", async () => {
    const token = "check-config-token-0123456789";
    const { code, output } = await runToExit({ ZOE_API_TOKEN: token, ZOE_SYNCRONOUS: "NORMAL" }, 15_000, [
      "--check-config",
    ]);
    expect(code).toBe(0);
    expect(output).toContain("zoe-local: configuration is valid (0 errors, 1 warning)");
    expect(output).toContain(
      "warning: ZOE_SYNCRONOUS is not a zoe-local setting and is ignored; did you mean ZOE_SYNCHRONOUS?",
    );
    const json = JSON.parse(output.slice(output.indexOf("{"))) as Record<string, unknown>;
    expect(json).toMatchObject({
      synchronous: "FULL",
      apiToken: `<set, ${token.length} characters>`,
      dbPath: dir.file("zoe.db"),
    });
    expect(output).not.toContain(token);
    expect(output).not.toContain("listening on");
    expect(existsSync(dir.file("zoe.db"))).toBe(false); // nothing opened
  });

  test("--check-config exits 2 on bad settings, listing each", async () => {
    const { code, output } = await runToExit({ PORT: "eighty", ZOE_SSE_HEARTBEAT_MS: "1" }, 15_000, ["--check-config"]);
    expect(code).toBe(2);
    expect(output).toContain("zoe-local: configuration is invalid (2 errors, 0 warnings)");
    expect(output).toContain("error: PORT: expected an integer from 0 to 65535");
    expect(output).toContain("error: ZOE_SSE_HEARTBEAT_MS: expected an integer");
    expect(output).not.toContain("effective configuration");
  });

  test("an unknown argument is refused with exit 2", async () => {
    const { code, output } = await runToExit({}, 15_000, ["--chek-config"]);
    expect(code).toBe(2);
    expect(output).toContain("zoe-local: unknown argument --chek-config");
  });

  test("`bun run check-config` runs the same check", async () => {
    const proc = Bun.spawn(["bun", "run", "check-config"], {
      cwd: join(import.meta.dir, ".."),
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "/tmp",
        ZOE_DB_PATH: dir.file("zoe.db"),
        ZOE_FLUSH_BACH_SIZE: "10",
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    expect(code).toBe(0);
    expect(out).toContain("did you mean ZOE_FLUSH_BATCH_SIZE?");
  });
});

describe("durability", () => {
  test("SIGKILL while clients post: every acknowledged event survives with its seq; counters continue without reuse", async () => {
    const s = await start();
    const acked: Ack[] = [];
    let attempted = 0;
    let acknowledged = 0;
    let dying = false;
    const worker = async (w: number) => {
      // Keep posting through the kill: requests are in flight when it dies.
      for (let i = 0; ; i++) {
        const batch =
          i % 3 === 2 ? [event(`w${w}-${i}-a`), event(`w${w}-${i}-b`), event(`w${w}-${i}-c`)] : event(`w${w}-${i}`);
        attempted++;
        try {
          const res = await fetch(`${s.url}/local/events`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify(batch),
          });
          if (res.status !== 201) throw new Error(`status ${res.status}: ${await res.text()}`);
          const body = (await res.json()) as Ack | { events: Ack[] };
          acked.push(...("events" in body ? body.events : [body]));
          acknowledged++;
        } catch (error) {
          if (dying) return; // the service is gone: this request was never acknowledged
          throw error;
        }
      }
    };
    const workers = Array.from({ length: 12 }, (_, w) => worker(w));
    await waitFor(() => acked.length >= 1000, 30_000, "1000 acknowledged events");
    dying = true;
    s.proc.kill("SIGKILL");
    await s.proc.exited;
    await Promise.all(workers);
    expect(attempted).toBeGreaterThan(acknowledged); // some requests were in flight when it died

    const restarted = await start();
    const events = await allEvents(restarted.url);
    const byKey = new Map(events.map((e) => [e.idempotency_key, e]));
    for (const a of acked) {
      const e = byKey.get(a.idempotency_key);
      expect(e === undefined ? `lost ${a.idempotency_key}` : [e.id, e.seq]).toEqual([a.id, a.seq]);
    }
    // Gapless within the first start's range: events committed but not yet
    // acknowledged may be there too, never holes.
    const first = events[0]!.seq;
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => first + i));
    const max = events.at(-1)!.seq;

    const next = await fetch(`${restarted.url}/local/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(event("after-restart")),
    });
    // The restart begins a new range above everything stored: no seq is reused.
    const after = ((await next.json()) as Ack).seq;
    expect(after).toBeGreaterThan(max);
    const h = (await (await fetch(`${restarted.url}/health`)).json()) as {
      modes: { live: { store: { seq_range: { start_seq: number } } } };
    };
    expect(after).toBe(h.modes.live.store.seq_range.start_seq);
    // A bot retrying an acknowledged event after the crash gets the same seq back.
    const retry = await fetch(`${restarted.url}/local/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(event(acked[0]!.idempotency_key)),
    });
    expect(retry.status).toBe(200);
    expect(((await retry.json()) as Ack).seq).toBe(acked[0]!.seq);
  }, 90_000);

  test("SIGTERM ends open streams, checkpoints the WAL and exits 0", async () => {
    const s = await start();
    for (let i = 0; i < 20; i++) {
      await fetch(`${s.url}/local/events`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(event(`t${i}`)),
      });
    }
    const stream = await fetch(`${s.url}/local/stream?mode=live&since_seq=0`);
    const reader = stream.body!.getReader();
    await reader.read();
    const code = await s.kill("SIGTERM");
    expect(code).toBe(0);
    // The stream ends (cleanly or by the connection closing), it does not hang.
    for (;;) {
      const r = await reader.read().catch(() => ({ done: true }));
      if (r.done) break;
    }
    const wal = dir.file("zoe.db-wal");
    expect(!existsSync(wal) || statSync(wal).size === 0).toBe(true);
    const db = new Database(dir.file("zoe.db"), { readonly: true });
    expect((db.query("SELECT COUNT(*) AS n FROM local_events").get() as { n: number }).n).toBe(20);
    db.close();
  }, 30_000);
});

describe("concurrent ingest over HTTP", () => {
  test("many connections get unique, gapless seqs whose order is the commit order", async () => {
    const s = await start();
    const results: { worker: number; seqs: number[] }[] = [];
    await Promise.all(
      Array.from({ length: 16 }, async (_, w) => {
        const seqs: number[] = [];
        for (let i = 0; i < 25; i++) {
          const res = await fetch(`${s.url}/local/events`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify(event(`c${w}-${i}`)),
          });
          seqs.push(((await res.json()) as Ack).seq);
        }
        results.push({ worker: w, seqs });
      }),
    );
    const all = results.flatMap((r) => r.seqs).sort((a, b) => a - b);
    // Gapless from the first seq of this start's range.
    const first = all[0]!;
    expect(all).toEqual(Array.from({ length: 400 }, (_, i) => first + i));
    // Each connection's later request was committed after its earlier one.
    for (const r of results) expect(r.seqs).toEqual([...r.seqs].sort((a, b) => a - b));
    // Physical insertion order (rowid) is seq order: seq order is the commit order.
    const db = new Database(dir.file("zoe.db"), { readonly: true });
    const byRowid = (
      db.query("SELECT seq FROM local_events WHERE mode = 'live' ORDER BY rowid").all() as { seq: number }[]
    ).map((r) => r.seq);
    db.close();
    expect(byRowid).toEqual(Array.from({ length: 400 }, (_, i) => first + i));
  }, 60_000);
});
