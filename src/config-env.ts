// The environment side of the settings: typed readers of one variable each,
// which variables a loader reads, warnings for `ZOE_*` names nobody reads,
// and every error of a loader instead of its first. config.ts composes the
// settings from these; config-check.ts reports with them.
import { ConfigError } from "./domain/errors.ts";
import { editDistance, nearest } from "./lib/edit-distance.ts";

export type Env = Record<string, string | undefined>;

/** A variable's value, trimmed; an empty one is unset (its default). */
export function readVar(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === "" ? undefined : v;
}

export function intVar(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = readVar(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `expected an integer from ${min} to ${max}, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `expected an integer from ${min} to ${max}, got ${n}`);
  return n;
}

export function numberVar(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = readVar(env, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw) || n < min || n > max) {
    throw new ConfigError(name, `expected a number from ${min} to ${max}, got "${raw}"`);
  }
  return n;
}

export function enumVar<T extends string>(env: Env, name: string, fallback: T, choices: readonly T[]): T {
  const raw = readVar(env, name);
  if (raw === undefined) return fallback;
  const found = choices.find((c) => c.toLowerCase() === raw.toLowerCase());
  if (!found) throw new ConfigError(name, `expected one of ${choices.join(", ")}, got "${raw}"`);
  return found;
}

export function boolVar(env: Env, name: string, fallback: boolean): boolean {
  const raw = readVar(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (["1", "true", "on", "yes"].includes(raw)) return true;
  if (["0", "false", "off", "no"].includes(raw)) return false;
  throw new ConfigError(name, `expected true or false, got "${raw}"`);
}

/** A `ZOE_*` variable that no setting reads: most likely a typo that leaves the intended setting at its default. */
export interface ConfigWarning {
  variable: string;
  message: string;
  /** The nearest known variable by edit distance. */
  suggestion: string | null;
}

/**
 * The names `load` reads from the environment, found by running it over an
 * empty environment that records every lookup. Every setting is read on that
 * all-defaults path, so the list cannot drift from the loaders.
 */
export function variablesRead(load: (env: Env) => unknown): string[] {
  const names = new Set<string>();
  const recorder = new Proxy({} as Env, {
    get(_target, property) {
      if (typeof property === "string") names.add(property);
      return undefined;
    },
  });
  load(recorder);
  return [...names];
}

/** `ZOE_*` names that belong to other parts of the project: not a typo when they turn up here. */
const READ_ELSEWHERE: [RegExp, string | null][] = [
  [/^ZOE_INGEST_/, "is read by the zoe-ingest Edge Function, not by this service: set it in the function's secrets"],
  // Test, fuzz, benchmark and local-stack tooling (docs/development.md).
  [/^ZOE_(FUZZ|PG|BENCH)_|^ZOE_CHROMIUM$|^ZOE_LOCAL_JWT_SECRET$/, null],
  // The zoe-local CLI's address of the service (docs/operations.md); an env file may hold it.
  [/^ZOE_URL$/, null],
];

/** One warning per `ZOE_*` variable in `env` that is not in `known`, naming the nearest known one. */
export function unknownVariables(env: Env, known: readonly string[]): ConfigWarning[] {
  const knownSet = new Set(known);
  const warnings: ConfigWarning[] = [];
  for (const variable of Object.keys(env).sort()) {
    if (!variable.startsWith("ZOE_") || knownSet.has(variable)) continue;
    const elsewhere = READ_ELSEWHERE.find(([pattern]) => pattern.test(variable));
    if (elsewhere) {
      if (elsewhere[1] !== null) warnings.push({ variable, message: `${variable} ${elsewhere[1]}`, suggestion: null });
      continue;
    }
    const suggestion = nearest(variable, known)?.name ?? null;
    const hint = suggestion ? `; did you mean ${suggestion}?` : "";
    warnings.push({ variable, message: `${variable} is not a zoe-local setting and is ignored${hint}`, suggestion });
  }
  return warnings;
}

/** Supabase variables of other tools (the CLI, the Edge Functions): not a typo of one of ours. */
const OTHER_SUPABASE = new Set([
  "SUPABASE_DB_URL",
  "SUPABASE_DB_PASSWORD",
  "SUPABASE_JWT_SECRET",
  "SUPABASE_SECRET_KEYS",
  "SUPABASE_PUBLISHABLE_KEYS",
  "SUPABASE_ACCESS_TOKEN",
  "SUPABASE_PROJECT_ID",
  "SUPABASE_PROJECT_REF",
]);
/** What other projects call the variables zoe-local reads under another name. */
const ALIASES: Record<string, string> = {
  SUPABASE_KEY: "SUPABASE_SERVICE_ROLE_KEY",
  SUPABASE_SERVICE_KEY: "SUPABASE_SERVICE_ROLE_KEY",
  SUPABASE_SECRET_KEY: "SUPABASE_SERVICE_ROLE_KEY",
  SUPABASE_SERVICE_ROLE: "SUPABASE_SERVICE_ROLE_KEY",
  SERVICE_ROLE_KEY: "SUPABASE_SERVICE_ROLE_KEY",
  SUPABASE_PROJECT_URL: "SUPABASE_URL",
  SUPABASE_API_URL: "SUPABASE_URL",
};

/** "SUPABSE", "SUPERBASE", "SUPBASE": a first word a typo away from SUPABASE. */
function looksLikeSupabase(name: string): boolean {
  const first = name.split("_")[0]!;
  return first.length >= 6 && editDistance(first, "SUPABASE") <= 2;
}

/**
 * Variables that look meant for zoe-local but are not read: lower- or
 * mixed-case spellings of its settings (`zoe_api_token`, `supabase_url`:
 * names are case-sensitive), and misspelt or differently named Supabase
 * variables (`SUPABSE_URL`, `SUPABASE_SERVICE_KEY`) while the one they stand
 * for is unset. Each names the variable to use.
 */
export function misnamedVariables(env: Env, known: readonly string[]): ConfigWarning[] {
  const knownSet = new Set(known);
  const isSet = (name: string) => readVar(env, name) !== undefined;
  const warnings: ConfigWarning[] = [];
  for (const variable of Object.keys(env).sort()) {
    if (knownSet.has(variable) || readVar(env, variable) === undefined) continue;
    const upper = variable.toUpperCase();
    if (upper !== variable) {
      if (!upper.startsWith("ZOE_") && !knownSet.has(upper) && !looksLikeSupabase(upper)) continue;
      const suggestion = knownSet.has(upper) ? upper : (nearest(upper, known)?.name ?? null);
      const hint = suggestion ? `; did you mean ${suggestion}?` : "";
      warnings.push({
        variable,
        message: `${variable} is ignored: zoe-local's settings are upper-case${hint}`,
        suggestion,
      });
      continue;
    }
    if (OTHER_SUPABASE.has(variable)) continue;
    let suggestion: string | null = ALIASES[variable] ?? null;
    if (suggestion === null && looksLikeSupabase(variable)) {
      const close = nearest(
        variable,
        known.filter((k) => k.startsWith("SUPABASE_")),
      );
      if (close && close.distance <= 3) suggestion = close.name;
    }
    if (suggestion === null || isSet(suggestion)) continue;
    warnings.push({
      variable,
      message: `${variable} is not a zoe-local setting and is ignored; did you mean ${suggestion}?`,
      suggestion,
    });
  }
  return warnings;
}

/**
 * Runs `load` and, instead of stopping at the first bad variable, reports
 * each: after an error it retries with that variable unset (its default),
 * until `load` succeeds or an error names a variable that is not set. The
 * value is null unless there was no error at all.
 */
export function collectConfigErrors<T>(env: Env, load: (env: Env) => T): { value: T | null; errors: ConfigError[] } {
  const current: Env = { ...env };
  const errors: ConfigError[] = [];
  for (;;) {
    try {
      const value = load(current);
      // With errors, that value holds defaults in place of the bad settings: not the configuration asked for.
      return { value: errors.length === 0 ? value : null, errors };
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      errors.push(error);
      if (readVar(current, error.variable) === undefined) return { value: null, errors };
      delete current[error.variable];
    }
  }
}
