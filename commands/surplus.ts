/**
 * `ess surplus`: the spare solar power now, and what each switching rule would do with it.
 *
 * @module
 */
import {
  explainSiteSurplus,
  explainSurplus,
  type SurplusExplanation,
} from "../lib/surplus/explain.ts";
import type { Reading } from "../lib/model/reading.ts";
import { SITE_SOURCE } from "../lib/surplus/rule.ts";
import {
  choose,
  defineCommand,
  DEVICE_OPTIONS,
  DEVICE_SELECT_OPTION,
  GENERAL_OPTIONS,
  type Io,
} from "./_cli.ts";
import { type DeviceParsed, openDevice } from "./_device.ts";
import { chosenDevice } from "./_devices.ts";
import { readingOfAnswers, SURPLUS_OPTIONS, surplusConfig } from "./_surplus.ts";

const FORMATS = ["text", "json"] as const;

/** Reads one device once: what the surplus needs. */
async function readOnce(p: DeviceParsed): Promise<Reading> {
  const session = await openDevice(p, { retryOnce: true });
  try {
    return readingOfAnswers(await session.client.readAll(["home", "common", "batt"]));
  } finally {
    session.close();
  }
}

/** Prints `e`: a line for the surplus, then `parts` (the site's devices), then each rule. */
function print(
  io: Io,
  e: SurplusExplanation,
  parts: readonly { name: string; watts?: number; terms: string }[] = [],
): void {
  const watts = (w: number | undefined) => w === undefined ? "unknown" : `${Math.round(w)} W`;
  const width = Math.max(
    7,
    ...e.rules.map((r) => r.name.length),
    ...parts.map((d) => d.name.length),
  );
  const lines = [
    `${"surplus".padEnd(width)}  ${watts(e.watts)}  (${e.terms})`,
    ...parts.map((d) => `${d.name.padEnd(width)}  ${watts(d.watts)}  (${d.terms})`),
    ...e.rules.map((r) => `${r.name.padEnd(width)}  ${r.why}`),
  ];
  if (e.rules.length === 0) {
    lines.push("no rules: add surplus.NAME.on-watts to the config file, or --surplus-rule");
  }
  io.out(`${lines.join("\n")}\n`);
}

const command = defineCommand({
  name: "surplus",
  usage: "surplus [--config FILE] [--device NAME] [--surplus-rule NAME:KEY=VALUE,…] " +
    "[--format text|json]",
  description: [
    "Reads the device once and prints the spare solar power now, term by term, and what each",
    "switching rule (surplus.NAME.KEY in the config file, or --surplus-rule) would do with it:",
    "for tuning the thresholds. The daemons (ess mqtt, ess serve) average the surplus over",
    "--surplus-window-seconds and keep each rule's delays and minimum times; this reads one",
    "moment. With [device NAME] sections in the config, it reads every device and shows the",
    "site's surplus (their sum) and the rules that follow the site; --device NAME shows that",
    "device's own surplus and the rules that follow it. The formula and the rules:",
    "docs/surplus.md.",
  ].join("\n"),
  options: [
    {
      name: "format",
      type: "string",
      arg: "FORMAT",
      help: "text, or json",
      default: "text",
      config: false,
    },
    ...SURPLUS_OPTIONS,
    {
      ...DEVICE_SELECT_OPTION,
      help: "with [device NAME] sections: this device's surplus and rules, not the site's",
    },
    ...DEVICE_OPTIONS,
    ...GENERAL_OPTIONS,
  ],
  examples: [
    "ess surplus --config /etc/essmqtt.conf",
    "ess surplus --host 192.168.1.20 --surplus-rule heater:on-watts=2200,load-watts=2000",
    "ess surplus --config /etc/essmqtt.conf --device garage",
  ],
  async run(p, io) {
    const format = choose(p.string("format"), FORMATS, "format");
    const config = surplusConfig(p);
    const chosen = p.string("device");
    if (p.devices.length > 0 && chosen === undefined) {
      const readings = await Promise.all(
        p.devices.map(async (d) => [d.name, await readOnce(d.p)] as const),
      );
      const e = explainSiteSurplus(
        readings,
        config.surplus,
        config.rules.filter((r) => r.device === SITE_SOURCE),
      );
      if (format === "json") {
        const devices = Object.fromEntries(
          e.devices.map((d) => [d.name, { watts: d.watts ?? null, terms: d.terms }]),
        );
        const doc = { watts: e.watts ?? null, terms: e.terms, devices, rules: e.rules };
        io.out(`${JSON.stringify(doc, null, 2)}\n`);
      } else print(io, e, e.devices);
      return 0;
    }
    const device = chosenDevice(p, chosen);
    const reading = await readOnce(device.p);
    const rules = config.rules.filter((r) => r.device === device.name);
    const e = explainSurplus(reading, config.surplus, rules);
    if (format === "json") {
      io.out(
        `${JSON.stringify({ watts: e.watts ?? null, terms: e.terms, rules: e.rules }, null, 2)}\n`,
      );
    } else print(io, e);
    return 0;
  },
});

export default command;
