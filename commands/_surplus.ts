/**
 * The surplus options that `ess mqtt`, `ess serve` and `ess surplus` share: how the surplus is
 * computed and the switching rules, from the command line and the config file.
 *
 * @module
 */
import type { Poller } from "../lib/device/poller.ts";
import type { Logger } from "../lib/log.ts";
import type { JsonObject } from "../lib/device/flatten.ts";
import { normalise } from "../lib/model/normalise.ts";
import type { Reading } from "../lib/model/reading.ts";
import { SurplusEngine, type SurplusState } from "../lib/surplus/engine.ts";
import { DEFAULT_SURPLUS_SETTINGS, type SurplusSettings } from "../lib/surplus/power.ts";
import { latestSurplusDocument, type SurplusDocument } from "../lib/surplus/report.ts";
import type { RuleSettings } from "../lib/surplus/rule.ts";
import { SiteSurplusEngine } from "../lib/surplus/site.ts";
import {
  buildRules,
  RULE_KEY_PREFIX,
  ruleEntriesFromConfig,
  ruleEntriesFromOption,
} from "../lib/surplus/settings.ts";
import { errorAt, type OptionSpec, type Parsed } from "./_cli.ts";
import type { Site } from "./_site.ts";
import { errorText } from "../lib/errors.ts";

/** The surplus options. */
export const SURPLUS_OPTIONS = [
  {
    name: "surplus-priority-soc",
    type: "string",
    arg: "PERCENT",
    help: "at or above this battery SoC, what the battery charges with counts as surplus; " +
      "below it, only the export does",
    default: String(DEFAULT_SURPLUS_SETTINGS.prioritySocPct),
    env: "ESS_SURPLUS_PRIORITY_SOC",
    group: "Surplus",
  },
  {
    name: "surplus-reserve-watts",
    type: "string",
    arg: "WATTS",
    help: "keep this much back from the surplus as a margin",
    default: String(DEFAULT_SURPLUS_SETTINGS.reserveW),
    env: "ESS_SURPLUS_RESERVE_WATTS",
    group: "Surplus",
  },
  {
    name: "surplus-window-seconds",
    type: "string",
    arg: "SECONDS",
    help: "the surplus is the mean over this long, so that a passing cloud does not count",
    default: String(DEFAULT_SURPLUS_SETTINGS.windowMs / 1000),
    env: "ESS_SURPLUS_WINDOW_SECONDS",
    group: "Surplus",
  },
  {
    name: "surplus-rule",
    type: "string",
    arg: "NAME:KEY=VALUE,…",
    help: "a load to switch on surplus, e.g. heater:on-watts=1500,off-watts=200,load-watts=2000 " +
      "(repeat for more; keys and the config file's surplus.NAME.KEY lines: docs/surplus.md)",
    multiple: true,
    configPrefix: RULE_KEY_PREFIX,
    group: "Surplus",
  },
] as const satisfies readonly OptionSpec[];

/** The surplus and its rules, as configured. */
export interface SurplusConfig {
  surplus: SurplusSettings;
  rules: RuleSettings[];
}

/**
 * {@link SURPLUS_OPTIONS}, checked: a bad value names its option, or its file and line. With
 * `[device NAME]` sections, each rule follows the device its `device` names, or the site.
 */
export function surplusConfig(
  p: Parsed<
    "surplus-priority-soc" | "surplus-reserve-watts" | "surplus-window-seconds" | "surplus-rule",
    never
  >,
): SurplusConfig {
  // A `surplus_rule = NAME:KEY=VALUE,…` line in the file is one rule, as on the command line.
  const fromFile = p.get("surplus-rule");
  const entries = [
    ...ruleEntriesFromConfig(p.prefixed("surplus-rule"), errorAt),
    ...(typeof fromFile?.value === "string"
      ? ruleEntriesFromOption(fromFile.value, fromFile.origin, errorAt)
      : []),
    ...p.all("surplus-rule").flatMap((v) =>
      ruleEntriesFromOption(String(v.value), v.origin, errorAt)
    ),
  ];
  return {
    surplus: {
      prioritySocPct: p.integer("surplus-priority-soc", 0, 100) ?? 80,
      reserveW: p.integer("surplus-reserve-watts", -100_000, 100_000) ?? 100,
      windowMs: (p.seconds("surplus-window-seconds", 1) ?? 60) * 1000,
    },
    rules: buildRules(
      entries,
      errorAt,
      p.devices.length === 0 ? undefined : p.devices.map((d) => d.name),
    ),
  };
}

/** The surplus of a daemon: its engine, fed by every poll. */
export interface DaemonSurplus {
  engine: SurplusEngine;
  /** The state as `/api/state` and `/metrics` show it; the same object until it changes. */
  document(): SurplusDocument;
  /**
   * Feeds each of `poller`'s polls to the engine (a failed poll as no reading), then hands the
   * new state to `after`. Listen before anyone who shows the surplus, so that they see this
   * poll's. Returns the function that stops it.
   */
  follow(
    poller: Pick<Poller, "listen" | "latest">,
    after?: (state: SurplusState) => Promise<void> | void,
  ): () => void;
}

/** The reading of the poller's latest answers. */
export type ReadingOf = (poller: Pick<Poller, "latest">) => Reading;

