import { describe, expect, it } from "vitest";
import { backoffDelay } from "../../src/index.js";

describe("backoffDelay", () => {
  it("doubles per failed round, between half and all of the ceiling", () => {
    const low = (n: number) => backoffDelay(n, { initialDelayMs: 100, maxDelayMs: 10_000, random: () => 0 });
    const high = (n: number) => backoffDelay(n, { initialDelayMs: 100, maxDelayMs: 10_000, random: () => 0.999999 });
    expect([1, 2, 3, 4].map(low)).toEqual([50, 100, 200, 400]);
    expect([1, 2, 3, 4].map(high)).toEqual([100, 200, 400, 800]);
  });

  it("never exceeds the cap, however many rounds failed", () => {
    for (const n of [8, 20, 1_000, Number.MAX_SAFE_INTEGER]) {
      const delay = backoffDelay(n, { initialDelayMs: 250, maxDelayMs: 30_000 });
      expect(delay).toBeGreaterThanOrEqual(15_000);
      expect(delay).toBeLessThanOrEqual(30_000);
    }
  });

  it("is jittered: clients that failed together spread out", () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(5)));
    expect(delays.size).toBeGreaterThan(25);
  });

  it("waits nothing before the first round has failed", () => {
    expect(backoffDelay(0)).toBe(0);
  });
});
