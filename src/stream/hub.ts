// Fan-out of committed events to live subscribers (SSE streams, the flusher's
// critical-event trigger). Publishing is synchronous and happens right after
// the commit, on the same thread, which is what makes the SSE replay/live
// seam exact: no commit can slip between a replay read and a subscription.
import type { Mode, StoredEvent } from "../../supabase/functions/_shared/event-schema.ts";

export type Subscriber = (events: StoredEvent[]) => void;

export interface Hub {
  /** Delivers `events` (in seq order) to the subscribers of their modes. */
  publish(events: StoredEvent[]): void;
  /** Returns the unsubscribe function; calling it twice is harmless. */
  subscribe(mode: Mode, subscriber: Subscriber): () => void;
  subscriberCount(mode?: Mode): number;
}

export interface HubOptions {
  /** Reports a subscriber that threw; the others still get the events. */
  onSubscriberError?: (error: unknown, mode: Mode) => void;
}

export function createHub(options: HubOptions = {}): Hub {
  const byMode = new Map<Mode, Set<Subscriber>>();
  const onError = options.onSubscriberError ?? ((error) => console.error("zoe-local: hub subscriber failed:", error));
  return {
    publish(events) {
      const groups = new Map<Mode, StoredEvent[]>();
      for (const e of events) {
        let g = groups.get(e.mode);
        if (!g) groups.set(e.mode, (g = []));
        g.push(e);
      }
      for (const [mode, group] of groups) {
        // Copy: a subscriber may unsubscribe (itself or another) while we iterate.
        for (const s of [...(byMode.get(mode) ?? [])]) {
          try {
            s(group);
          } catch (error) {
            onError(error, mode);
          }
        }
      }
    },
    subscribe(mode, subscriber) {
      let set = byMode.get(mode);
      if (!set) byMode.set(mode, (set = new Set()));
      set.add(subscriber);
      return () => {
        set.delete(subscriber);
      };
    },
    subscriberCount(mode) {
      if (mode) return byMode.get(mode)?.size ?? 0;
      let n = 0;
      for (const s of byMode.values()) n += s.size;
      return n;
    },
  };
}
