import { deepEqual, equal, match, ok } from "node:assert/strict";
import type { JsonObject } from "../lib/device/flatten.ts";
import { normalise } from "../lib/model/normalise.ts";
import type { Reading } from "../lib/model/reading.ts";
import type { BridgeContext } from "../lib/mqtt/bridge.ts";
import {
  createHassPlugin,
  type HassPlugin,
  type HassPluginOptions,
  type Sleep,
} from "../lib/hass/plugin.ts";
import { readAutoconfigSensors } from "../lib/hass/pyess.ts";
import { createLogger } from "../lib/log.ts";
import type { StateName } from "../lib/device/states.ts";
import { PUBLISHED_STATES } from "../lib/mqtt/topics.ts";
import { discoveryProblems } from "./_hass_rules.ts";
import { readingTopics } from "./_reading_topics.ts";

const device = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/hass_device.json", import.meta.url)),
) as Record<string, JsonObject>;

interface Published {
  topic: string;
  payload: string;
  retain: boolean;
}

/** A bridge context that records what the plugin publishes. */
function fakeBridge() {
  const published: Published[] = [];
  const topics = new Set<string>();
  const values = new Map<string, string>();
  const logs: string[] = [];
  const reads: StateName[] = [];
  let failReads = false;
  let failPublish: Error | undefined;
  let reading: Reading | undefined;
  const polled: Record<string, JsonObject> = {};
  const ctx: BridgeContext = {
    prefix: "ess",
    publish(topic, payload, opts) {
      if (failPublish) return Promise.reject(failPublish);
      published.push({ topic, payload, retain: opts?.retain ?? false });
      return Promise.resolve();
    },
    read(state) {
      reads.push(state);
      if (failReads) return Promise.reject(new Error("192.168.1.20 is not reachable"));
      return Promise.resolve(device[state]!);
    },
    publishedTopics: () => topics,
    lastValue: (topic) => values.get(topic),
    reading: () => reading,
    logger: createLogger("debug", (line) => logs.push(line)),
  };
  return {
    ctx,
    published,
    topics,
    values,
    /** The bridge has polled these states (as the fixture has them, or as given). */
    publishStates(states: readonly string[] = PUBLISHED_STATES, tree?: JsonObject) {
      for (const state of states) polled[state] = tree ?? device[state]!;
      reading = normalise(polled);
      for (const [topic, value] of readingTopics("ess", reading)) {
        topics.add(topic);
        values.set(topic, value);
      }
    },
    logs,
    reads,
    failReads: (fail: boolean) => failReads = fail,
    /** Publishing fails with `err` (the bridge's publish, when the message does not go out). */
    failPublish: (err: Error | undefined) => failPublish = err,
    configs: () => published.filter((p) => p.topic.includes("/device/")),
  };
}

/** Sleeps that end when the test says so, or when aborted. */
function fakeSleep() {
  const pending: { ms: number; resolve: () => void }[] = [];
  const sleep: Sleep = (ms, signal) =>
    new Promise((resolve) => {
      pending.push({ ms, resolve });
      signal.addEventListener("abort", () => resolve(), { once: true });
    });
  return {
    sleep,
    pending,
    /** Ends every sleep under way and lets what follows run. */
    async advance() {
      for (const p of pending.splice(0)) p.resolve();
      await new Promise((r) => setTimeout(r, 0));
    },
  };
}

/** The plugin (with `options`) on a fake bridge with fake sleeps; stopped again after `fn`. */
async function withPlugin(
  options: Partial<HassPluginOptions>,
  fn: (h: {
    bridge: ReturnType<typeof fakeBridge>;
    clock: ReturnType<typeof fakeSleep>;
    plugin: HassPlugin;
  }) => Promise<void>,
): Promise<void> {
  const bridge = fakeBridge();
  const clock = fakeSleep();
  const plugin = createHassPlugin({
    version: "0.1.0",
    fallbackId: "h",
    sleep: clock.sleep,
    ...options,
  });
  try {
    await fn({ bridge, clock, plugin });
  } finally {
    await plugin.onStop!(bridge.ctx);
  }
}

