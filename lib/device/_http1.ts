/**
 * An HTTP/1.1 response parser for the device transport: status line, headers, and a body framed
 * by `Content-Length`, `Transfer-Encoding: chunked` or the end of the connection. Fed with the
 * bytes as they arrive; it never buffers more than one answer's worth (with caps), so a broken
 * or hostile peer cannot make ess grow without bound.
 *
 * @module
 */

/** The most header bytes one answer may have. */
const MAX_HEAD_BYTES = 64 * 1024;
/** The largest body ess accepts; the device's biggest answers (graphs) are a few kB. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

/** An answer that is not HTTP/1.x, or is larger than ess accepts. */
export class HttpParseError extends Error {
  override name = "HttpParseError";
}

/** One complete answer. */
export interface ParsedResponse {
  status: number;
  statusText: string;
  /** In the order received, names lower-cased. */
  headers: [string, string][];
  body: Uint8Array<ArrayBuffer>;
  /** Whether the connection may carry another request. */
  keepAlive: boolean;
}

interface Head {
  status: number;
  statusText: string;
  headers: [string, string][];
  keepAlive: boolean;
}

const EMPTY = new Uint8Array(0);
const latin1 = new TextDecoder("latin1");

function indexOfCrlf(bytes: Uint8Array, from: number): number {
  for (let i = from; i < bytes.length - 1; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10) return i;
  }
  return -1;
}

function indexOfBlankLine(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length - 3; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}

/** `parts` as one array of `length` bytes. */
export function concat(parts: Uint8Array[], length: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function parseHead(text: string): Head {
  const lines = text.split("\r\n");
  const match = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/.exec(lines[0] ?? "");
  if (!match) {
    throw new HttpParseError(
      `not an HTTP/1.x status line: ${JSON.stringify(lines[0]?.slice(0, 40))}`,
    );
  }
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) {
      throw new HttpParseError(`malformed header line ${JSON.stringify(line.slice(0, 40))}`);
    }
    headers.push([line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()]);
  }
  const connection = headers.filter(([n]) => n === "connection").map(([, v]) => v.toLowerCase());
  const keepAlive = match[1] === "1"
    ? !connection.some((v) => v.includes("close"))
    : connection.some((v) => v.includes("keep-alive"));
  return { status: Number(match[2]), statusText: match[3] ?? "", headers, keepAlive };
}

/**
 * Parses the answers to one request at a time. Feed it with {@link ResponseParser.push} and tell
 * it when the connection ends with {@link ResponseParser.end}.
 *
 * @example
 * ```ts
 * const parser = new ResponseParser("GET");
 * const answer = parser.push(new TextEncoder().encode("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
 * answer?.status; // 200
 * ```
 */
export class ResponseParser {
  #method: string;
  #pending: Uint8Array = EMPTY;
  #head: Head | undefined;
  #framing: "length" | "chunked" | "close" | "none" = "none";
  /** Body bytes still expected (`length`), or of the current chunk (`chunked`). */
  #remaining = 0;
  /** Inside a chunked body: what comes next. */
  #chunkState: "size" | "data" | "data-end" | "trailer" = "size";
  #body: Uint8Array<ArrayBuffer>[] = [];
  #bodyLength = 0;

  /** `method` of the request: a HEAD request's answer has no body. */
  constructor(method: string) {
    this.#method = method.toUpperCase();
  }

  /** Bytes received after the complete answer (a confused peer), or none. */
  get leftover(): number {
    return this.#pending.length;
  }

