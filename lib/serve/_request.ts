/**
 * The request side of ess's own HTTP/1.1 server: a parser for a request's head (the request
 * line and the headers), fed with the bytes as they arrive. It is strict wherever leniency would
 * let one request mean two things to two parsers (request smuggling): lines end in CRLF, no
 * control characters, no folded or spaced header names, no Transfer-Encoding, no two different
 * Content-Length values (rules the device transport's answer parser shares, in
 * lib/_http_fields.ts). And it bounds what a client can make the server hold before any
 * handler runs: {@link MAX_HEAD_BYTES} of head in at most {@link MAX_HEADERS} headers, each byte
 * looked at once however the head is cut into pieces.
 *
 * @module
 */
import {
  contentLength,
  FieldError,
  fieldItems,
  fieldValues,
  parseFieldLine,
  TOKEN,
} from "../_http_fields.ts";

/** The longest request head taken, request line and headers together, in bytes (431 beyond). */
export const MAX_HEAD_BYTES = 16 * 1024;

/** The most headers a request may have (431 beyond). */
export const MAX_HEADERS = 100;

/** A request refused before any handler sees it; `status` is the answer to send before closing. */
export class RequestError extends Error {
  override name = "RequestError";
  /** 400, 411, 431, 501 or 505. */
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** A request's head, checked. */
export interface RequestHead {
  /** A token, as sent. */
  method: string;
  /** The origin-form target: a path, perhaps with a query. */
  target: string;
  version: "1.0" | "1.1";
  /** In the order received, names as sent. */
  headers: [string, string][];
  /** Bytes of body after the head: 0 without a Content-Length. */
  contentLength: number;
  /** Whether the client lets the connection carry another request after this one. */
  keepAlive: boolean;
  /**
   * Whether the client waits for `100 Continue` before it sends its body: never for HTTP/1.0,
   * which has no 1xx answers (RFC 9110 says to ignore its `Expect`).
   */
  expectsContinue: boolean;
}

/** A complete head and the bytes that came after it (a body, or the next request). */
export interface ParsedHead {
  head: RequestHead;
  rest: Uint8Array;
}

const CR = 13;
const LF = 10;
const TAB = 9;
const DEL = 127;
/** A path, perhaps with a query: visible ASCII only, so never a space or a byte over 127. */
const ORIGIN_FORM = /^\/[\x21-\x7e]*$/;

/**
 * `bytes` as a string of the same code units: TextDecoder's "latin1" is windows-1252, which
 * turns 0x80–0x9F into characters a header value cannot hold.
 */
function byteString(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    text += String.fromCharCode(...bytes.subarray(i, i + 4096));
  }
  return text;
}

/**
 * Reads one request head. Feed it with {@link RequestHeadParser.push} until it returns the head;
 * take a new parser for the next request.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const parser = new RequestHeadParser();
 * const wire = new TextEncoder().encode("GET /metrics HTTP/1.1\r\nHost: ess\r\n\r\n");
 * const parsed = parser.push(wire);
 * equal(parsed?.head.target, "/metrics");
 * equal(parsed?.head.keepAlive, true);
 * ```
 */
export class RequestHeadParser {
  /** The head's bytes so far, from its request line on. */
  #parts: Uint8Array[] = [];
  /** Bytes seen, empty lines before the request line included. */
  #size = 0;
  /** Bytes of the line under way. */
  #line = 0;
  /** Complete lines of the head. */
  #lines = 0;
  #afterCr = false;

  /** Whether any byte of the request has come: an idle connection has none. */
  get started(): boolean {
    return this.#size > 0;
  }

