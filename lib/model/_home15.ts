/**
 * What the ESS Home 15 answers mean (recorded: D015KE1N212). Values are JSON numbers. Powers in
 * `home.statistics` are magnitudes in 0.1 kW (`load_power_01kW: 7` is 700 W) whose signs come
 * from the `direction` flags. `common.ess[]` holds one entry per unit, `installed: false` for
 * units that are not there (their values are garbage); each has `pv[]` strings with voltage in
 * 0.1 V, current in 0.01 A, power and capacity in W. `common.GRID` has per-phase arrays:
 * `a_phase` voltages in 0.1 V and `active_power` in W; `freq` is in 0.1 Hz; `LOAD.load_power` is
 * in 0.1 kW. The live answer has no energy counters.
 *
 * Cross-checks that fix these units, in the recorded answers: `load_power_01kW` =
 * `LOAD.load_power` = PV + grid + battery with the directions' signs; `sum_of_pv_power` = the sum
 * of `pv[].power`, and within the 0.05 kW `pv_total_power_01kW` allows; `sum_of_pv_capacity` =
 * the sum of `pv[].capacity`; `GRID.total_active_power` = the sum of `active_power[]`, within the
 * 0.05 kW `grid_power_01kW` allows; `a_phase` 2373 and `freq` 500 are 237.3 V and 50.0 Hz, as
 * Morluktom/ioBroker.lg-ess-home scales them.
 *
 * @module
 */
import type { Json, JsonObject } from "../device/flatten.ts";
import { BATTERY_STATUSES, codeWord, INVERTER_STATUSES, OPERATING_MODES } from "./codes.ts";
import type { FieldPattern } from "./_fields.ts";
import type { GridPhase, PvString, Reading } from "./reading.ts";
import { BATT_FIELDS, readSettings } from "./_settings.ts";
import { arrayAt, at, compact, flag, num, objectAt, scaled, signed, text } from "./_values.ts";

/** Every Home 15 field ess knows, used or published raw only. */
export const HOME15_FIELDS: readonly FieldPattern[] = [
  "home/statistics/*",
  "home/direction/*",
  "home/operation/*",
  "home/pcs_fault/*",
  "home/heatpump/*",
  "home/evcharger/*",
  "home/gridWaitingTime",
  "home/coredump",
  "home/factory_test_mode",
  "common/ess_installed",
  "common/ess/#/*",
  "common/ess/#/pv/#/*",
  "common/ess/#/batt/#/*",
  "common/winter_setting",
  "common/winter_status",
  "common/GRID/total_active_power",
  "common/GRID/freq",
  "common/GRID/active_power/#",
  "common/GRID/a_phase/#",
  "common/PCS/*",
  "common/LOAD/*",
  ...BATT_FIELDS,
  "systeminfo/pms/*",
  "systeminfo/version/*",
  "systeminfo/ess_installed",
  "systeminfo/ess/#/*",
  "systeminfo/ess/#/batt_info/*",
  "systeminfo/ess/#/batt_info/batt/#/*",
  "systeminfo/ess/#/batt_info/batt/#/barcode/#",
];

const PHASES = ["a", "b", "c"] as const;
/** A power in 0.1 kW as W. */
const deciKw = (v: number | undefined) => v === undefined ? undefined : v * 100;

const nonNegative = (v: number | undefined) => v !== undefined && v >= 0 ? v : undefined;
const percent = (v: number | undefined) => v !== undefined && v >= 0 && v <= 100 ? v : undefined;
const installed = (unit: Json) => at(unit, "installed") === true;

