// The bodies the routes answer with, as TypeBox schemas: the OpenAPI document
// (src/http/openapi.ts) is built from these, and tests/http/openapi.test.ts
// checks real answers of each route against them, so they say what the
// routes return, not what they once returned.
import { type TSchema, Type } from "@sinclair/typebox";
import { ModeSchema, StoredEventSchema } from "../../supabase/functions/_shared/event-schema.ts";

const Nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Union([schema, Type.Null()]);
const NullableInt = Type.Union([Type.Integer(), Type.Null()]);
const NullableString = Nullable(Type.String());
const Iso = (description: string) => Type.String({ description: `${description} (ISO 8601, UTC).` });
const closed = { additionalProperties: false } as const;

export const FieldErrorSchema = Type.Object(
  { path: Type.String({ description: "JSON pointer into the request, or ?param." }), message: Type.String() },
  { additionalProperties: true },
);

export const ErrorBody = Type.Object(
  {
    error: Type.Object(
      {
        code: Type.String({
          description: "Stable machine-readable code, e.g. invalid_request, unauthorized, method_not_allowed.",
        }),
        message: Type.String({ description: "What failed and where, for people." }),
        details: Type.Unknown({
          description:
            "Field errors [{path, message}] where the path is a JSON pointer; an object for some codes; else null.",
        }),
      },
      closed,
    ),
  },
  closed,
);

export const AppendResult = Type.Object(
  { id: Type.String(), seq: Type.Integer({ minimum: 1 }), idempotency_key: Type.String(), duplicate: Type.Boolean() },
  closed,
);
export const AppendAnswer = Type.Union([AppendResult, Type.Object({ events: Type.Array(AppendResult) }, closed)]);
export const StoredEvents = Type.Array(StoredEventSchema);
export const StateInput = Type.Object(
  {
    mode: ModeSchema,
    cash: Type.Optional(Type.Unknown()),
    holdings: Type.Optional(Type.Unknown()),
    positions: Type.Optional(Type.Unknown()),
  },
  { additionalProperties: true },
);
export const StateStored = Type.Object(
  { mode: ModeSchema, ts: Iso("When the snapshot was stored"), last_seq: Type.Integer({ minimum: 0 }) },
  closed,
);

export const Accepting = Type.Union([Type.Literal("all"), Type.Literal("critical"), Type.Literal("none")]);
export const Capacity = Type.Object(
  {
    accepting: Accepting,
    backlog_events: Type.Integer(),
    backlog_bytes: Type.Integer(),
    max_backlog_events: NullableInt,
    max_backlog_bytes: NullableInt,
    critical_reserve_events: Type.Integer(),
    critical_reserve_bytes: Type.Integer(),
    free_disk_bytes: Type.Union([Type.Integer(), Type.Null()], {
      description: "null when the filesystem cannot be measured.",
    }),
    min_free_disk_bytes: NullableInt,
    fill_ratio: Type.Number({
      description: "The fullest limit as a fraction of where ordinary events stop (1 = refusing them).",
    }),
  },
  closed,
);

/** One mode's health: the store's figures, and the flusher's when there is a remote. */
const SeqRange = Type.Object(
  {
    mode: ModeSchema,
    start_seq: Type.Integer({ minimum: 1, description: "First seq of the range; seqs are gapless within it." }),
    started_at: Iso("When the start that opened the range began"),
    store_id: Type.String(),
  },
  closed,
);
const WriterIdentity = Type.Object(
  { store_id: Type.String(), started_at: Type.String(), seen_at: Type.Optional(Type.String()) },
  closed,
);
const StoreView = Type.Object(
  {
    id: Type.String({ description: "The store's id (UUID v4), made with the store; a backup copy has the same." }),
    created_at: Iso("When the store was created"),
    started_at: Iso("When this start of the store began"),
    seq_range: Type.Object(
      {
        ...SeqRange.properties,
        recorded: Type.Boolean({ description: "False until the range's first event is stored." }),
      },
      { ...closed, description: "This start's range: new seqs of the mode begin at start_seq." },
    ),
    seq_ranges: Type.Array(SeqRange, { description: "The newest recorded ranges, newest first." }),
  },
  { ...closed, description: "Which store this is and where its seqs stand (docs/flushing.md, Seq ranges)." },
);

