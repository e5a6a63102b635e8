/**
 * The controls as the dashboard shows them: each control's name, label and kind (from Home
 * Assistant's entity table, which already knows them), and, from the latest reading, which of
 * them this firmware has, their current setting and the options it accepts.
 *
 * @module
 */
import { ENTITY_TABLE } from "../hass/entities.ts";
import type { ControlName } from "../device/controls.ts";
import { CHARGE_STRATEGY_TABLE } from "../device/vocabulary.ts";
import type { Reading } from "../model/reading.ts";

/** One control for the dashboard. */
export interface ControlInfo {
  /** The control's name in `/api/control/{name}`. */
  name: ControlName;
  label: string;
  kind: "switch" | "select" | "number";
  /** Switches: the words the control takes (and {@link controlsNow} reports) for on and off. */
  on?: string;
  off?: string;
  /** Selects: every option the control takes; {@link controlsNow} says which this firmware has. */
  options?: readonly string[];
  /** Numbers: the range. */
  range?: { min: number; max: number; step: number; unit: string };
}

/** Every control, in Home Assistant's order. */
export const CONTROL_LIST: readonly ControlInfo[] = ENTITY_TABLE.flatMap((row) => {
  if (row.control === undefined) return [];
  const kind = row.platform === "select"
    ? "select"
    : row.platform === "number"
    ? "number"
    : "switch";
  const info: ControlInfo = { name: row.control, label: row.name, kind };
  if (kind === "switch") Object.assign(info, { on: "on", off: "off" });
  if (row.options) info.options = row.options;
  if (row.range) info.range = row.range;
  return [info];
});

/** What the reading says of one control: its setting now, and the options the firmware takes. */
export interface ControlNow {
  /** `on`/`off`, an option, or a number as text. */
  now: string;
  options?: readonly string[];
}

const onOff = (on: boolean | undefined) => on === undefined ? undefined : on ? "on" : "off";

/** ess's strategy name (`fast-charge`) as the control's option (`fast_charge`). */
const optionOf = (name: string) => CHARGE_STRATEGY_TABLE.find((r) => r.name === name)?.option;

/**
 * The controls this firmware has, by name, each with its setting as the reading has it; a
 * control whose setting the reading lacks is left out, as the firmware does not take it.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import type { Reading } from "../model/reading.ts";
 * const reading: Reading = {
 *   family: "home10-classic", power: {}, pvStrings: [], grid: { phases: [] }, energy: {},
 *   status: { running: true },
 *   settings: { chargeStrategy: "battery-care", chargeStrategies: ["battery-care", "fast-charge"] },
 *   versions: {}, unknownFields: [],
 * };
 * deepEqual(controlsNow(reading), {
 *   active: { now: "on" },
 *   fastcharge: { now: "off" },
 *   charge_strategy: { now: "battery_care", options: ["battery_care", "fast_charge"] },
 * });
 * ```
 */
export function controlsNow(reading: Reading): Partial<Record<ControlName, ControlNow>> {
  const { settings } = reading;
  const strategy = settings.chargeStrategy;
  const values: Record<ControlName, string | undefined> = {
    active: onOff(reading.status.running),
    winter_mode: onOff(settings.winterMode),
    fastcharge: strategy === undefined ? undefined : onOff(strategy === "fast-charge"),
    charge_strategy: strategy === undefined ? undefined : optionOf(strategy),
    backup_mode: onOff(settings.backupMode),
    backup_soc: settings.backupReservePct === undefined
      ? undefined
      : String(settings.backupReservePct),
  };
  const result: Partial<Record<ControlName, ControlNow>> = {};
  for (const { name } of CONTROL_LIST) {
    const now = values[name];
    if (now === undefined) continue;
    result[name] = name === "charge_strategy"
      ? {
        now,
        options: (settings.chargeStrategies ?? [strategy!]).flatMap((s) => optionOf(s) ?? []),
      }
      : { now };
  }
  return result;
}
