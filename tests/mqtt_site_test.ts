/**
 * Several devices in one bridge process (named mode) against a real broker (aedes, and
 * mosquitto where installed): three simulated devices (tests/_site.ts), each its own serial,
 * bridged under `ess/<name>/` over one connection by the site bridge, with Home Assistant
 * discovery. The broker's messages are what Home Assistant would read.
 */
import { deepEqual, equal, notEqual, ok } from "node:assert/strict";
import { sleep } from "../lib/backoff.ts";
import { Bridge } from "../lib/mqtt/bridge.ts";
import { EssClient } from "../lib/device/client.ts";
import type { JsonObject } from "../lib/device/flatten.ts";
import { createHassPlugin } from "../lib/hass/plugin.ts";
import { createLogger, labelledLogger } from "../lib/log.ts";
import { connectMqtt } from "../lib/mqtt/client.ts";
import { SiteBridge } from "../lib/mqtt/site.ts";
import { devicePrefix } from "../lib/mqtt/topics.ts";
import { createDeviceFetch } from "../lib/device/transport.ts";
import type { Simulator } from "../lib/sim/simulator.ts";
import { BROKERS, startAedes, type TestBroker, watch, type Watcher } from "./_broker.ts";
import { BRIDGE_OPTIONS } from "./_bridge_fakes.ts";
import { discoveryProblems, entityState } from "./_hass_rules.ts";
import { controlRequests, NOON } from "./_world.ts";
import { startSite, type TestSite } from "./_site.ts";

const NAMES: readonly string[] = ["sim1", "sim2", "sim3"];

/** What a test of the in-process site works with. */
interface SiteWorld {
  site: TestSite;
  sims: Map<string, Simulator>;
  broker: TestBroker;
  watcher: Watcher;
  /** The process's log lines (each device's labelled `simN: `). */
  log: string[];
}

/**
 * The site bridge in-process over the three simulators, as `ess mqtt` builds it for a config
 * with three `[device simN]` sections, polling every 200 ms and publishing everything every
 * poll, a device counting as offline after two failed polls over 300 ms; until `fn` is done.
 * A device whose name `passwords` has is given that password. Resolves to what the site's run
 * rejected with, if anything.
 */
async function withSite(
  w: SiteWorld,
  fn: () => Promise<void>,
  passwords: ReadonlyMap<string, string> = new Map(),
): Promise<unknown> {
  const logger = createLogger("debug", (line) => w.log.push(line));
  const mqtt = connectMqtt({
    url: w.broker.url,
    clientId: `ess-test-${crypto.randomUUID().slice(0, 8)}`,
    will: { topic: "ess/status", payload: "offline", retain: true, qos: 1 },
    reconnectBaseMs: 50,
    reconnectMaxMs: 200,
  });
  const site = new SiteBridge({
    mqtt,
    options: { prefix: "ess", once: false },
    logger,
    now: Date.now,
  });
  const fetches: { close(): void }[] = [];
  const members = [...w.sims].map(([name, sim]) => {
    const fetch = createDeviceFetch({ fingerprint: sim.fingerprint, timeoutMs: 1000 });
    fetches.push(fetch);
    const deviceLogger = labelledLogger(logger, name);
    const device = new EssClient({
      host: sim.host,
      password: passwords.get(name) ?? sim.password,
      fetch,
      logger: deviceLogger,
    });
    const bridge = new Bridge({
      device,
      mqtt: site.channel(),
      options: {
        ...BRIDGE_OPTIONS,
        prefix: devicePrefix("ess", name),
        intervalMs: 200,
        publishMode: "all",
        offlineAfterMs: 300,
        offlineAfterFailures: 2,
        controlSpacingMs: 0,
        activeSpacingMs: 0,
        plugins: [createHassPlugin({
          version: "0.1.0",
          fallbackId: sim.host,
          onlineDelayMs: 50,
          retryMs: 50,
          named: { name, processPrefix: "ess" },
        })],
      },
      logger: deviceLogger,
      now: Date.now,
      sleep,
      random: Math.random,
      logConnection: false,
    });
    return { name, logger: deviceLogger, run: (signal: AbortSignal) => bridge.run(signal) };
  });
  const stop = new AbortController();
  let failure: unknown;
  const running = site.run(members, stop.signal).catch((err) => failure = err);
  try {
    await fn();
  } finally {
    stop.abort();
    await running;
    for (const fetch of fetches) fetch.close();
  }
  return failure;
}

