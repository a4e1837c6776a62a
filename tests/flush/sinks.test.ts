import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { systemClock } from "../../src/lib/clock.ts";
import type { StoredEvent } from "../../supabase/functions/_shared/event-schema.ts";
import {
  RemoteAuthError,
  RemoteOutOfOrderError,
  RemoteProtocolError,
  RemoteRejectedError,
  RemoteTimeoutError,
  RemoteUnavailableError,
  RemoteUnreachableError,
  type Sink,
  type SinkBatch,
  type SinkError,
} from "../../src/flush/sink.ts";
import { createDirectSink } from "../../src/flush/sinks/direct.ts";
import { createEdgeFunctionSink } from "../../src/flush/sinks/edge-function.ts";
import { refusePoisonRows, startSupabaseStack, type SupabaseStack } from "../helpers/supabase-stack.ts";

const SECRET = "flush-secret-for-tests-0123456789";
let stack: SupabaseStack;

beforeAll(async () => {
  stack = await startSupabaseStack({ functionEnv: { ZOE_FLUSH_SECRET: SECRET, ZOE_INGEST_MAX_BODY_BYTES: "300000" } });
  await refusePoisonRows(stack);
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

let seq = 0;
function storedEvent(extra: Partial<StoredEvent> = {}): StoredEvent {
  const id = Bun.randomUUIDv7();
  seq++;
  return {
    id,
    mode: "live",
    ts: new Date().toISOString(),
    seq,
    source: "bot",
    type: "ORDER",
    subtype: "TICK",
    symbol: null,
    severity: "info",
    body: `event ${seq}`,
    meta: { n: seq },
    idempotency_key: id,
    ...extra,
  };
}

const batch = (events: StoredEvent[], extra: Partial<SinkBatch> = {}): SinkBatch => ({
  mode: "live",
  events,
  backlog: 0,
  state: null,
  signal: new AbortController().signal,
  ...extra,
});

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

const edge = (extra: Partial<Parameters<typeof createEdgeFunctionSink>[0]> = {}) =>
  createEdgeFunctionSink({
    url: stack.url,
    serviceKey: stack.serviceKey,
    timeoutMs: 10_000,
    clock: systemClock,
    ...extra,
  });
const direct = (extra: Partial<Parameters<typeof createDirectSink>[0]> = {}) =>
  createDirectSink({
    url: stack.url,
    serviceKey: stack.serviceKey,
    timeoutMs: 10_000,
    clock: systemClock,
    distinguishDuplicates: true,
    ...extra,
  });

async function rowsFor(events: StoredEvent[]): Promise<number> {
  const [row] =
    await stack.sql`select count(*)::int as n from zoe_events where idempotency_key in ${stack.sql(events.map((e) => e.idempotency_key))}`;
  return row.n as number;
}

/** A throwaway HTTP server standing in for a misbehaving remote. */
function fakeRemote(handler: (req: Request) => Response | Promise<Response>) {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: handler });
  return { url: `http://127.0.0.1:${server.port}`, stop: () => server.stop(true) };
}

async function closedPortUrl(): Promise<string> {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const url = `http://127.0.0.1:${server.port}`;
  await server.stop(true);
  return url;
}

