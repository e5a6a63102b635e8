/**
 * The reading's MQTT topic layout, the same on every model, in SI units: one place that the
 * bridge publishes from and Home Assistant discovery points at.
 *
 * | topic below `<prefix>/reading/` | payload |
 * |---|---|
 * | `power/pv`, `power/load`, `power/battery`, `power/grid` | W (battery + discharging, grid + buying) |
 * | `battery/soc` | % |
 * | `pv/<n>/power`, `pv/<n>/voltage`, `pv/<n>/current` | W, V, A (strings from 1) |
 * | `pv/capacity` | W |
 * | `grid/frequency` | Hz |
 * | `grid/<a\|b\|c>/voltage`, `grid/<a\|b\|c>/power` | V, W |
 * | `energy/<counter>/today`, `energy/<counter>/month` | Wh |
 * | `self_consumption/today` | % |
 * | `status/running`, `status/winter_active`, `status/battery_charging`, `status/grid_selling` | `on`/`off` |
 * | `status/operating_mode`, `status/inverter`, `status/battery` | words |
 * | `settings/winter_mode`, `settings/backup_mode`, `settings/grid_charge` | `on`/`off` |
 * | `settings/charge_strategy` | `battery_care`, `fast_charge`, `weather_forecast` |
 * | `settings/reserve`, `settings/backup_reserve`, `settings/winter_reserve`, `settings/feed_in_limit` | % |
 * | `settings/winter_start`, `settings/winter_stop` | `MMDD` |
 * | `info/model`, `info/serial`, `info/family` | text |
 * | `version/pms`, `version/pcs`, `version/bms` | text |
 *
 * `<counter>` is one of {@link ENERGY_TOPIC_NAMES}. A value the model does not report has no
 * topic.
 *
 * @module
 */
import { CHARGE_STRATEGY_TABLE } from "../device/vocabulary.ts";
import type { EnergyName, Reading } from "./reading.ts";

/** The topic segment below `<prefix>/` that the reading lives under. */
export const READING_TOPIC = "reading";

/** The energy counters' topic names. */
export const ENERGY_TOPIC_NAMES: Readonly<Record<EnergyName, string>> = {
  pvGeneration: "pv_generation",
  loadConsumption: "load_consumption",
  pvDirectConsumption: "pv_direct_consumption",
  gridFeedIn: "grid_feed_in",
  gridPurchase: "grid_purchase",
  batteryCharge: "battery_charge",
  batteryDischarge: "battery_discharge",
};

/** Units of the reading's topics, by pattern (`#` a PV string's number or a phase letter). */
const UNITS: readonly [RegExp, string][] = [
  [/^power\//, "W"],
  [/^battery\/soc$/, "%"],
  [/^pv\/\d+\/power$/, "W"],
  [/^pv\/\d+\/voltage$/, "V"],
  [/^pv\/\d+\/current$/, "A"],
  [/^pv\/capacity$/, "W"],
  [/^grid\/frequency$/, "Hz"],
  [/^grid\/[abc]\/voltage$/, "V"],
  [/^grid\/[abc]\/power$/, "W"],
  [/^energy\//, "Wh"],
  [/^self_consumption\//, "%"],
  [/^settings\/(reserve|backup_reserve|winter_reserve|feed_in_limit)$/, "%"],
];

/**
 * The unit of a reading topic (`power/pv` → `W`), or `undefined` for words, switches and text.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(["power/grid", "pv/2/current", "energy/grid_feed_in/month", "status/battery"]
 *   .map(readingUnit), ["W", "A", "Wh", undefined]);
 * ```
 */
export function readingUnit(topic: string): string | undefined {
  return UNITS.find(([pattern]) => pattern.test(topic))?.[1];
}

const onOff = (v: boolean | undefined) => v === undefined ? undefined : v ? "on" : "off";
const number = (v: number | undefined) => v === undefined ? undefined : String(v);

/**
 * The reading's topics below `<prefix>/reading/` (`power/pv`) and their payloads, in the
 * layout of this module; values the reading lacks are left out.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * const reading = {
 *   family: "home15" as const, power: { loadW: 700, gridW: -200 }, socPct: 63,
 *   pvStrings: [{ index: 1, voltageV: 312 }], grid: { phases: [] }, energy: {},
 *   status: { running: true }, settings: { chargeStrategy: "fast-charge" as const },
 *   versions: {}, unknownFields: [],
 * };
 * deepEqual(readingTopics(reading), [
 *   ["power/load", "700"], ["power/grid", "-200"], ["battery/soc", "63"],
 *   ["pv/1/voltage", "312"], ["status/running", "on"],
 *   ["settings/charge_strategy", "fast_charge"], ["info/family", "home15"],
 * ]);
 * ```
 */
export function readingTopics(reading: Reading): [string, string][] {
  const { power, grid, status, settings, versions } = reading;
  const strategy = CHARGE_STRATEGY_TABLE.find((r) => r.name === settings.chargeStrategy)?.option;
  const entries: [string, string | undefined][] = [
    ["power/pv", number(power.pvW)],
    ["power/load", number(power.loadW)],
    ["power/battery", number(power.batteryW)],
    ["power/grid", number(power.gridW)],
    ["battery/soc", number(reading.socPct)],
    ...reading.pvStrings.flatMap((s): [string, string | undefined][] => [
      [`pv/${s.index}/power`, number(s.powerW)],
      [`pv/${s.index}/voltage`, number(s.voltageV)],
      [`pv/${s.index}/current`, number(s.currentA)],
    ]),
    ["pv/capacity", number(reading.pvCapacityW)],
    ["grid/frequency", number(grid.frequencyHz)],
    ...grid.phases.flatMap((p): [string, string | undefined][] => [
      [`grid/${p.phase}/voltage`, number(p.voltageV)],
      [`grid/${p.phase}/power`, number(p.powerW)],
    ]),
    ...(Object.entries(ENERGY_TOPIC_NAMES) as [EnergyName, string][]).flatMap((
      [name, topic],
    ): [string, string | undefined][] => [
      [`energy/${topic}/today`, number(reading.energy[name]?.todayWh)],
      [`energy/${topic}/month`, number(reading.energy[name]?.monthWh)],
    ]),
    ["self_consumption/today", number(reading.selfConsumptionTodayPct)],
    ["status/running", onOff(status.running)],
    ["status/winter_active", onOff(status.winterActive)],
    ["status/battery_charging", onOff(status.batteryCharging)],
    ["status/grid_selling", onOff(status.gridSelling)],
    ["status/operating_mode", status.operatingMode?.word],
    ["status/inverter", status.inverterStatus?.word],
    ["status/battery", status.batteryStatus?.word],
    ["settings/winter_mode", onOff(settings.winterMode)],
    ["settings/backup_mode", onOff(settings.backupMode)],
    ["settings/grid_charge", onOff(settings.gridCharge)],
    ["settings/charge_strategy", strategy],
    ["settings/reserve", number(settings.reservePct)],
    ["settings/backup_reserve", number(settings.backupReservePct)],
    ["settings/winter_reserve", number(settings.winterReservePct)],
    ["settings/feed_in_limit", number(settings.feedInLimitPct)],
    ["settings/winter_start", settings.winterStart],
    ["settings/winter_stop", settings.winterStop],
    ["info/model", reading.model],
    ["info/serial", reading.serial],
    ["info/family", reading.family],
    ["version/pms", versions.pms],
    ["version/pcs", versions.pcs],
    ["version/bms", versions.bms],
  ];
  return entries.filter((e): e is [string, string] => e[1] !== undefined);
}
