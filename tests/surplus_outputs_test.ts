import assert from "node:assert/strict";
import type { JsonObject } from "../lib/device/flatten.ts";
import { renderMetrics } from "../lib/export/prometheus.ts";
import type { BridgeContext } from "../lib/mqtt/bridge.ts";
import { stateText } from "../lib/serve/state.ts";
import { normalise } from "../lib/model/normalise.ts";
import { SurplusEngine } from "../lib/surplus/engine.ts";
import { buildSurplusDiscovery } from "../lib/surplus/hass.ts";
import { createSurplusPlugin, type SurplusPlugin } from "../lib/surplus/mqtt.ts";
import { surplusDocument } from "../lib/surplus/report.ts";
import type { RuleSettings } from "../lib/surplus/rule.ts";
import { memoryLogger, settle } from "./_bridge_fakes.ts";
import { discoveryProblems } from "./_hass_rules.ts";
import { peerCheck } from "./_peers.ts";
import { PROMTOOL, promtoolCheck } from "./_promtool.ts";

const SYSTEMINFO: JsonObject = { pms: { model: "LG ESS Home 10", serialno: "S123" } };

function rule(patch: Partial<RuleSettings> = {}): RuleSettings {
  return {
    name: "heater",
    onWatts: 1500,
    offWatts: 200,
    loadWatts: 2000,
    onDelaySeconds: 0,
    offDelaySeconds: 0,
    minOnSeconds: 0,
    minOffSeconds: 0,
    minSoc: 0,
    ...patch,
  };
}

const PLUG = { topic: "shellies/heater/relay/0/command", payloadOn: "on", payloadOff: "off" };

function engineWith(rules: RuleSettings[]): SurplusEngine {
  return new SurplusEngine({
    surplus: { prioritySocPct: 80, reserveW: 100, windowMs: 60_000 },
    rules,
    graceMs: 30_000,
  });
}

/** A broker as the plugin sees it: what was published, and what it keeps retained. */
function fakeBroker() {
  const sent: { topic: string; payload: string; retain: boolean }[] = [];
  const retained = new Map<string, string>();
  const logger = memoryLogger();
  const ctx: BridgeContext = {
    prefix: "ess",
    publish(topic, payload, opts) {
      sent.push({ topic, payload, retain: opts?.retain ?? false });
      if (opts?.retain) payload === "" ? retained.delete(topic) : retained.set(topic, payload);
      return Promise.resolve();
    },
    read: () => Promise.resolve(SYSTEMINFO),
    publishedTopics: () => new Set(),
    lastValue: () => undefined,
    logger,
  };
  return { sent, retained, ctx, logger };
}

/** Connects `plugin` and hands it what the broker retains under its subscriptions. */
async function connect(plugin: SurplusPlugin, broker: ReturnType<typeof fakeBroker>) {
  for (const [topic, payload] of broker.retained) {
    if (topic.endsWith("/overrides")) await plugin.onMessage!(topic, payload, true, broker.ctx);
  }
  await plugin.onConnect!(broker.ctx);
}

const reading = (gridW: number) => ({ power: { gridW, batteryW: 0 }, socPct: 50 });

