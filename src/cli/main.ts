#!/usr/bin/env bun
// `zoe-local`: the operator's command for a running zoe-local service. It
// talks to the service over its HTTP API only (ZOE_URL or --url, the token
// from ZOE_API_TOKEN); `backup` copies the database file the service names,
// `restore --from-remote` rebuilds a stopped service's database from Supabase,
// and `check-config` runs the service's own settings check.
import { parseArgs } from "node:util";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "./client.ts";
import { backupCommand } from "./commands/backup.ts";
import { checkConfigCommand } from "./commands/check-config.ts";
import { flushCommand } from "./commands/flush.ts";
import { quarantineCommand } from "./commands/quarantine.ts";
import { restoreCommand } from "./commands/restore.ts";
import { statusCommand } from "./commands/status.ts";
import { tailCommand } from "./commands/tail.ts";
import type { Command, Io } from "./context.ts";
import { readEnvFile } from "./env-file.ts";
import { CliError, EXIT, usage } from "./exit.ts";
import { colourWanted, painter } from "./format.ts";

const COMMANDS: Command[] = [
  statusCommand,
  tailCommand,
  flushCommand,
  quarantineCommand,
  backupCommand,
  restoreCommand,
  checkConfigCommand,
];

const GLOBAL = {
  url: { type: "string" },
  "env-file": { type: "string" },
  json: { type: "boolean" },
  timeout: { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const;
const TAKES_VALUE = new Set(["--url", "--env-file", "--timeout"]);

export const HELP = `Usage: zoe-local [--url URL] [--env-file FILE] [--json] <command> [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(13)} ${c.summary}`).join("\n")}
  help COMMAND  the options of a command

Options (any command):
  --url URL        the service (default: ZOE_URL, else http://HOST:PORT from the
                   environment or --env-file, else http://127.0.0.1:8765)
  --env-file FILE  read variables from FILE first (the service's systemd
                   EnvironmentFile: its PORT, HOST and ZOE_API_TOKEN are used)
  --json           machine-readable output
  --timeout S      seconds to wait for each answer (default 10)
  -h, --help       this help;  -V, --version  the CLI's version

The API token comes from ZOE_API_TOKEN (never a command-line argument: those
show in ps).

Exit codes: 0 done (status: no problem), 1 the operation failed or status
found a problem, 2 bad arguments or invalid settings (check-config),
3 the service cannot be reached, 4 the token was refused.`;

/** --url, else ZOE_URL, else the service's own HOST/PORT (a wildcard bind is reached on loopback). */
export function serviceUrl(flag: string | undefined, env: Record<string, string | undefined>): string {
  const given = flag ?? env.ZOE_URL?.trim();
  if (given) {
    if (!URL.canParse(given) || !/^https?:$/.test(new URL(given).protocol))
      throw usage(`${flag ? "--url" : "ZOE_URL"}: expected http://host:port, got "${given}"`);
    return given.replace(/\/+$/, "");
  }
  const host = env.HOST?.trim();
  const port = env.PORT?.trim() || "8765";
  const reach =
    !host || host === "0.0.0.0" || host === "::" || host === "[::]"
      ? "127.0.0.1"
      : host.includes(":") && !host.startsWith("[")
        ? `[${host}]`
        : host;
  return `http://${reach}:${port}`;
}

function version(): string {
  try {
    return String(
      (JSON.parse(readFileSync(join(import.meta.dir, "..", "..", "package.json"), "utf8")) as { version?: string })
        .version,
    );
  } catch {
    return "unknown";
  }
}

/** `--json` among the options (before a `--`): then even an error that stops the command answers in JSON. */
export function wantsJson(args: string[]): boolean {
  for (const a of args) {
    if (a === "--") return false;
    if (a === "--json") return true;
  }
  return false;
}

const EXIT_NAMES = new Map<number, string>(Object.entries(EXIT).map(([name, code]) => [code, name]));

/**
 * What `--json` prints for an error, on stdout like every other answer:
 * `{"error": {code, exit_code, message, details?}}`, where `code` names the
 * exit code (usage, unreachable, unauthorized, failed; internal for a bug).
 */
