/**
 * The one table that maps the device's fields to Home Assistant entities: platform, name, source
 * topic, device class and unit, and the control each setting sends to. Discovery
 * (`discovery.ts`) builds its message from it; anything else that needs to know which field is
 * what (units, kinds) reads it here.
 *
 * @module
 */
import {
  CHARGE_STRATEGY_OPTIONS,
  CHARGE_STRATEGY_TABLE,
  type ChargeStrategyRow,
} from "../device/vocabulary.ts";
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

/** One entity ess can announce, and the device field it reads. */
export interface EntityRow {
  /** Component id, and the tail of the entity id: `battery_soc` → `sensor.ess_battery_soc`. */
  id: string;
  platform: Platform;
  /** Entity name; Home Assistant shows it after the device name. */
  name: string;
  /** The state and leaf path the entity reads: `home/statistics/bat_user_soc`. */
  source: string;
  /** For sensors. */
  kind?: Kind;
  /** Status, fault codes, modes and versions: shown under "Diagnostic". */
  diagnostic?: boolean;
  /** A setting of the device: shown under "Configuration". */
  setting?: boolean;
  /** Repeats another row's quantity from another part of the answer: off unless picked. */
  duplicate?: boolean;
  /** binary_sensor device class (`battery_charging`). */
  binaryClass?: string;
  /** Payloads of the source that mean on and off (binary sensors, switches). */
  on?: string;
  off?: string;
  /** For controls: the command topic under `<prefix>/control/`. */
  control?: ControlName;
  /**
   * The device's text → what the entity shows (`on`/`off` or an option), where firmware spells
   * it differently; text it does not list is shown as it is. Becomes the `value_template`.
   */
  valueMap?: Readonly<Record<string, string>>;
  /** select options, as the bridge's control topic takes them. */
  options?: readonly string[];
  /** The fewer select options of older firmware, which spells the source `on`/`off`. */
  classicOptions?: readonly string[];
  /** number range. */
  range?: { min: number; max: number; step: number; unit: string };
}

const sensor = (
  id: string,
  name: string,
  source: string,
  kind: Kind,
  extra: Partial<EntityRow> = {},
): EntityRow => ({ id, platform: "sensor", name, source, kind, ...extra });

const flag = (
  id: string,
  name: string,
  key: string,
  extra: Partial<EntityRow> = {},
): EntityRow => ({
  id,
  platform: "binary_sensor",
  name,
  source: `home/direction/${key}`,
  on: "1",
  off: "0",
  ...extra,
});

const diagnostic = { diagnostic: true } as const;
const duplicate = { duplicate: true } as const;

/** The strategies older firmware has (fast charge on/off). */
const CLASSIC_STRATEGIES = CHARGE_STRATEGY_TABLE.filter((r: ChargeStrategyRow) =>
  r.classic !== undefined
);

/**
 * The charge strategy each `alg_setting` stands for: older firmware has only fast charge
 * `on`/`off`, newer firmware `0`/`1`/`2` (see {@link CHARGE_STRATEGY_TABLE}).
 */
const ALG_SETTING_STRATEGIES: Readonly<Record<string, string>> = Object.fromEntries([
  ...CLASSIC_STRATEGIES.map((r) => [r.classic, r.option]),
  ...CHARGE_STRATEGY_TABLE.map((r) => [r.numeric, r.option]),
]);

/**
 * Every entity ess knows, in the order Home Assistant lists them. Only rows whose source topic
 * the bridge publishes are announced.
 */
