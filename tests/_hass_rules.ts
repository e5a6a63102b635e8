/**
 * Home Assistant's rules for the entities ess announces, written down independently of the entity
 * table in lib/hass/discovery.ts, so that a wrong row shows up as a problem instead of being confirmed by
 * the code that made it.
 *
 * @module
 */
import { parseControl } from "../lib/device/controls.ts";
import { isJsonObject, type Json, type JsonObject } from "../lib/device/flatten.ts";
import { CONTROL_NAMES, type ControlName } from "../lib/device/controls.ts";
import { controlTopic, statusTopic } from "../lib/mqtt/topics.ts";
import { parseRuleNumber } from "../lib/surplus/settings.ts";

/**
 * A surplus rule's topics: `<prefix>/surplus/<rule>` (its on/off), `…/why`, `…/<setting>` and
 * `…/<setting>/set`. The rule's on/off is what the user switches loads by: not diagnostic.
 */
const SURPLUS_RULE = /\/surplus\/[a-z0-9_]+$/;
const SURPLUS_SET = /\/surplus\/[a-z0-9_]+\/([a-z-]+)\/set$/;

/** The unit a surplus rule's number must have, by its setting's name. */
function surplusUnit(setting: string): string | undefined {
  if (setting.endsWith("-watts")) return "W";
  if (setting.endsWith("-seconds")) return "s";
  if (setting === "min-soc") return "%";
  return undefined;
}

/** Units Home Assistant accepts for each device class ess uses (sensor DEVICE_CLASS_UNITS). */
const CLASS_UNITS: Record<string, readonly string[]> = {
  power: ["mW", "W", "kW", "MW", "GW", "TW", "BTU/h"],
  energy: ["J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh", "cal", "kcal"],
  battery: ["%"],
  voltage: ["µV", "mV", "V", "kV", "MV"],
  current: ["mA", "A"],
  frequency: ["Hz", "kHz", "MHz", "GHz"],
};

/** State classes Home Assistant accepts for each device class (DEVICE_CLASS_STATE_CLASSES). */
const CLASS_STATE_CLASSES: Record<string, readonly string[]> = {
  power: ["measurement"],
  energy: ["total", "total_increasing"],
  battery: ["measurement"],
  voltage: ["measurement"],
  current: ["measurement"],
  frequency: ["measurement"],
};

interface Expected {
  device_class?: string;
  units: readonly string[];
  state_class?: string;
  diagnostic?: true;
}

/** What the issue says a field must look like, by the field's own name. */
function expectedFor(key: string): Expected | undefined {
  if (/^(pcs_status|pcs_stauts|status|bat_status|mode|operation_mode|\w+_version|why)$/.test(key)) {
    return { units: [], diagnostic: true };
  }
  if (/(energy|enery|enegy|_sum)$/.test(key)) {
    return { device_class: "energy", units: ["Wh", "kWh"], state_class: "total_increasing" };
  }
  if (/power$/.test(key)) {
    return { device_class: "power", units: ["W"], state_class: "measurement" };
  }
  if (key === "safty_soc" || /self_consumption|limitation/.test(key)) {
    return { units: ["%"], state_class: "measurement" };
  }
  if (/soc$/.test(key)) {
    return { device_class: "battery", units: ["%"], state_class: "measurement" };
  }
  if (/voltage$/.test(key) || key === "a_phase") {
    return { device_class: "voltage", units: ["V"], state_class: "measurement" };
  }
  if (/_current$/.test(key)) {
    return { device_class: "current", units: ["A"], state_class: "measurement" };
  }
  if (key === "freq") {
    return { device_class: "frequency", units: ["Hz"], state_class: "measurement" };
  }
  return undefined;
}

/**
 * What a topic of the normalised reading (`<prefix>/reading/<path>`) must look like, by its path
 * in the documented layout: SI units, energy in Wh, codes and versions as diagnostic text.
 */
