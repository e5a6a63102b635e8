/**
 * The retained Home Assistant configs pyess's `essmqtt` left on a broker for one
 * `hass_autoconfig_sensors` value, as its own code made them in two releases
 * (fixtures/pyess_hass_configs.json; fixtures/README.md says how).
 *
 * @module
 */

/** One retained message. */
export interface Retained {
  topic: string;
  payload: string;
}

/** What one pyess release announced. */
export interface PyessRelease {
  /** The release (`0.1.23`). */
  pyess: string;
  commit: string;
  configs: Retained[];
}

const fixture = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/pyess_hass_configs.json", import.meta.url)),
) as { hass_autoconfig_sensors: string; versions: PyessRelease[] };

/** The `hass_autoconfig_sensors` value, exactly as in the config file. */
export const PYESS_SENSORS: string = fixture.hass_autoconfig_sensors;

/** The last release (0.1.23): control topics as switches, with unique id and device. */
export const PYESS_LATEST: PyessRelease = fixture.versions[0]!;

/** 0.1.14, as 0.1.12 to 0.1.18 announced: every entry a sensor, no unique id, no device. */
export const PYESS_EARLY: PyessRelease = fixture.versions[1]!;

/**
 * What a broker holds after a user ran the early release and then the last one: both releases'
 * configs, the later one's where they share a topic.
 */
export const PYESS_LEFT_BEHIND: Retained[] = [
  ...new Map([...PYESS_EARLY.configs, ...PYESS_LATEST.configs].map((m) => [m.topic, m]))
    .values(),
];