export const Health = Type.Object(
  {
    backlog: Type.Integer({ description: "Events not yet flushed to the remote." }),
    oldest_unflushed_age_ms: NullableInt,
    last_flush_ts: NullableString,
    last_flush_status: NullableString,
    last_flush_error: NullableString,
    remote_configured: Type.Boolean(),
    remote: Type.Optional(Type.String({ description: 'The sink\'s name, or "no remote configured".' })),
    uptime_s: Type.Integer(),
    flusher: Type.Optional(Type.String({ description: "idle, flushing, backoff, stopped or disabled." })),
    cadence: Type.Optional(Type.Union([Type.Literal("market_hours"), Type.Literal("off_hours")])),
    interval_ms: Type.Optional(Type.Integer()),
    consecutive_failures: Type.Optional(Type.Integer()),
    last_attempt_at: Type.Optional(NullableString),
    last_success_at: Type.Optional(NullableString),
    next_attempt_at: Type.Optional(NullableString),
    last_error: Type.Optional(NullableString),
    quarantined: Type.Optional(Type.Integer()),
    flushed_through_seq: Type.Optional(Type.Integer()),
    in_flight_batches: Type.Optional(Type.Integer()),
    window: Type.Optional(Type.Integer()),
    capacity: Type.Optional(Capacity),
    store: StoreView,
    remote_writer: Type.Optional(
      Type.Union([WriterIdentity, Type.Null()], { description: "The mode's writer as Supabase last recorded it." }),
    ),
    second_writer: Type.Optional(
      Type.Union(
        [
          Type.Object(
            { detected_at: Type.String(), writers: Type.Array(WriterIdentity), active: Type.Boolean() },
            closed,
          ),
          Type.Null(),
        ],
        { description: "Two stores seen writing this mode back and forth (both named); active for 10 minutes." },
      ),
    ),
  },
  closed,
);
const Modes = <T extends typeof Health>(schema: T) => Type.Object({ paper: schema, live: schema }, closed);

export const StateView = Type.Object(
  {
    mode: ModeSchema,
    cash: Type.Unknown(),
    holdings: Type.Unknown(),
    positions: Type.Unknown(),
    state_ts: Type.Union([Type.String(), Type.Null()], {
      description: "When the newest snapshot was stored; null if none.",
    }),
    last_seq: Type.Integer(),
    health: Health,
  },
  { additionalProperties: true, description: "The newest snapshot's fields as sent, plus last_seq and health." },
);

export const HealthUp = Type.Object(
  { status: Type.Literal("ok"), db: Type.Literal("ok"), modes: Modes(Health) },
  closed,
);
export const HealthDown = Type.Object(
  { status: Type.Literal("unavailable"), db: Type.Literal("unavailable"), modes: Type.Null() },
  closed,
);

const ReadinessChecks = Type.Object(
  {
    draining: Type.Boolean(),
    db: Type.Union([Type.Literal("ok"), Type.Literal("unavailable"), Type.Literal("read_only")]),
    recent_write_failures: Type.Integer(),
    last_write_error: NullableString,
    accepting: Type.Union([Accepting, Type.Literal("unlimited")]),
  },
  closed,
);
export const ReadyAnswer = Type.Object(
  {
    status: Type.Union([Type.Literal("ready"), Type.Literal("not_ready")]),
    reasons: Type.Array(Type.String()),
    checks: ReadinessChecks,
  },
  closed,
);

