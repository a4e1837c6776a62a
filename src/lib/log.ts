// Structured logs, one record a line, in one format per run: JSON objects
// (for journald, files and log shippers) or readable lines (for a person at a
// terminal). Values under secret-looking keys are masked and configured
// secret values scrubbed in both, so a token or key passed by mistake never
// reaches the log.
export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFormat = "json" | "pretty";
/** ZOE_LOG_FORMAT: `auto` is JSON unless stdout is a terminal. */
export type LogFormatSetting = LogFormat | "auto";
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET_KEY = /token|secret|password|authorization|apikey|api_key|service_role|anon_key|service_key/i;

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface LoggerOptions {
  level?: LogLevel;
  write?: (line: string) => void;
  /** Literal secret values to scrub wherever they appear. */
  secrets?: string[];
  /** JSON objects (default) or readable lines. */
  format?: LogFormat;
}

/** The format of a run: `auto` is JSON when stdout is not a terminal (a pipe, a file, journald), readable when it is. */
export function resolveLogFormat(setting: LogFormatSetting, stdoutIsTTY: boolean): LogFormat {
  if (setting === "auto") return stdoutIsTTY ? "pretty" : "json";
  return setting;
}

const BARE = /^[^\s"=]+$/;

/** `2026-03-09T14:30:00.123Z WARN  msg key=value key="two words" obj={"a":1}` from a masked record. */
function prettyLine(record: Record<string, unknown>): string {
  const { time, level, msg, ...fields } = record;
  let line = `${time} ${String(level).toUpperCase().padEnd(5)} ${msg}`;
  for (const [key, value] of Object.entries(fields)) {
    const text = typeof value === "string" && BARE.test(value) ? value : JSON.stringify(value);
    line += ` ${key}=${text}`;
  }
  return line;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const min = RANK[options.level ?? "info"];
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  // Scrubbing runs on the JSON line, where a secret holding a quote, a
  // backslash or a control character appears escaped: match that form too.
  // Longest first, so a secret inside another cannot leave part of it behind.
  const secrets = [
    ...new Set(
      (options.secrets ?? []).filter((s) => s.length >= 4).flatMap((s) => [JSON.stringify(s).slice(1, -1), s]),
    ),
  ].sort((a, b) => b.length - a.length);
  const scrub = (text: string) => secrets.reduce((t, s) => t.split(s).join("[redacted]"), text);
  const pretty = options.format === "pretty";
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (RANK[level] < min) return;
    const line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }, (key, value) => {
      if (key && SECRET_KEY.test(key) && typeof value === "string") return "[redacted]";
      if (value instanceof Error)
        return { name: value.name, message: value.message, code: (value as { code?: unknown }).code };
      return value;
    });
    // The readable line is rendered from the masked JSON, so both formats hide the same things.
    write(scrub(pretty ? prettyLine(JSON.parse(line)) : line));
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
