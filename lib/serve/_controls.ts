/**
 * The controls as the dashboard shows them, derived from Home Assistant's entity table, which
 * already knows each control's name, the field that shows its state, and the values it takes.
 *
 * @module
 */
import { ENTITY_TABLE } from "../hass/entities.ts";
import type { ControlName } from "../device/controls.ts";

/** One control for the dashboard. */
export interface ControlInfo {
  /** The control's name in `/api/control/{name}`. */
  name: ControlName;
  label: string;
  kind: "switch" | "select" | "number";
  /** State and leaf path of the field that shows the current setting. */
  source: string;
  /** Device text → shown value, where the firmware spells it differently. */
  valueMap?: Readonly<Record<string, string>>;
  /** Switches: the words the device reports (and the control takes) for on and off. */
  on?: string;
  off?: string;
  /** Selects: the options. */
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
  const info: ControlInfo = { name: row.control, label: row.name, kind, source: row.source };
  if (row.valueMap) info.valueMap = row.valueMap;
  if (row.on !== undefined) info.on = row.on;
  if (row.off !== undefined) info.off = row.off;
  if (row.options) info.options = row.options;
  if (row.range) info.range = row.range;
  return [info];
});
