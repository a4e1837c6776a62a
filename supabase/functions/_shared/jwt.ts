// HS256 JSON Web Tokens through `jose`, so the same code runs in the Deno Edge
// Function (to check a caller's role) and in Bun (the local test gateway signs
// and verifies Supabase-style anon / service_role keys). Supabase's legacy
// JWT secret signs HS256 only: every other algorithm, `none` included, is
// refused before any signature is looked at.
import { errors, decodeJwt as joseDecodeJwt, jwtVerify, SignJWT } from "jose";

export interface JwtClaims {
  role?: string;
  exp?: number;
  nbf?: number;
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
const ALGORITHMS = ["HS256"];

/** Signs `claims` as an HS256 JWT. */
export async function signJwt(claims: JwtClaims, secret: string): Promise<string> {
  return await new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(encoder.encode(secret));
}

/** Reads the claims without checking the signature (for tokens a trusted gateway already verified). */
export function decodeJwt(token: string): JwtClaims {
  try {
    return joseDecodeJwt(token) as JwtClaims;
  } catch (cause) {
    throw new JwtError(`JWT is malformed: ${(cause as Error).message}`, { cause });
  }
}

// jose's own messages name the claim; these say what it means for the caller.
function describe(error: unknown): string {
  if (error instanceof errors.JWTExpired) return "JWT expired";
  if (error instanceof errors.JWTClaimValidationFailed && error.claim === "nbf") return "JWT is not valid yet (nbf)";
  if (error instanceof errors.JOSEAlgNotAllowed) return "JWT algorithm must be HS256";
  if (error instanceof errors.JWSSignatureVerificationFailed) return "JWT signature does not match";
  if (error instanceof errors.JOSEError) return `JWT is invalid: ${error.message}`;
  return `JWT could not be verified: ${(error as Error).message}`;
}

/** Verifies an HS256 signature, `exp` and `nbf`; returns the claims. */
export async function verifyJwt(token: string, secret: string, nowSeconds = Date.now() / 1000): Promise<JwtClaims> {
  try {
    const { payload } = await jwtVerify(token, encoder.encode(secret), {
      algorithms: ALGORITHMS,
      currentDate: new Date(nowSeconds * 1000),
    });
    return payload as JwtClaims;
  } catch (cause) {
    throw new JwtError(describe(cause), { cause });
  }
}

/** Compares two secrets in time independent of where they first differ. */
export function timingSafeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}