describe("createEdgeFunctionSink() against the real zoe-ingest function", () => {
  test("answers accepted, then duplicate when the same batch is sent again; one row each", async () => {
    const events = [storedEvent(), storedEvent()];
    const sink = edge();
    expect((await sink.send(batch(events))).results.map((r) => r.status)).toEqual(["accepted", "accepted"]);
    expect((await sink.send(batch(events))).results.map((r) => r.status)).toEqual(["duplicate", "duplicate"]);
    expect(await rowsFor(events)).toBe(2);
  });

  test("writes zoe_health and the state snapshot with the batch", async () => {
    const events = [storedEvent(), storedEvent()];
    await edge().send(
      batch(events, { backlog: 7, state: { ts: "2026-06-02T14:00:00.000Z", state: { cash: 1234.5 } } }),
    );
    const [health] =
      await stack.sql`select last_seq::int, last_batch_count, backlog::int from zoe_health where mode = 'live'`;
    expect(health).toMatchObject({ last_seq: events[1]!.seq, last_batch_count: 2, backlog: 7 });
    const [state] = await stack.sql`select state from zoe_state where mode = 'live'`;
    expect(state.state).toEqual({ cash: 1234.5 });
  });

  test("a row Postgres refuses comes back rejected with the reason; the others are written", async () => {
    const events = [storedEvent(), storedEvent({ body: "poison" }), storedEvent()];
    const { results } = await edge().send(batch(events));
    expect(results.map((r) => r.status)).toEqual(["accepted", "rejected", "accepted"]);
    expect(results[1]!.errors?.[0]?.message).toContain("poison row refused");
    expect(await rowsFor(events)).toBe(2);
  });

  test("a wrong key is a RemoteAuthError (permanent, not the events' fault)", async () => {
    const error = await rejection(edge({ serviceKey: stack.anonKey }).send(batch([storedEvent()])));
    expect(error).toBeInstanceOf(RemoteAuthError);
    expect(error).toMatchObject({ remoteStatus: 401, retryable: false, poison: false });
  });

  test("the shared secret stands in for the service-role key", async () => {
    const ok = await edge({ serviceKey: stack.anonKey, secret: SECRET }).send(batch([storedEvent()]));
    expect(ok.results[0]!.status).toBe("accepted");
    const error = await rejection(edge({ secret: "not-the-secret-at-all" }).send(batch([storedEvent()])));
    expect(error).toBeInstanceOf(RemoteAuthError);
  });

  test("a body over the function's size limit is a poison 413, so the flusher splits the batch", async () => {
    const big = "x".repeat(60_000);
    const error = await rejection(edge().send(batch(Array.from({ length: 6 }, () => storedEvent({ body: big })))));
    expect(error).toBeInstanceOf(RemoteRejectedError);
    expect(error).toMatchObject({ remoteStatus: 413, poison: true });
  });

  test("more events than the function's batch limit is poison too", async () => {
    const error = await rejection(edge().send(batch(Array.from({ length: 501 }, () => storedEvent()))));
    expect(error).toMatchObject({ remoteStatus: 400, poison: true, retryable: false });
  });

  test("a stopped function (gateway 502) is retryable", async () => {
    await stack.stopFunction();
    try {
      const error = await rejection(edge().send(batch([storedEvent()])));
      expect(error).toBeInstanceOf(RemoteUnavailableError);
      expect(error).toMatchObject({ remoteStatus: 502, retryable: true });
    } finally {
      await stack.restartFunction();
    }
  }, 30_000);
});

