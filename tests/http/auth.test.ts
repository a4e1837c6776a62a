import { describe, expect, test } from "bun:test";
import { assertAuthorized, presentedToken, tokensEqual } from "../../src/http/auth.ts";
import { UnauthorizedError } from "../../src/domain/errors.ts";

const TOKEN = "correct-horse-battery-staple";
const req = (method: string, path: string, headers: Record<string, string> = {}) => {
  const request = new Request(`http://localhost${path}`, { method, headers });
  return [request, new URL(request.url)] as const;
};

describe("tokensEqual()", () => {
  test("is true only for the identical string, whatever the lengths", () => {
    expect(tokensEqual(TOKEN, TOKEN)).toBe(true);
    expect(tokensEqual(TOKEN.slice(0, -1), TOKEN)).toBe(false);
    expect(tokensEqual(`${TOKEN}x`, TOKEN)).toBe(false);
    expect(tokensEqual("", TOKEN)).toBe(false);
    expect(tokensEqual(TOKEN.toUpperCase(), TOKEN)).toBe(false);
  });
});

describe("presentedToken()", () => {
  test("reads Authorization: Bearer (case-insensitive scheme), and ?token= only when allowed", () => {
    expect(presentedToken(...req("GET", "/", { authorization: `Bearer ${TOKEN}` }), true)).toBe(TOKEN);
    expect(presentedToken(...req("GET", "/", { authorization: `bearer   ${TOKEN} ` }), true)).toBe(TOKEN);
    expect(presentedToken(...req("GET", `/?token=${TOKEN}`), true)).toBe(TOKEN);
    expect(presentedToken(...req("POST", `/?token=${TOKEN}`), false)).toBeNull();
  });

  test("a malformed Authorization header presents nothing, even with ?token=", () => {
    expect(presentedToken(...req("GET", `/?token=${TOKEN}`, { authorization: `Token ${TOKEN}` }), true)).toBeNull();
    expect(presentedToken(...req("GET", "/", { authorization: "Bearer" }), true)).toBeNull();
    expect(presentedToken(...req("GET", "/", { authorization: "Bearer a b" }), true)).toBeNull();
  });
});

describe("assertAuthorized()", () => {
  test("does nothing when no token is configured", () => {
    expect(() => assertAuthorized(...req("POST", "/local/events"), null)).not.toThrow();
  });

  test("writes: Bearer only", () => {
    expect(() => assertAuthorized(...req("POST", "/local/events", { authorization: `Bearer ${TOKEN}` }), TOKEN)).not.toThrow();
    expect(() => assertAuthorized(...req("POST", `/local/events?token=${TOKEN}`), TOKEN)).toThrow(UnauthorizedError);
    expect(() => assertAuthorized(...req("POST", "/local/events"), TOKEN)).toThrow(/send Authorization: Bearer <token>$/);
  });

  test("reads: Bearer or ?token=; wrong or missing is a 401 that says how to send it", () => {
    expect(() => assertAuthorized(...req("GET", `/local/events?token=${TOKEN}`), TOKEN)).not.toThrow();
    expect(() => assertAuthorized(...req("HEAD", "/health", { authorization: `Bearer ${TOKEN}` }), TOKEN)).not.toThrow();
    let error: unknown;
    try {
      assertAuthorized(...req("GET", "/local/events?token=wrong"), TOKEN);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UnauthorizedError);
    expect((error as UnauthorizedError).status).toBe(401);
    expect((error as Error).message).toContain("?token=<token>");
    expect((error as Error).message).not.toContain(TOKEN);
  });
});
