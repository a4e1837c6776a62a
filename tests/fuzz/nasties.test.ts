// A fixed corpus of known-hostile input, over real HTTP against the real
// service process where the wire matters (lengths, slow and huge bodies,
// connections), in process where the JS heap is the point (prototype keys).
// Every answer is a 2xx or 4xx, the process never dies, and other clients
// are served throughout.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { event, postJson, testApp } from "../helpers/app.ts";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { tempDir, waitFor } from "../helpers/tmp.ts";
import { rawExchange, rssMiB, trickle } from "./wire.ts";

const TOKEN = "nasty-token-0123456789abcdef";
const AUTH = { authorization: `Bearer ${TOKEN}` };
let svc: ServiceProcess;
const dir = tempDir("zoe-nasties-");

beforeAll(async () => {
  svc = await startService({
    dbPath: dir.file("zoe.db"),
    env: { ZOE_API_TOKEN: TOKEN, ZOE_IDLE_TIMEOUT_S: "2", ZOE_LOG_LEVEL: "info" },
  });
});
afterAll(async () => {
  const code = await svc.kill("SIGTERM");
  dir.cleanup();
  expect(code).toBe(0);
});

const post = (path: string, body: BodyInit, headers: Record<string, string> = {}) =>
  fetch(`${svc.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...AUTH, ...headers },
    body,
  });
const get = (path: string, headers: Record<string, string> = {}) =>
  fetch(`${svc.url}${path}`, { headers: { ...AUTH, ...headers } });
const eventText = (meta: string, extra = "") =>
  `{"mode":"live","source":"fuzz","type":"T","subtype":"S","body":"b","idempotency_key":"${crypto.randomUUID()}","meta":${meta}${extra}}`;

async function expectRefused(res: Response, status: number, path?: string) {
  const body = (await res.json()) as { error: { code: string; details: { path: string }[] | null } };
  expect({ status: res.status, code: typeof body.error.code }).toEqual({ status, code: "string" });
  if (path !== undefined) expect(body.error.details!.map((d) => d.path)).toContain(path);
}

async function expectAlive() {
  expect(svc.proc.exitCode).toBeNull();
  const res = await get("/health");
  expect(res.status).toBe(200);
}

describe("numbers", () => {
  test("numbers beyond a double (1e400, 400 digits) are refused naming the field, not stored as null", async () => {
    for (const n of ["1e400", "-1e400", `1${"0".repeat(400)}`, `1${"0".repeat(250)}e99`]) {
      await expectRefused(await post("/local/events", eventText(`{"x":${n}}`)), 400, "/meta/x");
      await expectRefused(await post("/local/state", `{"mode":"live","cash":${n}}`), 400, "/cash");
    }
    await expectAlive();
  });

  test("-0 and 1e-400 are ordinary JSON numbers, stored as the double they parse to; 2^53+1 is refused, not rounded", async () => {
    const res = await post("/local/events", eventText(`{"zero":-0,"big":9007199254740991,"tiny":1e-400}`));
    expect(res.status).toBe(201);
    const { seq } = (await res.json()) as { seq: number };
    const [stored] = (await (await get(`/local/events?mode=live&since_seq=${seq - 1}&limit=1`)).json()) as {
      meta: Record<string, number>;
    }[];
    expect(stored!.meta).toEqual({ zero: 0, big: 9007199254740991, tiny: 0 });
    await expectRefused(await post("/local/events", eventText(`{"big":9007199254740993}`)), 400, "/meta/big");
  });

  test("seq-like values past 2^53-1 are refused: as a field, a position, a Last-Event-ID", async () => {
    await expectRefused(await post("/local/events", eventText("{}", ',"seq":9007199254740993')), 400, "/seq");
    await expectRefused(await get("/local/events?mode=live&since_seq=9007199254740992"), 400, "?since_seq");
    expect((await get("/local/events?mode=live&since_seq=9007199254740991")).status).toBe(200);
    await expectRefused(
      await get("/local/stream?mode=live", { "last-event-id": "9007199254740993" }),
      400,
      "?Last-Event-ID",
    );
    await expectRefused(await get("/local/stream?mode=live&last_event_id=1e3"), 400, "?last_event_id");
  });
});

describe("nesting", () => {
  test("100,000 levels of [ or { in a body or in meta are a 400, and the process lives on", async () => {
    const n = 100_000;
    const bodies = [
      "[".repeat(n) + "]".repeat(n),
      `${'{"a":'.repeat(n)}1${"}".repeat(n)}`,
      eventText("[".repeat(n) + "]".repeat(n)),
      eventText(`${'{"a":'.repeat(n)}1${"}".repeat(n)}`),
      "[".repeat(1_000_000), // never closed
    ];
    for (const body of bodies) {
      expect((await post("/local/events", body)).status).toBe(400);
      expect((await post("/local/state", body.replace('"mode":"live"', '"mode":"paper"'))).status).toBe(400);
    }
    await expectAlive();
  });
});

describe("encoding", () => {
  const bytes = (...parts: (string | number[])[]) =>
    Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p) : Buffer.from(p))));
  const ok = '{"mode":"live","source":"s","type":"t","subtype":"u","body":"';
  const cases: [string, BodyInit, string | undefined][] = [
    ["an invalid byte (0xFF)", bytes(ok, [0xff], '"}'), undefined],
    ["a truncated sequence (0xE2 0x82)", bytes(ok, [0xe2, 0x82], '"}'), undefined],
    ["an overlong encoding (0xC0 0xAF)", bytes(ok, [0xc0, 0xaf], '"}'), undefined],
    ["a UTF-8-encoded surrogate (0xED 0xA0 0x80)", bytes(ok, [0xed, 0xa0, 0x80], '"}'), undefined],
    ["a code point past U+10FFFF (0xF4 0x90 0x80 0x80)", bytes(ok, [0xf4, 0x90, 0x80, 0x80], '"}'), undefined],
    ["a raw NUL byte in a string", bytes(ok, [0x00], '"}'), undefined],
    ["a NUL byte between tokens", bytes('{"mode":"live",', [0x00], '"source":"s"}'), undefined],
    ["an escaped NUL in body", `${ok}a\\u0000b"}`, "/body"],
    ["an escaped NUL in meta", eventText('{"k":"\\u0000"}'), "/meta"],
    ["an escaped NUL in a meta key", eventText('{"\\u0000":1}'), "/meta"],
    ["a lone high surrogate in body", `${ok}\\ud800"}`, "/body"],
    [
      "a lone low surrogate in source",
      '{"mode":"live","source":"\\udc00","type":"t","subtype":"u","body":"b"}',
      "/source",
    ],
    ["a lone surrogate in meta", eventText('{"k":"x\\udbffy"}'), "/meta"],
    ["a reversed surrogate pair", `${ok}\\udc00\\ud800"}`, "/body"],
  ];
  for (const [what, body, path] of cases) {
    test(`${what} → 400${path ? ` at ${path}` : ""}, nothing stored`, async () => {
      const before = (await (await get("/local/state?mode=live")).json()) as { last_seq: number };
      await expectRefused(await post("/local/events", body), 400, path);
      const after = (await (await get("/local/state?mode=live")).json()) as { last_seq: number };
      expect(after.last_seq).toBe(before.last_seq);
    });
  }

  test("a UTF-8 byte order mark before the JSON is skipped (RFC 8259 lets parsers ignore it)", async () => {
    expect((await post("/local/events", bytes([0xef, 0xbb, 0xbf], `${ok}b"}`))).status).toBe(201);
  });

  test("state snapshots with NUL or lone surrogates are refused: the remote's jsonb would refuse every batch they ride with", async () => {
    await expectRefused(await post("/local/state", '{"mode":"live","note":"\\u0000"}'), 400, "");
    await expectRefused(await post("/local/state", '{"mode":"live","note":"\\ud800"}'), 400, "");
    await expectRefused(await post("/local/state", '{"mode":"live","\\udfff":1}'), 400, "");
    expect((await post("/local/state", '{"mode":"live","note":"\\ud83d\\udca5 ok"}')).status).toBe(201);
  });

  test("NUL and broken escapes in the URL and headers are 400s, never 5xx", async () => {
    await expectRefused(await get("/local/events?mode=live%00"), 400, "?mode");
    await expectRefused(await get("/local/events?mode=%ZZ"), 400, "?mode");
    await expectRefused(await get("/local/events?mode=live&limit=%E0%A4%A"), 400, "?limit");
    const nulHeader = await rawExchange(svc.port, [
      `GET /health HTTP/1.1\r\nHost: localhost\r\nX-Bad: a\u0000b\r\n\r\n`,
    ]);
    expect(nulHeader.status).toBe(400);
    const badLength = await rawExchange(svc.port, [
      `POST /local/events HTTP/1.1\r\nHost: localhost\r\nContent-Length: -5\r\n\r\n`,
    ]);
    expect(badLength.status).toBe(400);
    const twoLengths = await rawExchange(svc.port, [
      `POST /local/events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}`,
    ]);
    expect(twoLengths.status).toBe(400);
    await expectAlive();
  });
});