describe("createEdgeFunctionSink() against a misbehaving remote", () => {
  const sinkFor = (url: string, timeoutMs = 5_000): Sink =>
    createEdgeFunctionSink({ url, serviceKey: "key-123456", secret: "s-123456", timeoutMs, clock: systemClock });

  test("sends the agreed envelope and headers", async () => {
    let seen: { path: string; headers: Record<string, string>; body: unknown } | null = null;
    const remote = fakeRemote(async (req) => {
      seen = { path: new URL(req.url).pathname, headers: Object.fromEntries(req.headers), body: await req.json() };
      const events = (seen.body as { events: StoredEvent[] }).events;
      return Response.json({
        results: events.map((e) => ({ idempotency_key: e.idempotency_key, seq: e.seq, status: "accepted" })),
      });
    });
    try {
      const e = storedEvent();
      await sinkFor(remote.url).send(
        batch([e], { backlog: 3, state: { ts: "2026-06-02T14:00:00.000Z", state: { cash: 1 } } }),
      );
      expect(seen!.path).toBe("/functions/v1/zoe-ingest");
      expect(seen!.headers).toMatchObject({
        authorization: "Bearer key-123456",
        apikey: "key-123456",
        "x-zoe-flush-secret": "s-123456",
        "content-type": "application/json",
      });
      expect(seen!.body).toEqual({
        mode: "live",
        events: [e],
        backlog: 3,
        state: { ts: "2026-06-02T14:00:00.000Z", state: { cash: 1 } },
      });
    } finally {
      await remote.stop();
    }
  });

  test("an error answer is read by its code from the shared list, in either case, never by its wording", async () => {
    const answers: [number, string][] = [
      [400, "BATCH_TOO_LARGE"], // a zoe-ingest deployed before the codes were unified
      [400, "batch_too_large"],
      [400, "rate_limit_note"], // not a code of the list: a plain refusal, not split
      [409, "PREDECESSOR_NOT_COMMITTED"],
    ];
    let next = 0;
    const remote = fakeRemote(() => {
      const [status, code] = answers[next++]!;
      return Response.json({ error: { code, message: "too_many limit", details: null } }, { status });
    });
    try {
      const sink = sinkFor(remote.url);
      const outcomes = [];
      for (let i = 0; i < answers.length; i++) {
        const error = await rejection(sink.send(batch([storedEvent()])));
        outcomes.push([(error as Error).constructor.name, (error as { poison?: boolean }).poison]);
      }
      expect(outcomes).toEqual([
        ["RemoteRejectedError", true],
        ["RemoteRejectedError", true],
        ["RemoteRejectedError", false],
        ["RemoteOutOfOrderError", false],
      ]);
    } finally {
      await remote.stop();
    }
  });

  test("sends the writer with every batch, returns the remote's writers report, and drops the writer for a function that predates it", async () => {
    const writer = { store_id: "11111111-1111-4111-8111-111111111111", started_at: "2026-12-07T16:00:00.000Z" };
    const bodies: Record<string, unknown>[] = [];
    let knowsWriter = true;
    const remote = fakeRemote(async (req) => {
      const body = (await req.json()) as { events: StoredEvent[]; writer?: unknown };
      bodies.push(body);
      if (!knowsWriter && "writer" in body)
        return Response.json(
          {
            error: {
              code: "INVALID_BATCH",
              message: "Invalid batch: /writer Unexpected property",
              details: { errors: [{ path: "/writer", message: "Unexpected property" }] },
            },
          },
          { status: 400 },
        );
      return Response.json({
        results: body.events.map((e) => ({ idempotency_key: e.idempotency_key, seq: e.seq, status: "accepted" })),
        ...(knowsWriter ? { writers: { writer, second_writer_at: null, second_writer: null } } : {}),
      });
    });
    try {
      const sink = createEdgeFunctionSink({
        url: remote.url,
        serviceKey: "key-123456",
        timeoutMs: 5_000,
        clock: systemClock,
        writer,
      });
      const first = await sink.send(batch([storedEvent()]));
      expect(bodies[0]!.writer).toEqual(writer);
      expect(first.writers).toEqual({ writer, second_writer_at: null, second_writer: null });
      knowsWriter = false;
      const old = await sink.send(batch([storedEvent()]));
      expect(old.results.map((r) => r.status)).toEqual(["accepted"]);
      expect(bodies.slice(1).map((b) => "writer" in b)).toEqual([true, false]);
      await sink.send(batch([storedEvent()]));
      expect("writer" in bodies.at(-1)!).toBe(false);
    } finally {
      await remote.stop();
    }
  });

  test("names the previous batch's last event as after_key only when given", async () => {
    const bodies: Record<string, unknown>[] = [];
    const remote = fakeRemote(async (req) => {
      const body = (await req.json()) as { events: StoredEvent[] };
      bodies.push(body);
      return Response.json({
        results: body.events.map((e) => ({ idempotency_key: e.idempotency_key, seq: e.seq, status: "accepted" })),
      });
    });
    try {
      const sink = sinkFor(remote.url);
      await sink.send(batch([storedEvent()]));
      await sink.send(batch([storedEvent()], { afterKey: "key-of-the-last-event-before" }));
      expect(bodies.map((b) => b.after_key)).toEqual([undefined, "key-of-the-last-event-before"]);
      expect(sink.ordered).toBe(true);
    } finally {
      await remote.stop();
    }
  });

  test("a function that predates after_key: the sink stops claiming order, and the batch is to be sent again without it", async () => {
    const remote = fakeRemote(() =>
      Response.json(
        {
          error: {
            code: "invalid_request",
            message: "Invalid batch: /after_key Unexpected property",
            details: { errors: [{ path: "/after_key", message: "Unexpected property" }] },
          },
        },
        { status: 400 },
      ),
    );
    try {
      const sink = sinkFor(remote.url);
      const error = await rejection(sink.send(batch([storedEvent()], { afterKey: "k" })));
      expect(error).toBeInstanceOf(RemoteOutOfOrderError);
      expect((error as SinkError).message).toContain("deploy it again");
      expect(sink.ordered).toBe(false);
    } finally {
      await remote.stop();
    }
  });

  test("409 predecessor_not_committed is a RemoteOutOfOrderError, retryable", async () => {
    const remote = fakeRemote(() =>
      Response.json(
        { error: { code: "predecessor_not_committed", message: "not yet", details: null } },
        { status: 409 },
      ),
    );
    try {
      const error = await rejection(sinkFor(remote.url).send(batch([storedEvent()], { afterKey: "k" })));
      expect(error).toBeInstanceOf(RemoteOutOfOrderError);
      expect((error as SinkError).retryable).toBe(true);
    } finally {
      await remote.stop();
    }
  });

  test("garbage in a 200 is a retryable protocol error", async () => {
    for (const body of [
      "<html>oops</html>",
      "{}",
      JSON.stringify({ results: [] }),
      JSON.stringify({ results: [{ idempotency_key: "other", status: "accepted" }] }),
    ]) {
      const remote = fakeRemote(() => new Response(body, { status: 200 }));
      try {
        const error = await rejection(sinkFor(remote.url).send(batch([storedEvent()])));
        expect(error).toBeInstanceOf(RemoteProtocolError);
        expect((error as SinkError).retryable).toBe(true);
      } finally {
        await remote.stop();
      }
    }
  });

  test("429 carries Retry-After; 408 and 5xx are retryable", async () => {
    for (const [status, retryAfter] of [
      [429, "7"],
      [408, null],
      [500, null],
      [503, "2"],
    ] as const) {
      const remote = fakeRemote(() =>
        Response.json(
          { error: { code: "X", message: "busy" } },
          { status, headers: retryAfter ? { "retry-after": retryAfter } : {} },
        ),
      );
      try {
        const error = await rejection(sinkFor(remote.url).send(batch([storedEvent()])));
        expect(error).toBeInstanceOf(RemoteUnavailableError);
        expect(error).toMatchObject({
          remoteStatus: status,
          retryable: true,
          retryAfterMs: retryAfter ? Number(retryAfter) * 1000 : undefined,
        });
      } finally {
        await remote.stop();
      }
    }
  });

  test("no answer within the timeout is a retryable RemoteTimeoutError", async () => {
    const remote = fakeRemote(() => new Promise<Response>(() => {}));
    try {
      const error = await rejection(sinkFor(remote.url, 200).send(batch([storedEvent()])));
      expect(error).toBeInstanceOf(RemoteTimeoutError);
      expect((error as SinkError).retryable).toBe(true);
    } finally {
      await remote.stop();
    }
  });

  test("a refused connection is a retryable RemoteUnreachableError", async () => {
    const error = await rejection(sinkFor(await closedPortUrl()).send(batch([storedEvent()])));
    expect(error).toBeInstanceOf(RemoteUnreachableError);
    expect((error as SinkError).retryable).toBe(true);
  });

  test("the caller's abort is passed through as is, not as a sink failure", async () => {
    const remote = fakeRemote(() => new Promise<Response>(() => {}));
    try {
      const abort = new AbortController();
      const sent = sinkFor(remote.url).send(batch([storedEvent()], { signal: abort.signal }));
      const reason = new Error("shutting down");
      setTimeout(() => abort.abort(reason), 20);
      expect(await rejection(sent)).toBe(reason);
    } finally {
      await remote.stop();
    }
  });
});

