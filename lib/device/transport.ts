/**
 * The "custom TLS client": a function with the signature of `fetch` that talks HTTPS to one LG
 * ESS over `node:tls`. The device's certificate is self-signed and matches no hostname, and
 * Deno's own `fetch` cannot skip verification per client, so this transport accepts the device's
 * certificate for the device's socket only (never a global switch), optionally pinned by
 * SHA-256 fingerprint. One keep-alive connection, connect and response timeouts.
 *
 * It speaks HTTP/1.1 itself (lib/device/_http1.ts) rather than through `node:https`: the device needs
 * only small requests with JSON answers, and Node's HTTP machinery cost more CPU at start-up and
 * per request than the whole rest of a poll.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import tls from "node:tls";
import { HttpLimitError, type ParsedResponse, ResponseParser } from "./_http1.ts";
import {
  AnswerLimitError,
  type DeviceError,
  errorText,
  PinMismatchError,
  preview,
  TimeoutError,
  TlsError,
  UnreachableError,
  UsageError,
} from "../errors.ts";
import type { Redactor } from "../redact.ts";
import { classify, connectTimeout } from "./_socket_errors.ts";

/** The shape of `fetch` that the client depends on. */
export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>;

/** Options of {@link createDeviceFetch}. */
export interface DeviceFetchOptions {
  /** Pin the device certificate to this SHA-256 fingerprint (hex, colons optional). */
  fingerprint?: string | undefined;
  /** How long a new connection (TCP + TLS) may take, in ms. Default 5000. */
  connectTimeoutMs?: number | undefined;
  /** How long a whole request may take once sent, in ms. Default 10000. */
  timeoutMs?: number | undefined;
  /**
   * Cleans the device's text before an error message quotes it (the client adds the password
   * and auth keys to the same redactor).
   */
  redactor?: Redactor | undefined;
}

/** A fetch-shaped function bound to the device, with its connection to close. */
export interface DeviceFetch extends FetchLike {
  /** Closes the keep-alive connection for good: a request under way, or sent later, fails at once. */
  close(): void;
  /** The SHA-256 fingerprint of the last certificate seen, if any. */
  readonly peerFingerprint: string | undefined;
}

/**
 * A fingerprint in the form `openssl x509 -fingerprint -sha256` prints (`AB:CD:…`), or
 * `undefined` if `text` is not 32 bytes of hex.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(normalizeFingerprint("abcd".repeat(16)), "AB:CD:".repeat(16).slice(0, -1));
 * equal(normalizeFingerprint("12:1E"), undefined);
 * ```
 */
export function normalizeFingerprint(text: string): string | undefined {
  const hex = text.trim().replace(/^.*=/, "").replace(/[:\s]/g, "").toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) return undefined;
  return hex.match(/../g)!.join(":");
}

/** The device error for an answer the parser refused. */
function refusedAnswer(err: unknown, host: string): DeviceError {
  if (err instanceof HttpLimitError) {
    return new AnswerLimitError(
      host,
      `Refusing the answer from ${host}: ${err.message} (a real LG ESS answers a few kB of ` +
        `JSON: is ${host} the ESS?)`,
    );
  }
  return new UnreachableError(
    host,
    `Cannot talk to ${host}: not an HTTP answer (${errorText(err)})`,
  );
}

function bodyBytes(body: RequestInit["body"]): Uint8Array | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === "string") return encoder.encode(body);
  if (body instanceof Uint8Array) return body;
  throw new TypeError("device fetch sends only string or Uint8Array bodies");
}

/** What a request under way when {@link DeviceFetch.close} ends its connection fails with. */
const closedError = (host: string) =>
  new UnreachableError(host, `Cannot talk to ${host}: ess closed the connection first`);

const NO_BODY_STATUS = new Set([204, 205, 304]);
const encoder = new TextEncoder();

/** What a connection tells the request it is serving. */
interface Exchange {
  data(chunk: Uint8Array): void;
  closed(err: unknown): void;
}

