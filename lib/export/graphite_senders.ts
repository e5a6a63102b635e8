/**
 * The senders of `ess graphite`: carbon's plaintext lines over one persistent TCP connection, or
 * as UDP datagrams as pyess sent them. Carbon never answers, so the TCP sender learns whether
 * metrics arrived only from how the server ends a connection.
 *
 * @module
 */
import dgram from "node:dgram";
import { Buffer } from "node:buffer";
import { Backoff } from "../backoff.ts";
import { errorText, GraphiteError } from "../errors.ts";

/**
 * Splits a batch of lines into UDP datagrams of at most `maxBytes` (a line is never cut; carbon
 * reads each datagram on its own).
 */
export function datagrams(lines: readonly string[], maxBytes = 1400): string[] {
  const packets: string[] = [];
  let current = "";
  for (const line of lines) {
    if (current !== "" && Buffer.byteLength(current + line) > maxBytes) {
      packets.push(current);
      current = "";
    }
    current += line;
  }
  if (current !== "") packets.push(current);
  return packets;
}

/**
 * Where metrics go. `send` throws a {@link GraphiteError} when a batch cannot be delivered, or
 * when the server is found to have ended the connection that earlier batches went on.
 */
export interface MetricSender {
  /** `tcp://host:port` or `udp://host:port`, for messages. */
  readonly target: string;
  /**
   * Sends one batch. Resolves to whether the server is known to take metrics: over TCP, an
   * earlier batch went out on this connection and the server has not ended it since; `false`
   * for the first batch on a new connection, which proves nothing yet (a carbon that accepts
   * and closes at once takes every write). UDP cannot tell, and says `true`.
   */
  send(lines: readonly string[]): Promise<boolean>;
  /**
   * Ends the stream and makes sure the server read it: over TCP, ess half-closes the connection
   * and carbon must close its side after that, without a reset, within the timeout; anything
   * else throws a {@link GraphiteError}. UDP cannot confirm anything and returns at once.
   */
  finish(): Promise<void>;
  close(): Promise<void>;
}

/** The part of a TCP connection the sender uses (`Deno.TcpConn` has it). */
export interface Connection {
  write(p: Uint8Array): Promise<number>;
  read(p: Uint8Array): Promise<number | null>;
  /** Half-closes: ess sends no more, the server may still close its side. */
  closeWrite(): Promise<void>;
  close(): void;
}

/** Options of {@link TcpSender}. */
export interface TcpSenderOptions {
  hostname: string;
  port: number;
  /** Opens a connection; `Deno.connect` unless a test stubs it. */
  connect?: ((options: Deno.ConnectOptions) => Promise<Connection>) | undefined;
  /** Clock in ms, for the reconnect back-off. */
  now?: (() => number) | undefined;
  random?: (() => number) | undefined;
  /**
   * How long connecting, writing one batch, or (in {@link TcpSender.finish}) waiting for the
   * server to close may take, in ms (default 5000).
   */
  timeoutMs?: number | undefined;
}

/**
 * The message of an error, without Deno's `(os error 111)` tail.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(reason(new Error("Connection refused (os error 111)")), "Connection refused");
 * ```
 */
export function reason(err: unknown): string {
  const message = errorText(err);
  return message.replace(/\s*\(os error \d+\)$/, "");
}

/**
 * What ess learns of a connection's end from the server's side: `undefined` for an orderly
 * close, else what went wrong (`Connection reset by peer`).
 */
type ServerEnd = string | undefined;

/**
 * Sends each batch over one persistent TCP connection. Carbon never writes, so the only word
 * from it is how a connection ends: one it ends on its own (closes, resets) is a failure, noticed
 * at the next batch, since the batches before may be lost. A failed connection is closed and
 * reconnected on a later batch, no sooner than a capped, jittered back-off (1 s up to 1 min)
 * allows; until then batches fail at once without touching the network. The back-off starts
 * over only when a connection has carried a batch and is still open at the next, so a carbon
 * that takes connections and drops them counts as one outage, not as a recovery per connection.
 */
