/**
 * The socket side of the server: ess's own HTTP/1.1 server over `Deno.listen`, under a Web
 * `Request` → `Response` handler. Not Deno.serve, which has no bound on connections and no
 * deadline for a request's head: a client that opens connections and sends nothing, or its head
 * a byte at a time, would hold memory outside the V8 heap without end (about 28 kB a
 * connection). Not node:http either, which bounds both but took what `ess mqtt --listen` adds to
 * the bridge from 4.7 to 6.0 MB, over the 5 MB goal (docs/performance.md). Heads are read by lib/serve/_request.ts; answers are
 * written only as fast as the client reads them, so a client that does not keep up holds only
 * its own answer, and the event stream's own queue shows such a client.
 *
 * @module
 */
import { RequestError, type RequestHead, RequestHeadParser } from "./_request.ts";
import { authority, type ListenAddress } from "./listen.ts";

/** What the listener bounds before any handler runs. */
export interface ListenerLimits {
  /** Connections open at once at most; one more is closed at once. */
  maxConnections: number;
  /** How long a client may take to send a request's head, in ms (408 and closed after). */
  headersTimeoutMs: number;
  /** How long an idle keep-alive connection stays open, in ms. */
  keepAliveTimeoutMs: number;
  /** How long one write of an answer may wait for the client to take it, in ms (closed after). */
  writeTimeoutMs: number;
}

/** Answers one request; `remote` is the client's `host:port`. */
export type WebHandler = (request: Request, remote: string) => Promise<Response>;

/** A listening server. */
export interface Listener {
  /** The address it listens on (the port picked, if asked for port 0). */
  readonly address: ListenAddress;
  /**
   * Stops listening, closes idle connections and lets the answers under way end, for
   * {@link CLOSE_GRACE_MS} at most: then it closes their connections too (and waits only for
   * handlers still running).
   */
  close(): Promise<void>;
}

/** Bytes read from a socket at once at most: each connection holds one buffer of this size. */
const READ_BYTES = 4096;

/** How long to wait before accepting again after accepting failed (out of file descriptors). */
const ACCEPT_RETRY_MS = 200;

/**
 * How long {@link Listener.close} lets the answers under way go on: a client that takes nothing
 * (an event stream's, say) would otherwise hold the stop up for the whole write time-out.
 */
const CLOSE_GRACE_MS = 1_000;

const EMPTY = new Uint8Array(0);
const CONTINUE = bytes("HTTP/1.1 100 Continue\r\n\r\n");
const LAST_CHUNK = bytes("0\r\n\r\n");

