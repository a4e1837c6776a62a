import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { Elysia } from "elysia";
import { manualClock } from "../../src/lib/clock.ts";
import { rawExchange } from "../fuzz/wire.ts";
import { event, postJson, type TestApp, testApp } from "../helpers/app.ts";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { tempDir } from "../helpers/tmp.ts";

let t: TestApp;
afterEach(async () => {
  await t?.close();
});

const stored = () => (t.store.db.query("SELECT COUNT(*) AS n FROM local_events").get() as { n: number }).n;

async function expectError(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toContain("application/json");
  const body = (await res.json()) as { error: { code: string; message: string; details: unknown } };
  expect(Object.keys(body)).toEqual(["error"]);
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe("string");
  expect(body.error.message.length).toBeGreaterThan(10);
  expect("details" in body.error).toBe(true);
  return body.error as {
    code: string;
    message: string;
    details: ({ path: string; message: string } & Record<string, unknown>)[] | null;
  };
}

describe("POST /local/events", () => {
  test("one event answers 201 {id, seq, idempotency_key, duplicate:false} after it is stored", async () => {
    t = testApp();
    const res = await t.handle("/local/events", postJson(event("live", { idempotency_key: "k-1" })));
    expect(res.status).toBe(201);
    const body = (await res.json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(["duplicate", "id", "idempotency_key", "seq"]);
    expect(body).toMatchObject({ seq: 1, idempotency_key: "k-1", duplicate: false });
    expect(stored()).toBe(1);
  });

  test("an array answers 201 {events:[...]} in request order with contiguous seqs", async () => {
    t = testApp();
    const res = await t.handle(
      "/local/events",
      postJson([event("live", { body: "a" }), event("paper", { body: "b" }), event("live", { body: "c" })]),
    );
    expect(res.status).toBe(201);
    const { events } = (await res.json()) as { events: { seq: number; duplicate: boolean }[] };
    expect(events.map((e) => e.seq)).toEqual([1, 1, 2]);
    const list = (await (await t.handle("/local/events?mode=live&since_seq=0")).json()) as { body: string }[];
    expect(list.map((e) => e.body)).toEqual(["a", "c"]);
  });

  test("a retried event answers 200 with the stored id and seq and duplicate:true", async () => {
    t = testApp();
    const e = event("live", { idempotency_key: "retry-me" });
    const first = (await (await t.handle("/local/events", postJson(e))).json()) as Record<string, unknown>;
    const res = await t.handle("/local/events", postJson(e));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ...first, duplicate: true });
    expect(stored()).toBe(1);
  });

  test("an array of only duplicates answers 200; a mix of new and duplicate answers 201", async () => {
    t = testApp();
    const a = event("live", { idempotency_key: "a" });
    const b = event("live", { idempotency_key: "b" });
    await t.handle("/local/events", postJson([a, b]));
    const again = await t.handle("/local/events", postJson([b, a]));
    expect(again.status).toBe(200);
    const { events } = (await again.json()) as { events: { seq: number; duplicate: boolean }[] };
    expect(events.map((e) => [e.seq, e.duplicate])).toEqual([
      [2, true],
      [1, true],
    ]);
    const c = event("live", { idempotency_key: "c" });
    const mixed = await t.handle("/local/events", postJson([a, c, c]));
    expect(mixed.status).toBe(201);
    const m = (await mixed.json()) as { events: { seq: number; duplicate: boolean }[] };
    expect(m.events.map((e) => [e.seq, e.duplicate])).toEqual([
      [1, true],
      [3, false],
      [3, true],
    ]);
  });

  test("one invalid event in an array stores nothing and names its index", async () => {
    t = testApp();
    const res = await t.handle("/local/events", postJson([event(), event(), event("live", { mode: "demo" }), event()]));
    const error = await expectError(res, 400, "invalid_request");
    expect(error.details).toEqual([{ path: "/2/mode", message: "Expected one of: paper, live" }]);
    expect(error.message).toContain("event 2");
    expect(stored()).toBe(0);
    expect(t.store.lastSeq("live")).toBe(0);
  });

  test("a conflicting event in an array answers 409, stores nothing and advances no counter", async () => {
    t = testApp();
    const id = "0190a6f0-0000-7000-8000-0000000000dd";
    await t.handle("/local/events", postJson(event("live", { id, idempotency_key: "owner" })));
    const res = await t.handle(
      "/local/events",
      postJson([event("live"), event("paper"), event("live", { id, idempotency_key: "thief" })]),
    );
    const error = await expectError(res, 409, "conflict");
    expect(error.details).toEqual([{ path: "/2/id", message: "Already used by another event" }]);
    expect(stored()).toBe(1);
    expect([t.store.lastSeq("live"), t.store.lastSeq("paper")]).toEqual([1, 0]);
    const next = (await (await t.handle("/local/events", postJson(event("live")))).json()) as { seq: number };
    expect(next.seq).toBe(2);
  });

  test("a key reused for another event answers 409 idempotency_conflict naming the stored event; paths point into what was posted", async () => {
    t = testApp();
    const fill = event("live", { idempotency_key: "order-4711-fill", symbol: "AAPL" });
    const first = (await (await t.handle("/local/events", postJson(fill))).json()) as { id: string; seq: number };
    // The same key for a paper event: refused, not answered as a duplicate of the live one.
    const single = await t.handle("/local/events", postJson({ ...fill, mode: "paper" }));
    const error = await expectError(single, 409, "idempotency_conflict");
    expect(error.message).toStartWith(
      `Cannot store the event: idempotency_key "order-4711-fill" is already used by event ${first.id} (mode live, seq 1), which differs in mode`,
    );
    expect(error.details).toEqual([
      {
        path: "/idempotency_key",
        message: expect.any(String),
        stored_event: { id: first.id, mode: "live", seq: 1 },
        fields: ["mode"],
      },
    ]);
    const batch = await t.handle("/local/events", postJson([event("paper"), { ...fill, body: "Bought 11 AAPL" }]));
    expect((await expectError(batch, 409, "idempotency_conflict")).details).toMatchObject([
      { path: "/1/idempotency_key", fields: ["body"] },
    ]);
    expect(stored()).toBe(1);
    expect([t.store.lastSeq("live"), t.store.lastSeq("paper")]).toEqual([1, 0]);
    // A true repeat is still a duplicate.
    const again = await t.handle("/local/events", postJson(fill));
    expect([again.status, await again.json()]).toEqual([
      200,
      { ...first, idempotency_key: "order-4711-fill", duplicate: true },
    ]);
  });

  test("exactly 1000 events and a body of exactly 64 KiB are accepted", async () => {
    t = testApp();
    const many = await t.handle(
      "/local/events",
      postJson(
        Array.from({ length: 1000 }, () => ({ mode: "paper", source: "s", type: "t", subtype: "u", body: "b" })),
      ),
    );
    expect(many.status).toBe(201);
    const big = await t.handle("/local/events", postJson(event("live", { body: "é".repeat(32_768) })));
    expect(big.status).toBe(201);
    expect(stored()).toBe(1001);
  });
});