/** The normalised reading of the answers to `home`, `common` and `batt` (any may be missing). */
export function readingOfAnswers(
  answers: Readonly<Record<string, JsonObject | undefined>>,
): Reading {
  const states: { -readonly [K in "home" | "common" | "batt"]?: JsonObject } = {};
  for (const state of ["home", "common", "batt"] as const) {
    const answer = answers[state];
    if (answer !== undefined) states[state] = answer;
  }
  return normalise(states);
}

/** The normalised reading of the latest answers the poller has. */
export function latestReading(poller: Pick<Poller, "latest">): Reading {
  return readingOfAnswers({
    home: poller.latest("home")?.answer,
    common: poller.latest("common")?.answer,
    batt: poller.latest("batt")?.answer,
  });
}

/**
 * A daemon's surplus from its settings. `graceMs`: the poller's offline rule, after which the
 * rules fail safe.
 */
export function daemonSurplus(
  config: SurplusConfig,
  graceMs: number,
  readingOf: ReadingOf,
): DaemonSurplus {
  const engine = new SurplusEngine({ surplus: config.surplus, rules: config.rules, graceMs });
  return {
    engine,
    document: () => latestSurplusDocument(engine),
    follow(poller, after) {
      return poller.listen(async (event) => {
        const state = engine.update(event.at, event.ok ? readingOf(poller) : undefined);
        await after?.(state);
      });
    },
  };
}

/** Publishes a surplus state: a device's (by name), or the site's or the one device's (`undefined`). */
export type SurplusPublish = (
  device: string | undefined,
  state: SurplusState,
) => Promise<void> | void;

/**
 * The surplus of a daemon's site. In single mode, the one device's (as {@link daemonSurplus});
 * in named mode, each device's, with the rules that follow it, and the site's, the sum of its
 * devices', with the rules that follow the site.
 */
export interface SiteSurplus {
  /** Whether the site has named devices (a surplus each, and the site's). */
  named: boolean;
  /**
   * The engine of a device by name, of the site (`undefined`, named mode) or of the one device
   * (`undefined`, single mode); `undefined` for a name the site does not have.
   */
  engineOf(device: string | undefined): SurplusEngine | undefined;
  /**
   * The document `/api/state` and `/metrics` show, for the same choice as {@link engineOf}: the
   * same object until it changes.
   */
  documentOf(device: string | undefined): SurplusDocument | undefined;
  /**
   * Feeds each device's polls to its engine and the site's, then hands each new state to
   * `publish`: the device's (awaited by that device's poller, as in single mode), then the
   * site's (in its own queue, which only ever publishes the latest state, so that no device's
   * polls wait for it; a failure is one line on `logger`). Listen before anyone who shows the
   * surplus, so that they see this poll's. Returns the function that stops it.
   */
  follow(publish?: SurplusPublish, logger?: Logger): () => void;
}

/**
 * Runs `publish` with the latest value given, one at a time: a value given while one runs waits,
 * and is dropped for a newer one. Errors go to `failed`.
 */
function latestOnly<T>(
  publish: (value: T) => Promise<void> | void,
  failed: (err: unknown) => void,
): (value: T) => void {
  let running = false;
  let next: { value: T } | undefined;
  const drain = async () => {
    running = true;
    while (next !== undefined) {
      const { value } = next;
      next = undefined;
      try {
        await publish(value);
      } catch (err) {
        failed(err);
      }
    }
    running = false;
  };
  return (value) => {
    next = { value };
    if (!running) void drain();
  };
}

/** The site's surplus in named mode. */
function namedSiteSurplus(
  config: SurplusConfig,
  site: Pick<Site, "devices">,
  graceMs: number,
): SiteSurplus {
  const names = site.devices.map((d) => d.name!);
  const engines = new SiteSurplusEngine({
    surplus: config.surplus,
    rules: config.rules,
    devices: names,
    graceMs,
  });
  const engineOf = (device: string | undefined) =>
    device === undefined ? engines.site : engines.devices.get(device);
  return {
    named: true,
    engineOf,
    documentOf(device) {
      const engine = engineOf(device);
      return engine && latestSurplusDocument(engine);
    },
    follow(publish, logger) {
      const publishSite = latestOnly<SurplusState>(
        (state) => publish?.(undefined, state),
        (err) => logger?.error(`cannot publish the site's surplus: ${errorText(err)}`),
      );
      const stops = site.devices.map((device) =>
        device.poller.listen(async (event) => {
          const states = engines.update(
            device.name!,
            event.at,
            event.ok ? event.reading : undefined,
          );
          await publish?.(device.name, states.device);
          publishSite(states.site);
        })
      );
      return () => stops.forEach((stop) => stop());
    },
  };
}

/**
 * The surplus of a daemon's site, from its settings. `graceMs`: the poller's offline rule, after
 * which the rules fail safe.
 */
export function siteSurplus(
  config: SurplusConfig,
  site: Pick<Site, "devices" | "named">,
  graceMs: number,
): SiteSurplus {
  if (site.named) return namedSiteSurplus(config, site, graceMs);
  const one = daemonSurplus(config, graceMs, latestReading);
  return {
    named: false,
    engineOf: (device) => device === undefined ? one.engine : undefined,
    documentOf: (device) => device === undefined ? one.document() : undefined,
    follow: (publish) =>
      one.follow(site.devices[0]!.poller, (state) => publish?.(undefined, state)),
  };
}
