/**
 * An HTTP/1.1 response parser for the device transport: status line, headers, and a body framed
 * by `Content-Length`, `Transfer-Encoding: chunked` or the end of the connection. Fed with the
 * bytes as they arrive; it never buffers more than one answer's worth (with the caps of
 * limits.ts), so a broken or hostile peer cannot make ess grow without bound, and bytes that
 * trickle in one at a time cost linear time, not quadratic. Its header fields follow the rules
 * the server's request parser follows (lib/_http_fields.ts): an answer that could be framed two
 * ways is refused.
 *
 * @module
 */
import { preview } from "../errors.ts";
import {
  contentLength,
  FieldError,
  fieldItems,
  fieldValues,
  parseFieldLine,
} from "../_http_fields.ts";
import { MAX_BODY_BYTES, MAX_HEAD_BYTES, MAX_INTERIM_ANSWERS } from "./limits.ts";

/** An answer that is not HTTP/1.x. */
export class HttpParseError extends Error {
  override name = "HttpParseError";
}

/** An answer beyond one of the limits in limits.ts: too large, or too many interim answers. */
export class HttpLimitError extends HttpParseError {
  override name = "HttpLimitError";
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

const latin1 = new TextDecoder("latin1");
/** What a header value or a reason phrase may hold: no control character but tab. */
const FIELD_TEXT = /^[\t\x20-\x7e\x80-\xff]*$/;
const BODY_CAP = `${MAX_BODY_BYTES / (1024 * 1024)} MiB`;

function indexOfCrlf(bytes: Uint8Array, from: number): number {
  for (let i = from; i < bytes.length - 1; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10) return i;
  }
  return -1;
}