describe("bad input: 4xx JSON {error:{code,message,details}}, field paths, nothing stored", () => {
  const ok = () => event("live");
  const cases: [string, () => RequestInit, number, string, string | null][] = [
    ["malformed JSON", () => postJson('{"mode": "live",'), 400, "malformed_json", null],
    ["an empty body", () => postJson(""), 400, "malformed_json", null],
    [
      "a body that is not UTF-8",
      () => ({
        method: "POST",
        headers: { "content-type": "application/json" },
        body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
      }),
      400,
      "malformed_json",
      null,
    ],
    [
      "a text/plain content type",
      () => ({ ...postJson(ok()), headers: { "content-type": "text/plain" } }),
      415,
      "unsupported_media_type",
      null,
    ],
    [
      "no content type",
      () => ({ method: "POST", body: new Blob([JSON.stringify(ok())]).stream(), duplex: "half" }) as RequestInit,
      415,
      "unsupported_media_type",
      null,
    ],
    ["a JSON scalar", () => postJson("42"), 400, "invalid_request", ""],
    ["JSON null", () => postJson("null"), 400, "invalid_request", ""],
    [
      "a missing required field",
      () => postJson({ mode: "live", type: "t", subtype: "u", body: "b" }),
      400,
      "invalid_request",
      "/source",
    ],
    ["a mistyped field", () => postJson({ ...ok(), body: 5 }), 400, "invalid_request", "/body"],
    ["an empty string", () => postJson({ ...ok(), subtype: "" }), 400, "invalid_request", "/subtype"],
    ["an unknown field", () => postJson({ ...ok(), price: 10 }), 400, "invalid_request", "/price"],
    ["an unknown mode", () => postJson({ ...ok(), mode: "backtest" }), 400, "invalid_request", "/mode"],
    [
      "a missing mode",
      () => postJson({ source: "s", type: "t", subtype: "u", body: "b" }),
      400,
      "invalid_request",
      "/mode",
    ],
    ["an unknown severity", () => postJson({ ...ok(), severity: "fatal" }), 400, "invalid_request", "/severity"],
    [
      "a ts with a space instead of T",
      () => postJson({ ...ok(), ts: "2026-01-02 10:00:00Z" }),
      400,
      "invalid_request",
      "/ts",
    ],
    ["a ts without offset", () => postJson({ ...ok(), ts: "2026-01-02T10:00:00" }), 400, "invalid_request", "/ts"],
    [
      "a ts on a day that does not exist",
      () => postJson({ ...ok(), ts: "2026-02-30T10:00:00Z" }),
      400,
      "invalid_request",
      "/ts",
    ],
    ["a ts as epoch millis", () => postJson({ ...ok(), ts: 1767348000000 }), 400, "invalid_request", "/ts"],
    ["an id that is not a UUID", () => postJson({ ...ok(), id: "order-1" }), 400, "invalid_request", "/id"],
    ["meta that is an array", () => postJson({ ...ok(), meta: [1, 2] }), 400, "invalid_request", "/meta"],
    [
      "an integer in meta beyond 2^53 - 1 (it would be rounded)",
      () => postJson(`${JSON.stringify({ ...ok(), meta: { qty: 1 } }).slice(0, -2)},"ts_ns":1765100000123456789}}`),
      400,
      "invalid_request",
      null, // a read error, like 1e400: its path and message are in tests/http/body.test.ts
    ],
    [
      "a body over 64 KiB of UTF-8 (but under 64 Ki characters)",
      () => postJson({ ...ok(), body: "€".repeat(22_000) }),
      400,
      "invalid_request",
      "/body",
    ],
    ["a NUL character in body", () => postJson({ ...ok(), body: "a\u0000b" }), 400, "invalid_request", "/body"],
    ["an empty array", () => postJson([]), 400, "invalid_request", ""],
    ["more than 1000 events", () => postJson(Array.from({ length: 1001 }, ok)), 400, "invalid_request", ""],
    [
      "a bad event deep in an array",
      () => postJson([ok(), ok(), ok(), { ...ok(), symbol: 7 }]),
      400,
      "invalid_request",
      "/3/symbol",
    ],
    [
      "meta nested 100,000 levels deep",
      () =>
        postJson(
          `{"mode":"live","source":"s","type":"t","subtype":"u","body":"b","meta":{"x":${"[".repeat(100_000)}${"]".repeat(100_000)}}}`,
        ),
      400,
      "invalid_request",
      null,
    ],
  ];
  for (const [what, init, status, code, path] of cases) {
    test(`${what} → ${status} ${code}${path === null ? "" : ` at "${path}"`}`, async () => {
      t = testApp();
      const error = await expectError(await t.handle("/local/events", init()), status, code);
      if (path !== null) expect(error.details!.map((d) => d.path)).toContain(path);
      if (path !== null) expect(error.message).toContain("Cannot store events");
      expect(stored()).toBe(0);
      expect(t.store.lastSeq("live")).toBe(0);
    });
  }

  test("a request over 1 MiB with Content-Length → 413 before it is read", async () => {
    t = testApp();
    const body = JSON.stringify(Array.from({ length: 900 }, () => event("live", { body: "x".repeat(1200) })));
    expect(body.length).toBeGreaterThan(1_048_576);
    const error = await expectError(
      await t.handle("/local/events", {
        ...postJson(body),
        headers: { "content-type": "application/json", "content-length": String(body.length) },
      }),
      413,
      "payload_too_large",
    );
    expect(error.message).toContain("exceeds 1048576 bytes");
    expect(stored()).toBe(0);
  });

  test("a chunked request over 1 MiB without Content-Length → 413, cut off while streaming", async () => {
    t = testApp();
    let sent = 0;
    const chunk = new TextEncoder().encode(" ".repeat(64 * 1024));
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent > 4 * 1_048_576) return c.close(); // more than the limit, far less than "forever"
        sent += chunk.byteLength;
        c.enqueue(chunk);
      },
    });
    const res = await t.handle("/local/events", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      duplex: "half",
    } as RequestInit);
    await expectError(res, 413, "payload_too_large");
    expect(sent).toBeLessThan(4 * 1_048_576);
    expect(stored()).toBe(0);
  });

  test("details list every bad field, capped for huge batches", async () => {
    t = testApp();
    const two = await expectError(
      await t.handle("/local/events", postJson({ mode: "x", source: "", type: "t", subtype: "u", body: "b" })),
      400,
      "invalid_request",
    );
    expect(two.details!.map((d) => d.path).sort()).toEqual(["/mode", "/source"]);
    const missing = await expectError(
      await t.handle("/local/events", postJson({ mode: "live" })),
      400,
      "invalid_request",
    );
    expect(missing.details).toEqual(
      ["/source", "/type", "/subtype", "/body"].map((path) => ({ path, message: "Expected required property" })),
    );
    const many = await expectError(
      await t.handle("/local/events", postJson(Array.from({ length: 1000 }, () => ({ mode: "x" })))),
      400,
      "invalid_request",
    );
    expect(many.details!.length).toBeLessThanOrEqual(120);
  });
});

