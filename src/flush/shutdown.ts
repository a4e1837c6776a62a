// The flusher's graceful stop: let running cycles end, then one last flush per
// mode (no backoff, stop at the first failure), all within the shutdown
// deadline, after which sends in flight are aborted. Reports what is left.
import type { ModeWorker, WorkerContext } from "./mode-worker.ts";
import { FlushCancelled, raceAbort } from "./cancel.ts";

export async function shutdownWorkers(f: WorkerContext, workers: readonly ModeWorker[]): Promise<{ left: number }> {
  const deadline = new AbortController();
  const timer = f.scheduler.sleep(f.config.shutdownMs, deadline.signal).then(
    () => f.hard.abort(new FlushCancelled(`shutdown deadline of ${f.config.shutdownMs} ms`)),
    () => {},
  );
  for (const w of workers) w.interrupt();
  const loops = workers.map((w) => w.loop ?? Promise.resolve());
  await raceAbort(Promise.all(loops), f.hard.signal).catch(() => {});
  // One last flush: no backoff, stop at the first failure or the deadline.
  for (const w of workers) {
    try {
      if (!f.hard.signal.aborted) await w.lastFlush(f.hard.signal);
    } catch (error) {
      if (!f.hard.signal.aborted) f.logger.warn("last flush failed", { mode: w.mode, error });
    }
    try {
      await w.commitDeferred();
    } catch (error) {
      f.logger.error("cannot mark flushed events", { mode: w.mode, error });
    }
  }
  deadline.abort();
  await timer;
  let left = 0;
  for (const w of workers) left += f.store.backlog(w.mode);
  return { left };
}