Deno.test("the surplus on MQTT", async (t) => {
  await t.step(
    "should publish the surplus and each rule retained, unknown while unknown",
    async () => {
      const engine = engineWith([rule()]);
      const plugin = createSurplusPlugin({ engine, prefix: "ess" });
      const broker = fakeBroker();
      await plugin.onConnect!(broker.ctx);
      assert.equal(broker.retained.get("ess/surplus/power"), "unknown");
      assert.equal(broker.retained.get("ess/surplus/heater"), "off");
      assert.equal(broker.retained.get("ess/surplus/heater/on-watts"), "1500");
      await plugin.publish(engine.update(0, reading(-1700)));
      assert.equal(broker.retained.get("ess/surplus/power"), "1600");
      assert.equal(broker.retained.get("ess/surplus/heater"), "on");
      assert.match(broker.retained.get("ess/surplus/heater/why")!, /switched on/);
      assert.ok(broker.sent.every((m) => m.retain));
    },
  );
  await t.step("should switch a rule's plug on each change, and off when ess stops", async () => {
    const engine = engineWith([rule({ switch: PLUG })]);
    const plugin = createSurplusPlugin({ engine, prefix: "ess" });
    const broker = fakeBroker();
    await plugin.onConnect!(broker.ctx);
    await plugin.publish(engine.update(0, reading(-1700)));
    await plugin.publish(engine.update(10_000, reading(300)));
    const plug = () => broker.sent.filter((m) => m.topic === PLUG.topic).map((m) => m.payload);
    assert.deepEqual(plug(), ["off", "on"]);
    assert.ok(broker.sent.filter((m) => m.topic === PLUG.topic).every((m) => !m.retain));
    await plugin.onStop!(broker.ctx);
    assert.deepEqual(plug(), ["off", "on", "off"]);
  });
  await t.step("should take a number through …/set, and keep it across a restart", async () => {
    const broker = fakeBroker();
    const first = engineWith([rule()]);
    const plugin = createSurplusPlugin({ engine: first, prefix: "ess" });
    await connect(plugin, broker);
    await plugin.onMessage!("ess/surplus/heater/on-watts/set", "2500", false, broker.ctx);
    assert.equal(first.rules[0]!.onWatts, 2500);
    assert.equal(broker.retained.get("ess/surplus/heater/on-watts"), "2500");
    assert.equal(broker.retained.get("ess/surplus/heater/overrides"), '{"on-watts":2500}');
    // 2000 W is now below the rule's on threshold.
    assert.equal(first.update(0, reading(-2100)).rules[0]!.on, false);

    // ess restarts with the config file's 1500 W; the broker still holds the override.
    const second = engineWith([rule()]);
    await connect(createSurplusPlugin({ engine: second, prefix: "ess" }), broker);
    assert.equal(second.rules[0]!.onWatts, 2500);
    assert.equal(second.update(0, reading(-2100)).rules[0]!.on, false);
  });
  await t.step("should refuse a bad number, a retained command and off above on", async () => {
    const engine = engineWith([rule()]);
    const plugin = createSurplusPlugin({ engine, prefix: "ess" });
    const broker = fakeBroker();
    await connect(plugin, broker);
    const set = (setting: string, payload: string, retained = false) =>
      plugin.onMessage!(`ess/surplus/heater/${setting}/set`, payload, retained, broker.ctx);
    await set("on-watts", "lots");
    await set("on-watts", "2500", true);
    await set("off-watts", "1600");
    await set("colour", "1");
    await plugin.onMessage!("ess/surplus/heater/overrides", "[1]", true, broker.ctx);
    assert.deepEqual([engine.rules[0]!.onWatts, engine.rules[0]!.offWatts], [1500, 200]);
    const warnings = broker.logger.lines.filter((l) => /warning/.test(l)).join("\n");
    assert.match(warnings, /on-watts must be a number/);
    assert.match(warnings, /ignored the retained message on ess\/surplus\/heater\/on-watts\/set/);
    assert.match(warnings, /ignored its overrides: not a JSON object/);
    // One warning a minute per rule: the rest go to debug.
    assert.match(broker.logger.lines.join("\n"), /off-watts \(1600\) must not be above/);
  });
  await t.step("should announce entities that follow Home Assistant's rules", async () => {
    const engine = engineWith([rule({ switch: PLUG }), rule({ name: "pump", minSoc: 40 })]);
    const plugin = createSurplusPlugin({
      engine,
      prefix: "ess",
      hass: { version: "0.1.0", fallbackId: "host" },
    });
    const broker = fakeBroker();
    await plugin.onConnect!(broker.ctx);
    const topic = "homeassistant/device/ess_s123_surplus/config";
    assert.equal(broker.retained.get(topic), undefined, "announced before the device answered");
    await plugin.publish(engine.update(0, reading(-1700)));
    await settle();
    const config = JSON.parse(broker.retained.get(topic)!);
    const published = new Set(broker.retained.keys());
    assert.deepEqual(discoveryProblems(config, published, "ess"), []);
    assert.deepEqual(config.device.identifiers, ["ess_s123"]);
    const ids = Object.keys(config.components);
    assert.ok(ids.includes("surplus_power") && ids.includes("surplus_pump_on_delay_seconds"));
    assert.equal(
      config.components.surplus_heater_on_watts.command_topic,
      "ess/surplus/heater/on-watts/set",
    );
    assert.equal(
      buildSurplusDiscovery({
        prefix: "ess",
        systeminfo: SYSTEMINFO,
        fallbackId: "host",
        origin: { version: "0.1.0" },
        rules: engine.rules,
      }).topic,
      topic,
    );
  });
});

/** A server's snapshot with the heater on at 1600 W. */
function servedWithSurplus() {
  const engine = engineWith([rule()]);
  engine.update(1_750_000_000_000, reading(-1700));
  return {
    states: { systeminfo: SYSTEMINFO },
    reading: normalise({ systeminfo: SYSTEMINFO }),
    lastSuccess: 1_750_000_000_000,
    up: true,
    surplus: surplusDocument(engine),
  };
}

const promtool = peerCheck("promtool", PROMTOOL ? undefined : "promtool is not installed");

Deno.test({
  name: `the surplus's metrics pass promtool check metrics${promtool.label}`,
  ignore: promtool.ignore,
  async fn() {
    promtool.assertPresent();
    const { code, output: said } = await promtoolCheck(
      renderMetrics(servedWithSurplus(), 1_750_000_001_000),
    );
    assert.deepEqual({ code, said }, { code: 0, said: "" });
  },
});

Deno.test("the surplus on the server", async (t) => {
  const snapshot = servedWithSurplus();
  await t.step("should put the surplus and the rules in /api/state", () => {
    const doc = JSON.parse(stateText(snapshot, 1_750_000_001_000));
    assert.equal(doc.surplus.watts, 1600);
    assert.deepEqual(
      [doc.surplus.rules[0].name, doc.surplus.rules[0].on, doc.surplus.rules[0].reason],
      ["heater", true, "switched-on"],
    );
    assert.equal(doc.surplus.rules[0].settings["on-watts"], 1500);
  });
  await t.step("should expose ess_surplus_watts and a 0/1 per rule", () => {
    const text = renderMetrics(snapshot, 1_750_000_001_000);
    assert.match(text, /^ess_surplus_watts\{serial="S123"\} 1600$/m);
    assert.match(text, /^ess_surplus_rule_on\{serial="S123",rule="heater"\} 1$/m);
    assert.match(text, /^ess_surplus_rule_available_watts\{serial="S123",rule="heater"\} 1600$/m);
  });
  await t.step("should leave the surplus out of the metrics while it is unknown", () => {
    const unknown = engineWith([rule()]);
    const text = renderMetrics({ ...snapshot, surplus: surplusDocument(unknown) }, 0);
    assert.doesNotMatch(text, /ess_surplus_watts/);
    assert.match(text, /^ess_surplus_rule_on\{serial="S123",rule="heater"\} 0$/m);
  });
});
