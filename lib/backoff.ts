/**
 * Capped, jittered exponential back-off, shared by everything that retries a device, a broker or
 * a Graphite server, and the waits such loops make that end when they are told to stop.
 * Randomness is injected so that tests are deterministic.
 *
 * @module
 */

/**
 * The longest wait between tries of a device that does not answer, in ms. A LAN device costs
 * nothing to try once a minute, and a longer cap only made ess notice a device back from a
 * reboot up to 5 minutes late.
 */
export const DEVICE_MAX_BACKOFF_MS = 60_000;

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
 * import { equal, ok } from "node:assert/strict";
 * equal(nextDelay(0, { baseMs: 1000, maxMs: 300_000, random: () => 0.5 }), 750);
 * const late = nextDelay(20, { baseMs: 1000, maxMs: 300_000, random: () => 0.999 });
 * ok(late > 299_000 && late < 300_000);
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
 * import { deepEqual, equal } from "node:assert/strict";
 * const backoff = new Backoff({ baseMs: 1000, maxMs: 60_000, random: () => 0.5 });
 * deepEqual([backoff.next(), backoff.next(), backoff.next()], [750, 1500, 3000]); // failures
 * backoff.reset(); // a success
 * equal(backoff.next(), 750);
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
 * import { equal } from "node:assert/strict";
 * equal(seededRandom(42)(), seededRandom(42)()); // the same sequence on every run
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
 * import { ok } from "node:assert/strict";
 * const stop = new AbortController();
 * const started = Date.now();
 * setTimeout(() => stop.abort(), 10);
 * await sleep(60_000, stop.signal); // ends as soon as the signal aborts
 * ok(Date.now() - started < 1000);
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

/**
 * `work`'s result, or `fallback` as soon as `signal` aborts (at once if it has), so that a loop
 * told to stop does not wait for a device request that hangs. Unlike a race against one
 * long-lived promise, it leaves nothing behind per call, so a loop can use it forever; a
 * rejection of `work` after the abort is dropped.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const stop = new AbortController();
 * const hanging = new Promise<string>(() => {});
 * setTimeout(() => stop.abort(), 10);
 * equal(await unlessAborted(hanging, stop.signal, "stopped"), "stopped");
 * equal(await unlessAborted(Promise.resolve("read"), new AbortController().signal, "stopped"), "read");
 * ```
 */
export function unlessAborted<T>(work: Promise<T>, signal: AbortSignal, fallback: T): Promise<T> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      work.catch(() => {});
      return resolve(fallback);
    }
    const onAbort = () => resolve(fallback);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
