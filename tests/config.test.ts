import { describe, expect, test } from "bun:test";
import {
  boolVar,
  collectConfigErrors,
  enumVar,
  intVar,
  isLoopback,
  loadConfig,
  maskedConfig,
  misnamedVariables,
  numberVar,
  unknownVariables,
  variablesRead,
} from "../src/config.ts";
import { ConfigError } from "../src/domain/errors.ts";

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

const TOKEN = "0123456789abcdef-token";

describe("loadConfig()", () => {
  test("defaults: 127.0.0.1:8765, ./data/zoe-local.db, no token, the dev origins, synchronous FULL, 7 days retention", () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      host: "127.0.0.1",
      port: 8765,
      dbPath: "./data/zoe-local.db",
      apiToken: null,
      allowedHosts: null,
      // The service's own page, Vite's dev server (5173) and `vite preview` (4173), as localhost and 127.0.0.1.
      corsOrigins: [
        "http://localhost:5173",
        "http://localhost:4173",
        "http://localhost:8765",
        "http://127.0.0.1:5173",
        "http://127.0.0.1:4173",
        "http://127.0.0.1:8765",
      ],
      synchronous: "FULL",
      retentionMs: 7 * 86_400_000,
      stateKeep: 100,
      maxRequestBytes: 1_048_576,
      groupCommit: true,
      logLevel: "info",
      sse: { heartbeatMs: 2_000, stallMs: 15_000, retryMs: 2_000, maxBufferedBytes: 4 * 1_048_576, coalesceMs: 2 },
    });
  });

  test("every variable is read, trimmed, and parsed into its type", () => {
    const c = loadConfig({
      PORT: " 9000 ",
      HOST: "0.0.0.0",
      ZOE_API_TOKEN: TOKEN,
      ZOE_DB_PATH: "/var/lib/zoe/events.db",
      ZOE_CORS_ORIGINS: "http://192.168.1.5:5173, https://dash.example/ ",
      ZOE_ALLOWED_HOSTS: " Bot-Box.local., 192.168.1.5,fe80::1 ,[::2]",
      ZOE_SYNCHRONOUS: "normal",
      ZOE_RETENTION_DAYS: "1.5",
      ZOE_STATE_KEEP: "10",
      ZOE_MAX_REQUEST_BYTES: "2048",
      ZOE_GROUP_COMMIT: "off",
      ZOE_LOG_LEVEL: "debug",
      ZOE_SSE_HEARTBEAT_MS: "5000",
      ZOE_SSE_RETRY_MS: "0",
      ZOE_SSE_MAX_BUFFER_BYTES: "65536",
      ZOE_SSE_COALESCE_MS: "0",
    });
    expect(c).toMatchObject({
      port: 9000,
      host: "0.0.0.0",
      apiToken: TOKEN,
      dbPath: "/var/lib/zoe/events.db",
      corsOrigins: ["http://192.168.1.5:5173", "https://dash.example"],
      allowedHosts: ["bot-box.local", "192.168.1.5", "[fe80::1]", "[::2]"],
      synchronous: "NORMAL",
      retentionMs: 129_600_000,
      stateKeep: 10,
      maxRequestBytes: 2048,
      groupCommit: false,
      logLevel: "debug",
      sse: { heartbeatMs: 5000, retryMs: 0, maxBufferedBytes: 65536, coalesceMs: 0 },
    });
  });

  test("an empty variable means its default", () => {
    expect(loadConfig({ PORT: "", ZOE_API_TOKEN: "  " })).toMatchObject({ port: 8765, apiToken: null });
  });

  const bad: [Record<string, string>, string, RegExp][] = [
    [{ PORT: "http" }, "PORT", /integer from 0 to 65535, got "http"/],
    [{ PORT: "70000" }, "PORT", /integer from 0 to 65535/],
    [{ PORT: "-1" }, "PORT", /integer/],
    [{ HOST: "0.0.0.0" }, "HOST", /non-loopback address 0\.0\.0\.0 requires ZOE_API_TOKEN/],
    [{ HOST: "192.168.1.10" }, "HOST", /requires ZOE_API_TOKEN/],
    [{ ZOE_API_TOKEN: "short" }, "ZOE_API_TOKEN", /at least 16 characters/],
    [{ ZOE_CORS_ORIGINS: "*" }, "ZOE_CORS_ORIGINS", /wildcard is not accepted/],
    [{ ZOE_CORS_ORIGINS: "localhost:5173" }, "ZOE_CORS_ORIGINS", /origin/],
    [{ ZOE_CORS_ORIGINS: "http://a.example/app" }, "ZOE_CORS_ORIGINS", /without path/],
    [{ ZOE_ALLOWED_HOSTS: "bot-box.local:8765" }, "ZOE_ALLOWED_HOSTS", /without a port.*got "bot-box.local:8765"/],
    [{ ZOE_ALLOWED_HOSTS: "http://bot-box.local" }, "ZOE_ALLOWED_HOSTS", /host names or addresses/],
    [{ ZOE_ALLOWED_HOSTS: "a b" }, "ZOE_ALLOWED_HOSTS", /host names or addresses/],
    [{ ZOE_SYNCHRONOUS: "OFF" }, "ZOE_SYNCHRONOUS", /one of NORMAL, FULL, EXTRA, got "OFF"/],
    [{ ZOE_RETENTION_DAYS: "a week" }, "ZOE_RETENTION_DAYS", /number from 1 to 3650/],
    [{ ZOE_RETENTION_DAYS: "0.5" }, "ZOE_RETENTION_DAYS", /number from 1 to 3650/],
    [{ ZOE_STATE_KEEP: "0" }, "ZOE_STATE_KEEP", /integer from 1/],
    [{ ZOE_MAX_REQUEST_BYTES: "1" }, "ZOE_MAX_REQUEST_BYTES", /integer from 1024/],
    [{ ZOE_GROUP_COMMIT: "maybe" }, "ZOE_GROUP_COMMIT", /true or false/],
    [{ ZOE_LOG_LEVEL: "verbose" }, "ZOE_LOG_LEVEL", /one of debug, info, warn, error/],
    [{ ZOE_SSE_HEARTBEAT_MS: "1" }, "ZOE_SSE_HEARTBEAT_MS", /integer from 10/],
    [{ ZOE_SSE_MAX_BUFFER_BYTES: "1k" }, "ZOE_SSE_MAX_BUFFER_BYTES", /integer/],
  ];
  for (const [env, variable, message] of bad) {
    test(`${JSON.stringify(env)} is refused, naming ${variable}`, () => {
      const error = configError(env);
      expect(error.variable).toBe(variable);
      expect(error.message).toStartWith(`${variable}: `);
      expect(error.message).toMatch(message);
      expect(error.code).toBe("invalid_config");
    });
  }

  test("a non-loopback HOST starts when a token is set", () => {
    expect(loadConfig({ HOST: "0.0.0.0", ZOE_API_TOKEN: TOKEN }).host).toBe("0.0.0.0");
  });
});

