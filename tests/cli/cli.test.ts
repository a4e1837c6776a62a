// The `zoe-local` command against the real service (a child process): help
// and exit codes, a service that is not running, status, backup, check-config.
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { deadPort, runCli } from "../helpers/cli.ts";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { tempDir } from "../helpers/tmp.ts";

const TOKEN = "cli-test-token-0123456789abcdef";
const dir = tempDir("zoe-cli-");
let svc: ServiceProcess;
let asOperator: Record<string, string>;

async function post(events: Record<string, unknown>[]) {
  const res = await fetch(`${svc.url}/local/events`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(events),
  });
  if (res.status !== 201) throw new Error(`POST /local/events: ${res.status} ${await res.text()}`);
}

beforeAll(async () => {
  svc = await startService({ dbPath: dir.file("zoe.db"), env: { ZOE_API_TOKEN: TOKEN } });
  asOperator = { ZOE_URL: svc.url, ZOE_API_TOKEN: TOKEN };
  await post(
    Array.from({ length: 5 }, (_, i) => ({
      mode: "live",
      source: "bot",
      type: "ORDER",
      subtype: "TICK",
      body: `e${i}`,
    })),
  );
}, 30_000);
afterAll(async () => {
  await svc?.kill("SIGTERM");
  dir.cleanup();
});

describe("zoe-local without a running service", () => {
  test("every command that needs the service says it cannot reach it, and how to start it, with exit code 3", async () => {
    const url = `http://127.0.0.1:${deadPort()}`;
    for (const args of [["status"], ["tail"], ["flush"], ["quarantine", "list"], ["backup"]]) {
      const r = await runCli(args, { ZOE_URL: url });
      expect({ args, code: r.code, stderr: r.stderr, stdout: r.stdout }).toEqual({
        args,
        code: 3,
        stderr: `zoe-local: cannot reach zoe-local at ${url}: connection refused — is it running? \`bun start\`\n`,
        stdout: "",
      });
    }
  }, 60_000);

  test("with --json every failure is a JSON document on stdout, nothing on stderr, with the same exit code", async () => {
    const url = `http://127.0.0.1:${deadPort()}`;
    const unreachable = `cannot reach zoe-local at ${url}: connection refused — is it running? \`bun start\``;
    const cases: [string[], Record<string, string>, number, string, string][] = [
      [["status", "--json"], { ZOE_URL: url }, 3, "unreachable", unreachable],
      [["--json", "flush"], { ZOE_URL: url }, 3, "unreachable", unreachable],
      [["quarantine", "list", "--json"], { ZOE_URL: url }, 3, "unreachable", unreachable],
      [["backup", "--json"], { ZOE_URL: url }, 3, "unreachable", unreachable],
      [["status", "--json", "--frob"], {}, 2, "usage", "Unknown option '--frob' for status (zoe-local --help)"],
      [["--json"], {}, 2, "usage", "no command given (zoe-local --help)"],
      [["status", "--json"], { ZOE_URL: "localhost:8765" }, 2, "usage", expect.stringContaining("ZOE_URL")],
      [["status", "--json"], { ZOE_URL: svc.url }, 4, "unauthorized", expect.stringContaining("unauthorized")],
      [["flush", "--json"], asOperator, 1, "failed", expect.stringContaining("no remote is configured")],
    ];
    for (const [args, env, code, name, message] of cases) {
      const r = await runCli(args, env);
      let doc: unknown = r.stdout;
      try {
        doc = JSON.parse(r.stdout);
      } catch {
        // not JSON: the comparison below shows it
      }
      expect({ args, code: r.code, stderr: r.stderr, doc }).toEqual({
        args,
        code,
        stderr: "",
        doc: { error: { code: name, exit_code: code, message } },
      });
    }
    const v = await runCli(["--version", "--json"]);
    expect(JSON.parse(v.stdout)).toEqual({ version: expect.any(String), bun: Bun.version });
  }, 60_000);

  test("a service that accepts the connection but never answers is reported after --timeout", async () => {
    const hung = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Promise<Response>(() => {}) });
    try {
      const r = await runCli(["status", "--timeout", "0.3"], { ZOE_URL: `http://127.0.0.1:${hung.port}` });
      expect(r.code).toBe(3);
      expect(r.stderr).toBe(
        `zoe-local: cannot reach zoe-local at http://127.0.0.1:${hung.port}: no answer within 0.3 s — is it hung? (journalctl -u zoe-local)\n`,
      );
    } finally {
      hung.stop(true);
    }
  });
});