Deno.test("createHassPlugin() announces on connect and clears pyess's configs once", (t) => {
  const { sensors, pyessTopics } = readAutoconfigSensors(
    "ess/common/BATT/soc, ess/home/statistics/pcs_pv_total_power,ess/control/active",
  );
  return withPlugin({ sensors, pyessTopics, discoveryPrefix: "ha" }, async ({ bridge, plugin }) => {
    bridge.publishStates();
    deepEqual(plugin.subscriptions, ["ha/status"]);
    await plugin.onConnect!(bridge.ctx);
    await plugin.idle();
    const [config, ...rest] = bridge.published;

    await t.step("should announce the device, valid by the rules", () => {
      equal(config?.topic, "ha/device/ess_412khab0815/config");
      equal(config?.retain, true);
      deepEqual(discoveryProblems(JSON.parse(config!.payload), bridge.topics, "ess"), []);
    });

    await t.step("should clear exactly pyess's configs, where pyess wrote them", () => {
      deepEqual(rest, [
        { topic: "homeassistant/sensor/esscommonBATTsoc/config", payload: "", retain: true },
        {
          topic: "homeassistant/sensor/ esshomestatisticspcs_pv_total_power/config",
          payload: "",
          retain: true,
        },
        { topic: "homeassistant/switch/esscontrolactive/config", payload: "", retain: true },
      ]);
      deepEqual(bridge.logs.filter((l) => l.includes("pyess")), [
        "info: cleared pyess's Home Assistant configs for hass_autoconfig_sensors: 3 topics",
      ]);
    });

    await t.step("should not clear them again on the next connect", async () => {
      bridge.published.length = 0;
      await plugin.onConnect!(bridge.ctx);
      await plugin.idle();
      deepEqual(bridge.published.map((p) => p.topic), [config!.topic]);
    });
  });
});

Deno.test("createHassPlugin() clears nothing of pyess's without hass_autoconfig_sensors", () =>
  withPlugin({}, async ({ bridge, plugin }) => {
    bridge.publishStates();
    await plugin.onConnect!(bridge.ctx);
    await plugin.idle();
    deepEqual(bridge.published.map((p) => p.topic), [
      "homeassistant/device/ess_412khab0815/config",
    ]);
    deepEqual(bridge.logs.filter((l) => l.includes("pyess")), []);
  }));

Deno.test("createHassPlugin() for --once announces expiring sensors, no availability", () =>
  withPlugin({ expireAfterSeconds: 300 }, async ({ bridge, plugin }) => {
    bridge.publishStates();
    await plugin.onConnect!(bridge.ctx);
    const config = JSON.parse(bridge.configs()[0]!.payload);
    deepEqual(discoveryProblems(config, bridge.topics, "ess", { expireAfterSeconds: 300 }), []);
    equal(config.components.battery_soc.expire_after, 300);
    equal(config.availability_topic, undefined);
  }));

Deno.test("createHassPlugin() waits until the bridge has published state", () =>
  withPlugin({}, async ({ bridge, clock, plugin }) => {
    await plugin.onConnect!(bridge.ctx);
    await plugin.idle();
    equal(bridge.published.length, 0);
    deepEqual(clock.pending.map((p) => p.ms), [2000]);
    bridge.publishStates();
    await clock.advance();
    await plugin.idle();
    equal(bridge.configs().length, 1);
    deepEqual(clock.pending.map((p) => p.ms), [2000], "soon again: the poll may still publish");
    await clock.advance();
    await plugin.idle();
    equal(bridge.configs().length, 1);
    deepEqual(clock.pending.map((p) => p.ms), [60_000], "then seldom");
  }));

