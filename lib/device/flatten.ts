/**
 * Turns a device answer into leaves: one path and one text value each, the way pyess published
 * them to MQTT (`home/statistics/load_power`).
 *
 * @module
 */

/** A JSON value as the device sends it. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
/** A JSON object. */
export type JsonObject = { [key: string]: Json };

/** One leaf: the path below the state and the value as text. */
export interface Leaf {
  path: string[];
  value: string;
}

/**
 * Every leaf of `value`, depth first, in the device's order. Strings stay as they are
 * (`"229.600000"`, `""`); numbers and booleans (ESS Home 15) become their JSON text; `null`
 * becomes `""`; array items are numbered from 0.
 *
 * @example
 * ```ts
 * flatten({ statistics: { load_power: "376" } }); // [{ path: ["statistics", "load_power"], value: "376" }]
 * ```
 */
export function flatten(value: Json, prefix: string[] = []): Leaf[] {
  if (value === null) return [{ path: prefix, value: "" }];
  if (typeof value !== "object") return [{ path: prefix, value: String(value) }];
  const entries: [string, Json][] = Array.isArray(value)
    ? value.map((v, i) => [String(i), v])
    : Object.entries(value);
  return entries.flatMap(([key, v]) => flatten(v, [...prefix, key]));
}

/** Whether a value is a JSON object (not an array, not null). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