describe("help and arguments", () => {
  test("--help lists the commands and the exit codes; help <command> shows its options", async () => {
    const r = await runCli(["--help"]);
    expect(r.code).toBe(0);
    for (const c of ["status", "tail", "flush", "quarantine", "backup", "check-config"])
      expect(r.stdout).toMatch(new RegExp(`^  ${c} `, "m"));
    expect(r.stdout).toContain("Exit codes: 0 done");
    const tail = await runCli(["help", "tail"]);
    expect(tail.code).toBe(0);
    expect(tail.stdout).toContain("--severity LEVEL");
    expect((await runCli(["tail", "--help"])).stdout).toBe(tail.stdout);
  });

  test("a wrong command, option or value is exit 2 with a line that says which", async () => {
    expect(await runCli([])).toMatchObject({ code: 2 });
    expect(await runCli(["stauts"])).toMatchObject({
      code: 2,
      stderr: 'zoe-local: unknown command "stauts" (zoe-local --help)\n',
    });
    expect(await runCli(["status", "--frob"])).toMatchObject({
      code: 2,
      stderr: "zoe-local: Unknown option '--frob' for status (zoe-local --help)\n",
    });
    expect(await runCli(["tail", "--severity", "loud"], asOperator)).toMatchObject({
      code: 2,
      stderr:
        'zoe-local: --severity: expected one of debug, info, warn, error, critical, got "loud" (zoe-local --help)\n',
    });
    expect(await runCli(["status"], { ZOE_URL: "localhost:8765" })).toMatchObject({
      code: 2,
      stderr: 'zoe-local: ZOE_URL: expected http://host:port, got "localhost:8765" (zoe-local --help)\n',
    });
  });
});

