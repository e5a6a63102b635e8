/**
 * What the ESS Home 8/10 answers mean, on classic and newer firmware, and the ESS Home 5's, which
 * answers in the same shape (recorded: D005KD1N111 next to D010KE1N211): every value a string,
 * powers in W as magnitudes whose signs come from the `direction` flags, energy in Wh, voltages
 * in V, currents in A, frequency in Hz, state of charge in %.
 *
 * Cross-checks that fix these units, in the recorded answers: `load_power` = PV + grid + battery
 * with the directions' signs; `PCS.today_pv_generation_sum` = `PV.today_pv_generation_sum` =
 * `home.statistics.current_pv_generation_sum`; each string's `pvN_power` ≈ `pvN_voltage` ×
 * `pvN_current`; `LOAD.today_load_consumption_sum` = direct PV + battery discharge + purchase.
 *
 * @module
 */
import type { JsonObject } from "../device/flatten.ts";
import { BATTERY_STATUSES, codeWord, INVERTER_STATUSES, OPERATING_MODES } from "./codes.ts";
import type { FieldPattern } from "./_fields.ts";
import type { EnergyCounter, EnergyName, PvString, Reading } from "./reading.ts";
import { BATT_FIELDS, readSettings } from "./_settings.ts";
import { at, compact, flag, num, objectAt, signed, text } from "./_values.ts";

/** Most PV strings ess looks for (`pv1`..`pv9`); recorded devices have two or three. */
const MAX_PV_STRINGS = 9;

/** Every field of these families ess knows, used or published raw only. */
export const HOME10_FIELDS: readonly FieldPattern[] = [
  ...[
    "pcs_pv_total_power",
    "batconv_power",
    "bat_use",
    "bat_status",
    "bat_user_soc",
    "load_power",
    "ac_output_power",
    "load_today",
    "grid_power",
    "current_day_self_consumption",
    "current_pv_generation_sum",
    "current_grid_feed_in_energy",
  ].map((k) => `home/statistics/${k}`),
  "home/direction/*",
  "home/operation/*",
  "home/wintermode/*",
  "home/backupmode",
  "home/pcs_fault/*",
  "home/heatpump/*",
  "home/evcharger/*",
  "home/gridWaitingTime",
  ...["brand", "capacity", "today_pv_generation_sum", "today_month_pv_generation_sum"].map((k) =>
    `common/PV/${k}`
  ),
  ...Array.from(
    { length: MAX_PV_STRINGS },
    (_, i) => ["voltage", "power", "current"].map((q) => `common/PV/pv${i + 1}_${q}`),
  ).flat(),
  "common/BATT/*",
  "common/GRID/*",
  "common/LOAD/*",
  "common/PCS/*",
  ...BATT_FIELDS,
  "systeminfo/pms/*",
  "systeminfo/batt/*",
  "systeminfo/version/*",
];

/** Where each energy counter is, today and this month (`common` group/key). */
const ENERGY_FIELDS: Record<EnergyName, { today: [string, string]; month: [string, string] }> = {
  pvGeneration: {
    today: ["PCS", "today_pv_generation_sum"],
    month: ["PCS", "month_pv_generation_sum"],
  },
  loadConsumption: {
    today: ["LOAD", "today_load_consumption_sum"],
    month: ["LOAD", "month_load_consumption_sum"],
  },
  pvDirectConsumption: {
    today: ["LOAD", "today_pv_direct_consumption_enegy"],
    month: ["LOAD", "month_pv_direct_consumption_energy"],
  },
  gridFeedIn: {
    today: ["GRID", "today_grid_feed_in_energy"],
    month: ["GRID", "month_grid_feed_in_energy"],
  },
  gridPurchase: {
    today: ["GRID", "today_grid_power_purchase_energy"],
    month: ["GRID", "month_grid_power_purchase_energy"],
  },
  batteryCharge: {
    today: ["BATT", "today_batt_charge_energy"],
    month: ["BATT", "month_batt_charge_energy"],
  },
  batteryDischarge: {
    today: ["BATT", "today_batt_discharge_enery"],
    month: ["BATT", "month_batt_discharge_energy"],
  },
};

const nonNegative = (v: number | undefined) => v !== undefined && v >= 0 ? v : undefined;
const percent = (v: number | undefined) => v !== undefined && v >= 0 && v <= 100 ? v : undefined;

