// The settings check: every error and warning in an environment, without
// starting anything. What the service runs before it starts (src/main.ts)
// and what `--check-config` and `zoe-local check-config` print.
import { accessSync, constants, existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import {
  collectConfigErrors,
  type Config,
  type ConfigWarning,
  type Env,
  loadConfig,
  loadFlushConfig,
  loadLimitsConfig,
  maskedConfig,
  maskSecret,
  unknownVariables,
  variablesRead,
} from "./config.ts";
import { misnamedVariables, readVar } from "./config.ts";
import type { ConfigError } from "./domain/errors.ts";
import { type DashboardConfig, loadDashboardConfig } from "./dashboard/config.ts";

export interface ConfigCheck {
  ok: boolean;
  /** Every bad setting, each naming its variable (the service refuses to start on any). */
  errors: { variable: string; message: string }[];
  /** Misspelt or misplaced variables and settings that will not work as given; the service starts anyway. */
  warnings: ConfigWarning[];
  /** The effective settings (null unless ok). Holds secrets: print it through maskedConfig(). */
  config: Config | null;
  dashboard: DashboardConfig | null;
}

/** Every variable the service reads (settings of the service and of its dashboard). */
export function knownVariables(): string[] {
  return [...new Set([...variablesRead(loadConfig), ...variablesRead(loadDashboardConfig)])].sort();
}

/**
 * Validates the settings in `env` without starting anything: all errors, not
 * just the first, and warnings for unknown `ZOE_*` variables. What the service
 * runs at start, and what `--check-config` prints.
 */
export function checkConfig(env: Env): ConfigCheck {
  const service = collectConfigErrors(env, loadConfig);
  const dashboard = collectConfigErrors(env, loadDashboardConfig);
  // loadConfig stops at an error it cannot step past; the sections it
  // composes are checked on their own too so their errors are all found.
  const sections = [collectConfigErrors(env, loadFlushConfig), collectConfigErrors(env, loadLimitsConfig)];
  const seen = new Set<string>();
  const errors: ConfigCheck["errors"] = [];
  for (const e of [service, ...sections, dashboard].flatMap((r) => r.errors as ConfigError[])) {
    if (seen.has(e.message)) continue;
    seen.add(e.message);
    errors.push({ variable: e.variable, message: e.message });
  }
  const known = knownVariables();
  const warnings = [...unknownVariables(env, known), ...misnamedVariables(env, known), ...flusherOffWarnings(env)];
  if (service.value) warnings.push(...databaseFolderWarnings(service.value.dbPath));
  const ok = errors.length === 0;
  return { ok, errors, warnings, config: ok ? service.value : null, dashboard: ok ? dashboard.value : null };
}

/** Flush settings without SUPABASE_URL: the flusher never starts, which is easy to miss. */
function flusherOffWarnings(env: Env): ConfigWarning[] {
  if (readVar(env, "SUPABASE_URL") !== undefined) return [];
  const given = ["SUPABASE_SERVICE_ROLE_KEY", "ZOE_FLUSH_SECRET"].filter((name) => readVar(env, name) !== undefined);
  if (given.length === 0) return [];
  const message =
    `${given.join(" and ")} ${given.length === 1 ? "is" : "are"} set but SUPABASE_URL is not: the flusher stays off ` +
    "and events stay on this box only; set SUPABASE_URL=https://<project>.supabase.co to flush them to Supabase";
  return [{ variable: "SUPABASE_URL", message, suggestion: null }];
}

/** The service creates the database's folder; warn now if this user could not. */
function databaseFolderWarnings(dbPath: string): ConfigWarning[] {
  const target = existsSync(dbPath) ? resolve(dbPath) : nearestExisting(dirname(resolve(dbPath)));
  try {
    accessSync(target, constants.W_OK);
    return [];
  } catch {
    const message = `ZOE_DB_PATH: ${target} is not writable by this user: the service would fail to open ${dbPath}`;
    return [{ variable: "ZOE_DB_PATH", message, suggestion: null }];
  }
}

function nearestExisting(path: string): string {
  while (!existsSync(path) && dirname(path) !== path) path = dirname(path);
  return path;
}

/** What `bun src/main.ts --check-config` prints: errors, warnings, then the effective settings with secrets masked. */
export function formatConfigCheck(check: ConfigCheck): string {
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;
  const lines = [
    `zoe-local: configuration is ${check.ok ? "valid" : "invalid"} (${count(check.errors.length, "error")}, ${count(check.warnings.length, "warning")})`,
    ...check.errors.map((e) => `error: ${e.message}`),
    ...check.warnings.map((w) => `warning: ${w.message}`),
  ];
  if (check.config && check.dashboard) {
    const dashboard = { ...check.dashboard, supabaseAnonKey: maskSecret(check.dashboard.supabaseAnonKey) };
    lines.push(
      "effective configuration (secrets masked):",
      JSON.stringify({ ...maskedConfig(check.config), dashboard }, null, 2),
    );
  }
  return lines.join("\n");
}
