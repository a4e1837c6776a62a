// The examples a new user copies from docs/http-api.md, run as written against the real service.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { denoBinary, denoEnv } from "../scripts/supabase-local/deno.ts";
import { type ServiceProcess, startService } from "./helpers/service.ts";
import { tempDir } from "./helpers/tmp.ts";

// The examples' idempotency keys are fixed, so every run below after the first is a duplicate of seq 1.
const README = readFileSync(join(import.meta.dir, "..", "docs", "http-api.md"), "utf8");

/** The first fenced block of `lang` after the line that starts with `intro`. */
function snippetAfter(intro: string, lang: string): string {
  const at = README.indexOf(`\n${intro}`);
  if (at < 0) throw new Error(`README has no paragraph starting "${intro}"`);
  const m = new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``).exec(README.slice(at));
  if (!m) throw new Error(`README has no ${lang} block after "${intro}"`);
  return m[1]!;
}

describe("README's TypeScript example", () => {
  const TOKEN = "readme-example-token-0123456789";
  const dir = tempDir("zoe-readme-ts-");
  let svc: ServiceProcess;
  const code = snippetAfter("TypeScript (plain `fetch`", "ts");
  writeFileSync(dir.file("post-event.ts"), code);
  const env = () => ({
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "/tmp",
    ZOE_URL: svc.url,
    ZOE_API_TOKEN: TOKEN,
  });
  const run = (cmd: string[], extraEnv: Record<string, string> = {}) => {
    const r = Bun.spawnSync(cmd, { cwd: dir.path, env: { ...env(), ...extraEnv }, stdout: "pipe", stderr: "pipe" });
    return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
  };

  beforeAll(async () => {
    svc = await startService({ dbPath: dir.file("zoe.db"), env: { ZOE_API_TOKEN: TOKEN } });
  });
  afterAll(async () => {
    if (svc?.proc.exitCode === null) await svc.kill();
    dir.cleanup();
  });

  test("names the runtimes it was run with, and Node 20 is not one of them for the .ts file", () => {
    const intro = README.slice(
      README.indexOf("\nTypeScript (plain `fetch`"),
      README.indexOf("```ts", README.indexOf("\nTypeScript (plain `fetch`")),
    );
    expect(intro).toContain("`bun post-event.ts`");
    expect(intro).toContain("`deno run --allow-net --allow-env post-event.ts`");
    expect(intro).not.toMatch(/works in .*Node 18\+/);
  });

  test("`bun post-event.ts` stores the event with the token from the environment and lists it; run again, it is a duplicate", () => {
    const first = run(["bun", "post-event.ts"]);
    expect({ code: first.code, err: first.err }).toEqual({ code: 0, err: "" });
    // The store's first seq of this start (a range: docs/flushing.md, "Seq ranges").
    const seq = /seq: (\d+)/.exec(first.out)?.[1];
    expect(seq).toBeDefined();
    expect(first.out).toContain('idempotency_key: "sig-1"');
    expect(first.out).toContain(`${seq} RSI < 30`);
    const again = run(["bun", "post-event.ts"]);
    expect(again.out).toContain("duplicate: true");
    expect(again.out).toContain(`seq: ${seq}`);
  });

  test("`deno run --allow-net --allow-env post-event.ts` runs it too", () => {
    const r = run([denoBinary(), "run", "--allow-net", "--allow-env", "post-event.ts"], {
      ...denoEnv(),
      NO_COLOR: "1",
    });
    expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: "" });
    const seq = /seq: (\d+)/.exec(r.out)?.[1];
    expect(r.out).toContain(`${seq} RSI < 30`);
  });

  test.skipIf(Bun.which("node") === null)(
    "with the type annotations dropped it runs in plain Node as a .mjs file",
    () => {
      writeFileSync(dir.file("post-event.mjs"), new Bun.Transpiler({ loader: "ts" }).transformSync(code));
      const r = run(["node", "post-event.mjs"]);
      expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: "" });
      const seq = /seq: (\d+)/.exec(r.out)?.[1];
      expect(r.out).toContain(`${seq} RSI < 30`);
    },
  );

  test("a wrong token fails loudly with the API's error code", () => {
    const r = run(["bun", "post-event.ts"], { ZOE_API_TOKEN: "wrong-token-0123456789abcdef" });
    expect(r.code).not.toBe(0);
    expect(r.err).toContain("401 unauthorized");
  });
});
