/**
 * Turns a device answer into leaves: one path and one text value each, the way pyess published
 * them to MQTT (`home/statistics/load_power`). Both walks here use an explicit stack, never
 * recursion, so no answer can exhaust the call stack.
 *
 * @module
 */
import { MAX_JSON_DEPTH, MAX_JSON_LEAVES } from "./limits.ts";

/** A JSON value as the device sends it. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
/** A JSON object. */
export type JsonObject = { [key: string]: Json };

/** One leaf: the path below the state and the value as text. */
export interface Leaf {
  path: string[];
  value: string;
}

const entriesOf = (value: Json[] | JsonObject): [string, Json][] =>
  Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);

/**
 * Every leaf of `value`, depth first, in the device's order. Strings stay as they are
 * (`"229.600000"`, `""`); numbers and booleans (ESS Home 15) become their JSON text; `null`
 * becomes `""`; array items are numbered from 0.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(flatten({ statistics: { load_power: "376" }, ess: [7] }), [
 *   { path: ["statistics", "load_power"], value: "376" },
 *   { path: ["ess", "0"], value: "7" },
 * ]);
 * ```
 */
export function flatten(value: Json, prefix: string[] = []): Leaf[] {
  const leaves: Leaf[] = [];
  // One shared path, extended on the way down and shortened on the way up: a path is copied
  // only into a leaf, so a deep value costs what its leaves' paths cost, not depth squared.
  const path = [...prefix];
  const stack: { entries: [string, Json][]; next: number }[] = [];
  const visit = (v: Json) => {
    if (v === null) leaves.push({ path: [...path], value: "" });
    else if (typeof v !== "object") leaves.push({ path: [...path], value: String(v) });
    else {
      stack.push({ entries: entriesOf(v), next: 0 });
      return;
    }
    if (stack.length > 0) path.pop();
  };
  visit(value);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const entry = top.entries[top.next++];
    if (entry === undefined) {
      stack.pop();
      if (stack.length > 0) path.pop();
      continue;
    }
    path.push(entry[0]);
    visit(entry[1]);
  }
  return leaves;
}

/**
 * {@link flatten}, without the leaves below an object marked `installed: false`: an ESS Home 15
 * unit or battery that is not there, whose values are garbage (`sum_of_pv_power: -35371816`).
 * Array items keep their numbers (`ess/2` stays `ess/2`).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * const common = { ess: [{ installed: true, soc: 63 }, { installed: false, soc: 212693561 }] };
 * deepEqual(flattenInstalled(common, ["common"]).map((l) => l.path.join("/")),
 *   ["common/ess/0/installed", "common/ess/0/soc"]);
 * ```
 */
export function flattenInstalled(value: Json, prefix: string[] = []): Leaf[] {
  const skipped = uninstalledPaths(value).map((p) => [...prefix, ...p].join("/") + "/");
  const leaves = flatten(value, prefix);
  if (skipped.length === 0) return leaves;
  return leaves.filter((leaf) => {
    const path = leaf.path.join("/") + "/";
    return !skipped.some((start) => path.startsWith(start));
  });
}

/** The paths of the objects in `value` marked `installed: false`, outermost only. */
function uninstalledPaths(value: Json): string[][] {
  const found: string[][] = [];
  const stack: [Json, string[]][] = [[value, []]];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (isJsonObject(v) && v["installed"] === false) {
      found.push(path);
      continue;
    }
    if (Array.isArray(v)) v.forEach((child, i) => stack.push([child, [...path, String(i)]]));
    else if (isJsonObject(v)) {
      for (const [k, child] of Object.entries(v)) stack.push([child, [...path, k]]);
    }
  }
  return found;
}

/**
 * Why `value` is beyond the limits (nested deeper than `maxDepth` levels, or more than
 * `maxLeaves` values), or `undefined` when it is within them. It stops at the first limit
 * passed, so neither a deep nor a wide value costs more than the limits themselves.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(exceededLimit({ home: { soc: "81" } }), undefined);
 * equal(exceededLimit([[["x"]]], 2), "it is nested more than 2 levels deep");
 * equal(exceededLimit(["a", "b", "c"], 32, 2), "it holds more than 2 values");
 * ```
 */
export function exceededLimit(
  value: Json,
  maxDepth: number = MAX_JSON_DEPTH,
  maxLeaves: number = MAX_JSON_LEAVES,
): string | undefined {
  let leaves = 0;
  const stack: [Json, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== "object") {
      if (++leaves > maxLeaves) return `it holds more than ${maxLeaves} values`;
      continue;
    }
    if (depth + 1 > maxDepth) return `it is nested more than ${maxDepth} levels deep`;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return undefined;
}

/** Whether a value is a JSON object (not an array, not null). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The value `object` holds under `key` itself, never one it inherits: a device row that lacks
 * `valueOf` or `constructor` gives `undefined` for it, not a function of `Object.prototype`.
 * Every lookup of a key that the device or a user chose goes through here.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(ownValue({ soc: "81" }, "soc"), "81");
 * equal(ownValue({ soc: "81" }, "valueOf"), undefined);
 * equal(ownValue(JSON.parse('{"__proto__": "x"}'), "__proto__"), "x");
 * ```
 */
export function ownValue(object: Readonly<JsonObject>, key: string): Json | undefined {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}
