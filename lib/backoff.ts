/**
 * Capped, jittered exponential back-off, shared by everything that retries a device, a broker or
 * a Graphite server. Randomness is injected so that tests are deterministic.
 *
 * @module
 */

/** How delays grow. */
export interface BackoffOptions {
  /** The delay before the first retry, in ms (before jitter). */
  baseMs: number;
  /** No delay is ever longer than this, in ms. */
  maxMs: number;
  /** Uniform in [0, 1); `Math.random` unless a test seeds it. */
  random?: (() => number) | undefined;
}

/**
 * The delay before retry number `attempt` (0 for the first retry): `baseMs * 2^attempt`, capped
 * at `maxMs`, then jittered into its upper half so that many clients do not retry in step and no
 * retry comes sooner than half the nominal delay.
 *
 * @example
 * ```ts
 * nextDelay(0, { baseMs: 1000, maxMs: 300_000, random: () => 0.5 }); // 750
 * nextDelay(20, { baseMs: 1000, maxMs: 300_000, random: () => 0.999 }); // just under 300000
 * ```
 */
export function nextDelay(attempt: number, options: BackoffOptions): number {
  const random = options.random ?? Math.random;
  const nominal = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, attempt));
  return Math.round(nominal / 2 + random() * (nominal / 2));
}

/**
 * Counts consecutive failures and says how long to wait before the next try; a success resets it.
 *
 * @example
 * ```ts
 * const backoff = new Backoff({ baseMs: 1000, maxMs: 60_000 });
 * const wait = backoff.next(); // after a failure
 * backoff.reset(); // after a success
 * ```
 */
export class Backoff {
  #options: BackoffOptions;
  #attempt = 0;

  constructor(options: BackoffOptions) {
    this.#options = options;
  }

  /** Consecutive failures so far. */
  get failures(): number {
    return this.#attempt;
  }

  /** Records a failure and returns the delay before the next try, in ms. */
  next(): number {
    return nextDelay(this.#attempt++, this.#options);
  }

  /** Records a success: the next failure starts again at `baseMs`. */
  reset(): void {
    this.#attempt = 0;
  }
}

/**
 * A seeded pseudo-random source (mulberry32) for deterministic jitter in tests and simulations.
 *
 * @example
 * ```ts
 * const random = seededRandom(42);
 * random(); // the same number on every run
 * ```
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Waits `ms` milliseconds, or less if `signal` aborts first; never rejects.
 *
 * @example
 * ```ts
 * await sleep(10, new AbortController().signal);
 * ```
 */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
