/**
 * The surplus in Home Assistant: one more device discovery message for the battery's device, with
 * a surplus power sensor, and per rule a binary sensor (on/off), a diagnostic sensor saying why,
 * and a `number` for each threshold, delay and minimum, set through `…/set` topics.
 *
 * @module
 */
import type { Json, JsonObject } from "../device/flatten.ts";
import { deviceConfigTopic, deviceInfo, type Origin, ORIGIN_NAME } from "../hass/discovery.ts";
import { KINDS } from "../hass/entities.ts";
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
}

/** A component of a discovery message. */
type Component = Record<string, Json>;

/** The surplus's discovery message and its topic. */
export interface SurplusDiscovery {
  /** `homeassistant/device/<device id>_surplus/config`; publish retained. */
  topic: string;
  config: {
    device: Record<string, Json>;
    origin: Record<string, Json>;
    availability_topic: string;
    payload_available: string;
    payload_not_available: string;
    components: Record<string, Component>;
  };
}

function ruleComponents(prefix: string, id: string, rule: RuleSettings): Record<string, Component> {
  const base = `surplus_${rule.name}`;
  const entity = (platform: string, cid: string, name: string, state: string): Component => ({
    platform,
    name,
    unique_id: `${id}_${cid}`,
    default_entity_id: `${platform}.ess_${cid}`,
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

/**
 * The surplus's discovery message: topic `homeassistant/device/<device id>_surplus/config`,
 * under the battery's own device.
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
 * ```
 */
export function buildSurplusDiscovery(input: SurplusDiscoveryInput): SurplusDiscovery {
  const { prefix } = input;
  const device = deviceInfo(input.systeminfo, input.fallbackId);
  const id = (device["identifiers"] as string[])[0]!;
  const components: Record<string, Component> = {
    surplus_power: {
      platform: "sensor",
      name: "Surplus power",
      unique_id: `${id}_surplus_power`,
      default_entity_id: "sensor.ess_surplus_power",
      state_topic: surplusPowerTopic(prefix),
      // Home Assistant takes `None` as "unknown": the surplus is unknown, not zero.
      value_template: `{{ {'${UNKNOWN_PAYLOAD}': 'None'}.get(value, value) }}`,
      ...KINDS.power,
    },
  };
  for (const rule of input.rules) Object.assign(components, ruleComponents(prefix, id, rule));
  const origin: Record<string, Json> = { name: ORIGIN_NAME, sw_version: input.origin.version };
  if (input.origin.supportUrl !== undefined) origin["support_url"] = input.origin.supportUrl;
  return {
    topic: deviceConfigTopic(`${id}_surplus`, input.discoveryPrefix),
    config: {
      device,
      origin,
      availability_topic: statusTopic(prefix),
      payload_available: "online",
      payload_not_available: "offline",
      components,
    },
  };
}
