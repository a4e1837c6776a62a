import { expect, test } from "bun:test";
import { createLogger } from "../src/log.ts";

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
  logger.info("config", { apiToken: "abc123", nested: { service_role_key: "eyJhbGci", Authorization: "Bearer x" }, mode: "live" });
  expect(raw[0]).not.toContain("abc123");
  expect(raw[0]).not.toContain("eyJhbGci");
  expect(raw[0]).not.toContain("Bearer x");
  expect(JSON.parse(raw[0]!)).toMatchObject({ apiToken: "[redacted]", nested: { service_role_key: "[redacted]" }, mode: "live" });
});

test("scrubs configured secret values wherever they appear, e.g. inside an error message", () => {
  const secret = "sk-live-0123456789";
  const { logger, raw } = capture({ secrets: [secret, ""] });
  logger.error("request failed", { error: new Error(`upstream said: bad key ${secret}`), url: `https://x.example/?key=${secret}` });
  expect(raw[0]).not.toContain(secret);
  expect(raw[0]).toContain("[redacted]");
});

test("serialises errors as name, message and code", () => {
  const { logger, lines } = capture();
  const error = Object.assign(new Error("disk full"), { code: "SQLITE_FULL" });
  logger.warn("store", { error });
  expect(lines[0]!.error).toEqual({ name: "Error", message: "disk full", code: "SQLITE_FULL" });
});
