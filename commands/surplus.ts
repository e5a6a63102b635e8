/**
 * `ess surplus`: the spare solar power now, and what each switching rule would do with it.
 *
 * @module
 */
import { explainSurplus } from "../lib/surplus/explain.ts";
import { choose, defineCommand, DEVICE_OPTIONS, GENERAL_OPTIONS } from "./_cli.ts";
import { openDevice } from "./_device.ts";
import { readingOfAnswers, SURPLUS_OPTIONS, surplusConfig } from "./_surplus.ts";

const FORMATS = ["text", "json"] as const;

const command = defineCommand({
  name: "surplus",
  usage: "surplus [--config FILE] [--surplus-rule NAME:KEY=VALUE,…] [--format text|json]",
  description: [
    "Reads the device once and prints the spare solar power now, term by term, and what each",
    "switching rule (surplus.NAME.KEY in the config file, or --surplus-rule) would do with it:",
    "for tuning the thresholds. The daemons (ess mqtt, ess serve) average the surplus over",
    "--surplus-window-seconds and keep each rule's delays and minimum times; this reads one",
    "moment. The formula and the rules: docs/surplus.md.",
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
    ...DEVICE_OPTIONS,
    ...GENERAL_OPTIONS,
  ],
  examples: [
    "ess surplus --config /etc/essmqtt.conf",
    "ess surplus --host 192.168.1.20 --surplus-rule heater:on-watts=2200,load-watts=2000",
  ],
  async run(p, io) {
    const format = choose(p.string("format"), FORMATS, "format");
    const config = surplusConfig(p);
    const session = await openDevice(p, { retryOnce: true });
    let reading;
    try {
      reading = readingOfAnswers(await session.client.readAll(["home", "common", "batt"]));
    } finally {
      session.close();
    }
    const e = explainSurplus(reading, config.surplus, config.rules);
    if (format === "json") {
      io.out(
        `${JSON.stringify({ watts: e.watts ?? null, terms: e.terms, rules: e.rules }, null, 2)}\n`,
      );
      return 0;
    }
    const width = Math.max(7, ...e.rules.map((r) => r.name.length));
    const lines = [
      `${"surplus".padEnd(width)}  ${
        e.watts === undefined ? "unknown" : `${Math.round(e.watts)} W`
      }  (${e.terms})`,
      ...e.rules.map((r) => `${r.name.padEnd(width)}  ${r.why}`),
    ];
    if (e.rules.length === 0) {
      lines.push("no rules: add surplus.NAME.on-watts to the config file, or --surplus-rule");
    }
    io.out(`${lines.join("\n")}\n`);
    return 0;
  },
});

export default command;
