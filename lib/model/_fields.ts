/**
 * Which raw fields a family's knowledge covers, and which units are not installed. A family
 * module lists the fields it knows as path patterns; a leaf no pattern matches is one ess does
 * not understand, published raw with one warning. Units a Home 15 marks `installed: false` hold
 * garbage (`sum_of_pv_power: -35371816`): their leaves are left out of everything.
 *
 * @module
 */
import { flatten, isJsonObject, type Json, type JsonObject, type Leaf } from "../device/flatten.ts";

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
 * The leaves of one state answer, `state` first in each path, without those below an object
 * marked `installed: false` (a Home 15 unit or battery that is not there).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * const common = { ess: [{ installed: true, soc: 63 }, { installed: false, soc: 212693561 }] };
 * deepEqual(installedLeaves("common", common).map((l) => l.path.join("/")),
 *   ["common/ess/0/installed", "common/ess/0/soc"]);
 * ```
 */
export function installedLeaves(state: string, answer: JsonObject): Leaf[] {
  const skipped = uninstalledPaths(answer).map((p) => [state, ...p].join("/") + "/");
  const leaves = flatten(answer, [state]);
  if (skipped.length === 0) return leaves;
  return leaves.filter((leaf) => {
    const path = leaf.path.join("/") + "/";
    return !skipped.some((prefix) => path.startsWith(prefix));
  });
}

/** The paths of the objects below `answer` marked `installed: false`, outermost only. */
function uninstalledPaths(answer: Json): string[][] {
  const found: string[][] = [];
  const stack: [Json, string[]][] = [[answer, []]];
  while (stack.length > 0) {
    const [value, path] = stack.pop()!;
    if (isJsonObject(value) && value["installed"] === false) {
      found.push(path);
      continue;
    }
    if (Array.isArray(value)) value.forEach((v, i) => stack.push([v, [...path, String(i)]]));
    else if (isJsonObject(value)) {
      for (const [k, v] of Object.entries(value)) stack.push([v, [...path, k]]);
    }
  }
  return found;
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
    for (const leaf of installedLeaves(state, answer)) {
      if (!known.some((p) => matches(p, leaf.path))) unknown.push(leaf.path.join("/"));
    }
  }
  return unknown;
}
