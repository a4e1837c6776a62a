// Property-based fuzzing of the HTTP routes through app.handle on a real
// SQLite store: random and near-valid bodies, headers and query parameters.
// Whatever comes in: a 2xx or a 4xx JSON error (never a 5xx, never a throw),
// nothing stored by a refused request, and every stored row a valid event
// with gapless per-mode seqs. ZOE_FUZZ_RUNS / ZOE_FUZZ_SEED scale and move it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { createLogger } from "../../src/lib/log.ts";
import { checkStoredEvent, MODES, type Mode } from "../../supabase/functions/_shared/event-schema.ts";
import { type TestApp, testApp } from "../helpers/app.ts";
import {
  auth,
  CONTENT_TYPES,
  contentLength,
  encodeBody,
  type Encoding,
  encoding,
  eventsBody,
  isJsonType,
  lengthHeader,
  RUNS,
  SEED,
  strictJson,
  stateBody,
  TOKEN,
  toJsonText,
  validEvent,
  weirdValue,
} from "./arbitraries.ts";

let t: TestApp;
const MAX_BYTES = 64 * 1024;
const MAX_STREAMS = 4;

beforeAll(() => {
  // Errors logged by the app name the cause of any 5xx in the test output.
  t = testApp({
    logger: createLogger({ level: "error", write: (line) => console.error(line) }),
    apiToken: TOKEN,
    maxRequestBytes: MAX_BYTES,
    sse: { maxClients: MAX_STREAMS, maxClientsPerAddress: MAX_STREAMS },
  });
});
afterAll(async () => {
  await t.close();
});

interface Snapshot {
  rows: number;
  states: number;
  lastSeq: Record<Mode, number>;
}
function snapshot(): Snapshot {
  const one = (sql: string) => (t.store.db.query(sql).get() as { n: number }).n;
  return {
    rows: one("SELECT COUNT(*) AS n FROM local_events"),
    states: one("SELECT COUNT(*) AS n FROM local_state_snapshots"),
    lastSeq: { paper: t.store.lastSeq("paper"), live: t.store.lastSeq("live") },
  };
}

/** Per mode: seqs 1..max each exactly once, and the counter at max. */
function expectGapless() {
  for (const mode of MODES) {
    const r = t.store.db
      .query(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT seq) AS d, COALESCE(MAX(seq), 0) AS m FROM local_events WHERE mode = ?",
      )
      .get(mode) as {
      n: number;
      d: number;
      m: number;
    };
    expect({ mode, n: r.n, d: r.d }).toEqual({ mode, n: r.m, d: r.m });
    expect(t.store.lastSeq(mode)).toBe(r.m);
  }
}

/** Stored events of `mode` after `seq` all pass the stored-event schema. */
function expectValidSince(mode: Mode, seq: number) {
  for (const e of t.store.list(mode, { sinceSeq: seq, limit: 10_000 })) {
    expect({ seq: e.seq, errors: checkStoredEvent(e) }).toEqual({ seq: e.seq, errors: [] });
  }
}

/** Status is 2xx or 4xx; a 4xx is the service's JSON error shape. */
async function expectHandled(res: Response, method = "GET"): Promise<unknown> {
  expect(res.status).toBeGreaterThanOrEqual(200);
  expect(res.status).toBeLessThan(500);
  if (method === "HEAD") {
    // A HEAD of the stream route is answered by the GET handler: never read it to the end.
    await res.body?.cancel();
    return null;
  }
  const body = await res.text();
  if (res.status >= 400) {
    expect(res.headers.get("content-type")).toContain("application/json");
    const parsed = JSON.parse(body) as { error: { code: unknown; message: unknown } };
    expect(typeof parsed.error.code).toBe("string");
    expect(typeof parsed.error.message).toBe("string");
    return parsed;
  }
  return body === "" ? null : (JSON.parse(body) as unknown);
}

const expectUnpolluted = () => {
  for (const key of ["polluted", "a", "x"]) expect(key in Object.prototype).toBe(false);
};