/** The reading's parts from Home 8/10 or Home 5 answers (family and unknown fields aside). */
export function readHome10(
  states: Readonly<Partial<Record<string, JsonObject>>>,
): Omit<Reading, "family" | "unknownFields"> {
  const { home, common, batt, systeminfo } = states;
  const stats = objectAt(home, "statistics");
  const direction = objectAt(home, "direction");
  return {
    ...compact({
      model: text(at(systeminfo, "pms", "model")),
      serial: text(at(systeminfo, "pms", "serialno")),
      socPct: percent(num(stats?.["bat_user_soc"])),
      selfConsumptionTodayPct: percent(
        num(at(common, "PCS", "today_self_consumption") ?? stats?.["current_day_self_consumption"]),
      ),
      pvCapacityW: nonNegative(num(at(common, "PV", "capacity"))),
    }),
    power: compact({
      pvW: nonNegative(num(stats?.["pcs_pv_total_power"])),
      loadW: nonNegative(num(stats?.["load_power"])),
      batteryW: signed(num(stats?.["batconv_power"]), flag(direction?.["is_battery_charging_"])),
      gridW: signed(num(stats?.["grid_power"]), flag(direction?.["is_grid_selling_"])),
    }),
    pvStrings: pvStrings(objectAt(common, "PV")),
    grid: {
      ...compact({ frequencyHz: nonNegative(num(at(common, "GRID", "freq"))) }),
      phases: phaseA(num(at(common, "GRID", "a_phase"))),
    },
    energy: energy(common),
    status: compact({
      running: flag(at(home, "operation", "status")),
      operatingMode: codeWord(OPERATING_MODES, at(home, "operation", "mode")),
      inverterStatus: codeWord(INVERTER_STATUSES, at(home, "pcs_fault", "pcs_status")),
      batteryStatus: codeWord(BATTERY_STATUSES, stats?.["bat_status"]),
      winterActive: flag(at(home, "wintermode", "winter_status") ?? at(batt, "winter_status")),
      batteryCharging: flag(direction?.["is_battery_charging_"]),
      gridSelling: flag(direction?.["is_grid_selling_"]),
    }),
    settings: {
      ...readSettings(batt, objectAt(common, "BATT")),
      ...compact({ feedInLimitPct: percent(num(at(common, "PCS", "feed_in_limitation"))) }),
    },
    versions: compact({
      pms: text(at(systeminfo, "version", "pms_version")),
      pcs: text(at(systeminfo, "version", "pcs_version")),
      bms: text(at(systeminfo, "version", "bms_version")),
    }),
  };
}

/** The strings `pv1`..`pvN` that report anything, numbered as the device numbers them. */
function pvStrings(pv: JsonObject | undefined): PvString[] {
  const strings: PvString[] = [];
  for (let index = 1; index <= MAX_PV_STRINGS; index++) {
    const string = {
      index,
      ...compact({
        powerW: nonNegative(num(pv?.[`pv${index}_power`])),
        voltageV: nonNegative(num(pv?.[`pv${index}_voltage`])),
        currentA: num(pv?.[`pv${index}_current`]),
      }),
    };
    if (Object.keys(string).length > 1) strings.push(string);
  }
  return strings;
}

/** Phase A's voltage, the one phase Home 8/10 reports. */
function phaseA(voltageV: number | undefined): Reading["grid"]["phases"] {
  return voltageV === undefined || voltageV < 0 ? [] : [{ phase: "a", voltageV }];
}

/** The energy counters `common` reports, in Wh. */
function energy(common: JsonObject | undefined): Reading["energy"] {
  const counters: Reading["energy"] = {};
  for (
    const [name, where] of Object.entries(ENERGY_FIELDS) as [
      EnergyName,
      typeof ENERGY_FIELDS[EnergyName],
    ][]
  ) {
    const counter: EnergyCounter = {
      source: "device",
      ...compact({
        todayWh: nonNegative(num(at(common, ...where.today))),
        monthWh: nonNegative(num(at(common, ...where.month))),
      }),
    };
    if (counter.todayWh !== undefined || counter.monthWh !== undefined) counters[name] = counter;
  }
  return counters;
}
