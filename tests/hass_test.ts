import { deepEqual, equal, match, ok, throws } from "node:assert/strict";
import type { JsonObject } from "../lib/device/flatten.ts";
import {
  buildDiscovery,
  deviceId,
  type Discovery,
  type DiscoveryInput,
} from "../lib/hass/discovery.ts";
import { ENTITY_TABLE, rowTopic } from "../lib/hass/entities.ts";
import {
  configOwner,
  MAX_AUTOCONFIG_SENSORS,
  pyessConfigTopic,
  readAutoconfigSensors,
} from "../lib/hass/pyess.ts";
import { UsageError } from "../lib/errors.ts";
import { normalise } from "../lib/model/normalise.ts";
import type { Reading } from "../lib/model/reading.ts";
import { PYESS_EARLY, PYESS_LATEST, PYESS_SENSORS } from "./_hass_pyess.ts";
import { discoveryProblems, renderState } from "./_hass_rules.ts";
import { readingTopics } from "./_reading_topics.ts";

const device = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/hass_device.json", import.meta.url)),
) as Record<string, JsonObject>;
const systeminfo = device["systeminfo"]!;
/** The fixture device (an ESS Home 8, alg_setting `1`) as the model layer reads it. */
const reading = normalise(device);

/** The topics the bridge publishes for `r` (the fixture device's reading unless given). */
function publishedTopics(prefix: string, r: Reading = reading): Set<string> {
  return new Set(readingTopics(prefix, r).keys());
}

const origin = { version: "0.1.0" };

/** The fixture device's announcement, as a parsed message; `published` defaults to all its topics. */
const announced = (input: Partial<DiscoveryInput> = {}): Discovery["config"] =>
  JSON.parse(JSON.stringify(
    buildDiscovery({
      prefix: "ess",
      systeminfo,
      published: publishedTopics(input.prefix ?? "ess"),
      origin,
      fallbackId: "host",
      reading,
      ...input,
    }).config,
  ));

Deno.test("buildDiscovery() announces every table row valid by Home Assistant's rules", () => {
  for (const prefix of ["ess", "house/ess"]) {
    const published = new Set(ENTITY_TABLE.map((row) => rowTopic(prefix, row)));
    const d = buildDiscovery({ prefix, systeminfo, published, origin, fallbackId: "host" });
    equal(d.announced.length, ENTITY_TABLE.length);
    const config = JSON.parse(JSON.stringify(d.config));
    deepEqual(discoveryProblems(config, published, prefix), []);
    equal(new Set(ENTITY_TABLE.map((r) => r.id)).size, ENTITY_TABLE.length, "component ids");
  }
});

Deno.test("buildDiscovery() for a device's reading topics", async (t) => {
  const published = publishedTopics("ess");
  const d = buildDiscovery({
    prefix: "ess",
    systeminfo,
    published,
    origin,
    fallbackId: "host",
    reading,
  });
  const components = d.config.components;

  await t.step("should be valid by the rules", () => {
    deepEqual(discoveryProblems(JSON.parse(JSON.stringify(d.config)), published, "ess"), []);
  });

  await t.step("should announce SOC, powers, daily energy and the controls", () => {
    const ids = new Set(d.announced.map((r) => r.id));
    for (
      const id of [
        "battery_soc",
        "pv_power",
        "load_power",
        "grid_power",
        "battery_power",
        "pv_generation_today",
        "grid_feed_in_today",
        "grid_purchase_today",
        "battery_charge_today",
        "battery_discharge_today",
        "load_consumption_today",
        "system",
        "winter_mode",
        "fast_charge",
        "charge_strategy",
        "backup_reserve",
      ]
    ) ok(ids.has(id), id);
    deepEqual(components["battery_soc"], {
      platform: "sensor",
      name: "Battery SOC",
      unique_id: "ess_412khab0815_battery_soc",
      default_entity_id: "sensor.ess_battery_soc",
      state_topic: "ess/reading/battery/soc",
      device_class: "battery",
      unit_of_measurement: "%",
      state_class: "measurement",
      suggested_display_precision: 1,
    });
  });

  await t.step("should switch the system and winter mode through the control topics", () => {
    deepEqual(components["system"], {
      platform: "switch",
      name: "System",
      unique_id: "ess_412khab0815_system",
      default_entity_id: "switch.ess_system",
      state_topic: "ess/reading/status/running",
      command_topic: "ess/control/active",
      payload_on: "true",
      payload_off: "false",
      state_on: "on",
      state_off: "off",
    });
    equal(components["winter_mode"]?.["state_topic"], "ess/reading/settings/winter_mode");
    equal(components["winter_mode"]?.["command_topic"], "ess/control/winter_mode");
    equal(components["winter_mode"]?.["entity_category"], "config");
  });

  await t.step("should list rows without a published topic with only their platform", () => {
    deepEqual(components["backup_mode"], { platform: "switch" }, "no backup_setting in batt");
    deepEqual(components["pv3_power"], { platform: "sensor" });
    deepEqual(components["grid_power_b"], { platform: "sensor" });
  });

  await t.step("should describe the device from systeminfo", () => {
    equal(d.topic, "homeassistant/device/ess_412khab0815/config");
    deepEqual(d.config.device, {
      identifiers: ["ess_412khab0815"],
      name: "LG ESS",
      manufacturer: "LG",
      model: "LG ESS Home 8",
      serial_number: "412KHAB0815",
      sw_version: "10.05.6120 (PCS LG P1 02.00.03.00 R1801, BMS LGBMS.01.01.02.00)",
    });
    deepEqual(d.config.origin, { name: "ess", sw_version: "0.1.0" });
    equal(d.config.availability_topic, "ess/status");
  });

  await t.step("should say where the energy figures come from", () => {
    const c = components["pv_generation_today"]!;
    equal(c["json_attributes_topic"], "ess/reading/energy/pv_generation/today");
    deepEqual(JSON.parse(String(c["json_attributes_template"])), {
      source: "device",
      source_text: "the device's own counter, from its live answer",
    });
  });
});