export const ENTITY_TABLE: readonly EntityRow[] = [
  sensor("battery_soc", "Battery SOC", "home/statistics/bat_user_soc", "battery"),
  sensor("pv_power", "PV power", "home/statistics/pcs_pv_total_power", "power"),
  sensor("load_power", "Load power", "home/statistics/load_power", "power"),
  sensor("grid_power", "Grid power", "home/statistics/grid_power", "power"),
  sensor("battery_power", "Battery power", "home/statistics/batconv_power", "power"),
  sensor(
    "self_consumption_today",
    "Self-consumption today",
    "home/statistics/current_day_self_consumption",
    "percent",
  ),
  sensor(
    "pv_generation_today_live",
    "PV generation today (live)",
    "home/statistics/current_pv_generation_sum",
    "energy",
    duplicate,
  ),
  sensor(
    "grid_feed_in_today_live",
    "Grid feed-in today (live)",
    "home/statistics/current_grid_feed_in_energy",
    "energy",
    duplicate,
  ),
  sensor("battery_status", "Battery status", "home/statistics/bat_status", "text", diagnostic),
  flag("battery_charging", "Battery charging", "is_battery_charging_", {
    binaryClass: "battery_charging",
  }),
  flag("battery_discharging", "Battery discharging", "is_battery_discharging_"),
  flag("grid_feed_in", "Grid feed-in", "is_grid_selling_"),
  flag("grid_purchase", "Grid purchase", "is_grid_buying_"),
  flag("direct_consumption", "PV direct consumption", "is_direct_consuming_"),
  flag("charging_from_grid", "Charging from grid", "is_charging_from_grid_"),
  sensor("operation_status", "Operation status", "home/operation/status", "text", diagnostic),
  sensor("operation_mode", "Operation mode", "home/operation/mode", "text", diagnostic),
  {
    id: "winter_mode_active",
    platform: "binary_sensor",
    name: "Winter mode active",
    source: "home/wintermode/winter_status",
    on: "on",
    off: "off",
    diagnostic: true,
  },
  sensor("inverter_status", "Inverter status", "home/pcs_fault/pcs_status", "text", diagnostic),

  ...[1, 2, 3].flatMap((n) => [
    sensor(`pv${n}_power`, `PV${n} power`, `common/PV/pv${n}_power`, "power"),
    sensor(`pv${n}_voltage`, `PV${n} voltage`, `common/PV/pv${n}_voltage`, "voltage"),
    sensor(`pv${n}_current`, `PV${n} current`, `common/PV/pv${n}_current`, "current"),
  ]),
  sensor(
    "pv_generation_today",
    "PV generation today",
    "common/PV/today_pv_generation_sum",
    "energy",
  ),
  sensor(
    "pv_generation_month",
    "PV generation this month",
    "common/PV/today_month_pv_generation_sum",
    "energy",
  ),

  sensor("battery_soc_bms", "Battery SOC (BMS)", "common/BATT/soc", "battery", duplicate),
  sensor("battery_dc_power", "Battery DC power", "common/BATT/dc_power", "power"),
  sensor(
    "battery_charge_today",
    "Battery charge today",
    "common/BATT/today_batt_charge_energy",
    "energy",
  ),
  sensor(
    "battery_discharge_today",
    "Battery discharge today",
    "common/BATT/today_batt_discharge_enery",
    "energy",
  ),
  sensor(
    "battery_charge_month",
    "Battery charge this month",
    "common/BATT/month_batt_charge_energy",
    "energy",
  ),
  sensor(
    "battery_discharge_month",
    "Battery discharge this month",
    "common/BATT/month_batt_discharge_energy",
    "energy",
  ),
  sensor(
    "battery_safety_soc",
    "Battery safety SOC",
    "common/BATT/safty_soc",
    "percent",
    diagnostic,
  ),
  sensor("battery_state", "Battery state", "common/BATT/status", "text", diagnostic),

  sensor("grid_active_power", "Grid active power", "common/GRID/active_power", "power"),
  sensor("grid_voltage", "Grid voltage", "common/GRID/a_phase", "voltage"),
  sensor("grid_frequency", "Grid frequency", "common/GRID/freq", "frequency"),
  sensor(
    "grid_feed_in_today",
    "Grid feed-in today",
    "common/GRID/today_grid_feed_in_energy",
    "energy",
  ),
  sensor(
    "grid_purchase_today",
    "Grid purchase today",
    "common/GRID/today_grid_power_purchase_energy",
    "energy",
  ),
  sensor(
    "grid_feed_in_month",
    "Grid feed-in this month",
    "common/GRID/month_grid_feed_in_energy",
    "energy",
  ),
  sensor(
    "grid_purchase_month",
    "Grid purchase this month",
    "common/GRID/month_grid_power_purchase_energy",
    "energy",
  ),

  sensor("load_power_common", "Load power (common)", "common/LOAD/load_power", "power", duplicate),
  sensor(
    "load_consumption_today",
    "Load consumption today",
    "common/LOAD/today_load_consumption_sum",
    "energy",
  ),
  sensor(
    "load_consumption_month",
    "Load consumption this month",
    "common/LOAD/month_load_consumption_sum",
    "energy",
  ),
  sensor(
    "direct_consumption_today",
    "PV direct consumption today",
    "common/LOAD/today_pv_direct_consumption_enegy",
    "energy",
  ),
  sensor(
    "direct_consumption_month",
    "PV direct consumption this month",
    "common/LOAD/month_pv_direct_consumption_energy",
    "energy",
  ),

  sensor("feed_in_limit", "Feed-in limit", "common/PCS/feed_in_limitation", "percent", diagnostic),
  sensor("inverter_state", "Inverter state", "common/PCS/pcs_stauts", "text", diagnostic),
  sensor(
    "inverter_operation_mode",
    "Inverter operation mode",
    "common/PCS/operation_mode",
    "text",
    diagnostic,
  ),

  sensor("pms_version", "PMS version", "systeminfo/version/pms_version", "text", diagnostic),
  sensor("pcs_version", "PCS version", "systeminfo/version/pcs_version", "text", diagnostic),
  sensor("bms_version", "BMS version", "systeminfo/version/bms_version", "text", diagnostic),

  {
    id: "system",
    platform: "switch",
    name: "System",
    source: "home/operation/status",
    control: "active",
    on: "start",
    off: "stop",
  },
  {
    id: "winter_mode",
    platform: "switch",
    name: "Winter mode",
    source: "common/BATT/winter_setting",
    control: "winter_mode",
    on: "on",
    off: "off",
    setting: true,
  },
  {
    id: "fast_charge",
    platform: "switch",
    name: "Fast charge",
    source: "batt/alg_setting",
    control: "fastcharge",
    valueMap: Object.fromEntries(
      Object.entries(ALG_SETTING_STRATEGIES).map(([value, strategy]) => [
        value,
        strategy === "fast_charge" ? "on" : "off",
      ]),
    ),
    on: "on",
    off: "off",
    setting: true,
  },
  {
    id: "charge_strategy",
    platform: "select",
    name: "Charge strategy",
    source: "batt/alg_setting",
    control: "charge_strategy",
    options: CHARGE_STRATEGY_OPTIONS,
    classicOptions: CLASSIC_STRATEGIES.map((r) => r.option),
    valueMap: ALG_SETTING_STRATEGIES,
    setting: true,
  },
  // Some firmware has a third backup mode, `simple`; it is on all the same.
  {
    id: "backup_mode",
    platform: "switch",
    name: "Backup mode",
    source: "batt/backup_setting",
    control: "backup_mode",
    valueMap: { simple: "on" },
    on: "on",
    off: "off",
    setting: true,
  },
  {
    id: "backup_reserve",
    platform: "number",
    name: "Backup reserve",
    source: "batt/backup_soc",
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
