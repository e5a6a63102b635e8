/**
 * The one table that maps the normalised reading to Home Assistant entities: platform, name, the
 * reading topic (`<prefix>/reading/…`, the same on every model, in SI units), device class and
 * unit, and the control each setting sends to. Discovery (`discovery.ts`) builds its message from
 * it; anything else that needs to know which entity is what (units, kinds) reads it here.
 *
 * @module
 */
import { CHARGE_STRATEGY_OPTIONS, CHARGE_STRATEGY_TABLE } from "../device/vocabulary.ts";
import type { EnergyName } from "../model/reading.ts";
import type { ControlName } from "../device/controls.ts";
import { stateTopic } from "../mqtt/topics.ts";

/** The entity platforms ess announces. */
export type Platform = "sensor" | "binary_sensor" | "switch" | "select" | "number";

/**
 * What a sensor measures. It decides device class, unit and state class, so that every row
 * follows Home Assistant's sensor rules by construction.
 */
export type Kind =
  | "power"
  | "energy"
  | "battery"
  | "voltage"
  | "current"
  | "frequency"
  | "percent"
  | "text";

/** Device class, unit, state class and display precision of each {@link Kind}. */
export const KINDS: Readonly<
  Record<Kind, {
    device_class?: string;
    unit_of_measurement?: string;
    state_class?: string;
    suggested_display_precision?: number;
  }>
> = {
  power: {
    device_class: "power",
    unit_of_measurement: "W",
    state_class: "measurement",
    suggested_display_precision: 0,
  },
  // Daily and monthly sums reset to zero; Home Assistant reads a decrease of a
  // total_increasing sensor as the start of a new cycle, which is exactly that.
  energy: {
    device_class: "energy",
    unit_of_measurement: "Wh",
    state_class: "total_increasing",
    suggested_display_precision: 0,
  },
  battery: {
    device_class: "battery",
    unit_of_measurement: "%",
    state_class: "measurement",
    suggested_display_precision: 1,
  },
  voltage: {
    device_class: "voltage",
    unit_of_measurement: "V",
    state_class: "measurement",
    suggested_display_precision: 1,
  },
  current: {
    device_class: "current",
    unit_of_measurement: "A",
    state_class: "measurement",
    suggested_display_precision: 2,
  },
  frequency: {
    device_class: "frequency",
    unit_of_measurement: "Hz",
    state_class: "measurement",
    suggested_display_precision: 2,
  },
  percent: { unit_of_measurement: "%", state_class: "measurement", suggested_display_precision: 1 },
  text: {},
};

/** One entity ess can announce, and the reading topic it reads. */
export interface EntityRow {
  /** Component id, and the tail of the entity id: `battery_soc` → `sensor.ess_battery_soc`. */
  id: string;
  platform: Platform;
  /** Entity name; Home Assistant shows it after the device name. */
  name: string;
  /** The reading topic the entity reads, under the prefix: `reading/battery/soc`. */
  source: string;
  /**
   * pyess's raw topics (under the prefix) for the same figure, so that a
   * `hass_autoconfig_sensors` list written for pyess picks this entity.
   */
  pyess?: readonly string[];
  /** For sensors. */
  kind?: Kind;
  /** Status, codes, modes and versions: shown under "Diagnostic". */
  diagnostic?: boolean;
  /** A setting of the device: shown under "Configuration". */
  setting?: boolean;
  /** binary_sensor device class (`battery_charging`). */
  binaryClass?: string;
  /** For controls: the command topic under `<prefix>/control/`. */
  control?: ControlName;
  /**
   * The published text → what the entity shows (`on`/`off` or an option), where it differs;
   * text it does not list is shown as it is. Becomes the `value_template`.
   */
  valueMap?: Readonly<Record<string, string>>;
  /** select options, as the bridge's control topic takes them; the firmware's own are offered. */
  options?: readonly string[];
  /** number range. */
  range?: { min: number; max: number; step: number; unit: string };
  /** An energy counter: its attributes say where the reading's figures come from. */
  energy?: EnergyName;
}

const sensor = (
  id: string,
  name: string,
  source: string,
  kind: Kind,
  extra: Partial<EntityRow> = {},
): EntityRow => ({ id, platform: "sensor", name, source: `reading/${source}`, kind, ...extra });

const binary = (
  id: string,
  name: string,
  source: string,
  extra: Partial<EntityRow> = {},
): EntityRow => ({ id, platform: "binary_sensor", name, source: `reading/${source}`, ...extra });

const diagnostic = { diagnostic: true } as const;
const pyess = (...topics: string[]) => ({ pyess: topics });