/** The reason phrases of the statuses ess answers; another status goes without one. */
const REASONS: Readonly<Record<number, string>> = {
  200: "OK",
  202: "Accepted",
  204: "No Content",
  304: "Not Modified",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  411: "Length Required",
  413: "Content Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

/** Headers the listener writes itself: how the body is framed, whether the connection stays. */
const FRAMING_HEADERS = new Set([
  "connection",
  "content-length",
  "keep-alive",
  "transfer-encoding",
]);

/** How an answer's body is delimited: by its length, in chunks, by the end of the connection. */
type Framing = { length: number } | "chunked" | "close" | "none";

/** `text` (code units up to 255, as `Headers` keeps them) as bytes. */
function bytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** `data` as one chunk of a chunked body, after `prefix` (the answer's head, for the first). */
function chunk(prefix: Uint8Array, data: Uint8Array): Uint8Array {
  const size = bytes(`${data.length.toString(16)}\r\n`);
  const out = new Uint8Array(prefix.length + size.length + data.length + 2);
  out.set(prefix);
  out.set(size, prefix.length);
  out.set(data, prefix.length + size.length);
  out.set([13, 10], out.length - 2);
  return out;
}

/**
 * The status line and headers of an answer. The names and values come from `Headers`, which
 * refuses CR, LF and NUL in them: a handler cannot split the answer.
 */
function answerHead(
  status: number,
  headers: Iterable<[string, string]>,
  framing: Framing,
  keepAlive: boolean,
  version: RequestHead["version"],
): Uint8Array {
  let head = `HTTP/1.1 ${status} ${REASONS[status] ?? ""}\r\n`;
  for (const [name, value] of headers) {
    if (!FRAMING_HEADERS.has(name)) head += `${name}: ${value}\r\n`;
  }
  if (framing === "chunked") head += "transfer-encoding: chunked\r\n";
  else if (typeof framing === "object") head += `content-length: ${framing.length}\r\n`;
  if (!keepAlive) head += "connection: close\r\n";
  else if (version === "1.0") head += "connection: keep-alive\r\n";
  return bytes(`${head}\r\n`);
}

/** Whether a `Connection` header asks to close the connection. */
function asksClose(headers: Headers): boolean {
  return (headers.get("connection") ?? "").toLowerCase().split(",").some((t) =>
    t.trim() === "close"
  );
}

/**
 * The request for `head`, or `undefined` for one a Web `Request` cannot carry (a method such as
 * TRACE or CONNECT).
 */
function toRequest(
  head: RequestHead,
  base: string,
  body: ReadableStream<Uint8Array> | null,
): Request | undefined {
  const bodiless = head.method === "GET" || head.method === "HEAD";
  try {
    return new Request(`${base}${head.target}`, {
      method: head.method,
      headers: head.headers,
      body: bodiless ? null : body,
    });
  } catch {
    return undefined;
  }
}

function internalError(): Response {
  return new Response('{"error":"internal error"}\n', {
    status: 500,
    headers: { "content-type": "application/json", "cache-control": "no-store" },
  });
}

/** What every connection of one listener shares. */
interface Server {
  readonly limits: ListenerLimits;
  readonly handle: WebHandler;
  readonly onError: (err: unknown) => void;
  /** `http://host:port`, to make a URL of a request's path. */
  readonly base: string;
  closing: boolean;
}

/** One client's connection: requests read one after the other, each answered before the next. */
class Connection {
  readonly #conn: Deno.TcpConn;
  readonly #server: Server;
  readonly #remote: string;
  readonly #buffer = new Uint8Array(READ_BYTES);
  /**
   * Bytes received and not used yet: part of a head or body, or the next request. One read at
   * most ({@link READ_BYTES}): every reader waits until it is empty before it reads again, so a
   * client that sends on while it is answered waits on TCP, not on ess's memory.
   */
  #pending: Uint8Array = EMPTY;
  /** The client has closed its side, or the connection has failed. */
  #eof = false;
  /** The read under way: one at a time, whoever needs the bytes. */
  #filling: Promise<void> | undefined;
  /** Body bytes of the current request not read yet. */
  #unread = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the last answer ended, while no byte of the next request has come. */
  #idleSince: number | undefined;
  /** No request after the one under way. */
  #closing = false;
  #closed = false;
  /** Waiting for a request's head rather than answering one: close() ends it at once. */
  #waiting = true;
  #refusal: Promise<void> | undefined;

  constructor(conn: Deno.TcpConn, server: Server) {
    this.#conn = conn;
    this.#server = server;
    this.#remote = authority(conn.remoteAddr);
    try {
      // Without it the last piece of an answer can wait on the client's delayed ACK (~40 ms).
      conn.setNoDelay(true);
    } catch {
      // Already reset by the client: the first read will tell.
    }
  }

  /** Serves requests until the connection ends; never rejects. */
  async serve(): Promise<void> {
    const { limits } = this.#server;
    this.#arm(limits.headersTimeoutMs, () => this.#timeOut());
    try {
      while (!this.#closing) {
        this.#waiting = true;
        const head = await this.#readHead();
        this.#waiting = false;
        if (head === undefined) break;
        this.#disarm();
        await this.#exchange(head);
        if (this.#closing) break;
        this.#idleSince = performance.now();
        this.#arm(limits.keepAliveTimeoutMs, () => this.#close());
      }
    } catch (err) {
      if (err instanceof RequestError) await this.#refuse(err.status, err.message);
      else this.#server.onError(err);
    } finally {
      await this.#refusal;
      this.#close();
    }
  }

  /** Ends the connection at once if it waits for a request, or else after the answer under way. */
  shutdown(): void {
    this.#closing = true;
    if (this.#waiting) this.#close();
  }

  /** Ends the connection at once, in the middle of an answer too. */
  abort(): void {
    this.#close();
  }

  async #readHead(): Promise<RequestHead | undefined> {
    const parser = new RequestHeadParser();
    for (;;) {
      while (this.#pending.length === 0) {
        if (this.#eof || this.#closing) return undefined;
        await this.#fill();
      }
      if (this.#closing) return undefined;
      if (!parser.started && this.#idleSince !== undefined) {
        // The next request has begun: its head is due within the head's time after the last
        // answer, not the keep-alive's.
        const elapsed = performance.now() - this.#idleSince;
        this.#idleSince = undefined;
        this.#arm(Math.max(0, this.#server.limits.headersTimeoutMs - elapsed), () => {
          this.#timeOut();
        });
      }
      const data = this.#pending;
      this.#pending = EMPTY;
      const parsed = parser.push(data);
      if (parsed) {
        this.#pending = parsed.rest;
        return parsed.head;
      }
    }
  }

  async #exchange(head: RequestHead): Promise<void> {
    const { handle, onError, base } = this.#server;
    this.#unread = head.contentLength;
    const body = this.#unread > 0 ? this.#body(head.expectsContinue) : null;
    const request = toRequest(head, base, body);
    if (!request) return this.#refuse(400, "the method or target is not one ess takes");
    let response: Response;
    try {
      response = await handle(request, this.#remote);
    } catch (err) {
      onError(err);
      response = internalError();
    }
    // A body not read to its end: what follows it on the connection is no request.
    if (this.#unread > 0 || !head.keepAlive || asksClose(response.headers)) this.#closing = true;
    await this.#send(request.method, response, head.version);
  }

  /**
   * The request's body: the next `#unread` bytes, read only when the handler reads, so that the
   * handler's own size cap and time-out apply. A client that asked to be told to go on is told
   * at the first read.
   */
  #body(expectsContinue: boolean): ReadableStream<Uint8Array> {
    let told = !expectsContinue;
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        if (!told) {
          told = true;
          await this.#write(CONTINUE);
        }
        while (this.#pending.length === 0 && !this.#eof) await this.#fill();
        if (this.#pending.length === 0) {
          controller.error(
            new Error(`the client at ${this.#remote} closed the connection before its body ended`),
          );
          return;
        }
        const n = Math.min(this.#unread, this.#pending.length);
        controller.enqueue(this.#pending.subarray(0, n));
        this.#pending = this.#pending.subarray(n);
        this.#unread -= n;
        if (this.#unread === 0) controller.close();
      },
    }, { highWaterMark: 0 });
  }

  /**
   * Writes `response`, reading its body only as fast as the client takes it. A body that errs
   * (the event stream of a client that does not keep up) ends the connection at once, whether
   * or not the client still reads, and so does the client's end of the connection.
   */
  async #send(method: string, response: Response, version: RequestHead["version"]): Promise<void> {
    const { status, headers } = response;
    const bodiless = method === "HEAD" || status === 204 || status === 304;
    if (bodiless || response.body === null) {
      await response.body?.cancel().catch(() => {});
      const framing = bodiless ? "none" : { length: 0 };
      await this.#write(answerHead(status, headers, framing, !this.#closing, version))
        .catch(() => this.#close());
      return;
    }
    const framing = version === "1.1" ? "chunked" : "close";
    if (framing === "close") this.#closing = true;
    let head: Uint8Array | undefined = answerHead(
      status,
      headers,
      framing,
      !this.#closing,
      version,
    );
    const reader = response.body.getReader();
    // Closing the connection makes a write that waits on the client give up at once.
    reader.closed.catch(() => this.#close());
    let answering = true;
    void this.#watch(() => answering, reader);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (this.#closed) break;
        if (done) {
          const end = framing === "chunked" ? LAST_CHUNK : EMPTY;
          await this.#write(head ? concat(head, end) : end);
          break;
        }
        // An empty chunk would end the body.
        if (value.length === 0) continue;
        await this.#write(
          framing === "chunked" ? chunk(head ?? EMPTY, value) : concat(head ?? EMPTY, value),
        );
        head = undefined;
      }
    } catch {
      // Cut off mid-answer, the client cannot take what it got for a whole answer.
      this.#close();
    } finally {
      answering = false;
      void reader.cancel().catch(() => {});
    }
  }

  /**
   * Reads from the client while its answer is written, until a byte of its next request comes:
   * a client that goes away ends the answer at once (an event stream frees its place at once).
   */
  async #watch(answering: () => boolean, reader: ReadableStreamDefaultReader): Promise<void> {
    while (answering() && this.#pending.length === 0 && !this.#eof) await this.#fill();
    if (answering() && this.#eof) {
      this.#close();
      await reader.cancel().catch(() => {});
    }
  }

  /** Reads once more from the client into `#pending`, or notes its end. */
  #fill(): Promise<void> {
    return this.#filling ??= this.#read().finally(() => this.#filling = undefined);
  }

  async #read(): Promise<void> {
    let n: number | null;
    try {
      n = await this.#conn.read(this.#buffer);
    } catch {
      n = null;
    }
    if (n === null) {
      this.#eof = true;
      return;
    }
    this.#pending = concat(this.#pending, this.#buffer.slice(0, n));
  }

  /** Writes all of `data`, or throws: the client has gone, or took longer than the limit. */
  async #write(data: Uint8Array): Promise<void> {
    this.#arm(this.#server.limits.writeTimeoutMs, () => this.#close());
    try {
      for (let at = 0; at < data.length;) at += await this.#conn.write(data.subarray(at));
    } finally {
      this.#disarm();
    }
  }

  #timeOut(): void {
    void this.#refuse(408, "the request head did not arrive in time");
  }

  /** Answers `status` with `message` and closes: the request was not one to hand on. */
  #refuse(status: number, message: string): Promise<void> {
    this.#closing = true;
    return this.#refusal ??= (async () => {
      const body = bytes(`${JSON.stringify({ error: message })}\n`);
      const head = answerHead(
        status,
        [
          ["content-type", "application/json"],
          ["cache-control", "no-store"],
        ],
        { length: body.length },
        false,
        "1.1",
      );
      await this.#write(concat(head, body)).catch(() => {});
      this.#close();
    })();
  }

  #arm(ms: number, expire: () => void): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(expire, ms);
  }

  #disarm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = this.#closing = true;
    this.#disarm();
    try {
      this.#conn.close();
    } catch {
      // Closed already.
    }
  }
}

