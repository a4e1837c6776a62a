// The control words shared by the checkpointer, the store's writer and the
// worker thread (a SharedArrayBuffer of Int32s): the store asks the worker to
// stop and the worker confirms (STATE); the writer counts commits and events
// (COMMITS, EVENTS) and wakes the worker only when it waits for them
// (WAITING, with the counts of its last checkpoint in MARK_*), so an idle or
// slow store costs no wake-ups beyond the checkpoints it needs.
export const RUNNING = 0;
export const STOPPING = 1;
export const STOPPED = 2;

/** Word indexes. */
export const STATE = 0;
export const COMMITS = 1;
export const EVENTS = 2;
export const WAITING = 3;
export const MARK_COMMITS = 4;
export const MARK_EVENTS = 5;
export const WORDS = 6;

/** WAITING values: not waiting; parked until the first commit; waiting until enough was committed. */
export const AWAKE = 0;
export const PARKED = 1;
export const GATHERING = 2;

/**
 * A checkpoint is due after this many commits or events since the last one
 * (or ZOE_CHECKPOINT_INTERVAL_MS after the first of them): a single-event
 * commit writes about 6 WAL pages, so 32 of them, or 1,000 events in big
 * batches, stay well below SQLite's automatic checkpoint at 1,000 pages.
 */
export const COMMITS_PER_CHECKPOINT = 32;
export const EVENTS_PER_CHECKPOINT = 1000;

/** Tells a waiting worker about a commit of `events` events (a few atomic operations; a futex wake only when due). */
export function noteCommit(words: Int32Array, events: number): void {
  const commits = Atomics.add(words, COMMITS, 1) + 1;
  const total = Atomics.add(words, EVENTS, events) + events;
  const waiting = Atomics.load(words, WAITING);
  if (waiting === AWAKE) return;
  if (
    waiting === GATHERING &&
    commits - Atomics.load(words, MARK_COMMITS) < COMMITS_PER_CHECKPOINT &&
    total - Atomics.load(words, MARK_EVENTS) < EVENTS_PER_CHECKPOINT
  )
    return;
  if (Atomics.compareExchange(words, WAITING, waiting, AWAKE) === waiting) Atomics.notify(words, COMMITS);
}
