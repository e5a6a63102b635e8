/**
 * The device's controls: their names, what each command word means and what it does on the
 * device. The MQTT bridge takes them on `<prefix>/control/<name>`; anything else that switches
 * the device (an HTTP endpoint) parses its commands here too.
 *
 * @module
 */
import { EssError } from "../errors.ts";
import type { JsonObject } from "./flatten.ts";
import type { StateName } from "./states.ts";
import {
  backupModeOf,
  CHARGE_STRATEGY_OPTIONS,
  type ChargeStrategy,
  isOnSetting,
  OPERATION_WORDS,
  parseChargeStrategy,
  parseSwitchWord,
  SWITCH_WORDS_TEXT,
} from "./vocabulary.ts";

/** The controls, in the order ess lists them; the first three are pyess's. */
export const CONTROL_NAMES = [
  "active",
  "winter_mode",
  "fastcharge",
  "charge_strategy",
  "backup_mode",
  "backup_soc",
] as const;
/** One of {@link CONTROL_NAMES}. */
export type ControlName = typeof CONTROL_NAMES[number];

/** What the poller and the controls need of the device; `EssClient` has it. */
export interface Device {
  /** One state as the device answers it. */
  read(state: StateName): Promise<JsonObject>;
  /** Starts (`true`) or stops the system. */
  setOperation(run: boolean): Promise<void>;
  /** Winter mode on or off. */
  setWinterMode(on: boolean): Promise<void>;
  /** Fast charge on or off, in the form the device reports. */
  setFastCharge(on: boolean): Promise<void>;
  /** The charge strategy (newer firmware; older knows two). */
  setChargeStrategy(strategy: ChargeStrategy): Promise<void>;
  /** Backup mode, with the reserve in % if given. */
  setBackupMode(on: boolean, reservePercent?: number): Promise<void>;
}

/** A command parsed from a control message, ready to carry out. */
export interface ControlCommand {
  /** What it does, for the log (`winter mode on`). */
  description: string;
  /** Carries it out on `device`. */
  run(device: Device): Promise<void>;
}

/**
 * Parses the payload of one control topic; a string says why it is not valid.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const command = parseControl("winter_mode", "ON");
 * equal(typeof command === "string" ? command : command.description, "winter mode on");
 * equal(typeof parseControl("active", "maybe"), "string");
 * ```
 */
export function parseControl(name: ControlName, payload: string): ControlCommand | string {
  const SWITCH = `expected ${SWITCH_WORDS_TEXT}`;
  switch (name) {
    case "active": {
      const on = parseSwitchWord(payload, OPERATION_WORDS);
      if (on === undefined) return `${SWITCH} or start/stop`;
      return {
        description: on ? "start the system" : "stop the system",
        run: (d) => d.setOperation(on),
      };
    }
    case "winter_mode": {
      const on = parseSwitchWord(payload);
      if (on === undefined) return SWITCH;
      return { description: `winter mode ${on ? "on" : "off"}`, run: (d) => d.setWinterMode(on) };
    }
    case "fastcharge": {
      const on = parseSwitchWord(payload);
      if (on === undefined) return SWITCH;
      return { description: `fast charge ${on ? "on" : "off"}`, run: (d) => d.setFastCharge(on) };
    }
    case "backup_mode": {
      const on = parseSwitchWord(payload);
      if (on === undefined) return SWITCH;
      return { description: `backup mode ${on ? "on" : "off"}`, run: (d) => d.setBackupMode(on) };
    }
    case "charge_strategy": {
      const strategy = parseChargeStrategy(payload);
      if (strategy === undefined) return `expected ${CHARGE_STRATEGY_OPTIONS.join(", ")}`;
      return {
        description: `charge strategy ${strategy}`,
        run: (d) => d.setChargeStrategy(strategy),
      };
    }
    case "backup_soc": {
      const text = payload.trim();
      const soc = Number(text);
      if (!/^\d{1,3}$/.test(text) || soc > 100) return "expected a whole percentage 0-100";
      return {
        description: `backup reserve ${soc} %`,
        async run(d) {
          // The device sets the reserve together with the mode: keep the mode as it is.
          const batt = await d.read("batt");
          const mode = backupModeOf(batt);
          if (mode === undefined) {
            throw new EssError("the device reports no backup mode, so it has no backup reserve");
          }
          await d.setBackupMode(isOnSetting(mode), soc);
        },
      };
    }
  }
}