describe("failing disk", () => {
  test("a full disk answers 503 with Retry-After; the service keeps serving and recovers", async () => {
    t = testApp();
    await t.handle("/local/events", postJson(event()));
    const pages = (t.store.db.query("PRAGMA page_count").get() as { page_count: number }).page_count;
    t.store.db.run(`PRAGMA max_page_count = ${pages}`);
    const res = await t.handle(
      "/local/events",
      postJson(Array.from({ length: 100 }, () => event("live", { body: "x".repeat(5000) }))),
    );
    const error = await expectError(res, 503, "store_unavailable");
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(error.message).toContain("disk or database is full");
    const state = await t.handle("/local/state", postJson({ mode: "live", cash: 1, blob: "y".repeat(50_000) }));
    await expectError(state, 503, "store_unavailable");

    expect((await t.handle("/health")).status).toBe(200);
    expect(((await (await t.handle("/local/events?mode=live")).json()) as unknown[]).length).toBe(1);

    t.store.db.run("PRAGMA max_page_count = 1073741823");
    const after = await t.handle("/local/events", postJson(event()));
    expect(after.status).toBe(201);
    expect(((await after.json()) as { seq: number }).seq).toBe(2);
  });

  test("a read-only database answers 503 store_unavailable", async () => {
    t = testApp();
    t.store.db.run("PRAGMA query_only = ON");
    const error = await expectError(await t.handle("/local/events", postJson(event())), 503, "store_unavailable");
    expect(error.message).toContain("read-only");
  });
});