Deno.test("buildDiscovery() announces the batt controls once the reading has the settings", async (t) => {
  await t.step("should leave them out while batt was not read yet", () => {
    const r = normalise({ ...device, batt: {} });
    const published = publishedTopics("ess", r);
    const d = buildDiscovery({ prefix: "ess", systeminfo, published, origin, fallbackId: "host" });
    const c = d.config.components;
    deepEqual(c["backup_reserve"], { platform: "number" });
    deepEqual(c["backup_mode"], { platform: "switch" });
  });

  await t.step("should announce them with their control topics once batt is read", () => {
    const published = publishedTopics("ess");
    const d = buildDiscovery({
      prefix: "ess",
      systeminfo,
      published,
      origin,
      fallbackId: "host",
      reading,
    });
    deepEqual(discoveryProblems(JSON.parse(JSON.stringify(d.config)), published, "ess"), []);
    const c = d.config.components;
    equal(c["fast_charge"]?.["state_topic"], "ess/reading/settings/charge_strategy");
    equal(c["fast_charge"]?.["command_topic"], "ess/control/fastcharge");
    equal(c["charge_strategy"]?.["state_topic"], "ess/reading/settings/charge_strategy");
    equal(c["charge_strategy"]?.["command_topic"], "ess/control/charge_strategy");
    deepEqual(c["charge_strategy"]?.["options"], [
      "battery_care",
      "fast_charge",
      "weather_forecast",
    ]);
    equal(c["backup_reserve"]?.["state_topic"], "ess/reading/settings/backup_reserve");
    equal(c["backup_reserve"]?.["command_topic"], "ess/control/backup_soc");
    for (const id of ["fast_charge", "charge_strategy", "backup_reserve"]) {
      equal(c[id]?.["entity_category"], "config", id);
    }
  });

  await t.step("should announce backup mode where batt has backup_setting", () => {
    const r = normalise({ ...device, batt: { ...device["batt"], backup_setting: "on" } });
    const published = publishedTopics("ess", r);
    const d = buildDiscovery({ prefix: "ess", systeminfo, published, origin, fallbackId: "host" });
    deepEqual(discoveryProblems(JSON.parse(JSON.stringify(d.config)), published, "ess"), []);
    const c = d.config.components["backup_mode"];
    equal(c?.["state_topic"], "ess/reading/settings/backup_mode");
    equal(c?.["command_topic"], "ess/control/backup_mode");
  });
});

