/**
 * The site: several devices of one household summed, for the dashboard's site view, the API's
 * `site`, the surplus of the whole site and its metrics. Only what adds up is summed (power,
 * energy counters); the state of charge is the mean of the devices' (ess does not know their
 * capacities). A device without a current reading leaves the site, which says so in `missing`,
 * rather than counting it as zero.
 *
 * @module
 */
import type { EnergyName, Reading } from "./reading.ts";

/** The sum of several devices' readings. */
export interface SiteReading {
  /** Live power flows in W, with the signs of {@link Reading.power}; a flow is summed only when every counted device has it. */
  power: {
    pvW?: number;
    loadW?: number;
    batteryW?: number;
    gridW?: number;
  };
  /** Mean state of charge of the counted devices that report one, 0–100 %. */
  socPct?: number;
  /** Today's energy in Wh per counter, where every counted device has it. */
  energyTodayWh: Partial<Record<EnergyName, number>>;
  /** The devices summed, by name, in the order given. */
  counted: string[];
  /** The devices left out, with no current reading (down, or not yet read). */
  missing: string[];
}

const FLOWS = ["pvW", "loadW", "batteryW", "gridW"] as const;

/** Sums `values` if none is missing (and there is at least one), else `undefined`. */
function total(values: readonly (number | undefined)[]): number | undefined {
  if (values.length === 0 || values.some((v) => v === undefined)) return undefined;
  return values.reduce<number>((sum, v) => sum + v!, 0);
}

/**
 * The site's reading from each device's current one (`undefined` for a device that is down or
 * not read yet), in the order of `devices`.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import type { Reading } from "./reading.ts";
 * const reading = (pvW: number, socPct: number) =>
 *   ({ family: "home10-new", power: { pvW }, socPct, pvStrings: [], grid: { phases: [] },
 *      energy: {}, status: {}, settings: {}, versions: {}, unknownFields: [] }) as unknown as Reading;
 * const site = siteReading([
 *   ["garage", reading(1200, 40)], ["house", reading(800, 60)], ["shed", undefined],
 * ]);
 * deepEqual(site.power, { pvW: 2000 });
 * deepEqual([site.socPct, site.counted, site.missing], [50, ["garage", "house"], ["shed"]]);
 * ```
 */
export function siteReading(
  devices: readonly (readonly [name: string, reading: Reading | undefined])[],
): SiteReading {
  const present = devices.filter((d): d is readonly [string, Reading] => d[1] !== undefined);
  const readings = present.map(([, r]) => r);
  const power: SiteReading["power"] = {};
  for (const flow of FLOWS) {
    const sum = total(readings.map((r) => r.power[flow]));
    if (sum !== undefined) power[flow] = sum;
  }
  const socs = readings.map((r) => r.socPct).filter((v): v is number => v !== undefined);
  const energyTodayWh: SiteReading["energyTodayWh"] = {};
  const names = new Set(readings.flatMap((r) => Object.keys(r.energy) as EnergyName[]));
  for (const name of names) {
    const sum = total(readings.map((r) => r.energy[name]?.todayWh));
    if (sum !== undefined) energyTodayWh[name] = sum;
  }
  return {
    power,
    ...(socs.length === 0 ? {} : { socPct: socs.reduce((a, b) => a + b, 0) / socs.length }),
    energyTodayWh,
    counted: present.map(([name]) => name),
    missing: devices.filter((d) => d[1] === undefined).map(([name]) => name),
  };
}
