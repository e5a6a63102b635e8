/**
 * The surplus engine: fed one normalised reading per poll (or word that the poll failed), it
 * keeps the averaged surplus and moves every rule on. Pure: time comes with each update, so a
 * fake clock drives a whole day in a test.
 *
 * @module
 */
import type { Reading } from "../model/reading.ts";
import { instantSurplus, type SurplusSettings, SurplusWindow } from "./power.ts";
import { Rule, type RuleSettings, type RuleStatus } from "./rule.ts";

/** The surplus and every rule after an update. */
export interface SurplusState {
  /** When, in ms. */
  at: number;
  /** The averaged surplus in W; absent while unknown. */
  powerW?: number;
  /** The latest reading's own surplus in W; absent when it had none. */
  instantW?: number;
  /** Whether the surplus has been unknown past the grace period (rules are off). */
  failSafe: boolean;
  rules: RuleStatus[];
}

/**
 * One poll's surplus as the engine takes it ({@link SurplusEngine.take}): a device's reading
 * gives it through {@link SurplusEngine.update}; the site's is the sum of its devices'.
 */
export interface SurplusSample {
  /** The poll's own surplus in W; absent when it has none (no grid power, or no answer). */
  instantW?: number | undefined;
  /** The battery SoC the rules' minimum SoC is judged by, in %; absent: keep the last one. */
  socPct?: number | undefined;
  /**
   * What does not answer, when that is why the surplus is unknown: `device` for a device's own
   * engine, the device's name for the site's. Absent: it answered (without the grid power).
   */
  offline?: string | undefined;
}

/** What a {@link SurplusEngine} is made of. */
export interface SurplusEngineOptions {
  surplus: SurplusSettings;
  rules: readonly RuleSettings[];
  /**
   * Once the surplus has been unknown this long (the device offline, or answering without the
   * grid power), every rule goes off; in ms.
   */
  graceMs: number;
}

/**
 * Keeps the surplus and the rules.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const engine = new SurplusEngine({
 *   surplus: { prioritySocPct: 80, reserveW: 100, windowMs: 60_000 },
 *   rules: [],
 *   graceMs: 30_000,
 * });
 * const reading = { power: { gridW: -2100, batteryW: 0 }, socPct: 100 };
 * equal(engine.update(0, reading).powerW, 2000);
 * equal(engine.update(10_000, undefined).powerW, 2000);
 * equal(engine.update(40_000, undefined).powerW, undefined);
 * ```
 */
export class SurplusEngine {
  #settings: SurplusSettings;
  readonly #window: SurplusWindow;
  readonly #rules: Rule[];
  readonly #graceMs: number;
  /** When the last usable sample (or the first update) came, in ms. */
  #lastKnown: number | undefined;
  /** The latest SoC a reading gave; a failed poll keeps it. */
  #socPct: number | undefined;
  #state: SurplusState = { at: 0, failSafe: false, rules: [] };

  /** An engine with its rules all off. */
  constructor(options: SurplusEngineOptions) {
    this.#settings = { ...options.surplus };
    this.#window = new SurplusWindow(options.surplus.windowMs);
    this.#rules = options.rules.map((r) => new Rule(r));
    this.#graceMs = options.graceMs;
    this.#state.rules = this.#rules.map((r) => r.status);
  }

  /** The state after the last update. */
  get state(): SurplusState {
    return this.#state;
  }

  /** How the surplus is computed. */
  get settings(): Readonly<SurplusSettings> {
    return this.#settings;
  }

  /** Every rule's settings, in order. */
  get rules(): RuleSettings[] {
    return this.#rules.map((r) => r.settings);
  }

  /** Changes a rule's settings, keeping its state; `false` when there is no rule of that name. */
  setRule(settings: RuleSettings): boolean {
    const rule = this.#rules.find((r) => r.settings.name === settings.name);
    if (!rule) return false;
    rule.settings = settings;
    return true;
  }

  /**
   * Takes one poll at `at`: its reading, or `undefined` when the poll failed. Returns the new
   * state. `at` must not go back.
   */
  update(at: number, reading: Pick<Reading, "power" | "socPct"> | undefined): SurplusState {
    return this.take(
      at,
      reading === undefined
        ? { offline: "device" }
        : { instantW: instantSurplus(reading, this.#settings), socPct: reading.socPct },
    );
  }

  /**
   * Takes one poll's surplus at `at`, computed elsewhere (the site's, from its devices); returns
   * the new state. `at` must not go back.
   *
   * @example
   * ```ts
   * import { equal } from "node:assert/strict";
   * const engine = new SurplusEngine({
   *   surplus: { prioritySocPct: 80, reserveW: 100, windowMs: 60_000 },
   *   rules: [{
   *     name: "heater", onWatts: 1500, offWatts: 0, loadWatts: 0, onDelaySeconds: 0,
   *     offDelaySeconds: 0, minOnSeconds: 0, minOffSeconds: 0, minSoc: 0,
   *   }],
   *   graceMs: 30_000,
   * });
   * equal(engine.take(0, { instantW: 2000, socPct: 90 }).rules[0]?.on, true);
   * equal(engine.take(30_000, { offline: "garage" }).rules[0]?.why,
   *   "garage offline for 30 s (grace 30 s): off");
   * ```
   */
  take(at: number, sample: SurplusSample): SurplusState {
    this.#lastKnown ??= at;
    const { instantW, offline } = sample;
    if (instantW !== undefined) {
      const on = new Set(this.#rules.filter((r) => r.on).map((r) => r.settings.name));
      this.#window.add({ at, watts: instantW, on });
      this.#lastKnown = at;
    }
    const unknownFor = at - this.#lastKnown;
    const failSafe = unknownFor >= this.#graceMs && instantW === undefined
      ? {
        offline: offline !== undefined,
        ...(offline === undefined ? {} : { what: offline }),
        forMs: unknownFor,
        graceMs: this.#graceMs,
      }
      : undefined;
    if (sample.socPct !== undefined) this.#socPct = sample.socPct;
    if (failSafe) {
      this.#window.clear();
      this.#socPct = undefined;
    }
    const powerW = this.#window.mean(at);
    const socPct = this.#socPct;
    const rules = this.#rules.map((rule) =>
      rule.step({
        at,
        availableW: this.#window.mean(at, rule.settings.name, rule.settings.loadWatts),
        socPct,
        failSafe,
      })
    );
    this.#state = {
      at,
      ...(powerW === undefined ? {} : { powerW }),
      ...(instantW === undefined ? {} : { instantW }),
      failSafe: failSafe !== undefined,
      rules,
    };
    return this.#state;
  }
}
