import { expect, test } from "bun:test";
import { manualClock } from "../../src/lib/clock.ts";
import { createWriterWatch } from "../../src/flush/writers.ts";
import type { Sink, WritersReport } from "../../src/flush/sink.ts";

const self = { store_id: "11111111-1111-4111-8111-111111111111", started_at: "2026-12-07T16:00:00.000Z" };
const other = { store_id: "22222222-2222-4222-8222-222222222222", started_at: "2026-12-07T15:00:00.000Z" };

test("createWriterWatch() reports a second writer from the flush answers, counts each detection once, and lets it lapse after the window", async () => {
  const clock = manualClock("2026-12-07T16:05:00Z");
  const seen: string[] = [];
  const watch = createWriterWatch({ self, clock, onSecondWriter: (mode, s) => seen.push(`${mode} ${s.detected_at}`) });
  let report: WritersReport = { writer: self, second_writer_at: null, second_writer: null };
  const sink: Sink = { name: "fake", send: async () => ({ results: [], writers: report }) };
  const wrapped = watch.instrumentSink(sink);
  const send = () =>
    wrapped.send({ mode: "live", events: [], backlog: 0, state: null, signal: new AbortController().signal });

  await send();
  expect(watch.status("live")).toEqual({ self, remote_writer: self, second_writer: null });
  expect([watch.writers("live"), watch.detections("live")]).toEqual([1, 0]);

  report = { writer: self, second_writer_at: "2026-12-07T16:04:30.000Z", second_writer: [self, other] };
  await send();
  await send();
  expect(watch.status("live").second_writer).toEqual({
    detected_at: "2026-12-07T16:04:30.000Z",
    writers: [self, other],
    active: true,
  });
  expect([watch.writers("live"), watch.detections("live"), watch.writers("paper")]).toEqual([2, 1, 1]);
  expect(seen).toEqual(["live 2026-12-07T16:04:30.000Z"]);

  clock.advance(10 * 60_000);
  expect(watch.writers("live")).toBe(1);
  expect(watch.status("live").second_writer?.active).toBe(false);
});

test("createWriterWatch() ignores a second-writer record that does not name this start", () => {
  const clock = manualClock("2026-12-07T16:05:00Z");
  const watch = createWriterWatch({ self, clock });
  const earlierStart = { ...self, started_at: "2026-12-07T14:00:00.000Z" };
  watch.note("live", { writer: self, second_writer_at: "2026-12-07T16:04:00Z", second_writer: [earlierStart, other] });
  expect([watch.writers("live"), watch.detections("live"), watch.status("live").second_writer]).toEqual([1, 0, null]);
});
