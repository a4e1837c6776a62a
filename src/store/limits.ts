// The bounded store: caps on the unflushed backlog (events and bytes) and a
// free-disk floor. Past them ingest answers 503 with Retry-After, so the bot
// knows to hold its events, rather than the store growing until the disk is
// full or dropping events silently. Critical events (fills, kill switch,
// severity critical) keep a reserved margin under each limit: ordinary events
// are refused first, and a fill still gets in.
//
// The check runs on every POST, so it reads only in-memory numbers: the
// store's running backlog usage, what admitted requests still have in flight,
// and a free-disk sample taken at most once a second.
import { statfsSync } from "node:fs";
import { dirname } from "node:path";
import type { LimitsConfig } from "../config.ts";
import type { Clock } from "../lib/clock.ts";
import { ZoeError, type ZoeErrorOptions } from "../domain/errors.ts";
import type { EventInput } from "../../supabase/functions/_shared/event-schema.ts";
import { EVENT_OVERHEAD_BYTES, eventBytes, metaJson } from "./rows.ts";
import type { EventStore } from "./store.ts";

/** Seconds a refused client should wait: the flusher needs a cycle or two to make room. */
export const BACKLOG_RETRY_AFTER_S = 15;
/** Disk space comes back by an operator's hand, or by pruning: ask for a longer wait. */
export const DISK_RETRY_AFTER_S = 60;
const DISK_SAMPLE_MS = 1_000;

/** The unflushed backlog is at its cap: nothing was stored. */
export class BacklogFullError extends ZoeError {
  constructor(message: string, options: ZoeErrorOptions = {}) {
    super("backlog_full", message, { retryAfter: BACKLOG_RETRY_AFTER_S, ...options });
  }
}

/** The database's filesystem is below its free-space floor: nothing was stored. */
export class DiskLowError extends ZoeError {
  constructor(message: string, options: ZoeErrorOptions = {}) {
    super("disk_low", message, { retryAfter: DISK_RETRY_AFTER_S, ...options });
  }
}

/** A fill, a halt, a kill switch: what must never be refused while ordinary events are. */
export function isCritical(
  event: Pick<EventInput, "severity" | "subtype">,
  criticalSubtypes: ReadonlySet<string>,
): boolean {
  return event.severity === "critical" || criticalSubtypes.has(event.subtype);
}

/** What the service accepts right now: all events, only critical ones, or none. */
export type Accepting = "all" | "critical" | "none";

// A type, not an interface: it is also a Record<string, unknown> (health JSON).
export type LimitsStatus = {
  accepting: Accepting;
  backlog_events: number;
  backlog_bytes: number;
  max_backlog_events: number | null;
  max_backlog_bytes: number | null;
  critical_reserve_events: number;
  critical_reserve_bytes: number;
  /** null when the filesystem cannot be measured (e.g. an in-memory database). */
  free_disk_bytes: number | null;
  min_free_disk_bytes: number | null;
  /** The fullest of the three limits as a fraction of where ordinary events stop (1 = refusing ordinary events). */
  fill_ratio: number;
};

export interface LimitsOptions {
  store: EventStore;
  config: LimitsConfig;
  criticalSubtypes: readonly string[];
  clock: Clock;
  /** Free bytes on the database's filesystem; default statfs of its folder (null for :memory:). */
  freeDiskBytes?: () => number | null;
}

export interface Limits {
  /**
   * Admits `events` or throws BacklogFullError / DiskLowError. The returned
   * function must be called once the append settled: until then the events
   * count as in flight, so concurrent requests cannot overshoot a cap together.
   */
  admit(events: EventInput[]): () => void;
  status(): LimitsStatus;
}

export function diskFreeBytes(dbPath: string): () => number | null {
  if (dbPath === ":memory:") return () => null;
  const dir = dirname(dbPath);
  return () => {
    try {
      const s = statfsSync(dir);
      return s.bavail * s.bsize;
    } catch {
      return null; // unknown: the disk floor cannot refuse on a guess
    }
  };
}

// The three limits for one class of event: ordinary events stop a reserve short of the cap.
const eventLimit = (config: LimitsConfig, crit: boolean) =>
  config.maxBacklogEvents - (crit ? 0 : config.criticalReserveEvents);
const byteLimit = (config: LimitsConfig, crit: boolean) =>
  config.maxBacklogBytes - (crit ? 0 : config.criticalReserveBytes);
const diskFloor = (config: LimitsConfig, crit: boolean) =>
  config.minFreeDiskBytes + (crit ? 0 : config.criticalReserveBytes);

/** What one request adds, split by class: ordinary events never use the reserve, critical ones may. */
interface RequestLoad {
  ordinary: number;
  ordinaryBytes: number;
  critical: number;
  criticalBytes: number;
}

/**
 * Why `adding` more (the request's share plus what is in flight) on top of
 * the stored `usage` would break a limit for this class of event, or null.
 * `load` is the whole request, for the answer's details. The disk is
 * measured only when it has a floor.
 */
