// The zoe-ingest Edge Function, run by real Deno behind the local gateway,
// writing to a real Postgres database of its own.
import { SQL } from "bun";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { StoredEvent } from "../../supabase/functions/_shared/event-schema.ts";
import { signJwt } from "../../supabase/functions/_shared/jwt.ts";
import { CONFLICTING_CHANGES } from "../helpers/idempotency.ts";
import { remoteEvent } from "../helpers/remote-event.ts";
import { type SupabaseStack, startSupabaseStack } from "../helpers/supabase-stack.ts";
import { denoBinary, denoEnv } from "../../scripts/supabase-local/deno.ts";

const ROOT = join(import.meta.dir, "..", "..");
const FN_DIR = join(ROOT, "supabase", "functions", "zoe-ingest");
const FLUSH_SECRET = "test-flush-secret-0123456789";

let stack: SupabaseStack;
beforeAll(async () => {
  stack = await startSupabaseStack({
    functionEnv: { ZOE_FLUSH_SECRET: FLUSH_SECRET, ZOE_INGEST_LOCK_TIMEOUT_MS: "300" },
  });
});
afterAll(async () => {
  await stack?.stop();
});
// (mode, seq) is unique: each test starts from empty tables, so the seqs one
// test writes never clash with another's.
beforeEach(async () => {
  await stack.sql`truncate zoe_events, zoe_health, zoe_state`;
});

interface IngestBody {
  results: {
    idempotency_key: string | null;
    seq: number | null;
    status: string;
    code?: string;
    stored_event?: { id: string; mode: string; seq: number };
    errors?: { path: string; message: string }[];
  }[];
  accepted: number;
  duplicates: number;
  rejected: number;
  conflicts: number;
  error?: { code: string; message: string; details: unknown };
}

async function flush(body: unknown, headers: Record<string, string> = { authorization: `Bearer ${stack.serviceKey}` }) {
  const res = await fetch(stack.functionUrl, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as IngestBody, headers: res.headers };
}

const keysOf = (events: StoredEvent[]) => events.map((e) => e.idempotency_key);
async function rowsFor(keys: string[]): Promise<{ idempotency_key: string; seq: string }[]> {
  return await stack.sql`select idempotency_key, seq from zoe_events where idempotency_key in ${stack.sql(keys)} order by seq`;
}

describe("zoe-ingest packaging", () => {
  test("deno check passes on the function", async () => {
    const proc = Bun.spawn(
      [denoBinary(), "check", "--frozen", `--config=${join(FN_DIR, "deno.json")}`, join(FN_DIR, "index.ts")],
      {
        stdout: "pipe",
        stderr: "pipe",
        env: denoEnv(),
      },
    );
    const [err, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
    expect({ code, err: code === 0 ? "" : err }).toEqual({ code: 0, err: "" });
  });

  test("deno.json maps @sinclair/typebox to the version package.json pins", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
    const deno = JSON.parse(readFileSync(join(FN_DIR, "deno.json"), "utf8"));
    const pinned = pkg.dependencies["@sinclair/typebox"];
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    expect(deno.imports["@sinclair/typebox"]).toBe(`npm:@sinclair/typebox@${pinned}`);
    expect(deno.imports["@sinclair/typebox/"]).toBe(`npm:/@sinclair/typebox@${pinned}/`);
  });

  test("a bad setting stops the function at boot with the variable's name", async () => {
    const attempt = startSupabaseStack({ functionEnv: { ZOE_INGEST_MAX_EVENTS: "lots" } });
    await expect(attempt).rejects.toThrow(/ZOE_INGEST_MAX_EVENTS must be a positive integer/);
  });

  test("the function imports the shared schema file, not a copy", () => {
    const source = readFileSync(join(FN_DIR, "ingest.ts"), "utf8");
    expect(source).toContain(`from "../_shared/event-schema.ts"`);
    // The Bun side imports the same file: no schema module of its own anywhere under src/.
    const bunSide = readFileSync(join(ROOT, "src", "http", "ingest.ts"), "utf8");
    expect(bunSide).toContain(`from "../../supabase/functions/_shared/event-schema.ts"`);
    expect(existsSync(join(ROOT, "src", "domain", "schema.ts"))).toBe(false);
  });
});

