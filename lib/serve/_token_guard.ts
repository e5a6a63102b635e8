/**
 * Back-off for wrong control tokens, per client address: after each wrong token the client must
 * wait longer (1 s, 2 s, 4 s, ... up to a minute) before the server looks at its next one, so a
 * client that guesses gets a handful of tries a minute instead of thousands a second. The log
 * gets one warning per burst of wrong tokens, not one line per guess.
 *
 * @module
 */

/** The first wait after a wrong token, in ms. */
const FIRST_DELAY_MS = 1000;
/** The longest wait, in ms. */
export const MAX_TOKEN_DELAY_MS = 60_000;
/** A client quiet for this long starts afresh: its next wrong token is a new burst. */
const FORGET_AFTER_MS = 10 * 60_000;
/** Clients remembered at most; beyond, the one quiet longest is forgotten. */
const MAX_CLIENTS = 1024;

interface Client {
  /** Wrong tokens in this burst. */
  failures: number;
  /** Until when the client's requests are refused unread, in ms since the epoch. */
  until: number;
  /** The last wrong token, in ms since the epoch. */
  last: number;
}

/** What {@link TokenGuard.failed} tells the caller. */
export interface Failure {
  /** Whether this wrong token starts a burst (log it as a warning). */
  first: boolean;
  /** Wrong tokens in this burst so far. */
  failures: number;
  /** How long the client must now wait, in ms. */
  delayMs: number;
}

/**
 * Remembers wrong control tokens per client address (the IP address alone: a client's
 * connections share their back-off).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * let now = 0;
 * const guard = new TokenGuard(() => now);
 * equal(guard.failed("10.0.0.9").delayMs, 1000);
 * equal(guard.waitMs("10.0.0.9"), 1000);
 * now = 1000;
 * equal(guard.waitMs("10.0.0.9"), 0);
 * equal(guard.failed("10.0.0.9").delayMs, 2000);
 * ```
 */
export class TokenGuard {
  #clients = new Map<string, Client>();
  #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  /** How long, in ms, `address` must still wait before its token is looked at; 0 if not. */
  waitMs(address: string): number {
    const client = this.#clients.get(address);
    return client === undefined ? 0 : Math.max(0, client.until - this.#now());
  }

  /** Records a wrong token from `address`. */
  failed(address: string): Failure {
    const now = this.#now();
    let client = this.#clients.get(address);
    const first = client === undefined || now - client.last > FORGET_AFTER_MS;
    if (first) client = { failures: 0, until: 0, last: now };
    client!.failures++;
    client!.last = now;
    const delayMs = Math.min(MAX_TOKEN_DELAY_MS, FIRST_DELAY_MS * 2 ** (client!.failures - 1));
    client!.until = now + delayMs;
    // Re-inserted, so that the map's order is the order of the last failure.
    this.#clients.delete(address);
    this.#clients.set(address, client!);
    if (this.#clients.size > MAX_CLIENTS) {
      this.#clients.delete(this.#clients.keys().next().value!);
    }
    return { first, failures: client!.failures, delayMs };
  }

  /** Forgets `address`'s wrong tokens: it has given the right one. */
  succeeded(address: string): void {
    this.#clients.delete(address);
  }
}