function refusalOf(
  config: LimitsConfig,
  crit: boolean,
  usage: { events: number; bytes: number },
  adding: { events: number; bytes: number },
  freeDisk: () => number | null,
  load: RequestLoad | null,
): ZoeError | null {
  const mixed = load !== null && load.ordinary > 0 && load.critical > 0;
  const kind = crit ? "critical events" : "events";
  const reserve = (n: number, unit: string) =>
    crit || n === 0 ? "" : `, ${n.toLocaleString("en")} ${unit} kept for critical events`;
  // A request holding both is judged by its ordinary events: the critical
  // ones in it do not open the reserve to them.
  const judged = mixed
    ? `; a request is judged by its ordinary events (this one holds ${load.ordinary.toLocaleString("en")} ordinary and ${load.critical.toLocaleString("en")} critical), so send critical events in a request of their own to use the reserve`
    : "";
  const request = load === null ? {} : { request_events: { ordinary: load.ordinary, critical: load.critical } };
  if (config.maxBacklogEvents > 0 && usage.events + adding.events > eventLimit(config, crit)) {
    return new BacklogFullError(
      `Cannot store ${kind}: the unflushed backlog holds ${usage.events.toLocaleString("en")} events (cap ${config.maxBacklogEvents.toLocaleString("en")}${reserve(config.criticalReserveEvents, "events")})${judged}; retry once the flush to the remote catches up`,
      {
        details: {
          backlog_events: usage.events,
          max_backlog_events: config.maxBacklogEvents,
          critical: crit,
          ...request,
        },
      },
    );
  }
  if (config.maxBacklogBytes > 0 && usage.bytes + adding.bytes > byteLimit(config, crit)) {
    return new BacklogFullError(
      `Cannot store ${kind}: the unflushed backlog holds ${usage.bytes.toLocaleString("en")} bytes (cap ${config.maxBacklogBytes.toLocaleString("en")}${reserve(config.criticalReserveBytes, "bytes")})${judged}; retry once the flush to the remote catches up`,
      {
        details: {
          backlog_bytes: usage.bytes,
          max_backlog_bytes: config.maxBacklogBytes,
          critical: crit,
          ...request,
        },
      },
    );
  }
  const disk = config.minFreeDiskBytes > 0 ? freeDisk() : null;
  if (disk !== null && disk < diskFloor(config, crit)) {
    return new DiskLowError(
      `Cannot store ${kind}: ${disk.toLocaleString("en")} bytes free on the database's filesystem (floor ${config.minFreeDiskBytes.toLocaleString("en")}${reserve(config.criticalReserveBytes, "bytes")})${judged}; free disk space`,
      {
        details: {
          free_disk_bytes: disk,
          min_free_disk_bytes: config.minFreeDiskBytes,
          critical: crit,
          ...request,
        },
      },
    );
  }
  return null;
}

export function createLimits(options: LimitsOptions): Limits {
  const { store, config, clock } = options;
  const critical = new Set(options.criticalSubtypes);
  const measure = options.freeDiskBytes ?? diskFreeBytes(store.path);
  let inflightEvents = 0;
  let inflightBytes = 0;
  let free: number | null = null;
  let sampledAt = Number.NEGATIVE_INFINITY;

  const freeDisk = (): number | null => {
    const now = clock.now();
    if (now - sampledAt >= DISK_SAMPLE_MS) {
      free = measure();
      sampledAt = now;
    }
    return free;
  };

  const refusal = (crit: boolean, events: number, bytes: number, load: RequestLoad | null = null) =>
    refusalOf(
      config,
      crit,
      store.backlogUsage(),
      { events: inflightEvents + events, bytes: inflightBytes + bytes },
      freeDisk,
      load,
    );

  return {
    admit(events) {
      // Counted as the store counts it (body and meta in UTF-8, plus the row
      // overhead), so the byte cap is a hard limit. Without a byte cap the
      // size decides nothing and is not measured.
      const load: RequestLoad = { ordinary: 0, ordinaryBytes: 0, critical: 0, criticalBytes: 0 };
      const measured = config.maxBacklogBytes > 0;
      for (const e of events) {
        const size = measured ? eventBytes(e.body, metaJson(e.meta, true)) : EVENT_OVERHEAD_BYTES;
        if (isCritical(e, critical)) {
          load.critical++;
          load.criticalBytes += size;
        } else {
          load.ordinary++;
          load.ordinaryBytes += size;
        }
      }
      const bytes = load.ordinaryBytes + load.criticalBytes;
      // Ordinary events stop a reserve short of the caps, counted on top of
      // everything stored and in flight; the whole request must fit the hard caps.
      const refused =
        (load.ordinary > 0 ? refusal(false, load.ordinary, load.ordinaryBytes, load) : null) ??
        (load.critical > 0 ? refusal(true, events.length, bytes, load) : null);
      if (refused) throw refused;
      inflightEvents += events.length;
      inflightBytes += bytes;
      let settled = false;
      return () => {
        if (settled) return;
        settled = true;
        inflightEvents -= events.length;
        inflightBytes -= bytes;
      };
    },
    status() {
      const usage = store.backlogUsage();
      const disk = freeDisk();
      // Would one more small event get in?
      const one = (crit: boolean) => refusal(crit, 1, EVENT_OVERHEAD_BYTES) === null;
      const accepting: Accepting = one(false) ? "all" : one(true) ? "critical" : "none";
      const ratios = [0];
      if (config.maxBacklogEvents > 0) ratios.push(usage.events / Math.max(1, eventLimit(config, false)));
      if (config.maxBacklogBytes > 0) ratios.push(usage.bytes / Math.max(1, byteLimit(config, false)));
      // Disk: 0 with the whole filesystem free, 1 at the ordinary floor.
      if (config.minFreeDiskBytes > 0 && disk !== null)
        ratios.push(Math.min(1, diskFloor(config, false) / Math.max(1, disk)));
      return {
        accepting,
        backlog_events: usage.events,
        backlog_bytes: usage.bytes,
        max_backlog_events: config.maxBacklogEvents || null,
        max_backlog_bytes: config.maxBacklogBytes || null,
        critical_reserve_events: config.criticalReserveEvents,
        critical_reserve_bytes: config.criticalReserveBytes,
        free_disk_bytes: disk,
        min_free_disk_bytes: config.minFreeDiskBytes || null,
        fill_ratio: Math.round(Math.max(...ratios) * 1000) / 1000,
      };
    },
  };
}

export type { LimitsConfig };