describe("prototype keys", () => {
  const nasty =
    '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"prototype":{"polluted":"yes"}}';

  test("__proto__/constructor/prototype keys in meta and state are kept as plain data; Object.prototype stays clean", async () => {
    const t = testApp({ apiToken: null });
    try {
      const res = await t.handle("/local/events", postJson(eventText(nasty)));
      expect(res.status).toBe(201);
      expect(
        (await t.handle("/local/state", postJson(`{"mode":"live","positions":${nasty},"__proto__":{"cash":1e6}}`)))
          .status,
      ).toBe(201);
      const [stored] = (await (await t.handle("/local/events?mode=live")).json()) as {
        meta: Record<string, unknown>;
      }[];
      expect(Object.keys(stored!.meta).sort()).toEqual(["__proto__", "constructor", "prototype"]);
      const state = (await (await t.handle("/local/state?mode=live")).json()) as Record<string, unknown>;
      // The snapshot's own "__proto__" key is data, not the object's prototype.
      expect(Object.getPrototypeOf(state)).toBe(Object.prototype);
      expect(state.cash).toBeNull();
      expect("polluted" in Object.prototype || "cash" in Object.prototype).toBe(false);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    } finally {
      await t.close();
    }
  });

  test("as top-level event fields they are unknown fields: 400 naming them", async () => {
    for (const key of ["__proto__", "constructor", "prototype"]) {
      const body = `{"${key}":{"polluted":"yes"},"mode":"live","source":"s","type":"t","subtype":"u","body":"b"}`;
      await expectRefused(await post("/local/events", body), 400, `/${key}`);
    }
    expect("polluted" in Object.prototype).toBe(false);
  });
});

