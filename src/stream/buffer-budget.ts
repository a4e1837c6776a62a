// A bound on the bytes all SSE streams together hold for their clients. Each
// stream has its own cap (maxBufferedBytes), but a thousand clients that stop
// reading, each under its cap, would still hold gigabytes. Streams report what
// they hold after every write; once the sum passes the bound, the streams
// with the largest backlog are cut off (they resume with Last-Event-ID) until
// the sum is back under three quarters of it, so one pass frees room for a
// while. The backlog leaves out the latest write: a reader that just got a
// big write holds it until the socket takes it a moment later, and it is the
// clients that did not take the earlier ones that are slow.
export interface BufferHolder {
  /** Bytes this stream holds now: queued for the socket plus pending. */
  held(): number;
  /** What it held before its latest write: what the client has not taken. */
  backlog(): number;
  /** Ends the stream as too slow; it must leave() the budget. */
  cut(): void;
}

export interface BudgetEntry {
  /** Re-reads what the stream holds; may cut streams (this one too) if the sum passes the bound. */
  update(): void;
  /** The stream ended: what it held no longer counts. */
  leave(): void;
}

export interface BufferBudget {
  join(holder: BufferHolder): BudgetEntry;
  /** Bytes counted now (each stream as of its last update). */
  readonly total: number;
  /** Streams cut off for the bound so far. */
  readonly cuts: number;
}

export function createBufferBudget(maxBytes: number): BufferBudget {
  const entries = new Set<Entry>();
  let total = 0;
  let cuts = 0;
  let enforcing = false;

  class Entry implements BudgetEntry {
    accounted = 0;
    constructor(readonly holder: BufferHolder) {}

    refresh(): void {
      const held = this.holder.held();
      total += held - this.accounted;
      this.accounted = held;
    }

    update(): void {
      if (!entries.has(this)) return;
      this.refresh();
      if (total > maxBytes) enforce();
    }

    leave(): void {
      if (!entries.delete(this)) return;
      total -= this.accounted;
      this.accounted = 0;
    }
  }

  const enforce = () => {
    if (enforcing) return; // a cut stream's own updates while it closes
    enforcing = true;
    try {
      // What readers took since their last write no longer counts.
      for (const e of entries) e.refresh();
      if (total <= maxBytes) return;
      const target = Math.floor(maxBytes * 0.75);
      // Streams with no backlog are keeping up: their bytes leave with the next socket write.
      const slowest: { e: Entry; backlog: number }[] = [];
      for (const e of entries) {
        const backlog = e.holder.backlog();
        if (backlog > 0) slowest.push({ e, backlog });
      }
      slowest.sort((a, b) => b.backlog - a.backlog);
      for (const { e } of slowest) {
        if (total <= target) break;
        cuts++;
        e.holder.cut();
        e.leave(); // in case the holder did not
      }
    } finally {
      enforcing = false;
    }
  };

  return {
    join(holder) {
      const entry = new Entry(holder);
      entries.add(entry);
      return entry;
    },
    get total() {
      return total;
    },
    get cuts() {
      return cuts;
    },
  };
}