  /**
   * Takes the next bytes from the connection; returns the answer once it is complete.
   *
   * @throws {HttpParseError} when the bytes are not an HTTP/1.x answer, or too large.
   */
  push(data: Uint8Array): ParsedResponse | undefined {
    this.#pending = this.#pending.length === 0 ? data : concat(
      [this.#pending, data],
      this.#pending.length + data.length,
    );
    while (true) {
      if (this.#head === undefined) {
        const end = indexOfBlankLine(this.#pending);
        if (end < 0) {
          if (this.#pending.length > MAX_HEAD_BYTES) {
            throw new HttpParseError(`headers longer than ${MAX_HEAD_BYTES} bytes`);
          }
          return undefined;
        }
        const head = parseHead(latin1.decode(this.#pending.subarray(0, end)));
        this.#pending = this.#pending.subarray(end + 4);
        // 1xx answers are interim: the real answer follows.
        if (head.status < 200) continue;
        this.#start(head);
      }
      return this.#consumeBody();
    }
  }

  /** The connection has ended: returns the answer if the end completes it. */
  end(): ParsedResponse | undefined {
    if (this.#head !== undefined && this.#framing === "close") {
      return this.#finish(false);
    }
    return undefined;
  }

  #start(head: Head): void {
    this.#head = head;
    const get = (name: string) => head.headers.find(([n]) => n === name)?.[1];
    const transferEncoding = get("transfer-encoding")?.toLowerCase();
    const contentLength = get("content-length");
    if (
      this.#method === "HEAD" || head.status === 204 || head.status === 304
    ) {
      this.#framing = "none";
    } else if (transferEncoding !== undefined && transferEncoding !== "identity") {
      if (!transferEncoding.endsWith("chunked")) {
        throw new HttpParseError(
          `unsupported transfer encoding ${JSON.stringify(transferEncoding)}`,
        );
      }
      this.#framing = "chunked";
      this.#chunkState = "size";
    } else if (contentLength !== undefined) {
      if (!/^\d+$/.test(contentLength)) {
        throw new HttpParseError(`invalid Content-Length ${JSON.stringify(contentLength)}`);
      }
      this.#remaining = Number(contentLength);
      if (this.#remaining > MAX_BODY_BYTES) {
        throw new HttpParseError(`an answer of ${this.#remaining} bytes is too large`);
      }
      this.#framing = "length";
    } else {
      this.#framing = "close";
    }
  }

  #take(n: number): void {
    if (n === 0) return;
    this.#bodyLength += n;
    if (this.#bodyLength > MAX_BODY_BYTES) {
      throw new HttpParseError(`an answer of more than ${MAX_BODY_BYTES} bytes is too large`);
    }
    this.#body.push(this.#pending.slice(0, n));
    this.#pending = this.#pending.subarray(n);
  }

  #consumeBody(): ParsedResponse | undefined {
    switch (this.#framing) {
      case "none":
        return this.#finish(this.#head!.keepAlive);
      case "close":
        this.#take(this.#pending.length);
        return undefined;
      case "length": {
        const n = Math.min(this.#remaining, this.#pending.length);
        this.#take(n);
        this.#remaining -= n;
        return this.#remaining === 0 ? this.#finish(this.#head!.keepAlive) : undefined;
      }
      case "chunked":
        return this.#consumeChunks();
    }
  }

  #consumeChunks(): ParsedResponse | undefined {
    while (true) {
      if (this.#chunkState === "data") {
        const n = Math.min(this.#remaining, this.#pending.length);
        this.#take(n);
        this.#remaining -= n;
        if (this.#remaining > 0) return undefined;
        this.#chunkState = "data-end";
        continue;
      }
      const eol = indexOfCrlf(this.#pending, 0);
      if (eol < 0) {
        if (this.#pending.length > MAX_HEAD_BYTES) {
          throw new HttpParseError("a chunk header or trailer is too long");
        }
        return undefined;
      }
      const line = latin1.decode(this.#pending.subarray(0, eol));
      this.#pending = this.#pending.subarray(eol + 2);
      if (this.#chunkState === "data-end") {
        if (line !== "") throw new HttpParseError("chunk data longer than its size");
        this.#chunkState = "size";
      } else if (this.#chunkState === "size") {
        const size = /^([0-9a-fA-F]+)\s*(?:;.*)?$/.exec(line);
        if (!size) {
          throw new HttpParseError(`invalid chunk size ${JSON.stringify(line.slice(0, 20))}`);
        }
        this.#remaining = parseInt(size[1]!, 16);
        if (this.#remaining > MAX_BODY_BYTES) {
          throw new HttpParseError(`a chunk of ${this.#remaining} bytes is too large`);
        }
        this.#chunkState = this.#remaining === 0 ? "trailer" : "data";
      } else if (line === "") {
        // The blank line after the (usually absent) trailers ends the body.
        return this.#finish(this.#head!.keepAlive);
      }
    }
  }

  #finish(keepAlive: boolean): ParsedResponse {
    const head = this.#head!;
    const answer: ParsedResponse = {
      status: head.status,
      statusText: head.statusText,
      headers: head.headers,
      body: concat(this.#body, this.#bodyLength),
      keepAlive,
    };
    this.#head = undefined;
    this.#body = [];
    this.#bodyLength = 0;
    this.#framing = "none";
    return answer;
  }
}