export class TcpSender implements MetricSender {
  readonly target: string;
  #hostname: string;
  #port: number;
  #connect: (options: Deno.ConnectOptions) => Promise<Connection>;
  #now: () => number;
  #timeoutMs: number;
  #backoff: Backoff;
  #conn: Connection | undefined;
  /** How the current connection ended from the server's side, once it has. */
  #serverEnd: Promise<ServerEnd> | undefined;
  /** Batches written on the current connection. */
  #batches = 0;
  /** The server ended the current connection before ess did: why. */
  #lost: string | undefined;
  /** The connection ess half-closed, whose end from the server is the confirmation. */
  #finishing: Connection | undefined;
  #retryAt = 0;
  #lastError = "";

  constructor(options: TcpSenderOptions) {
    this.#hostname = options.hostname;
    this.#port = options.port;
    this.target = `tcp://${
      options.hostname.includes(":") ? `[${options.hostname}]` : options.hostname
    }:${options.port}`;
    this.#connect = options.connect ?? Deno.connect;
    this.#now = options.now ?? Date.now;
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#backoff = new Backoff({ baseMs: 1000, maxMs: 60_000, random: options.random });
  }

  /** Whether a connection is open now. */
  get connected(): boolean {
    return this.#conn !== undefined;
  }

  async send(lines: readonly string[]): Promise<boolean> {
    if (this.#lost !== undefined) {
      const why = this.#lost;
      this.#lost = undefined;
      this.#fail(why);
      throw new GraphiteError(
        `Cannot send to Graphite ${this.target}: ${why}; the last metrics sent may be lost`,
      );
    }
    const conn = this.#conn ?? await this.#open();
    const proven = this.#batches > 0;
    if (proven) this.#backoff.reset();
    const bytes = new TextEncoder().encode(lines.join(""));
    try {
      await this.#withTimeout(
        conn,
        `no progress writing for ${this.#timeoutMs / 1000} s`,
        async () => {
          let rest = bytes;
          while (rest.length > 0) rest = rest.subarray(await conn.write(rest));
        },
      );
    } catch (err) {
      // A server that ends the connection during the write fails it too; its reason says more
      // than the write's.
      const lost = this.#lost;
      this.#lost = undefined;
      this.#fail(lost ?? err);
      throw new GraphiteError(`Cannot send to Graphite ${this.target}: ${this.#lastError}`, {
        cause: err,
      });
    }
    this.#batches++;
    return proven;
  }

  async finish(): Promise<void> {
    const conn = this.#conn;
    const serverEnd = this.#serverEnd;
    const lost = this.#lost;
    if (conn === undefined || serverEnd === undefined || lost !== undefined) {
      this.#lost = undefined;
      throw new GraphiteError(
        `Cannot send to Graphite ${this.target}: ${
          lost ?? "the connection is gone"
        } before ess had finished; the metrics may not have arrived`,
      );
    }
    this.#finishing = conn;
    let end: ServerEnd;
    try {
      end = await this.#withTimeout(
        conn,
        `it did not close the connection within ${this.#timeoutMs / 1000} s of ess finishing`,
        async () => {
          await conn.closeWrite();
          return await serverEnd;
        },
      );
    } catch (err) {
      this.#fail(err);
      throw new GraphiteError(
        `Cannot confirm delivery to Graphite ${this.target}: ${this.#lastError}`,
        { cause: err },
      );
    }
    this.#drop();
    if (end !== undefined) {
      this.#fail(end);
      throw new GraphiteError(
        `Cannot confirm delivery to Graphite ${this.target}: ${end}; the metrics may not have ` +
          "arrived",
      );
    }
  }

  async close(): Promise<void> {
    this.#drop();
    await this.#serverEnd;
  }

  async #open(): Promise<Connection> {
    const now = this.#now();
    if (now < this.#retryAt) {
      throw new GraphiteError(
        `Cannot send to Graphite ${this.target}: ${this.#lastError} (next try in ${
          Math.ceil((this.#retryAt - now) / 1000)
        } s)`,
      );
    }
    try {
      const conn = await this.#connect({
        hostname: this.#hostname,
        port: this.#port,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      this.#conn = conn;
      this.#batches = 0;
      this.#lost = undefined;
      this.#serverEnd = this.#watch(conn);
      return conn;
    } catch (err) {
      this.#fail(err);
      throw new GraphiteError(`Cannot connect to Graphite ${this.target}: ${this.#lastError}`, {
        cause: err,
      });
    }
  }

  /**
   * Reads until the server ends the connection (carbon never writes) and says how it did. An
   * end that ess did not ask for, by half-closing it in {@link finish}, marks the connection
   * lost; when ess closes it itself, the pending read just ends.
   */
  async #watch(conn: Connection): Promise<ServerEnd> {
    const buffer = new Uint8Array(512);
    let end: ServerEnd;
    try {
      while (await conn.read(buffer) !== null) { /* discard */ }
    } catch (err) {
      end = reason(err);
    }
    if (this.#conn === conn && this.#finishing !== conn) {
      this.#lost = end ?? "it closed the connection";
      this.#drop();
    }
    return end;
  }

  /** `work` on `conn`, or a failure (and the connection dropped) after the timeout. */
  async #withTimeout<T>(conn: Connection, what: string, work: () => Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        if (this.#conn === conn) this.#drop();
        reject(new Error(what));
      }, this.#timeoutMs);
    });
    try {
      return await Promise.race([work(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  #fail(err: unknown): void {
    this.#lastError = typeof err === "string" ? err : reason(err);
    this.#drop();
    this.#retryAt = this.#now() + this.#backoff.next();
  }

  #drop(): void {
    const conn = this.#conn;
    this.#conn = undefined;
    try {
      conn?.close();
    } catch {
      // Already closed by the peer.
    }
  }
}

/** Sends each batch as UDP datagrams, as pyess did (nothing tells whether carbon got them). */
export class UdpSender implements MetricSender {
  readonly target: string;
  #hostname: string;
  #port: number;
  #socket: dgram.Socket | undefined;

  constructor(options: { hostname: string; port: number }) {
    this.#hostname = options.hostname;
    this.#port = options.port;
    this.target = `udp://${
      options.hostname.includes(":") ? `[${options.hostname}]` : options.hostname
    }:${options.port}`;
  }

  async send(lines: readonly string[]): Promise<boolean> {
    this.#socket ??= dgram.createSocket(this.#hostname.includes(":") ? "udp6" : "udp4");
    const socket = this.#socket;
    for (const packet of datagrams(lines)) {
      await new Promise<void>((resolve, reject) =>
        socket.send(Buffer.from(packet), this.#port, this.#hostname, (err) => {
          if (err) {
            reject(
              new GraphiteError(`Cannot send to Graphite ${this.target}: ${reason(err)}`, {
                cause: err,
              }),
            );
          } else resolve();
        })
      );
    }
    return true;
  }

  finish(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    const socket = this.#socket;
    this.#socket = undefined;
    return socket ? new Promise((resolve) => socket.close(() => resolve())) : Promise.resolve();
  }
}

