/**
 * `ess surplus`: the surplus of one reading, term by term, and what each rule would do with it,
 * for tuning the thresholds without waiting for the daemons' window and delays.
 *
 * @module
 */
import type { Reading } from "../model/reading.ts";
import { instantSurplus, type SurplusSettings } from "./power.ts";
import { Rule, type RuleSettings } from "./rule.ts";
import { siteSample } from "./site.ts";

/** What one rule would do with the surplus now. */
export interface RuleVerdict {
  name: string;
  /** Whether it would be on, once its on delay (or off delay) had passed. */
  on: boolean;
  /** Why, with the delay it would wait for. */
  why: string;
}

/** The surplus of one reading, explained. */
export interface SurplusExplanation {
  /** In W; absent when the reading has no grid power. */
  watts?: number;
  /** The formula with this reading's numbers. */
  terms: string;
  rules: RuleVerdict[];
}

const w = (watts: number) => `${Math.round(watts)} W`;

/**
 * Explains the surplus of `reading` and judges each rule as if it were off (on, for a rule whose
 * load the reading already shows, is a question of its off threshold: see the daemons).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const e = explainSurplus(
 *   { power: { gridW: -1200, batteryW: -520 }, socPct: 92 },
 *   { prioritySocPct: 80, reserveW: 100 },
 *   [],
 * );
 * equal(e.watts, 1620);
 * equal(e.terms, "feed-in 1200 W + charging 520 W at SoC 92 % ≥ 80 % − reserve 100 W");
 * ```
 */
export function explainSurplus(
  reading: Pick<Reading, "power" | "socPct">,
  settings: Pick<SurplusSettings, "prioritySocPct" | "reserveW">,
  rules: readonly RuleSettings[],
): SurplusExplanation {
  const watts = instantSurplus(reading, settings);
  const { gridW, batteryW = 0 } = reading.power;
  const soc = reading.socPct;
  const terms: string[] = [];
  if (gridW === undefined) terms.push("no grid power in the reading: unknown");
  else terms.push(gridW <= 0 ? `feed-in ${w(-gridW)}` : `− purchase ${w(gridW)}`);
  const socText = soc === undefined ? "SoC unknown" : `SoC ${Math.round(soc)} %`;
  if (batteryW < 0) {
    terms.push(
      soc !== undefined && soc >= settings.prioritySocPct
        ? `+ charging ${w(-batteryW)} at ${socText} ≥ ${settings.prioritySocPct} %`
        : `(charging ${w(-batteryW)} kept: ${socText} < ${settings.prioritySocPct} %)`,
    );
  } else if (batteryW > 0) terms.push(`− discharging ${w(batteryW)}`);
  terms.push(`− reserve ${w(settings.reserveW)}`);
  return {
    ...(watts === undefined ? {} : { watts }),
    terms: terms.join(" "),
    rules: verdicts(rules, watts, soc),
  };
}

/** What each rule would do with `watts` at `socPct`, as if it were off. */
function verdicts(
  rules: readonly RuleSettings[],
  watts: number | undefined,
  socPct: number | undefined,
): RuleVerdict[] {
  return rules.map((settingsOfRule) => {
    const rule = new Rule({ ...settingsOfRule, onDelaySeconds: 0, minOffSeconds: 0 });
    const status = rule.step({ at: 0, availableW: watts, socPct });
    const delay = settingsOfRule.onDelaySeconds;
    return status.on
      ? {
        name: status.name,
        on: true,
        why: `would switch on: ${status.why.replace(/: switched on$/, "")}` +
          (delay > 0 ? ` (after ${delay} s)` : ""),
      }
      : { name: status.name, on: false, why: `would stay off: ${status.why}` };
  });
}

/** The site's surplus of one reading per device, explained. */
export interface SiteSurplusExplanation extends SurplusExplanation {
  /** Each device's part, without the reserve (kept back once, for the site). */
  devices: { name: string; watts?: number; terms: string }[];
}

/**
 * Explains the site's surplus, the sum of its devices' (each by its own SoC) less the reserve,
 * and judges each rule (those that follow the site) as if it were off, with the devices' mean
 * SoC for their minimum SoC.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import type { Reading } from "../model/reading.ts";
 * const reading = (gridW: number, batteryW: number, socPct: number) =>
 *   ({ power: { gridW, batteryW }, socPct, energy: {} }) as unknown as Reading;
 * const e = explainSiteSurplus(
 *   [["garage", reading(-1200, 0, 50)], ["house", reading(0, -520, 92)]],
 *   { prioritySocPct: 80, reserveW: 100 },
 *   [],
 * );
 * equal(e.watts, 1620);
 * equal(e.terms, "garage 1200 W + house 520 W − reserve 100 W");
 * equal(e.devices[1]?.terms, "feed-in 0 W + charging 520 W at SoC 92 % ≥ 80 %");
 * ```
 */
export function explainSiteSurplus(
  devices: readonly (readonly [name: string, reading: Reading])[],
  settings: Pick<SurplusSettings, "prioritySocPct" | "reserveW">,
  rules: readonly RuleSettings[],
): SiteSurplusExplanation {
  const sample = siteSample(devices, settings);
  const each = devices.map(([name, reading]) => {
    const e = explainSurplus(reading, { ...settings, reserveW: 0 }, []);
    return {
      name,
      ...(e.watts === undefined ? {} : { watts: e.watts }),
      terms: e.terms.replace(/ − reserve 0 W$/, ""),
    };
  });
  const parts = each.map((d, i) => {
    const sign = d.watts !== undefined && d.watts < 0 ? "−" : "+";
    const value = d.watts === undefined ? "unknown" : w(Math.abs(d.watts));
    return `${i === 0 && sign === "+" ? "" : `${sign} `}${d.name} ${value}`;
  });
  return {
    ...(sample.instantW === undefined ? {} : { watts: sample.instantW }),
    terms: `${parts.join(" ")} − reserve ${w(settings.reserveW)}`,
    devices: each,
    rules: verdicts(rules, sample.instantW, sample.socPct),
  };
}
