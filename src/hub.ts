// Fan-out of committed events to live subscribers (SSE streams, the flusher's
// critical-event trigger). Publishing is synchronous and happens right after
// the commit, on the same thread, which is what makes the SSE replay/live
// seam exact: no commit can slip between a replay read and a subscription.
import type { Mode } from "./schema.ts";
import type { ZoeEvent } from "./store.ts";

export type Subscriber = (events: ZoeEvent[]) => void;

export interface Hub {
  publish(events: ZoeEvent[]): void;
  subscribe(mode: Mode, subscriber: Subscriber): () => void;
  subscriberCount(mode?: Mode): number;
}

export function createHub(): Hub {
  const byMode = new Map<Mode, Set<Subscriber>>();
  return {
    publish(events) {
      const groups = new Map<Mode, ZoeEvent[]>();
      for (const e of events) {
        let g = groups.get(e.mode);
        if (!g) groups.set(e.mode, (g = []));
        g.push(e);
      }
      for (const [mode, group] of groups) {
        for (const s of byMode.get(mode) ?? []) s(group);
      }
    },
    subscribe(mode, subscriber) {
      let set = byMode.get(mode);
      if (!set) byMode.set(mode, (set = new Set()));
      set.add(subscriber);
      return () => set.delete(subscriber);
    },
    subscriberCount(mode) {
      if (mode) return byMode.get(mode)?.size ?? 0;
      let n = 0;
      for (const s of byMode.values()) n += s.size;
      return n;
    },
  };
}