describe("helpers", () => {
  test("isLoopback() accepts 127.0.0.0/8, ::1 and localhost only", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]) expect(isLoopback(h)).toBe(true);
    for (const h of ["0.0.0.0", "::", "192.168.0.2", "localhost.example", "128.0.0.1"])
      expect(isLoopback(h)).toBe(false);
  });
});

describe("maskedConfig()", () => {
  test("shows that each secret is set and its length, never a character of it", () => {
    const secret = "s3cr3t-service-role-key-value";
    const c = loadConfig({
      ZOE_API_TOKEN: TOKEN,
      SUPABASE_URL: "https://x.supabase.co",
      SUPABASE_SERVICE_ROLE_KEY: secret,
      ZOE_FLUSH_SECRET: "flush-secret-123",
    });
    const printed = JSON.stringify(maskedConfig(c));
    for (const s of [TOKEN, secret, "flush-secret-123"]) expect(printed).not.toContain(s);
    expect(maskedConfig(c)).toMatchObject({
      apiToken: `<set, ${TOKEN.length} characters>`,
      flush: {
        remote: { url: "https://x.supabase.co", serviceKey: `<set, ${secret.length} characters>` },
        secret: "<set, 16 characters>",
      },
    });
    expect(c.apiToken).toBe(TOKEN); // the original is untouched
  });
});

