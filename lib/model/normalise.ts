/**
 * One poll of any LG ESS model as one normalised {@link Reading}: the family is told from the
 * shape of the answers, and that family's module (`_home10.ts`, `_home15.ts`) turns its fields
 * into SI units and words. Fields ess does not know are listed in `unknownFields`, never given
 * a unit.
 *
 * @module
 */
import { isJsonObject, type JsonObject } from "../device/flatten.ts";
import { algSettingForm } from "../device/vocabulary.ts";
import { preview } from "../errors.ts";
import { type FieldPattern, unknownFields } from "./_fields.ts";
import { HOME10_FIELDS, readHome10 } from "./_home10.ts";
import { HOME15_FIELDS, readHome15 } from "./_home15.ts";
import type { Family, Reading } from "./reading.ts";
import { at, objectAt, text } from "./_values.ts";

/** The state answers one poll read, by state name; any may be missing. */
export type DeviceStates = Readonly<
  Partial<Record<"home" | "common" | "batt" | "systeminfo", JsonObject | undefined>>
>;

/** How people name each family. */
export const FAMILY_NAMES: Readonly<Record<Family, string>> = {
  "home10-classic": "ESS Home 8/10 (classic firmware)",
  "home10-new": "ESS Home 8/10 (newer firmware)",
  home15: "ESS Home 15",
  home5: "ESS Home 5",
  unknown: "an LG ESS of unknown shape",
};

/** Settings that mark a Home 8/10 or Home 5 `batt` answer. */
const BATT_MARKS = ["winter_setting", "alg_setting", "safty_soc", "safety_soc", "backup_status"];

/** Fields of the Home 8/10 statistics that mark the string-valued family. */
const HOME10_MARKS = ["pcs_pv_total_power", "batconv_power", "load_power", "grid_power"];

/**
 * Which family the answers come from, by their shape: ESS Home 15 sends 0.1 kW fields and
 * `ess[]` arrays (and `reserved_soc` in its settings); the Home 8/10 and Home 5 send strings, in
 * `statistics` and in the `PV`/`BATT`/`GRID` groups; the Home 5 is told by its model code
 * (`D005…`); newer Home 8/10 firmware by its settings (`alg_setting` as digits or words,
 * `safety_soc`, backup mode).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(detectFamily({ home: { statistics: { load_power_01kW: 7 } } }), "home15");
 * equal(detectFamily({ batt: { alg_setting: "on", safty_soc: "10" } }), "home10-classic");
 * equal(detectFamily({ batt: { alg_setting: "battery_care" } }), "home10-new");
 * equal(detectFamily({ home: { hello: "world" } }), "unknown");
 * ```
 */
export function detectFamily(states: DeviceStates): Family {
  const { home, common, batt, systeminfo } = states;
  const stats = objectAt(home, "statistics");
  const statKeys = stats ? Object.keys(stats) : [];
  if (
    statKeys.some((k) => k.endsWith("_01kW")) || Array.isArray(common?.["ess"]) ||
    Array.isArray(systeminfo?.["ess"]) || batt?.["reserved_soc"] !== undefined
  ) return "home15";
  const stringShaped = statKeys.some((k) => HOME10_MARKS.includes(k)) ||
    ["PV", "BATT", "GRID"].some((g) => isJsonObject(common?.[g])) ||
    BATT_MARKS.some((k) => batt?.[k] !== undefined) || isJsonObject(systeminfo?.["pms"]);
  if (!stringShaped) return "unknown";
  if (text(at(systeminfo, "pms", "model"))?.startsWith("D005")) return "home5";
  const settings = [batt, objectAt(common, "BATT")];
  const newer = settings.some((s) =>
    s !== undefined && (
      ["digits", "words"].includes(algSettingForm(s["alg_setting"]) ?? "") ||
      ["safety_soc", "backup_setting", "backup_status"].some((k) => s[k] !== undefined)
    )
  );
  return newer ? "home10-new" : "home10-classic";
}

/** The most characters {@link fieldsText} spends on the fields it names. */
const FIELDS_TEXT_BUDGET = 300;

/**
 * Field paths for a log line: each quoted, cut and shown printable (they are the device's keys),
 * as many as fit in about 300 characters, then how many there are in all.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(fieldsText(["home/x", "home/a\nb"]), '"home/x", "home/a b"');
 * equal(fieldsText(Array.from({ length: 100 }, (_, i) => `common/NEW/field_${i}`)).endsWith("(100 in all)"), true);
 * ```
 */
export function fieldsText(fields: readonly string[]): string {
  const shown: string[] = [];
  let length = 0;
  for (const field of fields) {
    const text = preview(field, 60);
    if (shown.length > 0 && length + text.length > FIELDS_TEXT_BUDGET) break;
    shown.push(text);
    length += text.length + 2;
  }
  const more = fields.length > shown.length ? `, … (${fields.length} in all)` : "";
  return shown.join(", ") + more;
}

/** The fields each family's module knows. */
const KNOWN_FIELDS: Readonly<Record<Family, readonly FieldPattern[]>> = {
  "home10-classic": HOME10_FIELDS,
  "home10-new": HOME10_FIELDS,
  home5: HOME10_FIELDS,
  home15: HOME15_FIELDS,
  unknown: [],
};

/**
 * The normalised reading of one poll: powers in W (battery positive while discharging, grid
 * positive while buying), state of charge, PV strings, grid phases, energy counters, modes and
 * settings as words, versions. Whatever the answers lack is absent; units not installed are left
 * out; fields ess does not know are listed in `unknownFields`.
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * const reading = normalise({
 *   home: {
 *     statistics: { load_power_01kW: 7, batt_conv_power_01kW: 7, bat_user_soc: 95 },
 *     direction: { is_battery_charging_: 0 },
 *   },
 * });
 * equal(reading.family, "home15");
 * deepEqual(reading.power, { loadW: 700, batteryW: 700 });
 * equal(reading.socPct, 95);
 * ```
 */
export function normalise(states: DeviceStates): Reading {
  const family = detectFamily(states);
  const { home, common, batt, systeminfo } = states;
  const own = { home, common, batt, systeminfo };
  const unknown = unknownFields(own, KNOWN_FIELDS[family]);
  if (family === "unknown") {
    return {
      family,
      power: {},
      pvStrings: [],
      grid: { phases: [] },
      energy: {},
      status: {},
      settings: {},
      versions: {},
      unknownFields: unknown,
    };
  }
  const parts = family === "home15" ? readHome15(own) : readHome10(own);
  return { family, ...parts, unknownFields: unknown };
}
