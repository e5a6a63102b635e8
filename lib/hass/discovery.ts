/**
 * Home Assistant MQTT discovery: the device discovery message (`homeassistant/device/<id>/config`)
 * built from the entity table in `entities.ts`, whose entities read the normalised reading's
 * topics. pyess's old configs are in `pyess.ts`.
 *
 * Everything here is pure: the bridge plugin (`lib/hass/plugin.ts`) and `ess hass` do the MQTT.
 *
 * @module
 */
import { isJsonObject, type Json, type JsonObject, ownValue } from "../device/flatten.ts";
import { CONTROL_NAMES } from "../device/controls.ts";
import { controlTopic, legacyControlTopic, statusTopic } from "../mqtt/topics.ts";
import { CHARGE_STRATEGY_TABLE } from "../device/vocabulary.ts";
import type { EnergyCounter, Reading } from "../model/reading.ts";
import { ENTITY_TABLE, type EntityRow, KINDS, type Platform, rowTopic, slug } from "./entities.ts";

/** Home Assistant's default discovery prefix. */
export const DEFAULT_DISCOVERY_PREFIX = "homeassistant";

/** The name ess gives itself as the origin of its discovery messages. */
export const ORIGIN_NAME = "ess";

/** The first string or number found under `key` anywhere in `value` (ESS Home 15 nests in arrays). */
function findText(value: Json, key: string): string | undefined {
  if (Array.isArray(value)) {
    for (const item of value) {
      const found = findText(item, key);
      if (found !== undefined) return found;
    }
  } else if (isJsonObject(value)) {
    const own = ownValue(value, key);
    if ((typeof own === "string" && own.trim() !== "") || typeof own === "number") {
      return String(own).trim();
    }
    for (const child of Object.values(value)) {
      const found = findText(child, key);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** Where a discovery message comes from: ess and its version. */
export interface Origin {
  version: string;
  supportUrl?: string | undefined;
}

/** What {@link buildDiscovery} needs. */
export interface DiscoveryInput {
  /** ess's topic prefix (`ess`). */
  prefix: string;
  /** Home Assistant's discovery prefix (`homeassistant`). */
  discoveryPrefix?: string | undefined;
  /** The device's systeminfo answer: model, serial number, versions. */
  systeminfo: JsonObject;
  /** Every state topic the bridge publishes; no entity reads any other. */
  published: ReadonlySet<string>;
  origin: Origin;
  /**
   * Identifies the device when systeminfo has no serial number (the registration number or the
   * host); the device's entities are tied to it, so it should not change.
   */
  fallbackId: string;
  /**
   * pyess's `hass_autoconfig_sensors`: when given, only the sensors and binary sensors for these
   * raw state topics are announced (controls always are).
   */
  sensors?: readonly string[] | undefined;
  /**
   * The latest reading, where known: the charge strategy select offers only the strategies the
   * firmware accepts, and each energy sensor says where its figures come from.
   */
  reading?: Reading | undefined;
  /**
   * Announce for one-shot runs (`ess mqtt --once`, from cron): no availability topic, and
   * sensors and binary sensors expire this many seconds after their last value (see
   * {@link EXPIRING_PLATFORMS}). Without it, availability follows `<prefix>/status`.
   */
  expireAfterSeconds?: number | undefined;
  /**
   * One of several devices (a config with `[device NAME]` sections; `prefix` is then the
   * device's, `ess/garage`): see {@link NamedDevice}.
   */
  named?: NamedDevice | undefined;
}

/**
 * How one of several devices is announced. It stays the HA device of its serial number (a user
 * coming from a single device keeps its entities and their history), named `LG ESS <name>`; its
 * entities are available while both the process (`<processPrefix>/status`) and the device
 * (`<prefix>/status`) say `online`; a `hass_autoconfig_sensors` list names topics as for a
 * single device (`ess/common/BATT/soc`) and applies to every device.
 */
export interface NamedDevice {
  /** The device's `[device NAME]`. */
  name: string;
  /** The process's topic prefix (`ess`). */
  processPrefix: string;
}

/**
 * One entry of an availability list: a topic and the payloads that mean on and off (a type, not
 * an interface, so that the message stays assignable to JSON).
 */
export type Availability = {
  topic: string;
  payload_available: string;
  payload_not_available: string;
};

/**
 * The platforms that take `expire_after` in Home Assistant's MQTT discovery; switches, selects
 * and numbers have no such option and show the last retained state.
 */
export const EXPIRING_PLATFORMS: readonly Platform[] = ["sensor", "binary_sensor"];

/** A component of the device discovery message. */
export type Component = Record<string, Json>;

/**
 * A device discovery message: device, origin, availability and components (a type literal, not
 * an interface, so that it stays assignable to JSON values).
 */
export type DiscoveryConfig = {
  device: Record<string, Json>;
  origin: Record<string, Json>;
  /** One device (or the site): available while `<prefix>/status` is `online`. */
  availability_topic?: string;
  payload_available?: string;
  payload_not_available?: string;
  /** One of several devices: the process's status and the device's, both `online`. */
  availability?: Availability[];
  availability_mode?: "all";
  components: Record<string, Component>;
};

/** The device discovery message, with what went into it. */
export interface Discovery {
  /** `homeassistant/device/ess_<serial>/config`; publish retained. */
  topic: string;
  /** The message (availability unless for `--once`). */
  config: DiscoveryConfig;
  /** The rows announced as entities. */
  announced: EntityRow[];
  /**
   * Topics in `sensors` that no announced entity stands for; control topics are not among them,
   * as every control is announced.
   */
  unknownSensors: string[];
}

/**
 * The longest device identifier, without `ess_`. Real serial numbers are a dozen characters; a
 * device (or anything answering as one) that sends 70,000 made a discovery topic no broker takes,
 * and unique ids of 70 KB each.
 */
export const MAX_ID_LENGTH = 48;

/** FNV-1a, 32 bits, as 8 hex digits: tells apart long serials that begin alike. */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return (hash >>> 0).toString(16).padStart(8, "0");
}

/**
 * `ess_<serial>`, the device's identifier and discovery object id; a serial longer than
 * {@link MAX_ID_LENGTH} is cut, and ends in a hash of the whole.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(deviceId({ pms: { serialno: "412KHAB0815" } }, "192.168.1.20"), "ess_412khab0815");
 * equal(deviceId({ pms: { serialno: "A".repeat(70_000) } }, "192.168.1.20").length, 4 + 48);
 * ```
 */
export function deviceId(systeminfo: JsonObject, fallbackId: string): string {
  const id = slug(findText(systeminfo, "serialno") ?? fallbackId) || "device";
  if (id.length <= MAX_ID_LENGTH) return `ess_${id}`;
  return `ess_${id.slice(0, MAX_ID_LENGTH - 9)}_${fnv1a(id)}`;
}

/** The longest text from systeminfo that the device block of the announcement shows. */
const MAX_DEVICE_TEXT = 100;

/** `text`, cut to {@link MAX_DEVICE_TEXT} characters. */
function deviceText(text: string): string {
  return text.length <= MAX_DEVICE_TEXT ? text : `${text.slice(0, MAX_DEVICE_TEXT - 1)}…`;
}

/** The device discovery topic for a device id. */
export function deviceConfigTopic(id: string, discoveryPrefix = DEFAULT_DISCOVERY_PREFIX): string {
  return `${discoveryPrefix}/device/${id}/config`;
}

/**
 * The device block of a discovery message: its identifier ({@link deviceId}), name (`LG ESS`, or
 * with `name` of one of several devices `LG ESS <name>`), maker, model, serial number and
 * firmware, from systeminfo. Every message about the battery carries
 * the same one, so that Home Assistant files their entities under one device.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(deviceInfo({ pms: { model: "LG ESS Home 8", serialno: "S123" } }, "host"), {
 *   identifiers: ["ess_s123"], name: "LG ESS", manufacturer: "LG", model: "LG ESS Home 8",
 *   serial_number: "S123",
 * });
 * ```
 */
export function deviceInfo(
  systeminfo: JsonObject,
  fallbackId: string,
  name?: string,
): Record<string, Json> {
  const serial = findText(systeminfo, "serialno");
  const model = findText(systeminfo, "model");
  const sw = firmware(systeminfo);
  const device: Record<string, Json> = {
    identifiers: [deviceId(systeminfo, fallbackId)],
    name: name === undefined ? "LG ESS" : `LG ESS ${name}`,
    manufacturer: "LG",
    model: deviceText(model ?? "ESS"),
  };
  if (serial !== undefined) device["serial_number"] = deviceText(serial);
  if (sw !== undefined) device["sw_version"] = deviceText(sw);
  return device;
}

function firmware(systeminfo: JsonObject): string | undefined {
  const pms = findText(systeminfo, "pms_version");
  const others = [["PCS", "pcs_version"], ["BMS", "bms_version"]]
    .map(([label, key]) => {
      const v = findText(systeminfo, key!);
      return v === undefined ? undefined : `${label} ${v}`;
    })
    .filter((v) => v !== undefined);
  if (pms === undefined) return others.length > 0 ? others.join(", ") : undefined;
  return others.length > 0 ? `${pms} (${others.join(", ")})` : pms;
}

/** A Jinja template that looks the value up in `map`, passing on what it does not list. */
function mapTemplate(map: Readonly<Record<string, string>>): string {
  const pairs = Object.entries(map).map(([from, to]) => `'${from}': '${to}'`);
  return `{{ {${pairs.join(", ")}}.get(value, value) }}`;
}

/** Where an energy counter's figures come from, in words for the entity's attributes. */
const ENERGY_SOURCES: Readonly<Record<EnergyCounter["source"], string>> = {
  device: "the device's own counter, from its live answer",
  graph: "the device's history graphs",
  integrated: "ess, integrating the polled power",
};

/** The select's options: the firmware's own strategies where the reading names them. */
function selectOptions(row: EntityRow, reading: Reading | undefined): string[] {
  const accepted = reading?.settings.chargeStrategies;
  if (row.control !== "charge_strategy" || accepted === undefined) return [...row.options ?? []];
  return CHARGE_STRATEGY_TABLE.filter((r) => accepted.includes(r.name)).map((r) => r.option);
}

function component(
  row: EntityRow,
  id: string,
  input: DiscoveryInput,
): Component {
  const { prefix, reading, expireAfterSeconds, named } = input;
  // Several devices each need their own entity ids; the unique id, which Home Assistant keeps
  // an entity (and its history) by, stays the serial's.
  const entity = named === undefined ? `ess_${row.id}` : `ess_${slug(named.name)}_${row.id}`;
  const c: Component = {
    platform: row.platform,
    name: row.name,
    unique_id: `${id}_${row.id}`,
    default_entity_id: `${row.platform}.${entity}`,
    state_topic: rowTopic(prefix, row),
  };
  if (row.diagnostic) c["entity_category"] = "diagnostic";
  if (row.setting) c["entity_category"] = "config";
  if (row.valueMap !== undefined) c["value_template"] = mapTemplate(row.valueMap);
  switch (row.platform) {
    case "sensor":
      Object.assign(c, KINDS[row.kind ?? "text"]);
      break;
    case "binary_sensor":
      if (row.binaryClass !== undefined) c["device_class"] = row.binaryClass;
      c["payload_on"] = "on";
      c["payload_off"] = "off";
      break;
    case "switch":
      c["command_topic"] = controlTopic(prefix, row.control!);
      c["payload_on"] = "true";
      c["payload_off"] = "false";
      c["state_on"] = "on";
      c["state_off"] = "off";
      break;
    case "select":
      c["command_topic"] = controlTopic(prefix, row.control!);
      c["options"] = selectOptions(row, reading);
      break;
    case "number": {
      const range = row.range ?? { min: 0, max: 100, step: 1, unit: "%" };
      c["command_topic"] = controlTopic(prefix, row.control!);
      c["min"] = range.min;
      c["max"] = range.max;
      c["step"] = range.step;
      c["mode"] = "box";
      c["unit_of_measurement"] = range.unit;
      break;
    }
  }
  const source = row.energy === undefined ? undefined : reading?.energy[row.energy]?.source;
  if (source !== undefined) {
    // A template without placeholders: the attributes come with every value and say where the
    // figures come from.
    c["json_attributes_topic"] = rowTopic(prefix, row);
    c["json_attributes_template"] = JSON.stringify({
      source,
      source_text: ENERGY_SOURCES[source],
    });
  }
  if (expireAfterSeconds !== undefined && EXPIRING_PLATFORMS.includes(row.platform)) {
    c["expire_after"] = expireAfterSeconds;
  }
  return c;
}

/**
 * Builds the device discovery message. Rows whose topic is not published, or that
 * `sensors` leaves out, are listed with only their platform: that is how Home Assistant is told
 * to remove a component an earlier announcement had.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const input = {
 *   prefix: "ess",
 *   systeminfo: { pms: { model: "LG ESS Home 8", serialno: "S123" } },
 *   published: new Set(["ess/reading/battery/soc"]),
 *   origin: { version: "0.1.0" },
 *   fallbackId: "192.168.1.20",
 * };
 * const d = buildDiscovery(input);
 * equal(d.topic, "homeassistant/device/ess_s123/config");
 * equal(d.config.components["battery_soc"]?.["default_entity_id"], "sensor.ess_battery_soc");
 * equal(d.config.availability_topic, "ess/status");
 *
 * const once = buildDiscovery({ ...input, expireAfterSeconds: 900 });
 * equal(once.config.availability_topic, undefined);
 * equal(once.config.components["battery_soc"]?.["expire_after"], 900);
 *
 * // One of several devices: its own topics, entity ids and name, and two statuses.
 * const garage = buildDiscovery({
 *   ...input,
 *   prefix: "ess/garage",
 *   published: new Set(["ess/garage/reading/battery/soc"]),
 *   named: { name: "garage", processPrefix: "ess" },
 * });
 * equal(garage.topic, "homeassistant/device/ess_s123/config");
 * equal(garage.config.device["name"], "LG ESS garage");
 * equal(garage.config.components["battery_soc"]?.["state_topic"], "ess/garage/reading/battery/soc");
 * equal(garage.config.components["battery_soc"]?.["default_entity_id"], "sensor.ess_garage_battery_soc");
 * equal(garage.config.availability?.map((a) => a.topic).join(" "), "ess/status ess/garage/status");
 * equal(garage.config.availability_mode, "all");
 * ```
 */
export function buildDiscovery(input: DiscoveryInput): Discovery {
  const { prefix, systeminfo, published } = input;
  const id = deviceId(systeminfo, input.fallbackId);
  const picked = input.sensors === undefined ? undefined : new Set(input.sensors);
  const isSensor = (row: EntityRow) =>
    row.platform === "sensor" || row.platform === "binary_sensor";
  // A sensor list names topics as for one device, whichever of several this is.
  const listPrefix = input.named?.processPrefix ?? prefix;
  const pyessTopics = (row: EntityRow) => (row.pyess ?? []).map((t) => `${listPrefix}/${t}`);

  const components: Record<string, Component> = {};
  const announced: EntityRow[] = [];
  for (const row of ENTITY_TABLE) {
    const topic = rowTopic(prefix, row);
    const wanted = published.has(topic) && (picked === undefined || !isSensor(row) ||
      pyessTopics(row).some((t) => picked.has(t)));
    if (!wanted) {
      components[row.id] = { platform: row.platform };
      continue;
    }
    components[row.id] = component(row, id, input);
    announced.push(row);
  }
  const readable = new Set(announced.filter(isSensor).flatMap(pyessTopics));
  // pyess users listed a control topic to get its switch; ess announces every control anyway.
  const controls = new Set(
    CONTROL_NAMES.flatMap((n) => [controlTopic(listPrefix, n), legacyControlTopic(listPrefix, n)]),
  );
  const unknownSensors = [...(picked ?? [])].filter((t) => !readable.has(t) && !controls.has(t));

  const device = deviceInfo(systeminfo, input.fallbackId, input.named?.name);
  const origin: Record<string, Json> = { name: ORIGIN_NAME, sw_version: input.origin.version };
  if (input.origin.supportUrl !== undefined) origin["support_url"] = input.origin.supportUrl;

  // A one-shot run publishes no status, and nothing would ever say `online`: its entities
  // carry an expiry instead, so that they show values after every run and go unavailable only
  // when the runs stop. A daemon's announcement brings availability back.
  const availability = input.expireAfterSeconds !== undefined ? {} : input.named === undefined
    ? {
      availability_topic: statusTopic(prefix),
      payload_available: "online",
      payload_not_available: "offline",
    }
    : {
      availability: [input.named.processPrefix, prefix].map((p): Availability => ({
        topic: statusTopic(p),
        payload_available: "online",
        payload_not_available: "offline",
      })),
      availability_mode: "all" as const,
    };
  return {
    topic: deviceConfigTopic(id, input.discoveryPrefix),
    config: { device, origin, ...availability, components },
    announced,
    unknownSensors,
  };
}
