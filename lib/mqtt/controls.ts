/**
 * The commands the bridge takes on `<prefix>/control/<name>`: what each payload means and what it
 * does on the device.
 *
 * @module
 */
import { EssError } from "../errors.ts";
import type { JsonObject } from "../device/flatten.ts";
import type { StateName } from "../device/states.ts";
import {
  backupModeOf,
  CHARGE_STRATEGY_OPTIONS,
  type ChargeStrategy,
  isOnSetting,
  parseChargeStrategy,
  parseSwitchWord,
  SWITCH_WORDS_TEXT,
} from "../device/vocabulary.ts";
import type { ControlName } from "./topics.ts";

/** What the bridge needs of the device; `EssClient` has it. */
export interface Device {
  read(state: StateName): Promise<JsonObject>;
  setOperation(run: boolean): Promise<void>;
  setWinterMode(on: boolean): Promise<void>;
  setFastCharge(on: boolean): Promise<void>;
  setChargeStrategy(strategy: ChargeStrategy): Promise<void>;
  setBackupMode(on: boolean, reservePercent?: number): Promise<void>;
}

/** A command parsed from a control message, ready to carry out. */
export interface ControlCommand {
  /** What it does, for the log (`winter mode on`). */
  description: string;
  run(device: Device): Promise<void>;
}

/**
 * Parses the payload of one control topic; a string says why it is not valid.
 *
 * @example
 * ```ts
 * parseControl("winter_mode", "ON"); // { description: "winter mode on", run }
 * parseControl("active", "maybe"); // "expected true/false, on/off, 1/0 or start/stop"
 * ```
 */
export function parseControl(name: ControlName, payload: string): ControlCommand | string {
  const SWITCH = `expected ${SWITCH_WORDS_TEXT}`;
  switch (name) {
    case "active": {
      const on = parseSwitchWord(payload, { start: true, stop: false });
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
