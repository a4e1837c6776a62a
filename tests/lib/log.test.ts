import { describe, expect, test } from "bun:test";
import { configSecrets, loadConfig } from "../../src/config.ts";
import { StoreUnavailableError } from "../../src/domain/errors.ts";
import { BacklogFullError } from "../../src/store/limits.ts";
import { createLogger, resolveLogFormat } from "../../src/lib/log.ts";
import { opsApp } from "../helpers/ops.ts";

function capture(options: Parameters<typeof createLogger>[0] = {}) {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const logger = createLogger({ ...options, write: (line) => (raw.push(line), lines.push(JSON.parse(line))) });
  return { logger, lines, raw };
}

test("writes one JSON object per line with time, level, msg and the fields", () => {
  const { logger, lines } = capture();
  logger.info("flushed", { mode: "live", count: 3 });
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatchObject({ level: "info", msg: "flushed", mode: "live", count: 3 });
  expect(Date.parse(lines[0]!.time as string)).not.toBeNaN();
});

test("drops lines below the configured level", () => {
  const { logger, lines } = capture({ level: "warn" });
  logger.debug("d");
  logger.info("i");
  logger.warn("w");
  logger.error("e");
  expect(lines.map((l) => l.level)).toEqual(["warn", "error"]);
});

test("masks values under secret-looking keys, at any depth", () => {
  const { logger, raw } = capture();
  logger.info("config", {
    apiToken: "abc123",
    nested: { service_role_key: "eyJhbGci", Authorization: "Bearer x" },
    mode: "live",
  });
  expect(raw[0]).not.toContain("abc123");
  expect(raw[0]).not.toContain("eyJhbGci");
  expect(raw[0]).not.toContain("Bearer x");
  expect(JSON.parse(raw[0]!)).toMatchObject({
    apiToken: "[redacted]",
    nested: { service_role_key: "[redacted]" },
    mode: "live",
  });
});

test("scrubs configured secret values wherever they appear, e.g. inside an error message", () => {
  const secret = "sk-live-0123456789";
  const { logger, raw } = capture({ secrets: [secret, ""] });
  logger.error("request failed", {
    error: new Error(`upstream said: bad key ${secret}`),
    url: `https://x.example/?key=${secret}`,
  });
  expect(raw[0]).not.toContain(secret);
  expect(raw[0]).toContain("[redacted]");
});

test("serialises errors as name, message and code", () => {
  const { logger, lines } = capture();
  const error = Object.assign(new Error("disk full"), { code: "SQLITE_FULL" });
  logger.warn("store", { error });
  expect(lines[0]!.error).toEqual({ name: "Error", message: "disk full", code: "SQLITE_FULL" });
});