describe("GET /local/events", () => {
  test("since_seq gives seq > since_seq ascending; without it, the newest `limit` (default 50), ascending", async () => {
    t = testApp();
    await t.handle(
      "/local/events",
      postJson(Array.from({ length: 60 }, (_, i) => event("live", { body: `n${i + 1}` }))),
    );
    const seqs = async (q: string) =>
      ((await (await t.handle(`/local/events?${q}`)).json()) as { seq: number }[]).map((e) => e.seq);
    expect(await seqs("mode=live")).toEqual(Array.from({ length: 50 }, (_, i) => i + 11));
    expect(await seqs("mode=live&limit=3")).toEqual([58, 59, 60]);
    expect(await seqs("mode=live&since_seq=0&limit=2")).toEqual([1, 2]);
    expect(await seqs("mode=live&since_seq=58")).toEqual([59, 60]);
    expect(await seqs("mode=paper")).toEqual([]);
  });

  test("each event carries the contract fields with meta parsed back to an object", async () => {
    t = testApp();
    await t.handle(
      "/local/events",
      postJson(
        event("live", { symbol: "MSFT", severity: "warn", meta: { qty: 3 }, ts: "2026-01-02T15:04:05.123+01:00" }),
      ),
    );
    const [e] = (await (await t.handle("/local/events?mode=live")).json()) as Record<string, unknown>[];
    for (const k of ["id", "ts", "seq", "source", "type", "subtype", "symbol", "severity", "body", "meta"])
      expect(e).toHaveProperty(k);
    expect(e).toMatchObject({
      seq: 1,
      symbol: "MSFT",
      severity: "warn",
      meta: { qty: 3 },
      ts: "2026-01-02T15:04:05.123+01:00",
    });
  });

  test("subtype, severity, type and symbol filters: the newest fills however many ticks followed, pages by before_seq", async () => {
    t = testApp();
    const tick = (i: number) => event("live", { type: "TICK", subtype: "PRICE", severity: "debug", body: `tick ${i}` });
    await t.handle(
      "/local/events",
      postJson([
        event("live", { subtype: "BUY_FILLED", symbol: "AAPL" }),
        event("live", { type: "RISK", subtype: "KILL_SWITCH", severity: "critical" }),
        event("paper", { subtype: "BUY_FILLED", symbol: "AAPL" }),
      ]),
    );
    for (let b = 0; b < 3; b++)
      await t.handle("/local/events", postJson(Array.from({ length: 500 }, (_, i) => tick(b * 500 + i))));
    await t.handle(
      "/local/events",
      postJson([
        event("live", { subtype: "SELL_FILLED", symbol: "MSFT", severity: "warn" }),
        event("live", { type: "SYSTEM", subtype: "BROKER_DOWN", severity: "error" }),
      ]),
    );
    const get = async (q: string) => {
      const res = await t.handle(`/local/events?mode=live&${q}`);
      expect(res.status).toBe(200);
      return ((await res.json()) as { seq: number; subtype: string; mode: string }[]).map(
        (e) => `${e.seq} ${e.subtype}`,
      );
    };
    // The newest 200 of the mode are all ticks or later: the fill of seq 1 is only reachable by a filter.
    expect((await get("limit=200")).some((e) => e.endsWith("BUY_FILLED"))).toBe(false);
    expect(await get("subtype=BUY_FILLED,SELL_FILLED,KILL_SWITCH&limit=200")).toEqual([
      "1 BUY_FILLED",
      "2 KILL_SWITCH",
      "1503 SELL_FILLED",
    ]);
    expect(await get("severity=error")).toEqual(["2 KILL_SWITCH", "1504 BROKER_DOWN"]);
    expect(await get("severity=warn&limit=2")).toEqual(["1503 SELL_FILLED", "1504 BROKER_DOWN"]);
    expect(await get("severity=warn&since_seq=0&limit=2")).toEqual(["2 KILL_SWITCH", "1503 SELL_FILLED"]);
    expect(await get("severity=warn&before_seq=1503")).toEqual(["2 KILL_SWITCH"]);
    expect(await get("subtype=BUY_FILLED,SELL_FILLED&symbol=MSFT")).toEqual(["1503 SELL_FILLED"]);
    expect(await get("type=RISK,SYSTEM")).toEqual(["2 KILL_SWITCH", "1504 BROKER_DOWN"]);
    expect(await get("symbol=aapl")).toEqual([]);
    expect(await get("subtype=PRICE&severity=info")).toEqual([]);
    expect(await get("subtype=PRICE&limit=3&before_seq=100")).toEqual(["97 PRICE", "98 PRICE", "99 PRICE"]);
    expect(await get("severity=debug&limit=1")).toEqual(["1504 BROKER_DOWN"]);
  });

  const bad: [string, string][] = [
    ["mode=live&subtype=BUY_FILLED,", "subtype"],
    ["mode=live&subtype=A,A", "subtype"],
    ["mode=live&severity=ERROR", "severity"],
    ["mode=live&severity=warn,error", "severity"],
    ["mode=live&symbol=", "symbol"],
    ["mode=live&type=ORDER&type=RISK", "type"],
    ["mode=live&before_seq=0", "before_seq"],
    ["mode=live&sev=warn", "sev"],
    ["", "mode"],
    ["mode=demo", "mode"],
    ["mode=live&limit=0", "limit"],
    ["mode=live&limit=1001", "limit"],
    ["mode=live&limit=ten", "limit"],
    ["mode=live&since_seq=-1", "since_seq"],
    ["mode=live&since_seq=1.5", "since_seq"],
    ["mode=live&sinceSeq=4", "sinceSeq"],
    ["mode=live&limit=5&limit=6", "limit"],
  ];
  for (const [query, param] of bad) {
    test(`?${query || "(nothing)"} → 400 naming ${param}`, async () => {
      t = testApp();
      const error = await expectError(await t.handle(`/local/events?${query}`), 400, "invalid_request");
      expect(error.details).toEqual([{ path: `?${param}`, message: expect.any(String) }]);
      expect(error.message).toContain(param);
    });
  }
});

