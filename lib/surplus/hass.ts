/**
 * The surplus in Home Assistant: one more device discovery message for the battery's device, with
 * a surplus power sensor, and per rule a binary sensor (on/off), a diagnostic sensor saying why,
 * and a `number` for each threshold, delay and minimum, set through `…/set` topics. With several
 * devices, each device's surplus goes on its own battery's device (`LG ESS garage`), available
 * while both the process and that device are online, and the site's surplus on a device of its
 * own, `LG ESS site`, available while the process is.
 *
 * @module
 */
import type { Json, JsonObject } from "../device/flatten.ts";
import {
  type Component,
  deviceConfigTopic,
  deviceInfo,
  type DiscoveryConfig,
  type Origin,
  ORIGIN_NAME,
} from "../hass/discovery.ts";
import { KINDS, slug } from "../hass/entities.ts";
import { statusTopic } from "../mqtt/topics.ts";
import { RULE_FIELDS, type RuleSettings } from "./rule.ts";
import {
  ruleFieldTopic,
  ruleSetTopic,
  ruleTopic,
  ruleWhyTopic,
  surplusPowerTopic,
  UNKNOWN_PAYLOAD,
} from "./topics.ts";

/** What {@link buildSurplusDiscovery} needs. */
export interface SurplusDiscoveryInput {
  prefix: string;
  discoveryPrefix?: string | undefined;
  /** The device's systeminfo answer, for the device block the battery's entities share. */
  systeminfo: JsonObject;
  fallbackId: string;
  origin: Origin;
  rules: readonly RuleSettings[];
  /**
   * One of several devices (`prefix` is then the device's, `ess/garage`): its `[device NAME]`
   * and the process's prefix (`ess`), as for the device's own discovery.
   */
  named?: { name: string; processPrefix: string } | undefined;
}

/** What {@link buildSiteSurplusDiscovery} needs. */
export interface SiteSurplusDiscoveryInput {
  /** The process's topic prefix (`ess`): the site's surplus is under `<prefix>/surplus/...`. */
  prefix: string;
  discoveryPrefix?: string | undefined;
  origin: Origin;
  /** The rules that follow the site. */
  rules: readonly RuleSettings[];
  /** The devices' names, for the site device's model line. */
  devices: readonly string[];
}

/** The surplus's discovery message and its topic. */
export interface SurplusDiscovery {
  /** `homeassistant/device/<device id>_surplus/config`; publish retained. */
  topic: string;
  config: DiscoveryConfig;
}

/** Where the entities' ids come from: the HA device's id, and the stem of their entity ids. */
interface Ids {
  /** The HA device's identifier: each entity's unique id starts with it. */
  device: string;
  /** `ess`, or `ess_garage` for one of several devices. */
  entity: string;
}

function ruleComponents(prefix: string, ids: Ids, rule: RuleSettings): Record<string, Component> {
  const base = `surplus_${rule.name}`;
  const entity = (platform: string, cid: string, name: string, state: string): Component => ({
    platform,
    name,
    unique_id: `${ids.device}_${cid}`,
    default_entity_id: `${platform}.${ids.entity}_${cid}`,
    state_topic: state,
  });
  const components: Record<string, Component> = {
    [base]: {
      ...entity("binary_sensor", base, `Surplus ${rule.name}`, ruleTopic(prefix, rule.name)),
      payload_on: "on",
      payload_off: "off",
      device_class: "power",
    },
    [`${base}_why`]: {
      ...entity(
        "sensor",
        `${base}_why`,
        `Surplus ${rule.name} why`,
        ruleWhyTopic(prefix, rule.name),
      ),
      entity_category: "diagnostic",
    },
  };
  for (const field of RULE_FIELDS) {
    const cid = `${base}_${field.key.replaceAll("-", "_")}`;
    components[cid] = {
      ...entity(
        "number",
        cid,
        `Surplus ${rule.name} ${field.key.replaceAll("-", " ")}`,
        ruleFieldTopic(prefix, rule.name, field.key),
      ),
      command_topic: ruleSetTopic(prefix, rule.name, field.key),
      min: field.min,
      max: field.max,
      step: 1,
      mode: "box",
      unit_of_measurement: field.unit,
      entity_category: "config",
    };
  }
  return components;
}

/** The surplus power sensor and every rule's entities. */
function components(
  prefix: string,
  ids: Ids,
  rules: readonly RuleSettings[],
): Record<string, Component> {
  const out: Record<string, Component> = {
    surplus_power: {
      platform: "sensor",
      name: "Surplus power",
      unique_id: `${ids.device}_surplus_power`,
      default_entity_id: `sensor.${ids.entity}_surplus_power`,
      state_topic: surplusPowerTopic(prefix),
      // Home Assistant takes `None` as "unknown": the surplus is unknown, not zero.
      value_template: `{{ {'${UNKNOWN_PAYLOAD}': 'None'}.get(value, value) }}`,
      ...KINDS.power,
    },
  };
  for (const rule of rules) Object.assign(out, ruleComponents(prefix, ids, rule));
  return out;
}