// The environment side: the readers of one variable and the checks over the environment.
describe("readers", () => {
  test("intVar/numberVar/enumVar/boolVar fall back when unset and name the variable when bad", () => {
    expect(intVar({}, "N", 5, 0, 10)).toBe(5);
    expect(numberVar({ X: "1.25" }, "X", 0, 0, 2)).toBe(1.25);
    expect(enumVar({ E: "b" }, "E", "a", ["a", "B"] as const)).toBe("B");
    expect(boolVar({ B: "YES" }, "B", false)).toBe(true);
    expect(() => intVar({ N: "1.5" }, "N", 5, 0, 10)).toThrow(/^N: /);
    expect(() => numberVar({ X: "3" }, "X", 0, 0, 2)).toThrow(/^X: /);
  });
});

describe("unknown variables", () => {
  const known = ["HOST", "PORT", "ZOE_SYNCHRONOUS", "ZOE_SSE_HEARTBEAT_MS", "ZOE_DB_PATH"];

  test("a misspelt ZOE_* variable is reported, naming the nearest known variable", () => {
    expect(unknownVariables({ ZOE_SYNCRONOUS: "FULL", ZOE_SSE_HEARTBAET_MS: "2000" }, known)).toEqual([
      {
        variable: "ZOE_SSE_HEARTBAET_MS",
        message: "ZOE_SSE_HEARTBAET_MS is not a zoe-local setting and is ignored; did you mean ZOE_SSE_HEARTBEAT_MS?",
        suggestion: "ZOE_SSE_HEARTBEAT_MS",
      },
      {
        variable: "ZOE_SYNCRONOUS",
        message: "ZOE_SYNCRONOUS is not a zoe-local setting and is ignored; did you mean ZOE_SYNCHRONOUS?",
        suggestion: "ZOE_SYNCHRONOUS",
      },
    ]);
  });

  test("known variables, other prefixes and the project's tooling variables are not reported", () => {
    expect(
      unknownVariables(
        {
          ZOE_SYNCHRONOUS: "FULL",
          PATH: "/bin",
          HOME: "/root",
          ZOE_FUZZ_RUNS: "5",
          ZOE_PG_ADMIN_URL: "x",
          ZOE_CHROMIUM: "y",
        },
        known,
      ),
    ).toEqual([]);
  });

  test("an Edge Function setting given to the service is reported as misplaced", () => {
    const [w] = unknownVariables({ ZOE_INGEST_MAX_EVENTS: "500" }, known);
    expect(w?.message).toBe(
      "ZOE_INGEST_MAX_EVENTS is read by the zoe-ingest Edge Function, not by this service: set it in the function's secrets",
    );
  });

  test("variablesRead() finds every variable a loader reads", () => {
    const names = variablesRead(loadConfig);
    for (const n of [
      "HOST",
      "PORT",
      "ZOE_SYNCHRONOUS",
      "SUPABASE_SERVICE_ROLE_KEY",
      "ZOE_FLUSH_STALL_MS",
      "ZOE_CRITICAL_RESERVE_BYTES",
    ])
      expect(names).toContain(n);
  });
});

