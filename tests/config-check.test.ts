// The settings check of src/config-check.ts, on its own (the service and
// `--check-config` running it end to end are in tests/main.test.ts).
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { knownVariables } from "../src/config-check.ts";

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
