/**
 * What ess knows of pyess's Home Assistant configs: its `hass_autoconfig_sensors` list, the
 * retained configs pyess's `essmqtt` announced for it (which ess clears when it takes over), and
 * how to tell a retained config of ess or pyess from anyone else's.
 *
 * Every rule here is read from pyess's own code (github.com/gluap/pyess, `pyess/essmqtt.py`):
 * - it announced only when `hass_autoconfig_sensors` was set, one config per entry of
 *   `value.split(",")`, entries untrimmed;
 * - on `homeassistant/<platform>/<entry with every "/" removed>/config`, the prefix fixed;
 * - platform `switch` when the entry contains `control`, else `sensor` (0.1.20 and later; 0.1.12
 *   to 0.1.18 made every entry a sensor, and before 0.1.12 nothing was retained);
 * - payload `{"name": entry, "state_topic": entry, …}`; from 0.1.20 also `"unique_id"` (the
 *   object id) and the device `{"identifiers": ["lgesss"], …, "sw_version": "pyess"}`;
 *   `…control/active` became `{"name": "ess_active", "state_topic": "ess/home/operation/status",
 *   "command_topic": "ess/control/active", …}`;
 * - its state topics always lay under `ess/`: pyess had no prefix option.
 *
 * @module
 */
import { isJsonObject, type Json, type JsonObject, ownValue } from "../device/flatten.ts";
import { UsageError } from "../errors.ts";
import { statusTopic } from "../mqtt/topics.ts";
import { DEFAULT_DISCOVERY_PREFIX, ORIGIN_NAME } from "./discovery.ts";
import { ENTITY_TABLE, rowTopic } from "./entities.ts";

/** The discovery prefix pyess wrote to: fixed in its code, whatever Home Assistant used. */
export const PYESS_DISCOVERY_PREFIX = "homeassistant";

/**
 * The most entries `hass_autoconfig_sensors` may list: the device has about 80 state topics, and
 * every entry costs a message to the broker at each start.
 */
export const MAX_AUTOCONFIG_SENSORS = 500;

/** The device identifier pyess 0.1.20 and later gave every config. */
const PYESS_DEVICE = "lgesss";

/** `hass_autoconfig_sensors`, read for ess's own use and for pyess's configs. */
export interface AutoconfigSensors {
  /** The state topics ess announces as (binary) sensors: the entries, trimmed, none empty. */
  sensors: string[];
  /** The config topics pyess announced for the same value, in its order, without repeats. */
  pyessTopics: string[];
}

/**
 * Whether pyess could have published on `topic`: its MQTT library refuses wildcards and topics
 * over 65535 bytes, and a broker drops a client that sends NUL.
 */
