/**
 * The device's vocabulary in one place: the words a switch takes (pyess's `strtobool` words),
 * the charge strategies in both firmware forms of `alg_setting`, and the battery settings with
 * their read and write keys. The CLI, the MQTT controls, Home Assistant discovery and the device
 * client all derive from these tables, so a firmware change touches this file only.
 *
 * @module
 */

/**
 * The words that switch something on, as pyess's `strtobool` took them (any case): `y`, `yes`,
 * `t`, `true`, `on`, `1`.
 */
export const ON_WORDS = ["y", "yes", "t", "true", "on", "1"] as const;
/** The words that switch something off: `n`, `no`, `f`, `false`, `off`, `0`. */
export const OFF_WORDS = ["n", "no", "f", "false", "off", "0"] as const;
/** How help and warnings name the switch words. */
export const SWITCH_WORDS_TEXT = "true/false, on/off, yes/no, 1/0 (also y/n, t/f)";
/** The words `active` takes besides the switch words: the device's own for its operation. */
export const OPERATION_WORDS: Readonly<Record<string, boolean>> = { start: true, stop: false };

/**
 * A switch word as `true` (on) or `false` (off), in any case and with blanks around it; anything
 * else is `undefined`. `extra` adds words of one control (`start`/`stop`).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(parseSwitchWord(" Yes "), true);
 * equal(parseSwitchWord("OFF"), false);
 * equal(parseSwitchWord("stop", OPERATION_WORDS), false);
 * equal(parseSwitchWord("maybe"), undefined);
 * ```
 */
export function parseSwitchWord(
  text: string,
  extra: Readonly<Record<string, boolean>> = {},
): boolean | undefined {
  const t = text.trim().toLowerCase();
  if ((ON_WORDS as readonly string[]).includes(t)) return true;
  if ((OFF_WORDS as readonly string[]).includes(t)) return false;
  return Object.hasOwn(extra, t) ? extra[t] : undefined;
}

/**
 * Whether a setting the device reports is on: `"on"`, `"1"` or `1` (ESS Home 15 sends numbers);
 * `"simple"` is the backup mode some firmware reports for on.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(["on", "1", 1, "simple", "off", "0", ""].map(isOnSetting), [true, true, true, true, false, false, false]);
 * ```
 */
export function isOnSetting(value: unknown): boolean {
  return value === "on" || value === "1" || value === 1 || value === "simple";
}

/** One charge strategy: how the CLI and MQTT name it and what `alg_setting` says for it. */
export interface ChargeStrategyRow {
  /** The CLI's name, `battery-care`. */
  readonly name: string;
  /** The MQTT control's and Home Assistant's name, `battery_care`; also the firmware's word. */
  readonly option: string;
  /** `alg_setting` on newer firmware (`0`, `1`, `2`). */
  readonly numeric: string;
  /** `alg_setting` on older firmware, which has only fast charge on/off; none: not there. */
  readonly classic: "on" | "off" | undefined;
}

/** The charge strategies, in the order help lists them. */
export const CHARGE_STRATEGY_TABLE = [
  { name: "battery-care", option: "battery_care", numeric: "0", classic: "off" },
  { name: "fast-charge", option: "fast_charge", numeric: "1", classic: "on" },
  { name: "weather-forecast", option: "weather_forecast", numeric: "2", classic: undefined },
] as const satisfies readonly ChargeStrategyRow[];

/** A charge strategy by its CLI name. */
export type ChargeStrategy = typeof CHARGE_STRATEGY_TABLE[number]["name"];
/** The CLI names of the charge strategies. */
export const CHARGE_STRATEGIES: readonly ChargeStrategy[] = CHARGE_STRATEGY_TABLE.map((r) =>
  r.name
);
/** The charge strategies as the `charge_strategy` control and Home Assistant name them. */
export const CHARGE_STRATEGY_OPTIONS: readonly string[] = CHARGE_STRATEGY_TABLE.map((r) =>
  r.option
);

/**
 * A charge strategy from either spelling (`battery-care`, `battery_care`, any case); anything
 * else is `undefined`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(parseChargeStrategy("Weather_Forecast"), "weather-forecast");
 * equal(parseChargeStrategy("turbo"), undefined);
 * ```
 */
export function parseChargeStrategy(text: string): ChargeStrategy | undefined {
  const t = text.trim().toLowerCase().replaceAll("_", "-");
  return CHARGE_STRATEGY_TABLE.find((r) => r.name === t)?.name;
}

/**
 * The forms firmware reports `alg_setting` in: `switch` (older firmware: `on`/`off`, fast charge
 * only), `digits` (newer: `"0"`..`"2"`, or JSON numbers), `words` (newer Home 8/10 and Home 15:
 * `battery_care`, `fast_charge`, `weather_forecast`).
 */
