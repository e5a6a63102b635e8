import { deepEqual, equal, ok } from "@std/assert";
import { flatten, type JsonObject } from "../lib/flatten.ts";
import type { BridgeContext } from "../lib/bridge.ts";
import { createHassPlugin, type Sleep } from "../lib/hass_plugin.ts";
import { createLogger } from "../lib/log.ts";
import type { StateName } from "../lib/states.ts";
import { PUBLISHED_STATES, stateTopic } from "../lib/topics.ts";
import { discoveryProblems } from "./_hass_rules.ts";

const device = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/hass_device.json", import.meta.url)),
) as Record<string, JsonObject>;

const topicsOf = (state: string) =>
  flatten(device[state]!).map(({ path }) => stateTopic("ess", state, path));

interface Published {
  topic: string;
  payload: string;
  retain: boolean;
}

/** A bridge context that records what the plugin publishes. */
function fakeBridge() {
  const published: Published[] = [];
  const topics = new Set<string>();
  const logs: string[] = [];
  const reads: StateName[] = [];
  let failReads = false;
  const ctx: BridgeContext = {
    prefix: "ess",
    publish(topic, payload, opts) {
      published.push({ topic, payload, retain: opts?.retain ?? false });
      return Promise.resolve();
    },
    read(state) {
      reads.push(state);
      if (failReads) return Promise.reject(new Error("192.168.1.20 is not reachable"));
      return Promise.resolve(device[state]!);
    },
    publishedTopics: () => topics,
    logger: createLogger("debug", (line) => logs.push(line)),
  };
  return {
    ctx,
    published,
    topics,
    logs,
    reads,
    failReads: (fail: boolean) => failReads = fail,
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

Deno.test("createHassPlugin() announces on connect and clears pyess's configs once", async () => {
  const bridge = fakeBridge();
  const clock = fakeSleep();
  const plugin = createHassPlugin({ version: "0.1.0", fallbackId: "h", sleep: clock.sleep });
  for (const s of PUBLISHED_STATES) topicsOf(s).forEach((t) => bridge.topics.add(t));
  try {
    deepEqual(plugin.subscriptions, ["homeassistant/status"]);
    await plugin.onConnect!(bridge.ctx);
    await plugin.idle();
    const [config, ...rest] = bridge.published;
    equal(config?.topic, "homeassistant/device/ess_412khab0815/config");
    equal(config?.retain, true);
    deepEqual(discoveryProblems(JSON.parse(config!.payload), bridge.topics, "ess"), []);
    ok(rest.length >= bridge.topics.size);
    ok(
      rest.every((p) =>
        p.payload === "" && p.retain && p.topic.startsWith("homeassistant/sensor/")
      ),
    );
    ok(rest.some((p) => p.topic === "homeassistant/sensor/esscommonBATTsoc/config"));

    bridge.published.length = 0;
    await plugin.onConnect!(bridge.ctx);
    await plugin.idle();
    deepEqual(bridge.published.map((p) => p.topic), [config!.topic]);
  } finally {
    await plugin.onStop!(bridge.ctx);
  }
});

Deno.test("createHassPlugin() waits until the bridge has published state", async () => {
  const bridge = fakeBridge();
  const clock = fakeSleep();
  const plugin = createHassPlugin({ version: "0.1.0", fallbackId: "h", sleep: clock.sleep });
  try {
    await plugin.onConnect!(bridge.ctx);
    await plugin.idle();
    equal(bridge.published.length, 0);
    deepEqual(clock.pending.map((p) => p.ms), [2000]);
    for (const s of PUBLISHED_STATES) topicsOf(s).forEach((t) => bridge.topics.add(t));
    await clock.advance();
    await plugin.idle();
    equal(bridge.configs().length, 1);
    deepEqual(clock.pending.map((p) => p.ms), [2000], "soon again: the poll may still publish");
    await clock.advance();
    await plugin.idle();
    equal(bridge.configs().length, 1);
    deepEqual(clock.pending.map((p) => p.ms), [60_000], "then seldom");
  } finally {
    await plugin.onStop!(bridge.ctx);
  }
});

Deno.test("createHassPlugin() re-announces when the entities it can back change", async () => {
  const bridge = fakeBridge();
  const clock = fakeSleep();
  const plugin = createHassPlugin({ version: "0.1.0", fallbackId: "h", sleep: clock.sleep });
  for (const s of PUBLISHED_STATES) topicsOf(s).forEach((t) => bridge.topics.add(t));
  try {
    await plugin.onConnect!(bridge.ctx);
    await plugin.idle();
    await clock.advance();
    await plugin.idle();
    equal(bridge.configs().length, 1, "nothing changed, nothing sent");
    topicsOf("batt").forEach((t) => bridge.topics.add(t));
    await clock.advance();
    await plugin.idle();
    const configs = bridge.configs();
    equal(configs.length, 2);
    const components = JSON.parse(configs[1]!.payload).components;
    equal(components.fast_charge.command_topic, "ess/control/fastcharge");
    deepEqual(bridge.reads, ["systeminfo"], "systeminfo is read once per connection");
  } finally {
    await plugin.onStop!(bridge.ctx);
  }
});

Deno.test("createHassPlugin() announces again a random while after Home Assistant is online", async (t) => {
  const bridge = fakeBridge();
  const clock = fakeSleep();
  const plugin = createHassPlugin({
    version: "0.1.0",
    fallbackId: "h",
    sleep: clock.sleep,
    random: () => 0.25,
  });
  for (const s of PUBLISHED_STATES) topicsOf(s).forEach((t) => bridge.topics.add(t));
  try {
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
  } finally {
    await plugin.onStop!(bridge.ctx);
  }
});

Deno.test("createHassPlugin() keeps trying while systeminfo cannot be read", async () => {
  const bridge = fakeBridge();
  const clock = fakeSleep();
  const plugin = createHassPlugin({ version: "0.1.0", fallbackId: "h", sleep: clock.sleep });
  for (const s of PUBLISHED_STATES) topicsOf(s).forEach((t) => bridge.topics.add(t));
  bridge.failReads(true);
  try {
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
  } finally {
    await plugin.onStop!(bridge.ctx);
  }
});

Deno.test("createHassPlugin() warns once about unknown hass_autoconfig_sensors", async () => {
  const bridge = fakeBridge();
  const clock = fakeSleep();
  const plugin = createHassPlugin({
    version: "0.1.0",
    fallbackId: "h",
    sleep: clock.sleep,
    sensors: ["ess/common/BATT/soc", "ess/common/PV/brand"],
    discoveryPrefix: "ha",
  });
  for (const s of PUBLISHED_STATES) topicsOf(s).forEach((t) => bridge.topics.add(t));
  try {
    deepEqual(plugin.subscriptions, ["ha/status"]);
    await plugin.onConnect!(bridge.ctx);
    await plugin.idle();
    const config = JSON.parse(bridge.configs()[0]!.payload);
    equal(config.components.battery_soc_bms.state_topic, "ess/common/BATT/soc");
    deepEqual(config.components.battery_soc, { platform: "sensor" });
    ok(bridge.published.some((p) => p.topic === "ha/sensor/esscommonPVbrand/config"));
    deepEqual(bridge.logs.filter((l) => l.startsWith("warning:")), [
      "warning: hass_autoconfig_sensors: no entity for ess/common/PV/brand " +
      "(not a known field, or not published)",
    ]);
  } finally {
    await plugin.onStop!(bridge.ctx);
  }
});