function publishable(topic: string): boolean {
  return !/[#+]/.test(topic) && !topic.includes("\0") &&
    new TextEncoder().encode(topic).length <= 65535;
}

/**
 * The config topic pyess (0.1.20 and later) announced one `hass_autoconfig_sensors` entry on,
 * the entry exactly as pyess split it (spaces kept).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(pyessConfigTopic("ess/common/BATT/soc"), "homeassistant/sensor/esscommonBATTsoc/config");
 * equal(pyessConfigTopic("ess/control/active"), "homeassistant/switch/esscontrolactive/config");
 * ```
 */
export function pyessConfigTopic(entry: string): string {
  const platform = entry.includes("control") ? "switch" : "sensor";
  return `${PYESS_DISCOVERY_PREFIX}/${platform}/${entry.replaceAll("/", "")}/config`;
}

/**
 * Reads `hass_autoconfig_sensors` (comma-separated state topics) for ess's own sensors and for
 * the configs pyess announced for it. More than {@link MAX_AUTOCONFIG_SENSORS} entries is a
 * {@link UsageError}.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * const read = readAutoconfigSensors("ess/common/BATT/soc, ess/control/active");
 * deepEqual(read.sensors, ["ess/common/BATT/soc", "ess/control/active"]);
 * deepEqual(read.pyessTopics, [
 *   "homeassistant/sensor/esscommonBATTsoc/config",
 *   "homeassistant/switch/ esscontrolactive/config",
 * ]);
 * ```
 */
export function readAutoconfigSensors(text: string): AutoconfigSensors {
  const entries = text.split(",");
  if (entries.length > MAX_AUTOCONFIG_SENSORS) {
    throw new UsageError(
      `hass_autoconfig_sensors lists ${entries.length} topics; at most ` +
        `${MAX_AUTOCONFIG_SENSORS} make sense (the device has about 80)`,
    );
  }
  return {
    sensors: entries.map((t) => t.trim()).filter((t) => t !== ""),
    pyessTopics: [...new Set(entries.map(pyessConfigTopic))].filter(publishable),
  };
}

/** Which tool a retained discovery config belongs to, if it is ess or pyess. */
export type ConfigOwner = "ess" | "pyess";

function field(object: JsonObject, ...keys: string[]): Json | undefined {
  for (const key of keys) {
    const value = ownValue(object, key);
    if (value !== undefined) return value;
  }
  return undefined;
}

/**
 * Whether a device config of ess's is this ess's (`prefix`): its availability topic is
 * `<prefix>/status`, or one of its availability list is (one of several devices, named mode);
 * or, announced for `ess mqtt --once` without one, its entities read the entity table's topics
 * under `<prefix>/` (for one of several devices: under the device's prefix).
 */
function isOurs(json: JsonObject, prefix: string): boolean {
  const availability = field(json, "availability_topic", "avty_t");
  if (availability !== undefined) return availability === statusTopic(prefix);
  const list = field(json, "availability", "avty");
  if (Array.isArray(list)) {
    return list.some((a) => isJsonObject(a) && field(a, "topic", "t") === statusTopic(prefix));
  }
  const components = field(json, "components", "cmps");
  if (!isJsonObject(components)) return false;
  const states = Object.entries(components).flatMap(([id, c]) => {
    const state = isJsonObject(c) ? field(c, "state_topic", "stat_t") : undefined;
    return typeof state === "string" ? [[id, state] as const] : [];
  });
  return states.length > 0 && states.every(([, state]) => state.startsWith(`${prefix}/`)) &&
    states.some(([id, state]) =>
      ENTITY_TABLE.some((row) => row.id === id && rowTopic(prefix, row) === state)
    );
}

/** pyess's sensor of any release: name and state topic the entry, the object id it without "/". */
function isPyessSensor(json: JsonObject, object: string): boolean {
  const state = json["state_topic"];
  return typeof state === "string" && json["name"] === state &&
    state.replaceAll("/", "") === object && /^\/?ess\//.test(state.trim());
}

/** pyess 0.1.20 and later, sensor or switch: its unique id is the object id, its device lgesss. */
function isPyessDevice(json: JsonObject, object: string): boolean {
  const device = json["device"];
  const ids = isJsonObject(device) ? device["identifiers"] : undefined;
  return json["unique_id"] === object && Array.isArray(ids) && ids.length === 1 &&
    ids[0] === PYESS_DEVICE && isJsonObject(device) && device["sw_version"] === "pyess";
}

/**
 * Decides whether a retained discovery config belongs to this ess (or to pyess before it), for
 * `ess hass --remove`. The rule is narrow on purpose:
 * - ess: a device config (`<discovery>/device/<id>/config`) whose origin is named `ess` and that
 *   is this ess's (availability topic `<prefix>/status`, alone or in a list with a device's, or,
 *   for `--once`, entities reading `<prefix>/…`), so another ess with another prefix is left
 *   alone;
 * - pyess: a sensor or switch config under `homeassistant/` in the shape pyess's code gave it
 *   (see the module's notes); pyess's topics do not move with ess's prefix.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const old = '{"name": "ess/common/BATT/soc", "state_topic": "ess/common/BATT/soc"}';
 * equal(configOwner("homeassistant/sensor/esscommonBATTsoc/config", old, "ess"), "pyess");
 * equal(configOwner("homeassistant/sensor/garden/config", old, "ess"), undefined);
 * ```
 */
export function configOwner(
  topic: string,
  payload: string,
  prefix: string,
  discoveryPrefix = DEFAULT_DISCOVERY_PREFIX,
): ConfigOwner | undefined {
  const json = parseObject(payload);
  if (json === undefined) return undefined;
  const ours = splitConfigTopic(topic, discoveryPrefix);
  if (ours?.platform === "device") {
    const origin = field(json, "origin", "o");
    const name = isJsonObject(origin) ? origin["name"] : undefined;
    return name === ORIGIN_NAME && isOurs(json, prefix) ? "ess" : undefined;
  }
  const theirs = splitConfigTopic(topic, PYESS_DISCOVERY_PREFIX);
  if (theirs?.platform === "sensor" && isPyessSensor(json, theirs.object)) return "pyess";
  if (
    (theirs?.platform === "sensor" || theirs?.platform === "switch") &&
    isPyessDevice(json, theirs.object)
  ) return "pyess";
  return undefined;
}

function parseObject(payload: string): JsonObject | undefined {
  try {
    const json: Json = JSON.parse(payload);
    return isJsonObject(json) ? json : undefined;
  } catch {
    return undefined;
  }
}

/** `<discovery>/<platform>/<object>/config` → platform and object. */
function splitConfigTopic(
  topic: string,
  discoveryPrefix: string,
): { platform: string; object: string } | undefined {
  if (!topic.startsWith(`${discoveryPrefix}/`)) return undefined;
  const [platform, object, last, ...rest] = topic.slice(discoveryPrefix.length + 1).split("/");
  if (last !== "config" || rest.length > 0 || platform === undefined || object === undefined) {
    return undefined;
  }
  return { platform, object };
}
