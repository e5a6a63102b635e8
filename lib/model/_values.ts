/**
 * Reading values out of device answers without trusting them: a path that is missing, a value of
 * the wrong type, an empty string or a number that is not finite all read as `undefined`, never
 * as zero.
 *
 * @module
 */
import { isJsonObject, type Json, type JsonObject } from "../device/flatten.ts";

/** The value at `keys` below `root` (object keys or array indexes), or `undefined`. */
export function at(root: Json | undefined, ...keys: (string | number)[]): Json | undefined {
  let value: Json | undefined = root;
  for (const key of keys) {
    if (typeof key === "number" && Array.isArray(value)) value = value[key];
    else if (typeof key === "string" && isJsonObject(value) && Object.hasOwn(value, key)) {
      value = value[key];
    } else return undefined;
  }
  return value;
}

/** The object at `keys`, or `undefined`. */
export function objectAt(
  root: Json | undefined,
  ...keys: (string | number)[]
): JsonObject | undefined {
  const value = at(root, ...keys);
  return isJsonObject(value) ? value : undefined;
}

/** The array at `keys`, or an empty one. */
export function arrayAt(root: Json | undefined, ...keys: (string | number)[]): Json[] {
  const value = at(root, ...keys);
  return Array.isArray(value) ? value : [];
}

/**
 * A device number: a finite JSON number, or a string holding one (`"52.900002"`). Strings with
 * a fraction are rounded to 7 significant digits, which undoes the float32 noise of the device's
 * `printf` (`"52.900002"` → 52.9); anything else is `undefined`.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(["52.900002", "230.199997", "16294", 7, "", "n/a", null].map((v) => num(v)),
 *   [52.9, 230.2, 16294, 7, undefined, undefined, undefined]);
 * ```
 */
export function num(value: Json | undefined): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
  if (typeof value !== "string" || !/^\s*-?\d+(\.\d+)?\s*$/.test(value)) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) return undefined;
  return value.includes(".") ? Number(n.toPrecision(7)) : n;
}

/** `value / divisor` for a device number in tenths or hundredths; `undefined` passes through. */
export function scaled(value: number | undefined, divisor: number): number | undefined {
  return value === undefined ? undefined : value / divisor;
}

/**
 * A device flag: `"1"`, `1`, `"on"`, `"start"`, `"true"` and `true` are on; `"0"`, `0`, `"off"`,
 * `"stop"`, `"false"` and `false` off; anything else `undefined`.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(["1", 0, "on", "stop", "simple", undefined].map((v) => flag(v)),
 *   [true, false, true, false, undefined, undefined]);
 * ```
 */
export function flag(value: Json | undefined): boolean | undefined {
  if (value === true || value === 1) return true;
  if (value === false || value === 0) return false;
  if (typeof value !== "string") return undefined;
  const t = value.trim().toLowerCase();
  if (t === "1" || t === "on" || t === "start" || t === "true") return true;
  if (t === "0" || t === "off" || t === "stop" || t === "false") return false;
  return undefined;
}

/** A device text, trimmed; empty or not a string or number is `undefined`. */
export function text(value: Json | undefined): string | undefined {
  const t = typeof value === "number"
    ? String(value)
    : typeof value === "string"
    ? value.trim()
    : "";
  return t === "" ? undefined : t;
}

/**
 * A magnitude with the sign its direction flag gives: negative while `negative` is on. Without
 * the flag the sign is unknown, so a magnitude other than zero is `undefined`.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * deepEqual([signed(500, true), signed(500, false), signed(0, undefined), signed(5, undefined)],
 *   [-500, 500, 0, undefined]);
 * ```
 */
export function signed(
  magnitude: number | undefined,
  negative: boolean | undefined,
): number | undefined {
  if (magnitude === undefined) return undefined;
  const m = Math.abs(magnitude);
  if (negative === undefined) return m === 0 ? 0 : undefined;
  return negative && m !== 0 ? -m : m;
}

/** `o` without its `undefined` properties, so that absent stays absent. */
export function compact<T extends Record<string, unknown>>(
  o: T,
): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}