export function errorDocument(error: unknown): { error: Record<string, unknown> } {
  if (error instanceof CliError)
    return {
      error: {
        code: EXIT_NAMES.get(error.exitCode) ?? "failed",
        exit_code: error.exitCode,
        message: error.message,
        ...(error.details !== undefined ? { details: error.details } : {}),
      },
    };
  return {
    error: {
      code: "internal",
      exit_code: EXIT.failed,
      message: `unexpected error: ${(error as Error)?.message ?? error}`,
    },
  };
}

/** The first argument that is neither an option nor a global option's value. */
function commandIndex(args: string[]): number {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") return i + 1 < args.length ? i + 1 : -1;
    if (TAKES_VALUE.has(a)) i++;
    else if (!a.startsWith("-")) return i;
  }
  return -1;
}

export async function run(
  args: string[],
  processEnv: Record<string, string | undefined>,
  io: Io,
  signal: AbortSignal,
  stdoutIsTTY = false,
): Promise<number> {
  const at = commandIndex(args);
  const name = at >= 0 ? args[at]! : null;
  const rest = at >= 0 ? [...args.slice(0, at), ...args.slice(at + 1)] : args;
  if (name === "help") {
    const topic = rest.find((a) => !a.startsWith("-"));
    const c = COMMANDS.find((x) => x.name === topic);
    if (topic && !c) throw usage(`no command "${topic}"`);
    io.out(c ? c.help : HELP);
    return EXIT.ok;
  }
  const command = name ? COMMANDS.find((c) => c.name === name) : null;
  if (name && !command) throw usage(`unknown command "${name}"`);
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...GLOBAL, ...(command?.options ?? {}) },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw usage(
      `${(error as Error).message.replace(/\. To specify a positional argument.*$/s, "")}${command ? ` for ${command.name}` : ""}`,
    );
  }
  const values = parsed.values as Record<string, unknown>;
  if (values.version) {
    io.out(
      values.json
        ? JSON.stringify({ version: version(), bun: Bun.version })
        : `zoe-local ${version()} (bun ${Bun.version})`,
    );
    return EXIT.ok;
  }
  if (!command && !values.help && values.json) throw usage("no command given");
  if (values.help || !command) {
    io.out(command ? command.help : HELP);
    return command || values.help ? EXIT.ok : EXIT.usage;
  }
  const env = { ...processEnv, ...(values["env-file"] ? readEnvFile(values["env-file"] as string) : {}) };
  const timeout = values.timeout as string | undefined;
  if (timeout !== undefined && !(Number(timeout) > 0))
    throw usage(`--timeout: expected a number of seconds above 0, got "${timeout}"`);
  const client = new Client({
    url: serviceUrl(values.url as string | undefined, env),
    token: env.ZOE_API_TOKEN?.trim() || null,
    timeoutMs: timeout ? Number(timeout) * 1000 : 10_000,
  });
  const ctx = {
    client,
    env,
    io,
    json: Boolean(values.json),
    paint: painter(colourWanted({ isTTY: stdoutIsTTY }, env)),
    now: () => Date.now(),
    signal,
  };
  return command.run(ctx, values, parsed.positionals);
}

if (import.meta.main) {
  const stop = new AbortController();
  let interrupted = 0;
  const onSignal = () => {
    // The first Ctrl-C ends the command cleanly; a second one at once.
    if (++interrupted > 1) process.exit(130);
    stop.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const io: Io = {
    out: (text) => void process.stdout.write(`${text}\n`),
    err: (text) => void process.stderr.write(text),
    errIsTTY: Boolean(process.stderr.isTTY),
  };
  let code: number;
  const args = process.argv.slice(2);
  try {
    code = await run(args, process.env, io, stop.signal, Boolean(process.stdout.isTTY));
  } catch (error) {
    if (wantsJson(args)) {
      const doc = errorDocument(error);
      io.out(JSON.stringify(doc, null, 2));
      code = doc.error.exit_code as number;
    } else if (error instanceof CliError) {
      process.stderr.write(`zoe-local: ${error.message}\n`);
      code = error.exitCode;
    } else {
      process.stderr.write(`zoe-local: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
      code = EXIT.failed;
    }
  }
  // Flush stdout before exiting (a pipe may be slower than the command).
  await new Promise<void>((resolve) => process.stdout.write("", () => resolve()));
  process.exit(code);
}