function expectedForReading(path: string): Expected | undefined {
  const power = { device_class: "power", units: ["W"], state_class: "measurement" };
  if (/^(power\/(pv|load|battery|grid)|pv\/\d+\/power|grid\/[abc]\/power)$/.test(path)) {
    return power;
  }
  if (path === "pv/capacity") return { ...power, diagnostic: true };
  if (path === "battery/soc") {
    return { device_class: "battery", units: ["%"], state_class: "measurement" };
  }
  if (/^(pv\/\d+|grid\/[abc])\/voltage$/.test(path)) {
    return { device_class: "voltage", units: ["V"], state_class: "measurement" };
  }
  if (/^pv\/\d+\/current$/.test(path)) {
    return { device_class: "current", units: ["A"], state_class: "measurement" };
  }
  if (path === "grid/frequency") {
    return { device_class: "frequency", units: ["Hz"], state_class: "measurement" };
  }
  if (/^energy\/[a-z_]+\/(today|month)$/.test(path)) {
    return { device_class: "energy", units: ["Wh", "kWh"], state_class: "total_increasing" };
  }
  if (
    path === "self_consumption/today" ||
    /^settings\/(reserve|backup_reserve|winter_reserve|feed_in_limit)$/.test(path)
  ) return { units: ["%"], state_class: "measurement" };
  if (
    /^(status\/(operating_mode|inverter|battery)|version\/\w+|settings\/winter_(start|stop))$/
      .test(path)
  ) return { units: [], diagnostic: true };
  return undefined;
}

function keysDeep(value: Json, out: string[] = []): string[] {
  if (Array.isArray(value)) value.forEach((v) => keysDeep(v, out));
  else if (isJsonObject(value)) {
    for (const [k, v] of Object.entries(value)) {
      out.push(k);
      keysDeep(v, out);
    }
  }
  return out;
}

const text = (v: Json | undefined) => typeof v === "string" ? v : undefined;

/**
 * The payloads Home Assistant sends on a control's command topic: a switch's two, each select
 * option, a number's ends and one step (as Home Assistant sends a whole number: `40`).
 */
function commandPayloads(c: JsonObject, platform: string): string[] {
  switch (platform) {
    case "switch":
      return [String(c["payload_on"]), String(c["payload_off"])];
    case "select":
      return Array.isArray(c["options"]) ? c["options"].map(String) : [];
    case "number": {
      const [min, max, step] = [c["min"], c["max"], c["step"]].map(Number) as [
        number,
        number,
        number,
      ];
      return [min, min + step, max].map(String);
    }
  }
  return [];
}

/**
 * What Home Assistant makes of `value` on the component's state topic: the value itself, or
 * what its `value_template` renders. Only the lookup form ess writes,
 * `{{ {'a': 'b', …}.get(value, value) }}`, is understood; any other template throws, so that a
 * new form cannot pass untested.
 */
export function renderState(c: JsonObject, value: string): string {
  const template = c["value_template"];
  if (template === undefined) return value;
  const lookup = typeof template === "string"
    ? /^\{\{ \{(.*)\}\.get\(value, value\) \}\}$/.exec(template)
    : null;
  if (lookup === null) throw new Error(`cannot render the template ${JSON.stringify(template)}`);
  const map = new Map<string, string>();
  for (const pair of lookup[1]!.split(", ")) {
    const m = /^'([^']*)': '([^']*)'$/.exec(pair);
    if (m === null) throw new Error(`cannot read ${JSON.stringify(pair)} in ${template}`);
    map.set(m[1]!, m[2]!);
  }
  return map.get(value) ?? value;
}

/** Home Assistant's MQTT platforms that take `expire_after` (sensor.mqtt, binary_sensor.mqtt). */
const EXPIRING = ["sensor", "binary_sensor"];

/** How the announcement is meant: for the daemon (default), or for `ess mqtt --once`. */
export interface Mode {
  /** For `--once`: the `expire_after` every sensor and binary sensor must carry. */
  expireAfterSeconds?: number;
  /**
   * One of several devices (`prefix` is the device's, `ess/garage`): availability is the list of
   * the process's status and the device's, with `availability_mode: all`, and no single topic.
   */
  named?: { processPrefix: string };
}

