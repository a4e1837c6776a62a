// Turns on the event loop for SSE replays. A replay reads SQLite and builds
// frames synchronously; fifty streams pulling pages back to back (each socket
// on loopback drains as fast as it is fed) would hold the loop for seconds and
// starve ingest, /health and the live streams. Instead each replaying stream
// asks for a turn; turns run in request order (round-robin: a stream that
// wants another page queues behind the others), a few per loop iteration
// until a time budget is spent, and the loop is handed back between
// iterations (setImmediate runs after the poll phase, so requests and commits
// that arrived meanwhile go first).
export interface ReplaySchedulerOptions {
  /** Work per loop iteration before the loop is handed back, ms (default 1). */
  sliceMs?: number;
  /** Monotonic ms (default performance.now). */
  now?: () => number;
}

export interface ReplayScheduler {
  /** Runs `step` in a later loop iteration, after the steps requested before it. */
  request(step: () => void): void;
  /** Steps waiting for their turn. */
  readonly waiting: number;
}

export function createReplayScheduler(options: ReplaySchedulerOptions = {}): ReplayScheduler {
  const sliceMs = options.sliceMs ?? 1;
  const now = options.now ?? (() => performance.now());
  let queue: (() => void)[] = [];
  let head = 0;
  let scheduled = false;

  const run = () => {
    const deadline = now() + sliceMs;
    // At least one step per iteration, so a slow step still makes progress.
    do {
      const step = queue[head]!;
      queue[head++] = undefined as never;
      try {
        step();
      } catch (error) {
        console.error("zoe-local: SSE replay step failed:", error);
      }
    } while (head < queue.length && now() < deadline);
    if (head === queue.length) {
      queue = [];
      head = 0;
    } else if (head > 1024) {
      queue = queue.slice(head);
      head = 0;
    }
    // Steps requested during this run wait for the next one (`scheduled` was still set).
    scheduled = false;
    if (queue.length > head) schedule();
  };

  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(run);
  };

  return {
    request(step) {
      queue.push(step);
      schedule();
    },
    get waiting() {
      return queue.length - head;
    },
  };
}

/** The scheduler streams share when they are not given one. */
export const sharedReplayScheduler: ReplayScheduler = createReplayScheduler();
