// Caps on open SSE streams, in total and per client address, so that one
// host (or a reconnect loop gone wrong) cannot take every socket and file
// descriptor of the bot box. Loopback clients are the box itself, or a reverse
// proxy through which every client appears as 127.0.0.1: only the total cap
// applies to them.
import { isLoopback } from "../config.ts";
import { ZoeError } from "../domain/errors.ts";

export interface SseLimits {
  /** Open streams in all. */
  maxClients: number;
  /** Open streams from one non-loopback address. */
  maxClientsPerAddress: number;
  /** Loopback clients count toward the total only (default true). */
  exemptLoopback?: boolean;
}

const UNKNOWN = "an unknown address";

/** Seconds a refused client should wait: about when a slot may have freed. */
const RETRY_AFTER_S = 5;

export class TooManyStreamsError extends ZoeError {
  constructor(message: string, status: 429 | 503) {
    super("too_many_streams", message, { retryAfter: RETRY_AFTER_S, status: status === 503 ? 503 : undefined });
  }
}

export interface SseLimiter {
  /**
   * Takes a slot for a stream from `address` (null: unknown; every unknown
   * address counts as one) or throws TooManyStreamsError. Call the returned function
   * once when the stream ends; later calls do nothing.
   */
  acquire(address: string | null): () => void;
  /** Streams open now. */
  readonly open: number;
}

export function createSseLimiter(limits: SseLimits): SseLimiter {
  const perAddress = new Map<string, number>();
  let open = 0;
  return {
    get open() {
      return open;
    },
    acquire(address) {
      if (open >= limits.maxClients) {
        throw new TooManyStreamsError(
          `Cannot open stream: ${open} streams are open, the limit is ${limits.maxClients}; retry later`,
          503,
        );
      }
      // An unknown address is never exempt: all such streams share one slot count.
      const exempt = address !== null && limits.exemptLoopback !== false && isLoopback(unmapped(address));
      const key = exempt ? null : (address ?? UNKNOWN);
      const mine = key === null ? 0 : (perAddress.get(key) ?? 0);
      if (key !== null && mine >= limits.maxClientsPerAddress) {
        throw new TooManyStreamsError(
          `Cannot open stream: ${mine} streams are open from ${key}, the limit per address is ${limits.maxClientsPerAddress}; close one or retry later`,
          429,
        );
      }
      open++;
      if (key !== null) perAddress.set(key, mine + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        open--;
        if (key === null) return;
        const left = (perAddress.get(key) ?? 1) - 1;
        if (left > 0) perAddress.set(key, left);
        else perAddress.delete(key);
      };
    },
  };
}

/** `::ffff:127.0.0.1` (IPv4 on a dual-stack socket) → `127.0.0.1`. */
function unmapped(address: string): string {
  return address.startsWith("::ffff:") ? address.slice(7) : address;
}