function buildPost(
  path: string,
  value: unknown,
  enc: Encoding,
  type: string | null,
  lie: Parameters<typeof lengthHeader>[0],
  a: typeof auth extends fc.Arbitrary<infer A> ? A : never,
) {
  const { body, bytes, streamed } = encodeBody(value, enc);
  const headers = new Headers();
  if (type !== null) headers.set("content-type", type);
  const length = streamed ? null : lengthHeader(lie, bytes.length);
  if (length !== null) headers.set("content-length", length);
  if (a.header !== null) headers.set("authorization", a.header);
  const url = a.query ? `${path}?token=${TOKEN}` : path;
  return { url, init: { method: "POST", headers, body, duplex: "half" } as RequestInit, bytes, length };
}

describe("POST /local/events under fuzzing", () => {
  test("answers only 2xx/4xx; refused requests store nothing; stored rows are valid and gapless", async () => {
    let accepted = 0;
    let refused = 0;
    // Bodies the route accepted; now and then one is sent again, as a bot retries (all duplicates then).
    const sentOk: unknown[] = [];
    await fc.assert(
      fc.asyncProperty(
        eventsBody,
        fc.option(fc.nat(), { freq: 6 }),
        encoding,
        fc.constantFrom(...CONTENT_TYPES),
        contentLength,
        auth,
        async (generated, retry, enc, type, lie, a) => {
          const value = retry !== null && sentOk.length > 0 ? sentOk[retry % sentOk.length] : generated;
          const before = snapshot();
          const req = buildPost("/local/events", value, enc, type, lie, a);
          const res = await t.handle(req.url, req.init);
          const body = await expectHandled(res);
          const after = snapshot();
          if (!a.valid) expect(res.status).toBe(401);
          else if (!isJsonType(req.init.headers instanceof Headers ? req.init.headers.get("content-type") : null))
            expect(res.status).toBe(415);
          else if (req.length !== null && Number(req.length) > MAX_BYTES) expect(res.status).toBe(413);
          if (res.status >= 400) {
            refused++;
            expect(after).toEqual(before);
          } else {
            accepted++;
            sentOk.push(value);
            const results = Array.isArray(value)
              ? (body as { events: { id: string; seq: number; duplicate: boolean }[] }).events
              : [body as { id: string; seq: number; duplicate: boolean }];
            const fresh = results.filter((r) => !r.duplicate).length;
            expect(after.rows - before.rows).toBe(fresh);
            expect(after.states).toBe(before.states);
            // What the server parsed (the bytes as sent), field by field in what it stored.
            const parsed = JSON.parse(new TextDecoder().decode(req.bytes)) as unknown;
            const sent = (Array.isArray(parsed) ? parsed : [parsed]) as Record<string, unknown>[];
            results.forEach((r, i) => {
              const row = t.store.db.query("SELECT seq FROM local_events WHERE id = ?").get(r.id) as {
                seq: number;
              } | null;
              expect(row?.seq).toBe(r.seq);
              if (r.duplicate) return;
              const stored = t.store.list(sent[i]!.mode as Mode, {
                sinceSeq: r.seq - 1,
                limit: 1,
              })[0] as unknown as Record<string, unknown>;
              for (const [k, v] of Object.entries(sent[i]!))
                expect({ k, v: strictJson(stored[k]) }).toEqual({ k, v: strictJson(v) });
            });
            for (const mode of MODES) expectValidSince(mode, before.lastSeq[mode]);
          }
          expectGapless();
          expectUnpolluted();
        },
      ),
      { seed: SEED, numRuns: RUNS * 2 },
    );
    // The generators must reach both sides, or the property proves little.
    expect(accepted).toBeGreaterThan(RUNS / 10);
    expect(refused).toBeGreaterThan(RUNS / 2);
    expect(t.store.db.query("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
  });

  test("schema-valid events and batches sent properly are stored (or 409 for a reused key), never refused otherwise", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(validEvent, fc.array(validEvent, { minLength: 1, maxLength: 5 })), async (value) => {
        const res = await t.handle("/local/events", {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
          body: JSON.stringify(value),
        });
        const body = await expectHandled(res);
        if (res.status === 409) return;
        expect({ status: res.status, body }).toMatchObject({ status: expect.any(Number) });
        expect([200, 201]).toContain(res.status);
      }),
      { seed: SEED + 1, numRuns: RUNS },
    );
    expectGapless();
  });
});

