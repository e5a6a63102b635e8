/**
 * What ess knows of pyess's Home Assistant configs: its `hass_autoconfig_sensors` list, the
 * config topics it announced (which ess clears when it takes over), and how to tell a retained
 * config of ess or pyess from anyone else's.
 *
 * @module
 */
import { isJsonObject, type Json, type JsonObject } from "../device/flatten.ts";
import { statusTopic } from "../mqtt/topics.ts";
import { DEFAULT_DISCOVERY_PREFIX, ORIGIN_NAME } from "./discovery.ts";

/**
 * Parses pyess's `hass_autoconfig_sensors` (comma-separated state topics).
 *
 * @example
 * ```ts
 * parseSensorList(" ess/common/BATT/soc, ess/common/GRID/active_power"); // ["ess/common/BATT/soc", "ess/common/GRID/active_power"]
 * ```
 */
export function parseSensorList(text: string): string[] {
  return text.split(",").map((t) => t.trim()).filter((t) => t !== "");
}

/**
 * The config topic pyess announced a state topic on: the topic with its slashes removed, as a
 * sensor (`ess/common/BATT/soc` → `homeassistant/sensor/esscommonBATTsoc/config`).
 */
export function pyessConfigTopic(
  topic: string,
  discoveryPrefix = DEFAULT_DISCOVERY_PREFIX,
): string {
  return `${discoveryPrefix}/sensor/${topic.replaceAll("/", "")}/config`;
}

/**
 * The pyess config topics to clear when ess takes over: one for every state topic pyess could
 * have announced (all published ones and the `hass_autoconfig_sensors` list), without repeats.
 */
export function pyessConfigTopics(
  topics: Iterable<string>,
  discoveryPrefix = DEFAULT_DISCOVERY_PREFIX,
): string[] {
  return [...new Set([...topics].map((t) => pyessConfigTopic(t, discoveryPrefix)))].sort();
}

/** Which tool a retained discovery config belongs to, if it is ess or pyess. */
export type ConfigOwner = "ess" | "pyess";

function field(object: JsonObject, ...keys: string[]): Json | undefined {
  for (const key of keys) if (object[key] !== undefined) return object[key];
  return undefined;
}

/**
 * Decides whether a retained discovery config belongs to this ess (or to pyess before it), for
 * `ess hass --remove`. The rule is narrow on purpose:
 * - ess: a device config (`<discovery>/device/<id>/config`) whose origin is named `ess` and whose
 *   availability topic is `<prefix>/status`, so another ess with another prefix is left alone;
 * - pyess: a sensor config (`<discovery>/sensor/<object>/config`) whose state topic lies under
 *   `<prefix>/` and whose object id is that state topic with its slashes removed, as pyess made it.
 *
 * @example
 * ```ts
 * configOwner("homeassistant/sensor/esscommonBATTsoc/config", '{"name":"ess/common/BATT/soc","state_topic":"ess/common/BATT/soc"}', "ess"); // "pyess"
 * ```
 */
export function configOwner(
  topic: string,
  payload: string,
  prefix: string,
  discoveryPrefix = DEFAULT_DISCOVERY_PREFIX,
): ConfigOwner | undefined {
  if (!topic.startsWith(`${discoveryPrefix}/`)) return undefined;
  const [platform, object, last, ...rest] = topic.slice(discoveryPrefix.length + 1).split("/");
  if (last !== "config" || rest.length > 0 || object === undefined) return undefined;
  let json: Json;
  try {
    json = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (!isJsonObject(json)) return undefined;
  if (platform === "device") {
    const origin = field(json, "origin", "o");
    const name = isJsonObject(origin) ? origin["name"] : undefined;
    const availability = field(json, "availability_topic", "avty_t");
    return name === ORIGIN_NAME && availability === statusTopic(prefix) ? "ess" : undefined;
  }
  if (platform === "sensor") {
    const state = field(json, "state_topic", "stat_t");
    return typeof state === "string" && state.startsWith(`${prefix}/`) &&
        state.replaceAll("/", "") === object
      ? "pyess"
      : undefined;
  }
  return undefined;
}
