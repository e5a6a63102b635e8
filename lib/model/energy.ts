/**
 * Energy counters for models whose live answer has none (the ESS Home 15): ess integrates the
 * polled power into today's and this month's Wh, from when it started (or midnight, or the first
 * of the month) on. The counters are marked `source: "integrated"`; a model that reports its
 * own counters keeps them (`source: "device"`).
 *
 * @module
 */
import type { EnergyCounter, EnergyName, Family, Reading } from "./reading.ts";

/** The families whose live answer has no energy counters, so that ess integrates them. */
export const INTEGRATED_FAMILIES: readonly Family[] = ["home15"];

/** A gap between polls longer than this (ms) is not integrated: the device was not watched. */
export const MAX_INTEGRATION_GAP_MS = 300_000;

/** The counters integrated from power, and the part of the power each counts. */
const FLOWS: readonly [EnergyName, (p: Reading["power"]) => number | undefined][] = [
  ["pvGeneration", (p) => p.pvW],
  ["loadConsumption", (p) => p.loadW],
  ["gridPurchase", (p) => p.gridW === undefined ? undefined : Math.max(p.gridW, 0)],
  ["gridFeedIn", (p) => p.gridW === undefined ? undefined : Math.max(-p.gridW, 0)],
  ["batteryDischarge", (p) => p.batteryW === undefined ? undefined : Math.max(p.batteryW, 0)],
  ["batteryCharge", (p) => p.batteryW === undefined ? undefined : Math.max(-p.batteryW, 0)],
];

const dayKey = (d: Date) => `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
const monthKey = (d: Date) => `${d.getFullYear()}-${d.getMonth() + 1}`;

/**
 * Integrates polled power into energy counters, by the local calendar of the process (`TZ`).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * const energy = new EnergyIntegrator();
 * const at = Date.UTC(2025, 5, 15, 12);
 * const reading = (pvW: number) => ({
 *   family: "home15" as const, power: { pvW }, pvStrings: [], grid: { phases: [] },
 *   energy: {}, status: {}, settings: {}, versions: {}, unknownFields: [],
 * });
 * energy.add(reading(1000), at);
 * energy.add(reading(1000), at + 60_000);
 * // 1000 W for a minute: 16.7 Wh, shown as whole Wh.
 * deepEqual(energy.apply(reading(1000)).energy.pvGeneration, {
 *   source: "integrated", todayWh: 17, monthWh: 17,
 * });
 * ```
 */
export class EnergyIntegrator {
  #last: { at: number; power: Reading["power"] } | undefined;
  #day = "";
  #month = "";
  #today = new Map<EnergyName, number>();
  #thisMonth = new Map<EnergyName, number>();

  /** Adds the energy since the last reading (at `at`, ms since the epoch) to the counters. */
  add(reading: Reading, at: number): void {
    const date = new Date(at);
    if (dayKey(date) !== this.#day) {
      this.#day = dayKey(date);
      this.#today.clear();
    }
    if (monthKey(date) !== this.#month) {
      this.#month = monthKey(date);
      this.#thisMonth.clear();
    }
    const last = this.#last;
    this.#last = { at, power: reading.power };
    if (last === undefined) return;
    const dt = at - last.at;
    if (dt <= 0 || dt > MAX_INTEGRATION_GAP_MS) return;
    for (const [name, part] of FLOWS) {
      const before = part(last.power);
      const now = part(reading.power);
      if (before === undefined || now === undefined) continue;
      const wh = (before + now) / 2 * dt / 3_600_000;
      this.#today.set(name, (this.#today.get(name) ?? 0) + wh);
      this.#thisMonth.set(name, (this.#thisMonth.get(name) ?? 0) + wh);
    }
  }

  /**
   * `reading` with the integrated counters, for a family of {@link INTEGRATED_FAMILIES} (any
   * other is left as it is: its counters are the device's).
   */
  apply(reading: Reading): Reading {
    if (!INTEGRATED_FAMILIES.includes(reading.family) || this.#last === undefined) return reading;
    const energy: Reading["energy"] = {};
    for (const [name, part] of FLOWS) {
      if (part(reading.power) === undefined && !this.#today.has(name)) continue;
      const counter: EnergyCounter = {
        source: "integrated",
        todayWh: Math.round(this.#today.get(name) ?? 0),
        monthWh: Math.round(this.#thisMonth.get(name) ?? 0),
      };
      energy[name] = counter;
    }
    return { ...reading, energy };
  }
}