  /**
   * Takes the next bytes from the connection (it keeps a copy of what it needs: the caller may
   * reuse `data`); returns the head once it is complete, with the bytes after it.
   *
   * @throws {RequestError} when the head is not one ess takes; the connection must close.
   */
  push(data: Uint8Array): ParsedHead | undefined {
    let from = 0;
    for (let i = 0; i < data.length; i++) {
      const byte = data[i]!;
      if (++this.#size > MAX_HEAD_BYTES) {
        throw new RequestError(431, `the request head is longer than ${MAX_HEAD_BYTES} bytes`);
      }
      if (this.#afterCr) {
        this.#afterCr = false;
        if (byte !== LF) throw new RequestError(400, "a CR not followed by LF in the request head");
        if (this.#line > 0) {
          this.#line = 0;
          if (++this.#lines > MAX_HEADERS + 1) {
            throw new RequestError(431, `more than ${MAX_HEADERS} headers`);
          }
        } else if (this.#lines === 0) {
          // An empty line before the request line: RFC 9112 lets a server skip it (some
          // clients send one after a body).
          this.#parts = [];
          from = i + 1;
        } else {
          this.#parts.push(data.subarray(from, i + 1));
          return { head: parseHead(this.#text()), rest: data.slice(i + 1) };
        }
      } else if (byte === CR) {
        this.#afterCr = true;
      } else if (byte === LF) {
        throw new RequestError(400, "a line of the request head ends in LF alone, not CRLF");
      } else if ((byte < 0x20 && byte !== TAB) || byte === DEL) {
        throw new RequestError(400, "a control character in the request head");
      } else {
        this.#line++;
      }
    }
    if (from < data.length) this.#parts.push(data.slice(from));
    return undefined;
  }

  /** The head as text, without the blank line that ends it. */
  #text(): string {
    const length = this.#parts.reduce((sum, part) => sum + part.length, 0);
    const all = new Uint8Array(length);
    let at = 0;
    for (const part of this.#parts) {
      all.set(part, at);
      at += part.length;
    }
    return byteString(all.subarray(0, length - 4));
  }
}

/** Checks a complete head (lines joined by CRLF, no control characters but tabs). */
function parseHead(text: string): RequestHead {
  const [requestLine = "", ...fields] = text.split("\r\n");
  const parts = /^([^ ]+) ([^ ]+) ([^ ]+)$/.exec(requestLine);
  if (!parts) throw new RequestError(400, "the request line is not METHOD PATH HTTP/1.1");
  const [, method = "", target = "", protocol = ""] = parts;
  if (!TOKEN.test(method)) throw new RequestError(400, "the method is not a token");
  const version = /^HTTP\/1\.([01])$/.exec(protocol)?.[1];
  if (version === undefined) {
    throw /^HTTP\/\d\.\d$/.test(protocol)
      ? new RequestError(505, "ess speaks HTTP/1.1 and HTTP/1.0 only")
      : new RequestError(400, "the request line does not end in HTTP/1.1");
  }
  // Origin-form only: `*`, `http://host/x` or `host:443` would be read as something else.
  if (!ORIGIN_FORM.test(target)) throw new RequestError(400, "the request target is not a path");
  const headers: [string, string][] = [];
  for (const field of fields) {
    const parsed = parseFieldLine(field);
    if (parsed === undefined) {
      throw new RequestError(400, `header line ${headers.length + 1} is not NAME: VALUE`);
    }
    headers.push(parsed);
  }
  const hosts = fieldValues(headers, "host").length;
  if (hosts > 1 || (version === "1" && hosts === 0)) {
    throw new RequestError(400, "an HTTP/1.1 request needs exactly one Host header");
  }
  if (fieldValues(headers, "transfer-encoding").length > 0) {
    if (fieldValues(headers, "content-length").length > 0) {
      throw new RequestError(400, "a request with both Transfer-Encoding and Content-Length");
    }
    throw fieldItems(headers, "transfer-encoding").at(-1) === "chunked"
      ? new RequestError(411, "send the body with a Content-Length, not chunked")
      : new RequestError(501, "no transfer coding is taken: send the body with a Content-Length");
  }
  let length: number | undefined;
  try {
    length = contentLength(headers);
  } catch (err) {
    if (err instanceof FieldError) throw new RequestError(400, err.message);
    throw err;
  }
  const connection = fieldItems(headers, "connection");
  return {
    method,
    target,
    version: version === "1" ? "1.1" : "1.0",
    headers,
    contentLength: length ?? 0,
    keepAlive: !connection.includes("close") &&
      (version === "1" || connection.includes("keep-alive")),
    expectsContinue: version === "1" && fieldItems(headers, "expect").includes("100-continue"),
  };
}