/** The reading's parts from Home 15 answers (family and unknown fields aside). */
export function readHome15(
  states: Readonly<Partial<Record<string, JsonObject>>>,
): Omit<Reading, "family" | "unknownFields"> {
  const { home, common, batt, systeminfo } = states;
  const stats = objectAt(home, "statistics");
  const direction = objectAt(home, "direction");
  const units = arrayAt(common, "ess");
  const gridW = deciKw(
    signed(num(stats?.["grid_power_01kW"]), flag(direction?.["is_grid_selling_"])),
  );
  return {
    ...compact({
      model: text(at(systeminfo, "pms", "model")) ?? text(at(systeminfo, "ess", 0, "model")),
      serial: text(at(systeminfo, "pms", "serialno")),
      socPct: percent(num(stats?.["bat_user_soc"])),
      pvCapacityW: pvCapacity(units),
    }),
    power: compact({
      pvW: nonNegative(deciKw(num(stats?.["pv_total_power_01kW"]))),
      loadW: nonNegative(deciKw(num(stats?.["load_power_01kW"]))),
      batteryW: deciKw(
        signed(num(stats?.["batt_conv_power_01kW"]), flag(direction?.["is_battery_charging_"])),
      ),
      gridW,
    }),
    pvStrings: pvStrings(units),
    grid: {
      ...compact({ frequencyHz: nonNegative(scaled(num(at(common, "GRID", "freq")), 10)) }),
      phases: phases(objectAt(common, "GRID"), gridW),
    },
    energy: {},
    status: compact({
      running: flag(at(home, "operation", "status")),
      operatingMode: codeWord(OPERATING_MODES, at(home, "operation", "mode")),
      inverterStatus: codeWord(INVERTER_STATUSES, at(home, "pcs_fault", "pcs_status")),
      batteryStatus: codeWord(BATTERY_STATUSES, stats?.["bat_status"]),
      winterActive: flag(at(common, "winter_status") ?? at(batt, "winter_status")),
      batteryCharging: flag(direction?.["is_battery_charging_"]),
      gridSelling: flag(direction?.["is_grid_selling_"]),
    }),
    settings: {
      ...readSettings(batt, common),
      ...compact({ feedInLimitPct: percent(num(at(common, "PCS", "feed_in_limitation"))) }),
    },
    versions: compact({
      pms: text(at(systeminfo, "version", "pms_version")),
      pcs: text(at(systeminfo, "version", "pcs_version")),
    }),
  };
}

/** The installed strings of the installed units, numbered from 1 across the units. */
function pvStrings(units: Json[]): PvString[] {
  const strings: PvString[] = [];
  let index = 0;
  for (const unit of units.filter(installed)) {
    for (const pv of arrayAt(unit, "pv")) {
      index++;
      if (!installed(pv)) continue;
      strings.push({
        index,
        ...compact({
          powerW: nonNegative(num(at(pv, "power"))),
          voltageV: nonNegative(scaled(num(at(pv, "voltage")), 10)),
          currentA: scaled(num(at(pv, "current")), 100),
        }),
      });
    }
  }
  return strings;
}

/** The installed units' PV peak power in W. */
function pvCapacity(units: Json[]): number | undefined {
  const capacities = units.filter(installed).map((u) =>
    nonNegative(num(at(u, "sum_of_pv_capacity")))
  );
  if (capacities.length === 0 || capacities.includes(undefined)) return undefined;
  return capacities.reduce<number>((sum, c) => sum + c!, 0);
}

/**
 * The three phases: voltage from `a_phase[]`, power from `active_power[]`. The recordings do not
 * say which sign of `active_power` means buying, so it is read off the total: phase powers are
 * given only when `total_active_power` and the flow the direction flags give (`gridW`) are both
 * not zero, oriented so that the total has `gridW`'s sign.
 */
function phases(grid: JsonObject | undefined, gridW: number | undefined): GridPhase[] {
  const voltages = arrayAt(grid, "a_phase");
  const powers = arrayAt(grid, "active_power");
  const total = num(grid?.["total_active_power"]);
  const orientation = total === undefined || total === 0 || !gridW
    ? undefined
    : Math.sign(total) === Math.sign(gridW)
    ? 1
    : -1;
  const result: GridPhase[] = [];
  PHASES.forEach((phase, i) => {
    const p = num(powers[i]);
    const entry: GridPhase = {
      phase,
      ...compact({
        voltageV: nonNegative(scaled(num(voltages[i]), 10)),
        powerW: orientation === undefined || p === undefined ? undefined : orientation * p + 0,
      }),
    };
    if (Object.keys(entry).length > 1) result.push(entry);
  });
  return result;
}
