/**
 * The subcommands, in the order help lists them. Each loads lazily, by a literal path so that
 * `deno compile` still embeds it.
 *
 * @module
 */
import type { Command } from "./_cli.ts";

/** A subcommand before it is loaded. */
export interface CommandEntry {
  summary: string;
  load: () => Promise<{ default: Command }>;
}

/** Every subcommand by name. */
export const COMMANDS: Readonly<Record<string, CommandEntry>> = {
  password: {
    summary: "read the device password (on the device's own Wi-Fi)",
    load: () => import("./password.ts"),
  },
  discover: {
    summary: "find LG ESS devices on the local network (mDNS)",
    load: () => import("./discover.ts"),
  },
  data: {
    summary: "read the live state: power flows, battery, grid, settings",
    load: () => import("./data.ts"),
  },
  graph: {
    summary: "statistics: pv, load or batt per day, week, month or year",
    load: () => import("./graph.ts"),
  },
  control: {
    summary: "switch the system, winter mode, fast charge, charge strategy, backup",
    load: () => import("./control.ts"),
  },
  mqtt: {
    summary: "mirror the device into MQTT and take commands from it (pyess's essmqtt)",
    load: () => import("./mqtt.ts"),
  },
  serve: {
    summary: "a local dashboard, a JSON/SSE API and Prometheus metrics",
    load: () => import("./serve.ts"),
  },
  health: {
    summary: "ask a running ess serve or ess mqtt --listen whether it runs (health check)",
    load: () => import("./health.ts"),
  },
  surplus: {
    summary: "the spare solar power now, and what each switching rule would do with it",
    load: () => import("./surplus.ts"),
  },
  hass: {
    summary: "announce the battery to Home Assistant once, print it, or remove it",
    load: () => import("./hass.ts"),
  },
  graphite: {
    summary: "send live values to Graphite (carbon plaintext protocol)",
    load: () => import("./graphite.ts"),
  },
  simulate: {
    summary: "run a simulated LG ESS to try ess without hardware",
    load: () => import("./simulate.ts"),
  },
  demo: {
    summary: "show ess working end to end against the built-in simulator",
    load: () => import("./demo.ts"),
  },
};

/**
 * Whether any command of ess has an option called `key` (kebab-case), for the config file's
 * unknown-key warning. The commands load only when a key is foreign to the running one.
 */
export async function isKnownKey(key: string): Promise<boolean> {
  for (const entry of Object.values(COMMANDS)) {
    const { options } = (await entry.load()).default;
    const names = options.flatMap((o) => [o.name, ...o.aliases ?? []]);
    if (names.some((n) => n.replaceAll("_", "-") === key)) return true;
    if (options.some((o) => o.configPrefix && key.startsWith(o.configPrefix))) return true;
  }
  return false;
}