describe("POST /local/state under fuzzing", () => {
  test("answers only 2xx/4xx; a refused snapshot stores nothing, an accepted one is kept as sent; GET /local/state still answers", async () => {
    let stateAccepted = 0;
    await fc.assert(
      fc.asyncProperty(
        stateBody,
        encoding,
        fc.constantFrom(...CONTENT_TYPES),
        contentLength,
        auth,
        async (value, enc, type, lie, a) => {
          const before = snapshot();
          const req = buildPost("/local/state", value, enc, type, lie, a);
          const res = await t.handle(req.url, req.init);
          await expectHandled(res);
          const after = snapshot();
          if (!a.valid) expect(res.status).toBe(401);
          expect(after.rows).toBe(before.rows);
          if (res.status >= 400) expect(after.states).toBe(before.states);
          else {
            // Kept as sent, and storable by the remote's jsonb (no NUL, no lone surrogate).
            const { mode, ...sent } = JSON.parse(new TextDecoder().decode(req.bytes)) as Record<string, unknown>;
            const stored = t.store.latestState(mode as Mode)!.state;
            expect(strictJson(stored)).toBe(strictJson(sent));
            expect(JSON.stringify(stored)).not.toMatch(/\\u0000|\\ud[89a-f][0-9a-f]{2}/i);
            stateAccepted++;
          }
          for (const mode of MODES) {
            const got = await t.handle(`/local/state?mode=${mode}&token=${TOKEN}`);
            const state = (await expectHandled(got)) as { mode: string; last_seq: number };
            expect(got.status).toBe(200);
            expect(state.mode).toBe(mode);
            expect(state.last_seq).toBe(after.lastSeq[mode]);
          }
          expectUnpolluted();
        },
      ),
      { seed: SEED + 2, numRuns: RUNS },
    );
    expect(stateAccepted).toBeGreaterThan(RUNS / 20);
  });
});

const PARAM_NAMES = ["mode", "since_seq", "limit", "token", "last_event_id", "junk", "", "__proto__", "MODE", "mode[]"];
const PARAM_VALUES = [
  "live",
  "paper",
  "LIVE",
  "0",
  "1",
  "50",
  "1000",
  "1001",
  "-1",
  "1e3",
  "0x10",
  " 5",
  "5 ",
  "1.5",
  "9007199254740991",
  "9007199254740992",
  "99999999999999999999",
  "",
  "%00",
  "%ZZ",
  "%E0%A4%A",
  "%F0%9F%92%A5",
  TOKEN,
  "x".repeat(5000),
];
const validQuery = fc
  .tuple(
    fc.constantFrom("live", "paper"),
    fc.option(fc.constantFrom("since_seq", "last_event_id")),
    fc.nat({ max: 500 }),
    fc.option(fc.integer({ min: 1, max: 1000 })),
  )
  .map(([mode, position, seq, limit]) => {
    const params: [string, string][] = [["mode", mode]];
    if (position !== null) params.push([position, String(seq)]);
    if (limit !== null) params.push(["limit", String(limit)]);
    return params;
  });
const randomQuery = fc.array(
  fc.tuple(
    fc.constantFrom(...PARAM_NAMES),
    fc.oneof(fc.constantFrom(...PARAM_VALUES), fc.string({ maxLength: 10 }).map(encodeURIComponent)),
  ),
  {
    maxLength: 5,
  },
);
const query = fc.oneof(
  validQuery,
  randomQuery,
  fc.tuple(validQuery, randomQuery).map(([a, b]) => [...a, ...b.slice(0, 1)]),
);