/** The three simulated devices (`sim1`…), a broker and a watcher on it, closed after `fn`. */
async function withWorld(
  start: () => Promise<TestBroker>,
  fn: (w: SiteWorld) => Promise<void>,
): Promise<void> {
  await using site = await startSite(NAMES.length, { simulator: { now: () => NOON } });
  const broker = await start();
  const watcher = await watch(broker.url);
  try {
    await fn({ site, sims: sims(site), broker, watcher, log: [] });
  } finally {
    await watcher.close();
    await broker.close();
  }
}

/** Each device's simulator right now, by name. */
function sims(site: TestSite): Map<string, Simulator> {
  return new Map(site.devices.map((d) => [d.name, d.sim]));
}

/** The device discovery configs the watcher has, by the device name they carry. */
function configs(w: SiteWorld): Map<string, { topic: string; config: JsonObject }> {
  const found = new Map<string, { topic: string; config: JsonObject }>();
  for (const [topic, seen] of w.watcher.last) {
    if (!/^homeassistant\/device\/[^/]+\/config$/.test(topic) || seen.payload === "") continue;
    const config = JSON.parse(seen.payload) as JsonObject;
    const name = String((config["device"] as JsonObject)["name"]).replace(/^LG ESS /, "");
    found.set(name, { topic, config });
  }
  return found;
}

/** Every topic the watcher saw under `prefix/`, with its last payload, as the broker holds it. */
function under(w: SiteWorld, prefix: string): Map<string, string> {
  return new Map(
    [...w.watcher.last].filter(([t]) => t.startsWith(`${prefix}/`)).map(([t, s]) => [t, s.payload]),
  );
}

/** The number of messages the watcher has seen under `prefix/` so far. */
function countUnder(w: SiteWorld, prefix: string): number {
  return w.watcher.all.filter((m) => m.topic.startsWith(`${prefix}/`)).length;
}