Deno.test("buildDiscovery() reads alg_setting in every firmware form", async (t) => {
  /** The announcement and the strategy topic's payload for a batt with `alg`. */
  const announce = (alg: string) => {
    const r = normalise({ ...device, batt: { ...device["batt"], alg_setting: alg } });
    const topics = readingTopics("ess", r);
    const d = buildDiscovery({
      prefix: "ess",
      systeminfo,
      published: new Set(topics.keys()),
      origin,
      fallbackId: "host",
      reading: r,
    });
    return {
      c: d.config.components,
      value: topics.get("ess/reading/settings/charge_strategy")!,
    };
  };
  // alg_setting → the select's option and the fast charge switch.
  const firmwares = {
    classic: { off: ["battery_care", "off"], on: ["fast_charge", "on"] },
    digits: {
      "0": ["battery_care", "off"],
      "1": ["fast_charge", "on"],
      "2": ["weather_forecast", "off"],
    },
    words: {
      battery_care: ["battery_care", "off"],
      fast_charge: ["fast_charge", "on"],
      weather_forecast: ["weather_forecast", "off"],
    },
  } as const;
  for (const [firmware, values] of Object.entries(firmwares)) {
    await t.step(`should show the strategy and fast charge on ${firmware} firmware`, () => {
      for (const [alg, [option, fast]] of Object.entries(values)) {
        const { c, value } = announce(alg);
        const select = c["charge_strategy"]!;
        const fastCharge = c["fast_charge"]!;
        equal(renderState(select, value), option, `select for ${alg}`);
        ok((select["options"] as string[]).includes(option), `${option} is an option`);
        const state = renderState(fastCharge, value);
        equal(state, fastCharge[fast === "on" ? "state_on" : "state_off"], `switch for ${alg}`);
      }
    });
  }

  await t.step("should offer older firmware only the strategies it has", () => {
    deepEqual(announce("off").c["charge_strategy"]?.["options"], ["battery_care", "fast_charge"]);
    deepEqual(announce("on").c["charge_strategy"]?.["options"], ["battery_care", "fast_charge"]);
    deepEqual(announce("2").c["charge_strategy"]?.["options"], [
      "battery_care",
      "fast_charge",
      "weather_forecast",
    ]);
  });

  await t.step("should show backup mode simple as on", () => {
    for (const [mode, state] of [["on", "on"], ["off", "off"], ["simple", "on"]] as const) {
      const r = normalise({ ...device, batt: { ...device["batt"], backup_setting: mode } });
      const topics = readingTopics("ess", r);
      const c = announced({ published: new Set(topics.keys()), reading: r }).components[
        "backup_mode"
      ]!;
      equal(renderState(c, topics.get("ess/reading/settings/backup_mode")!), c[`state_${state}`]);
    }
  });
});

Deno.test("buildDiscovery() with hass_autoconfig_sensors", async (t) => {
  const published = publishedTopics("ess");
  const { sensors } = readAutoconfigSensors(
    "ess/common/BATT/soc, ess/home/statistics/pcs_pv_total_power,ess/common/PV/brand,ess/x/y," +
      "ess/control/active,/ess/control/winter_mode",
  );
  const d = buildDiscovery({
    prefix: "ess",
    systeminfo,
    published,
    origin,
    fallbackId: "host",
    sensors,
    reading,
  });

  await t.step("should announce only the picked sensors, and every control", () => {
    deepEqual(d.announced.map((r) => r.id), [
      "battery_soc",
      "pv_power",
      "system",
      "winter_mode",
      "fast_charge",
      "charge_strategy",
      "backup_reserve",
    ]);
    deepEqual(d.config.components["load_power"], { platform: "sensor" });
  });

  await t.step("should report picked topics it cannot announce, but not controls", () => {
    deepEqual(d.unknownSensors, ["ess/common/PV/brand", "ess/x/y"]);
  });
});

Deno.test("buildDiscovery() for ess mqtt --once", async (t) => {
  const published = publishedTopics("ess");
  const once = announced({ published, expireAfterSeconds: 900 });
  const daemon = announced({ published });

  await t.step("should be valid by the rules for --once, and not for the daemon", () => {
    deepEqual(discoveryProblems(once, published, "ess", { expireAfterSeconds: 900 }), []);
    ok(discoveryProblems(once, published, "ess").length > 0, "no availability for a daemon");
    ok(discoveryProblems(daemon, published, "ess", { expireAfterSeconds: 900 }).length > 0);
    deepEqual(discoveryProblems(daemon, published, "ess"), []);
  });

  await t.step("should let sensors and binary sensors expire, and nothing else", () => {
    const expiring = Object.entries(once.components)
      .filter(([, c]) => c["expire_after"] !== undefined);
    ok(expiring.length > 30);
    ok(expiring.every(([, c]) => ["sensor", "binary_sensor"].includes(String(c["platform"]))));
    equal(once.components["battery_charging"]?.["expire_after"], 900);
    equal(once.components["system"]?.["expire_after"], undefined);
    equal(once.components["backup_reserve"]?.["expire_after"], undefined);
  });

  await t.step("should differ from the daemon's only in availability and expiry", () => {
    const { availability_topic: _, payload_available: __, payload_not_available: ___, ...rest } =
      daemon;
    const strip = (config: JsonObject) =>
      JSON.stringify(config, (k, v) => k === "expire_after" ? undefined : v);
    equal(strip(once), strip(rest));
  });
});