Deno.test("createHassPlugin() re-announces when the entities it can back change", () =>
  withPlugin({}, async ({ bridge, clock, plugin }) => {
    // The first poll has published home and common; batt is still being read.
    bridge.publishStates(["home", "common"]);
    await plugin.onConnect!(bridge.ctx);
    await plugin.idle();
    await clock.advance();
    await plugin.idle();
    equal(bridge.configs().length, 1, "nothing changed, nothing sent");
    deepEqual(JSON.parse(bridge.configs()[0]!.payload).components.backup_reserve, {
      platform: "number",
    });
    bridge.publishStates(["batt"]);
    await clock.advance();
    await plugin.idle();
    const configs = bridge.configs();
    equal(configs.length, 2);
    const components = JSON.parse(configs[1]!.payload).components;
    equal(components.fast_charge.command_topic, "ess/control/fastcharge");
    equal(components.charge_strategy.command_topic, "ess/control/charge_strategy");
    equal(components.backup_reserve.command_topic, "ess/control/backup_soc");
    deepEqual(bridge.reads, ["systeminfo"], "systeminfo is read once per connection");
  }));

Deno.test("createHassPlugin() offers the charge strategies the firmware has", () =>
  withPlugin({}, async ({ bridge, clock, plugin }) => {
    bridge.publishStates();
    await plugin.onConnect!(bridge.ctx);
    await plugin.idle();
    const options = () =>
      JSON.parse(bridge.configs().at(-1)!.payload).components.charge_strategy.options;
    deepEqual(options(), ["battery_care", "fast_charge", "weather_forecast"], "alg_setting 1");
    bridge.publishStates(["batt"], { ...device["batt"], alg_setting: "off" });
    await clock.advance();
    await plugin.idle();
    deepEqual(options(), ["battery_care", "fast_charge"], "older firmware: alg_setting off");
  }));

Deno.test("createHassPlugin() announces again a random while after Home Assistant is online", (t) =>
  withPlugin({ random: () => 0.25 }, async ({ bridge, clock, plugin }) => {
    bridge.publishStates();
    await plugin.onConnect!(bridge.ctx);
    await plugin.idle();
    await clock.advance();
    await plugin.idle();
    equal(bridge.configs().length, 1);

    await t.step("should ignore a retained online and other payloads", async () => {
      await plugin.onMessage!("homeassistant/status", "online", true, bridge.ctx);
      await plugin.onMessage!("homeassistant/status", "offline", false, bridge.ctx);
      deepEqual(clock.pending.map((p) => p.ms), [60_000]);
    });

    await t.step("should announce after the delay, even unchanged", async () => {
      await plugin.onMessage!("homeassistant/status", "online", false, bridge.ctx);
      await plugin.onMessage!("homeassistant/status", "online", false, bridge.ctx);
      deepEqual(clock.pending.map((p) => p.ms), [60_000, 1250]);
      await clock.advance();
      await plugin.idle();
      const configs = bridge.configs();
      equal(configs.length, 2);
      equal(configs[1]!.payload, configs[0]!.payload);
      deepEqual(bridge.reads, ["systeminfo", "systeminfo"]);
    });
  }));

Deno.test("createHassPlugin() keeps trying while systeminfo cannot be read", () =>
  withPlugin({}, async ({ bridge, clock, plugin }) => {
    bridge.publishStates();
    bridge.failReads(true);
    await plugin.onConnect!(bridge.ctx);
    await plugin.idle();
    await clock.advance();
    await plugin.idle();
    equal(bridge.published.length, 0);
    equal(bridge.logs.filter((l) => l.startsWith("warning:")).length, 1, bridge.logs.join("\n"));
    bridge.failReads(false);
    await clock.advance();
    await plugin.idle();
    equal(bridge.configs().length, 1);
  }));

