// @zoe-local/react (clients/react/, built from src/client/) and the docs' React
// snippet as a new user puts them into a project from `npm create vite@latest
// -- --template react-ts`: the package installed from the tarball `npm pack`
// makes, the snippet type-checked under the template's tsconfig.app.json
// unchanged and lint-clean under the template's oxlint, and a dashboard built
// from them with no Supabase settings must run LOCAL only in a real browser
// instead of throwing at import.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { chromiumAvailable, launchBrowser, type TestBrowser } from "../helpers/browser.ts";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { tempDir } from "../helpers/tmp.ts";

const ROOT = join(import.meta.dir, "..", "..");
const TEMPLATE = join(ROOT, "tests", "fixtures", "vite-react-ts");
const PACKAGE = join(ROOT, "clients", "react");
const PACKAGE_JSON = JSON.parse(readFileSync(join(PACKAGE, "package.json"), "utf8")) as {
  name: string;
  version: string;
};

/** The code blocks of docs/dashboard.md's "Embed the hook" section, keyed by the path their first line names. */
function readmeSnippets(): Map<string, string> {
  const readme = readFileSync(join(ROOT, "docs", "dashboard.md"), "utf8");
  const start = readme.indexOf("### Embed the hook in a React/Vite dashboard");
  const section = readme.slice(start, readme.indexOf("\n### ", start + 10));
  const files = new Map<string, string>();
  for (const m of section.matchAll(/```tsx?\n(\/\/ (src\/\S+)[^\n]*\n[\s\S]*?)```/g)) files.set(m[2]!, m[1]!);
  return files;
}

function run(cmd: string[], cwd: string): { code: number; out: string; stdout: string } {
  const r = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
  return { code: r.exitCode, out: `${r.stdout}${r.stderr}`.trim(), stdout: String(r.stdout) };
}

const packDir = tempDir("zoe-pack-");
let tarball = "";
/** `npm pack` of clients/react/ (its prepack builds dist/ first), once for the file. */
function packed(): string {
  if (tarball) return tarball;
  const r = run(["npm", "pack", "--json", "--pack-destination", packDir.path], PACKAGE);
  if (r.code !== 0) throw new Error(`npm pack failed: ${r.out}`);
  const info = JSON.parse(r.stdout) as { filename: string; files: { path: string }[] }[];
  tarball = join(packDir.path, info[0]!.filename);
  return tarball;
}
afterAll(() => packDir.cleanup());

/**
 * A react-ts template project: its tsconfig.app.json, .oxlintrc.json and
 * .gitignore, @zoe-local/react installed by npm from the packed tarball as
 * the docs say, the docs' files, and node_modules holding this repository's
 * libraries (react, supabase-js, their types) plus vite's client declarations.
 */
function templateProject(dir: string, extra: Record<string, string> = {}): string {
  mkdirSync(dir, { recursive: true });
  cpSync(join(TEMPLATE, "tsconfig.app.json"), join(dir, "tsconfig.app.json"));
  cpSync(join(TEMPLATE, "_oxlintrc.json"), join(dir, ".oxlintrc.json"));
  cpSync(join(TEMPLATE, "_gitignore"), join(dir, ".gitignore"));
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
  // npm runs before any link to the repository's node_modules exists: it prunes what it did not install.
  const install = run(
    ["npm", "install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", "--no-package-lock", packed()],
    dir,
  );
  if (install.code !== 0) throw new Error(`npm install of the tarball failed: ${install.out}`);
  const nm = join(dir, "node_modules");
  for (const entry of readdirSync(join(ROOT, "node_modules"))) {
    if (entry.startsWith(".") || existsSync(join(nm, entry))) continue;
    symlinkSync(join(ROOT, "node_modules", entry), join(nm, entry));
  }
  cpSync(join(TEMPLATE, "vite"), join(nm, "vite"), { recursive: true });
  for (const [path, code] of [...readmeSnippets(), ...Object.entries(extra)]) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), code);
  }
  return dir;
}

function runOut(cmd: string[], cwd: string): { code: number; out: string } {
  const { code, out } = run(cmd, cwd);
  return { code, out };
}