for (const broker of BROKERS) {
  Deno.test({
    name: `SiteBridge with three devices (${broker.name})`,
    ignore: broker.ignore,
    fn: (t) =>
      withWorld(broker.start, async (w) => {
        const failure = await withSite(w, async () => {
          await t.step("should publish each device's values under its own prefix", async () => {
            await w.watcher.until(
              () =>
                w.watcher.last.get("ess/status")?.payload === "online" &&
                NAMES.every((n) =>
                  w.watcher.last.get(`ess/${n}/status`)?.payload === "online" &&
                  w.watcher.last.has(`ess/${n}/home/statistics/pcs_pv_total_power`) &&
                  w.watcher.last.has(`ess/${n}/common/BATT/soc`) &&
                  w.watcher.last.has(`ess/${n}/reading/battery/soc`)
                ),
              "every device's status, values and reading, and the process online",
            );
            for (const name of NAMES) {
              const sim = w.sims.get(name)!;
              equal(
                w.watcher.last.get(`ess/${name}/common/BATT/soc`)?.payload,
                String((sim.device.read("common")["BATT"] as JsonObject)["soc"]),
              );
            }
            // Nothing in a single device's layout: ess/ holds only the process's status.
            deepEqual(
              [...w.watcher.last.keys()].filter((t) =>
                t.startsWith("ess/") && !NAMES.some((n) => t.startsWith(`ess/${n}/`))
              ),
              ["ess/status"],
            );
          });

          await t.step(
            "should announce three HA devices that pass Home Assistant's rules",
            async () => {
              await w.watcher.until(
                () => [...configs(w).values()].filter((c) => c.config["components"]).length === 3,
                "three device discovery configs",
              );
              const found = configs(w);
              deepEqual([...found.keys()].sort(), [...NAMES]);
              const serials = new Set<string>();
              const entityIds = new Set<string>();
              for (const name of NAMES) {
                const { topic, config } = found.get(name)!;
                const prefix = `ess/${name}`;
                deepEqual(
                  discoveryProblems(config, new Set(under(w, prefix).keys()), prefix, {
                    named: { processPrefix: "ess" },
                  }),
                  [],
                  `${name}'s announcement`,
                );
                const serial = String((config["device"] as JsonObject)["serial_number"]);
                equal(topic, `homeassistant/device/ess_${serial.toLowerCase()}/config`);
                serials.add(serial);
                for (const c of Object.values(config["components"] as Record<string, JsonObject>)) {
                  if (c["default_entity_id"] === undefined) continue;
                  ok(
                    !entityIds.has(String(c["default_entity_id"])),
                    String(c["default_entity_id"]),
                  );
                  entityIds.add(String(c["default_entity_id"]));
                }
              }
              equal(serials.size, 3);
            },
          );

          await t.step("should carry a command to its own device only", async () => {
            const before = new Map(NAMES.map((n) => [n, w.sims.get(n)!.requests.length]));
            const batt = new Map(
              NAMES.map((n) => [n, JSON.stringify(w.sims.get(n)!.device.read("batt"))]),
            );
            await w.watcher.publish("ess/sim2/control/winter_mode", "on");
            await w.watcher.until(
              () => controlRequests(w.sims.get("sim2")!, before.get("sim2")).length === 1,
              "the command at sim2",
            );
            // A sentinel for the others: a command each refuses, which each bridge handles
            // after the one for sim2 (they hear the connection in order); then one more poll
            // of each, which the device queue runs after any write that had been submitted.
            for (const n of ["sim1", "sim3"]) {
              await w.watcher.publish(`ess/${n}/control/winter_mode`, "maybe");
            }
            await w.watcher.until(
              () =>
                ["sim1", "sim3"].every((n) =>
                  w.log.some((l) => l.includes(`ignoring "maybe" on ess/${n}/`))
                ),
              "the sentinels refused",
            );
            const after = new Map(NAMES.map((n) => [n, w.sims.get(n)!.requests.length]));
            await w.watcher.until(
              () =>
                ["sim1", "sim3"].every((n) => w.sims.get(n)!.requests.length > after.get(n)! + 1),
              "one more poll of sim1 and sim3",
            );
            for (const n of ["sim1", "sim3"]) {
              deepEqual(controlRequests(w.sims.get(n)!, before.get(n)), [], `requests at ${n}`);
              equal(JSON.stringify(w.sims.get(n)!.device.read("batt")), batt.get(n), `${n}'s batt`);
            }
            notEqual(JSON.stringify(w.sims.get("sim2")!.device.read("batt")), batt.get("sim2"));
          });

          await t.step("should make only a stopped device's entities unavailable", async () => {
            await w.site.device("sim3").stop();
            await w.watcher.until(
              () => w.watcher.last.get("ess/sim3/status")?.payload === "offline",
              "sim3 offline",
            );
            // The others keep publishing: new values from both after sim3 went offline.
            const seen = new Map(["sim1", "sim2"].map((n) => [n, countUnder(w, `ess/${n}`)]));
            await w.watcher.until(
              () => ["sim1", "sim2"].every((n) => countUnder(w, `ess/${n}`) > seen.get(n)! + 10),
              "sim1 and sim2 publishing on",
            );
            equal(w.watcher.last.get("ess/status")?.payload, "online");
            const retained = new Map([...w.watcher.last].map(([t, s]) => [t, s.payload]));
            for (const name of NAMES) {
              const { config } = configs(w).get(name)!;
              const state = entityState(config, "battery_soc", retained, 0);
              if (name === "sim3") equal(state, "unavailable");
              else notEqual(state, "unavailable", `${name}'s battery SOC`);
            }
          });
        });
        equal(failure, undefined);
        await t.step("should say offline for the process on a clean stop", async () => {
          await w.watcher.until(
            () => w.watcher.last.get("ess/status")?.payload === "offline",
            "ess/status offline",
          );
          for (const n of ["sim1", "sim2"]) {
            equal(w.watcher.last.get(`ess/${n}/status`)?.payload, "offline");
          }
        });
      }),
  });
}

Deno.test("SiteBridge: a device that hangs or refuses the password delays nobody", () =>
  withWorld(startAedes, async (w) => {
    await w.site.device("sim3").hang();
    const failure = await withSite(w, async () => {
      await w.watcher.until(
        () => w.log.some((l) => l.includes("error: sim2: stopped polling and publishing: ")),
        "sim2 stopped for its password",
      );
      await w.watcher.until(
        () => w.watcher.last.get("ess/sim2/status")?.payload === "offline",
        "sim2 offline",
      );
      // sim1 goes on at its own pace while sim3 holds every request until it times out.
      const polls = () =>
        w.watcher.all.filter((m) => m.topic === "ess/sim1/reading/battery/soc").length;
      const before = polls();
      await w.watcher.until(() => polls() >= before + 5, "five more polls of sim1 published");
      ok(!w.watcher.last.has("ess/sim3/reading/battery/soc"), "nothing read from sim3");
      equal(w.watcher.last.get("ess/status")?.payload, "online");
    }, new Map([["sim2", "0a0a0a0a0a0a"]]));
    equal(failure, undefined, "the site runs on while one device is left");
  }));