describe("zoe-ingest auth and request limits", () => {
  const batch = () => ({ mode: "live", events: [remoteEvent(1)], backlog: 0 });

  test("refuses a caller without credentials (401)", async () => {
    // The gateway's verify_jwt answers first, as the platform does.
    const res = await flush(batch(), {});
    expect(res.status).toBe(401);
    expect(await rowsFor(keysOf(batch().events))).toEqual([]);
  });

  test("refuses the anon key with 401 and an error body", async () => {
    const b = batch();
    const res = await flush(b, { authorization: `Bearer ${stack.anonKey}` });
    expect(res.status).toBe(401);
    expect(res.body.error?.code).toBe("unauthorized");
    expect(await rowsFor(keysOf(b.events))).toEqual([]);
  });

  test("refuses a service_role JWT signed with another secret", async () => {
    const forged = await signJwt({ role: "service_role" }, "not-the-project-secret-but-long-enough");
    const res = await flush(batch(), { authorization: `Bearer ${forged}` });
    expect(res.status).toBe(401);
  });

  test("accepts the flush secret header (with the anon key for the platform) and refuses a wrong one", async () => {
    const ok = await flush(batch(), { authorization: `Bearer ${stack.anonKey}`, "x-zoe-flush-secret": FLUSH_SECRET });
    expect(ok.status).toBe(200);
    expect(ok.body.accepted).toBe(1);
    const bad = await flush(batch(), { authorization: `Bearer ${stack.serviceKey}`, "x-zoe-flush-secret": "wrong" });
    expect(bad.status).toBe(401);
  });

  test("answers 405 to anything but POST", async () => {
    const res = await fetch(stack.functionUrl, { headers: { authorization: `Bearer ${stack.serviceKey}` } });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
  });

  test("refuses a body over 4 MiB with 413, declared or streamed", async () => {
    const big = JSON.stringify({
      mode: "live",
      events: [remoteEvent(1, { meta: { pad: "x".repeat(4 * 1024 * 1024) } })],
    });
    const declared = await flush(big);
    expect(declared.status).toBe(413);
    expect(declared.body.error?.code).toBe("payload_too_large");
    const chunks = new ReadableStream<Uint8Array>({
      start(controller) {
        const chunk = new TextEncoder().encode("x".repeat(1024 * 1024));
        for (let i = 0; i < 5; i++) controller.enqueue(chunk);
        controller.close();
      },
    });
    const streamed = await fetch(stack.functionUrl, {
      method: "POST",
      headers: { authorization: `Bearer ${stack.serviceKey}` },
      body: chunks,
    });
    expect(streamed.status).toBe(413);
  });

  test("refuses malformed JSON with 400", async () => {
    const res = await flush('{"mode":"live","events":[');
    expect(res.status).toBe(400);
    expect(res.body.error?.code).toBe("malformed_json");
  });

  test("refuses a bad envelope with 400 and field paths", async () => {
    const cases: [unknown, string][] = [
      [[remoteEvent(1)], ""],
      [{ mode: "demo", events: [remoteEvent(1)] }, "/mode"],
      [{ mode: "live", events: [] }, "/events"],
      [{ mode: "live", events: {} }, "/events"],
      [{ mode: "live", events: [remoteEvent(1)], backlog: -1 }, "/backlog"],
      [{ mode: "live", events: [remoteEvent(1)], extra: true }, "/extra"],
      [{ mode: "live", events: [remoteEvent(1)], state: { ts: "yesterday", state: {} } }, "/state/ts"],
      [
        { mode: "live", events: [remoteEvent(1)], state: { ts: "2026-01-01T00:00:00Z", state: { a: "\u0000" } } },
        "/state/state",
      ],
      [
        { mode: "live", events: [remoteEvent(1)], writer: { store_id: "box-1", started_at: "2026-01-01T00:00:00Z" } },
        "/writer/store_id",
      ],
      [
        {
          mode: "live",
          events: [remoteEvent(1)],
          writer: { store_id: "11111111-1111-4111-8111-111111111111", started_at: "today" },
        },
        "/writer/started_at",
      ],
      [{ mode: "live", events: [remoteEvent(1)], writer: "box-1" }, "/writer"],
    ];
    for (const [body, path] of cases) {
      const res = await flush(body);
      expect({ path, status: res.status, code: res.body.error?.code }).toEqual({
        path,
        status: 400,
        code: "invalid_request",
      });
      expect((res.body.error?.details as { errors: { path: string }[] }).errors.map((e) => e.path)).toContain(path);
    }
  });

  test("refuses more than 500 events per batch with 400 batch_too_large", async () => {
    const events = Array.from({ length: 501 }, (_, i) => remoteEvent(i + 1));
    const res = await flush({ mode: "live", events });
    expect(res.status).toBe(400);
    expect(res.body.error?.code).toBe("batch_too_large");
    expect(await rowsFor(keysOf(events))).toEqual([]);
    const ok = await flush({ mode: "live", events: events.slice(0, 500) });
    expect(ok.status).toBe(200);
    expect(ok.body.accepted).toBe(500);
  });
});

