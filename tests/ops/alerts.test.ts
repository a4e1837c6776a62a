// The shipped alert rules and Grafana dashboard (ops/): promtool checks the
// rules and runs their unit tests, checks the live /metrics of the real
// service, and every metric the rules and the dashboard use must be one the
// service really exports. promtool is Debian's `prometheus` package, which
// .ci/run and `bun run test` install when it is missing.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { tempDir } from "../helpers/tmp.ts";

const OPS = join(import.meta.dir, "..", "..", "ops");
const RULES = join(OPS, "prometheus", "zoe-local.rules.yml");
const RULE_TESTS = join(OPS, "prometheus", "zoe-local.rules.test.yml");
const DASHBOARD = join(OPS, "grafana", "zoe-local.dashboard.json");
const PROMTOOL = Bun.which("promtool");
// Skipped with a note on a developer's machine without it; under CI (which installs it) a missing promtool fails.
if (!PROMTOOL)
  console.warn(
    "alerts.test.ts: promtool not found, its checks are skipped (apt-get install prometheus; .ci/run installs it)",
  );
const withPromtool = PROMTOOL || process.env.CI ? test : test.skip;

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}
const rules = (
  Bun.YAML.parse(readFileSync(RULES, "utf8")) as { groups: { name: string; rules: Rule[] }[] }
).groups.flatMap((g) => g.rules);
const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as {
  uid: string;
  templating: { list: { name: string; type: string }[] };
  panels: {
    id: number;
    type: string;
    title: string;
    datasource?: { uid: string };
    gridPos: { x: number; w: number };
    targets?: { expr: string }[];
  }[];
};

function promtool(args: string[], stdin?: string) {
  const proc = Bun.spawnSync([PROMTOOL!, ...args], {
    stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin),
    stdout: "pipe",
    stderr: "pipe",
    cwd: join(OPS, "prometheus"),
  });
  return { code: proc.exitCode, out: proc.stdout.toString() + proc.stderr.toString() };
}

/** Metric names an expression reads (ours and the process metrics; `up` is Prometheus's own). */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b((?:zoe|process|nodejs)_[a-z0-9_]+)\b/g)].map((m) => m[1]!);
}

