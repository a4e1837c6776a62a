// Notices a hung link to the local API: a stopped process or a path that
// drops packets never errors an EventSource, it just goes quiet. The server
// sends a heartbeat every couple of seconds (`?heartbeat=event`); anything
// the stream delivers, or a state probe that answers, proves the link. No
// proof for `silenceMs` → the link counts as hung.
//
// One timer, not one per message: at 1,000 events/s alive() only stores a
// time. A check that fires late (a frozen or throttled tab) proves nothing
// about the link, so it looks again shortly instead of declaring a hang.

export interface WatchdogTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface LinkWatchdogOptions {
  timers: WatchdogTimers;
  now: () => number;
  /** Silence after which the link counts as hung. */
  silenceMs: number;
  /** Called once per arming, with how long the link has been silent. */
  onSilent(silentForMs: number): void;
}

export interface LinkWatchdog {
  /** Something arrived over the link. */
  alive(): void;
  /** Starts watching (from now); again after onSilent, or with a new silence bound. */
  arm(silenceMs?: number): void;
  readonly armed: boolean;
  /** When the link last proved alive (epoch ms). */
  readonly lastAliveAt: number;
  stop(): void;
}

/** How late a check may fire before the page, not the link, is suspected (a long task, a throttled tab). */
const LATE_CHECK_MS = 1_000;
const RECHECK_MS = 250;

export function createLinkWatchdog(options: LinkWatchdogOptions): LinkWatchdog {
  const { timers, now } = options;
  let silenceMs = options.silenceMs;
  let lastAliveAt = now();
  let timer: unknown = null;
  let armed = false;

  const schedule = (delay: number) => {
    const due = now() + delay;
    timer = timers.setTimeout(() => check(due), delay);
  };

  const check = (due: number) => {
    timer = null;
    if (!armed) return;
    const at = now();
    const silent = at - lastAliveAt;
    if (silent < silenceMs) return schedule(silenceMs - silent);
    // Fired long after it was due: this page was not running, so the events
    // that did arrive may still be queued behind this very check.
    if (at - due > LATE_CHECK_MS) return schedule(RECHECK_MS);
    armed = false;
    options.onSilent(silent);
  };

  return {
    alive() {
      lastAliveAt = now();
    },
    arm(bound) {
      // A running check re-reads the bound when it fires.
      if (bound !== undefined) silenceMs = bound;
      if (armed) return;
      armed = true;
      lastAliveAt = now();
      if (timer === null) schedule(silenceMs);
    },
    get armed() {
      return armed;
    },
    get lastAliveAt() {
      return lastAliveAt;
    },
    stop() {
      armed = false;
      if (timer !== null) timers.clearTimeout(timer);
      timer = null;
    },
  };
}