export type AlgForm = "switch" | "digits" | "words";

/**
 * The form an `alg_setting` is in, or `undefined` when it is none ess knows (nor absent).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(["on", "2", 1, "fast_charge", "turbo", undefined].map(algSettingForm),
 *   ["switch", "digits", "digits", "words", undefined, undefined]);
 * ```
 */
export function algSettingForm(alg: unknown): AlgForm | undefined {
  if (typeof alg === "number" || (typeof alg === "string" && /^\d+$/.test(alg))) return "digits";
  if (alg === "on" || alg === "off") return "switch";
  if (CHARGE_STRATEGY_TABLE.some((r) => r.option === alg)) return "words";
  return undefined;
}

/**
 * The charge strategy an `alg_setting` stands for, in any firmware form.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(["2", "on", "off", "battery_care", "7", undefined, null].map(strategyOfAlgSetting),
 *   ["weather-forecast", "fast-charge", "battery-care", "battery-care", undefined, undefined, undefined]);
 * ```
 */
export function strategyOfAlgSetting(alg: unknown): ChargeStrategy | undefined {
  const text = typeof alg === "number" ? String(alg) : alg;
  // An absent setting is no strategy: weather forecast has no classic spelling, so its
  // `classic` is undefined too and would otherwise match.
  if (typeof text !== "string") return undefined;
  return CHARGE_STRATEGY_TABLE.find((r) =>
    r.numeric === text || r.classic === text || r.option === text
  )?.name;
}

/**
 * The strategies firmware reporting `alg_setting` in `form` accepts: older firmware (`switch`)
 * has only fast charge on and off, so no weather forecast.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(strategiesFor("switch"), ["battery-care", "fast-charge"]);
 * deepEqual(strategiesFor("words").length, 3);
 * ```
 */
export function strategiesFor(form: AlgForm): readonly ChargeStrategy[] {
  return form === "switch"
    ? CHARGE_STRATEGY_TABLE.filter((r) => r.classic !== undefined).map((r) => r.name)
    : CHARGE_STRATEGIES;
}

/**
 * The `alg_setting` to write for `strategy` to firmware that reports it in `form`; `undefined`
 * where that firmware does not have the strategy. Firmware that reports words is written digits:
 * the projects that drive it in the field (dkarv/ha-lg-ess, Morluktom/ha-lg-ess) write `0`..`2`,
 * and no write of a word has been seen accepted.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(algSettingFor("fast-charge", "digits"), "1");
 * equal(algSettingFor("fast-charge", "words"), "1");
 * equal(algSettingFor("fast-charge", "switch"), "on");
 * equal(algSettingFor("weather-forecast", "switch"), undefined);
 * ```
 */
export function algSettingFor(strategy: ChargeStrategy, form: AlgForm): string | undefined {
  const row = CHARGE_STRATEGY_TABLE.find((r) => r.name === strategy);
  return form === "switch" ? row?.classic : row?.numeric;
}

/**
 * The battery settings (`/v1/user/setting/batt`): the key the device reports each under, and the
 * key it is written with, which differ.
 */
export const BATT_SETTINGS = {
  winterMode: { read: "winter_setting", write: "wintermode" },
  chargeStrategy: { read: "alg_setting", write: "alg_setting" },
  /** Some firmware reports `backup_setting`, other `backup_status`. */
  backupMode: { read: ["backup_setting", "backup_status"], write: "backupmode" },
  backupReserve: { read: "backup_soc", write: "backup_soc" },
  gridCharge: { read: "auto_charge", write: "autocharge" },
} as const;

/**
 * The backup mode a `batt` answer reports, or `undefined` if this firmware has none (then it has
 * no backup reserve or grid charging either).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(backupModeOf({ backup_status: "on" }), "on");
 * equal(backupModeOf({ winter_setting: "off" }), undefined);
 * ```
 */
export function backupModeOf(batt: Readonly<Record<string, unknown>>): unknown {
  for (const key of BATT_SETTINGS.backupMode.read) {
    if (Object.hasOwn(batt, key) && batt[key] !== undefined) return batt[key];
  }
  return undefined;
}

const REPORTED_ON = ["on", "start", "true"];
const REPORTED_OFF = ["off", "stop", "false"];

/**
 * A word the device reports for a state as a number for metrics: `on`, `start`, `true` → 1;
 * `off`, `stop`, `false` → 0 (any case); anything else `undefined`.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(["Start", "off", "pcs_ok"].map(reportedWordValue), [1, 0, undefined]);
 * ```
 */
export function reportedWordValue(text: string): 1 | 0 | undefined {
  const t = text.trim().toLowerCase();
  return REPORTED_ON.includes(t) ? 1 : REPORTED_OFF.includes(t) ? 0 : undefined;
}