describe("zoe-ingest per-event verdicts", () => {
  test("answers accepted, duplicate and rejected per event, in request order", async () => {
    const a = remoteEvent(10);
    const b = remoteEvent(11);
    const bad = { ...remoteEvent(12), seq: 0, extra: "x" };
    const otherMode = remoteEvent(13, { mode: "paper" });
    const res = await flush({ mode: "live", events: [a, a, bad, b, otherMode], backlog: 7 });
    expect(res.status).toBe(200);
    expect(res.body.results.map((r) => r.status)).toEqual([
      "accepted",
      "duplicate",
      "rejected",
      "accepted",
      "rejected",
    ]);
    expect(res.body.results[2]!.errors!.map((e) => e.path).sort()).toEqual(["/extra", "/seq"]);
    expect(res.body.results[4]!.errors).toEqual([{ path: "/mode", message: "Expected the batch mode live" }]);
    expect(res.body.results[0]).toEqual({ idempotency_key: a.idempotency_key, seq: 10, status: "accepted" });
    expect([res.body.accepted, res.body.duplicates, res.body.rejected]).toEqual([2, 1, 2]);
    expect(
      (await rowsFor([a.idempotency_key, b.idempotency_key, bad.idempotency_key, otherMode.idempotency_key])).map(
        (r) => r.idempotency_key,
      ),
    ).toEqual([a.idempotency_key, b.idempotency_key]);
  });

  test("stores every field as sent", async () => {
    const e = remoteEvent(20, {
      ts: "2024-02-29T23:59:59.123456+05:30",
      symbol: null,
      severity: "critical",
      meta: { q: [1, { r: "ü😀" }] },
      body: "Kauf — 📈",
    });
    expect((await flush({ mode: "live", events: [e] })).body.accepted).toBe(1);
    const [row] =
      await stack.sql`select id::text, mode, ts = ${e.ts}::timestamptz as same_ts, seq::int, source, type, subtype, symbol, severity, body, meta, idempotency_key
      from zoe_events where idempotency_key = ${e.idempotency_key}`;
    const { ts: _ts, ...rest } = e;
    expect(row).toEqual({ ...rest, same_ts: true });
  });

  test("an event Postgres refuses is rejected alone; the rest of the batch is stored", async () => {
    await stack.sql.unsafe(`
      create or replace function test_refuse_poison() returns trigger language plpgsql as $$
      begin if new.body = 'poison' then raise exception 'poison body' using errcode = '22023'; end if; return new; end $$;
      create trigger test_refuse_poison before insert on zoe_events for each row execute function test_refuse_poison();`);
    try {
      const good = [remoteEvent(30), remoteEvent(32)];
      const poison = remoteEvent(31, { body: "poison" });
      const res = await flush({ mode: "live", events: [good[0], poison, good[1]] });
      expect(res.status).toBe(200);
      expect(res.body.results.map((r) => r.status)).toEqual(["accepted", "rejected", "accepted"]);
      expect(res.body.results[1]!.errors![0]!.message).toContain("poison body");
      expect((await rowsFor([...keysOf(good), poison.idempotency_key])).map((r) => Number(r.seq))).toEqual([30, 32]);
    } finally {
      await stack.sql.unsafe("drop trigger test_refuse_poison on zoe_events; drop function test_refuse_poison();");
    }
  });

  test("an id already stored under another idempotency_key is rejected, not silently dropped", async () => {
    const first = remoteEvent(40);
    await flush({ mode: "live", events: [first] });
    const clash = remoteEvent(41, { id: first.id });
    const res = await flush({ mode: "live", events: [clash] });
    expect(res.body.results[0]!.status).toBe("rejected");
    expect(res.body.results[0]!.errors![0]!.message).toContain("different idempotency_key");
  });
});