describe("no secret in the log", () => {
  const env = {
    ZOE_API_TOKEN: "tok_9f8e7d6c5b4a39281706",
    SUPABASE_URL: "https://abcd.supabase.co",
    SUPABASE_SERVICE_ROLE_KEY: "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl",
    ZOE_FLUSH_SECRET: "flush-shared-secret-42",
  };
  const secrets = [env.ZOE_API_TOKEN, env.SUPABASE_SERVICE_ROLE_KEY, env.ZOE_FLUSH_SECRET];

  test("configSecrets() names ZOE_API_TOKEN, SUPABASE_SERVICE_ROLE_KEY and ZOE_FLUSH_SECRET", () => {
    expect(configSecrets(loadConfig(env)).sort()).toEqual([...secrets].sort());
    expect(configSecrets(loadConfig({}))).toEqual([]);
  });

  test("a logger built as src/main.ts builds it never prints one, whatever carries it", () => {
    const config = loadConfig(env);
    const { logger, raw } = capture({ level: "debug", secrets: configSecrets(config) });
    for (const s of secrets) {
      logger.debug(`message with ${s}`);
      logger.info("innocent key", { value: s, list: [s], nested: { deeper: { v: `prefix-${s}-suffix` } } });
      logger.warn("error", { error: new Error(`remote said: invalid key ${s}`) });
      logger.error("url", { url: `https://abcd.supabase.co/functions/v1/zoe-ingest?apikey=${s}&token=${s}` });
      logger.info("header", { headers: { Authorization: `Bearer ${s}`, apikey: s, "x-zoe-flush-secret": s } });
    }
    logger.info("whole config", { config });
    expect(raw.length).toBe(secrets.length * 5 + 1);
    for (const line of raw) for (const s of secrets) expect(line).not.toContain(s);
  });

  test("a secret holding characters JSON escapes is scrubbed in its escaped form", () => {
    const secret = 'we"ird\\secret\t1';
    const { logger, raw } = capture({ secrets: [secret] });
    logger.info("x", { note: `key ${secret} here` });
    expect(raw[0]).not.toContain(JSON.stringify(secret).slice(1, -1));
    expect(JSON.parse(raw[0]!).note).toBe("key [redacted] here");
  });

  test("5xx log lines carry the path, never the query string (where a read's ?token= travels)", () => {
    const lines: Record<string, unknown>[] = [];
    const t = opsApp({ logLines: lines });
    try {
      t.ops.hooks.failed!(
        new StoreUnavailableError("Cannot store events: disk or database is full"),
        503,
        new Request("http://localhost/local/events?token=tok_query_secret_123"),
      );
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({
        level: "error",
        msg: "request failed",
        status: 503,
        code: "store_unavailable",
        path: "/local/events",
      });
      expect(JSON.stringify(lines)).not.toContain("tok_query_secret_123");
    } finally {
      t.close();
    }
  });

  test("a storm of refusals logs once per code per interval, with the count it left out", () => {
    const lines: Record<string, unknown>[] = [];
    const t = opsApp({ logLines: lines });
    try {
      const refuse = () =>
        t.ops.hooks.failed!(
          new BacklogFullError("full"),
          503,
          new Request("http://localhost/local/events", { method: "POST" }),
        );
      for (let i = 0; i < 50; i++) refuse();
      t.clock.advance(10_000);
      refuse();
      expect(lines.map((l) => [l.level, l.code, l.suppressed_since_last])).toEqual([
        ["warn", "backlog_full", 0],
        ["warn", "backlog_full", 49],
      ]);
    } finally {
      t.close();
    }
  });
});

describe("formats", () => {
  test("resolveLogFormat(): auto is JSON unless stdout is a terminal; json and pretty are forced", () => {
    expect(resolveLogFormat("auto", false)).toBe("json");
    expect(resolveLogFormat("auto", true)).toBe("pretty");
    expect(resolveLogFormat("json", true)).toBe("json");
    expect(resolveLogFormat("pretty", false)).toBe("pretty");
  });

  test("pretty: one readable line with time, level, message and key=value fields, quoted where needed", () => {
    const raw: string[] = [];
    const logger = createLogger({ format: "pretty", write: (line) => raw.push(line) });
    logger.warn("flush attempt failed", {
      mode: "live",
      attempt: 3,
      error: new Error("remote said no"),
      why: "two words",
    });
    expect(raw).toHaveLength(1);
    expect(raw[0]).toMatch(
      /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z WARN {2}flush attempt failed mode=live attempt=3 error=\{"name":"Error","message":"remote said no"\} why="two words"$/,
    );
  });

  test("pretty masks and scrubs secrets as JSON does", () => {
    const raw: string[] = [];
    const logger = createLogger({ format: "pretty", secrets: ["s3cr3t-value"], write: (line) => raw.push(line) });
    logger.info("config", { apiToken: "abc123", note: "the key is s3cr3t-value" });
    expect(raw[0]).not.toContain("abc123");
    expect(raw[0]).not.toContain("s3cr3t-value");
    expect(raw[0]).toContain("apiToken=[redacted]");
  });
});
