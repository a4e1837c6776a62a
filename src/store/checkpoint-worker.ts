// Worker thread of src/store/checkpointer.ts: PASSIVE checkpoints on its own
// connection every intervalMs until the control word says stop. It blocks in
// Atomics.wait between checkpoints (it has nothing else to do), so a stop
// request is seen at once. An idle checkpoint costs a few µs.
import { Database } from "bun:sqlite";
import { RUNNING, STOPPED } from "./checkpoint-control.ts";

declare const self: Worker;

self.onmessage = (message: MessageEvent<{ path: string; intervalMs: number; control: SharedArrayBuffer }>) => {
  const { path, intervalMs, control } = message.data;
  const state = new Int32Array(control);
  let db: Database | null = null;
  try {
    if (Atomics.load(state, 0) !== RUNNING) return;
    db = new Database(path, { readwrite: true, create: false });
    // PASSIVE never waits for the writer; a busy checkpoint is simply retried next time.
    db.run("PRAGMA busy_timeout = 0");
    const checkpoint = db.query("PRAGMA wal_checkpoint(PASSIVE)");
    while (Atomics.load(state, 0) === RUNNING) {
      try {
        checkpoint.get();
      } catch {
        // A failed checkpoint (disk error, busy) loses nothing: the WAL keeps
        // the pages and the writer's automatic checkpoint is the backstop.
      }
      Atomics.wait(state, 0, RUNNING, intervalMs);
    }
  } catch {
    // Could not open the database: the automatic checkpoint still runs.
  } finally {
    db?.close();
    Atomics.store(state, 0, STOPPED);
    Atomics.notify(state, 0);
  }
};