/**
 * Every way `config` (a parsed device discovery message) breaks the rules; empty when it is
 * valid. Components with only a platform are removals and are not entities. A daemon's
 * announcement follows `<prefix>/status` and nothing expires; a `--once` announcement has no
 * availability (nothing would ever say `online`) and its sensors expire instead.
 */
export function discoveryProblems(
  config: Json,
  published: ReadonlySet<string>,
  prefix: string,
  mode: Mode = {},
): string[] {
  const problems: string[] = [];
  const fail = (what: string) => problems.push(what);
  if (!isJsonObject(config)) return ["the message is not a JSON object"];
  if (keysDeep(config).some((k) => k === "object_id" || k === "obj_id")) {
    fail("object_id is used (Home Assistant rejects it since 2026.4)");
  }
  const device = config["device"];
  const ids = isJsonObject(device) ? device["identifiers"] : undefined;
  const deviceId = Array.isArray(ids) ? text(ids[0]) : undefined;
  if (!isJsonObject(device) || deviceId === undefined) fail("device without identifiers");
  else {
    if (device["manufacturer"] !== "LG") fail("device manufacturer is not LG");
    for (const k of ["name", "model"]) if (!text(device[k])) fail(`device without ${k}`);
  }
  const origin = config["origin"];
  if (!isJsonObject(origin) || origin["name"] !== "ess" || !text(origin["sw_version"])) {
    fail("origin is not ess with its version");
  }
  const once = mode.expireAfterSeconds !== undefined;
  const availability = ["availability_topic", "payload_available", "payload_not_available"]
    .filter((k) => config[k] !== undefined || keysDeep(config).includes(k));
  if (once && availability.length > 0) {
    fail(`${availability.join(", ")} in a --once announcement: nothing publishes it`);
  }
  if (!once && mode.named !== undefined) {
    // Home Assistant's list form: each entry a topic with its payloads; "all": every one online.
    const want = [statusTopic(mode.named.processPrefix), statusTopic(prefix)];
    const list = config["availability"];
    const topics = Array.isArray(list)
      ? list.map((a) =>
        isJsonObject(a) && a["payload_available"] === "online" &&
          a["payload_not_available"] === "offline"
          ? text(a["topic"])
          : undefined
      )
      : [];
    if (JSON.stringify(topics) !== JSON.stringify(want)) {
      fail(`availability is not ${want.join(" and ")}, online/offline`);
    }
    if (config["availability_mode"] !== "all") fail("availability_mode is not all");
    if (config["availability_topic"] !== undefined) fail("availability_topic beside the list");
  } else if (!once && config["availability_topic"] !== statusTopic(prefix)) {
    fail(`availability is not ${statusTopic(prefix)}`);
  }
  const controls = new Set(CONTROL_NAMES.map((n) => controlTopic(prefix, n)));
  const components = config["components"];
  if (!isJsonObject(components)) return [...problems, "no components"];
  const uniqueIds = new Set<string>();
  for (const [cid, c] of Object.entries(components)) {
    if (!isJsonObject(c)) {
      fail(`${cid}: not an object`);
      continue;
    }
    const platform = text(c["platform"]);
    if (!["sensor", "binary_sensor", "switch", "select", "number"].includes(platform ?? "")) {
      fail(`${cid}: unknown platform ${platform}`);
      continue;
    }
    if (Object.keys(c).length === 1) continue;
    checkEntity(cid, c, platform!, deviceId ?? "", published, controls, prefix, fail);
    const expires = c["expire_after"];
    if (expires !== undefined && !EXPIRING.includes(platform!)) {
      fail(`${cid}: Home Assistant's ${platform} has no expire_after`);
    } else if (EXPIRING.includes(platform!) && expires !== mode.expireAfterSeconds) {
      fail(`${cid}: expire_after ${expires}, want ${mode.expireAfterSeconds}`);
    }
    const uid = text(c["unique_id"]) ?? "";
    if (uniqueIds.has(uid)) fail(`${cid}: unique_id ${uid} used twice`);
    uniqueIds.add(uid);
  }
  return problems;
}

