/**
 * How long to wait before the next connection attempt.
 *
 * Exponential with "equal jitter": the n-th consecutive failed round waits between half and all of
 * `min(maxDelayMs, initialDelayMs * 2^(n-1))`, so a fleet of clients that lost the same replica does not come back in
 * one wave, and no client waits longer than the cap.
 */
export interface BackoffOptions {
  /** Delay after the first failed round (every URL tried once). Default 250 ms. */
  initialDelayMs?: number;
  /** The cap. Default 30 000 ms. */
  maxDelayMs?: number;
  /** Random source in [0, 1); for tests. */
  random?: () => number;
}

export const DEFAULT_INITIAL_DELAY_MS = 250;
export const DEFAULT_MAX_DELAY_MS = 30_000;

/** The delay before attempt round `failedRounds` + 1 (`failedRounds` ≥ 1: rounds that have failed in a row). */
export function backoffDelay(failedRounds: number, options: BackoffOptions = {}): number {
  const initial = options.initialDelayMs ?? DEFAULT_INITIAL_DELAY_MS;
  const max = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
  const random = options.random ?? Math.random;
  if (failedRounds < 1) {
    return 0;
  }
  // 2^30 already exceeds any sensible cap; clamping the exponent keeps the arithmetic finite.
  const ceiling = Math.min(max, initial * 2 ** Math.min(failedRounds - 1, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