describe("GET routes under fuzzing", () => {
  test("GET /local/events, /local/state and /local/stream answer 2xx/4xx for any parameters; 200s carry valid data", async () => {
    const statuses = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("/local/events", "/local/state", "/local/stream"),
        query,
        auth,
        fc.option(fc.constantFrom(...PARAM_VALUES.filter((v) => !v.startsWith("%")))),
        fc.constantFrom("GET", "GET", "GET", "HEAD", "OPTIONS", "PUT", "DELETE"),
        async (path, params, a, lastEventId, method) => {
          const qs = params.map(([k, v]) => `${k}=${v}`).join("&");
          const url = `${path}?${qs}${a.query ? `&token=${TOKEN}` : ""}`;
          const headers = new Headers();
          if (a.header !== null) headers.set("authorization", a.header);
          if (lastEventId !== null) headers.set("last-event-id", lastEventId);
          const abort = new AbortController();
          const res = await t.handle(url, { method, headers, signal: abort.signal });
          const key = `${method} ${path} ${res.status}`;
          statuses.set(key, (statuses.get(key) ?? 0) + 1);
          try {
            expect(res.status).toBeGreaterThanOrEqual(200);
            expect(res.status).toBeLessThan(500);
            if (method === "OPTIONS") return;
            // Without a header the first ?token= counts; with one (even malformed) only the header does.
            const readOk =
              a.header !== null ? a.validRead : new URL(`http://x${url}`).searchParams.get("token") === TOKEN;
            if (method === "GET" && !readOk) expect(res.status).toBe(401);
            if (res.status !== 200 || method !== "GET") {
              await expectHandled(res, method);
              return;
            }
            const mode = new URL(`http://x${url}`).searchParams.get("mode") as Mode;
            expect(MODES).toContain(mode);
            if (path === "/local/stream") {
              expect(res.headers.get("content-type")).toContain("text/event-stream");
              const reader = res.body!.getReader();
              const first = await reader.read();
              expect(new TextDecoder().decode(first.value)).toStartWith("retry:");
              await reader.cancel();
            } else if (path === "/local/events") {
              const events = (await res.json()) as { mode: string; seq: number }[];
              for (const e of events)
                expect({ mode: e.mode, errors: checkStoredEvent(e) }).toEqual({ mode, errors: [] });
              expect(events.map((e) => e.seq)).toEqual(events.map((e) => e.seq).sort((x, y) => x - y));
            } else {
              expect(((await res.json()) as { mode: string }).mode).toBe(mode);
            }
          } finally {
            abort.abort();
          }
        },
      ),
      { seed: SEED + 3, numRuns: RUNS * 2 },
    );
    for (const path of ["/local/events", "/local/state", "/local/stream"]) {
      for (const status of [200, 400, 401])
        expect({ path, status, seen: (statuses.get(`GET ${path} ${status}`) ?? 0) > 0 }).toEqual({
          path,
          status,
          seen: true,
        });
    }
    // Every fuzzed stream was closed: the slots are free again.
    const streams = await Promise.all(
      Array.from({ length: MAX_STREAMS }, async () => {
        const abort = new AbortController();
        const res = await t.handle(`/local/stream?mode=live&token=${TOKEN}`, { signal: abort.signal });
        abort.abort();
        await res.body?.cancel();
        return res.status;
      }),
    );
    expect(streams).toEqual(Array(MAX_STREAMS).fill(200));
  });
});

test("weird values in every event field are refused with field paths, or stored exactly as sent", async () => {
  await fc.assert(
    fc.asyncProperty(
      validEvent,
      fc.constantFrom("source", "type", "subtype", "body", "symbol", "severity", "ts", "meta", "idempotency_key", "id"),
      weirdValue,
      async (e, field, v) => {
        const mutated = {
          ...e,
          [field]: v,
          idempotency_key: field === "idempotency_key" ? v : crypto.randomUUID(),
        } as Record<string, unknown>;
        delete mutated.id;
        if (field === "id") mutated.id = v;
        const res = await t.handle("/local/events", {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
          body: toJsonText(mutated),
        });
        const body = (await expectHandled(res)) as {
          error?: { details: { path: string }[] };
          id?: string;
          duplicate?: boolean;
        };
        if (res.status === 400) expect(body.error!.details.length).toBeGreaterThan(0);
        if (res.status >= 400 || body.duplicate) return;
        // Accepted: what is read back is what was sent, field by field.
        const sent = JSON.parse(toJsonText(mutated)) as Record<string, unknown>;
        const stored = t.store.list(sent.mode as Mode, { limit: 1 })[0] as unknown as Record<string, unknown>;
        expect(stored.id).toBe(body.id!);
        // JSON equality (-0 and 0 are the same JSON number), but a non-finite number is not null.
        for (const [k, value] of Object.entries(sent)) expect(strictJson(stored[k])).toBe(strictJson(value));
      },
    ),
    { seed: SEED + 4, numRuns: RUNS },
  );
  expectGapless();
});
