// Timers behind an interface, paired with the injectable clock: the flusher
// sleeps through the scheduler, so tests move a manual clock and fire due
// timers instead of waiting 15 s.
import type { Clock } from "./clock.ts";

export interface Scheduler {
  /** Resolves after `ms`; rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemScheduler: Scheduler = {
  sleep(ms, signal) {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal!.reason);
      };
      const timer = setTimeout(
        () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        Math.max(0, Math.min(ms, 2 ** 31 - 1)),
      );
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  },
};

interface Timer {
  at: number;
  order: number;
  resolve(): void;
}

export interface ManualScheduler extends Scheduler {
  /** Moves the clock forward by `ms`, firing due timers in order and letting async work settle between them. */
  advance(ms: number): Promise<void>;
  /** Lets pending promise chains and I/O callbacks run without moving the clock. */
  settle(): Promise<void>;
  /** Epoch ms of the earliest pending timer, or null. */
  nextAt(): number | null;
  pending(): number;
}

/** Lets queued microtasks and a few macrotask turns run. */
export async function settle(turns = 8): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((r) => setImmediate(r));
}

/** A scheduler driven by a manual clock (tests). */
export function manualScheduler(clock: Clock & { set(t: number): void }): ManualScheduler {
  const timers = new Set<Timer>();
  let order = 0;
  const earliest = () => {
    let first: Timer | null = null;
    for (const t of timers) if (!first || t.at < first.at || (t.at === first.at && t.order < first.order)) first = t;
    return first;
  };
  return {
    sleep(ms, signal) {
      return new Promise((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason);
        const timer: Timer = {
          at: clock.now() + Math.max(0, ms),
          order: order++,
          resolve: () => {
            signal?.removeEventListener("abort", onAbort);
            resolve();
          },
        };
        const onAbort = () => {
          timers.delete(timer);
          reject(signal!.reason);
        };
        timers.add(timer);
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    },
    async advance(ms) {
      const target = clock.now() + ms;
      await settle();
      for (;;) {
        const next = earliest();
        if (!next || next.at > target) break;
        timers.delete(next);
        if (next.at > clock.now()) clock.set(next.at);
        next.resolve();
        await settle();
      }
      if (target > clock.now()) clock.set(target);
      await settle();
    },
    settle: () => settle(),
    nextAt: () => earliest()?.at ?? null,
    pending: () => timers.size,
  };
}
