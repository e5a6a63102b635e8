/**
 * The world of the end-to-end bridge tests: the simulator as the device (its clock fixed, so
 * published values can be compared), a real broker, a watcher on it, and the bridge in-process.
 *
 * @module
 */
import { sleep } from "../lib/backoff.ts";
import { Bridge, type BridgeOptions } from "../lib/mqtt/bridge.ts";
import { EssClient } from "../lib/device/client.ts";
import { flatten, type JsonObject } from "../lib/device/flatten.ts";
import { createLogger } from "../lib/log.ts";
import { connectMqtt, type MqttConnectOptions } from "../lib/mqtt/client.ts";
import {
  type Firmware,
  type Simulator,
  type SimulatorOptions,
  startSimulator,
} from "../lib/sim/simulator.ts";
import { BATT_SETTING_PATH, OPERATION_PATH } from "../lib/device/states.ts";
import { PUBLISHED_STATES } from "../lib/mqtt/topics.ts";
import { createDeviceFetch } from "../lib/device/transport.ts";
import { type TestBroker, watch, type Watcher } from "./_broker.ts";
import { BRIDGE_OPTIONS } from "./_bridge_fakes.ts";

/** A fixed clock: the simulated house stands still. */
export const NOON = new Date("2026-06-21T10:00:00Z");

/** What a test works with. */
export interface World {
  sim: Simulator;
  broker: TestBroker;
  watcher: Watcher;
  /** The in-process bridge's log lines. */
  log: string[];
}

/** A simulator (with `simulator` options if given), a broker and a watcher on it, closed after `fn`. */
export async function withWorld(
  startBroker: () => Promise<TestBroker>,
  fn: (w: World) => Promise<void>,
  firmware: Firmware = "classic",
  simulator: SimulatorOptions = {},
): Promise<void> {
  const sim = await startSimulator({ now: () => NOON, firmware, ...simulator });
  const broker = await startBroker();
  const watcher = await watch(broker.url);
  try {
    await fn({ sim, broker, watcher, log: [] });
  } finally {
    await watcher.close();
    await broker.close();
    await sim.close();
  }
}

/**
 * Runs the bridge in-process against the world (polling every 200 ms, `connect` changing how it
 * connects to the broker) until `fn` is done. The
 * controls have no spacing here, since these tests send one command after the other on purpose;
 * tests of the spacing ask for it.
 */
export async function withBridge(
  w: World,
  options: Partial<BridgeOptions>,
  fn: () => Promise<void>,
  connect: Partial<MqttConnectOptions> = {},
): Promise<void> {
  const fetch = createDeviceFetch({ fingerprint: w.sim.fingerprint, timeoutMs: 2000 });
  const logger = createLogger("debug", (line) => w.log.push(line));
  const device = new EssClient({ host: w.sim.host, password: w.sim.password, fetch, logger });
  const mqtt = connectMqtt({
    url: w.broker.url,
    clientId: `ess-test-${crypto.randomUUID().slice(0, 8)}`,
    will: { topic: "ess/status", payload: "offline", retain: true, qos: 1 },
    reconnectBaseMs: 50,
    reconnectMaxMs: 200,
    ...connect,
  });
  const bridge = new Bridge({
    device,
    mqtt,
    options: {
      ...BRIDGE_OPTIONS,
      intervalMs: 200,
      controlSpacingMs: 0,
      activeSpacingMs: 0,
      ...options,
    },
    logger,
    now: Date.now,
    sleep,
    random: Math.random,
  });
  const stop = new AbortController();
  const running = bridge.run(stop.signal);
  try {
    await fn();
  } finally {
    stop.abort();
    await running;
    fetch.close();
  }
}

/** The options that point an `ess` subprocess at the simulator, and no config file. */
export function deviceArgs(sim: Simulator): string[] {
  return [
    "--config",
    "/dev/null",
    "--host",
    sim.host,
    "--password",
    sim.password,
    "--fingerprint",
    sim.fingerprint,
  ];
}

/** The options that point an `ess` subprocess at the world's device and broker, and no config file. */
export function worldArgs(w: Pick<World, "sim" | "broker">): string[] {
  return [...deviceArgs(w.sim), "--mqtt-server", w.broker.url];
}

/** Every state topic the bridge publishes for the simulated device (pyess's and `ess/batt/…`). */
export function deviceTopics(sim: Simulator): Map<string, string> {
  const topics = new Map<string, string>();
  for (const state of PUBLISHED_STATES) {
    for (const { path, value } of flatten(sim.device.read(state))) {
      topics.set(["ess", state, ...path].join("/"), value);
    }
  }
  return topics;
}

/** The control requests that reached the device since request number `from`, without keys. */
export function controlRequests(sim: Simulator, from = 0): string[] {
  return sim.requests.slice(from)
    .filter((r) =>
      r.method === "PUT" && (r.path === OPERATION_PATH || r.path === BATT_SETTING_PATH)
    )
    .map((r) => {
      const { auth_key: _, ...body } = r.body as JsonObject;
      return `${r.path} ${JSON.stringify(body)}`;
    });
}