describe("state", () => {
  test("POST /local/state stores a snapshot; GET gives {cash, holdings, positions, health, last_seq} from the newest", async () => {
    const clock = manualClock("2026-04-01T13:00:00Z");
    t = testApp({ clock, store: { stateKeep: 2 } });
    await t.handle("/local/events", postJson([event("live"), event("live")]));
    const first = await t.handle("/local/state", postJson({ mode: "live", cash: 100, holdings: [], positions: {} }));
    expect(first.status).toBe(201);
    expect(await first.json()).toEqual({ mode: "live", ts: "2026-04-01T13:00:00.000Z", last_seq: 2 });
    clock.advance(60_000);
    await t.handle(
      "/local/state",
      postJson({
        mode: "live",
        cash: 95.5,
        holdings: [{ symbol: "AAPL", qty: 1 }],
        positions: { AAPL: 1 },
        equity: 290,
      }),
    );
    const res = await t.handle("/local/state?mode=live");
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      mode: "live",
      cash: 95.5,
      holdings: [{ symbol: "AAPL", qty: 1 }],
      positions: { AAPL: 1 },
      equity: 290,
      last_seq: 2,
      state_ts: "2026-04-01T13:01:00.000Z",
    });
    expect(body.health).toMatchObject({
      backlog: 2,
      last_flush_ts: null,
      last_flush_status: null,
      remote_configured: false,
      uptime_s: 60,
    });
  });

  test("GET /local/state before any snapshot has null fields and still reports last_seq and health", async () => {
    t = testApp();
    const body = (await (await t.handle("/local/state?mode=paper")).json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      mode: "paper",
      cash: null,
      holdings: null,
      positions: null,
      state_ts: null,
      last_seq: 0,
    });
    expect(body.health).toMatchObject({ backlog: 0 });
  });

  test("bad state requests are 4xx with field paths and store nothing", async () => {
    t = testApp();
    await expectError(await t.handle("/local/state", postJson({ cash: 1 })), 400, "invalid_request");
    const e = await expectError(await t.handle("/local/state", postJson({ mode: "sim" })), 400, "invalid_request");
    expect(e.details![0]!.path).toBe("/mode");
    await expectError(await t.handle("/local/state", postJson([{ mode: "live" }])), 400, "invalid_request");
    await expectError(await t.handle("/local/state", postJson("{")), 400, "malformed_json");
    await expectError(
      await t.handle("/local/state", { method: "POST", body: "{}", headers: { "content-type": "text/plain" } }),
      415,
      "unsupported_media_type",
    );
    await expectError(await t.handle("/local/state?mode=x"), 400, "invalid_request");
    await expectError(await t.handle("/local/state?mode=live&extra=1"), 400, "invalid_request");
    expect(t.store.latestState("live")).toBeNull();
  });
});