/** Accepts connections until the server closes, closing at once those beyond the cap. */
async function acceptAll(
  listener: Deno.TcpListener,
  server: Server,
  serving: Map<Connection, Promise<void>>,
): Promise<void> {
  let failing = false;
  while (!server.closing) {
    let conn: Deno.TcpConn;
    try {
      conn = await listener.accept();
      failing = false;
    } catch (err) {
      if (server.closing) return;
      // Out of file descriptors, say: said once, and tried again without a busy loop.
      if (!failing) server.onError(err);
      failing = true;
      await new Promise((resolve) => setTimeout(resolve, ACCEPT_RETRY_MS));
      continue;
    }
    if (server.closing || serving.size >= server.limits.maxConnections) {
      conn.close();
      continue;
    }
    const connection = new Connection(conn, server);
    serving.set(connection, connection.serve().finally(() => serving.delete(connection)));
  }
}

/**
 * Serves `handle` on `address`. Rejects with Deno's error (`code` `EADDRINUSE`, `EACCES`, ...)
 * when it cannot listen; `onError` hears of a handler that throws (the client gets a 500).
 */
export function listenHttp(
  address: ListenAddress,
  limits: ListenerLimits,
  handle: WebHandler,
  onError: (err: unknown) => void,
): Promise<Listener> {
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: address.hostname, port: address.port });
  } catch (err) {
    return Promise.reject(err);
  }
  const bound = { hostname: listener.addr.hostname, port: listener.addr.port };
  const server: Server = {
    limits,
    handle,
    onError,
    base: `http://${authority(bound)}`,
    closing: false,
  };
  const serving = new Map<Connection, Promise<void>>();
  const accepting = acceptAll(listener, server, serving);
  let closed: Promise<void> | undefined;
  return Promise.resolve({
    address: bound,
    close: () =>
      closed ??= (async () => {
        server.closing = true;
        listener.close();
        for (const connection of serving.keys()) connection.shutdown();
        await accepting;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const grace = new Promise<void>((resolve) => timer = setTimeout(resolve, CLOSE_GRACE_MS));
        await Promise.race([Promise.all(serving.values()), grace]);
        clearTimeout(timer);
        for (const connection of serving.keys()) connection.abort();
        await Promise.all(serving.values());
      })(),
  });
}
