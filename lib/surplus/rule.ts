/**
 * One switching rule: a load that goes on when the surplus has stayed at or above its on
 * threshold for its on delay, and off when it has stayed below its off threshold for its off
 * delay, never sooner than its minimum on and off times allow. While it is on, its own load is
 * added back to the surplus it compares, so that switching on does not by itself switch off.
 * Every step says why the rule is where it is.
 *
 * @module
 */

/** A rule's numbers, in the units its settings are written in. */
export interface RuleNumbers {
  /** Switch on at or above this surplus, in W. */
  onWatts: number;
  /** Switch off below this surplus (with the load added back), in W; at most `onWatts`. */
  offWatts: number;
  /** What the load draws while on, in W: added back to the surplus while the rule is on. */
  loadWatts: number;
  /** The surplus must stay at or above `onWatts` this long, in s. */
  onDelaySeconds: number;
  /** The surplus must stay below `offWatts` this long, in s. */
  offDelaySeconds: number;
  /** Once on, stay on at least this long, in s. */
  minOnSeconds: number;
  /** Once off, stay off at least this long, in s. */
  minOffSeconds: number;
  /** Only on at or above this battery SoC in % (0: no minimum). */
  minSoc: number;
}

/** Where ess switches a load itself: an MQTT topic and its two payloads (a Shelly or Tasmota plug). */
export interface RuleSwitch {
  topic: string;
  payloadOn: string;
  payloadOff: string;
}

/** What a rule's `device` says for a rule that follows the whole site (every device summed). */
export const SITE_SOURCE = "site";

/** One rule's settings. */
export interface RuleSettings extends RuleNumbers {
  /** Its name: lowercase letters, digits and `_` (it becomes a topic, an id and a label). */
  name: string;
  /** Optional direct switching. */
  switch?: RuleSwitch | undefined;
  /**
   * The power it follows where ess runs several devices: a device's name, or `site` (their
   * sum); absent with a single device, which every rule follows.
   */
  device?: string | undefined;
}

/** One number of a rule: its word in the config file, its unit, bounds and default. */
export interface RuleField {
  /** The word in the config file and on the command line (`on-watts`). */
  key: string;
  /** The property of {@link RuleNumbers}. */
  prop: keyof RuleNumbers;
  unit: "W" | "s" | "%";
  min: number;
  max: number;
  /** `undefined`: required. */
  default: number | undefined;
  /** What it means, for help and Home Assistant. */
  help: string;
}

/** Every number a rule has: the one table the config, the command line and Home Assistant use. */
export const RULE_FIELDS: readonly RuleField[] = [
  {
    key: "on-watts",
    prop: "onWatts",
    unit: "W",
    min: -100_000,
    max: 100_000,
    default: undefined,
    help: "switch on at or above this surplus",
  },
  {
    key: "off-watts",
    prop: "offWatts",
    unit: "W",
    min: -100_000,
    max: 100_000,
    default: 0,
    help: "switch off below this surplus (the load added back)",
  },
  {
    key: "load-watts",
    prop: "loadWatts",
    unit: "W",
    min: 0,
    max: 100_000,
    default: 0,
    help: "what the load draws, added back while it is on",
  },
  {
    key: "on-delay-seconds",
    prop: "onDelaySeconds",
    unit: "s",
    min: 0,
    max: 86_400,
    default: 60,
    help: "how long the surplus must stay above the on threshold",
  },
  {
    key: "off-delay-seconds",
    prop: "offDelaySeconds",
    unit: "s",
    min: 0,
    max: 86_400,
    default: 180,
    help: "how long the surplus must stay below the off threshold",
  },
  {
    key: "min-on-seconds",
    prop: "minOnSeconds",
    unit: "s",
    min: 0,
    max: 86_400,
    default: 0,
    help: "once on, stay on at least this long",
  },
  {
    key: "min-off-seconds",
    prop: "minOffSeconds",
    unit: "s",
    min: 0,
    max: 86_400,
    default: 0,
    help: "once off, stay off at least this long",
  },
  {
    key: "min-soc",
    prop: "minSoc",
    unit: "%",
    min: 0,
    max: 100,
    default: 0,
    help: "only on at or above this battery SoC (0: any)",
  },
];

/** Why a rule is where it is. */
export type RuleReason =
  /** No surplus known yet, or for a moment: the rule holds. */
  | "unknown"
  /** The device has been offline past the grace period: off. */
  | "offline"
  /** Off: the surplus is below the on threshold. */
  | "below-on"
  /** Off, or going off: the battery is below the rule's minimum SoC. */
  | "soc-low"
  /** Off: the surplus is high enough, the on delay runs. */
  | "on-delay"
  /** Off: the on delay is over, the minimum off time is not. */
  | "min-off"
  /** Switched on at this step. */
  | "switched-on"
  /** On: the surplus (with the load added back) is at or above the off threshold. */
  | "above-off"
  /** On: the surplus is below the off threshold, the off delay runs. */
  | "off-delay"
  /** On: the off delay is over, the minimum on time is not. */
  | "min-on"
  /** Switched off at this step. */
  | "switched-off";

/** A rule's state after a step. */
export interface RuleStatus {
  name: string;
  on: boolean;
  reason: RuleReason;
  /** The reason in words: `1620 W ≥ 1500 W, on in 40 s`. */
  why: string;
  /** The surplus the rule compared, with its load added back where it was on; W. */
  availableW?: number;
  /** When it last switched, in ms (absent: not since the start). */
  changedAt?: number;
}