describe("big and slow bodies", () => {
  test("a 10 MB body is a 413 before it is read; repeated, the process does not grow", async () => {
    const rssBefore = rssMiB(svc.proc.pid);
    const chunk = "x".repeat(64 * 1024);
    const declared = await rawExchange(
      svc.port,
      [
        `POST /local/events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 10485760\r\n\r\n`,
        ...Array<string>(160).fill(chunk),
      ],
      1,
    );
    expect(declared.status).toBe(413);
    expect(declared.sent).toBeLessThan(10_485_760 / 2);
    for (let i = 0; i < 5; i++) {
      const res = await post("/local/events", "x".repeat(10_485_760));
      await expectRefused(res, 413);
    }
    // Coarse: five 10 MB bodies held in memory would add 50 MB or more.
    expect(rssMiB(svc.proc.pid) - rssBefore).toBeLessThan(40);
    await expectAlive();
  });

  test("a chunked body without Content-Length is cut off with a 413 once past the limit", async () => {
    const chunk = "x".repeat(64 * 1024);
    const res = await rawExchange(
      svc.port,
      [
        `POST /local/events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAuthorization: Bearer ${TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n`,
        ...Array<string>(160).fill(`10000\r\n${chunk}\r\n`),
      ],
      1,
    );
    expect(res.status).toBe(413);
    expect(res.response).toContain("payload_too_large");
    // Answered long before the 10 MB were sent (the kernel's buffers take a few MB on their own).
    expect(res.sent).toBeLessThan(10_485_760 / 2);
  });

  test("a body whose connection drops midway is a 400 incomplete_body, not a logged 500", async () => {
    const t = testApp();
    try {
      let sent = false;
      const body = new ReadableStream<Uint8Array>({
        pull(c) {
          if (sent) return c.error(new DOMException("The connection was closed.", "AbortError"));
          sent = true;
          c.enqueue(new TextEncoder().encode('{"mode":"live",'));
        },
      });
      const res = await t.handle("/local/events", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        duplex: "half",
      } as RequestInit);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("incomplete_body");
    } finally {
      await t.close();
    }
  });

  test("slow headers, slow bodies and silent sockets do not hold up other clients, and are closed by the server", async () => {
    const head = `POST /local/events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAuthorization: Bearer ${TOKEN}\r\n`;
    const body = JSON.stringify(event("paper"));
    const slowHeaders = `${head}X-Pad: ${"p".repeat(200)}\r\n\r\n`;
    const slow = [
      ...Array.from({ length: 40 }, () => trickle(svc.port, "", slowHeaders, 200)),
      ...Array.from({ length: 40 }, () =>
        trickle(svc.port, `${head}Content-Length: ${body.length}\r\n\r\n`, body, 200),
      ),
      ...Array.from({ length: 40 }, () => trickle(svc.port, "", "", 1000)),
    ];
    // Meanwhile, everyone else is served as usual.
    const results = await Promise.all(
      Array.from({ length: 100 }, () => post("/local/events", JSON.stringify(event("paper"))).then((r) => r.status)),
    );
    expect(results).toEqual(Array(100).fill(201));
    await expectAlive();
    // Bun closes a trickled body after its idle timeout, stalled headers and silent sockets after ~10 s.
    const closed = await Promise.all(slow.map((s) => s.closed));
    // The server hung up on them: none got its request out.
    expect(closed.slice(0, 40).every((c) => c.sent < slowHeaders.length)).toBe(true);
    expect(closed.slice(40, 80).every((c) => c.sent < body.length)).toBe(true);
    await expectAlive();
  }, 40_000);
});

