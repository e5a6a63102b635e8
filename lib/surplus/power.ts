/**
 * Surplus power: how much the house could spend on a switched load without buying from the grid
 * or taking from a battery that still has to fill. One formula, from the normalised reading:
 *
 * ```
 * surplus = feed-in − purchase − discharge + (charge, once SoC ≥ priority SoC) − reserve
 *         = −gridW − max(0, batteryW) + (socPct ≥ prioritySocPct ? max(0, −batteryW) : 0) − reserveW
 * ```
 *
 * Below the priority SoC only the export counts: the battery keeps what it charges with. A
 * discharging battery always counts against the surplus, whatever its SoC. The value is averaged
 * over a window, so that a passing cloud does not switch a load; it is unknown (`undefined`),
 * never zero, while there is no reading to compute it from.
 *
 * @module
 */
import type { Reading } from "../model/reading.ts";

/** How the surplus is computed. */
export interface SurplusSettings {
  /** At or above this SoC (%), what the battery charges with counts as surplus. */
  prioritySocPct: number;
  /** Kept back from the surplus as a margin, in W. */
  reserveW: number;
  /** The surplus is the mean over this long, in ms. */
  windowMs: number;
}

/** The defaults: 80 %, 100 W, 60 s. */
export const DEFAULT_SURPLUS_SETTINGS: Readonly<SurplusSettings> = {
  prioritySocPct: 80,
  reserveW: 100,
  windowMs: 60_000,
};

/**
 * The surplus of one reading in W (negative: a switched load would buy or discharge), or
 * `undefined` when the reading has no grid power. A reading without battery power counts its
 * battery as idle; one without a SoC counts it as below the priority SoC.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const settings = { prioritySocPct: 80, reserveW: 100, windowMs: 60_000 };
 * // Feeding in 1200 W while the battery charges with 800 W at 90 %:
 * const reading = { power: { gridW: -1200, batteryW: -800 }, socPct: 90 };
 * equal(instantSurplus(reading, settings), 1900);
 * // At 50 % the battery keeps its 800 W:
 * equal(instantSurplus({ ...reading, socPct: 50 }, settings), 1100);
 * ```
 */
export function instantSurplus(
  reading: Pick<Reading, "power" | "socPct">,
  settings: Pick<SurplusSettings, "prioritySocPct" | "reserveW">,
): number | undefined {
  const { gridW, batteryW = 0 } = reading.power;
  if (gridW === undefined || !Number.isFinite(gridW) || !Number.isFinite(batteryW)) {
    return undefined;
  }
  const charging = Math.max(0, -batteryW);
  const discharging = Math.max(0, batteryW);
  const atPriority = reading.socPct !== undefined && reading.socPct >= settings.prioritySocPct;
  return -gridW - discharging + (atPriority ? charging : 0) - settings.reserveW;
}

/** One poll's surplus, and which rules were on while it was measured. */
export interface SurplusSample {
  /** When it was measured, in ms. */
  at: number;
  /** Its surplus in W. */
  watts: number;
  /** The rules that were on while it was measured (their loads were drawing). */
  on: ReadonlySet<string>;
}

/** At most this many samples are kept, however short the poll interval and long the window. */
export const MAX_SAMPLES = 4096;

/**
 * The samples of the last window. Each remembers which rules were on, so that a rule can add
 * its load back to exactly the samples its load was drawing in.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const window = new SurplusWindow(60_000);
 * window.add({ at: 0, watts: 1000, on: new Set() });
 * window.add({ at: 30_000, watts: 0, on: new Set(["heater"]) });
 * equal(window.mean(30_000), 500);
 * equal(window.mean(30_000, "heater", 1000), 1000);
 * equal(window.mean(90_000), undefined);
 * ```
 */
export class SurplusWindow {
  readonly #samples: SurplusSample[] = [];
  readonly #windowMs: number;

  /** A window `windowMs` long. */
  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  /** Adds a sample, dropping those that fell out of the window (and the oldest past the cap). */
  add(sample: SurplusSample): void {
    this.#samples.push(sample);
    this.#drop(sample.at);
    if (this.#samples.length > MAX_SAMPLES) this.#samples.shift();
  }

  /** Forgets every sample (the device went offline: what it said no longer holds). */
  clear(): void {
    this.#samples.length = 0;
  }

  /**
   * The mean surplus of the samples in the window ending at `at`, with `loadW` added to those
   * measured while `rule` was on; `undefined` when the window holds none.
   */
  mean(at: number, rule?: string, loadW = 0): number | undefined {
    this.#drop(at);
    if (this.#samples.length === 0) return undefined;
    let sum = 0;
    for (const s of this.#samples) {
      sum += s.watts + (rule !== undefined && s.on.has(rule) ? loadW : 0);
    }
    return sum / this.#samples.length;
  }

  #drop(at: number): void {
    let stale = 0;
    while (stale < this.#samples.length && this.#samples[stale]!.at <= at - this.#windowMs) stale++;
    if (stale > 0) this.#samples.splice(0, stale);
  }
}
