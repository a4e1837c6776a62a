// What every command gets: the API client, the environment (with --env-file
// applied), where to write, and whether to print JSON or colour.
import type { Client } from "./client.ts";
import type { Painter } from "./format.ts";

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** stderr is a terminal: progress may redraw one line. */
  errIsTTY: boolean;
}

export interface Context {
  client: Client;
  env: Record<string, string | undefined>;
  io: Io;
  json: boolean;
  paint: Painter;
  now(): number;
  /** Aborted on Ctrl-C / SIGTERM: long-running commands end cleanly. */
  signal: AbortSignal;
}

export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Full help text (usage, options, examples). */
  help: string;
  /** Options beyond the global ones, for util.parseArgs. */
  options: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }>;
  run(ctx: Context, values: Record<string, unknown>, positionals: string[]): Promise<number>;
}
