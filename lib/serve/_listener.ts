/**
 * The socket side of the server: node:http under a Web `Request` → `Response` handler. Not
 * Deno.serve, which has no bound on connections and no deadline for a request's head: a client
 * that opens connections and sends nothing, or its head a byte at a time, would hold memory
 * outside the V8 heap without end (about 28 kB a connection). Streamed answers (the event
 * stream) are written only as fast as the client reads them, so the stream's own queue shows a
 * client that does not keep up.
 *
 * @module
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { authority, type ListenAddress } from "./listen.ts";

/** What the listener bounds before any handler runs. */
export interface ListenerLimits {
  /** Connections open at once at most; one more is closed at once. */
  maxConnections: number;
  /** How long a client may take to send a request's head, in ms (408 and closed after). */
  headersTimeoutMs: number;
  /** How long an idle keep-alive connection stays open, in ms. */
  keepAliveTimeoutMs: number;
}

/** Answers one request; `remote` is the client's `host:port`. */
export type WebHandler = (request: Request, remote: string) => Promise<Response>;

/** A listening server. */
export interface Listener {
  /** The address it listens on (the port picked, if asked for port 0). */
  readonly address: ListenAddress;
  /** Stops listening, closes idle connections and waits for the answers under way. */
  close(): Promise<void>;
}

/** How often the deadlines are checked, in ms: node:http checks them on a timer. */
const CHECK_EVERY_MS = 1_000;

const BAD_REQUEST = '{"error":"bad request"}\n';

/**
 * The request for `req`, or `undefined` for one a Web `Request` cannot carry (a method such as
 * TRACE, a target that is not a path).
 */
function toRequest(req: http.IncomingMessage, base: string): Request | undefined {
  const target = req.url ?? "";
  // Origin-form only: `new URL("//host/x", base)` would read a path as a host.
  if (!target.startsWith("/")) return undefined;
  const method = req.method ?? "GET";
  const headers = new Headers();
  try {
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
    }
    const body = method === "GET" || method === "HEAD"
      ? null
      : Readable.toWeb(req) as ReadableStream<Uint8Array>;
    return new Request(`${base}${target}`, { method, headers, body });
  } catch {
    return undefined;
  }
}

/** Resolves when `res` can take more, or has gone. */
function drained(res: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

/**
 * Writes `response` to `res`, reading its body only as fast as the client takes it. A body
 * that errs (the event stream of a client that does not keep up) ends the connection at once,
 * whether or not the client still reads.
 */
async function send(response: Response, res: http.ServerResponse): Promise<void> {
  res.statusCode = response.status;
  for (const [name, value] of response.headers) res.setHeader(name, value);
  if (response.body === null) {
    res.end();
    return;
  }
  const reader = response.body.getReader();
  res.once("close", () => void reader.cancel().catch(() => {}));
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done || res.destroyed) break;
      // The stream may err while the client reads nothing: that must end the wait too.
      if (!res.write(value)) await Promise.race([drained(res), reader.closed]);
    }
    res.end();
  } catch {
    res.destroy();
  }
}

/**
 * Serves `handle` on `address`. Rejects with node's error (`code` `EADDRINUSE`, `EACCES`, ...)
 * when it cannot listen; `onError` hears of a handler that throws (the client gets a 500).
 */
export async function listenHttp(
  address: ListenAddress,
  limits: ListenerLimits,
  handle: WebHandler,
  onError: (err: unknown) => void,
): Promise<Listener> {
  const server = http.createServer({
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.headersTimeoutMs * 6,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: CHECK_EVERY_MS,
  });
  server.maxConnections = limits.maxConnections;
  let base = "";
  const respond = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const request = toRequest(req, base);
    if (!request) {
      res.writeHead(400, { "content-type": "application/json", "connection": "close" });
      res.end(BAD_REQUEST);
      return;
    }
    const remote = authority({
      hostname: req.socket.remoteAddress ?? "unknown",
      port: req.socket.remotePort ?? 0,
    });
    let response: Response;
    try {
      response = await handle(request, remote);
    } catch (err) {
      onError(err);
      response = new Response('{"error":"internal error"}\n', {
        status: 500,
        headers: { "content-type": "application/json", "cache-control": "no-store" },
      });
    }
    await send(response, res);
  };
  server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    // An answer that cannot be written costs its connection, never the process.
    respond(req, res).catch((err) => {
      onError(err);
      res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: address.hostname, port: address.port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const listening = { hostname: bound.address, port: bound.port };
  base = `http://${authority(listening)}`;
  return {
    address: listening,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
