/**
 * Text from outside (a broker's payload, a device's key) as it may appear in a log line: quoted,
 * escaped, and cut short.
 *
 * @module
 */

/**
 * Characters JSON leaves as they are but a log line should not carry raw: DEL and the C1
 * controls, the line separators, the bidirectional overrides and isolates that reorder the rest
 * of a terminal line (as `preview()` of lib/errors.ts treats them), and non-characters.
 */
const UNPRINTABLE =
  /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]|\p{Noncharacter_Code_Point}/gu;

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
  const json = JSON.stringify(cut ? text.slice(0, max) : text).replace(
    UNPRINTABLE,
    (c) => `\\u${c.codePointAt(0)!.toString(16).padStart(4, "0")}`,
  );
  return cut ? `${json}… (${text.length.toLocaleString("en")} characters)` : json;
}