describe("health and docs", () => {
  test("GET /health is 200 while the database answers, 503 when it does not", async () => {
    t = testApp();
    const res = await t.handle("/health");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      status: "ok",
      db: "ok",
      modes: { paper: { backlog: 0 }, live: { backlog: 0 } },
    });
    t.store.db.close();
    const down = await t.handle("/health");
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({ status: "unavailable" });
  });

  test("GET /docs serves an OpenAPI document with the event schema as POST /local/events' body", async () => {
    t = testApp();
    expect((await t.handle("/docs")).status).toBe(200);
    const doc = (await (await t.handle("/docs/json")).json()) as {
      openapi: string;
      components: { schemas: Record<string, { anyOf?: Record<string, unknown>[] } & Record<string, unknown>> };
      paths: Record<
        string,
        Record<
          string,
          {
            requestBody?: { content: Record<string, { schema: { anyOf: Record<string, unknown>[] } }> };
            parameters?: { name: string }[];
          }
        >
      >;
    };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(["/local/events", "/local/state", "/local/stream", "/health"]),
    );
    const schema = doc.paths["/local/events"]!.post!.requestBody!.content["application/json"]!.schema;
    // The body is the named EventsRequest: one Event, or an array of them.
    expect(schema).toEqual({ $ref: "#/components/schemas/EventsRequest" } as never);
    const [oneRef, many] = doc.components.schemas.EventsRequest!.anyOf as [Record<string, any>, Record<string, any>];
    expect(oneRef).toEqual({ $ref: "#/components/schemas/Event" });
    expect(many.items).toEqual({ $ref: "#/components/schemas/Event" });
    const one = doc.components.schemas.Event as Record<string, any>;
    expect(one.required).toEqual(["mode", "source", "type", "subtype", "body"]);
    expect(one.additionalProperties).toBe(false);
    expect(Object.keys(one.properties)).toEqual(
      expect.arrayContaining([
        "mode",
        "source",
        "type",
        "subtype",
        "body",
        "symbol",
        "severity",
        "ts",
        "meta",
        "idempotency_key",
        "id",
      ]),
    );
    expect(many).toMatchObject({ type: "array", minItems: 1, maxItems: 1000 });
    expect(doc.paths["/local/state"]!.post!.requestBody!.content["application/json"]).toBeDefined();
    expect(doc.paths["/local/events"]!.get!.parameters!.map((p) => p.name)).toEqual(
      expect.arrayContaining(["mode", "since_seq", "limit"]),
    );
    expect(doc.paths["/local/stream"]!.get!.parameters!.map((p) => p.name)).toEqual(
      expect.arrayContaining(["mode", "last_event_id", "since_seq"]),
    );
  });

  test("an unknown route is a 404 JSON error", async () => {
    t = testApp();
    const e = await expectError(await t.handle("/local/nothing"), 404, "not_found");
    expect(e.message).toContain("/local/nothing");
  });
});

