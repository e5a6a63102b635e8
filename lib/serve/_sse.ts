/**
 * Server-Sent Events for `/api/events`: one `state` event per poll, the same text for every
 * client, a keep-alive comment, a cap on open streams, and no unbounded buffering: a client
 * whose stream is backed up is disconnected (its EventSource reconnects) rather than queued for.
 *
 * @module
 */

const encoder = new TextEncoder();

/** Limits of the event streams. */
export interface SseLimits {
  /** Open streams at most; one more is refused. */
  maxClients: number;
  /** Time between keep-alive comments, in ms. */
  keepAliveMs: number;
  /** Bytes queued for one client before it counts as backed up. */
  maxQueuedBytes: number;
  /** The reconnect delay browsers are told to use, in ms. */
  retryMs: number;
}

interface Client {
  controller: ReadableStreamDefaultController<Uint8Array>;
}

/** The open event streams. */
export class SseHub {
  #clients = new Set<Client>();
  #limits: SseLimits;
  #keepAlive: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(limits: SseLimits) {
    this.#limits = limits;
  }

  /** How many streams are open. */
  get size(): number {
    return this.#clients.size;
  }

  /**
   * A new stream that starts with `first` (the current state event), `"full"` when
   * {@link SseLimits.maxClients} streams are open already, or `"closed"` after
   * {@link SseHub.closeAll}: a stream opened while the server shuts down would hold the shutdown
   * up. The listener cancels the stream when its client goes away, which removes the client.
   */
  open(first: string): ReadableStream<Uint8Array> | "full" | "closed" {
    if (this.#closed) return "closed";
    if (this.#clients.size >= this.#limits.maxClients) return "full";
    let client: Client | undefined;
    const stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        client = { controller };
        this.#clients.add(client);
        controller.enqueue(encoder.encode(`retry: ${this.#limits.retryMs}\n\n${first}`));
        this.#startKeepAlive();
      },
      cancel: () => {
        if (client) this.#remove(client);
      },
    }, new ByteLengthQueuingStrategy({ highWaterMark: this.#limits.maxQueuedBytes }));
    return stream;
  }

  /** Sends one event (already formatted by {@link sseEvent}) to every stream. */
  send(event: string): void {
    this.#broadcast(encoder.encode(event));
  }

  /** Ends every stream, and refuses new ones from now on. */
  closeAll(): void {
    this.#closed = true;
    for (const client of [...this.#clients]) this.#close(client);
  }

  #broadcast(bytes: Uint8Array): void {
    for (const client of [...this.#clients]) {
      const room = client.controller.desiredSize;
      if (room === null || room <= 0) {
        // It has not read what it was sent: more would only pile up in memory. An error
        // (unlike close) drops what is queued and ends the connection.
        try {
          client.controller.error(new Error("the client does not keep up"));
        } catch {
          // Already closed.
        }
        this.#remove(client);
        continue;
      }
      try {
        client.controller.enqueue(bytes);
      } catch {
        this.#remove(client);
      }
    }
  }

  #startKeepAlive(): void {
    if (this.#keepAlive !== undefined) return;
    const comment = encoder.encode(": keep-alive\n\n");
    this.#keepAlive = setInterval(() => this.#broadcast(comment), this.#limits.keepAliveMs);
  }

  #close(client: Client): void {
    try {
      client.controller.close();
    } catch {
      // Already closed or cancelled by the client.
    }
    this.#remove(client);
  }

  #remove(client: Client): void {
    this.#clients.delete(client);
    if (this.#clients.size === 0 && this.#keepAlive !== undefined) {
      clearInterval(this.#keepAlive);
      this.#keepAlive = undefined;
    }
  }
}

/**
 * One SSE event. `data` must be a single line (JSON.stringify's output is).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(sseEvent("state", '{"up":true}'), 'event: state\ndata: {"up":true}\n\n');
 * ```
 */
export function sseEvent(name: string, data: string): string {
  return `event: ${name}\ndata: ${data.replace(/[\r\n]+/g, " ")}\n\n`;
}

/** The clock {@link StateEvents} waits by: ms since the epoch, and a one-shot timer. */
export interface EventClock {
  now(): number;
  /** Starts a timer; what it returns is handed to `clearTimeout`. */
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
}

const REAL_CLOCK: EventClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id as ReturnType<typeof setTimeout> | undefined),
};

/**
 * When the state events go out: after every poll, or, with a `gapMs`, at most once per gap (a
 * site's devices poll each on their own clock; their polls within one gap go out together, in
 * one event made when it is sent). Nothing is made while no stream is open.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * let at = 0;
 * const timers: (() => void)[] = [];
 * const clock = { now: () => at, setTimeout: (fn: () => void) => timers.push(fn), clearTimeout() {} };
 * const sent: string[] = [];
 * const hub = { size: 1, send: (event: string) => sent.push(event) };
 * const events = new StateEvents(hub, () => `state at ${at}`, 500, clock);
 * events.polled();
 * at = 100;
 * events.polled();
 * events.polled();
 * deepEqual(sent, ["state at 0"]);
 * at = 500;
 * timers.shift()!();
 * deepEqual(sent, ["state at 0", "state at 500"]);
 * ```
 */
export class StateEvents {
  readonly #hub: Pick<SseHub, "size" | "send">;
  readonly #event: () => string;
  readonly #gapMs: number;
  readonly #clock: EventClock;
  #lastAt = -Infinity;
  #timer: unknown;

  constructor(
    hub: Pick<SseHub, "size" | "send">,
    event: () => string,
    gapMs: number,
    clock: EventClock = REAL_CLOCK,
  ) {
    this.#hub = hub;
    this.#event = event;
    this.#gapMs = gapMs;
    this.#clock = clock;
  }

  /** A device has been polled. */
  polled(): void {
    if (this.#hub.size === 0 || this.#timer !== undefined) return;
    const wait = this.#lastAt + this.#gapMs - this.#clock.now();
    if (wait <= 0) this.#send();
    else this.#timer = this.#clock.setTimeout(() => this.#send(), wait);
  }

  /** Drops the event waiting for its turn. */
  close(): void {
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #send(): void {
    this.#timer = undefined;
    this.#lastAt = this.#clock.now();
    if (this.#hub.size > 0) this.#hub.send(this.#event());
  }
}
