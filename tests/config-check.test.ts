// The settings check of src/config-check.ts, on its own (the service and
// `--check-config` running it end to end are in tests/main.test.ts).
import { afterAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { checkConfig, knownVariables } from "../src/config-check.ts";
import { tempDir } from "./helpers/tmp.ts";

describe("knownVariables()", () => {
  test("every variable the service reads is documented in a table of docs/, and every documented ZOE_* setting is read", () => {
    const docs = join(import.meta.dir, "..", "docs");
    const readme = readdirSync(docs)
      .filter((f) => f.endsWith(".md"))
      .map((f) => readFileSync(join(docs, f), "utf8"))
      .join("\n");
    const documented = new Set<string>();
    for (const row of readme.matchAll(/^\| ([^|]+)\|/gm))
      for (const m of row[1]!.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) documented.add(m[1]!);
    const known = knownVariables();
    expect(known.filter((v) => !documented.has(v))).toEqual([]);
    expect([...documented].filter((v) => v.startsWith("ZOE_") && !known.includes(v))).toEqual([]);
  });
});

describe("checkConfig() warnings", () => {
  const dir = tempDir("zoe-config-check-");
  const base = { ZOE_DB_PATH: dir.file("zoe.db") };
  afterAll(() => dir.cleanup());

  test("a service-role key (or flush secret) without SUPABASE_URL warns that the flusher stays off", () => {
    const check = checkConfig({ ...base, SUPABASE_SERVICE_ROLE_KEY: "service-key", ZOE_FLUSH_SECRET: "s" });
    expect(check.ok).toBe(true);
    expect(check.config?.flush.remote).toBeNull();
    expect(check.warnings).toEqual([
      {
        variable: "SUPABASE_URL",
        message:
          "SUPABASE_SERVICE_ROLE_KEY and ZOE_FLUSH_SECRET are set but SUPABASE_URL is not: the flusher stays off and events stay on this box only; set SUPABASE_URL=https://<project>.supabase.co to flush them to Supabase",
        suggestion: null,
      },
    ]);
    expect(
      checkConfig({ ...base, SUPABASE_URL: "https://p.supabase.co", SUPABASE_SERVICE_ROLE_KEY: "k" }).warnings,
    ).toEqual([]);
  });

  test("SUPABSE_URL with the key: both the typo and the flusher left off are reported", () => {
    const messages = checkConfig({
      ...base,
      SUPABSE_URL: "https://p.supabase.co",
      SUPABASE_SERVICE_ROLE_KEY: "k",
    }).warnings.map((w) => w.message);
    expect(messages).toEqual([
      "SUPABSE_URL is not a zoe-local setting and is ignored; did you mean SUPABASE_URL?",
      expect.stringContaining("SUPABASE_SERVICE_ROLE_KEY is set but SUPABASE_URL is not: the flusher stays off"),
    ]);
  });

  test("a lower-case zoe_* variable is reported", () => {
    expect(checkConfig({ ...base, zoe_api_token: "0123456789abcdef-token" }).warnings.map((w) => w.suggestion)).toEqual(
      ["ZOE_API_TOKEN"],
    );
  });
});