describe("both sinks judge a key stored remotely for another event as an idempotency conflict", () => {
  for (const [name, make] of [
    ["edge", () => edge()],
    ["direct", () => direct()],
  ] as const) {
    test(`${name}: the same event again is a duplicate; another event under the key is rejected with code idempotency_conflict`, async () => {
      const sink = make();
      const keys = ["plain-key-1", 'quoted "key", with (reserved) chars \\'].map(
        (k) => `${k}-${name}-${Bun.randomUUIDv7()}`,
      );
      const stored = keys.map((k) => storedEvent({ idempotency_key: k, meta: { a: 1, b: 2 } }));
      await sink.send(batch(stored));
      // Another box (or a restored local store) reuses the keys: once for the same events, once for others.
      const same = stored.map((e) => ({
        ...storedEvent(),
        ...e,
        id: Bun.randomUUIDv7(),
        seq: e.seq + 1000,
        meta: { b: 2, a: 1 },
      }));
      expect((await sink.send(batch(same))).results.map((r) => r.status)).toEqual(["duplicate", "duplicate"]);
      const other = stored.map((e) => ({ ...e, id: Bun.randomUUIDv7(), seq: e.seq + 2000, body: "a different fill" }));
      const { results } = await sink.send(batch(other));
      expect(results).toEqual(
        other.map((e, i) => ({
          idempotency_key: e.idempotency_key,
          seq: e.seq,
          status: "rejected",
          code: "idempotency_conflict",
          stored_event: { id: stored[i]!.id, mode: "live", seq: stored[i]!.seq },
          errors: [
            {
              path: "/idempotency_key",
              message: expect.stringContaining(
                `is already used by event ${stored[i]!.id} (mode live, seq ${stored[i]!.seq}), which differs in body`,
              ),
            },
          ],
        })),
      );
      const bodies = await stack.sql`select body from zoe_events where idempotency_key in ${stack.sql(keys)}`;
      expect(bodies.map((r: { body: string }) => r.body).sort()).toEqual(stored.map((e) => e.body).sort());
    });
  }
});

