// Delays between probes of the local API while the feed is REMOTE: the first
// comes quickly (a restart is usually short), later ones back off to a cap so
// a box that is down for hours is not hammered. Jitter only shortens a delay,
// so the cap is a promise: a returning local API is noticed within `maxMs`.

export interface BackoffOptions {
  /** Delay before the first probe (default 1000 ms; must be at most 2000). */
  initialMs: number;
  /** Upper bound of any delay (default 15000 ms). */
  maxMs: number;
  /** Growth per attempt (default 2). */
  factor: number;
  /** Fraction of a delay that may be shaved off at random, 0–1 (default 0.2). */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 1000, maxMs: 15_000, factor: 2, jitter: 0.2 };

/** Delay before probe number `attempt` (0-based). `random` returns [0, 1). */
export function probeDelay(
  attempt: number,
  options: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const base = Math.min(options.maxMs, options.initialMs * options.factor ** Math.max(0, attempt));
  const jitter = Math.min(1, Math.max(0, options.jitter));
  return Math.round(base * (1 - jitter * random()));
}