/** One TLS connection to the device, carrying one request at a time. */
class Connection {
  readonly key: string;
  readonly socket: tls.TLSSocket;
  /** Whether it has carried a request already (a reused connection may have gone stale). */
  used = false;
  #alive = true;
  #error: unknown;
  #exchange: Exchange | undefined;

  constructor(key: string, socket: tls.TLSSocket) {
    this.key = key;
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on("data", (chunk: Uint8Array) => this.#exchange?.data(chunk));
    // 'close' always follows 'error'; the error says why.
    socket.on("error", (err: unknown) => this.#error ??= err);
    socket.on("close", () => {
      this.#alive = false;
      const exchange = this.#exchange;
      this.#exchange = undefined;
      exchange?.closed(this.#error);
    });
  }

  get alive(): boolean {
    return this.#alive && !this.socket.destroyed;
  }

  serve(exchange: Exchange | undefined): void {
    this.#exchange = exchange;
  }

  /** Ends the connection; a request it carries hears of it through its `closed()`. */
  destroy(): void {
    this.#alive = false;
    this.socket.destroy();
  }
}

/** What opening a connection to the device needs. */
interface ConnectSettings {
  /** The pinned fingerprint, normalised, if any. */
  readonly pinned: string | undefined;
  readonly connectTimeoutMs: number;
  /** Hears the fingerprint of every certificate the device shows. */
  readonly onFingerprint: (fingerprint: string) => void;
}

/**
 * Opens a TLS connection to the device `url` names: TCP and the handshake within the connect
 * timeout, the certificate checked against the pin if there is one.
 */
function connectDevice(
  url: URL,
  settings: ConnectSettings,
  signal: AbortSignal | undefined,
): Promise<Connection> {
  const host = url.host;
  return new Promise<Connection>((resolve, reject) => {
    const hostname = url.hostname.replace(/^\[|\]$/g, "");
    // Accepting the self-signed certificate is scoped to this socket, which only ever talks
    // to the device; nothing global changes. `ca: []` skips loading the public CAs.
    const socket = tls.connect({
      host: hostname,
      port: url.port === "" ? 443 : Number(url.port),
      rejectUnauthorized: false,
      ca: [],
    });
    let tcpConnected = false;
    const settle = (err: unknown, conn?: Connection) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      socket.off("error", onError);
      if (conn) return resolve(conn);
      socket.destroy();
      reject(err);
    };
    const onError = (err: unknown) => settle(classify(err, host, hostname));
    const onAbort = () => settle(signal?.reason);
    const timer = setTimeout(
      () => settle(connectTimeout(host, settings.connectTimeoutMs, tcpConnected)),
      settings.connectTimeoutMs,
    );
    signal?.addEventListener("abort", onAbort, { once: true });
    socket.once("error", onError);
    socket.once("connect", () => tcpConnected = true);
    socket.once("secureConnect", () => {
      const seen = socket.getPeerCertificate()?.fingerprint256;
      if (seen) settings.onFingerprint(seen);
      if (settings.pinned !== undefined && seen !== settings.pinned) {
        return settle(new PinMismatchError(host, seen ?? "(none)", settings.pinned));
      }
      settle(undefined, new Connection(url.host, socket));
    });
  });
}

/** One request as it goes out: the head (with `Host` and `Content-Length`) and the body. */
function requestBytes(url: URL, method: string, init: RequestInit | undefined): Uint8Array {
  const body = bodyBytes(init?.body);
  const headers = new Headers(init?.headers);
  headers.set("host", url.host);
  if (body !== undefined || method === "POST" || method === "PUT") {
    headers.set("content-length", String(body?.byteLength ?? 0));
  }
  let head = `${method} ${url.pathname}${url.search} HTTP/1.1\r\n`;
  headers.forEach((value, name) => head += `${name}: ${value}\r\n`);
  head += "\r\n";
  const headBytes = encoder.encode(head);
  return body === undefined ? headBytes : Buffer.concat([headBytes, body]);
}

/** One request on one connection, as {@link awaitAnswer} carries it out. */
interface Request {
  readonly url: URL;
  readonly method: string;
  readonly bytes: Uint8Array;
  readonly signal: AbortSignal | undefined;
  readonly timeoutMs: number;
  readonly redact: (text: string) => string;
  /** Whether the fetch was closed by its owner (then any failure is "ess closed it first"). */
  readonly closed: () => boolean;
  /**
   * Sends the request again on a new connection, when this one was reused and the device closed
   * it before answering (its keep-alive ended just then); undefined when that was tried already.
   */
  readonly retry: (() => Promise<Response>) | undefined;
}

/** Sends `request` on `conn` and reads the answer, within the request's timeout. */
function awaitAnswer(conn: Connection, request: Request): Promise<Response> {
  const { url, method, signal, redact } = request;
  const host = url.host;
  const reused = conn.used;
  conn.used = true;
  return new Promise<Response>((resolve, reject) => {
    const parser = new ResponseParser(method, redact);
    let received = false;
    let settled = false;
    const stop = () => {
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const settle = (err: unknown, res?: Response) => {
      if (settled) return;
      stop();
      conn.serve(undefined);
      if (res) resolve(res);
      else reject(err);
    };
    const fail = (err: unknown) => {
      conn.destroy();
      settle(err);
    };
    const complete = (answer: ParsedResponse) => {
      if (!answer.keepAlive || parser.leftover > 0) conn.destroy();
      try {
        settle(
          undefined,
          new Response(NO_BODY_STATUS.has(answer.status) ? null : answer.body, {
            status: answer.status,
            statusText: answer.statusText,
            headers: answer.headers,
          }),
        );
      } catch (err) {
        // The parser lets through only what a Response takes; should one still refuse, its
        // message may quote the peer's bytes, and this runs in a socket callback.
        fail(
          new UnreachableError(
            host,
            `Cannot talk to ${host}: not an HTTP answer (${preview(redact(errorText(err)))})`,
          ),
        );
      }
    };
    const onAbort = () => fail(signal?.reason);
    const timer = setTimeout(() => {
      fail(new TimeoutError(host, `No answer from ${host} within ${request.timeoutMs / 1000} s`));
    }, request.timeoutMs);
    signal?.addEventListener("abort", onAbort, { once: true });
    conn.serve({
      data(chunk) {
        received = true;
        try {
          const answer = parser.push(chunk);
          if (answer) complete(answer);
        } catch (err) {
          fail(refusedAnswer(err, host));
        }
      },
      closed(err) {
        if (request.closed()) return settle(closedError(host));
        const answer = parser.end();
        if (answer) return complete(answer);
        // A keep-alive connection the device closed while idle: reconnect once.
        if (request.retry && reused && !received) {
          stop();
          request.retry().then(resolve, reject);
          return;
        }
        settle(classify(err ?? { code: "ANSWER_CUT" }, host, url.hostname));
      },
    });
    // One write, so that head and body leave in one segment (the socket sends without delay).
    conn.socket.write(request.bytes);
  });
}

/**
 * The state behind one {@link DeviceFetch}: its keep-alive connection, the queue that lets one
 * request at a time through, and whether its owner closed it.
 */
class DeviceSession {
  peerFingerprint: string | undefined;
  #connection: Connection | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  #settings: ConnectSettings;
  #timeoutMs: number;
  #redact: (text: string) => string;

  constructor(pinned: string | undefined, options: DeviceFetchOptions) {
    this.#settings = {
      pinned,
      connectTimeoutMs: options.connectTimeoutMs ?? 5000,
      onFingerprint: (fingerprint) => this.peerFingerprint = fingerprint,
    };
    this.#timeoutMs = options.timeoutMs ?? 10000;
    const redactor = options.redactor;
    this.#redact = (text) => redactor?.redact(text) ?? text;
  }

  /** Queues a request behind the one under way. */
  fetch(input: string | URL, init?: RequestInit): Promise<Response> {
    const run = this.#queue.then(() => this.#exchange(new URL(String(input)), init, true));
    this.#queue = run.catch(() => {});
    return run;
  }

  close(): void {
    this.#closed = true;
    this.#connection?.destroy();
    this.#connection = undefined;
  }

  async #exchange(url: URL, init: RequestInit | undefined, retry: boolean): Promise<Response> {
    if (this.#closed) throw closedError(url.host);
    const signal = init?.signal ?? undefined;
    signal?.throwIfAborted();
    const method = (init?.method ?? "GET").toUpperCase();
    const bytes = requestBytes(url, method, init);
    const conn = await this.#connectionTo(url, signal);
    return awaitAnswer(conn, {
      url,
      method,
      bytes,
      signal,
      timeoutMs: this.#timeoutMs,
      redact: this.#redact,
      closed: () => this.#closed,
      retry: retry ? () => this.#exchange(url, init, false) : undefined,
    });
  }

  /** The keep-alive connection if it is still good for `url`, else a new one. */
  async #connectionTo(url: URL, signal: AbortSignal | undefined): Promise<Connection> {
    const current = this.#connection;
    if (current !== undefined && current.alive && current.key === url.host) return current;
    current?.destroy();
    this.#connection = undefined;
    const conn = await connectDevice(url, this.#settings, signal);
    if (this.#closed) {
      conn.destroy();
      throw closedError(url.host);
    }
    this.#connection = conn;
    return conn;
  }
}

/**
 * A fetch-shaped function for the device at whatever host the URLs name: HTTP/1.1 over one
 * keep-alive `node:tls` connection, one request at a time.
 *
 * @example
 * ```ts ignore
 * const deviceFetch = createDeviceFetch({ fingerprint: "12:1E:…" });
 * const res = await deviceFetch("https://192.168.1.20/v1/user/essinfo/home", {
 *   method: "POST",
 *   body: JSON.stringify({ auth_key: key }),
 * });
 * deviceFetch.close();
 * ```
 */
export function createDeviceFetch(options: DeviceFetchOptions = {}): DeviceFetch {
  const pinned = options.fingerprint === undefined
    ? undefined
    : normalizeFingerprint(options.fingerprint);
  if (options.fingerprint !== undefined && pinned === undefined) {
    throw new UsageError(
      `--fingerprint must be a SHA-256 fingerprint (64 hex digits, colons allowed)`,
    );
  }
  const session = new DeviceSession(pinned, options);
  const deviceFetch = (input: string | URL, init?: RequestInit) => session.fetch(input, init);
  // defineProperties, not Object.assign: the getter must stay live.
  return Object.defineProperties(deviceFetch, {
    close: { value: () => session.close() },
    peerFingerprint: { get: () => session.peerFingerprint },
  }) as DeviceFetch;
}

/**
 * Connects once to `host:port` and returns the SHA-256 fingerprint of the certificate it shows,
 * so that a user can pin it with `--fingerprint`.
 */
export function probeFingerprint(
  hostname: string,
  port: number,
  timeoutMs = 5000,
): Promise<string> {
  const host = port === 443 ? hostname : `${hostname}:${port}`;
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: hostname.replace(/^\[|\]$/g, ""),
      port,
      rejectUnauthorized: false,
      ca: [],
    });
    let tcpConnected = false;
    socket.once("connect", () => tcpConnected = true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(connectTimeout(host, timeoutMs, tcpConnected));
    }, timeoutMs);
    socket.once("secureConnect", () => {
      clearTimeout(timer);
      const fp = socket.getPeerCertificate()?.fingerprint256;
      socket.end();
      if (fp) resolve(fp);
      else reject(new TlsError(host, `${host} showed no certificate`));
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      reject(classify(err, host, hostname));
    });
  });
}