/** The reading's strategy words, in either spelling, → the select's options. */
const STRATEGY_OPTIONS: Readonly<Record<string, string>> = Object.fromEntries(
  CHARGE_STRATEGY_TABLE.flatMap((r) => [[r.name, r.option], [r.option, r.option]]),
);

/** The reading's energy counters: entity id, name, topic part and pyess's raw topics. */
const ENERGY_ROWS: readonly [EnergyName, string, string, string, [string, string]][] = [
  ["pvGeneration", "pv_generation", "PV generation", "pv_generation", [
    "common/PV/today_pv_generation_sum",
    "common/PV/today_month_pv_generation_sum",
  ]],
  ["loadConsumption", "load_consumption", "Load consumption", "load_consumption", [
    "common/LOAD/today_load_consumption_sum",
    "common/LOAD/month_load_consumption_sum",
  ]],
  ["pvDirectConsumption", "direct_consumption", "PV direct consumption", "pv_direct_consumption", [
    "common/LOAD/today_pv_direct_consumption_enegy",
    "common/LOAD/month_pv_direct_consumption_energy",
  ]],
  ["gridFeedIn", "grid_feed_in", "Grid feed-in", "grid_feed_in", [
    "common/GRID/today_grid_feed_in_energy",
    "common/GRID/month_grid_feed_in_energy",
  ]],
  ["gridPurchase", "grid_purchase", "Grid purchase", "grid_purchase", [
    "common/GRID/today_grid_power_purchase_energy",
    "common/GRID/month_grid_power_purchase_energy",
  ]],
  ["batteryCharge", "battery_charge", "Battery charge", "battery_charge", [
    "common/BATT/today_batt_charge_energy",
    "common/BATT/month_batt_charge_energy",
  ]],
  ["batteryDischarge", "battery_discharge", "Battery discharge", "battery_discharge", [
    "common/BATT/today_batt_discharge_enery",
    "common/BATT/month_batt_discharge_energy",
  ]],
];

/**
 * Every entity ess knows, in the order Home Assistant lists them. Each reads one topic of the
 * normalised reading, the same on every model; only rows whose topic the bridge publishes (the
 * model has the figure) are announced.
 */
