// Cancelling flush work: the reason a cycle was cut short (stop, stall,
// shutdown deadline) and a race that frees the worker from a sink that
// ignores its signal.

export class FlushCancelled extends Error {
  constructor(why: string) {
    super(`flush cancelled: ${why}`);
    this.name = "FlushCancelled";
  }
}

export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  // A sink that ignores its signal must not hold the worker hostage.
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