function checkEntity(
  cid: string,
  c: JsonObject,
  platform: string,
  deviceId: string,
  published: ReadonlySet<string>,
  controls: ReadonlySet<string>,
  prefix: string,
  fail: (what: string) => void,
): void {
  if (!text(c["name"])) fail(`${cid}: no name`);
  const uid = text(c["unique_id"]);
  if (uid === undefined || !uid.startsWith(`${deviceId}_`)) {
    fail(`${cid}: unique_id ${uid} is not derived from the device id ${deviceId}`);
  }
  const entityId = text(c["default_entity_id"]) ?? "";
  if (!new RegExp(`^${platform}\\.[a-z0-9]+(_[a-z0-9]+)*$`).test(entityId)) {
    fail(`${cid}: default_entity_id ${JSON.stringify(entityId)} is not ${platform}.<slug>`);
  }
  const state = text(c["state_topic"]);
  if (state === undefined || !published.has(state)) {
    fail(`${cid}: state_topic ${state} is not published by the bridge`);
  }
  const command = text(c["command_topic"]);
  const isControl = ["switch", "select", "number"].includes(platform);
  if (isControl !== (command !== undefined)) fail(`${cid}: command_topic present on a ${platform}`);
  const surplusSetting = command === undefined ? undefined : SURPLUS_SET.exec(command)?.[1];
  if (surplusSetting !== undefined) {
    // A surplus rule's number: its unit follows its name, and the plugin takes every value
    // Home Assistant can send.
    if (platform !== "number") fail(`${cid}: a surplus setting on a ${platform}`);
    if (c["unit_of_measurement"] !== surplusUnit(surplusSetting)) {
      fail(`${cid}: unit ${c["unit_of_measurement"]} for ${surplusSetting}`);
    }
    for (const payload of commandPayloads(c, platform)) {
      const refused = parseRuleNumber(surplusSetting, payload);
      if (typeof refused === "string") fail(`${cid}: ${command} refuses ${payload}: ${refused}`);
    }
  } else if (command !== undefined && !controls.has(command)) {
    fail(`${cid}: command_topic ${command} is not a control topic`);
  } else if (command !== undefined) {
    // Every payload Home Assistant can send must be one the bridge carries out.
    const name = command.split("/").at(-1) as ControlName;
    for (const payload of commandPayloads(c, platform)) {
      const refused = parseControl(name, payload);
      if (typeof refused === "string") {
        fail(`${cid}: the bridge refuses ${JSON.stringify(payload)} on ${command}: ${refused}`);
      }
    }
  }
  const category = c["entity_category"];
  if (category !== undefined && category !== "diagnostic" && category !== "config") {
    fail(`${cid}: entity_category ${category}`);
  }
  if (category === "config" && !isControl) {
    fail(`${cid}: Home Assistant allows entity_category config only on entities you can set`);
  }
  const key = state?.split("/").at(-1) ?? "";
  const readingPath = state?.startsWith(`${prefix}/reading/`)
    ? state.slice(prefix.length + "/reading/".length)
    : undefined;
  if (platform === "binary_sensor" && readingPath !== undefined) {
    if (c["payload_on"] !== "on" || c["payload_off"] !== "off") {
      fail(`${cid}: binary sensor payloads are not on/off`);
    }
    const live = /^status\/(battery_charging|grid_selling)$/.test(readingPath);
    if (!live && category !== "diagnostic") fail(`${cid}: status flag is not diagnostic`);
  } else if (platform === "binary_sensor") {
    const flagTopic = /\/home\/direction\//.test(state ?? "");
    const [on, off] = flagTopic ? ["1", "0"] : ["on", "off"];
    if (c["payload_on"] !== on || c["payload_off"] !== off) {
      fail(`${cid}: binary sensor payloads are not ${on}/${off}`);
    }
    const surplusRule = SURPLUS_RULE.test(state ?? "");
    if (!flagTopic && !surplusRule && category !== "diagnostic") {
      fail(`${cid}: status flag is not diagnostic`);
    }
    if (surplusRule && category !== undefined) fail(`${cid}: a surplus rule is not ${category}`);
  }
  if (platform === "switch" && (c["payload_on"] !== "true" || c["payload_off"] !== "false")) {
    fail(`${cid}: switch commands are not true/false`);
  }
  if (platform === "select") {
    const options = c["options"];
    if (!Array.isArray(options) || options.length === 0) fail(`${cid}: select without options`);
  }
  if (platform === "number" && surplusSetting === undefined) {
    if (c["min"] !== 0 || c["max"] !== 100 || c["unit_of_measurement"] !== "%") {
      fail(`${cid}: number is not 0-100 %`);
    }
  }
  if (platform !== "sensor") return;
  const expected = readingPath === undefined ? expectedFor(key) : expectedForReading(readingPath);
  if (expected === undefined) {
    fail(`${cid}: no rule covers the field ${readingPath ?? key}`);
    return;
  }
  const dc = text(c["device_class"]);
  const unit = text(c["unit_of_measurement"]);
  const sc = text(c["state_class"]);
  if (dc !== expected.device_class) {
    fail(`${cid}: device_class ${dc}, want ${expected.device_class}`);
  }
  if (expected.units.length === 0 ? unit !== undefined : !expected.units.includes(unit ?? "")) {
    fail(`${cid}: unit ${unit}, want ${expected.units.join(" or ") || "none"}`);
  }
  if (sc !== expected.state_class) fail(`${cid}: state_class ${sc}, want ${expected.state_class}`);
  if (expected.diagnostic && category !== "diagnostic") fail(`${cid}: not diagnostic`);
  if (dc !== undefined && !(CLASS_UNITS[dc] ?? []).includes(unit ?? "")) {
    fail(`${cid}: Home Assistant rejects unit ${unit} for device class ${dc}`);
  }
  if (dc !== undefined && sc !== undefined && !(CLASS_STATE_CLASSES[dc] ?? []).includes(sc)) {
    fail(`${cid}: Home Assistant warns about state class ${sc} for device class ${dc}`);
  }
}