describe("zoe-ingest idempotency conflicts", () => {
  for (const [field, change] of CONFLICTING_CHANGES) {
    test(`a stored key sent with another ${field} is rejected as idempotency_conflict naming the stored event`, async () => {
      const stored = remoteEvent(500);
      await flush({ mode: "live", events: [stored] });
      const other = { ...stored, id: remoteEvent(0).id, seq: 501, ...change };
      const res = await flush({ mode: other.mode, events: [other], backlog: 0 });
      expect(res.status).toBe(200);
      expect(res.body.results[0]).toEqual({
        idempotency_key: stored.idempotency_key,
        seq: 501,
        status: "rejected",
        code: "idempotency_conflict",
        stored_event: { id: stored.id, mode: "live", seq: 500 },
        errors: [
          {
            path: "/idempotency_key",
            message: `idempotency_key "${stored.idempotency_key}" is already used by event ${stored.id} (mode live, seq 500), which differs in ${field}`,
          },
        ],
      });
      expect([res.body.accepted, res.body.duplicates, res.body.rejected, res.body.conflicts]).toEqual([0, 0, 1, 1]);
      const [row] =
        await stack.sql`select id::text, body, mode from zoe_events where idempotency_key = ${stored.idempotency_key}`;
      expect(row).toEqual({ id: stored.id, body: stored.body, mode: "live" }); // the stored event stands
    });
  }

  test("a repeat with another id, ts or seq (a restored local store) is still a duplicate; meta key order does not matter", async () => {
    const stored = remoteEvent(510, { meta: { a: 1, b: { c: [1, 2] } } });
    await flush({ mode: "live", events: [stored] });
    const repeat = {
      ...stored,
      id: remoteEvent(0).id,
      seq: 9,
      ts: "2027-01-04T15:00:00.000Z",
      meta: { b: { c: [1, 2] }, a: 1 },
    };
    const res = await flush({ mode: "live", events: [repeat] });
    expect(res.body.results.map((r) => r.status)).toEqual(["duplicate"]);
  });

  test("inside one batch: a true repeat of a key is a duplicate, a different event under it a conflict; health counts only what was stored", async () => {
    const a = remoteEvent(520, { mode: "paper" });
    const res = await flush({
      mode: "paper",
      events: [a, { ...a }, { ...a, seq: 521, body: "not the same", id: remoteEvent(0).id }],
      backlog: 3,
    });
    expect(res.body.results.map((r) => [r.status, r.code ?? null])).toEqual([
      ["accepted", null],
      ["duplicate", null],
      ["rejected", "idempotency_conflict"],
    ]);
    const [health] = await stack.sql`select last_seq::int from zoe_health where mode = 'paper'`;
    expect(health!.last_seq).toBeLessThan(521);
  });
});

