/**
 * The device's codes as words, in one table. The meanings are those other LG ESS projects worked
 * out from the app and their own devices: Morluktom/ioBroker.lg-ess-home (`lib/LgEss.js`, its
 * `MAPPING` of `mode` and `bat_status`) and Morluktom/ha-lg-ess (its English translations of
 * `bat_status` and `operation_mode`). A code no one has explained stays visible as
 * `unknown (<code>)`.
 *
 * @module
 */
import type { Json } from "../device/flatten.ts";
import type { CodeWord } from "./reading.ts";

/** The longest code shown; a longer one is cut (the device's answers are untrusted). */
const MAX_CODE_LENGTH = 32;

/** One code table: the code as text → its word. */
export type CodeTable = Readonly<Record<string, string>>;

/** `home.operation.mode`. */
export const OPERATING_MODES: CodeTable = {
  "0": "stop",
  "1": "normal",
  "2": "pv only",
};

/** `home.pcs_fault.pcs_status`: the inverter (PCS) reports a word of its own. */
export const INVERTER_STATUSES: CodeTable = {
  pcs_ok: "ok",
};

/** `home.statistics.bat_status`. */
export const BATTERY_STATUSES: CodeTable = {
  "0": "standby",
  "1": "charging",
  "2": "discharging",
  "6": "charging from grid",
  "10": "off",
};

/**
 * `value` as a code and its word from `table`, `unknown (<code>)` for a code the table lacks;
 * `undefined` when there is no code (missing, empty, not a string or number).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(codeWord(BATTERY_STATUSES, 2), { code: "2", word: "discharging" });
 * deepEqual(codeWord(BATTERY_STATUSES, "7"), { code: "7", word: "unknown (7)" });
 * deepEqual(codeWord(BATTERY_STATUSES, ""), undefined);
 * ```
 */
export function codeWord(table: CodeTable, value: Json | undefined): CodeWord | undefined {
  const code = typeof value === "number" && Number.isFinite(value)
    ? String(value)
    : typeof value === "string"
    ? value.trim()
    : "";
  if (code === "") return undefined;
  if (code.length > MAX_CODE_LENGTH) {
    return { code: code.slice(0, MAX_CODE_LENGTH), word: "unknown (…)" };
  }
  return { code, word: Object.hasOwn(table, code) ? table[code]! : `unknown (${code})` };
}

/** The raw fields that hold a code, and their tables (`#`: an array index). */
const CODE_FIELDS: readonly [RegExp, CodeTable][] = [
  [/^home\/operation\/mode$/, OPERATING_MODES],
  [/^home\/pcs_fault\/pcs_status$/, INVERTER_STATUSES],
  [/^home\/statistics\/bat_status$/, BATTERY_STATUSES],
  [/^common\/BATT\/status$/, BATTERY_STATUSES],
  [/^common\/ess\/\d+\/batt\/\d+\/status$/, BATTERY_STATUSES],
];

/**
 * What a raw field's value means when the field holds a code (`home/statistics/bat_status` 2 →
 * `discharging`), or `undefined` for other fields.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(codeMeaning("home/statistics/bat_status", "2"), "discharging");
 * equal(codeMeaning("home/operation/mode", "9"), "unknown (9)");
 * equal(codeMeaning("home/statistics/load_power", "700"), undefined);
 * ```
 */
export function codeMeaning(path: string, value: string): string | undefined {
  const table = CODE_FIELDS.find(([pattern]) => pattern.test(path))?.[1];
  return table && codeWord(table, value)?.word;
}
