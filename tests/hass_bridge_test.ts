/**
 * Home Assistant discovery end to end: the simulator as the device, a real broker (aedes, and
 * mosquitto when installed), the bridge with the discovery plugin, and `ess hass` itself as a
 * subprocess. The broker's retained messages are what Home Assistant would read.
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import type { Json, JsonObject } from "../lib/device/flatten.ts";
import { createHassPlugin } from "../lib/hass/plugin.ts";
import type { Firmware } from "../lib/sim/simulator.ts";
import { BATT_SETTING_PATH, OPERATION_PATH } from "../lib/device/states.ts";
import { BROKERS, type TestBroker, watch } from "./_broker.ts";
import { runCli, spawnCli } from "./_cli.ts";
import {
  PYESS_EARLY,
  PYESS_LATEST,
  PYESS_LEFT_BEHIND,
  PYESS_SENSORS,
  type Retained,
} from "./_hass_pyess.ts";
import { readAutoconfigSensors } from "../lib/hass/pyess.ts";
import {
  controlRequests,
  deviceTopics,
  withBridge,
  withWorld,
  type World,
  worldArgs,
} from "./_world.ts";
import { discoveryProblems, entityState, renderState } from "./_hass_rules.ts";
import { readingTopics } from "./_reading_topics.ts";
import { normalise } from "../lib/model/normalise.ts";
import type { Simulator } from "../lib/sim/simulator.ts";

/** The topics the bridge publishes for the simulator: its states and their reading. */
function publishedBy(sim: Simulator): Set<string> {
  const states = Object.fromEntries(
    (["home", "common", "batt", "systeminfo"] as const).map((s) => [s, sim.device.read(s)]),
  );
  return new Set([...deviceTopics(sim).keys(), ...readingTopics("ess", normalise(states)).keys()]);
}

/** The discovery plugin as `ess mqtt` makes it, with quick retries. */
const hassPlugin = (w: World) =>
  createHassPlugin({ version: "0.1.0", fallbackId: w.sim.host, onlineDelayMs: 50, retryMs: 50 });

const configTopic = (w: World) =>
  [...w.watcher.last.keys()].find((t) => /^homeassistant\/device\/ess_[a-z0-9_]+\/config$/.test(t));

/**
 * The device discovery config, once it announces every component in `ids` (the first
 * announcement may come while the first poll is still publishing).
 */
async function announcement(
  w: World,
  ids: readonly string[] = [],
): Promise<{ topic: string; config: JsonObject }> {
  const current = () => {
    const topic = configTopic(w);
    const payload = topic === undefined ? "" : w.watcher.last.get(topic)!.payload;
    return { topic, config: payload === "" ? undefined : JSON.parse(payload) as JsonObject };
  };
  await w.watcher.until(() => {
    const components = current().config?.["components"] as Record<string, JsonObject> | undefined;
    return components !== undefined && ids.every((id) => components[id]?.["command_topic"]);
  }, `a device discovery config with ${ids.join(", ") || "components"}`);
  const { topic, config } = current();
  return { topic: topic!, config: config! };
}

/** `alg_setting` for each charge strategy, as each firmware spells it (docs/protocol.md#controls). */
const ALG_SETTING: Record<Firmware, Record<string, string>> = {
  classic: { battery_care: "off", fast_charge: "on" },
  new: { battery_care: "0", fast_charge: "1", weather_forecast: "2" },
  words: {
    battery_care: "battery_care",
    fast_charge: "fast_charge",
    weather_forecast: "weather_forecast",
  },
};