describe("createDirectSink() against the PostgREST gateway", () => {
  test("upserts rows, tells duplicates apart, and writes zoe_health and zoe_state", async () => {
    const events = [storedEvent({ mode: "paper" }), storedEvent({ mode: "paper", symbol: "AAPL", meta: { px: 1.5 } })];
    const sink = direct();
    const state = { ts: "2026-06-02T15:00:00.000Z", state: { cash: 99 } };
    const first = await sink.send(batch(events, { mode: "paper", backlog: 4, state }));
    expect(first).toEqual({
      results: events.map((e) => ({ idempotency_key: e.idempotency_key, seq: e.seq, status: "accepted" })),
    });
    const again = await sink.send(batch([...events, storedEvent({ mode: "paper" })], { mode: "paper" }));
    expect(again.results.map((r) => r.status)).toEqual(["duplicate", "duplicate", "accepted"]);
    const [row] =
      await stack.sql`select symbol, meta from zoe_events where idempotency_key = ${events[1]!.idempotency_key}`;
    expect(row).toEqual({ symbol: "AAPL", meta: { px: 1.5 } });
    const [health] =
      await stack.sql`select last_seq::int, last_batch_count, backlog::int from zoe_health where mode = 'paper'`;
    expect(health).toMatchObject({ last_seq: seq, last_batch_count: 3, backlog: 0 });
    const [snapshot] = await stack.sql`select state from zoe_state where mode = 'paper'`;
    expect(snapshot.state).toEqual({ cash: 99 });
  });

  test("a batch repeating a key is de-duplicated before the upsert", async () => {
    const e = storedEvent();
    const { results } = await direct().send(batch([e, { ...e }]));
    expect(results.map((r) => r.status)).toEqual(["accepted", "accepted"]);
    expect(await rowsFor([e])).toBe(1);
  });

  test("a refused row fails the upsert as poison (the flusher bisects); nothing of the batch is written", async () => {
    const events = [storedEvent(), storedEvent({ body: "poison" })];
    const error = await rejection(direct().send(batch(events)));
    expect(error).toBeInstanceOf(RemoteRejectedError);
    expect(error).toMatchObject({ remoteStatus: 400, poison: true, details: { code: "22023" } });
    expect(await rowsFor(events)).toBe(0);
  });

  test("the anon key may not write: RemoteAuthError", async () => {
    const error = await rejection(direct({ serviceKey: stack.anonKey }).send(batch([storedEvent()])));
    expect(error).toBeInstanceOf(RemoteAuthError);
    expect((error as SinkError).remoteStatus).toBe(401);
  });

  test("unreachable, slow and failing remotes are retryable errors", async () => {
    const refused = await rejection(direct({ url: await closedPortUrl() }).send(batch([storedEvent()])));
    expect(refused).toBeInstanceOf(RemoteUnreachableError);
    const hang = fakeRemote(() => new Promise<Response>(() => {}));
    const failing = fakeRemote(() =>
      Response.json({ code: "PGRST000", message: "could not connect", details: null, hint: null }, { status: 503 }),
    );
    try {
      expect(await rejection(direct({ url: hang.url, timeoutMs: 200 }).send(batch([storedEvent()])))).toBeInstanceOf(
        RemoteTimeoutError,
      );
      const error = await rejection(direct({ url: failing.url }).send(batch([storedEvent()])));
      expect(error).toBeInstanceOf(RemoteUnavailableError);
      expect(error).toMatchObject({ remoteStatus: 503, retryable: true });
    } finally {
      await hang.stop();
      await failing.stop();
    }
  });
});