export const ENTITY_TABLE: readonly EntityRow[] = [
  sensor(
    "battery_soc",
    "Battery SOC",
    "battery/soc",
    "battery",
    pyess("home/statistics/bat_user_soc", "common/BATT/soc"),
  ),
  sensor(
    "pv_power",
    "PV power",
    "power/pv",
    "power",
    pyess("home/statistics/pcs_pv_total_power"),
  ),
  sensor(
    "load_power",
    "Load power",
    "power/load",
    "power",
    pyess("home/statistics/load_power", "common/LOAD/load_power"),
  ),
  sensor(
    "grid_power",
    "Grid power",
    "power/grid",
    "power",
    pyess("home/statistics/grid_power", "common/GRID/active_power"),
  ),
  sensor(
    "battery_power",
    "Battery power",
    "power/battery",
    "power",
    pyess("home/statistics/batconv_power"),
  ),
  sensor(
    "self_consumption_today",
    "Self-consumption today",
    "self_consumption/today",
    "percent",
    pyess("home/statistics/current_day_self_consumption"),
  ),
  binary("battery_charging", "Battery charging", "status/battery_charging", {
    binaryClass: "battery_charging",
    ...pyess("home/direction/is_battery_charging_"),
  }),
  binary("grid_feed_in", "Grid feed-in", "status/grid_selling", {
    ...pyess("home/direction/is_grid_selling_"),
  }),
  binary("winter_mode_active", "Winter mode active", "status/winter_active", {
    ...diagnostic,
    ...pyess("home/wintermode/winter_status"),
  }),
  sensor("operation_mode", "Operation mode", "status/operating_mode", "text", {
    ...diagnostic,
    ...pyess("home/operation/mode"),
  }),
  sensor("inverter_status", "Inverter status", "status/inverter", "text", {
    ...diagnostic,
    ...pyess("home/pcs_fault/pcs_status"),
  }),
  sensor("battery_status", "Battery status", "status/battery", "text", {
    ...diagnostic,
    ...pyess("home/statistics/bat_status"),
  }),

  ...[1, 2, 3, 4].flatMap((n) => [
    sensor(
      `pv${n}_power`,
      `PV${n} power`,
      `pv/${n}/power`,
      "power",
      pyess(`common/PV/pv${n}_power`),
    ),
    sensor(
      `pv${n}_voltage`,
      `PV${n} voltage`,
      `pv/${n}/voltage`,
      "voltage",
      pyess(`common/PV/pv${n}_voltage`),
    ),
    sensor(
      `pv${n}_current`,
      `PV${n} current`,
      `pv/${n}/current`,
      "current",
      pyess(`common/PV/pv${n}_current`),
    ),
  ]),
  sensor("pv_capacity", "PV capacity", "pv/capacity", "power", {
    ...diagnostic,
    ...pyess("common/PV/capacity"),
  }),

  sensor(
    "grid_voltage",
    "Grid voltage",
    "grid/a/voltage",
    "voltage",
    pyess("common/GRID/a_phase"),
  ),
  sensor("grid_voltage_b", "Grid voltage (phase B)", "grid/b/voltage", "voltage"),
  sensor("grid_voltage_c", "Grid voltage (phase C)", "grid/c/voltage", "voltage"),
  ...(["a", "b", "c"] as const).map((phase) =>
    sensor(
      `grid_power_${phase}`,
      `Grid power (phase ${phase.toUpperCase()})`,
      `grid/${phase}/power`,
      "power",
    )
  ),
  sensor(
    "grid_frequency",
    "Grid frequency",
    "grid/frequency",
    "frequency",
    pyess("common/GRID/freq"),
  ),

  ...ENERGY_ROWS.flatMap(([energy, id, name, part, [today, month]]) => [
    sensor(`${id}_today`, `${name} today`, `energy/${part}/today`, "energy", {
      energy,
      ...pyess(today),
    }),
    sensor(`${id}_month`, `${name} this month`, `energy/${part}/month`, "energy", {
      energy,
      ...pyess(month),
    }),
  ]),

  sensor("battery_safety_soc", "Battery reserve", "settings/reserve", "percent", {
    ...diagnostic,
    ...pyess("common/BATT/safty_soc", "batt/safty_soc"),
  }),
  sensor("winter_reserve", "Winter reserve", "settings/winter_reserve", "percent", diagnostic),
  sensor("feed_in_limit", "Feed-in limit", "settings/feed_in_limit", "percent", {
    ...diagnostic,
    ...pyess("common/PCS/feed_in_limitation"),
  }),
  sensor("winter_start", "Winter season start", "settings/winter_start", "text", {
    ...diagnostic,
    ...pyess("batt/startdate"),
  }),
  sensor("winter_stop", "Winter season end", "settings/winter_stop", "text", {
    ...diagnostic,
    ...pyess("batt/stopdate"),
  }),
  binary("grid_charge", "Charging from grid allowed", "settings/grid_charge", {
    ...diagnostic,
    ...pyess("batt/auto_charge"),
  }),

  sensor("pms_version", "PMS version", "version/pms", "text", {
    ...diagnostic,
    ...pyess("systeminfo/version/pms_version"),
  }),
  sensor("pcs_version", "PCS version", "version/pcs", "text", {
    ...diagnostic,
    ...pyess("systeminfo/version/pcs_version"),
  }),
  sensor("bms_version", "BMS version", "version/bms", "text", {
    ...diagnostic,
    ...pyess("systeminfo/version/bms_version"),
  }),

  {
    id: "system",
    platform: "switch",
    name: "System",
    source: "reading/status/running",
    control: "active",
  },
  {
    id: "winter_mode",
    platform: "switch",
    name: "Winter mode",
    source: "reading/settings/winter_mode",
    control: "winter_mode",
    setting: true,
  },
  {
    id: "fast_charge",
    platform: "switch",
    name: "Fast charge",
    source: "reading/settings/charge_strategy",
    control: "fastcharge",
    valueMap: Object.fromEntries(
      Object.entries(STRATEGY_OPTIONS).map(([word, option]) => [
        word,
        option === "fast_charge" ? "on" : "off",
      ]),
    ),
    setting: true,
  },
  {
    id: "charge_strategy",
    platform: "select",
    name: "Charge strategy",
    source: "reading/settings/charge_strategy",
    control: "charge_strategy",
    options: CHARGE_STRATEGY_OPTIONS,
    valueMap: Object.fromEntries(
      Object.entries(STRATEGY_OPTIONS).filter(([word, option]) => word !== option),
    ),
    setting: true,
  },
  {
    id: "backup_mode",
    platform: "switch",
    name: "Backup mode",
    source: "reading/settings/backup_mode",
    control: "backup_mode",
    setting: true,
  },
  {
    id: "backup_reserve",
    platform: "number",
    name: "Backup reserve",
    source: "reading/settings/backup_reserve",
    control: "backup_soc",
    range: { min: 0, max: 100, step: 1, unit: "%" },
    setting: true,
  },
];

/** The MQTT topic a row reads under `prefix`. */
export function rowTopic(prefix: string, row: EntityRow): string {
  const [state = "", ...path] = row.source.split("/");
  return stateTopic(prefix, state, path);
}

/** Lowercase letters, digits and single underscores: safe in ids, topics and entity ids. */
export function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "");
}
