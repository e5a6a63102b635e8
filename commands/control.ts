/**
 * `ess control`: start/stop the system, winter mode, fast charge, charge strategy, backup.
 *
 * @module
 */
import type { EssClient } from "../lib/device/client.ts";
import { printable, UsageError } from "../lib/errors.ts";
import { type JsonObject, ownValue } from "../lib/device/flatten.ts";
import {
  BATT_SETTINGS,
  CHARGE_STRATEGIES,
  type ChargeStrategy,
  OPERATION_WORDS,
  parseChargeStrategy,
  parseSwitchWord,
  SWITCH_WORDS_TEXT,
} from "../lib/device/vocabulary.ts";
import { normalise } from "../lib/model/normalise.ts";
import {
  choose,
  defineCommand,
  DEVICE_OPTIONS,
  DEVICE_SELECT_OPTION,
  GENERAL_OPTIONS,
} from "./_cli.ts";
import { openDevice } from "./_device.ts";
import { chosenDevice } from "./_devices.ts";

const TARGETS = ["active", "winter", "fastcharge", "strategy", "backup", "gridcharge"] as const;
type Target = typeof TARGETS[number];

/**
 * `on`/`off` and their synonyms ({@link SWITCH_WORDS_TEXT}), for `active` also `start`/`stop`,
 * as the MQTT control takes them; anything else is a usage error.
 */
function parseSwitch(text: string | undefined, what: Target): boolean {
  const active = what === "active";
  const on = text === undefined ? undefined : parseSwitchWord(text, active ? OPERATION_WORDS : {});
  if (on !== undefined) return on;
  const words = active ? `${SWITCH_WORDS_TEXT}, or start/stop` : SWITCH_WORDS_TEXT;
  throw new UsageError(
    text === undefined
      ? `${what} needs on or off`
      : `${what}: ${JSON.stringify(text)} is not on or off (${words})`,
  );
}

/**
 * A charge strategy in either spelling, as the MQTT control takes it (`weather-forecast`,
 * `weather_forecast`, any case); anything else is a usage error.
 */
function parseStrategy(text: string | undefined): ChargeStrategy {
  const strategy = text === undefined ? undefined : parseChargeStrategy(text);
  if (strategy !== undefined) return strategy;
  return choose(text, CHARGE_STRATEGIES, "strategy");
}

const show = (state: JsonObject, keys: string[]) =>
  keys.filter((k) => ownValue(state, k) !== undefined)
    .map((k) => `${k}=${JSON.stringify(ownValue(state, k))}`).join(" ");

const onOff = (on: boolean | undefined) => on === undefined ? "unknown" : on ? "on" : "off";

/** What the model layer makes of the settings read back (and of `home`, for `active`). */
const settingsOf = (batt: JsonObject) => normalise({ batt }).settings;

/**
 * Carries out one control and returns the device's new state, read back, as one line: what the
 * model layer makes of it, then the device's own fields.
 */
async function applyControl(
  client: EssClient,
  target: Target,
  value: string | undefined,
  reserve: number | undefined,
): Promise<string> {
  switch (target) {
    case "active": {
      await client.setOperation(parseSwitch(value, "active"));
      const home = await client.read("home");
      const status = ownValue(home["operation"] as JsonObject | undefined ?? {}, "status");
      return `active: ${onOff(normalise({ home }).status.running)} ` +
        `(operation status=${JSON.stringify(status ?? null)})`;
    }
    case "winter": {
      await client.setWinterMode(parseSwitch(value, "winter"));
      const batt = await client.read("batt");
      const { read } = BATT_SETTINGS.winterMode;
      return `winter mode: ${onOff(settingsOf(batt).winterMode)} (${
        show(batt, [read, "winter_status"])
      })`;
    }
    case "fastcharge": {
      await client.setFastCharge(parseSwitch(value, "fastcharge"));
      const batt = await client.read("batt");
      const strategy = settingsOf(batt).chargeStrategy;
      return `fast charge: ${
        strategy === undefined ? "unknown" : onOff(strategy === "fast-charge")
      } (${show(batt, [BATT_SETTINGS.chargeStrategy.read])})`;
    }
    case "strategy": {
      await client.setChargeStrategy(parseStrategy(value));
      const batt = await client.read("batt");
      return `charge strategy: ${settingsOf(batt).chargeStrategy ?? "unknown"} (${
        show(batt, [BATT_SETTINGS.chargeStrategy.read])
      })`;
    }
    case "backup": {
      await client.setBackupMode(parseSwitch(value, "backup"), reserve);
      const batt = await client.read("batt");
      return `backup mode: ${onOff(settingsOf(batt).backupMode)} (${
        show(batt, [...BATT_SETTINGS.backupMode.read, BATT_SETTINGS.backupReserve.read])
      })`;
    }
    case "gridcharge": {
      await client.setGridCharge(parseSwitch(value, "gridcharge"));
      const batt = await client.read("batt");
      return `grid charging: ${onOff(settingsOf(batt).gridCharge)} (${
        show(batt, [BATT_SETTINGS.gridCharge.read])
      })`;
    }
  }
}

const command = defineCommand({
  name: "control",
  usage:
    "control <active|winter|fastcharge|backup|gridcharge> <on|off> | control strategy <STRATEGY>",
  description: "Changes one setting, then reads the device back and prints its new state.\n" +
    "  active on|off        start or stop the whole system (also start|stop)\n" +
    "  winter on|off        winter mode (on keeps the battery warm and charged)\n" +
    "  fastcharge on|off    fast charge (on newer firmware: strategy fast-charge / battery-care)\n" +
    "  strategy STRATEGY    battery-care, fast-charge or weather-forecast (newer firmware)\n" +
    "  backup on|off        backup mode, with --soc for the reserve to keep\n" +
    "  gridcharge on|off    charge from the grid to keep the backup reserve",
  options: [
    {
      name: "soc",
      type: "string",
      arg: "PERCENT",
      help: "backup reserve in % (with 'backup on')",
      config: false,
    },
    DEVICE_SELECT_OPTION,
    ...DEVICE_OPTIONS,
    ...GENERAL_OPTIONS,
  ],
  positionals: true,
  examples: [
    "ess control winter on",
    "ess control active off",
    "ess control strategy weather-forecast",
    "ess control backup on --soc 30",
    "ess control winter on --device garage",
  ],
  async run(p, io) {
    const [targetArg, value, ...extra] = p.positionals;
    const target = choose(targetArg, TARGETS, "control");
    if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
    if (target === "strategy") parseStrategy(value);
    else parseSwitch(value, target);
    const reserve = p.integer("soc", 0, 100);
    if (reserve !== undefined && target !== "backup") {
      throw new UsageError("--soc goes with 'ess control backup on'");
    }
    const session = await openDevice(chosenDevice(p, p.string("device")).p, { retryOnce: true });
    try {
      // The line quotes what the device reports, for a person's terminal.
      io.out(`${printable(await applyControl(session.client, target, value, reserve))}\n`);
    } finally {
      session.close();
    }
    return 0;
  },
});

export default command;
