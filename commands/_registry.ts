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

/** The number of single-character edits (insert, delete, replace) from `a` to `b`. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        previous[j]! + 1,
        row[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = row;
  }
  return previous[b.length]!;
}

/**
 * The option of any command of ess closest to the unknown `key` (kebab-case), as the config
 * file spells keys (`mqtt_server`), when it is at most two edits away; for the unknown-key
 * warning's "did you mean".
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(await suggestKey("mqtt-sever"), "mqtt_server");
 * equal(await suggestKey("colour"), undefined);
 * ```
 */
export async function suggestKey(key: string): Promise<string | undefined> {
  if (key.length > 64) return undefined;
  let best: [number, string] | undefined;
  for (const entry of Object.values(COMMANDS)) {
    for (const option of (await entry.load()).default.options) {
      for (const name of [option.name, ...option.aliases ?? []]) {
        const distance = editDistance(key, name.replaceAll("_", "-"));
        if (distance <= 2 && (best === undefined || distance < best[0])) best = [distance, name];
      }
    }
  }
  return best?.[1].replaceAll("-", "_");
}

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

/**
 * Whether any command of ess lets a `[device NAME]` section set `key` (kebab-case): its
 * address, password and polling, not the broker or the listener.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(await isDeviceKey("interval-seconds"), true);
 * equal(await isDeviceKey("mqtt-server"), false);
 * ```
 */
export async function isDeviceKey(key: string): Promise<boolean> {
  for (const entry of Object.values(COMMANDS)) {
    for (const option of (await entry.load()).default.options) {
      const names = [option.name, ...option.aliases ?? []];
      if (option.perDevice && names.some((n) => n.replaceAll("_", "-") === key)) return true;
    }
  }
  return false;
}
