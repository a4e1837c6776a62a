// The retry policy of a failing batch: capped, fully jittered exponential
// backoff that honours Retry-After, and the floor that spaces out the early
// retries critical events ask for during an outage.
import type { FlushSettings } from "../config.ts";

/** Full jitter: uniform in [0, min(cap, min·2^(n−1))], at least what Retry-After asks, never above the cap. */
export function backoffDelay(
  attempt: number,
  settings: Pick<FlushSettings, "backoffMinMs" | "backoffMaxMs">,
  random: () => number,
  retryAfterMs = 0,
): number {
  const ceiling = Math.min(settings.backoffMaxMs, settings.backoffMinMs * 2 ** Math.max(0, attempt - 1));
  return Math.min(settings.backoffMaxMs, Math.max(retryAfterMs, Math.round(random() * ceiling)));
}

/**
 * A critical event retries at once, but a stream of them during an outage
 * must not hammer the remote: such early retries are spaced at least
 * backoffMinMs apart. How long to wait still (≤ 0: go now).
 */
export function urgentRetryFloor(lastUrgentRetryAt: number | null, backoffMinMs: number, now: number): number {
  return lastUrgentRetryAt === null ? 0 : lastUrgentRetryAt + backoffMinMs - now;
}
