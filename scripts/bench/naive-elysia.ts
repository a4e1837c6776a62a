// The baseline the service is compared with: a naive Elysia server as one
// would write it first — the shared event schema as the route's body schema,
// one prepared INSERT per request in autocommit (a WAL commit per request),
// the service's own schema and pragmas (ZOE_SYNCHRONOUS as the service's
// default). No group commit, no caps, no auth, no CORS.
// Args (JSON): { path }. Prints "naive server listening on <url>".
import { Database } from "bun:sqlite";
import { Elysia } from "elysia";
import { loadConfig } from "../../src/config.ts";
import { EventInputSchema } from "../../supabase/functions/_shared/event-schema.ts";
import { migrate } from "../../src/store/migrate.ts";
import { childArgs } from "./lib.ts";

const { path } = childArgs<{ path: string }>();
const db = new Database(path, { create: true, strict: true });
db.run("PRAGMA journal_mode = WAL");
db.run(`PRAGMA synchronous = ${loadConfig({}).synchronous}`);
db.run("PRAGMA busy_timeout = 5000");
migrate(db);
const insert = db.query(
  "INSERT INTO local_events (id, mode, ts, seq, source, type, subtype, symbol, severity, body, meta_json, idempotency_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
);
const seqs: Record<string, number> = { paper: 0, live: 0 };

const app = new Elysia().post(
  "/local/events",
  ({ body, set }) => {
    const id = body.id ?? Bun.randomUUIDv7();
    const key = body.idempotency_key ?? id;
    const now = new Date().toISOString();
    const seq = ++seqs[body.mode]!;
    insert.run(
      id,
      body.mode,
      body.ts ?? now,
      seq,
      body.source,
      body.type,
      body.subtype,
      body.symbol ?? null,
      body.severity ?? "info",
      body.body,
      JSON.stringify(body.meta ?? {}),
      key,
      now,
    );
    set.status = 201;
    return { id, seq, idempotency_key: key, duplicate: false };
  },
  { body: EventInputSchema },
);
app.listen({ hostname: "127.0.0.1", port: 0 });
console.log(`naive server listening on http://127.0.0.1:${app.server!.port}`);
process.on("SIGTERM", () => {
  void app.stop(true);
  db.close();
  process.exit(0);
});
