// zoe-ingest's JWT check is security code: every token an attacker can craft
// (no signature, another algorithm keyed with the secret, another secret, a
// tampered payload, out of its validity window, the wrong role) must be
// refused, with the same verdict in Bun and in the Deno the function runs in.
import { describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { join } from "node:path";
import { SignJWT } from "jose";
import { denoBinary, denoEnv } from "../../scripts/supabase-local/deno.ts";
import { decodeJwt, JwtError, signJwt, verifyJwt } from "../../supabase/functions/_shared/jwt.ts";
import { type JwtVerdict, verdicts } from "../fixtures/jwt-verdicts.ts";

const ROOT = join(import.meta.dir, "..", "..");
const DENO_CONFIG = join(ROOT, "supabase", "functions", "zoe-ingest", "deno.json");
const SECRET = `project-secret-${crypto.randomUUID()}`;
const NOW = Math.floor(Date.now() / 1000);

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const hmac = (hash: "sha256" | "sha512", data: string) =>
  createHmac(hash, SECRET).update(data).digest().toString("base64url");
function handMade(header: Record<string, unknown>, claims: Record<string, unknown>, sign: (data: string) => string) {
  const data = `${b64(header)}.${b64(claims)}`;
  return `${data}.${sign(data)}`;
}

const service = { role: "service_role" };
const valid = await signJwt({ ...service, exp: NOW + 3600 }, SECRET);
// [name, token, what verifyJwt says, what authorize says]
const corpus: [string, string, JwtVerdict["verify"], "ok" | RegExp][] = [
  ["a service_role JWT signed with the secret", valid, { role: "service_role" }, "ok"],
  [
    "a JWT with nbf and exp around now",
    await signJwt({ ...service, nbf: NOW - 60, exp: NOW + 60 }, SECRET),
    { role: "service_role" },
    "ok",
  ],
  [
    "an expired JWT",
    await signJwt({ ...service, exp: NOW - 10 }, SECRET),
    { error: "JWT expired" },
    /Invalid JWT: JWT expired/,
  ],
  [
    "a JWT not valid yet",
    await signJwt({ ...service, nbf: NOW + 600 }, SECRET),
    { error: "JWT is not valid yet (nbf)" },
    /not valid yet/,
  ],
  [
    "alg none",
    `${b64({ alg: "none", typ: "JWT" })}.${b64(service)}.`,
    { error: "JWT algorithm must be HS256" },
    /algorithm must be HS256/,
  ],
  [
    "alg RS256 with an HMAC of the secret (algorithm confusion)",
    handMade({ alg: "RS256", typ: "JWT" }, service, (d) => hmac("sha256", d)),
    { error: "JWT algorithm must be HS256" },
    /algorithm must be HS256/,
  ],
  [
    "alg HS512 signed with the secret",
    await new SignJWT(service).setProtectedHeader({ alg: "HS512" }).sign(new TextEncoder().encode(SECRET)),
    { error: "JWT algorithm must be HS256" },
    /algorithm must be HS256/,
  ],
  [
    "an HS256 header with an HS512 signature",
    handMade({ alg: "HS256", typ: "JWT" }, service, (d) => hmac("sha512", d)),
    { error: "JWT signature does not match" },
    /signature does not match/,
  ],
  [
    "a JWT signed with another secret",
    await signJwt(service, "not-the-project-secret-but-long-enough"),
    { error: "JWT signature does not match" },
    /signature does not match/,
  ],
  [
    "a tampered payload (anon key promoted to service_role)",
    (() => {
      const [h, , s] = handMade({ alg: "HS256", typ: "JWT" }, { role: "anon" }, (d) => hmac("sha256", d)).split(".");
      return `${h}.${b64(service)}.${s}`;
    })(),
    { error: "JWT signature does not match" },
    /signature does not match/,
  ],
  ["the anon role", await signJwt({ role: "anon" }, SECRET), { role: "anon" }, /Role "anon" may not flush/],
  [
    "an authenticated user",
    await signJwt({ role: "authenticated", sub: "u1" }, SECRET),
    { role: "authenticated" },
    /Role "authenticated" may not flush/,
  ],
  ["no role at all", await signJwt({ sub: "u1" }, SECRET), { role: undefined }, /Role null may not flush/],
  ["not a JWT", "abc.def", { error: expect.stringMatching(/^JWT is invalid/) as never }, /Invalid JWT/],
];

async function denoVerdicts(tokens: string[]): Promise<JwtVerdict[]> {
  const proc = Bun.spawn(
    [
      denoBinary(),
      "run",
      "--no-prompt",
      "--frozen",
      `--config=${DENO_CONFIG}`,
      join(import.meta.dir, "..", "fixtures", "jwt-verdicts.deno.ts"),
    ],
    {
      stdin: new TextEncoder().encode(JSON.stringify({ secret: SECRET, now: NOW, tokens })),
      stdout: "pipe",
      stderr: "pipe",
      env: denoEnv(),
    },
  );
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (code !== 0) throw new Error(`deno exited ${code}: ${err}`);
  return JSON.parse(out);
}

function expectVerdicts(got: JwtVerdict[]) {
  expect(got.length).toBe(corpus.length);
  corpus.forEach(([name, , verify, auth], i) => {
    const v = got[i]!;
    expect({ name, verify: v.verify }).toEqual({ name, verify });
    if (auth === "ok") expect({ name, authorize: v.authorize }).toEqual({ name, authorize: "ok" });
    else {
      expect({ name, status: v.authorize === "ok" ? 200 : v.authorize.status }).toEqual({ name, status: 401 });
      expect(v.authorize === "ok" ? "" : v.authorize.message).toMatch(auth);
    }
  });
}

describe("verifyJwt() and zoe-ingest's authorize()", () => {
  test("verifyJwt() refuses none, RS256 and HS512, other secrets, tampering, expired and not-yet-valid JWTs in Bun", async () => {
    const tokens = corpus.map(([, t]) => t);
    const bun = await verdicts({ secret: SECRET, now: NOW, tokens }, verifyJwt);
    expectVerdicts(bun);
  });

  test("the Edge Function's Deno gives the same verdicts", async () => {
    const tokens = corpus.map(([, t]) => t);
    const deno = await denoVerdicts(tokens);
    expectVerdicts(deno);
    expect(deno).toEqual(await verdicts({ secret: SECRET, now: NOW, tokens }, verifyJwt));
  });

  test("verifyJwt() judges exp and nbf at the clock it is given", async () => {
    const token = await signJwt({ ...service, nbf: NOW, exp: NOW + 60 }, SECRET);
    await expect(verifyJwt(token, SECRET, NOW - 1)).rejects.toThrow("JWT is not valid yet (nbf)");
    expect((await verifyJwt(token, SECRET, NOW + 30)).role).toBe("service_role");
    await expect(verifyJwt(token, SECRET, NOW + 60)).rejects.toThrow("JWT expired");
  });

  test("errors are JwtError with code INVALID_JWT; decodeJwt() reads claims without the secret", async () => {
    const error = await verifyJwt("x.y.z", SECRET).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JwtError);
    expect((error as JwtError).code).toBe("INVALID_JWT");
    expect(decodeJwt(valid).role).toBe("service_role");
    expect(() => decodeJwt("not-a-jwt")).toThrow(JwtError);
  });
});
