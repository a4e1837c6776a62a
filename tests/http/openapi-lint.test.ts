// The OpenAPI document the real service serves at /docs/json passes
// `redocly lint` with the recommended rules (redocly.yaml): no error, no
// warning. Redocly runs offline: no telemetry, no update check, nothing but
// the local package.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { tempDir } from "../helpers/tmp.ts";

const ROOT = join(import.meta.dir, "..", "..");
const REDOCLY = join(ROOT, "node_modules", "@redocly", "cli", "bin", "cli.js");

let svc: ServiceProcess;
const dir = tempDir("zoe-openapi-lint-");
beforeAll(async () => {
  svc = await startService({ dbPath: dir.file("zoe.db"), env: { ZOE_API_TOKEN: "lint-token-0123456789abcdef" } });
});
afterAll(async () => {
  await svc?.kill("SIGTERM");
  dir.cleanup();
});

interface LintReport {
  totals: { errors: number; warnings: number; ignored: number };
  problems: { ruleId: string; severity: string; message: string; location: { pointer: string }[] }[];
}

async function lint(file: string): Promise<LintReport> {
  const proc = Bun.spawn(
    [process.execPath, "--bun", REDOCLY, "lint", file, "--config", join(ROOT, "redocly.yaml"), "--format=json"],
    {
      cwd: ROOT,
      // No usage report, no "new version" check against the npm registry.
      env: {
        PATH: process.env.PATH ?? "",
        HOME: dir.path,
        REDOCLY_TELEMETRY: "off",
        REDOCLY_SUPPRESS_UPDATE_NOTICE: "true",
        CI: "true",
      },
      stdout: "pipe",
      stderr: "pipe",
    },
  );
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  const start = out.indexOf("{");
  if (start < 0) throw new Error(`redocly printed no report (exit ${proc.exitCode}):\n${out}\n${err}`);
  return JSON.parse(out.slice(start)) as LintReport;
}

test("the served OpenAPI document passes redocly lint with the recommended rules: 0 errors, 0 warnings", async () => {
  const res = await fetch(`${svc.url}/docs/json`);
  expect(res.status).toBe(200);
  const doc = (await res.json()) as { paths: Record<string, Record<string, unknown>> };
  // The whole API is described, the operator routes and the stream's HEAD too.
  expect(Object.keys(doc.paths).sort()).toEqual(
    [
      "/health",
      "/local/events",
      "/local/flush",
      "/local/history",
      "/local/quarantine",
      "/local/quarantine/retry",
      "/local/quarantine/{id}",
      "/local/state",
      "/local/status",
      "/local/stream",
      "/metrics",
      "/ready",
    ].sort(),
  );
  expect(Object.keys(doc.paths["/local/stream"]!).sort()).toEqual(["get", "head"]);
  const file = join(dir.path, "openapi.json");
  writeFileSync(file, JSON.stringify(doc, null, 2));
  const report = await lint(file);
  const problems = report.problems.map((p) => `${p.severity} ${p.ruleId} at ${p.location[0]?.pointer}: ${p.message}`);
  expect(problems).toEqual([]);
  expect(report.totals).toEqual({ errors: 0, warnings: 0, ignored: 0 });
}, 60_000);

test("the lint fails on a document with problems (the check can fail)", async () => {
  const file = join(dir.path, "broken.json");
  writeFileSync(
    file,
    JSON.stringify({
      openapi: "3.1.0",
      info: { title: "x", version: "1" },
      paths: { "/a": { get: { responses: { 200: { description: "ok" } } } } },
    }),
  );
  const report = await lint(file);
  expect(report.problems.map((p) => p.ruleId).sort()).toEqual(
    [
      "no-empty-servers",
      "operation-4xx-response",
      "operation-operationId",
      "operation-summary",
      "security-defined",
    ].sort(),
  );
}, 60_000);
