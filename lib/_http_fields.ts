/**
 * The rules for HTTP/1.1 header fields that ess's two parsers share: the server's, of requests
 * (lib/serve/_request.ts), and the device transport's, of answers (lib/device/_http1.ts). Both
 * are strict where leniency would let one message mean two things to two parsers (request
 * smuggling, response splitting): a field name is a token right before its colon, so a folded
 * line or a space before the colon is refused, and two different `Content-Length` values are an
 * error, not a choice.
 *
 * @module
 */

/** A header name or a method (RFC 9110's token). */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** A header that breaks one of the rules here; each parser says it in its own error. */
export class FieldError extends Error {
  override name = "FieldError";
}

/**
 * One field line, `NAME: VALUE`: the name as sent and the value without the spaces and tabs
 * around it; `undefined` when the name is not a token that ends at the colon, which also catches
 * a folded line (it starts with a space) and a space before the colon, both refused by RFC 9112.
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * deepEqual(parseFieldLine("Content-Length: 2 "), ["Content-Length", "2"]);
 * equal(parseFieldLine("Content-Length : 2"), undefined);
 * equal(parseFieldLine(" folded"), undefined);
 * ```
 */
export function parseFieldLine(line: string): [string, string] | undefined {
  const colon = line.indexOf(":");
  if (colon <= 0 || !TOKEN.test(line.slice(0, colon))) return undefined;
  return [line.slice(0, colon), line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "")];
}

/** The values of every header called `name` (lower-case; matched in any case), in order. */
export function fieldValues(headers: readonly [string, string][], name: string): string[] {
  return headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);
}

/**
 * The comma-separated items of every header called `name`, trimmed and lower-cased, in order.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * const headers: [string, string][] = [["Transfer-Encoding", "gzip"], ["transfer-encoding", " Chunked"]];
 * deepEqual(fieldItems(headers, "transfer-encoding"), ["gzip", "chunked"]);
 * ```
 */
export function fieldItems(headers: readonly [string, string][], name: string): string[] {
  return fieldValues(headers, name).flatMap((v) => v.split(",")).map((v) => v.trim().toLowerCase());
}

/**
 * The body length the `Content-Length` headers give, or `undefined` without one. Repeats of one
 * value are one value (RFC 9110 allows `5, 5`).
 *
 * @throws {FieldError} when a value is not a number of bytes, or two values differ.
 *
 * @example
 * ```ts
 * import { equal, throws } from "node:assert/strict";
 * equal(contentLength([["Content-Length", "5, 5"]]), 5);
 * throws(() => contentLength([["Content-Length", "5"], ["Content-Length", "6"]]), FieldError);
 * ```
 */
export function contentLength(headers: readonly [string, string][]): number | undefined {
  const lengths = fieldItems(headers, "content-length");
  if (lengths.some((length) => !/^\d{1,15}$/.test(length))) {
    throw new FieldError("the Content-Length is not a number of bytes");
  }
  if (new Set(lengths.map(Number)).size > 1) {
    throw new FieldError("Content-Length headers that differ");
  }
  return lengths.length > 0 ? Number(lengths[0]) : undefined;
}