describe("zoe-ingest idempotency and ordering", () => {
  test("the same batch flushed twice stores each event once", async () => {
    const events = Array.from({ length: 50 }, (_, i) => remoteEvent(100 + i));
    const first = await flush({ mode: "live", events, backlog: 0 });
    const second = await flush({ mode: "live", events, backlog: 0 });
    expect([first.body.accepted, first.body.duplicates]).toEqual([50, 0]);
    expect([second.body.accepted, second.body.duplicates]).toEqual([0, 50]);
    expect((await rowsFor(keysOf(events))).length).toBe(50);
  });

  test("a batch whose response was lost after commit is stored once when retried", async () => {
    const events = Array.from({ length: 20 }, (_, i) => remoteEvent(200 + i));
    // A TCP hop that delivers the request, waits for the committed answer, then drops the connection.
    const upstream = new URL(stack.functionUrl);
    const lossy = await Bun.listen<{ buf: Buffer }>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(socket) {
          socket.data = { buf: Buffer.alloc(0) };
        },
        async data(socket, chunk) {
          socket.data.buf = Buffer.concat([socket.data.buf, chunk]);
          const text = socket.data.buf.toString("latin1");
          const head = text.indexOf("\r\n\r\n");
          const length = Number(/content-length:\s*(\d+)/i.exec(text)?.[1] ?? NaN);
          if (head < 0 || socket.data.buf.length < head + 4 + length) return;
          const body = socket.data.buf.subarray(head + 4, head + 4 + length);
          const res = await fetch(upstream, {
            method: "POST",
            headers: { authorization: `Bearer ${stack.serviceKey}`, "content-type": "application/json" },
            body: new Uint8Array(body),
          });
          await res.arrayBuffer();
          socket.end();
        },
      },
    });
    const lost = await fetch(`http://127.0.0.1:${lossy.port}${upstream.pathname}`, {
      method: "POST",
      headers: { authorization: `Bearer ${stack.serviceKey}`, "content-type": "application/json" },
      body: JSON.stringify({ mode: "live", events }),
    }).then(
      (r) => `answered ${r.status}`,
      () => "lost",
    );
    lossy.stop(true);
    expect(lost).toBe("lost");
    expect((await rowsFor(keysOf(events))).length).toBe(20);
    const retry = await flush({ mode: "live", events });
    expect(retry.status).toBe(200);
    expect(retry.body.duplicates).toBe(20);
    const rows =
      await stack.sql`select count(*)::int as n, count(distinct idempotency_key)::int as d from zoe_events where idempotency_key in ${stack.sql(keysOf(events))}`;
    expect(rows[0]).toEqual({ n: 20, d: 20 });
  });

  test("batches delivered out of order and retried: ORDER BY seq reconstructs the local order", async () => {
    const local = Array.from({ length: 30 }, (_, i) => remoteEvent(1000 + i, { mode: "paper", body: `local ${i}` }));
    const batches = [local.slice(0, 10), local.slice(10, 20), local.slice(20, 30)];
    for (const b of [batches[2]!, batches[0]!, batches[2]!, batches[1]!, batches[0]!]) {
      expect((await flush({ mode: "paper", events: b })).status).toBe(200);
    }
    const rows =
      await stack.sql`select idempotency_key from zoe_events where mode = 'paper' and seq between 1000 and 1029 order by seq`;
    expect(rows.map((r: { idempotency_key: string }) => r.idempotency_key)).toEqual(keysOf(local));
  });
});

describe("zoe-ingest writers", () => {
  const a = { store_id: "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", started_at: "2026-12-07T15:00:00.000Z" };
  const b = { store_id: "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb", started_at: "2026-12-07T16:00:00.000Z" };
  let seq = 9000;
  const send = (writer: typeof a | null) =>
    flush({ mode: "live", events: [remoteEvent(++seq)], ...(writer ? { writer } : {}) });

  test("records the store id on each new row and the mode's writer; a handover is no second writer", async () => {
    const first = await send(a);
    expect(first.status).toBe(200);
    expect((first.body as unknown as { writers: unknown }).writers).toEqual({
      writer: a,
      second_writer_at: null,
      second_writer: null,
    });
    const [row] = await stack.sql`select store_id::text as s from zoe_events where seq = ${seq}`;
    expect(row.s).toBe(a.store_id);
    // b replaces a (a restart, a new box); a batch without a writer keeps b as the writer.
    await send(b);
    const without = await send(null);
    expect((without.body as unknown as { writers: Record<string, unknown> }).writers).toEqual({
      writer: b,
      second_writer_at: null,
      second_writer: null,
    });
    const [h] =
      await stack.sql`select writer_store_id::text as w, previous_writer_store_id::text as p from zoe_health where mode = 'live'`;
    expect(h).toEqual({ w: b.store_id, p: a.store_id });
  });

  test("two writers alternating within 10 minutes are answered as a second writer naming both", async () => {
    await send(a);
    await send(b);
    const back = await send(a);
    const writers = (
      back.body as unknown as { writers: { second_writer_at: string | null; second_writer: { store_id: string }[] } }
    ).writers;
    expect(writers.second_writer_at).not.toBeNull();
    expect(writers.second_writer.map((w) => w.store_id)).toEqual([a.store_id, b.store_id]);
  });
});

