/**
 * The "custom TLS client": a function with the signature of `fetch` that talks HTTPS to one LG
 * ESS over `node:https`. The device's certificate is self-signed and matches no hostname, and
 * Deno's own `fetch` cannot skip verification per client, so this transport accepts the device's
 * certificate for the device only (its own agent, never a global switch), optionally pinned by
 * SHA-256 fingerprint. One keep-alive connection, connect and response timeouts.
 *
 * @module
 */
import https from "node:https";
import tls from "node:tls";
import type { IncomingHttpHeaders } from "node:http";
import {
  EssError,
  PinMismatchError,
  TimeoutError,
  TlsError,
  UnreachableError,
  UsageError,
} from "./errors.ts";

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
}

/** A fetch-shaped function bound to the device, with its connection to close. */
export interface DeviceFetch extends FetchLike {
  /** Closes the keep-alive connection. */
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
 * normalizeFingerprint("abcd".repeat(16)); // "AB:CD:AB:CD:…"
 * ```
 */
export function normalizeFingerprint(text: string): string | undefined {
  const hex = text.trim().replace(/^.*=/, "").replace(/[:\s]/g, "").toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) return undefined;
  return hex.match(/../g)!.join(":");
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EADDRNOTAVAIL",
  "ECONNRESET",
  "EPIPE",
]);

/** Turns a socket-level error into one of ess's device errors; a missing permission stays itself. */
function classify(err: unknown, host: string): Error {
  if (err instanceof EssError || err instanceof Deno.errors.NotCapable) return err;
  const e = err as { code?: string; message?: string };
  const code = e.code ?? "";
  const message = e.message ?? String(err);
  if (code === "ECONNREFUSED") {
    return new UnreachableError(
      host,
      `Cannot reach ${host}: connection refused (is it the ESS, and is it on this network?)`,
      { cause: err },
    );
  }
  if (NETWORK_CODES.has(code) || /unreachable|refused|not known|lookup/i.test(message)) {
    return new UnreachableError(host, `Cannot reach ${host}: ${message}`, { cause: err });
  }
  if (/tls|ssl|handshake|certificate|EPROTO/i.test(`${code} ${message}`)) {
    return new TlsError(host, `TLS handshake with ${host} failed: ${message}`, { cause: err });
  }
  return new UnreachableError(host, `Cannot talk to ${host}: ${message}`, { cause: err });
}

function toHeaders(raw: IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  return headers;
}

function bodyBytes(body: RequestInit["body"]): Uint8Array | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === "string") return new TextEncoder().encode(body);
  if (body instanceof Uint8Array) return body;
  throw new TypeError("device fetch sends only string or Uint8Array bodies");
}

const NO_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

/**
 * A fetch-shaped function for the device at whatever host the URLs name.
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
  // Accepting the self-signed certificate is scoped to this agent, which only ever talks to
  // the device; nothing global changes.
  const agent = new https.Agent({
    keepAlive: true,
    maxSockets: 1,
    rejectUnauthorized: false,
    ca: [],
  });
  const verified = new WeakSet<object>();
  let peerFingerprint: string | undefined;

  const once = (url: URL, init: RequestInit | undefined, retry: boolean): Promise<Response> =>
    new Promise((resolve, reject) => {
      const host = url.host;
      const body = bodyBytes(init?.body);
      const headers: Record<string, string> = {};
      new Headers(init?.headers).forEach((v, k) => headers[k] = v);
      if (body) headers["content-length"] = String(body.byteLength);
      let settled = false;
      const timers: ReturnType<typeof setTimeout>[] = [];
      const finish = (err: unknown, res?: Response) => {
        if (settled) return;
        settled = true;
        timers.forEach(clearTimeout);
        init?.signal?.removeEventListener("abort", onAbort);
        if (res) resolve(res);
        else reject(err);
      };
      const req = https.request({
        protocol: "https:",
        hostname: url.hostname.replace(/^\[|\]$/g, ""),
        port: url.port === "" ? 443 : Number(url.port),
        path: `${url.pathname}${url.search}`,
        method: init?.method ?? "GET",
        headers,
        agent,
        rejectUnauthorized: false,
      });
      const fail = (err: unknown) => {
        req.destroy();
        const reused = (req as unknown as { reusedSocket?: boolean }).reusedSocket === true;
        const code = (err as { code?: string }).code;
        // A keep-alive connection the device closed while idle: reconnect once.
        if (!settled && retry && reused && (code === "ECONNRESET" || code === "EPIPE")) {
          settled = true;
          timers.forEach(clearTimeout);
          once(url, init, false).then(resolve, reject);
          return;
        }
        finish(classify(err, host));
      };
      const onAbort = () => fail(init?.signal?.reason ?? new DOMException("aborted", "AbortError"));
      if (init?.signal?.aborted) return onAbort();
      init?.signal?.addEventListener("abort", onAbort, { once: true });
      timers.push(setTimeout(() => {
        fail(new TimeoutError(host, `No answer from ${host} within ${timeoutMs / 1000} s`));
      }, timeoutMs));
      req.on("socket", (socket) => {
        if (verified.has(socket)) return;
        const connectTimer = setTimeout(() => {
          fail(
            new TimeoutError(
              host,
              `Cannot reach ${host}: no connection within ${connectTimeoutMs / 1000} s`,
            ),
          );
        }, connectTimeoutMs);
        timers.push(connectTimer);
        socket.once("secureConnect", () => {
          clearTimeout(connectTimer);
          const cert = (socket as tls.TLSSocket).getPeerCertificate();
          const seen = cert?.fingerprint256;
          if (seen) peerFingerprint = seen;
          if (pinned !== undefined && seen !== pinned) {
            socket.destroy();
            fail(new PinMismatchError(host, seen ?? "(none)", pinned));
            return;
          }
          verified.add(socket);
        });
      });
      req.on("error", fail);
      req.on("response", (res) => {
        const chunks: Uint8Array[] = [];
        res.on("data", (chunk: Uint8Array) => chunks.push(chunk));
        res.on("error", fail);
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          const buf = Buffer.concat(chunks);
          finish(
            undefined,
            new Response(NO_BODY_STATUS.has(status) ? null : buf, {
              status,
              statusText: res.statusMessage ?? "",
              headers: toHeaders(res.headers),
            }),
          );
        });
      });
      req.end(body);
    });

  const deviceFetch = (input: string | URL, init?: RequestInit) =>
    once(new URL(String(input)), init, true);
  // defineProperties, not Object.assign: the getter must stay live.
  return Object.defineProperties(deviceFetch, {
    close: { value: () => agent.destroy() },
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
      reject(classify(err, host));
    });
  });
}