/** What a rule is given at each step. */
export interface RuleInput {
  /** Now, in ms. */
  at: number;
  /** The averaged surplus with this rule's load added back; `undefined` while unknown. */
  availableW: number | undefined;
  /** The battery SoC of the latest reading. */
  socPct: number | undefined;
  /**
   * Set once the surplus has been unknown past the grace period: the rule goes off at once.
   * `offline` says whether the device stopped answering (or answers without the grid power).
   */
  failSafe?: {
    offline: boolean;
    /** What is offline, in words (`device`, or a device's name); `device` when absent. */
    what?: string;
    forMs: number;
    graceMs: number;
  } | undefined;
}

const watts = (w: number) => `${Math.round(w)} W`;
const seconds = (ms: number) => `${Math.ceil(ms / 1000)} s`;

/**
 * A rule and its state. {@link Rule.step} moves it on by one poll.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const rule = new Rule({
 *   name: "heater", onWatts: 1500, offWatts: 200, loadWatts: 2000, onDelaySeconds: 60,
 *   offDelaySeconds: 180, minOnSeconds: 0, minOffSeconds: 0, minSoc: 0,
 * });
 * equal(rule.step({ at: 0, availableW: 1600, socPct: 90 }).reason, "on-delay");
 * equal(rule.step({ at: 60_000, availableW: 1600, socPct: 90 }).on, true);
 * ```
 */
export class Rule {
  settings: RuleSettings;
  #on = false;
  #changedAt: number | undefined;
  /** Since when the rule has wanted to switch, in ms. */
  #wantsSince: number | undefined;
  #status: RuleStatus;

  /** A rule that starts off. */
  constructor(settings: RuleSettings) {
    this.settings = settings;
    this.#status = { name: settings.name, on: false, reason: "unknown", why: "no reading yet" };
  }

  /** Whether it is on. */
  get on(): boolean {
    return this.#on;
  }

  /** Its state after the last step. */
  get status(): RuleStatus {
    return this.#status;
  }

  /** Moves the rule on to `input.at`; returns its new state. */
  step(input: RuleInput): RuleStatus {
    this.#status = this.#decide(input);
    return this.#status;
  }

  #decide(input: RuleInput): RuleStatus {
    const { at, availableW, failSafe } = input;
    const s = this.settings;
    const base = { name: s.name };
    if (failSafe) {
      this.#wantsSince = undefined;
      if (this.#on) this.#switch(at, false);
      const what = failSafe.offline ? `${failSafe.what ?? "device"} offline` : "surplus unknown";
      return this.#result(
        base,
        "offline",
        `${what} for ${seconds(failSafe.forMs)} ` +
          `(grace ${seconds(failSafe.graceMs)}): off`,
      );
    }
    if (availableW === undefined) {
      this.#wantsSince = undefined;
      return this.#result(base, "unknown", `surplus unknown: holding ${this.#on ? "on" : "off"}`);
    }
    const socLow = s.minSoc > 0 && !(input.socPct !== undefined && input.socPct >= s.minSoc);
    const socText =
      `SoC ${input.socPct === undefined ? "unknown" : `${Math.round(input.socPct)} %`}` +
      ` < ${s.minSoc} %`;
    const now = { ...base, availableW };
    if (!this.#on) {
      if (socLow || availableW < s.onWatts) {
        this.#wantsSince = undefined;
        return socLow
          ? this.#result(now, "soc-low", socText)
          : this.#result(now, "below-on", `${watts(availableW)} < on at ${watts(s.onWatts)}`);
      }
      const cause = `${watts(availableW)} ≥ on at ${watts(s.onWatts)}`;
      return this.#pending(at, now, s.onDelaySeconds, s.minOffSeconds, cause, true);
    }
    if (!socLow && availableW >= s.offWatts) {
      this.#wantsSince = undefined;
      return this.#result(now, "above-off", `${watts(availableW)} ≥ off at ${watts(s.offWatts)}`);
    }
    const cause = socLow ? socText : `${watts(availableW)} < off at ${watts(s.offWatts)}`;
    return this.#pending(at, now, s.offDelaySeconds, s.minOnSeconds, cause, false);
  }

  /** The rule wants to switch to `to`: it does once the delay and the minimum time are over. */
  #pending(
    at: number,
    base: { name: string; availableW: number },
    delaySeconds: number,
    minSeconds: number,
    cause: string,
    to: boolean,
  ): RuleStatus {
    this.#wantsSince ??= at;
    const delayLeft = this.#wantsSince + delaySeconds * 1000 - at;
    if (delayLeft > 0) {
      return this.#result(
        base,
        to ? "on-delay" : "off-delay",
        `${cause}, ${to ? "on" : "off"} ` +
          `in ${seconds(delayLeft)} (${to ? "on" : "off"} delay ${delaySeconds} s)`,
      );
    }
    const minLeft = this.#changedAt === undefined ? 0 : this.#changedAt + minSeconds * 1000 - at;
    if (minLeft > 0) {
      return this.#result(
        base,
        to ? "min-off" : "min-on",
        `${cause}, held ${to ? "off" : "on"} ` +
          `by the minimum ${to ? "off" : "on"} time: ${seconds(minLeft)} left`,
      );
    }
    this.#switch(at, to);
    return this.#result(
      base,
      to ? "switched-on" : "switched-off",
      `${cause}: switched ${to ? "on" : "off"}`,
    );
  }

  #switch(at: number, on: boolean): void {
    this.#on = on;
    this.#changedAt = at;
    this.#wantsSince = undefined;
  }

  #result(
    base: { name: string; availableW?: number },
    reason: RuleReason,
    why: string,
  ): RuleStatus {
    return {
      ...base,
      on: this.#on,
      reason,
      why,
      ...(this.#changedAt === undefined ? {} : { changedAt: this.#changedAt }),
    };
  }
}
