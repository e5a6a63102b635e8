/**
 * The surplus of a site of several devices: each device's own surplus, from its own polls, and
 * the site's, the sum of its devices'. A rule follows one of them (`surplus.<rule>.device`): a
 * device's rule sees only that device's power, a site rule the whole site's.
 *
 * The site's surplus adds up each device's surplus (each battery's charging counts at or above
 * the priority SoC by its own SoC) and keeps the reserve back once. It is known only while every
 * device's latest poll answered: a sum that leaves a device out could switch a load on power
 * that is not there. While a device does not answer, the site's rules hold, as a device's rules
 * do while it does not answer; once the site's surplus has been unknown for the grace period,
 * they go off ("garage offline for 30 s (grace 30 s): off").
 *
 * @module
 */
import { siteReading } from "../model/site.ts";
import type { Reading } from "../model/reading.ts";
import { SurplusEngine, type SurplusSample, type SurplusState } from "./engine.ts";
import { instantSurplus, type SurplusSettings } from "./power.ts";
import { type RuleSettings, SITE_SOURCE } from "./rule.ts";

/**
 * The site's surplus sample from each device's latest reading (`undefined`: its latest poll
 * failed, or it has not answered yet), in the order of `devices`.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import type { Reading } from "../model/reading.ts";
 * const reading = (gridW: number, batteryW: number, socPct: number) =>
 *   ({ power: { gridW, batteryW }, socPct, energy: {} }) as unknown as Reading;
 * const settings = { prioritySocPct: 80, reserveW: 100 };
 * // The garage feeds in 1000 W, the house charges 500 W at 90 % (it counts) and buys 200 W:
 * deepEqual(
 *   siteSample([["garage", reading(-1000, 0, 50)], ["house", reading(200, -500, 90)]], settings),
 *   { instantW: 1200, socPct: 70 },
 * );
 * deepEqual(
 *   siteSample([["garage", reading(-1000, 0, 50)], ["house", undefined]], settings),
 *   { offline: "house" },
 * );
 * ```
 */
export function siteSample(
  devices: readonly (readonly [name: string, reading: Reading | undefined])[],
  settings: Pick<SurplusSettings, "prioritySocPct" | "reserveW">,
): SurplusSample {
  const site = siteReading(devices);
  if (site.missing.length > 0) return { offline: site.missing.join(", ") };
  const each = { prioritySocPct: settings.prioritySocPct, reserveW: 0 };
  let sum: number | undefined = -settings.reserveW;
  for (const [, reading] of devices) {
    const watts = instantSurplus(reading!, each);
    sum = watts === undefined || sum === undefined ? undefined : sum + watts;
  }
  return {
    ...(sum === undefined ? {} : { instantW: sum }),
    ...(site.socPct === undefined ? {} : { socPct: site.socPct }),
  };
}

/** What a {@link SiteSurplusEngine} is made of. */
export interface SiteSurplusOptions {
  surplus: SurplusSettings;
  /** Every rule; each follows the device its `device` names, or the site (absent or `site`). */
  rules: readonly RuleSettings[];
  /** The devices' names, in config order. */
  devices: readonly string[];
  /** The poller's offline rule: after this long without a surplus, rules go off; in ms. */
  graceMs: number;
}

/** A device's state and the site's after one of the device's polls. */
export interface SiteSurplusUpdate {
  device: SurplusState;
  site: SurplusState;
}

/**
 * The surplus engines of a site: one per device, with the rules that follow it, and one for the
 * site, with the rules that follow the site. Pure, as {@link SurplusEngine}: time comes with
 * each poll.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import type { Reading } from "../model/reading.ts";
 * const feedIn = (w: number) => ({ power: { gridW: -w }, energy: {} }) as unknown as Reading;
 * const engines = new SiteSurplusEngine({
 *   surplus: { prioritySocPct: 80, reserveW: 100, windowMs: 60_000 },
 *   rules: [],
 *   devices: ["garage", "house"],
 *   graceMs: 30_000,
 * });
 * equal(engines.update("garage", 0, feedIn(1000)).site.powerW, undefined);
 * const { device, site } = engines.update("house", 1_000, feedIn(500));
 * equal(device.powerW, 400);
 * equal(site.powerW, 1400);
 * ```
 */
export class SiteSurplusEngine {
  /** Each device's engine, by name. */
  readonly devices: ReadonlyMap<string, SurplusEngine>;
  /** The site's engine. */
  readonly site: SurplusEngine;
  readonly #latest = new Map<string, Reading | undefined>();
  readonly #names: readonly string[];
  readonly #settings: SurplusSettings;
  #lastAt = -Infinity;

  /** Engines with their rules all off; a rule naming a device not in `devices` is an error. */
  constructor(options: SiteSurplusOptions) {
    const { surplus, graceMs } = options;
    this.#names = options.devices;
    this.#settings = { ...surplus };
    for (const rule of options.rules) {
      const source = rule.device ?? SITE_SOURCE;
      if (source !== SITE_SOURCE && !this.#names.includes(source)) {
        throw new RangeError(`rule ${rule.name} follows ${source}, which is not a device`);
      }
    }
    const rulesOf = (source: string) =>
      options.rules.filter((r) => (r.device ?? SITE_SOURCE) === source);
    this.devices = new Map(this.#names.map((name) => [
      name,
      new SurplusEngine({ surplus, rules: rulesOf(name), graceMs }),
    ]));
    this.site = new SurplusEngine({ surplus, rules: rulesOf(SITE_SOURCE), graceMs });
  }

  /**
   * Takes one poll of device `name` at `at`: its reading, or `undefined` when the poll failed.
   * Moves that device's engine and the site's on. The devices poll on their own clocks: an `at`
   * before the site's last one counts as that one.
   */
  update(name: string, at: number, reading: Reading | undefined): SiteSurplusUpdate {
    const engine = this.devices.get(name);
    if (engine === undefined) throw new RangeError(`${name} is not a device of the site`);
    this.#latest.set(name, reading);
    const device = engine.update(at, reading);
    this.#lastAt = Math.max(this.#lastAt, at);
    const sample = siteSample(
      this.#names.map((n) => [n, this.#latest.get(n)] as const),
      this.#settings,
    );
    return { device, site: this.site.take(this.#lastAt, sample) };
  }
}
