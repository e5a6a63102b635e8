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
  EssError,
  PinMismatchError,
  preview,
  TimeoutError,
  TlsError,
  TRANSIENT_HINT,
  UnreachableError,
  UsageError,
} from "../errors.ts";
import type { Redactor } from "../redact.ts";

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

/** How a socket error reads in a message: what happened, what to try, and whether to try again. */
interface Explanation {
  /** A failure of the TLS handshake, not of the network. */
  tls?: true;
  /** It happened on a connection that was up: "Cannot talk to", not "Cannot reach". */
  talking?: true;
  transient?: true;
  why(hostname: string): string;
}

/**
 * The socket and TLS errors a device connection meets, by Node's error code, as one line each
 * (raw library text such as `getaddrinfo ENOTFOUND` tells a user little).
 */
const SOCKET_ERRORS: Record<string, Explanation> = {
  ENOTFOUND: {
    why: (name) =>
      `the name ${name} cannot be resolved (check the spelling, or give the device's IP address)`,
  },
  EAI_AGAIN: {
    transient: true,
    why: (name) =>
      `the name ${name} cannot be resolved right now (DNS did not answer; check the network, or ` +
      `give the device's IP address)`,
  },
  ECONNREFUSED: {
    transient: true,
    why: () => "connection refused (is it the ESS, is the port right, and is it on this network?)",
  },
  ECONNRESET: { talking: true, transient: true, why: () => "the device reset the connection" },
  EPIPE: { talking: true, transient: true, why: () => "the connection broke while sending" },
  ETIMEDOUT: {
    why: () => "the connection timed out (is the address right, and is the device on?)",
  },
  EHOSTUNREACH: { why: () => "no route to the device (is it on this network?)" },
  ENETUNREACH: { why: () => "the network is unreachable (is this machine connected?)" },
  EADDRNOTAVAIL: { why: () => "that address is not available from this machine" },
  ERR_SSL_WRONG_VERSION_NUMBER: {
    tls: true,
    why: () => "that port does not speak TLS (is it the device's HTTPS port, normally 443?)",
  },
  /** Node's code for a peer that hung up in the middle of the handshake. */
  HANDSHAKE_CLOSED: {
    tls: true,
    transient: true,
    why: () => "the device closed the connection during the TLS handshake",
  },
  /** Not a socket error: the peer closed the connection in the middle of an answer. */
  ANSWER_CUT: {
    talking: true,
    transient: true,
    why: () => "the connection closed before the answer was complete",
  },
};

/** The code of {@link SOCKET_ERRORS} that describes `err`, if one does. */
function socketErrorCode(code: string, message: string): string | undefined {
  if (/before secure TLS connection/i.test(message)) return "HANDSHAKE_CLOSED";
  if (/wrong version number/i.test(message)) return "ERR_SSL_WRONG_VERSION_NUMBER";
  if (code === "EAI_NONAME") return "ENOTFOUND";
  return Object.hasOwn(SOCKET_ERRORS, code) ? code : undefined;
}

