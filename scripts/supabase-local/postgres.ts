// Postgres for the local Supabase-compatible stack: finds a server (the
// machine's 127.0.0.1:5432 with trust auth, or a throwaway cluster from
// Debian's binaries), creates a fresh database per stack, creates Supabase's
// roles the way Supabase does, and applies supabase/migrations.
import { SQL } from "bun";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { chownSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const MIGRATIONS_DIR = join(import.meta.dir, "..", "..", "supabase", "migrations");
const DEFAULT_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres";
const DB_PREFIX = "zoe_stack_";
/** Databases of crashed runs older than this are dropped when a new stack starts. */
const STALE_AFTER_S = 6 * 3600;

export interface PostgresServer {
  /** Superuser URL of the server's `postgres` database. */
  adminUrl: string;
  /** True when this process started the cluster (and stops it in stop()). */
  owned: boolean;
  stop(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function answers(url: string): Promise<boolean> {
  const sql = new SQL({ url, max: 1, connectionTimeout: 2, idleTimeout: 1 });
  try {
    await sql`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.close().catch(() => {});
  }
}

function freePort(): number {
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = server.port!;
  server.stop(true);
  return port;
}

function debianBinDir(): string | null {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, "bin", "initdb")))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length ? join(root, versions[0]!, "bin") : null;
}

async function run(cmd: string[], what: string): Promise<void> {
  const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (code !== 0) throw new Error(`${what} failed (exit ${code}): ${err || out}`);
}

// initdb refuses to run as root; Debian's package ships a `postgres` user.
function asPostgresUser(cmd: string[]): string[] {
  return process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--", ...cmd] : cmd;
}

async function startThrowawayCluster(): Promise<PostgresServer> {
  const bin = debianBinDir();
  if (!bin)
    throw new Error(
      "No PostgreSQL answers on 127.0.0.1:5432 and no /usr/lib/postgresql/*/bin/initdb to start one (apt-get install postgresql)",
    );
  const dir = mkdtempSync(join(tmpdir(), "zoe-pg-"));
  if (process.getuid?.() === 0) {
    const { uid, gid } = await uidOf("postgres");
    chownSync(dir, uid, gid);
  }
  const data = join(dir, "data");
  const port = freePort();
  await run(
    asPostgresUser([join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]),
    "initdb",
  );
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
  await run(
    asPostgresUser([join(bin, "pg_ctl"), "-D", data, "-o", opts, "-l", join(dir, "log"), "-w", "start"]),
    "pg_ctl start",
  );
  return {
    adminUrl: `postgres://postgres@127.0.0.1:${port}/postgres`,
    owned: true,
    async stop() {
      await run(
        asPostgresUser([join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"]),
        "pg_ctl stop",
      ).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function uidOf(user: string): Promise<{ uid: number; gid: number }> {
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${user}:`));
  if (!line) throw new Error(`No system user ${user} to run initdb as`);
  const [, , uid, gid] = line.split(":");
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * The machine's Postgres (ZOE_PG_ADMIN_URL, default 127.0.0.1:5432) when it
 * answers, else a throwaway cluster. ZOE_PG_THROWAWAY=1 forces the latter.
 */
export async function findPostgres(env: Record<string, string | undefined> = process.env): Promise<PostgresServer> {
  const adminUrl = env.ZOE_PG_ADMIN_URL || DEFAULT_ADMIN_URL;
  if (env.ZOE_PG_THROWAWAY !== "1" && (await answers(adminUrl)))
    return { adminUrl, owned: false, stop: async () => {} };
  return await startThrowawayCluster();
}

// Roles are cluster-wide and other stacks create them concurrently: serialise
// on an advisory lock and tolerate a racing creator.
const ROLES_SQL = `
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then create role anon nologin noinherit; end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then create role authenticated nologin noinherit; end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then create role service_role nologin noinherit bypassrls; end if;
end $$`;

async function ensureRoles(admin: SQL): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await admin.begin(async (tx) => {
        await tx`select pg_advisory_xact_lock(hashtext('zoe-local supabase roles'))`;
        await tx.unsafe(ROLES_SQL);
      });
      return;
    } catch (error) {
      const code = (error as { errno?: string }).errno;
      if (attempt < 3 && (code === "23505" || code === "42710")) continue;
      throw error;
    }
  }
}

// What a Supabase project has before any migration runs: schema grants and
// default privileges for the API roles, auth.* claim helpers for policies,
// and the CLI's migration history table.
const DATABASE_BOOTSTRAP_SQL = `
grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;
create or replace function auth.jwt() returns jsonb language sql stable as
  $f$ select coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb $f$;
create or replace function auth.role() returns text language sql stable as $f$ select auth.jwt() ->> 'role' $f$;
create or replace function auth.uid() returns uuid language sql stable as $f$ select nullif(auth.jwt() ->> 'sub', '')::uuid $f$;
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (version text primary key, statements text[], name text);
`;

export interface StackDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** Creates a uniquely named database with Supabase's roles and the repository's migrations applied. */
export async function createStackDatabase(adminUrl: string, migrationsDir = MIGRATIONS_DIR): Promise<StackDatabase> {
  const admin = new SQL({ url: adminUrl, max: 1 });
  const stamp = Math.floor(Date.now() / 1000);
  const name = `${DB_PREFIX}${stamp.toString(36)}_${process.pid}_${crypto.randomUUID().slice(0, 8)}`;
  try {
    await ensureRoles(admin);
    await dropStale(admin, stamp);
    await admin.unsafe(`create database "${name}" template template0`);
  } finally {
    await admin.close();
  }
  const url = withDatabase(adminUrl, name);
  const db = new SQL({ url, max: 1 });
  try {
    await db.unsafe(DATABASE_BOOTSTRAP_SQL);
    await applyMigrations(db, migrationsDir);
  } finally {
    await db.close();
  }
  return {
    name,
    url,
    async drop() {
      const sql = new SQL({ url: adminUrl, max: 1 });
      try {
        await sql.unsafe(`drop database if exists "${name}" with (force)`);
      } finally {
        await sql.close();
      }
    },
  };
}

async function dropStale(admin: SQL, now: number): Promise<void> {
  const rows: { datname: string }[] =
    await admin`select datname from pg_database where datname like ${`${DB_PREFIX}%`}`;
  for (const { datname } of rows) {
    const born = parseInt(datname.slice(DB_PREFIX.length).split("_")[0] ?? "", 36);
    if (Number.isFinite(born) && now - born > STALE_AFTER_S) {
      await admin.unsafe(`drop database if exists "${datname}" with (force)`).catch(() => {});
    }
  }
}

/** Applies `<version>_<name>.sql` files in order, each in its own transaction, recording them like the Supabase CLI. */
export async function applyMigrations(db: SQL, dir = MIGRATIONS_DIR): Promise<string[]> {
  const files = readdirSync(dir)
    .filter((f) => /^\d+_.*\.sql$/.test(f))
    .sort();
  const applied: string[] = [];
  for (const file of files) {
    const [, version, name] = /^(\d+)_(.*)\.sql$/.exec(file)!;
    const done = await db`select 1 from supabase_migrations.schema_migrations where version = ${version}`;
    if (done.length) continue;
    const text = readFileSync(join(dir, file), "utf8");
    try {
      await db.begin(async (tx) => {
        await tx.unsafe(text);
        await tx`insert into supabase_migrations.schema_migrations (version, name, statements) values (${version}, ${name}, array[${text}::text])`;
      });
    } catch (error) {
      throw new Error(`Migration ${file} failed: ${(error as Error).message}`, { cause: error });
    }
    applied.push(file);
  }
  return applied;
}
