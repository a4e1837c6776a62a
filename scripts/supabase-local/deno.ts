// Deno for the local stack and the tests: which binary, with which
// environment, and a function's npm dependencies fetched once up front. A
// registry Deno cannot reach or does not trust is then one error that names
// the package and the cause, instead of a function that dies before it
// listens in every test file.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

export const REPO_ROOT = join(import.meta.dir, "..", "..");
export const FUNCTIONS_DIR = join(REPO_ROOT, "supabase", "functions");

/**
 * The real Deno executable. node_modules/.bin/deno is a Node wrapper that
 * spawnSync()s it and does not forward signals, so killing the wrapper would
 * orphan the server: use the binary the npm package installs (or its
 * platform package), and the wrapper only as a last resort.
 */
export function denoBinary(): string {
  const nm = join(REPO_ROOT, "node_modules");
  const candidates = [join(nm, "deno", "deno")];
  if (existsSync(join(nm, "@deno"))) {
    for (const dir of readdirSync(join(nm, "@deno"))) candidates.push(join(nm, "@deno", dir, "deno"));
  }
  return candidates.find((c) => existsSync(c)) ?? join(nm, ".bin", "deno");
}

/**
 * What Deno needs from the user's environment to reach a registry: the CA
 * bundle and trust store, proxies, a registry mirror, and where its cache is.
 * Nothing else is passed (the function must not see the test runner's secrets).
 */
export const DENO_PASSED_VARIABLES = [
  "DENO_DIR",
  "XDG_CACHE_HOME",
  "DENO_CERT",
  "DENO_TLS_CA_STORE",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
  "HTTPS_PROXY",
  "HTTP_PROXY",
  "ALL_PROXY",
  "NO_PROXY",
  "https_proxy",
  "http_proxy",
  "all_proxy",
  "no_proxy",
  "NPM_CONFIG_REGISTRY",
  "npm_config_registry",
] as const;

// Where rustls-native-certs (Deno's "system" store on Linux) finds the OS bundle.
const SYSTEM_BUNDLES = [
  "/etc/ssl/certs/ca-certificates.crt",
  "/etc/pki/tls/certs/ca-bundle.crt",
  "/etc/ssl/ca-bundle.pem",
  "/etc/pki/tls/cacert.pem",
  "/etc/ssl/cert.pem",
];

/**
 * True when Deno's "system" CA store would load. On Linux it reads
 * SSL_CERT_FILE / SSL_CERT_DIR when set, else the distribution's bundle; a
 * store that cannot be read makes every download fail, so it is only added
 * when there is one.
 */
export function systemCaStoreAvailable(
  env: Record<string, string | undefined>,
  platform: string = process.platform,
): boolean {
  if (platform === "darwin" || platform === "win32") return true;
  if (env.SSL_CERT_FILE) return existsSync(env.SSL_CERT_FILE);
  if (env.SSL_CERT_DIR) return existsSync(env.SSL_CERT_DIR);
  return SYSTEM_BUNDLES.some((path) => existsSync(path));
}

/**
 * The environment every Deno process of the stack and the tests runs with.
 * Deno trusts only its bundled Mozilla roots by default and ignores
 * SSL_CERT_FILE, so behind a company proxy (a CA only the OS trusts) it
 * cannot fetch npm packages that curl, git and npm fetch fine. Unless the user
 * chose a store, it trusts the OS store as well, as its own hint suggests.
 */
export function denoEnv(env: Record<string, string | undefined> = process.env): Record<string, string> {
  const out: Record<string, string> = {
    PATH: env.PATH ?? "",
    HOME: env.HOME ?? "/tmp",
    NO_COLOR: "1",
    DENO_NO_UPDATE_CHECK: "1",
  };
  for (const name of DENO_PASSED_VARIABLES) {
    const value = env[name];
    if (value) out[name] = value;
  }
  if (!env.DENO_TLS_CA_STORE && systemCaStoreAvailable(env)) out.DENO_TLS_CA_STORE = "mozilla,system";
  return out;
}

export class DenoDependencyError extends Error {
  readonly code = "deno_dependencies_unavailable";
  readonly status = 503;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DenoDependencyError";
  }
}

/** What to do about the most common causes, from the innermost error Deno printed. */
function hintFor(reason: string, env: Record<string, string>): string {
  if (/certificate|UnknownIssuer|tls|ssl/i.test(reason)) {
    const store = env.DENO_TLS_CA_STORE ?? "mozilla";
    if (!store.includes("system") && env.SSL_CERT_FILE) {
      return `Deno does not trust the registry's TLS certificate and ignores SSL_CERT_FILE with DENO_TLS_CA_STORE=${store}: set DENO_TLS_CA_STORE=mozilla,system, or DENO_CERT to the CA bundle that signs it`;
    }
    return "Deno does not trust the registry's TLS certificate: set SSL_CERT_FILE (or DENO_CERT) to the CA bundle that signs it, or DENO_TLS_CA_STORE=system";
  }
  if (/dns error|failed to lookup|connection refused|timed out|unreachable|tcp connect|proxy/i.test(reason)) {
    return "the registry is unreachable: check the network, set HTTPS_PROXY (and NO_PROXY) for a proxy, or NPM_CONFIG_REGISTRY for a mirror";
  }
  if (/\b40[134]\b/.test(reason))
    return "the registry refused the download: check NPM_CONFIG_REGISTRY and its credentials (~/.npmrc)";
  return "see Deno's output below";
}