/** Turns a socket-level error into one of ess's device errors; a missing permission stays itself. */
function classify(err: unknown, host: string, hostname: string): Error {
  if (err instanceof EssError || err instanceof Deno.errors.NotCapable) return err;
  const e = err as { code?: string; message?: string };
  const message = e.message ?? String(err);
  const code = socketErrorCode(e.code ?? "", message);
  const known = code === undefined ? undefined : SOCKET_ERRORS[code];
  if (known) {
    const transient = known.transient ?? false;
    const what = known.tls
      ? `TLS handshake with ${host} failed`
      : `${known.talking ? "Cannot talk to" : "Cannot reach"} ${host}`;
    const text = `${what}: ${known.why(hostname)}${transient ? `; ${TRANSIENT_HINT}` : ""}`;
    const options = { cause: err, transient };
    return known.tls
      ? new TlsError(host, text, options)
      : new UnreachableError(host, text, options);
  }
  if (/tls|ssl|handshake|certificate|EPROTO/i.test(`${e.code ?? ""} ${message}`)) {
    return new TlsError(host, `TLS handshake with ${host} failed: ${message}`, { cause: err });
  }
  return new UnreachableError(host, `Cannot talk to ${host}: ${message}`, { cause: err });
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
  const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  const timeoutMs = options.timeoutMs ?? 10000;
  const redactor = options.redactor;
  const redact = (text: string) => redactor?.redact(text) ?? text;
  let connection: Connection | undefined;
  let peerFingerprint: string | undefined;
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;

  const connect = (url: URL, host: string, signal: AbortSignal | undefined) =>
    new Promise<Connection>((resolve, reject) => {
      const hostname = url.hostname.replace(/^\[|\]$/g, "");
      // Accepting the self-signed certificate is scoped to this socket, which only ever talks
      // to the device; nothing global changes. `ca: []` skips loading the public CAs.
      const socket = tls.connect({
        host: hostname,
        port: url.port === "" ? 443 : Number(url.port),
        rejectUnauthorized: false,
        ca: [],
      });
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
      const timer = setTimeout(() => {
        settle(
          new TimeoutError(
            host,
            `Cannot reach ${host}: no connection within ${connectTimeoutMs / 1000} s`,
          ),
        );
      }, connectTimeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      socket.once("error", onError);
      socket.once("secureConnect", () => {
        const seen = socket.getPeerCertificate()?.fingerprint256;
        if (seen) peerFingerprint = seen;
        if (pinned !== undefined && seen !== pinned) {
          return settle(new PinMismatchError(host, seen ?? "(none)", pinned));
        }
        settle(undefined, new Connection(url.host, socket));
      });
    });

  const exchange = async (url: URL, init: RequestInit | undefined, retry: boolean) => {
    const host = url.host;
    if (closed) throw closedError(host);
    const signal = init?.signal ?? undefined;
    signal?.throwIfAborted();
    const method = (init?.method ?? "GET").toUpperCase();
    const body = bodyBytes(init?.body);
    if (connection === undefined || !connection.alive || connection.key !== url.host) {
      connection?.destroy();
      connection = undefined;
      connection = await connect(url, host, signal);
      if (closed) {
        connection.destroy();
        throw closedError(host);
      }
    }
    const conn = connection;
    const reused = conn.used;
    conn.used = true;
    const headers = new Headers(init?.headers);
    headers.set("host", url.host);
    if (body !== undefined || method === "POST" || method === "PUT") {
      headers.set("content-length", String(body?.byteLength ?? 0));
    }
    let head = `${method} ${url.pathname}${url.search} HTTP/1.1\r\n`;
    headers.forEach((value, name) => head += `${name}: ${value}\r\n`);
    head += "\r\n";
    return new Promise<Response>((resolve, reject) => {
      const parser = new ResponseParser(method, redact);
      let received = false;
      let settled = false;
      const settle = (err: unknown, res?: Response) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
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
        fail(new TimeoutError(host, `No answer from ${host} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
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
          if (closed) return settle(closedError(host));
          const answer = parser.end();
          if (answer) return complete(answer);
          // A keep-alive connection the device closed while idle: reconnect once.
          if (retry && reused && !received) {
            settled = true;
            clearTimeout(timer);
            signal?.removeEventListener("abort", onAbort);
            exchange(url, init, false).then(resolve, reject);
            return;
          }
          settle(classify(err ?? { code: "ANSWER_CUT" }, host, url.hostname));
        },
      });
      // One write, so that head and body leave in one segment (the socket sends without delay).
      const headBytes = encoder.encode(head);
      conn.socket.write(body === undefined ? headBytes : Buffer.concat([headBytes, body]));
    });
  };

  const deviceFetch = (input: string | URL, init?: RequestInit): Promise<Response> => {
    const run = queue.then(() => exchange(new URL(String(input)), init, true));
    queue = run.catch(() => {});
    return run;
  };
  // defineProperties, not Object.assign: the getter must stay live.
  return Object.defineProperties(deviceFetch, {
    close: {
      value: () => {
        closed = true;
        connection?.destroy();
        connection = undefined;
      },
    },
    peerFingerprint: { get: () => peerFingerprint },
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
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new TimeoutError(
          host,
          `Cannot reach ${host}: no TLS handshake within ${timeoutMs / 1000} s`,
        ),
      );
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