describe("auth", () => {
  const TOKEN = "s3cret-token-0123456789";
  const bearer = (token = TOKEN) => ({ authorization: `Bearer ${token}` });

  test("writes need Authorization: Bearer; a query token, a wrong token or none is 401", async () => {
    t = testApp({ apiToken: TOKEN });
    await expectError(await t.handle("/local/events", postJson(event())), 401, "unauthorized");
    await expectError(
      await t.handle("/local/events", postJson(event(), bearer("wrong-token-0123456789"))),
      401,
      "unauthorized",
    );
    await expectError(await t.handle(`/local/events?token=${TOKEN}`, postJson(event())), 401, "unauthorized");
    await expectError(
      await t.handle("/local/events", postJson(event(), { authorization: `Basic ${btoa(`x:${TOKEN}`)}` })),
      401,
      "unauthorized",
    );
    await expectError(await t.handle("/local/state", postJson({ mode: "live" })), 401, "unauthorized");
    expect(stored()).toBe(0);
    expect((await t.handle("/local/events", postJson(event(), bearer()))).status).toBe(201);
    expect((await t.handle("/local/state", postJson({ mode: "live" }, bearer()))).status).toBe(201);
  });

  test("reads take the Bearer header or ?token=; wrong or missing is 401", async () => {
    t = testApp({ apiToken: TOKEN });
    for (const path of ["/local/events?mode=live", "/local/state?mode=live", "/health"]) {
      await expectError(await t.handle(path), 401, "unauthorized");
      await expectError(await t.handle(`${path}${path.includes("?") ? "&" : "?"}token=nope`), 401, "unauthorized");
      expect((await t.handle(path, { headers: bearer() })).status).toBe(200);
      expect((await t.handle(`${path}${path.includes("?") ? "&" : "?"}token=${TOKEN}`)).status).toBe(200);
    }
    await expectError(await t.handle("/local/stream?mode=live"), 401, "unauthorized");
    const stream = await t.handle(`/local/stream?mode=live&token=${TOKEN}`);
    expect(stream.status).toBe(200);
    await stream.body!.cancel();
  });

  test("the 401 is checked before the body is read or validated", async () => {
    t = testApp({ apiToken: TOKEN });
    await expectError(await t.handle("/local/events", postJson("not json")), 401, "unauthorized");
  });

  test("/docs and CORS preflights need no token", async () => {
    t = testApp({ apiToken: TOKEN });
    expect((await t.handle("/docs/json")).status).toBe(200);
    const pre = await t.handle("/local/events", {
      method: "OPTIONS",
      headers: { origin: "http://localhost:5173", "access-control-request-method": "POST" },
    });
    expect(pre.status).toBe(204);
  });

  test("routes mounted by plugins are guarded too", async () => {
    t = testApp({ apiToken: TOKEN, plugins: [new Elysia().get("/local/extra", () => ({ ok: true }))] });
    await expectError(await t.handle("/local/extra"), 401, "unauthorized");
    expect((await t.handle(`/local/extra?token=${TOKEN}`)).status).toBe(200);
  });

  test("without a configured token every route is open", async () => {
    t = testApp({ apiToken: null });
    expect((await t.handle("/local/events", postJson(event()))).status).toBe(201);
    expect((await t.handle("/local/events?mode=live")).status).toBe(200);
  });
});

