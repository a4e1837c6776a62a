// HS256 JSON Web Tokens with WebCrypto only, so the same code runs in the
// Deno Edge Function (to check a caller's role) and in Bun (the local test
// gateway signs and verifies Supabase-style anon / service_role keys).

export interface JwtClaims {
  role?: string;
  exp?: number;
  [claim: string]: unknown;
}

export class JwtError extends Error {
  readonly code = "INVALID_JWT";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "JwtError";
  }
}

const encoder = new TextEncoder();

function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(text: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new JwtError("JWT segment is not base64url");
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  const binary = atob(padded);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

function parseSegment(segment: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(fromBase64url(segment)));
  } catch (cause) {
    throw new JwtError(`JWT ${what} is not base64url JSON`, { cause });
  }
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new JwtError(`JWT ${what} is not an object`);
  return value as Record<string, unknown>;
}

function hmacKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
    "verify",
  ]);
}

/** Signs `claims` as an HS256 JWT. */
export async function signJwt(claims: JwtClaims, secret: string): Promise<string> {
  const header = base64url(encoder.encode(JSON.stringify({ alg: "HS256", typ: "JWT" })));
  const payload = base64url(encoder.encode(JSON.stringify(claims)));
  const signature = await crypto.subtle.sign("HMAC", await hmacKey(secret), encoder.encode(`${header}.${payload}`));
  return `${header}.${payload}.${base64url(new Uint8Array(signature))}`;
}

/** Reads the claims without checking the signature (for tokens a trusted gateway already verified). */
export function decodeJwt(token: string): JwtClaims {
  const parts = token.split(".");
  if (parts.length !== 3) throw new JwtError("JWT must have three segments");
  return parseSegment(parts[1]!, "payload") as JwtClaims;
}

/** Verifies an HS256 signature and `exp`; returns the claims. */
export async function verifyJwt(token: string, secret: string, nowSeconds = Date.now() / 1000): Promise<JwtClaims> {
  const parts = token.split(".");
  if (parts.length !== 3) throw new JwtError("JWT must have three segments");
  const [header, payload, signature] = parts as [string, string, string];
  if (parseSegment(header, "header").alg !== "HS256") throw new JwtError("JWT algorithm must be HS256");
  const ok = await crypto.subtle.verify(
    "HMAC",
    await hmacKey(secret),
    fromBase64url(signature) as Uint8Array<ArrayBuffer>,
    encoder.encode(`${header}.${payload}`),
  );
  if (!ok) throw new JwtError("JWT signature does not match");
  const claims = parseSegment(payload, "payload") as JwtClaims;
  if (claims.exp !== undefined && (typeof claims.exp !== "number" || nowSeconds >= claims.exp)) {
    throw new JwtError("JWT expired");
  }
  return claims;
}

/** Compares two secrets in time independent of where they first differ. */
export function timingSafeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}