function originBlock(origin: Origin): Record<string, Json> {
  const out: Record<string, Json> = { name: ORIGIN_NAME, sw_version: origin.version };
  if (origin.supportUrl !== undefined) out["support_url"] = origin.supportUrl;
  return out;
}

/** Available while every one of `prefixes`' statuses is `online`. */
function availability(prefixes: readonly string[]): Partial<SurplusDiscovery["config"]> {
  if (prefixes.length === 1) {
    return {
      availability_topic: statusTopic(prefixes[0]!),
      payload_available: "online",
      payload_not_available: "offline",
    };
  }
  return {
    availability: prefixes.map((p) => ({
      topic: statusTopic(p),
      payload_available: "online",
      payload_not_available: "offline",
    })),
    availability_mode: "all",
  };
}

/**
 * The surplus's discovery message: topic `homeassistant/device/<device id>_surplus/config`,
 * under the battery's own device. For one of several devices (`named`), the entity ids carry
 * its name (`sensor.ess_garage_surplus_power`) and it is available while both the process and
 * the device are online.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const d = buildSurplusDiscovery({
 *   prefix: "ess",
 *   systeminfo: { pms: { model: "LG ESS Home 8", serialno: "S123" } },
 *   fallbackId: "host",
 *   origin: { version: "0.1.0" },
 *   rules: [],
 * });
 * equal(d.topic, "homeassistant/device/ess_s123_surplus/config");
 * equal(d.config.components["surplus_power"]?.["state_topic"], "ess/surplus/power");
 * const garage = buildSurplusDiscovery({
 *   prefix: "ess/garage",
 *   systeminfo: { pms: { model: "LG ESS Home 8", serialno: "S123" } },
 *   fallbackId: "host",
 *   origin: { version: "0.1.0" },
 *   rules: [],
 *   named: { name: "garage", processPrefix: "ess" },
 * });
 * equal(garage.config.device["name"], "LG ESS garage");
 * equal(garage.config.components["surplus_power"]?.["state_topic"], "ess/garage/surplus/power");
 * equal(
 *   garage.config.components["surplus_power"]?.["default_entity_id"],
 *   "sensor.ess_garage_surplus_power",
 * );
 * equal(garage.config.availability?.map((a) => a.topic).join(" "), "ess/status ess/garage/status");
 * ```
 */
export function buildSurplusDiscovery(input: SurplusDiscoveryInput): SurplusDiscovery {
  const { prefix, named } = input;
  const device = deviceInfo(input.systeminfo, input.fallbackId, named?.name);
  const id = (device["identifiers"] as string[])[0]!;
  const ids = { device: id, entity: named === undefined ? "ess" : `ess_${slug(named.name)}` };
  return {
    topic: deviceConfigTopic(`${id}_surplus`, input.discoveryPrefix),
    config: {
      device,
      origin: originBlock(input.origin),
      ...availability(named === undefined ? [prefix] : [named.processPrefix, prefix]),
      components: components(prefix, ids, input.rules),
    },
  };
}

/**
 * The site's surplus, with several devices: a discovery message for an HA device of its own,
 * `LG ESS site` (identified by the process's prefix, so that two ess processes keep two sites),
 * available while the process is online; its entity ids read as the topics do
 * (`sensor.ess_surplus_power` for `ess/surplus/power`).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const d = buildSiteSurplusDiscovery({
 *   prefix: "ess",
 *   origin: { version: "0.1.0" },
 *   rules: [],
 *   devices: ["garage", "house"],
 * });
 * equal(d.topic, "homeassistant/device/ess_site_ess/config");
 * equal(d.config.device["name"], "LG ESS site");
 * equal(d.config.availability_topic, "ess/status");
 * equal(d.config.components["surplus_power"]?.["default_entity_id"], "sensor.ess_surplus_power");
 * ```
 */
export function buildSiteSurplusDiscovery(input: SiteSurplusDiscoveryInput): SurplusDiscovery {
  const id = `ess_site_${slug(input.prefix) || "ess"}`;
  const device: Record<string, Json> = {
    identifiers: [id],
    name: "LG ESS site",
    manufacturer: "LG",
    model: `ESS site: ${input.devices.join(" + ")}`,
  };
  return {
    topic: deviceConfigTopic(id, input.discoveryPrefix),
    config: {
      device,
      origin: originBlock(input.origin),
      ...availability([input.prefix]),
      components: components(input.prefix, { device: id, entity: "ess" }, input.rules),
    },
  };
}