describe("collectConfigErrors()", () => {
  test("reports every bad variable, not only the first", () => {
    const { value, errors } = collectConfigErrors(
      { PORT: "x", ZOE_SYNCHRONOUS: "OFF", ZOE_FLUSH_BATCH_SIZE: "0" },
      loadConfig,
    );
    expect(value).toBeNull();
    expect(errors.map((e) => e.variable)).toEqual(["PORT", "ZOE_SYNCHRONOUS", "ZOE_FLUSH_BATCH_SIZE"]);
  });

  test("stops at an error naming a variable that is not set (nothing to step past)", () => {
    const { errors } = collectConfigErrors({ SUPABASE_URL: "https://x.supabase.co", PORT: "x" }, loadConfig);
    expect(errors.map((e) => e.variable)).toEqual(["PORT", "SUPABASE_SERVICE_ROLE_KEY"]);
  });

  test("gives the value when everything is valid", () => {
    expect(collectConfigErrors({ PORT: "1" }, loadConfig)).toMatchObject({ value: { port: 1 }, errors: [] });
  });
});

describe("misnamed variables", () => {
  const known = ["HOST", "PORT", "SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_ANON_KEY", "ZOE_API_TOKEN"];

  test("a Supabase variable a typo away (SUPABSE_URL, SUPERBASE_URL) names the one zoe-local reads", () => {
    expect(misnamedVariables({ SUPABSE_URL: "https://p.supabase.co", SUPERBASE_ANON_KEY: "k" }, known)).toEqual([
      {
        variable: "SUPABSE_URL",
        message: "SUPABSE_URL is not a zoe-local setting and is ignored; did you mean SUPABASE_URL?",
        suggestion: "SUPABASE_URL",
      },
      {
        variable: "SUPERBASE_ANON_KEY",
        message: "SUPERBASE_ANON_KEY is not a zoe-local setting and is ignored; did you mean SUPABASE_ANON_KEY?",
        suggestion: "SUPABASE_ANON_KEY",
      },
    ]);
  });

  test("other projects' names for the service-role key point to SUPABASE_SERVICE_ROLE_KEY while it is unset", () => {
    expect(misnamedVariables({ SUPABASE_SERVICE_KEY: "k" }, known).map((w) => w.suggestion)).toEqual([
      "SUPABASE_SERVICE_ROLE_KEY",
    ]);
    expect(misnamedVariables({ SUPABASE_KEY: "k", SUPABASE_SERVICE_ROLE_KEY: "k" }, known)).toEqual([]);
  });

  test("lower- and mixed-case spellings of a setting are ignored by the service, and said so", () => {
    expect(misnamedVariables({ zoe_api_token: "t", supabase_url: "u", Zoe_Api_Tokn: "t" }, known)).toEqual([
      {
        variable: "Zoe_Api_Tokn",
        message: "Zoe_Api_Tokn is ignored: zoe-local's settings are upper-case; did you mean ZOE_API_TOKEN?",
        suggestion: "ZOE_API_TOKEN",
      },
      {
        variable: "supabase_url",
        message: "supabase_url is ignored: zoe-local's settings are upper-case; did you mean SUPABASE_URL?",
        suggestion: "SUPABASE_URL",
      },
      {
        variable: "zoe_api_token",
        message: "zoe_api_token is ignored: zoe-local's settings are upper-case; did you mean ZOE_API_TOKEN?",
        suggestion: "ZOE_API_TOKEN",
      },
    ]);
  });

  test("the rest of an environment is left alone: other tools' Supabase variables, proxies, HOME, empty values", () => {
    expect(
      misnamedVariables(
        {
          PATH: "/bin",
          HOME: "/root",
          HOSTNAME: "box",
          http_proxy: "http://proxy:3128",
          SUPABASE_DB_URL: "postgres://…",
          SUPABASE_ACCESS_TOKEN: "sbp_…",
          SUPABASE_URL: "https://p.supabase.co",
          SUPABSE_ANON_KEY: "",
          PORT: "8765",
        },
        known,
      ),
    ).toEqual([]);
  });
});