/** Everything the broker retains (topic → payload): what a Home Assistant starting now reads. */
async function retained(broker: TestBroker): Promise<Map<string, string>> {
  const late = await watch(broker.url);
  try {
    // mosquitto sends the retained messages before anything published after the subscription;
    // aedes streams them and may let the sync overtake, so wait for a quiet moment too.
    await late.publish("test/sync", "1");
    await late.until(() => late.last.has("test/sync"), "test/sync");
    for (let seen = -1; seen !== late.all.length;) {
      seen = late.all.length;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return new Map(
      [...late.last].filter(([, m]) => m.retained).map(([t, m]) => [t, m.payload]),
    );
  } finally {
    await late.close();
  }
}

/** The discovery configs still retained. */
async function retainedConfigs(broker: TestBroker): Promise<string[]> {
  return [...(await retained(broker)).keys()].filter((t) => t.startsWith("homeassistant/"))
    .sort();
}

/** Other tools' configs, and one in pyess's shape that pyess never wrote: never touched. */
const STRANGERS: Retained[] = [
  { topic: "homeassistant/sensor/garden/config", payload: '{"state_topic":"g"}' },
  {
    topic: "homeassistant/sensor/gardentemp/config",
    payload: '{"name": "garden/temp", "state_topic": "garden/temp"}',
  },
  {
    topic: "homeassistant/device/0x00158d0001/config",
    payload: '{"o":{"name":"Zigbee2MQTT"},"dev":{"ids":["z"]},"cmps":{}}',
  },
];

/** Publishes `messages` retained, and waits until the watcher has seen them come back. */
async function publishAll(w: World, messages: readonly Retained[]): Promise<void> {
  for (const { topic, payload } of messages) await w.watcher.publish(topic, payload, true);
  await w.watcher.until(
    () => messages.every((m) => w.watcher.last.get(m.topic)?.payload === m.payload),
    "the watcher to see what it published",
  );
}

/**
 * Runs `ess hass --remove`: it must print exactly `cleared` (topic and owner, in topic order) and
 * their number, and leave only {@link STRANGERS}, which are then cleared for the next step.
 */
async function removeLeavesStrangers(w: World, cleared: [string, string][]): Promise<void> {
  const removed = await runEss(w, ["--remove"]);
  equal(removed.code, 0);
  equal(
    removed.out,
    [...cleared].sort(([a], [b]) => a < b ? -1 : 1)
      .map(([topic, owner]) => `cleared ${topic} (${owner})\n`).join("") +
      `cleared ${cleared.length} discovery configs on ${w.broker.url}\n`,
  );
  deepEqual(await retainedConfigs(w.broker), STRANGERS.map((m) => m.topic).sort());
  await publishAll(w, STRANGERS.map(({ topic }) => ({ topic, payload: "" })));
}

async function runEss(w: World, args: string[]): Promise<{ code: number; out: string }> {
  const { code, stdout, stderr } = await runCli(["hass", ...worldArgs(w), ...args]);
  equal(stderr, "", "nothing on stderr");
  return { code, out: stdout };
}

for (const { name, start, ignore } of BROKERS) {
  Deno.test(
    { name: `Home Assistant discovery with the simulator and ${name}`, ignore },
    async (t) => {
      await t.step(
        "should announce SOC, powers and daily energy, valid by the rules, with working controls",
        () =>
          withWorld(start, async (w) => {
            await withBridge(w, { intervalMs: 60_000, plugins: [hassPlugin(w)] }, async () => {
              const { config } = await announcement(w);
              deepEqual(discoveryProblems(config, publishedBy(w.sim), "ess"), []);
              const components = config["components"] as Record<string, JsonObject>;
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
                ]
              ) ok(components[id]?.["state_topic"], `${id} is announced`);

              const system = components["system"]!;
              const winter = components["winter_mode"]!;
              const mark = w.sim.requests.length;
              await w.watcher.publish(
                String(system["command_topic"]),
                String(system["payload_off"]),
              );
              await w.watcher.until(() => w.sim.device.operation === "stop", "the system stops");
              await w.watcher.until(
                () =>
                  w.watcher.last.get(String(system["state_topic"]))?.payload ===
                    system["state_off"],
                "the switch's state topic says off",
              );
              await w.watcher.publish(
                String(system["command_topic"]),
                String(system["payload_on"]),
              );
              await w.watcher.until(() => w.sim.device.operation === "start", "the system starts");

              const winterWas = w.sim.device.winterMode;
              const [command, expected] = winterWas
                ? [winter["payload_off"], winter["state_off"]]
                : [winter["payload_on"], winter["state_on"]];
              await w.watcher.publish(String(winter["command_topic"]), String(command));
              await w.watcher.until(() => w.sim.device.winterMode !== winterWas, "winter mode");
              await w.watcher.until(
                () => w.watcher.last.get(String(winter["state_topic"]))?.payload === expected,
                "the winter switch's state topic follows",
              );
              deepEqual(controlRequests(w.sim, mark), [
                `${OPERATION_PATH} {"operation":"stop"}`,
                `${OPERATION_PATH} {"operation":"start"}`,
                `${BATT_SETTING_PATH} {"wintermode":"${winterWas ? "off" : "on"}"}`,
              ]);
            });
          }),
      );

      for (const firmware of ["classic", "new"] as const) {
        await t.step(
          `should announce the batt controls, whose commands change the device (${firmware} firmware)`,
          () =>
            withWorld(start, async (w) => {
              await withBridge(w, { intervalMs: 60_000, plugins: [hassPlugin(w)] }, async () => {
                const ids = ["fast_charge", "charge_strategy", "backup_mode", "backup_reserve"];
                const { config } = await announcement(w, ids);
                deepEqual(
                  discoveryProblems(config, publishedBy(w.sim), "ess"),
                  [],
                );
                const alg = (strategy: string) => ALG_SETTING[firmware][strategy]!;
                equal(w.watcher.last.get("ess/batt/alg_setting")?.payload, alg("battery_care"));
                const components = config["components"] as Record<string, JsonObject>;
                const [fast, strategy, backup, reserve] = ids.map((id) => components[id]!) as [
                  JsonObject,
                  JsonObject,
                  JsonObject,
                  JsonObject,
                ];
                const options = strategy["options"] as string[];
                deepEqual(options, Object.keys(ALG_SETTING[firmware]), "the firmware's strategies");

                // The interval is a minute: only the read-back after a command publishes.
                const mark = w.sim.requests.length;
                /** Sends `payload`; the device must change, publish `value` and `c` show `state`. */
                const command = async (
                  c: JsonObject,
                  payload: Json | undefined,
                  changed: () => boolean,
                  value: string,
                  state: Json | undefined,
                ) => {
                  await w.watcher.publish(String(c["command_topic"]), String(payload));
                  await w.watcher.until(changed, `${c["name"]} ${payload} to reach the device`);
                  const topic = String(c["state_topic"]);
                  await w.watcher.until(
                    () => w.watcher.last.get(topic)?.payload === value,
                    `${topic} ${value} published right after ${c["name"]} ${payload}`,
                  );
                  equal(renderState(c, value), state, `${c["name"]} after ${payload}`);
                };
                const algIs = (value: string) => () => w.sim.device.algSetting === value;

                const order = [...options].reverse();
                // The reading publishes the strategy in ess's words on every firmware.
                for (const option of order) {
                  await command(strategy, option, algIs(alg(option)), option, option);
                }
                const [on, off] = [alg("fast_charge"), alg("battery_care")];
                await command(fast, fast["payload_on"], algIs(on), "fast_charge", fast["state_on"]);
                await command(
                  fast,
                  fast["payload_off"],
                  algIs(off),
                  "battery_care",
                  fast["state_off"],
                );
                const backupOn = () => w.sim.device.backupMode === "on";
                await command(backup, backup["payload_on"], backupOn, "on", backup["state_on"]);
                await command(reserve, "45", () => w.sim.device.backupSoc === 45, "45", "45");

                deepEqual(controlRequests(w.sim, mark), [
                  ...[...order, "fast_charge", "battery_care"].map((o) =>
                    `${BATT_SETTING_PATH} {"alg_setting":"${alg(o)}"}`
                  ),
                  `${BATT_SETTING_PATH} {"backupmode":"on"}`,
                  `${BATT_SETTING_PATH} {"backupmode":"on","backup_soc":"45"}`,
                ]);
              });
            }, firmware),
        );
      }

      await t.step(
        "should announce again when Home Assistant says online",
        () =>
          withWorld(start, async (w) => {
            await withBridge(w, { intervalMs: 60_000, plugins: [hassPlugin(w)] }, async () => {
              const { topic } = await announcement(w);
              const count = () => w.watcher.all.filter((m) => m.topic === topic).length;
              const before = count();
              await w.watcher.publish("homeassistant/status", "online");
              await w.watcher.until(() => count() > before, "a fresh announcement");
            });
          }),
      );

      await t.step(
        "should announce a device with a 70,000-character serial under a short id, and say so",
        () =>
          withWorld(
            start,
            async (w) => {
              await withBridge(w, { intervalMs: 60_000, plugins: [hassPlugin(w)] }, async () => {
                const { topic, config } = await announcement(w);
                match(topic, /^homeassistant\/device\/ess_[a-z0-9_]{39}_[0-9a-f]{8}\/config$/);
                const device = config["device"] as JsonObject;
                equal((device["serial_number"] as string).length, 100);
                await w.watcher.until(
                  () => w.log.some((l) => l.startsWith("info: announced")),
                  "the announcement in the log",
                );
              });
              const said = w.log.filter((l) => !l.startsWith("debug"));
              equal(said.filter((l) => l.startsWith("warning")).length, 0, said.join("\n"));
              ok(said.every((l) => l.length < 200), said.map((l) => l.length).join(", "));
            },
            "classic",
            {
              extraKeys: (state) =>
                state === "systeminfo"
                  ? { pms: { model: "LG ESS Home 8", serialno: "412KHAB".repeat(10_000) } }
                  : undefined,
            },
          ),
      );

      await t.step(
        "ess hass should announce once, print, and --remove should leave nothing behind",
        () =>
          withWorld(start, async (w) => {
            const printed = await runEss(w, ["--print"]);
            equal(printed.code, 0);
            const [topic, ...json] = printed.out.split("\n");
            const config = JSON.parse(json.join("\n"));
            deepEqual(discoveryProblems(config, publishedBy(w.sim), "ess"), []);
            deepEqual(
              config.components.charge_strategy.options,
              ["battery_care", "fast_charge"],
              "older firmware: only the strategies it has",
            );
            deepEqual(await retainedConfigs(w.broker), [], "--print leaves the broker alone");

            const forCron = await runEss(w, ["--print", "--once", "--hass-expire-after", "600"]);
            const cron = JSON.parse(forCron.out.split("\n").slice(1).join("\n"));
            deepEqual(
              discoveryProblems(cron, publishedBy(w.sim), "ess", {
                expireAfterSeconds: 600,
              }),
              [],
              "--once: what 'ess mqtt --once' announces",
            );

            await publishAll(w, [...PYESS_LATEST.configs, ...STRANGERS]);
            const announced = await runEss(w, ["--hass-autoconfig-sensors", PYESS_SENSORS]);
            equal(announced.code, 0);
            ok(
              announced.out.includes(
                "cleared pyess's configs for hass_autoconfig_sensors: 6 topics",
              ),
              announced.out,
            );
            deepEqual(
              await retainedConfigs(w.broker),
              [topic!, ...STRANGERS.map((m) => m.topic)].sort(),
              "ess's config, pyess's cleared, the others untouched",
            );

            // The bridge announces too (and so would a second ess under another prefix).
            await withBridge(w, { intervalMs: 60_000, plugins: [hassPlugin(w)] }, async () => {
              await announcement(w);
            });
            await removeLeavesStrangers(w, [[topic!, "ess"]]);
          }),
      );

      await t.step(
        "ess mqtt should clear pyess's exact configs at start, --remove the rest, nothing else",
        () =>
          withWorld(start, async (w) => {
            // A broker after pyess 0.1.14 and then 0.1.23 ran with this list, and other tools.
            await publishAll(w, [...PYESS_LEFT_BEHIND, ...STRANGERS]);
            const ours = readAutoconfigSensors(PYESS_SENSORS).pyessTopics;
            const mark = w.watcher.all.length;
            const child = spawnCli([
              "mqtt",
              ...worldArgs(w),
              "--hass-autoconfig-sensors",
              PYESS_SENSORS,
            ]);
            const output = child.output();
            let device: string | undefined;
            let surplus: string | undefined;
            try {
              device = (await announcement(w)).topic;
              await w.watcher.until(
                () => ours.every((t) => w.watcher.last.get(t)?.payload === ""),
                "pyess's configs cleared",
              );
              // The surplus's entities have a message of their own on the same device.
              surplus = device.replace(/\/config$/, "_surplus/config");
              await w.watcher.until(() => w.watcher.last.has(surplus!), "the surplus announced");
            } finally {
              child.kill("SIGTERM");
            }
            const { code, stderr } = await output;
            equal(code, 0);
            const log = new TextDecoder().decode(stderr);
            ok(
              log.includes(
                "ess: info: cleared pyess's Home Assistant configs for hass_autoconfig_sensors: " +
                  "6 topics\n",
              ),
              log,
            );
            const touched = new Set(
              w.watcher.all.slice(mark).filter((m) => m.topic.startsWith("homeassistant/"))
                .map((m) => m.topic),
            );
            deepEqual(
              touched,
              new Set([device!, surplus!, ...ours]),
              "no other discovery topic touched",
            );
            // pyess 0.1.14 made ess/control/active a sensor; 0.1.23 left that config behind.
            const early = PYESS_EARLY.configs.map((m) => m.topic).filter((t) => !ours.includes(t));
            deepEqual(early, [
              "homeassistant/sensor/esscontrolactive/config",
              "homeassistant/sensor/esscontrolwinter_mode/config",
            ]);
            deepEqual(
              await retainedConfigs(w.broker),
              [device!, surplus!, ...early, ...STRANGERS.map((m) => m.topic)].sort(),
            );

            await removeLeavesStrangers(w, [
              [device!, "ess"],
              [surplus!, "ess"],
              ...early.map((t) => [t, "pyess"] as [string, string]),
            ]);
          }),
      );

      await t.step(
        "ess mqtt --once should leave entities that show values and expire, never unavailable for good",
        () =>
          withWorld(start, async (w) => {
            // A daemon that ran before left its will; cron takes over.
            await w.watcher.publish("ess/status", "offline", true);
            const once = ["mqtt", ...worldArgs(w), "--once", "--hass-expire-after", "120"];
            const first = await runCli(once);
            equal(first.code, 0, first.stderr);
            const state = await retained(w.broker);
            const topic = (await retainedConfigs(w.broker))[0]!;
            const config = JSON.parse(state.get(topic)!) as JsonObject;
            const published = publishedBy(w.sim);
            deepEqual(discoveryProblems(config, published, "ess", { expireAfterSeconds: 120 }), []);
            const entities = Object.entries(config["components"] as Record<string, JsonObject>)
              .filter(([, c]) => Object.keys(c).length > 1).map(([id, c]) => [id, c] as const);
            ok(entities.length > 30);
            equal(state.get("ess/status"), "offline", "the cron run leaves the status alone");
            for (const [id] of entities) {
              ok(!["unavailable", "unknown"].includes(entityState(config, id, state, 0)), id);
              ok(entityState(config, id, state, 119) !== "unavailable", id);
            }
            // Cron stopped: sensors say so after the expiry; controls keep their last state.
            for (const [id, c] of entities) {
              const shown = entityState(config, id, state, 120);
              if (["sensor", "binary_sensor"].includes(String(c["platform"]))) {
                equal(shown, "unavailable", id);
              } else ok(shown !== "unavailable", id);
            }
            // The next run brings every value again, and with it every entity.
            const mark = w.watcher.all.length;
            const second = await runCli(once);
            equal(second.code, 0, second.stderr);
            const again = new Set(w.watcher.all.slice(mark).map((m) => m.topic));
            for (const [, c] of entities) ok(again.has(String(c["state_topic"])));

            // Back to the daemon: availability follows ess/status again.
            await withBridge(w, { intervalMs: 60_000, plugins: [hassPlugin(w)] }, async () => {
              await w.watcher.until(
                () => w.watcher.last.get(topic)?.payload.includes('"availability_topic"') ?? false,
                "the daemon's announcement",
              );
              await w.watcher.until(
                () => w.watcher.last.get("ess/status")?.payload === "online",
                "online",
              );
              const daemon = JSON.parse(w.watcher.last.get(topic)!.payload) as JsonObject;
              deepEqual(discoveryProblems(daemon, published, "ess"), []);
              const live = await retained(w.broker);
              for (const [id] of entities) {
                ok(entityState(daemon, id, live, 1e9) !== "unavailable", id);
              }
            });
            const stopped = await retained(w.broker);
            const daemon = JSON.parse(stopped.get(topic)!) as JsonObject;
            for (const [id] of entities) {
              equal(entityState(daemon, id, stopped, 0), "unavailable", id);
            }
          }),
      );
    },
  );
}
