// The settings check of src/config-check.ts, on its own (the service and
// `--check-config` running it end to end are in tests/main.test.ts).
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { knownVariables } from "../src/config-check.ts";

describe("knownVariables()", () => {
  test("every variable the service reads is documented in a README table, and every documented ZOE_* setting is read", () => {
    const readme = readFileSync(join(import.meta.dir, "..", "README.md"), "utf8");
    const documented = new Set<string>();
    for (const row of readme.matchAll(/^\| ([^|]+)\|/gm))
      for (const m of row[1]!.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) documented.add(m[1]!);
    const known = knownVariables();
    expect(known.filter((v) => !documented.has(v))).toEqual([]);
    expect([...documented].filter((v) => v.startsWith("ZOE_") && !known.includes(v))).toEqual([]);
  });
});
