// Deno's environment and the up-front fetch of the Edge Function's npm
// packages (scripts/supabase-local/deno.ts), on an empty Deno cache, against
// a real HTTPS registry whose certificate only a private CA signs: what a
// machine behind a company proxy sees.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  DenoDependencyError,
  denoEnv,
  fetchFunctionDependencies,
  systemCaStoreAvailable,
} from "../../scripts/supabase-local/deno.ts";
import { tempDir } from "../helpers/tmp.ts";

describe("denoEnv()", () => {
  test("passes the TLS, proxy, registry and cache variables to Deno and nothing else", () => {
    // What Deno needs to reach a registry through a proxy and trust its certificate.
    const passed = {
      PATH: "/usr/bin",
      HOME: "/home/u",
      DENO_DIR: "/cache/deno",
      SSL_CERT_FILE: "/etc/ssl/certs/ca-certificates.crt",
      SSL_CERT_DIR: "/etc/ssl/certs",
      DENO_CERT: "/etc/corp-ca.pem",
      DENO_TLS_CA_STORE: "mozilla",
      HTTPS_PROXY: "http://proxy:3128",
      https_proxy: "http://proxy:3128",
      HTTP_PROXY: "http://proxy:3128",
      http_proxy: "http://proxy:3128",
      NO_PROXY: "localhost,127.0.0.1",
      no_proxy: "localhost,127.0.0.1",
      ALL_PROXY: "socks5://proxy:1080",
      NPM_CONFIG_REGISTRY: "https://npm.mirror.example/",
    };
    const env = denoEnv({
      ...passed,
      SUPABASE_SERVICE_ROLE_KEY: "must-not-leak",
      ZOE_API_TOKEN: "must-not-leak-either",
    });
    expect(env).toEqual({ ...passed, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" });
  });

  test("trusts the OS store as well as Deno's own unless the user chose a store, and only when the OS store can be read", () => {
    const dir = tempDir("zoe-deno-env-");
    try {
      writeFileSync(dir.file("bundle.pem"), "");
      expect(denoEnv({ SSL_CERT_FILE: dir.file("bundle.pem") }).DENO_TLS_CA_STORE).toBe("mozilla,system");
      expect(denoEnv({ SSL_CERT_FILE: dir.file("bundle.pem"), DENO_TLS_CA_STORE: "system" }).DENO_TLS_CA_STORE).toBe(
        "system",
      );
      // Deno fails every download when the system store it was told to load is missing.
      expect(denoEnv({ SSL_CERT_FILE: dir.file("missing.pem") }).DENO_TLS_CA_STORE).toBeUndefined();
      expect(systemCaStoreAvailable({ SSL_CERT_DIR: dir.file("missing") }, "linux")).toBe(false);
      expect(systemCaStoreAvailable({}, "darwin")).toBe(true);
    } finally {
      dir.cleanup();
    }
  });
});

/** A CA and a certificate for 127.0.0.1 signed by it, made with openssl. */
function privateCa(dir: ReturnType<typeof tempDir>) {
  const run = (args: string[]) => {
    const r = Bun.spawnSync(["openssl", ...args], { cwd: dir.path, stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr.toString()}`);
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  run([
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=zoe test private CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  run(["req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
  writeFileSync(
    dir.file("server.ext"),
    "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
  );
  run([
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.pem",
    "-days",
    "2",
    "-extfile",
    "server.ext",
  ]);
  return {
    ca: dir.file("ca.pem"),
    cert: readFileSync(dir.file("server.pem"), "utf8"),
    key: readFileSync(dir.file("server.key"), "utf8"),
  };
}

const UPSTREAM = "https://registry.npmjs.org/";

describe("fetchFunctionDependencies() on an empty cache, from a registry only a private CA vouches for", () => {
  const dir = tempDir("zoe-deno-registry-");
  let registry: ReturnType<typeof Bun.serve>;
  let ca: string;
  const requested: string[] = [];

  beforeAll(async () => {
    const tls = privateCa(dir);
    ca = tls.ca;
    // A mirror of the npm registry (as a company proxy would be): packuments
    // are rewritten so the tarballs are fetched from it too.
    registry = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert: tls.cert, key: tls.key },
      async fetch(req) {
        const path = new URL(req.url).pathname;
        requested.push(path);
        const upstream = await fetch(`${UPSTREAM}${path.slice(1)}`, {
          headers: { accept: req.headers.get("accept") ?? "application/json" },
        });
        const type = upstream.headers.get("content-type") ?? "application/octet-stream";
        if (!type.includes("json"))
          return new Response(await upstream.arrayBuffer(), {
            status: upstream.status,
            headers: { "content-type": type },
          });
        const body = (await upstream.text()).replaceAll(UPSTREAM, `https://127.0.0.1:${registry.port}/`);
        return new Response(body, { status: upstream.status, headers: { "content-type": type } });
      },
    });
  });
  afterAll(async () => {
    await registry?.stop(true);
    dir.cleanup();
  });

  const env = (extra: Record<string, string>) =>
    denoEnv({
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NPM_CONFIG_REGISTRY: `https://127.0.0.1:${registry.port}/`,
      DENO_DIR: mkdtempSync(join(dir.path, "deno-dir-")),
      ...extra,
    });

  test("without the CA it fails once, naming the packages, the TLS cause and what to set", async () => {
    const attempt = fetchFunctionDependencies("zoe-ingest", { env: env({ DENO_TLS_CA_STORE: "mozilla" }) });
    const error = await attempt.then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DenoDependencyError);
    const first = (error as Error).message.split("\n")[0]!;
    expect(first).toMatch(
      /^Cannot fetch the Edge Function zoe-ingest's dependencies \(npm:(postgres@3\.4\.9|@sinclair\/typebox@0\.34\.52|jose@6\.2\.19)/,
    );
    expect(first).toContain("UnknownIssuer");
    expect(first).toContain("set SSL_CERT_FILE (or DENO_CERT)");
    expect((error as DenoDependencyError).code).toBe("deno_dependencies_unavailable");
  });

  test("with SSL_CERT_FILE naming the CA (as on the user's machine) the packages are fetched through it", async () => {
    requested.length = 0;
    await fetchFunctionDependencies("zoe-ingest", { env: env({ SSL_CERT_FILE: ca }) });
    expect(requested.some((p) => p.endsWith("/postgres-3.4.9.tgz"))).toBe(true);
    expect(requested.some((p) => p.endsWith("/typebox-0.34.52.tgz"))).toBe(true);
  });

  test("with DENO_CERT naming the CA as well", async () => {
    requested.length = 0;
    await fetchFunctionDependencies("zoe-ingest", { env: env({ DENO_CERT: ca, DENO_TLS_CA_STORE: "mozilla" }) });
    expect(requested.some((p) => p.endsWith("/postgres-3.4.9.tgz"))).toBe(true);
  });
});
