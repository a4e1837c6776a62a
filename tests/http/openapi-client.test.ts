// Generated clients get named types: every JSON body of every route in the
// served OpenAPI document is a $ref to components.schemas, info.version is the
// package's, and the generated-client example in docs/http-api.md type-checks
// against what openapi-typescript makes of the document the service serves.
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { namedSchemas } from "../../src/http/openapi.ts";
import { tempDir } from "../helpers/tmp.ts";
import { type WiredApp, wiredApp } from "../helpers/wired-app.ts";

const ROOT = join(import.meta.dir, "..", "..");
const DOCS = readFileSync(join(ROOT, "docs", "http-api.md"), "utf8");
const PACKAGE = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };

type Schema = Record<string, unknown>;
type Doc = {
  info: { version: string };
  paths: Record<
    string,
    Record<
      string,
      {
        requestBody?: { content: Record<string, { schema: Schema }> };
        responses: Record<string, { content?: Record<string, { schema: Schema }> }>;
      }
    >
  >;
  components: { schemas: Record<string, Schema> };
};

let t: WiredApp | null = null;
const dir = tempDir("zoe-openapi-client-");
afterAll(async () => {
  await t?.close();
  dir.cleanup();
});
async function servedDocument(): Promise<Doc> {
  // Every route of src/main.ts, the operator and quarantine routes included.
  t ??= wiredApp({});
  const res = await t.handle("/docs/json");
  expect(res.status).toBe(200);
  return (await res.json()) as Doc;
}

/** The fenced block of `lang` right after the line that starts with `intro`. */
function snippetAfter(intro: string, lang: string): string {
  const at = DOCS.indexOf(`\n${intro}`);
  if (at < 0) throw new Error(`docs/http-api.md has no paragraph starting "${intro}"`);
  const m = new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``).exec(DOCS.slice(at));
  if (!m) throw new Error(`docs/http-api.md has no ${lang} block after "${intro}"`);
  return m[1]!;
}

function run(cmd: string[]) {
  const r = Bun.spawnSync(cmd, {
    cwd: dir.path,
    stdout: "pipe",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "" },
  });
  return { code: r.exitCode, out: `${r.stdout.toString()}${r.stderr.toString()}` };
}

describe("the OpenAPI document for generated clients", () => {
  test("every JSON body of every route is a $ref to a named schema, and every $ref resolves", async () => {
    const doc = await servedDocument();
    const schemas = doc.components.schemas;
    expect(Object.keys(schemas)).toEqual(expect.arrayContaining(["Event", "StoredEvent", "Ack", "Error"]));
    expect(Object.keys(schemas).sort()).toEqual(Object.keys(namedSchemas).sort());
    const bodies: string[] = [];
    const unnamed: string[] = [];
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const contents = [
          ["request", op.requestBody?.content],
          ...Object.entries(op.responses).map(([status, r]) => [status, r.content]),
        ] as [string, Record<string, { schema: Schema }> | undefined][];
        for (const [what, content] of contents) {
          const schema = content?.["application/json"]?.schema;
          if (!schema) continue;
          const where = `${method.toUpperCase()} ${path} ${what}`;
          bodies.push(where);
          const ref = (schema.$ref ?? (schema.items as Schema | undefined)?.$ref) as string | undefined;
          if (ref === undefined || !(ref.replace("#/components/schemas/", "") in schemas)) unnamed.push(where);
        }
      }
    }
    expect(bodies.length).toBeGreaterThan(50);
    expect(unnamed).toEqual([]);
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.filter((name) => !(name in schemas))).toEqual([]);
    // Named schemas refer to each other too: a stored event inside a quarantine entry is a StoredEvent.
    expect(JSON.stringify(schemas.QuarantineEntry)).toContain('"$ref":"#/components/schemas/StoredEvent"');
  });

  test("info.version is package.json's version", async () => {
    expect((await servedDocument()).info.version).toBe(PACKAGE.version);
  });

  test("the generated-client example in docs/http-api.md type-checks against openapi-typescript's output", async () => {
    writeFileSync(dir.file("zoe-local.openapi.json"), JSON.stringify(await servedDocument()));
    const gen = run([
      process.execPath,
      "--preload",
      join(ROOT, "tests", "helpers", "typescript5-shim.ts"),
      join(ROOT, "node_modules", "openapi-typescript", "bin", "cli.js"),
      "zoe-local.openapi.json",
      "-o",
      "zoe-local.d.ts",
    ]);
    expect({ code: gen.code, out: gen.code === 0 ? "" : gen.out }).toEqual({ code: 0, out: "" });
    const generated = readFileSync(dir.file("zoe-local.d.ts"), "utf8");
    for (const name of ["Event", "StoredEvent", "Ack", "Error"]) expect(generated).toContain(`        ${name}: {`);

    const example = snippetAfter("Generated-client example", "ts");
    expect(example).toContain('from "./zoe-local"');
    writeFileSync(
      dir.file("tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "ESNext",
          moduleResolution: "bundler",
          lib: ["ES2022", "DOM", "DOM.Iterable"],
          types: [],
          strict: true,
          noUncheckedIndexedAccess: true,
          noEmit: true,
        },
        files: ["zoe-client.ts"],
      }),
    );
    const tsc = [join(ROOT, "node_modules", ".bin", "tsc"), "-p", "tsconfig.json", "--pretty", "false"];
    writeFileSync(dir.file("zoe-client.ts"), example);
    const checked = run(tsc);
    expect({ code: checked.code, out: checked.out }).toEqual({ code: 0, out: "" });

    // The check can fail: a field the Event schema does not have is an error.
    writeFileSync(dir.file("zoe-client.ts"), example.replace('body: "RSI < 30"', 'body: "RSI < 30", price: 1'));
    const wrong = run(tsc);
    expect(wrong.code).not.toBe(0);
    expect(wrong.out).toContain("price");
  });
});