describe("CORS", () => {
  const ALLOWED = "http://localhost:5173";

  test("an allowed origin is reflected on reads, writes, errors and streams, never as * nor with credentials", async () => {
    t = testApp({ corsOrigins: [ALLOWED, "http://192.168.1.20:8765"], apiToken: "s3cret-token-0123456789" });
    const responses = [
      await t.handle("/local/events?mode=live&token=s3cret-token-0123456789", { headers: { origin: ALLOWED } }),
      await t.handle(
        "/local/events",
        postJson(event(), { origin: ALLOWED, authorization: "Bearer s3cret-token-0123456789" }),
      ),
      await t.handle("/local/events", postJson(event(), { origin: ALLOWED })),
      await t.handle(
        "/local/events",
        postJson("{", { origin: ALLOWED, authorization: "Bearer s3cret-token-0123456789" }),
      ),
      await t.handle("/local/stream?mode=live&token=s3cret-token-0123456789", { headers: { origin: ALLOWED } }),
    ];
    expect(responses.map((r) => r.status)).toEqual([200, 201, 401, 400, 200]);
    for (const r of responses) {
      expect(r.headers.get("access-control-allow-origin")).toBe(ALLOWED);
      expect(r.headers.get("access-control-allow-credentials")).not.toBe("true");
      expect(r.headers.get("vary")).toContain("Origin");
    }
    await responses[4]!.body!.cancel();
  });

  test("the ingest fast path answers with exactly the CORS headers the plugin gives every other route", async () => {
    t = testApp({ corsOrigins: [ALLOWED] });
    const cors = (r: Response) =>
      Object.fromEntries([...r.headers].filter(([k]) => k.startsWith("access-control-") || k === "vary"));
    for (const origin of [ALLOWED, "http://evil.example"]) {
      const read = await t.handle("/local/events?mode=live", { headers: { origin } });
      const write = await t.handle("/local/events", postJson(event(), { origin }));
      expect([write.status, cors(write)]).toEqual([201, cors(read)]);
    }
  });

  test("an unknown origin is not reflected", async () => {
    t = testApp({ corsOrigins: [ALLOWED] });
    for (const r of [
      await t.handle("/local/events?mode=live", { headers: { origin: "http://evil.example" } }),
      await t.handle("/local/events", {
        method: "OPTIONS",
        headers: { origin: "http://evil.example", "access-control-request-method": "POST" },
      }),
      await t.handle("/local/events?mode=live", { headers: { origin: "http://localhost:51730" } }),
    ]) {
      expect(r.headers.get("access-control-allow-origin")).toBeNull();
    }
  });

  test("a preflight from an allowed origin allows POST with Authorization and Last-Event-ID and exposes Retry-After", async () => {
    t = testApp({ corsOrigins: [ALLOWED] });
    const pre = await t.handle("/local/events", {
      method: "OPTIONS",
      headers: {
        origin: ALLOWED,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,authorization",
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe(ALLOWED);
    expect(pre.headers.get("access-control-allow-methods")).toContain("POST");
    const allowed = pre.headers.get("access-control-allow-headers")!.toLowerCase();
    for (const h of ["content-type", "authorization", "last-event-id"]) expect(allowed).toContain(h);
    const get = await t.handle("/local/events?mode=live", { headers: { origin: ALLOWED } });
    expect(get.headers.get("access-control-expose-headers")?.toLowerCase()).toContain("retry-after");
  });
});

describe("the path and the query, on the real service", () => {
  const TOKEN = "paths-token-0123456789abcdef";
  let svc: ServiceProcess;
  const dir = tempDir("zoe-paths-");
  beforeAll(async () => {
    svc = await startService({ dbPath: dir.file("zoe.db"), env: { ZOE_API_TOKEN: TOKEN } });
  });
  afterAll(async () => {
    await svc.kill("SIGTERM");
    dir.cleanup();
  });

  const raw = async (target: string, extra = "") => {
    const { response } = await rawExchange(svc.port, [
      `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close${extra}\r\n\r\n`,
    ]);
    const at = response.indexOf("\r\n\r\n");
    const type = /\r\ncontent-type:\s*([^\r]+)/i.exec(response.slice(0, at))?.[1] ?? null;
    return { status: Number(response.split(" ")[1]), type, body: response.slice(at + 4) };
  };

  test("withRoutablePath() drops a fragment (fetch() never sends one): GET /docs#/x answers like /docs, and the auth check and the router see one path", async () => {
    const docs = await raw("/docs");
    expect(docs.status).toBe(200);
    expect(await raw("/docs#/x")).toMatchObject({ status: 200, type: docs.type });
    expect((await raw("/docs/json#/paths")).status).toBe(200);
    // A guarded path with a fragment is guarded, and routed once authorised.
    expect((await raw("/local/events#/x?mode=live")).status).toBe(401);
    const auth = `\r\nAuthorization: Bearer ${TOKEN}`;
    expect((await raw("/local/events?mode=live#frag", auth)).status).toBe(200);
    expect((await raw("/health#x", auth)).status).toBe(200);
  });

  test("GET /health, /ready, /metrics and /local/status refuse an unknown query parameter with 400 naming it, and keep ?token=", async () => {
    for (const path of ["/health", "/ready", "/metrics", "/local/status"]) {
      const res = await fetch(`${svc.url}${path}?token=${TOKEN}&verbose=1`);
      expect(res.status, path).toBe(400);
      const error = ((await res.json()) as { error: { code: string; details: { path: string }[] } }).error;
      expect(error).toMatchObject({ code: "invalid_request", details: [{ path: "?verbose" }] });
      expect((await fetch(`${svc.url}${path}?token=${TOKEN}`)).status, path).toBe(200);
      expect((await fetch(`${svc.url}${path}?token=${TOKEN}&token=${TOKEN}`)).status, path).toBe(400);
      expect((await fetch(`${svc.url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, path).toBe(
        200,
      );
    }
  });
});
