// src/client/ and the README's React snippet as a new user puts them into a
// project from `npm create vite@latest -- --template react-ts`: they must
// type-check under that template's tsconfig.app.json unchanged, and a
// dashboard built from them with no Supabase settings must run LOCAL only in
// a real browser instead of throwing at import.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { chromiumAvailable, launchBrowser, type TestBrowser } from "../helpers/browser.ts";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { tempDir } from "../helpers/tmp.ts";

const ROOT = join(import.meta.dir, "..", "..");
const TEMPLATE = join(ROOT, "tests", "fixtures", "vite-react-ts");

/** The code blocks of docs/dashboard.md's "Embed the hook" section, keyed by the path their first line names. */
function readmeSnippets(): Map<string, string> {
  const readme = readFileSync(join(ROOT, "docs", "dashboard.md"), "utf8");
  const start = readme.indexOf("### Embed the hook in a React/Vite dashboard");
  const section = readme.slice(start, readme.indexOf("\n### ", start + 10));
  const files = new Map<string, string>();
  for (const m of section.matchAll(/```tsx?\n(\/\/ (src\/\S+)[^\n]*\n[\s\S]*?)```/g)) files.set(m[2]!, m[1]!);
  return files;
}

/**
 * A react-ts template project: its tsconfig.app.json, src/lib/zoe-live/ copied
 * from src/client/ as the README says, the README's files, and node_modules
 * holding this repository's packages plus vite's client declarations.
 */
function templateProject(dir: string, extra: Record<string, string> = {}): string {
  cpSync(join(TEMPLATE, "tsconfig.app.json"), join(dir, "tsconfig.app.json"));
  const nm = join(dir, "node_modules");
  mkdirSync(nm);
  for (const entry of readdirSync(join(ROOT, "node_modules")))
    symlinkSync(join(ROOT, "node_modules", entry), join(nm, entry));
  cpSync(join(TEMPLATE, "vite"), join(nm, "vite"), { recursive: true });
  mkdirSync(join(dir, "src", "lib", "zoe-live"), { recursive: true });
  for (const file of readdirSync(join(ROOT, "src", "client")).filter((f) => f.endsWith(".ts"))) {
    cpSync(join(ROOT, "src", "client", file), join(dir, "src", "lib", "zoe-live", file));
  }
  for (const [path, code] of [...readmeSnippets(), ...Object.entries(extra)]) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), code);
  }
  return dir;
}

/** `tsc -b`, as the template's `npm run build` runs it (plain text: tsc colours its output under scripts/test.ts's FORCE_COLOR=0). */
function typecheck(dir: string): { code: number; out: string } {
  const r = Bun.spawnSync([join(ROOT, "node_modules", ".bin", "tsc"), "-b", "tsconfig.app.json", "--pretty", "false"], {
    cwd: dir,
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: r.exitCode, out: `${r.stdout}${r.stderr}`.trim() };
}

describe("Vite react-ts template", () => {
  test("README's hook snippet names its two files", () => {
    expect([...readmeSnippets().keys()]).toEqual(["src/lib/localLive.ts", "src/LiveBadge.tsx"]);
  });

  test("src/client/ and README's hook snippet type-check under the template's tsconfig.app.json unchanged", () => {
    const dir = tempDir("zoe-vite-tsc-");
    try {
      expect(typecheck(templateProject(dir.path))).toEqual({ code: 0, out: "" });
    } finally {
      dir.cleanup();
    }
  });

  test("the same check refuses what the template refuses: a parameter property and an unused variable", () => {
    const dir = tempDir("zoe-vite-tsc-");
    try {
      const probe =
        "export class Refused extends Error {\n  constructor(readonly status: number) {\n    super(String(status));\n    const unused = 1;\n  }\n}\n";
      const { code, out } = typecheck(templateProject(dir.path, { "src/probe.ts": probe }));
      expect(code).not.toBe(0);
      expect(out).toContain("error TS1294");
      expect(out).toContain("error TS6133");
    } finally {
      dir.cleanup();
    }
  });
});

describe.skipIf(!chromiumAvailable())(
  "README's hook snippet with no Supabase settings, built and run in Chromium",
  () => {
    const dir = tempDir("zoe-vite-run-");
    let svc: ServiceProcess;
    let site: ReturnType<typeof Bun.serve>;
    let browser: TestBrowser;

    beforeAll(async () => {
      site = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("not built yet", { status: 503 }) });
      const origin = `http://127.0.0.1:${site.port}`;
      svc = await startService({ dbPath: dir.file("zoe.db"), env: { ZOE_CORS_ORIGINS: origin } });
      const main =
        'import { createRoot } from "react-dom/client";\nimport { LiveBadge } from "./LiveBadge";\n\ncreateRoot(document.getElementById("root")!).render(<LiveBadge mode="paper" />);\n';
      const project = templateProject(join(dir.path, "app"), { "src/main.tsx": main });
      // What Vite puts in import.meta.env for a build without VITE_SUPABASE_*.
      const env = {
        BASE_URL: "/",
        MODE: "production",
        DEV: false,
        PROD: true,
        SSR: false,
        VITE_LOCAL_API_URL: svc.url,
      };
      const built = await Bun.build({
        entrypoints: [join(project, "src", "main.tsx")],
        target: "browser",
        define: { "import.meta.env": JSON.stringify(env), "process.env.NODE_ENV": '"production"' },
      });
      if (!built.success) throw new AggregateError(built.logs, "the README's dashboard did not bundle");
      const js = await built.outputs[0]!.text();
      const html =
        '<!doctype html><html><body><div id="root"></div><script type="module" src="/app.js"></script></body></html>';
      site.reload({
        fetch: (req) =>
          new URL(req.url).pathname === "/app.js"
            ? new Response(js, { headers: { "content-type": "text/javascript" } })
            : new Response(html, { headers: { "content-type": "text/html" } }),
      });
      browser = await launchBrowser();
    });
    afterAll(async () => {
      await browser?.close();
      await site?.stop(true);
      if (svc?.proc.exitCode === null) await svc.kill();
      dir.cleanup();
    });

    test("shows LOCAL LIVE with the events posted to the box, and OFFLINE (not an exception) once the box is gone", async () => {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${site.port}/`);
      const badge = page.locator("#root span");
      const shows = async (text: string) => {
        try {
          await badge.filter({ hasText: text }).waitFor({ timeout: 15_000 });
        } catch (error) {
          throw new Error(
            `The badge never showed "${text}"; the page reported: ${browser.errors().join(" | ") || "nothing"}`,
            { cause: error },
          );
        }
      };
      await shows("● LOCAL LIVE");
      const res = await fetch(`${svc.url}/local/events`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ mode: "paper", source: "bot", type: "SIGNAL", subtype: "ENTRY", body: "RSI < 30" }),
      });
      expect(res.status).toBe(201);
      // The first seq of the box's range for this start (docs/flushing.md, "Seq ranges").
      const { seq } = (await res.json()) as { seq: number };
      await shows(`seq ${seq} · 1 events`);
      await svc.kill();
      await shows("○ OFFLINE · local API unreachable, Supabase not configured");
      expect(browser.errors().filter((e) => e.startsWith("pageerror"))).toEqual([]);
    });
  },
);
