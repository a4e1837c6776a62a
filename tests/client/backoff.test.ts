import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { DEFAULT_BACKOFF, probeDelay } from "../../src/client/backoff.ts";

describe("probeDelay()", () => {
  test("doubles from 1 s to the 15 s cap", () => {
    const delays = Array.from({ length: 8 }, (_, i) => probeDelay(i, DEFAULT_BACKOFF, () => 0));
    expect(delays).toEqual([1000, 2000, 4000, 8000, 15_000, 15_000, 15_000, 15_000]);
  });

  test("jitter only shortens: the first probe is within 2 s and none waits past the cap", () => {
    fc.assert(
      fc.property(fc.nat({ max: 1000 }), fc.double({ min: 0, max: 0.999999, noNaN: true }), (attempt, r) => {
        const d = probeDelay(attempt, DEFAULT_BACKOFF, () => r);
        expect(d).toBeLessThanOrEqual(15_000);
        expect(d).toBeGreaterThanOrEqual(Math.round(Math.min(15_000, 1000 * 2 ** attempt) * 0.8));
        if (attempt === 0) expect(d).toBeLessThanOrEqual(2000);
      }),
    );
  });
});