describe("zoe-ingest health and state", () => {
  test("updates zoe_health and zoe_state in the same request; an older snapshot never replaces a newer one", async () => {
    const newer = { ts: "2026-03-09T15:00:00Z", state: { cash: 1000, positions: [{ symbol: "AAPL", qty: 10 }] } };
    const older = { ts: "2026-03-09T14:00:00Z", state: { cash: 5 } };
    await flush({
      mode: "paper",
      events: [remoteEvent(5000, { mode: "paper" }), remoteEvent(5001, { mode: "paper" })],
      backlog: 12,
      state: newer,
    });
    let [health] =
      await stack.sql`select last_seq::int, last_batch_count, backlog::int, last_flush_ts > now() - interval '1 minute' as fresh from zoe_health where mode = 'paper'`;
    expect(health).toEqual({ last_seq: 5001, last_batch_count: 2, backlog: 12, fresh: true });
    // A retried older batch: last_seq never goes back, the older snapshot is ignored.
    await flush({ mode: "paper", events: [remoteEvent(4000, { mode: "paper" })], backlog: 3, state: older });
    [health] =
      await stack.sql`select last_seq::int, last_batch_count, backlog::int from zoe_health where mode = 'paper'`;
    expect(health).toEqual({ last_seq: 5001, last_batch_count: 1, backlog: 3 });
    const [state] =
      await stack.sql`select ts = ${newer.ts}::timestamptz as same_ts, state from zoe_state where mode = 'paper'`;
    expect(state).toEqual({ same_ts: true, state: newer.state });
  });

  test("a batch with no events and a state snapshot writes the snapshot and zoe_health, last_seq untouched", async () => {
    const [before] = await stack.sql`select last_seq from zoe_health where mode = 'live'`;
    const snapshot = { ts: new Date().toISOString(), state: { cash: 42.5, positions: { AAPL: 3 } } };
    const res = await flush({ mode: "live", events: [], backlog: 0, state: snapshot });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ results: [], accepted: 0, duplicates: 0, rejected: 0, conflicts: 0 });
    const [state] =
      await stack.sql`select ts = ${snapshot.ts}::timestamptz as same_ts, state from zoe_state where mode = 'live'`;
    expect(state).toEqual({ same_ts: true, state: snapshot.state });
    const [health] =
      await stack.sql`select last_seq, last_batch_count, backlog::int, last_flush_ts > now() - interval '1 minute' as fresh from zoe_health where mode = 'live'`;
    expect(health).toEqual({ last_seq: before?.last_seq ?? null, last_batch_count: 0, backlog: 0, fresh: true });
    // Without a state, an empty batch is still a mistake.
    expect((await flush({ mode: "live", events: [] })).status).toBe(400);
  });
});

