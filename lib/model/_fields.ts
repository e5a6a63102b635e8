/**
 * Which raw fields a family's knowledge covers, and which units are not installed. A family
 * module lists the fields it knows as path patterns; a leaf no pattern matches is one ess does
 * not understand, published raw with one warning. Leaves of units not installed are not counted
 * ({@link flattenInstalled}).
 *
 * @module
 */
import { flattenInstalled, type JsonObject } from "../device/flatten.ts";

/**
 * A path pattern: segments joined by `/`; `#` matches an array index, `*` any one segment.
 * `home/statistics/load_power`, `common/ess/#/pv/#/voltage`.
 */
export type FieldPattern = string;

/**
 * Whether `path` (state name first) matches `pattern`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(matches("common/ess/#/pv/#/voltage", ["common", "ess", "0", "pv", "2", "voltage"]), true);
 * equal(matches("common/ess/#/pv/#/voltage", ["common", "ess", "x", "pv", "2", "voltage"]), false);
 * equal(matches("home/heatpump/*", ["home", "heatpump", "current_temp"]), true);
 * ```
 */
export function matches(pattern: FieldPattern, path: readonly string[]): boolean {
  const segments = pattern.split("/");
  if (segments.length !== path.length) return false;
  return segments.every((s, i) =>
    s === "*" || (s === "#" ? /^\d+$/.test(path[i]!) : s === path[i])
  );
}

/**
 * The leaves of `states` (installed units only) that none of `known` matches, as
 * `state/path` text, in the device's order.
 */
export function unknownFields(
  states: Readonly<Partial<Record<string, JsonObject>>>,
  known: readonly FieldPattern[],
): string[] {
  const unknown: string[] = [];
  for (const [state, answer] of Object.entries(states)) {
    if (answer === undefined) continue;
    for (const leaf of flattenInstalled(answer, [state])) {
      if (!known.some((p) => matches(p, leaf.path))) unknown.push(leaf.path.join("/"));
    }
  }
  return unknown;
}