/** The template's `npm run lint`: oxlint with its .oxlintrc.json, from the project's root. */
function oxlint(dir: string, ...paths: string[]): { code: number; out: string } {
  return runOut([join(ROOT, "node_modules", ".bin", "oxlint"), ...paths], dir);
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

  test("npm pack ships the built package: ESM, declarations, README and CHANGELOG with this version", () => {
    const dir = tempDir("zoe-vite-pack-");
    try {
      const project = templateProject(dir.path);
      const installed = join(project, "node_modules", ...PACKAGE_JSON.name.split("/"));
      const meta = JSON.parse(readFileSync(join(installed, "package.json"), "utf8"));
      expect(meta.version).toBe(PACKAGE_JSON.version);
      for (const file of ["dist/index.js", "dist/index.d.ts", "dist/core.js", "dist/core.d.ts", "README.md"])
        expect(existsSync(join(installed, file))).toBe(true);
      expect(readFileSync(join(installed, "CHANGELOG.md"), "utf8")).toContain(`## ${PACKAGE_JSON.version}`);
      // The app brings react and supabase-js; the package neither bundles nor installs them.
      const js = readFileSync(join(installed, "dist", "index.js"), "utf8");
      expect(js).toContain('from "react"');
      expect(js).not.toContain("react.production");
      expect(existsSync(join(installed, "node_modules"))).toBe(false);
    } finally {
      dir.cleanup();
    }
  });

  test("the installed package and README's hook snippet type-check under the template's tsconfig.app.json unchanged", () => {
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

  test("the package names a stored event StoredEvent, as the service's OpenAPI document does; ZoeEvent is gone", () => {
    const dir = tempDir("zoe-vite-tsc-");
    try {
      const uses =
        'import type { StoredEvent } from "@zoe-local/react";\nimport type { StoredEvent as CoreEvent } from "@zoe-local/react/core";\n' +
        'export const fills = (es: readonly StoredEvent[]): CoreEvent[] => es.filter((e) => e.subtype === "BUY_FILLED");\n';
      const old = 'import type { ZoeEvent } from "@zoe-local/react";\nexport type Old = ZoeEvent;\n';
      const { code, out } = typecheck(
        templateProject(dir.path, { "src/stored-event.ts": uses, "src/old-name.ts": old }),
      );
      expect(code).not.toBe(0);
      const errors = out.split("\n").filter((line) => line.includes("error TS"));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toContain("src/old-name.ts");
      expect(errors[0]).toContain("ZoeEvent");
    } finally {
      dir.cleanup();
    }
  });

  test("the template's oxlint finds nothing in the app, nor in the package's source (src/client/)", () => {
    const range = JSON.parse(readFileSync(join(TEMPLATE, "template-package.json"), "utf8")).devDependencies.oxlint;
    const ours = JSON.parse(readFileSync(join(ROOT, "node_modules", "oxlint", "package.json"), "utf8")).version;
    expect(Bun.semver.satisfies(ours, range)).toBe(true);
    const dir = tempDir("zoe-vite-lint-");
    try {
      const project = templateProject(dir.path);
      const app = oxlint(project);
      expect(app.out).toContain("Found 0 warnings and 0 errors");
      expect(app.code).toBe(0);
      // It did lint the app's two files (node_modules is in the template's .gitignore).
      expect(app.out).toMatch(/on 2 files/);
      cpSync(join(ROOT, "src", "client"), join(project, "client-src"), { recursive: true });
      const own = oxlint(project, "client-src");
      expect(own.out).toContain("Found 0 warnings and 0 errors");
      expect(own.code).toBe(0);
      expect(own.out).toMatch(
        new RegExp(`on ${readdirSync(join(ROOT, "src", "client")).filter((f) => f.endsWith(".ts")).length} files`),
      );
    } finally {
      dir.cleanup();
    }
  });

  test("the template's oxlint does see what the package avoids: a ref read during render", () => {
    const dir = tempDir("zoe-vite-lint-");
    try {
      const probe =
        'import { useRef } from "react";\nexport function useProbe(v: number) {\n  const r = useRef(v);\n  r.current = v;\n  return r.current;\n}\n';
      const project = templateProject(dir.path, { "src/probe.ts": probe });
      expect(oxlint(project).out).toContain("react(refs)");
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
