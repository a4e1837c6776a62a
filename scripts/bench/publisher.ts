// Open-loop publisher for the SSE benchmark: POSTs single events at a fixed
// rate over a few keep-alive connections, stamping each with the wall-clock
// send time (meta.sent_at, comparable across processes) so receivers can
// measure publish→receive latency. Prints one JSON line.
import { connectHttp, type HttpConnection, postRequest } from "./http1.ts";
import { childArgs, cpuMeter, epochMs, reply, sampleEvent, summarize } from "./lib.ts";

export interface PublisherArgs {
  url: string;
  mode: string;
  ratePerSecond: number;
  durationMs: number;
  connections: number;
}

export interface PublisherResult {
  sent: number;
  ok: number;
  errors: number;
  firstError: string | null;
  achievedPerSecond: number;
  postLatencyMs: ReturnType<typeof summarize>;
  generatorCores: number;
}

if (import.meta.main) {
  const args = childArgs<PublisherArgs>();
  const url = new URL(args.url);
  const latencies: number[] = [];
  let ok = 0;
  let errors = 0;
  let firstError: string | null = null;
  const idle: { conn: HttpConnection; sentAt: number }[] = [];

  for (let i = 0; i < args.connections; i++) {
    const slot = { conn: null as unknown as HttpConnection, sentAt: 0 };
    slot.conn = await connectHttp(url, {
      response(status, raw) {
        latencies.push(performance.now() - slot.sentAt);
        if (status === 201 || status === 200) ok++;
        else {
          errors++;
          firstError ??= raw.slice(0, 500);
        }
        idle.push(slot);
      },
      closed(reason) {
        errors++;
        firstError ??= reason;
      },
    });
    idle.push(slot);
  }

  const cpu = cpuMeter();
  const t0 = performance.now();
  let sent = 0;
  const total = Math.round((args.ratePerSecond * args.durationMs) / 1000);
  // Each tick sends every event that is due by now; a 1 ms timer keeps the
  // spacing close to even at 1,000/s.
  // Stops at the end of the window even if connections died (their slots never come back).
  const endBy = t0 + args.durationMs + 2000;
  while (sent < total && performance.now() < endBy) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) * args.ratePerSecond) / 1000));
    while (sent < due && idle.length > 0) {
      const slot = idle.pop()!;
      const event = { ...sampleEvent(sent, { sent_at: epochMs() }), mode: args.mode };
      slot.sentAt = performance.now();
      slot.conn.send(postRequest(url, "/local/events", JSON.stringify(event)));
      sent++;
    }
    await Bun.sleep(1);
  }
  const elapsed = performance.now() - t0;
  const deadline = performance.now() + 5000;
  while (ok + errors < sent && performance.now() < deadline) await Bun.sleep(5);
  reply({
    sent,
    ok,
    errors,
    firstError,
    achievedPerSecond: (sent / elapsed) * 1000,
    postLatencyMs: summarize(latencies),
    generatorCores: cpu(),
  } satisfies PublisherResult);
}
