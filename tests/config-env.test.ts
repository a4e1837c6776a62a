// The environment readers and variable checks of src/config-env.ts; the
// settings they compose are tested in tests/config.test.ts.
import { describe, expect, test } from "bun:test";
import { loadConfig } from "../src/config.ts";
import {
  boolVar,
  collectConfigErrors,
  enumVar,
  intVar,
  misnamedVariables,
  numberVar,
  unknownVariables,
  variablesRead,
} from "../src/config-env.ts";

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