export const QuarantineEntry = Type.Object(
  {
    event: StoredEventSchema,
    reason: Type.String(),
    errors: Type.Array(FieldErrorSchema),
    remote_status: NullableInt,
    attempts: Type.Integer(),
    quarantined_at: Iso("When it was set aside"),
  },
  closed,
);
export const QuarantineList = Type.Object(
  {
    mode: ModeSchema,
    count: Type.Integer({ description: "All quarantined events of the mode." }),
    events: Type.Array(QuarantineEntry),
  },
  closed,
);
export const RetryInput = Type.Object(
  {
    mode: ModeSchema,
    ids: Type.Optional(
      Type.Array(Type.String({ description: "Event id (lower-case UUID)." }), { minItems: 1, maxItems: 1000 }),
    ),
  },
  { additionalProperties: false },
);
export const RetryAnswer = Type.Object(
  {
    mode: ModeSchema,
    released: Type.Integer(),
    quarantined: Type.Integer({ description: "Still quarantined after the release." }),
  },
  closed,
);

const ModeStatus = Type.Object({ ...Health.properties, last_seq: Type.Integer(), sse_clients: Type.Integer() }, closed);
export const StatusAnswer = Type.Object(
  {
    status: Type.Union([Type.Literal("ok"), Type.Literal("degraded"), Type.Literal("not_ready")]),
    problems: Type.Array(Type.String(), {
      description: "What is wrong, one line each, worst first; empty when all is well.",
    }),
    service: Type.Object(
      {
        version: Type.String(),
        commit: Type.String(),
        bun: Type.String(),
        sqlite: Type.String(),
        pid: Type.Integer(),
        started_at: Iso("Start of the process"),
        uptime_s: Type.Integer(),
      },
      closed,
    ),
    ready: Type.Object({ ready: Type.Boolean(), reasons: Type.Array(Type.String()) }, closed),
    db: Type.Object(
      {
        path: Type.String(),
        size_bytes: NullableInt,
        wal_bytes: NullableInt,
        free_disk_bytes: NullableInt,
        store_id: Type.String({ description: "The store's id." }),
      },
      closed,
    ),
    remote: Type.Object({ configured: Type.Boolean(), target: NullableString }, closed),
    capacity: Capacity,
    modes: Type.Object({ paper: ModeStatus, live: ModeStatus }, closed),
  },
  closed,
);

const FlushView = Type.Object(
  {
    backlog_before: Type.Integer(),
    backlog: Type.Integer(),
    flusher: Type.Optional(Type.String()),
    last_flush_ts: NullableString,
    last_flush_status: NullableString,
    quarantined: Type.Optional(Type.Integer()),
  },
  closed,
);
const FlushModes = Type.Object(
  { paper: Type.Optional(FlushView), live: Type.Optional(FlushView) },
  { ...closed, description: "The modes flushed: the one asked for, or both." },
);
export const FlushStarted = Type.Object({ waited: Type.Literal(false), modes: FlushModes }, closed);
export const FlushDone = Type.Object(
  { waited: Type.Literal(true), took_ms: Type.Integer(), modes: FlushModes },
  closed,
);

const Series = (description: string, item: TSchema = Type.Number()) => Type.Array(item, { description });
export const HistoryAnswer = Type.Object(
  {
    mode: ModeSchema,
    interval_ms: Type.Integer(),
    window_ms: Type.Integer(),
    t: Series("End of each interval, epoch ms.", Type.Integer()),
    backlog: Series("Events waiting for the remote."),
    ingest_per_s: Series("Events stored per second."),
    flushed_per_s: Series("Events flushed per second."),
    flush_ms_avg: Series(
      "Mean send to the remote; null where nothing was sent.",
      Type.Union([Type.Number(), Type.Null()]),
    ),
    flush_ms_max: Series(
      "Longest send to the remote; null where nothing was sent.",
      Type.Union([Type.Number(), Type.Null()]),
    ),
    flush_failures: Series("Failed sends."),
    oldest_unflushed_s: Series("Age of the oldest unflushed event."),
  },
  closed,
);
