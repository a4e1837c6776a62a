// Worker thread of src/store/checkpointer.ts: PASSIVE checkpoints on its own
// connection, each once enough was committed (COMMITS_PER_CHECKPOINT commits
// or EVENTS_PER_CHECKPOINT events) or intervalMs after the first commit since
// the previous one, until the control word says stop. Between checkpoints it
// blocks in Atomics.wait on the commit counter, woken by the writer only when
// a checkpoint is due; an idle store wakes it once every IDLE_WAKE_MS, for the
// pages other writes (flush marks, state snapshots) left in the WAL.
import { Database } from "bun:sqlite";
import {
  AWAKE,
  COMMITS,
  COMMITS_PER_CHECKPOINT,
  EVENTS,
  EVENTS_PER_CHECKPOINT,
  GATHERING,
  MARK_COMMITS,
  MARK_EVENTS,
  PARKED,
  RUNNING,
  STATE,
  STOPPED,
  WAITING,
} from "./checkpoint-control.ts";

declare const self: Worker;

const IDLE_WAKE_MS = 1000;

self.onmessage = (message: MessageEvent<{ path: string; intervalMs: number; control: SharedArrayBuffer }>) => {
  const { path, intervalMs, control } = message.data;
  const words = new Int32Array(control);
  const running = () => Atomics.load(words, STATE) === RUNNING;
  let db: Database | null = null;
  try {
    if (!running()) return;
    db = new Database(path, { readwrite: true, create: false });
    // PASSIVE never waits for the writer; a busy checkpoint is simply retried next time.
    db.run("PRAGMA busy_timeout = 0");
    const checkpoint = db.query("PRAGMA wal_checkpoint(PASSIVE)");
    while (running()) {
      const commits = Atomics.load(words, COMMITS);
      const events = Atomics.load(words, EVENTS);
      Atomics.store(words, MARK_COMMITS, commits);
      Atomics.store(words, MARK_EVENTS, events);
      try {
        checkpoint.get();
      } catch {
        // A failed checkpoint (disk error, busy) loses nothing: the WAL keeps
        // the pages and the writer's automatic checkpoint is the backstop.
      }
      // Until the first commit after this checkpoint (or the idle wake-up).
      Atomics.store(words, WAITING, PARKED);
      if (Atomics.load(words, COMMITS) === commits) Atomics.wait(words, COMMITS, commits, IDLE_WAKE_MS);
      if (Atomics.load(words, COMMITS) === commits) {
        Atomics.store(words, WAITING, AWAKE);
        continue;
      }
      // Then until enough is committed, or intervalMs after that first commit.
      const deadline = performance.now() + intervalMs;
      Atomics.store(words, WAITING, GATHERING);
      while (running()) {
        const now = Atomics.load(words, COMMITS);
        const due =
          now - commits >= COMMITS_PER_CHECKPOINT || Atomics.load(words, EVENTS) - events >= EVENTS_PER_CHECKPOINT;
        const left = deadline - performance.now();
        if (due || left <= 0) break;
        // The writer wakes it once a checkpoint is due; a commit between the load and here returns at once.
        Atomics.store(words, WAITING, GATHERING);
        Atomics.wait(words, COMMITS, now, left);
      }
      Atomics.store(words, WAITING, AWAKE);
    }
  } catch {
    // Could not open the database: the automatic checkpoint still runs.
  } finally {
    db?.close();
    Atomics.store(words, STATE, STOPPED);
    Atomics.notify(words, STATE);
  }
};