const dir = tempDir("zoe-alerts-");
let svc: ServiceProcess;
let exposition: string;
beforeAll(async () => {
  svc = await startService({ dbPath: dir.file("zoe.db") });
  // Some traffic, so counters and histograms carry samples, not only their HELP and TYPE.
  const post = (body: unknown) =>
    fetch(`${svc.url}/local/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  await post([{ mode: "live", source: "bot", type: "T", subtype: "TICK", body: "x" }]);
  await post({ mode: "live" });
  const stream = await fetch(`${svc.url}/local/stream?mode=live&since_seq=0`);
  const reader = stream.body!.getReader();
  await reader.read();
  await reader.cancel();
  exposition = await (await fetch(`${svc.url}/metrics`)).text();
}, 30_000);
afterAll(async () => {
  await svc?.kill("SIGTERM");
  dir.cleanup();
});

/** Metric families the service exports (a histogram also answers to _bucket, _sum and _count). */
function exported(): Set<string> {
  const names = new Set<string>();
  for (const m of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(m[1]!);
    if (m[2] === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(m[1]! + s);
  }
  return names;
}

describe("Prometheus alert rules (ops/prometheus/zoe-local.rules.yml)", () => {
  withPromtool("pass promtool check rules", () => {
    const r = promtool(["check", "rules", RULES]);
    expect(r).toEqual({ code: 0, out: expect.stringContaining(`SUCCESS: ${rules.length} rules found`) });
  });

  withPromtool(
    "pass their unit tests (promtool test rules): each alert fires when it should, with its labels and text, and not before",
    () => {
      const r = promtool(["test", "rules", RULE_TESTS]);
      expect(r).toEqual({ code: 0, out: expect.stringContaining("SUCCESS") });
    },
  );

  test("cover what an operator is paged for, each with a severity, a summary and a runbook", () => {
    const names = rules.map((r) => r.alert);
    for (const needed of [
      "ZoeLocalDown",
      "ZoeLocalIngestRefused",
      "ZoeLocalBacklogGrowing",
      "ZoeLocalFlushFailing",
      "ZoeLocalEventsNotReachingSupabase",
      "ZoeLocalQuarantineNotEmpty",
      "ZoeLocalDiskNearFloor",
      "ZoeLocalBacklogNearCap",
      "ZoeLocalSseClientsCutOff",
      "ZoeSecondWriter",
    ]) {
      expect(names).toContain(needed);
    }
    expect(new Set(names).size).toBe(names.length);
    for (const r of rules) {
      expect({ alert: r.alert, severity: ["critical", "warning"].includes(r.labels.severity ?? "") }).toEqual({
        alert: r.alert,
        severity: true,
      });
      expect({
        alert: r.alert,
        summary: Boolean(r.annotations.summary),
        runbook: Boolean(r.annotations.runbook),
      }).toEqual({ alert: r.alert, summary: true, runbook: true });
    }
  });

  test("agree with docs/operations.md's 'alert when' column: its thresholds are the rules', and no hours the rules do not know", () => {
    const docs = readFileSync(join(OPS, "..", "docs", "operations.md"), "utf8");
    const table = docs.slice(docs.indexOf("| metric | meaning | alert when |"));
    const rows = table
      .split("\n")
      .slice(2)
      .filter((line, i, all) => line.startsWith("|") && all.slice(0, i).every((l) => l.startsWith("|")))
      .map((line) => line.split(/(?<!\\)\|/).map((cell) => cell.trim()))
      .map((cells) => ({ metrics: metricNames(`${cells[1]} ${cells[3]}`), when: cells[3] ?? "" }))
      .filter((row) => row.when !== "");
    expect(rows.length).toBeGreaterThan(5);
    const problems: string[] = [];
    for (const { metrics, when } of rows) {
      for (const [, op, value] of when.matchAll(/(>|<|==)\s*([\d.]+)/g)) {
        // A rule compares one of the row's metrics (with or without a selector) the same way.
        const said = metrics.some((m) =>
          rules.some((r) =>
            new RegExp(`\\b${m}(\\{[^}]*\\})?\\s*${op}\\s*${value!.replace(".", "\\.")}\\b`).test(r.expr),
          ),
        );
        if (!said) problems.push(`${metrics.join(", ")}: "${op} ${value}" is in no rule`);
      }
      if (/market hours|off hours/i.test(when) && !/at any hour/i.test(when))
        problems.push(`${metrics.join(", ")}: "${when}" names hours, but no rule reads the market clock`);
    }
    expect(problems).toEqual([]);
  });

  test("read only metrics the service really exports", () => {
    const have = exported();
    const missing = rules.flatMap((r) =>
      metricNames(r.expr)
        .filter((n) => !have.has(n))
        .map((n) => `${r.alert}: ${n}`),
    );
    expect(missing).toEqual([]);
  });
});

describe("the live /metrics of the real service", () => {
  withPromtool("pass promtool check metrics", () => {
    expect(exposition).toContain("zoe_build_info{");
    const r = promtool(["check", "metrics"], exposition);
    expect(r).toEqual({ code: 0, out: "" });
  });
});

describe("the Grafana dashboard (ops/grafana/zoe-local.dashboard.json)", () => {
  const graphs = dashboard.panels.filter((p) => p.type !== "row");

  test("is importable as it is: a stable uid, a data source variable every panel uses, unique ids, a 24-column grid", () => {
    expect(dashboard.uid).toBe("zoe-local");
    expect(dashboard.templating.list.map((v) => `${v.name}:${v.type}`)).toEqual([
      "datasource:datasource",
      "job:query",
      "instance:query",
      "mode:custom",
    ]);
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    for (const p of graphs) {
      expect({
        panel: p.title,
        uid: p.datasource?.uid,
        fits: p.gridPos.x + p.gridPos.w <= 24,
        targets: (p.targets ?? []).length > 0,
      }).toEqual({ panel: p.title, uid: "${datasource}", fits: true, targets: true });
    }
  });

  test("plots backlog, flush, ingest, disk and streams, from metrics the service really exports", () => {
    const exprs = graphs.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
    const have = exported();
    expect(
      exprs.flatMap(({ panel, expr }) =>
        metricNames(expr)
          .filter((n) => !have.has(n))
          .map((n) => `${panel}: ${n}`),
      ),
    ).toEqual([]);
    const used = new Set(exprs.flatMap(({ expr }) => metricNames(expr)));
    for (const m of [
      "zoe_backlog_events",
      "zoe_oldest_unflushed_age_seconds",
      "zoe_flush_requests_total",
      "zoe_flush_duration_seconds_bucket",
      "zoe_ingest_events_total",
      "zoe_disk_free_bytes",
      "zoe_sse_disconnects_total",
      "zoe_quarantined_events",
      "zoe_build_info",
    ]) {
      expect([...used]).toContain(m);
    }
  });
});