/** Turns `deno install`'s output into one sentence: what could not be fetched, why, and what to do. */
export function describeDependencyFailure(name: string, output: string, env: Record<string, string>): string {
  const prefix = `Cannot fetch the Edge Function ${name}'s dependencies`;
  if (/lockfile is out of date/i.test(output)) {
    return `${prefix}: deno.lock does not match deno.json — run \`deno install\` in supabase/functions/${name} and commit deno.lock`;
  }
  const packages = [
    ...new Set([...output.matchAll(/Failed caching npm package '([^']+)'/g)].map((m) => `npm:${m[1]}`)),
  ];
  const urls = [...new Set([...output.matchAll(/error sending request for url \(([^)]+)\)/g)].map((m) => m[1]!))];
  const what =
    packages.length > 0 ? packages.join(", ") : urls.length > 0 ? urls.join(", ") : "see Deno's output below";
  // Deno prints the cause chain as "    0: …", "    1: …"; the last link is the root cause.
  const chain = [...output.matchAll(/^\s*\d+: (.+)$/gm)].map((m) => m[1]!.trim());
  const reason =
    chain.at(-1) ??
    output
      .split("\n")
      .find((l) => /error/i.test(l))
      ?.trim() ??
    "deno install failed";
  const used = [`DENO_TLS_CA_STORE=${env.DENO_TLS_CA_STORE ?? "mozilla"}`];
  if (env.SSL_CERT_FILE) used.push(`SSL_CERT_FILE=${env.SSL_CERT_FILE}`);
  if (env.DENO_CERT) used.push(`DENO_CERT=${env.DENO_CERT}`);
  if (env.HTTPS_PROXY || env.https_proxy) used.push("HTTPS_PROXY set");
  return `${prefix} (${what}): ${reason} — ${hintFor(reason, env)} (Deno ran with ${used.join(", ")})`;
}

export interface FetchDependenciesOptions {
  /** Environment Deno runs with (default: denoEnv()). */
  env?: Record<string, string>;
  signal?: AbortSignal;
  /** Gives up after this long (default 120 s): a proxy that swallows connections must not hang a test run. */
  timeoutMs?: number;
}

/**
 * `deno install --frozen` for supabase/functions/<name>: fills Deno's cache
 * with the function's module graph and npm packages, exactly as deno.lock
 * pins them. Throws DenoDependencyError naming what could not be fetched.
 */
export async function fetchFunctionDependencies(name: string, options: FetchDependenciesOptions = {}): Promise<void> {
  const dir = join(FUNCTIONS_DIR, name);
  const env = options.env ?? denoEnv();
  const args = [
    "install",
    "--frozen",
    `--config=${join(dir, "deno.json")}`,
    "--entrypoint",
    join(dir, "index.ts"),
    join(import.meta.dir, "function-host.ts"),
  ];
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 120_000);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const proc = Bun.spawn([denoBinary(), ...args], {
    cwd: dir,
    env,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    signal,
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  const output = `${stdout}${stderr}`.trim();
  if (code === 0) return;
  if (timeout.aborted) {
    throw new DenoDependencyError(
      `Cannot fetch the Edge Function ${name}'s dependencies: deno install did not finish within ${options.timeoutMs ?? 120_000} ms — ${hintFor("timed out", env)}`,
    );
  }
  if (options.signal?.aborted)
    throw new DenoDependencyError(`Fetching the Edge Function ${name}'s dependencies was cancelled`, {
      cause: options.signal.reason,
    });
  const tail = output.split("\n").slice(-20).join("\n  ");
  throw new DenoDependencyError(
    `${describeDependencyFailure(name, output, env)}\ndeno ${args.join(" ")} exited with ${code}:\n  ${tail}`,
  );
}

const fetched = new Map<string, Promise<void>>();

/**
 * fetchFunctionDependencies() once per process and environment: every stack a
 * test run starts after the first finds the cache filled (or fails at once
 * with the same error, instead of downloading again per test file).
 */
export function ensureFunctionDependencies(name: string, env: Record<string, string> = denoEnv()): Promise<void> {
  const key = JSON.stringify([name, env]);
  let pending = fetched.get(key);
  if (!pending) {
    pending = fetchFunctionDependencies(name, { env });
    fetched.set(key, pending);
  }
  return pending;
}
