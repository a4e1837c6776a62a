// What the Supabase CLI (3.x, the pinned devDependency) is told by the repo:
// docs/flushing.md's `db push` runs as written without a terminal against a
// real Postgres, config.toml names the function's entrypoint and import map,
// and the state the CLI leaves in supabase/ stays out of git.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { SQL } from "bun";
import {
  createStackDatabase,
  findPostgres,
  type PostgresServer,
  type StackDatabase,
} from "../../scripts/supabase-local/postgres.ts";
import { tempDir } from "../helpers/tmp.ts";

const ROOT = join(import.meta.dir, "..", "..");
const SUPABASE = join(ROOT, "supabase");
const CLI = join(ROOT, "node_modules", ".bin", "supabase");
const FLUSHING = readFileSync(join(ROOT, "docs", "flushing.md"), "utf8");
const dir = tempDir("zoe-supabase-cli-");
let pg: PostgresServer;
let db: StackDatabase;

beforeAll(async () => {
  pg = await findPostgres();
  // Supabase's roles and grants, but no migration yet: what a fresh project has.
  const none = dir.file("no-migrations");
  mkdirSync(none);
  db = await createStackDatabase(pg.adminUrl, none);
}, 60_000);
afterAll(async () => {
  await db?.drop();
  await pg?.stop();
  dir.cleanup();
});

/** Runs the CLI as a script would: no terminal, in a copy of supabase/ so its .temp/ lands there. */
function supabase(args: string[]) {
  const workdir = dir.file("project");
  if (!existsSync(workdir)) cpSync(SUPABASE, join(workdir, "supabase"), { recursive: true });
  const r = Bun.spawnSync([CLI, ...args, "--workdir", workdir], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "", HOME: dir.path, DO_NOT_TRACK: "1" },
  });
  return { code: r.exitCode, out: `${r.stdout.toString()}${r.stderr.toString()}`, workdir };
}

/** The docs' `db push` with a database URL, with the URL of the test database. */
function documentedPush(): string[] {
  const line = FLUSHING.split("\n").find((l) => /^npx supabase db push --remote="\$SUPABASE_DB_URL"/.test(l));
  if (!line) throw new Error('docs/flushing.md has no `npx supabase db push --remote="$SUPABASE_DB_URL"` line');
  return line
    .replace(/#.*$/, "")
    .trim()
    .split(/\s+/)
    .slice(2)
    .map((a) => a.replace('"$SUPABASE_DB_URL"', db.url));
}

describe("the Supabase CLI", () => {
  test("the docs name the CLI 3 commands: db push --remote --yes, no --db-url; deploy and secrets with --yes", () => {
    expect(FLUSHING).not.toContain("--db-url ");
    expect(FLUSHING).toContain("npx supabase db push --remote --yes");
    expect(FLUSHING).toMatch(/npx supabase functions deploy zoe-ingest --use-api --yes/);
    for (const m of FLUSHING.matchAll(/npx supabase (db push|functions deploy|secrets set)[^`\n]*/g))
      expect({ command: m[0], yes: m[0].includes("--yes") }).toEqual({ command: m[0], yes: true });
    expect(Bun.spawnSync([CLI, "--version"]).stdout.toString().trim()).toMatch(/^3\./);
  });

  test("docs/flushing.md's db push applies the migrations without a terminal; run again, it is up to date", async () => {
    const first = supabase(documentedPush());
    expect({
      code: first.code,
      applied: /Applying migration 20261125000000_zoe_remote_schema\.sql/.test(first.out),
    }).toEqual({
      code: 0,
      applied: true,
    });
    const sql = new SQL({ url: db.url, max: 1 });
    try {
      const tables =
        await sql`select table_name from information_schema.tables where table_schema = 'public' and table_name like 'zoe_%' order by 1`;
      expect(tables.map((t: { table_name: string }) => t.table_name)).toEqual([
        "zoe_events",
        "zoe_health",
        "zoe_state",
      ]);
      const versions = await sql`select version from supabase_migrations.schema_migrations`;
      const files = readdirSync(join(ROOT, "supabase", "migrations"))
        .filter((f) => f.endsWith(".sql"))
        .map((f) => f.split("_")[0])
        .sort();
      expect(versions.map((v: { version: string }) => v.version).sort()).toEqual(files);
    } finally {
      await sql.close();
    }
    const again = supabase(documentedPush());
    expect({ code: again.code, upToDate: /up to date/i.test(again.out) }).toEqual({ code: 0, upToDate: true });
    // What it leaves behind is what supabase/.gitignore ignores.
    expect(existsSync(join(again.workdir, "supabase", ".temp"))).toBe(true);
  }, 120_000);

  test("without --yes and without a terminal it changes nothing (why the docs pass --yes)", async () => {
    const fresh = await createStackDatabase(pg.adminUrl, dir.file("no-migrations"));
    try {
      const r = supabase(["db", "push", `--remote=${fresh.url}`]);
      expect(r.out).toContain("Nothing was changed");
      const sql = new SQL({ url: fresh.url, max: 1 });
      try {
        expect(await sql`select count(*)::int as n from supabase_migrations.schema_migrations`).toEqual([{ n: 0 }]);
      } finally {
        await sql.close();
      }
    } finally {
      await fresh.drop();
    }
  }, 120_000);

  test("supabase/.gitignore keeps the CLI's .temp/ and .branches/ out of git, as `supabase init` writes it", () => {
    for (const path of [
      "supabase/.temp/cli-latest",
      "supabase/.temp/project-ref",
      "supabase/.branches/_current_branch",
    ]) {
      const r = Bun.spawnSync(["git", "check-ignore", "-q", path], { cwd: ROOT });
      expect({ path, ignored: r.exitCode === 0 }).toEqual({ path, ignored: true });
    }
    const kept = Bun.spawnSync(["git", "check-ignore", "-q", "supabase/config.toml"], { cwd: ROOT });
    expect(kept.exitCode).toBe(1);
  });

  test("config.toml names zoe-ingest's entrypoint and import map, and both exist", () => {
    const config = Bun.TOML.parse(readFileSync(join(SUPABASE, "config.toml"), "utf8")) as {
      functions: Record<string, { entrypoint?: string; import_map?: string; verify_jwt?: boolean }>;
    };
    const fn = config.functions["zoe-ingest"]!;
    expect(fn).toMatchObject({
      verify_jwt: true,
      entrypoint: "./functions/zoe-ingest/index.ts",
      import_map: "./functions/zoe-ingest/deno.json",
    });
    expect(existsSync(join(SUPABASE, fn.entrypoint!))).toBe(true);
    expect(existsSync(join(SUPABASE, fn.import_map!))).toBe(true);
  });
});