/**
 * What Home Assistant shows for entity `cid` of `config`, given what the broker retains (topic →
 * payload) and how many seconds ago its state topic last got a message: `unavailable`,
 * `unknown` (available, but no value came yet), or the value as rendered.
 * - With an availability topic, the entity is available only while the last message there is
 *   `payload_available`; with nothing there it stays unavailable.
 * - With an availability list and `availability_mode: all`, only while every one of its topics
 *   says its `payload_available`.
 * - Without one it is always available ("If no availability topic is defined, Home Assistant
 *   will consider the MQTT device to be available", sensor.mqtt, binary_sensor.mqtt).
 * - With `expire_after`, it is unavailable once that many seconds passed without a new message;
 *   the next message (a retained one at a restart too) makes it available again.
 */
export function entityState(
  config: JsonObject,
  cid: string,
  retained: ReadonlyMap<string, string>,
  secondsSinceValue: number,
): string {
  const c = (config["components"] as Record<string, JsonObject> | undefined)?.[cid];
  if (c === undefined || Object.keys(c).length === 1) throw new Error(`${cid} is no entity`);
  const list = config["availability"];
  if (Array.isArray(list)) {
    // availability_mode "all" (the only one ess uses): available while every topic says so.
    if (config["availability_mode"] !== "all") throw new Error("only availability_mode all");
    for (const a of list) {
      const entry = a as JsonObject;
      const online = text(entry["payload_available"]) ?? "online";
      if (retained.get(text(entry["topic"]) ?? "") !== online) return "unavailable";
    }
  }
  const topic = text(c["availability_topic"] ?? config["availability_topic"]);
  if (topic !== undefined) {
    const online = text(c["payload_available"] ?? config["payload_available"]) ?? "online";
    if (retained.get(topic) !== online) return "unavailable";
  }
  const value = retained.get(text(c["state_topic"]) ?? "");
  if (value === undefined) return "unknown";
  const expires = c["expire_after"];
  if (typeof expires === "number" && secondsSinceValue >= expires) return "unavailable";
  return renderState(c, value);
}