describe("many connections", () => {
  test("500 open idle connections plus 300 concurrent posts: every post is stored with a unique, gapless seq", async () => {
    const idle = await Promise.all(
      Array.from({ length: 500 }, () => {
        const t = trickle(svc.port, "", "", 60_000);
        return new Promise<typeof t>((resolve) => t.socket.on("connect", () => resolve(t)));
      }),
    );
    const before = ((await (await get("/local/state?mode=paper")).json()) as { last_seq: number }).last_seq;
    const results = await Promise.all(
      Array.from({ length: 300 }, () =>
        post("/local/events", JSON.stringify(event("paper"))).then(async (r) => ({
          status: r.status,
          ...((await r.json()) as { seq: number }),
        })),
      ),
    );
    for (const s of idle) s.socket.destroy();
    expect(results.every((r) => r.status === 201)).toBe(true);
    const seqs = results.map((r) => r.seq).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 300 }, (_, i) => before + 1 + i));
    await expectAlive();
  });

  test("HEAD /local/stream answers at once with the stream's headers and holds no stream", async () => {
    const res = await fetch(`${svc.url}/local/stream?mode=live`, { method: "HEAD", headers: AUTH });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    expect((await fetch(`${svc.url}/local/stream?mode=nope`, { method: "HEAD", headers: AUTH })).status).toBe(400);
  });
});

test("after the whole corpus the service logged no unhandled error", async () => {
  await waitFor(() => svc.output().includes("listening"), 1000, "output");
  expect(svc.output()).not.toContain("unhandled error");
  expect(svc.output()).not.toMatch(/"level":"error"/);
});
