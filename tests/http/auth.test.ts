import { afterEach, describe, expect, test } from "bun:test";
import { assertAuthorized, presentedToken, tokensEqual } from "../../src/http/auth.ts";
import { UnauthorizedError } from "../../src/domain/errors.ts";
import { InvalidTokenError } from "../../src/http/responses.ts";
import { event, postJson, type TestApp, testApp } from "../helpers/app.ts";

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
    expect(() =>
      assertAuthorized(...req("POST", "/local/events", { authorization: `Bearer ${TOKEN}` }), TOKEN),
    ).not.toThrow();
    expect(() => assertAuthorized(...req("POST", `/local/events?token=${TOKEN}`), TOKEN)).toThrow(UnauthorizedError);
    expect(() => assertAuthorized(...req("POST", "/local/events"), TOKEN)).toThrow(
      /send Authorization: Bearer <token>$/,
    );
  });

  test("reads: Bearer or ?token=; wrong or missing is a 401 that says how to send it", () => {
    expect(() => assertAuthorized(...req("GET", `/local/events?token=${TOKEN}`), TOKEN)).not.toThrow();
    expect(() =>
      assertAuthorized(...req("HEAD", "/health", { authorization: `Bearer ${TOKEN}` }), TOKEN),
    ).not.toThrow();
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

describe("the 401 challenge", () => {
  let t: TestApp | null = null;
  afterEach(async () => {
    await t?.close();
    t = null;
  });
  const NONE = 'Bearer realm="zoe-local"';
  const INVALID = 'Bearer realm="zoe-local", error="invalid_token"';

  test("assertAuthorized() throws InvalidTokenError only when a token was presented", () => {
    expect(() => assertAuthorized(...req("GET", "/local/events?token=wrong"), TOKEN)).toThrow(InvalidTokenError);
    expect(() => assertAuthorized(...req("POST", "/local/events", { authorization: "Bearer wrong" }), TOKEN)).toThrow(
      InvalidTokenError,
    );
    for (const [method, path, headers] of [
      ["GET", "/local/events", {}],
      ["POST", `/local/events?token=${TOKEN}`, {}],
      ["GET", "/local/events", { authorization: `Basic ${btoa(`x:${TOKEN}`)}` }],
    ] as const) {
      let error: unknown;
      try {
        assertAuthorized(...req(method, path, headers), TOKEN);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(UnauthorizedError);
      expect(error).not.toBeInstanceOf(InvalidTokenError);
    }
  });

  test('every 401 answers WWW-Authenticate: Bearer realm="zoe-local", with error="invalid_token" when a wrong token was sent', async () => {
    t = testApp({ apiToken: TOKEN });
    const cases: [string, RequestInit, string][] = [
      ["/local/events?mode=live", {}, NONE],
      ["/local/events?mode=live&token=wrong", {}, INVALID],
      ["/local/events?mode=live", { headers: { authorization: "Bearer wrong" } }, INVALID],
      ["/local/events?mode=live", { headers: { authorization: `Basic ${btoa(`x:${TOKEN}`)}` } }, NONE],
      ["/local/stream?mode=live", {}, NONE],
      ["/local/stream?mode=live", { method: "HEAD", headers: { authorization: "Bearer wrong" } }, INVALID],
      ["/local/nothing", {}, NONE],
      ["/local/events", postJson(event()), NONE],
      ["/local/events", postJson(event(), { authorization: "Bearer wrong" }), INVALID],
      [`/local/events?token=${TOKEN}`, postJson(event()), NONE],
      ["/local/state", postJson({ mode: "live" }, { authorization: "Bearer wrong" }), INVALID],
      ["/local/events", { method: "PUT" }, NONE],
    ];
    for (const [path, init, challenge] of cases) {
      const res = await t.handle(path, init);
      const what = `${init.method ?? "GET"} ${path} ${JSON.stringify(init.headers ?? {})}`;
      expect({ what, status: res.status, challenge: res.headers.get("www-authenticate") }).toEqual({
        what,
        status: 401,
        challenge,
      });
      if (init.method !== "HEAD")
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
    }
  });

  test("answers that are not 401 carry no challenge", async () => {
    t = testApp({ apiToken: TOKEN });
    const bearer = { authorization: `Bearer ${TOKEN}` };
    for (const res of [
      await t.handle("/local/events?mode=live", { headers: bearer }),
      await t.handle("/local/events?mode=nope", { headers: bearer }),
      await t.handle("/local/events", postJson(event(), bearer)),
      await t.handle("/local/events", { method: "PUT", headers: bearer }),
      await t.handle("/docs/json"),
    ]) {
      expect(res.status).not.toBe(401);
      expect(res.headers.get("www-authenticate")).toBeNull();
    }
  });
});