Deno.test("createHassPlugin() asks less and less often while systeminfo cannot be read", () =>
  withPlugin({ random: () => 0.5 }, async ({ bridge, clock, plugin }) => {
    bridge.publishStates();
    bridge.failReads(true);
    await plugin.onConnect!(bridge.ctx);
    await plugin.idle();
    const waits: number[] = [];
    for (let i = 0; i < 7; i++) {
      waits.push(...clock.pending.map((p) => p.ms));
      await clock.advance();
      await plugin.idle();
    }
    deepEqual(waits, [1500, 3000, 6000, 12_000, 24_000, 45_000, 45_000], "doubling up to 60 s");
    equal(bridge.reads.length, 8, "one read per wait, none in between");
    equal(bridge.published.length, 0);
    bridge.failReads(false);
    await clock.advance();
    await plugin.idle();
    equal(bridge.configs().length, 1);
    deepEqual(clock.pending.map((p) => p.ms), [2000], "announced: soon again, as always");
    bridge.failReads(true);
    await clock.advance();
    await plugin.idle();
    deepEqual(clock.pending.map((p) => p.ms), [60_000], "known systeminfo: no waiting for it");
  }));

Deno.test("createHassPlugin() warns once about unknown hass_autoconfig_sensors", () =>
  withPlugin(
    { sensors: ["ess/common/BATT/soc", "ess/common/PV/brand"], discoveryPrefix: "ha" },
    async ({ bridge, plugin }) => {
      bridge.publishStates();
      deepEqual(plugin.subscriptions, ["ha/status"]);
      await plugin.onConnect!(bridge.ctx);
      await plugin.idle();
      const config = JSON.parse(bridge.configs()[0]!.payload);
      equal(config.components.battery_soc.state_topic, "ess/reading/battery/soc");
      deepEqual(config.components.pv_power, { platform: "sensor" });
      deepEqual(bridge.logs.filter((l) => l.startsWith("warning:")), [
        "warning: hass_autoconfig_sensors: no entity for ess/common/PV/brand " +
        "(not a known field, or not published)",
      ]);
    },
  ));

Deno.test("createHassPlugin() says it announced only once the announcement went out", () =>
  withPlugin({ random: () => 0.5 }, async ({ bridge, clock, plugin }) => {
    bridge.publishStates();
    bridge.failPublish(new Error("Not connected to mqtt://broker.test:1883"));
    await plugin.onConnect!(bridge.ctx);
    await plugin.idle();
    for (let i = 0; i < 3; i++) {
      await clock.advance();
      await plugin.idle();
    }
    deepEqual(bridge.logs.filter((l) => !l.startsWith("debug:")), [
      "warning: Home Assistant discovery failed: Not connected to mqtt://broker.test:1883",
    ]);
    deepEqual(clock.pending.map((p) => p.ms), [12_000], "trying less and less often");
    bridge.failPublish(undefined);
    await clock.advance();
    await plugin.idle();
    equal(bridge.configs().length, 1);
    const said = bridge.logs.filter((l) => l.startsWith("info:"));
    equal(said.length, 1);
    match(
      said[0]!,
      /^info: announced \d+ entities to Home Assistant on homeassistant\/device\/ess_412khab0815\/config$/,
    );
    deepEqual(clock.pending.map((p) => p.ms), [2000], "announced: soon again, as always");
  }));

Deno.test("createHassPlugin() keeps the ids of a device with a 70,000-character serial short", () =>
  withPlugin({}, async ({ bridge, plugin }) => {
    const serial = "412KHAB".repeat(10_000);
    bridge.ctx.read = (state) =>
      Promise.resolve(
        state === "systeminfo"
          ? {
            ...device.systeminfo,
            pms: { ...device.systeminfo!["pms"] as JsonObject, serialno: serial },
          }
          : device[state]!,
      );
    bridge.publishStates();
    await plugin.onConnect!(bridge.ctx);
    await plugin.idle();
    const [config] = bridge.configs();
    match(config!.topic, /^homeassistant\/device\/ess_(412khab){5}412k_[0-9a-f]{8}\/config$/);
    const { device: block, components } = JSON.parse(config!.payload);
    equal(block.serial_number.length, 100);
    for (const c of Object.values(components) as { unique_id?: string }[]) {
      ok((c.unique_id ?? "").length < 100, String(c.unique_id));
    }
    ok(config!.payload.length < 40_000, `${config!.payload.length} characters`);
    ok(bridge.logs.every((l) => l.length < 200), bridge.logs.map((l) => l.length).join(", "));
  }));