/** The service's store id and its live seq of the 5th event (each start's seqs begin at a new range). */
async function storeFacts(): Promise<{ id: string; fifth: number }> {
  const h = (await (await fetch(`${svc.url}/health`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as {
    modes: { live: { store: { id: string; seq_range: { start_seq: number } } } };
  };
  return { id: h.modes.live.store.id, fifth: h.modes.live.store.seq_range.start_seq + 4 };
}

describe("zoe-local status", () => {
  test("prints the build, the database and per-mode figures, exit 0 when all is well", async () => {
    const facts = await storeFacts();
    const r = await runCli(["status"], asOperator);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(r.stdout).toMatch(
      new RegExp(
        `^zoe-local \\S+ \\(commit \\S+, bun ${Bun.version.replace(/\./g, "\\.")}, sqlite [\\d.]+\\) at ${svc.url}, pid ${svc.proc.pid}, up `,
      ),
    );
    expect(r.stdout).toContain("status:    OK\n");
    expect(r.stdout).toContain(`database:  ${dir.file("zoe.db")}  `);
    expect(r.stdout).toContain("remote:    none configured (SUPABASE_URL unset): events stay local");
    expect(r.stdout).toContain(`store:     ${facts.id}\n`);
    expect(r.stdout).toMatch(
      new RegExp(
        `^live\\s+5\\s+\\d+s\\s+never\\s+no remote\\s+0\\s+0\\s+${facts.fifth.toLocaleString("en")}\\s+0$`,
        "m",
      ),
    );
    expect(r.stdout).toContain(`live: seqs of this start from ${facts.fifth - 4}\n`);
    expect(r.stdout).toMatch(/^paper\s+0\s+—\s+never/m);
  });

  test("--json is the service's status document plus the URL", async () => {
    const facts = await storeFacts();
    const r = await runCli(["status", "--json"], asOperator);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({
      url: svc.url,
      status: "ok",
      problems: [],
      db: { path: dir.file("zoe.db"), store_id: facts.id },
      modes: { live: { backlog: 5, last_seq: facts.fifth } },
    });
    expect(s.db.size_bytes).toBeGreaterThan(0);
  });

  test("a missing or wrong token is exit 4 with a line that says which", async () => {
    expect(await runCli(["status"], { ZOE_URL: svc.url })).toMatchObject({
      code: 4,
      stderr:
        "zoe-local: GET /local/status: unauthorized — the service needs its token: set ZOE_API_TOKEN (or --env-file /etc/zoe-local/zoe-local.env)\n",
    });
    expect(await runCli(["status"], { ZOE_URL: svc.url, ZOE_API_TOKEN: "wrong-token-0123456789" })).toMatchObject({
      code: 4,
      stderr: "zoe-local: GET /local/status: unauthorized — ZOE_API_TOKEN does not match the service's token\n",
    });
  });

  test("--env-file gives the service's port and token, as systemd's EnvironmentFile does", async () => {
    const file = dir.file("zoe-local.env");
    writeFileSync(file, `# the service's settings\nHOST=0.0.0.0\nPORT=${svc.port}\nZOE_API_TOKEN="${TOKEN}"\n`);
    const r = await runCli(["--env-file", file, "status", "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).url).toBe(`http://127.0.0.1:${svc.port}`);
    expect(await runCli(["--env-file", dir.file("missing.env"), "status"])).toMatchObject({
      code: 2,
      stderr: `zoe-local: cannot read --env-file ${dir.file("missing.env")}: no such file\n`,
    });
  });
});

describe("zoe-local backup", () => {
  test("copies the database the service names while it runs: integrity-checked, every event, never overwriting", async () => {
    const dest = dir.file("backup.db");
    const facts = await storeFacts();
    const r = await runCli(["backup", dest], asOperator);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(r.stdout).toMatch(
      new RegExp(
        `^backup: ${dest} \\([\\d.]+ KiB, integrity ok\\): 5 events, 5 unflushed, last seq live ${facts.fifth.toLocaleString("en")}\\n$`,
      ),
    );
    const copy = new Database(dest, { readonly: true });
    expect((copy.query("SELECT COUNT(*) AS n FROM local_events").get() as { n: number }).n).toBe(5);
    copy.close();
    const again = await runCli(["backup", dest], asOperator);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(
      `zoe-local: backup failed: ${dest} exists: VACUUM INTO will not overwrite it; pick another name\n`,
    );
  });

  test("--db backs up a database without asking the service (it may be stopped)", async () => {
    const dest = dir.file("offline.db");
    const r = await runCli(["backup", "--db", dir.file("zoe.db"), dest], { ZOE_URL: `http://127.0.0.1:${deadPort()}` });
    expect(r.code).toBe(0);
    expect(existsSync(dest)).toBe(true);
    expect(await runCli(["backup", "--db", dir.file("nope.db"), dir.file("x.db")])).toMatchObject({
      code: 1,
      stderr: `zoe-local: the database ${dir.file("nope.db")} does not exist on this machine: run zoe-local backup on the box the service runs on\n`,
    });
  });
});

describe("zoe-local check-config", () => {
  test("lists every error of an env file and exits 2; a valid one prints the effective settings, secrets masked, exit 0", async () => {
    const bad = dir.file("bad.env");
    writeFileSync(bad, "PORT=eighty\nZOE_SYNCRONOUS=FULL\nZOE_LOG_LEVEL=loud\n");
    const r = await runCli(["check-config", "--env-file", bad]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain("zoe-local: configuration is invalid (2 errors, 1 warning)");
    expect(r.stdout).toContain('error: PORT: expected an integer from 0 to 65535, got "eighty"');
    expect(r.stdout).toContain("error: ZOE_LOG_LEVEL:");
    expect(r.stdout).toContain("warning: ZOE_SYNCRONOUS");
    const good = dir.file("good.env");
    writeFileSync(good, `ZOE_DB_PATH=${dir.file("other.db")}\nZOE_API_TOKEN=${TOKEN}\n`);
    const ok = await runCli(["check-config", "--env-file", good]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toStartWith("zoe-local: configuration is valid (0 errors, 0 warnings)");
    expect(ok.stdout).not.toContain(TOKEN);
    const json = await runCli(["check-config", "--env-file", bad, "--json"]);
    expect(JSON.parse(json.stdout)).toMatchObject({
      ok: false,
      errors: [{ variable: "PORT" }, { variable: "ZOE_LOG_LEVEL" }],
    });
  });
});