describe("zoe-ingest on database failure", () => {
  async function healthRow(mode: string) {
    return (await stack.sql`select last_flush_ts, last_seq, backlog from zoe_health where mode = ${mode}`)[0] ?? null;
  }

  test("a locked table → 503 after the lock timeout, and nothing of the batch is written", async () => {
    const before = await healthRow("live");
    const events = [remoteEvent(7000), remoteEvent(7001)];
    const lock = stack.sql.begin(async (tx) => {
      await tx`lock table zoe_events in access exclusive mode`;
      const res = await flush({ mode: "live", events, backlog: 99 });
      expect(res.status).toBe(503);
      expect(res.body.error?.code).toBe("database_unavailable");
      expect(res.headers.get("retry-after")).toBe("1");
    });
    await lock;
    expect(await rowsFor(keysOf(events))).toEqual([]);
    expect(await healthRow("live")).toEqual(before);
  });

  test("a failure after the events were inserted rolls them back (one transaction)", async () => {
    await stack.sql.unsafe(`
      create or replace function test_fail_health() returns trigger language plpgsql as $$
      begin raise exception 'health write failed' using errcode = 'XX000'; end $$;
      create trigger test_fail_health before insert or update on zoe_health for each row execute function test_fail_health();`);
    const events = [remoteEvent(7100), remoteEvent(7101)];
    try {
      const res = await flush({ mode: "live", events, state: { ts: "2030-01-01T00:00:00Z", state: { x: 1 } } });
      expect(res.status).toBe(503);
    } finally {
      await stack.sql.unsafe("drop trigger test_fail_health on zoe_health; drop function test_fail_health();");
    }
    expect(await rowsFor(keysOf(events))).toEqual([]);
    expect((await stack.sql`select state from zoe_state where mode = 'live'`)[0]?.state?.x).toBeUndefined();
    const ok = await flush({ mode: "live", events });
    expect(ok.body.accepted).toBe(2);
  });

  test("a database that refuses connections → 503; it recovers when the database is back", async () => {
    const db = new URL(stack.dbUrl).pathname.slice(1);
    const adminUrl = new URL(stack.dbUrl);
    adminUrl.pathname = "/postgres";
    const admin = new SQL({ url: adminUrl.toString(), max: 1 });
    const events = [remoteEvent(7200)];
    await admin.unsafe(`alter database "${db}" allow_connections false`);
    try {
      await admin`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'zoe-ingest' and datname = ${db}`;
      const res = await flush({ mode: "live", events });
      expect(res.status).toBe(503);
    } finally {
      await admin.unsafe(`alter database "${db}" allow_connections true`);
      await admin.close();
    }
    expect(await rowsFor(keysOf(events))).toEqual([]);
    const ok = await flush({ mode: "live", events });
    expect(ok.status).toBe(200);
    expect(ok.body.accepted).toBe(1);
  });
});

describe("zoe-ingest's own auth, with the platform's verify_jwt off", () => {
  let open: SupabaseStack;
  let noSecret: SupabaseStack;
  beforeAll(async () => {
    [open, noSecret] = await Promise.all([
      startSupabaseStack({ functionVerifyJwt: false }),
      // As on the platform: the service key is injected, the JWT secret is not.
      startSupabaseStack({ functionVerifyJwt: false, functionEnv: { SUPABASE_JWT_SECRET: "" } }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([open?.stop(), noSecret?.stop()]);
  });

  const post = (s: SupabaseStack, headers: Record<string, string>) =>
    fetch(s.functionUrl, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ mode: "live", events: [remoteEvent(1)] }),
    });

  test("no credentials → 401 from the function itself", async () => {
    const res = await post(open, {});
    expect(res.status).toBe(401);
    expect(((await res.json()) as IngestBody).error?.code).toBe("unauthorized");
  });

  test("with the JWT secret: a service_role JWT signed elsewhere or an anon JWT → 401; a freshly signed service_role JWT → 200", async () => {
    const forged = await signJwt({ role: "service_role" }, "not-the-project-secret-but-long-enough");
    expect((await post(open, { authorization: `Bearer ${forged}` })).status).toBe(401);
    expect((await post(open, { authorization: `Bearer ${open.anonKey}` })).status).toBe(401);
    const expired = await signJwt({ role: "service_role", exp: Math.floor(Date.now() / 1000) - 10 }, open.jwtSecret);
    expect((await post(open, { authorization: `Bearer ${expired}` })).status).toBe(401);
    const minted = await signJwt({ role: "service_role", iat: 1 }, open.jwtSecret);
    expect((await post(open, { authorization: `Bearer ${minted}` })).status).toBe(200);
  });

  test("without the JWT secret: only the injected service key passes; a forged service_role JWT never does", async () => {
    const forged = await signJwt({ role: "service_role" }, "anything-at-all-will-do-for-a-forger");
    expect((await post(noSecret, { authorization: `Bearer ${forged}` })).status).toBe(401);
    expect((await post(noSecret, { authorization: `Bearer ${noSecret.serviceKey}` })).status).toBe(200);
  });
});
