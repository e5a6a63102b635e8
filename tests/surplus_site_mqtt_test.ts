import assert from "node:assert/strict";
import type { JsonObject } from "../lib/device/flatten.ts";
import type { Reading } from "../lib/model/reading.ts";
import { createSurplusPlugin, type SurplusContext } from "../lib/surplus/mqtt.ts";
import type { RuleSettings } from "../lib/surplus/rule.ts";
import { SiteSurplusEngine } from "../lib/surplus/site.ts";
import { memoryLogger, settle } from "./_bridge_fakes.ts";
import { discoveryProblems } from "./_hass_rules.ts";

const SYSTEMINFO: JsonObject = { pms: { model: "LG ESS Home 10", serialno: "S123" } };
const HASS = { version: "0.1.0", fallbackId: "host" };

function rule(name: string, device: string): RuleSettings {
  return {
    name,
    onWatts: 1000,
    offWatts: 0,
    loadWatts: 0,
    onDelaySeconds: 0,
    offDelaySeconds: 0,
    minOnSeconds: 0,
    minOffSeconds: 0,
    minSoc: 0,
    device,
  };
}

const feedIn = (w: number) =>
  ({ power: { gridW: -w, batteryW: 0 }, energy: {} }) as unknown as Reading;

/** One broker seen by every plugin: what is retained; `read` only where a device is behind. */
function fakeBroker() {
  const retained = new Map<string, string>();
  const logger = memoryLogger();
  const publish: SurplusContext["publish"] = (topic, payload, opts) => {
    if (opts?.retain) payload === "" ? retained.delete(topic) : retained.set(topic, payload);
    return Promise.resolve();
  };
  const device: SurplusContext = { publish, logger, read: () => Promise.resolve(SYSTEMINFO) };
  const process: SurplusContext = { publish, logger };
  return { retained, logger, device, process };
}

Deno.test("the surplus on MQTT with several devices", async (t) => {
  const engines = new SiteSurplusEngine({
    surplus: { prioritySocPct: 80, reserveW: 100, windowMs: 60_000 },
    rules: [rule("boiler", "site"), rule("pump", "garage")],
    devices: ["garage", "house"],
    graceMs: 30_000,
  });
  const garage = createSurplusPlugin({
    engine: engines.devices.get("garage")!,
    prefix: "ess/garage",
    hass: { ...HASS, named: { name: "garage", processPrefix: "ess" } },
  });
  const site = createSurplusPlugin({
    engine: engines.site,
    prefix: "ess",
    hass: { ...HASS, site: { devices: ["garage", "house"] } },
  });
  const broker = fakeBroker();
  await garage.onConnect(broker.device);
  await site.onConnect(broker.process);
  await settle();

  await t.step("should listen for run-time settings under each one's own prefix", () => {
    assert.deepEqual(garage.subscriptions, [
      "ess/garage/surplus/+/+/set",
      "ess/garage/surplus/+/overrides",
    ]);
    assert.deepEqual(site.subscriptions, ["ess/surplus/+/+/set", "ess/surplus/+/overrides"]);
  });

  await t.step("should publish a device's surplus under it and the site's under ess", async () => {
    await garage.publish(engines.update("garage", 0, feedIn(700)).device);
    const { site: state } = engines.update("house", 1_000, feedIn(600));
    await site.publish(state);
    assert.equal(broker.retained.get("ess/garage/surplus/power"), "600");
    assert.equal(broker.retained.get("ess/garage/surplus/pump"), "off");
    assert.equal(broker.retained.get("ess/surplus/power"), "1200");
    assert.equal(broker.retained.get("ess/surplus/boiler"), "on");
    assert.equal(broker.retained.get("ess/surplus/boiler/on-watts"), "1000");
    // Each rule is published only where it is computed.
    assert.equal(broker.retained.get("ess/surplus/pump"), undefined);
    assert.equal(broker.retained.get("ess/garage/surplus/boiler"), undefined);
  });

  await t.step("should take a run-time setting on the device's topic", async () => {
    await garage.onMessage("ess/garage/surplus/pump/on-watts/set", "500", false, broker.device);
    assert.equal(engines.devices.get("garage")!.rules[0]!.onWatts, 500);
    assert.equal(broker.retained.get("ess/garage/surplus/pump/overrides"), '{"on-watts":500}');
  });

  await t.step("should announce the site's surplus on a HA device of its own", () => {
    const config = JSON.parse(broker.retained.get("homeassistant/device/ess_site_ess/config")!);
    assert.deepEqual(
      discoveryProblems(config, new Set(broker.retained.keys()), "ess"),
      [],
    );
    assert.deepEqual(config.device.identifiers, ["ess_site_ess"]);
    assert.equal(config.device.name, "LG ESS site");
    assert.equal(config.availability_topic, "ess/status");
    assert.equal(config.components.surplus_power.state_topic, "ess/surplus/power");
    assert.equal(
      config.components.surplus_boiler.default_entity_id,
      "binary_sensor.ess_surplus_boiler",
    );
    assert.equal(config.components.surplus_pump, undefined);
  });

  await t.step("should announce a device's surplus on that device's HA device", () => {
    const config = JSON.parse(broker.retained.get("homeassistant/device/ess_s123_surplus/config")!);
    assert.deepEqual(
      discoveryProblems(config, new Set(broker.retained.keys()), "ess/garage", {
        named: { processPrefix: "ess" },
      }),
      [],
    );
    assert.deepEqual(config.device.identifiers, ["ess_s123"]);
    assert.equal(config.device.name, "LG ESS garage");
    assert.equal(config.availability_topic, undefined);
    assert.equal(config.availability_mode, "all");
    assert.deepEqual(
      config.availability.map((a: JsonObject) => [a.topic, a.payload_available]),
      [["ess/status", "online"], ["ess/garage/status", "online"]],
    );
    assert.equal(config.components.surplus_power.state_topic, "ess/garage/surplus/power");
    assert.equal(
      config.components.surplus_power.default_entity_id,
      "sensor.ess_garage_surplus_power",
    );
    assert.equal(
      config.components.surplus_pump_on_watts.command_topic,
      "ess/garage/surplus/pump/on-watts/set",
    );
    assert.equal(config.components.surplus_boiler, undefined);
  });

  await t.step("should not announce a device's surplus without a device to read", async () => {
    const lone = createSurplusPlugin({
      engine: engines.devices.get("house")!,
      prefix: "ess/house",
      hass: { ...HASS, named: { name: "house", processPrefix: "ess" } },
    });
    const other = fakeBroker();
    await lone.onConnect(other.process);
    await lone.publish(engines.update("house", 2_000, feedIn(600)).device);
    await settle();
    assert.equal(other.retained.get("ess/house/surplus/power"), "500");
    assert.match(other.logger.lines.join("\n"), /discovery of the surplus failed: no device/);
  });
});