Deno.test("deviceId() falls back to the given id without a serial number", () => {
  equal(deviceId(systeminfo, "192.168.1.20"), "ess_412khab0815");
  equal(deviceId({ pms: { serialno: "" } }, "192.168.1.20"), "ess_192_168_1_20");
  equal(deviceId({ ess: [{ serialno: "D015-77" }] }, "x"), "ess_d015_77");
});

Deno.test("buildDiscovery() output never carries object_id", () => {
  const d = buildDiscovery({
    prefix: "ess",
    systeminfo: {},
    published: publishedTopics("ess"),
    origin: { version: "0.1.0", supportUrl: "https://example.org/ess" },
    fallbackId: "ess.local",
  });
  const json = JSON.stringify(d.config);
  ok(!json.includes("object_id"));
  match(d.topic, /^homeassistant\/device\/ess_ess_local\/config$/);
  equal(d.config.device["model"], "ESS");
  equal(d.config.origin["support_url"], "https://example.org/ess");
});

Deno.test("readAutoconfigSensors() derives pyess's config topics as pyess made them", async (t) => {
  const read = readAutoconfigSensors(PYESS_SENSORS);

  await t.step("should name exactly the topics pyess's last release announced on", () => {
    deepEqual(read.pyessTopics, PYESS_LATEST.configs.map((c) => c.topic));
    ok(read.pyessTopics.includes("homeassistant/switch/esscontrolactive/config"));
    ok(!read.pyessTopics.includes("homeassistant/sensor/esscontrolactive/config"));
  });

  await t.step("should keep the space pyess kept after a comma, and trim for ess", () => {
    ok(read.pyessTopics.includes("homeassistant/sensor/ esscommonGRIDactive_power/config"));
    ok(read.sensors.includes("ess/common/GRID/active_power"));
    ok(read.sensors.every((s) => s === s.trim() && s !== ""));
  });

  await t.step("should name a topic once, and none pyess could not publish on", () => {
    deepEqual(
      readAutoconfigSensors("ess/control/active,/ess/control/active,ess/home/#,ess/+/x")
        .pyessTopics,
      ["homeassistant/switch/esscontrolactive/config"],
    );
    deepEqual(readAutoconfigSensors(`ess/a/${"x".repeat(70_000)}`).pyessTopics, []);
  });

  await t.step("should refuse a list longer than any device", () => {
    const long = Array.from({ length: MAX_AUTOCONFIG_SENSORS + 1 }, (_, i) => `ess/x/${i}`);
    throws(() => readAutoconfigSensors(long.join(",")), UsageError);
    equal(readAutoconfigSensors(long.slice(1).join(",")).sensors.length, MAX_AUTOCONFIG_SENSORS);
  });

  await t.step("should follow pyess's platform rule for one entry", () => {
    equal(pyessConfigTopic("ess/common/BATT/soc"), "homeassistant/sensor/esscommonBATTsoc/config");
    equal(
      pyessConfigTopic("/ess/control/fastcharge"),
      "homeassistant/switch/esscontrolfastcharge/config",
    );
  });
});

