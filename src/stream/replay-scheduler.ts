// Turns on the event loop for SSE replays. A replay reads SQLite and builds
// frames, and every page it enqueues is then written to its socket on the
// loop (on loopback the kernel's whole TCP path runs in that write); fifty
// streams doing so back to back (each socket drains as fast as it is fed)
// would hold the loop for seconds and starve ingest, /health and the live
// streams. Instead each replaying stream asks for a turn; turns run in
// request order (round-robin: a stream that wants another page queues behind
// the others), a few per loop iteration until a time budget or a byte budget
// (what the turns enqueued, written right after them) is spent, and the loop
// is handed back between iterations (setImmediate runs after the poll phase,
// so requests and commits that arrived meanwhile go first).
export interface ReplaySchedulerOptions {
  /** Work per loop iteration before the loop is handed back, ms (default 1). */
  sliceMs?: number;
  /** Bytes enqueued per loop iteration before the loop is handed back (default 256 KiB). */
  sliceBytes?: number;
  /** Monotonic ms (default performance.now). */
  now?: () => number;
}

export interface ReplayScheduler {
  /** Runs `step` in a later loop iteration, after the steps requested before it; it returns the bytes it enqueued. */
  request(step: () => number): void;
  /** Steps waiting for their turn. */
  readonly waiting: number;
}

export function createReplayScheduler(options: ReplaySchedulerOptions = {}): ReplayScheduler {
  const sliceMs = options.sliceMs ?? 1;
  const sliceBytes = options.sliceBytes ?? 256 * 1024;
  const now = options.now ?? (() => performance.now());
  let queue: (() => number)[] = [];
  let head = 0;
  let scheduled = false;

  const run = () => {
    const deadline = now() + sliceMs;
    let bytes = 0;
    // At least one step per iteration, so a slow step still makes progress.
    do {
      const step = queue[head]!;
      queue[head++] = undefined as never;
      try {
        bytes += step();
      } catch (error) {
        console.error("zoe-local: SSE replay step failed:", error);
      }
    } while (head < queue.length && bytes < sliceBytes && now() < deadline);
    if (head === queue.length) {
      queue = [];
      head = 0;
    } else if (head > 1024) {
      queue = queue.slice(head);
      head = 0;
    }
    // A step requested during the run joined it, budget permitting; `scheduled`
    // was still set, so no second run was queued meanwhile.
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
