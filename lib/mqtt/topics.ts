/**
 * The MQTT topic layout, pyess-compatible. The bridge, Home Assistant discovery and the docs all
 * derive their topics from here.
 *
 * @module
 */

/** Default topic prefix (pyess used `ess`). */
export const DEFAULT_PREFIX = "ess";

/**
 * The states the bridge mirrors: `home` and `common` as pyess did, and the `batt` settings, which
 * hold the state of fast charge, the charge strategy and backup mode (read with `common`).
 */
export const PUBLISHED_STATES = ["home", "common", "batt"] as const;
/** One of {@link PUBLISHED_STATES}. */
export type PublishedState = typeof PUBLISHED_STATES[number];

/** Topic of one leaf: `ess/home/statistics/load_power`, `ess/common/BATT/soc`. */
export function stateTopic(prefix: string, state: string, path: readonly string[]): string {
  return [prefix, state, ...path].join("/");
}

/**
 * Topic of a whole state as one JSON document (`ess/json/home`, with `--json`). It lives
 * outside `<prefix>/<state>/` so that it can never clash with a leaf or match `ess/home/#`.
 */
export function jsonTopic(prefix: string, state: string): string {
  return `${prefix}/json/${state}`;
}

/** Retained availability topic: `online` / `offline`. */
export function statusTopic(prefix: string): string {
  return `${prefix}/status`;
}

/** The control topics under `<prefix>/control/`; the first three are pyess's. */
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
/** The controls pyess had, which also answer on the legacy `/ess/control/...` topics. */
export const LEGACY_CONTROL_NAMES: readonly ControlName[] = ["active", "winter_mode", "fastcharge"];

/** `ess/control/winter_mode`. */
export function controlTopic(prefix: string, name: ControlName): string {
  return `${prefix}/control/${name}`;
}

/** pyess's leading-slash variant: `/ess/control/winter_mode`. */
export function legacyControlTopic(prefix: string, name: ControlName): string {
  return `/${prefix}/control/${name}`;
}