Deno.test("configOwner() recognises ess's and pyess's configs and nothing else", async (t) => {
  const build = (prefix: string, expireAfterSeconds?: number) =>
    JSON.stringify(announced({ prefix, expireAfterSeconds }));
  await t.step("should claim ess's device config for its prefix only", () => {
    const ours = build("ess");
    equal(configOwner("homeassistant/device/ess_1/config", ours, "ess"), "ess");
    equal(configOwner("homeassistant/device/ess_1/config", ours, "other"), undefined);
    const abbreviated = '{"o":{"name":"ess"},"avty_t":"ess/status","dev":{},"cmps":{}}';
    equal(configOwner("homeassistant/device/x/config", abbreviated, "ess"), "ess");
  });
  await t.step("should claim ess's --once config, without availability, by its topics", () => {
    const once = build("ess", 900);
    equal(configOwner("homeassistant/device/ess_1/config", once, "ess"), "ess");
    equal(configOwner("homeassistant/device/ess_1/config", once, "es"), undefined);
    const nested = build("ess/garage", 900);
    equal(configOwner("homeassistant/device/ess_2/config", nested, "ess"), undefined);
    equal(configOwner("homeassistant/device/ess_2/config", nested, "ess/garage"), "ess");
  });
  for (const version of [PYESS_LATEST, PYESS_EARLY]) {
    await t.step(`should claim every config pyess ${version.pyess} wrote`, () => {
      for (const { topic, payload } of version.configs) {
        equal(configOwner(topic, payload, "ess"), "pyess", topic);
        equal(configOwner(topic, payload, "house"), "pyess", "pyess had no prefix option");
        equal(configOwner(topic, payload, "ess", "ha"), "pyess", "nor a discovery prefix");
      }
    });
  }
  await t.step("should not claim pyess's shapes where pyess never wrote them", () => {
    const [sensor] = PYESS_EARLY.configs;
    const [, , , , active] = PYESS_LATEST.configs;
    equal(
      configOwner(sensor!.topic.replace("homeassistant", "ha"), sensor!.payload, "ess", "ha"),
      undefined,
    );
    equal(configOwner(sensor!.topic.replace("sensor", "light"), sensor!.payload, "ess"), undefined);
    equal(
      configOwner(active!.topic.replace("esscontrolactive", "x"), active!.payload, "ess"),
      undefined,
    );
    const garden = '{"name": "garden/temp", "state_topic": "garden/temp"}';
    equal(configOwner("homeassistant/sensor/gardentemp/config", garden, "ess"), undefined);
  });
  await t.step("should leave other tools' configs alone", () => {
    const z2m = '{"o":{"name":"Zigbee2MQTT"},"avty_t":"ess/status"}';
    equal(configOwner("homeassistant/device/z/config", z2m, "ess"), undefined);
    equal(configOwner("homeassistant/sensor/x/config", "not json", "ess"), undefined);
    equal(configOwner("homeassistant/sensor/n/x/config", "{}", "ess"), undefined);
    equal(configOwner("elsewhere/sensor/x/config", "{}", "ess"), undefined);
  });
});

Deno.test("buildDiscovery() for one of several devices", async (t) => {
  const named = { name: "garage", processPrefix: "ess" };
  await t.step("should pass the rules under the device's prefix, with both statuses", () => {
    const config = announced({ prefix: "ess/garage", named });
    deepEqual(
      discoveryProblems(config, publishedTopics("ess/garage"), "ess/garage", {
        named: { processPrefix: "ess" },
      }),
      [],
    );
    equal(config.device["name"], "LG ESS garage");
  });
  await t.step("should keep the serial's device and unique ids of a single device", () => {
    const single = announced();
    const config = announced({ prefix: "ess/garage", named });
    deepEqual(config.device["identifiers"], single.device["identifiers"]);
    for (const [id, c] of Object.entries(config.components)) {
      equal(c["unique_id"], single.components[id]?.["unique_id"], id);
    }
  });
  await t.step("should give each device its own entity ids", () => {
    const garage = announced({ prefix: "ess/garage", named });
    const house = announced({ prefix: "ess/house", named: { ...named, name: "house" } });
    equal(garage.components["battery_soc"]?.["default_entity_id"], "sensor.ess_garage_battery_soc");
    equal(house.components["battery_soc"]?.["default_entity_id"], "sensor.ess_house_battery_soc");
  });
  await t.step("should read a hass_autoconfig_sensors list as for a single device", () => {
    const input = { systeminfo, published: publishedTopics("ess/garage"), origin, fallbackId: "h" };
    const d = buildDiscovery({
      ...input,
      prefix: "ess/garage",
      named,
      sensors: ["ess/common/BATT/soc", "ess/control/winter_mode"],
    });
    deepEqual(d.unknownSensors, []);
    ok(d.announced.some((row) => row.id === "battery_soc"));
  });
});

Deno.test("configOwner() claims the configs of several devices", async (t) => {
  const named = { name: "garage", processPrefix: "ess" };
  await t.step("should claim a device's config by the process's status in its list", () => {
    const config = JSON.stringify(announced({ prefix: "ess/garage", named }));
    equal(configOwner("homeassistant/device/ess_1/config", config, "ess"), "ess");
    equal(configOwner("homeassistant/device/ess_1/config", config, "other"), undefined);
  });
  await t.step("should claim a device's --once config by the device's prefix only", () => {
    const once = JSON.stringify(
      announced({ prefix: "ess/garage", named, expireAfterSeconds: 900 }),
    );
    equal(configOwner("homeassistant/device/ess_1/config", once, "ess/garage"), "ess");
    equal(configOwner("homeassistant/device/ess_1/config", once, "ess"), undefined);
  });
});