function indexOfBlankLine(bytes: Uint8Array, from: number): number {
  for (let i = from; i < bytes.length - 3; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}

/**
 * Bytes appended at the end and taken from the front, in one buffer that doubles when full:
 * a thousand one-byte pieces cost a thousand small copies, not a thousand growing ones, and no
 * object per piece.
 */
class ByteQueue {
  #buffer = new Uint8Array(1024);
  #start = 0;
  #end = 0;

  get length(): number {
    return this.#end - this.#start;
  }

  /** The bytes held, without copying (valid until the next change). */
  view(): Uint8Array {
    return this.#buffer.subarray(this.#start, this.#end);
  }

  append(data: Uint8Array): void {
    if (this.#end + data.length > this.#buffer.length) {
      const needed = this.length + data.length;
      if (needed > this.#buffer.length / 2) {
        const grown = new Uint8Array(Math.max(needed, this.#buffer.length * 2));
        grown.set(this.view());
        this.#buffer = grown;
      } else {
        this.#buffer.copyWithin(0, this.#start, this.#end);
      }
      this.#end = this.length;
      this.#start = 0;
    }
    this.#buffer.set(data, this.#end);
    this.#end += data.length;
  }

  /** Drops the first `n` bytes. */
  drop(n: number): void {
    this.#start += n;
    if (this.#start === this.#end) this.#start = this.#end = 0;
  }

  /** A copy of everything held, in a buffer of its own. */
  copy(): Uint8Array<ArrayBuffer> {
    return this.view().slice();
  }

  clear(): void {
    this.#start = this.#end = 0;
    if (this.#buffer.length > 64 * 1024) this.#buffer = new Uint8Array(1024);
  }
}

/**
 * Parses the answers to one request at a time. Feed it with {@link ResponseParser.push} and tell
 * it when the connection ends with {@link ResponseParser.end}.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const parser = new ResponseParser("GET");
 * const answer = parser.push(new TextEncoder().encode("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
 * equal(answer?.status, 200);
 * ```
 */
export class ResponseParser {
  #method: string;
  #redact: (text: string) => string;
  #pending = new ByteQueue();
  /** How far into `#pending` a search for the end of a line or head has already looked. */
  #scanned = 0;
  #head: Head | undefined;
  #interim = 0;
  #framing: "length" | "chunked" | "close" | "none" = "none";
  /** Body bytes still expected (`length`), or of the current chunk (`chunked`). */
  #remaining = 0;
  /** Inside a chunked body: what comes next. */
  #chunkState: "size" | "data" | "data-end" | "trailer" = "size";
  #body = new ByteQueue();

  /**
   * `method` of the request: a HEAD request's answer has no body. `redact` cleans the peer's
   * text before an error message quotes it.
   */
  constructor(method: string, redact: (text: string) => string = (text) => text) {
    this.#method = method.toUpperCase();
    this.#redact = redact;
  }

  /** Bytes received after the complete answer (a confused peer), or none. */
  get leftover(): number {
    return this.#pending.length;
  }

  /**
   * Takes the next bytes from the connection; returns the answer once it is complete.
   *
   * @throws {HttpParseError} when the bytes are not an HTTP/1.x answer.
   * @throws {HttpLimitError} when the answer passes a limit of limits.ts.
   */
  push(data: Uint8Array): ParsedResponse | undefined {
    this.#pending.append(data);
    while (true) {
      if (this.#head === undefined) {
        const pending = this.#pending.view();
        const end = indexOfBlankLine(pending, Math.max(0, this.#scanned - 3));
        if (end < 0) {
          this.#scanned = pending.length;
          if (pending.length > MAX_HEAD_BYTES) {
            throw new HttpLimitError(`headers longer than ${MAX_HEAD_BYTES} bytes`);
          }
          return undefined;
        }
        const head = this.#parseHead(latin1.decode(pending.subarray(0, end)));
        this.#consume(end + 4);
        // 1xx answers are interim: the real answer follows.
        if (head.status < 200) {
          if (++this.#interim > MAX_INTERIM_ANSWERS) {
            throw new HttpLimitError(`more than ${MAX_INTERIM_ANSWERS} interim (1xx) answers`);
          }
          continue;
        }
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

  #quote(text: string): string {
    return preview(this.#redact(text), 40);
  }

  #consume(n: number): void {
    this.#pending.drop(n);
    this.#scanned = 0;
  }

  #parseHead(text: string): Head {
    const lines = text.split("\r\n");
    // Checked here, in the grammar's own words, so that nothing the peer sent can make the
    // Response built from it throw a message that quotes it unredacted and unshortened.
    const match = /^HTTP\/1\.([01]) ([1-5]\d\d)(?: (.*))?$/.exec(lines[0] ?? "");
    if (!match || !FIELD_TEXT.test(match[3] ?? "")) {
      throw new HttpParseError(`not an HTTP/1.x status line: ${this.#quote(lines[0] ?? "")}`);
    }
    const headers: [string, string][] = [];
    for (const line of lines.slice(1)) {
      // As strict as ess's server is with requests: no folded line, no space before the colon.
      const field = parseFieldLine(line);
      if (field === undefined || !FIELD_TEXT.test(field[1])) {
        throw new HttpParseError(`malformed header line ${this.#quote(line)}`);
      }
      headers.push([field[0].toLowerCase(), field[1]]);
    }
    const connection = fieldItems(headers, "connection");
    const keepAlive = match[1] === "1"
      ? !connection.includes("close")
      : connection.includes("keep-alive");
    return { status: Number(match[2]), statusText: match[3] ?? "", headers, keepAlive };
  }

  /**
   * How the body is framed. Only plain `chunked` is a transfer coding ess takes (a coded body,
   * `gzip, chunked`, would reach the JSON parser still coded), never together with a
   * `Content-Length`, and differing lengths are refused rather than the first believed.
   */
  #start(head: Head): void {
    this.#head = head;
    const codings = fieldItems(head.headers, "transfer-encoding");
    let length: number | undefined;
    try {
      length = contentLength(head.headers);
    } catch (err) {
      if (err instanceof FieldError) throw new HttpParseError(err.message);
      throw err;
    }
    if (codings.length > 0 && fieldValues(head.headers, "content-length").length > 0) {
      throw new HttpParseError("an answer with both Transfer-Encoding and Content-Length");
    }
    if (
      this.#method === "HEAD" || head.status === 204 || head.status === 304
    ) {
      this.#framing = "none";
    } else if (codings.length > 0) {
      if (codings.length !== 1 || codings[0] !== "chunked") {
        throw new HttpParseError(
          `unsupported transfer encoding ${
            this.#quote(codings.join(", "))
          }: ess takes chunked only`,
        );
      }
      this.#framing = "chunked";
      this.#chunkState = "size";
    } else if (length !== undefined) {
      this.#remaining = length;
      if (this.#remaining > MAX_BODY_BYTES) {
        throw new HttpLimitError(
          `an answer of ${this.#remaining} bytes is too large (at most ${BODY_CAP})`,
        );
      }
      this.#framing = "length";
    } else {
      this.#framing = "close";
    }
  }

  #take(n: number): void {
    if (n === 0) return;
    if (this.#body.length + n > MAX_BODY_BYTES) {
      throw new HttpLimitError(`an answer of more than ${BODY_CAP} is too large`);
    }
    this.#body.append(this.#pending.view().subarray(0, n));
    this.#consume(n);
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
      const pending = this.#pending.view();
      const eol = indexOfCrlf(pending, Math.max(0, this.#scanned - 1));
      if (eol < 0) {
        this.#scanned = pending.length;
        if (pending.length > MAX_HEAD_BYTES) {
          throw new HttpLimitError(
            `a chunk header or trailer longer than ${MAX_HEAD_BYTES} bytes`,
          );
        }
        return undefined;
      }
      const line = latin1.decode(pending.subarray(0, eol));
      this.#consume(eol + 2);
      if (this.#chunkState === "data-end") {
        if (line !== "") throw new HttpParseError("chunk data longer than its size");
        this.#chunkState = "size";
      } else if (this.#chunkState === "size") {
        const size = /^([0-9a-fA-F]+)\s*(?:;.*)?$/.exec(line);
        if (!size) throw new HttpParseError(`invalid chunk size ${this.#quote(line)}`);
        this.#remaining = parseInt(size[1]!, 16);
        if (this.#remaining > MAX_BODY_BYTES) {
          throw new HttpLimitError(
            `a chunk of ${this.#remaining} bytes is too large (at most ${BODY_CAP})`,
          );
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
      body: this.#body.copy(),
      keepAlive,
    };
    this.#head = undefined;
    this.#interim = 0;
    this.#body.clear();
    this.#framing = "none";
    return answer;
  }
}