/**
 * A sender that the loops of several devices share, so that one process keeps one connection
 * to carbon: their batches go out one after the other, never interleaved on the connection.
 * Each loop has at most one batch in flight, so at most one batch per device waits here.
 * Delivery is confirmed once for all of them: {@link SharedSender.finish} does nothing, and
 * whoever owns the inner sender calls its `finish()` and `close()` when every loop is done.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * const batches: string[][] = [];
 * const inner = {
 *   target: "tcp://carbon:2003",
 *   send: async (lines: readonly string[]) => (batches.push([...lines]), true),
 *   finish: async () => {},
 *   close: async () => {},
 * };
 * const shared = new SharedSender(inner);
 * await Promise.all([shared.send(["a 1 0\n"]), shared.send(["b 2 0\n"])]);
 * deepEqual(batches, [["a 1 0\n"], ["b 2 0\n"]]);
 * ```
 */
export class SharedSender implements MetricSender {
  readonly target: string;
  #inner: MetricSender;
  /** The batch being sent; the next waits for it, whether it was delivered or not. */
  #last: Promise<unknown> = Promise.resolve();

  constructor(inner: MetricSender) {
    this.#inner = inner;
    this.target = inner.target;
  }

  send(lines: readonly string[]): Promise<boolean> {
    const sending = this.#last.then(() => this.#inner.send(lines));
    this.#last = sending.catch(() => {});
    return sending;
  }

  finish(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
