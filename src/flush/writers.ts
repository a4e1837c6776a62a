// What the remote says of each mode's writers, kept from the flush answers:
// the current writer, and a second writer when two stores (or two starts of
// copies of one store) were seen writing the mode back and forth. zoe-ingest
// and the direct sink both answer it from zoe_health (its zoe_health_writer
// trigger decides; docs/flushing.md, "Two writers of one mode"). /health,
// `zoe-local status` and the metrics read it from here.
import type { Clock } from "../lib/clock.ts";
import { MODES, type Mode } from "../../supabase/functions/_shared/event-schema.ts";
import { type Sink, wrapSink, type WriterIdentity, type WritersReport } from "./sink.ts";

/** How long a second writer stays reported after it was last seen (the trigger's window). */
export const SECOND_WRITER_WINDOW_MS = 10 * 60_000;

export interface SecondWriter {
  /** When the remote last saw the two alternate. */
  detected_at: string;
  /** Both writers, this store's start among them. */
  writers: (WriterIdentity & { seen_at?: string })[];
  /** True while detected_at is within the window. */
  active: boolean;
}

export interface WritersStatus {
  /** This store's start as it names itself in each batch. */
  self: WriterIdentity;
  /** The mode's current writer as the remote recorded it (null: not heard yet, or a remote too old to say). */
  remote_writer: WriterIdentity | null;
  second_writer: SecondWriter | null;
}

export interface WriterWatch {
  /** The same sink, noting the writers each answer reports. */
  instrumentSink(sink: Sink): Sink;
  /** Notes one answer's report for `mode`. */
  note(mode: Mode, report: WritersReport): void;
  status(mode: Mode): WritersStatus;
  /** 2 while a second writer of `mode` was seen within the window, else 1. */
  writers(mode: Mode): number;
  /** Distinct second-writer detections of `mode` since start. */
  detections(mode: Mode): number;
}

const sameWriter = (a: WriterIdentity, b: WriterIdentity) =>
  a.store_id === b.store_id && Date.parse(a.started_at) === Date.parse(b.started_at);

export function createWriterWatch(options: {
  self: WriterIdentity;
  clock: Clock;
  windowMs?: number;
  /** Told of each new detection (a log line). */
  onSecondWriter?: (mode: Mode, second: SecondWriter) => void;
}): WriterWatch {
  const windowMs = options.windowMs ?? SECOND_WRITER_WINDOW_MS;
  const remote = new Map<Mode, WriterIdentity | null>();
  const second = new Map<Mode, { at: string; writers: SecondWriter["writers"] }>();
  const counts = new Map<Mode, number>(MODES.map((m) => [m, 0]));

  const secondOf = (mode: Mode): SecondWriter | null => {
    const s = second.get(mode);
    if (!s) return null;
    return { detected_at: s.at, writers: s.writers, active: options.clock.now() - Date.parse(s.at) < windowMs };
  };

  const watch: WriterWatch = {
    instrumentSink(sink) {
      return wrapSink(sink, async (batch, send) => {
        const result = await send();
        if (result.writers) watch.note(batch.mode, result.writers);
        return result;
      });
    },
    note(mode, report) {
      remote.set(mode, report.writer);
      if (!report.second_writer_at || !Array.isArray(report.second_writer)) return;
      // A record of two other starts (before a restart of this one, say) is not this start's second writer.
      if (!report.second_writer.some((w) => sameWriter(w, options.self))) return;
      const at = new Date(report.second_writer_at).toISOString();
      if (second.get(mode)?.at === at) return;
      second.set(mode, { at, writers: report.second_writer });
      counts.set(mode, (counts.get(mode) ?? 0) + 1);
      const found = secondOf(mode);
      if (found?.active) options.onSecondWriter?.(mode, found);
    },
    status(mode) {
      return { self: options.self, remote_writer: remote.get(mode) ?? null, second_writer: secondOf(mode) };
    },
    writers(mode) {
      return secondOf(mode)?.active ? 2 : 1;
    },
    detections(mode) {
      return counts.get(mode) ?? 0;
    },
  };
  return watch;
}
