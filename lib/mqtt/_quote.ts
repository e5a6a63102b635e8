/**
 * Text from outside (a broker's payload, a device's key) as it may appear in a log line: quoted,
 * escaped, and cut short.
 *
 * @module
 */
import { replaceUnprintable } from "../errors.ts";

/**
 * `text` in double quotes with every control character escaped, cut to `max` characters with
 * an ellipsis and the full length, so that a 300 KB payload stays a short line.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(quote("on"), '"on"');
 * equal(quote("a\nb\u0085"), '"a\\nb\\u0085"');
 * equal(quote("x".repeat(300_000), 3), '"xxx"… (300,000 characters)');
 * ```
 */
export function quote(text: string, max = 100): string {
  const cut = text.length > max;
  // JSON escapes the C0 controls; the rest that a log line should not carry raw is escaped too.
  const json = replaceUnprintable(
    JSON.stringify(cut ? text.slice(0, max) : text),
    (c) => `\\u${c.codePointAt(0)!.toString(16).padStart(4, "0")}`,
  );
  return cut ? `${json}… (${text.length.toLocaleString("en")} characters)` : json;
}
