/**
 * Numbers as the LG ESS writes them: strings, with the quirks of its C firmware.
 *
 * @module
 */

/** A power or a count: whole number (`"376"`). */
export function whole(x: number): string {
  return String(Math.round(x));
}

/** An energy counter in Wh: rounded down, so that a growing sum never shows a smaller value. */
export function counter(x: number): string {
  return String(Math.floor(x + 1e-9));
}

/**
 * A measurement printed from a 32-bit float with six decimals, as the device's `%f` does
 * (`232.8` becomes `"232.800003"`).
 */
export function fixed6(x: number): string {
  return Math.fround(x).toFixed(6);
}

/** A percentage with up to five decimals and no trailing zeros (`"97.72727"`, `"100"`). */
export function percent(x: number): string {
  return String(Number(x.toFixed(5)));
}

/** A `"0"` / `"1"` flag. */
export function flag(on: boolean): string {
  return on ? "1" : "0";
}

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

/** `YYYYMMDDhhmmss` of local wall-clock parts, as graph rows carry their time. */
export function stamp(year: number, month: number, day: number, hour = 0, minute = 0): string {
  return `${pad(year, 4)}${pad(month)}${pad(day)}${pad(hour)}${pad(minute)}00`;
}
