/**
 * The client's requests that await the broker's answer (QoS 1 messages and subscriptions), by
 * packet identifier: bounded in number, each with a deadline, and all failed at once when the
 * connection is lost. Pure bookkeeping (no sockets); lib/mqtt/client.ts sends the packets.
 *
 * @module
 */
import { MqttProtocolError } from "./_packet.ts";

/**
 * The most requests in flight at one time. Past it, a QoS 1 `publish()` or a `subscribe()`
 * waits, in order, until the broker acknowledges an earlier one; a broker that acknowledges none
 * within the acknowledgement timeout loses the connection, and every call still waiting fails
 * as the connection is lost. It keeps the 65,535 packet identifiers from running out, and what
 * one broker can make ess hold bounded.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * ok(MAX_IN_FLIGHT < 0xffff);
 * ```
 */
export const MAX_IN_FLIGHT = 256;

/** The answer a request waits for: PUBACK for a QoS 1 message, SUBACK for a subscription. */
export type RequestKind = "puback" | "suback";

interface Waiter {
  kind: RequestKind;
  /** For a subscription: how many topic filters it asked for, each answered by a return code. */
  filters: number;
  timeoutMs: number;
  overdue: () => void;
  done: Promise<number[]>;
  resolve(returnCodes: number[]): void;
  reject(err: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** A request given its place: its packet identifier, and the broker's answer to come. */
export interface Pending {
  packetId: number;
  /** The SUBACK's return codes (none for a PUBACK); rejects when the connection is lost. */
  answered: Promise<number[]>;
}

/** What a request needs to be given its place. */
interface Request {
  kind: RequestKind;
  filters: number;
  timeoutMs: number;
  overdue: () => void;
}

/**
 * The requests in flight on one client.
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * const inFlight = new InFlight(1);
 * const first = inFlight.add("suback", 2, 10_000, () => {});
 * const second = inFlight.add("puback", 0, 10_000, () => {});
 * equal(second instanceof Promise, true, "no place for it yet");
 * if (first instanceof Promise) throw new Error("there was a place");
 * equal(first.packetId, 1);
 * inFlight.answer("suback", first.packetId, [1, 0x80]);
 * deepEqual(await first.answered, [1, 0x80]);
 * const { packetId, answered } = await second;
 * equal(packetId, 2);
 * inFlight.answer("puback", packetId, []);
 * deepEqual(await answered, []);
 * ```
 */
export class InFlight {
  #max: number;
  #waiters = new Map<number, Waiter>();
  /** Requests that wait for a place, first come first served. */
  #queued: { request: Request; resolve(pending: Pending): void; reject(err: Error): void }[] = [];
  #lastId = 0;

  /** At most `max` in flight (never more than {@link MAX_IN_FLIGHT}). */
  constructor(max: number = MAX_IN_FLIGHT) {
    this.#max = Math.max(1, Math.min(max, MAX_IN_FLIGHT));
  }

  /** How many requests await their answer. */
  get size(): number {
    return this.#waiters.size;
  }

  /**
   * Gives a request a free packet identifier: at once if there is a place and nobody waits for
   * one, else a promise of it, kept in order (so that two messages to one topic arrive in the
   * order they were published), which rejects if {@link InFlight.fail} is called first.
   * `overdue` is called if no answer comes within `timeoutMs` of the place being given.
   */
  add(
    kind: RequestKind,
    filters: number,
    timeoutMs: number,
    overdue: () => void,
  ): Pending | Promise<Pending> {
    const request = { kind, filters, timeoutMs, overdue };
    if (this.#queued.length === 0 && this.#waiters.size < this.#max) return this.#place(request);
    const { promise, resolve, reject } = Promise.withResolvers<Pending>();
    this.#queued.push({ request, resolve, reject });
    return promise;
  }

  #place(request: Request): Pending {
    // Fewer in flight than there are identifiers: the search ends.
    do this.#lastId = this.#lastId % 0xffff + 1; while (this.#waiters.has(this.#lastId));
    const packetId = this.#lastId;
    const { promise, resolve, reject } = Promise.withResolvers<number[]>();
    const timer = setTimeout(request.overdue, request.timeoutMs);
    this.#waiters.set(packetId, { ...request, done: promise, resolve, reject, timer });
    return { packetId, answered: promise };
  }

  /** A place came free: the longest waiting requests get it. */
  #admit(): void {
    while (this.#waiters.size < this.#max) {
      const next = this.#queued.shift();
      if (next === undefined) return;
      next.resolve(this.#place(next.request));
    }
  }

  /** Gives up a request that was never sent; its place goes to the next one. */
  cancel(packetId: number): void {
    const waiter = this.#waiters.get(packetId);
    if (waiter === undefined) return;
    clearTimeout(waiter.timer);
    this.#waiters.delete(packetId);
    this.#admit();
  }

  /**
   * The broker's answer: settles the request it answers (an answer to nothing in flight is
   * ignored, as a late one after a timeout can be). A SUBACK whose return codes do not match the
   * filters one for one throws {@link MqttProtocolError}: a missing code would count as granted.
   */
  answer(kind: RequestKind, packetId: number, returnCodes: readonly number[]): void {
    const waiter = this.#waiters.get(packetId);
    if (waiter?.kind !== kind) return;
    if (returnCodes.length !== waiter.filters) {
      const codes = returnCodes.length;
      throw new MqttProtocolError(
        `the broker answered a subscription to ${waiter.filters} topic filters with ${codes} ` +
          `return code${codes === 1 ? "" : "s"}`,
      );
    }
    clearTimeout(waiter.timer);
    this.#waiters.delete(packetId);
    waiter.resolve([...returnCodes]);
    this.#admit();
  }

  /**
   * Resolves when every request, in flight or waiting for a place, has been answered or has
   * failed (for a goodbye that comes after the last acknowledgement).
   */
  async settled(): Promise<void> {
    while (this.#waiters.size > 0) {
      await Promise.allSettled([...this.#waiters.values()].map((w) => w.done));
    }
  }

  /** The connection is lost: every request in flight, and every one waiting for a place, fails. */
  fail(err: Error): void {
    for (const waiter of this.#waiters.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(err);
    }
    this.#waiters.clear();
    for (const queued of this.#queued.splice(0)) queued.reject(err);
  }
}
