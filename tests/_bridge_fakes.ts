/**
 * Fakes for the bridge's unit tests: a device, an MQTT connection and a clock, all in memory,
 * and a bridge over them.
 *
 * @module
 */
import { seededRandom } from "../lib/backoff.ts";
import type { Device } from "../lib/device/controls.ts";
import { Bridge, BRIDGE_DEFAULTS, type BridgeOptions } from "../lib/mqtt/bridge.ts";
import { flatten } from "../lib/device/flatten.ts";
import { PUBLISHED_STATES } from "../lib/mqtt/topics.ts";
import { UnreachableError } from "../lib/errors.ts";
import type { JsonObject } from "../lib/device/flatten.ts";
import { createLogger, type Logger } from "../lib/log.ts";
import type { MqttConnection, MqttListener, PublishOptions } from "../lib/mqtt/client.ts";
import type { StateName } from "../lib/device/states.ts";
import { normalise } from "../lib/model/normalise.ts";
import { readingTopics } from "../lib/model/topics.ts";
import { algSettingFor, type ChargeStrategy } from "../lib/device/vocabulary.ts";
import { withDeadline } from "./_wait.ts";

/** One message the fake broker got. */
export interface Sent {
  topic: string;
  payload: string;
  retain: boolean;
  qos: 0 | 1;
}

/** An MQTT connection that records what is published and lets the test deliver messages. */
export class FakeMqtt implements MqttConnection {
  readonly broker = "mqtt://broker.test:1883";
  connected = false;
  closed = false;
  sent: Sent[] = [];
  subscriptions: string[][] = [];
  #listener: MqttListener | undefined;

  listen(listener: MqttListener): void {
    this.#listener = listener;
    if (this.connected) listener.connected();
  }
  publish(topic: string, payload: string, options: PublishOptions = {}): Promise<void> {
    if (this.connected) {
      this.sent.push({ topic, payload, retain: options.retain ?? false, qos: options.qos ?? 0 });
    }
    return Promise.resolve();
  }
  subscribe(topics: readonly string[]): Promise<void> {
    this.subscriptions.push([...topics]);
    return Promise.resolve();
  }
  close(): Promise<void> {
    this.closed = true;
    this.connected = false;
    return Promise.resolve();
  }
  /** The broker accepts the connection. */
  connect(): void {
    this.connected = true;
    this.#listener?.connected();
  }
  /** The broker goes away. */
  drop(reason = "connection reset"): void {
    this.connected = false;
    this.#listener?.disconnected(reason);
  }
  /** The client has something to say (a discarded message, a client id in use twice). */
  warn(message: string): void {
    this.#listener?.warning?.(message);
  }
  /** A client publishes `payload` on `topic`. */
  deliver(topic: string, payload: string, retained = false): void {
    this.#listener?.message(topic, payload, retained);
  }
  /** The last payload published on `topic`. */
  last(topic: string): string | undefined {
    return this.sent.findLast((m) => m.topic === topic)?.payload;
  }
  /** Topics published, in order, and forgets them. */
  take(): Sent[] {
    return this.sent.splice(0);
  }
}

/** The device's state as the fake holds it. */
export function sampleStates(): Record<"home" | "common" | "batt", JsonObject> {
  return {
    home: {
      statistics: { pcs_pv_total_power: "1200", bat_user_soc: "55.5", load_power: "410" },
      direction: { is_battery_charging_: "1", is_grid_selling_: "0" },
      operation: { status: "start", mode: "1" },
      wintermode: { winter_status: "off" },
      pcs_fault: { pcs_status: "pcs_ok" },
    },
    common: {
      PV: { pv1_voltage: "231.500000", pv1_power: "640" },
      BATT: { soc: "55.5", winter_setting: "off", safty_soc: "20" },
      GRID: { active_power: "0" },
    },
    batt: { winter_setting: "off", alg_setting: "0", backup_setting: "off", backup_soc: "20" },
  };
}

/** A device in memory: reads return its states, controls change them and are recorded. */
export class FakeDevice implements Device {
  states = sampleStates();
  calls: string[] = [];
  reads: StateName[] = [];
  /** Reads and writes in the order they began: `read home`, `write operation stop`. */
  ops: string[] = [];
  /** Thrown by the next reads and controls, while set. */
  failure: Error | undefined;
  /** When set, reads wait for it (to hold a poll in progress). */
  gate: Promise<void> | undefined;
  /** When set, writes wait for it (a slow device). */
  writeGate: Promise<void> | undefined;
  /** Hears every entry of {@link FakeDevice.ops} as it is made. */
  onOp: ((op: string) => void) | undefined;

  async read(state: StateName): Promise<JsonObject> {
    this.reads.push(state);
    this.#op(`read ${state}`);
    if (this.gate) await this.gate;
    if (this.failure) throw this.failure;
    const answer = (this.states as Record<string, JsonObject>)[state];
    return structuredClone(answer ?? {});
  }
  #op(op: string): void {
    this.ops.push(op);
    this.onOp?.(op);
  }
  async #set(call: string, change: () => void): Promise<void> {
    if (this.failure) throw this.failure;
    this.#op(`write ${call}`);
    if (this.writeGate) await this.writeGate;
    this.calls.push(call);
    change();
  }
  setOperation(run: boolean): Promise<void> {
    return this.#set(`operation ${run ? "start" : "stop"}`, () => {
      (this.states.home["operation"] as JsonObject)["status"] = run ? "start" : "stop";
    });
  }
  setWinterMode(on: boolean): Promise<void> {
    return this.#set(`wintermode ${on ? "on" : "off"}`, () => {
      (this.states.home["wintermode"] as JsonObject)["winter_status"] = on ? "on" : "off";
      (this.states.common["BATT"] as JsonObject)["winter_setting"] = on ? "on" : "off";
      this.states.batt["winter_setting"] = on ? "on" : "off";
    });
  }
  setFastCharge(on: boolean): Promise<void> {
    return this.#set(`fastcharge ${on ? "on" : "off"}`, () => {
      this.states.batt["alg_setting"] = algSettingFor(
        on ? "fast-charge" : "battery-care",
        "digits",
      )!;
    });
  }
  setChargeStrategy(strategy: ChargeStrategy): Promise<void> {
    return this.#set(`strategy ${strategy}`, () => {
      this.states.batt["alg_setting"] = algSettingFor(strategy, "digits")!;
    });
  }
  setBackupMode(on: boolean, reservePercent?: number): Promise<void> {
    return this.#set(
      `backup ${on ? "on" : "off"}${reservePercent === undefined ? "" : ` ${reservePercent}`}`,
      () => {
        this.states.batt["backup_setting"] = on ? "on" : "off";
        if (reservePercent !== undefined) this.states.batt["backup_soc"] = String(reservePercent);
      },
    );
  }
  /** Makes the device unreachable. */
  unplug(): void {
    this.failure = new UnreachableError("ess.test", "Cannot reach ess.test: connection refused");
  }
}

/** A clock whose sleeps end only when the test says so, the one due first first. */
export class FakeTime {
  now = 1_700_000_000_000;
  /** Every delay the code asked for, in order. */
  sleeps: number[] = [];
  /** Sleeps not over yet, by the time they end (in the order asked for, at equal times). */
  #pending: { at: number; ms: number; resolve: () => void }[] = [];
  #waiters: (() => void)[] = [];

  sleep = (ms: number, signal: AbortSignal): Promise<void> =>
    new Promise((resolve) => {
      this.sleeps.push(ms);
      if (signal.aborted) return resolve();
      const entry = { at: this.now + ms, ms, resolve };
      signal.addEventListener("abort", () => {
        this.#pending = this.#pending.filter((e) => e !== entry);
        resolve();
      }, { once: true });
      const later = this.#pending.findIndex((e) => e.at > entry.at);
      this.#pending.splice(later === -1 ? this.#pending.length : later, 0, entry);
      for (const wake of this.#waiters.splice(0)) wake();
    });

  /** Waits until the code sleeps, and returns for how long the sleep due first is. */
  async sleeping(): Promise<number> {
    await withDeadline(
      (async () => {
        while (this.#pending.length === 0) {
          await new Promise<void>((resolve) => this.#waiters.push(resolve));
        }
      })(),
      { what: "the code to sleep" },
    );
    return this.#pending[0]!.ms;
  }

  /** Ends the sleep due first (the clock moves to its end), then waits for the next sleep. */
  async advance(): Promise<number> {
    await this.sleeping();
    const entry = this.#pending.shift()!;
    this.now = Math.max(this.now, entry.at);
    entry.resolve();
    return await this.sleeping();
  }

  /**
   * Lets pending work run, then moves the clock on by `ms`, ending every sleep due by then, in
   * order.
   */
  async pass(ms: number): Promise<void> {
    await settle();
    const until = this.now + ms;
    while (this.#pending.length > 0 && this.#pending[0]!.at <= until) {
      const entry = this.#pending.shift()!;
      this.now = Math.max(this.now, entry.at);
      entry.resolve();
      await settle();
    }
    this.now = until;
  }
}

/** A logger that keeps its lines. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return Object.assign(createLogger("debug", (line) => lines.push(line)), { lines });
}

/** Lets every pending promise and timer callback run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0));
}

/** The bridge's options in its unit tests: pyess's defaults at a 10 s interval. */
export const BRIDGE_OPTIONS: BridgeOptions = { ...BRIDGE_DEFAULTS, intervalMs: 10_000 };

/** What {@link bridgeHarness} gives a test. */
export interface BridgeHarness {
  device: FakeDevice;
  mqtt: FakeMqtt;
  time: FakeTime;
  logger: Logger & { lines: string[] };
  bridge: Bridge;
  /** Runs the bridge; the promise is `run()`'s. */
  start(): Promise<void>;
  /** Aborts the run and waits for it to end. */
  stop(): Promise<void>;
}

/** A bridge over a fake device, a fake broker (connected unless told) and a fake clock. */
export function bridgeHarness(
  options: Partial<BridgeOptions> = {},
  connected = true,
): BridgeHarness {
  const device = new FakeDevice();
  const mqtt = new FakeMqtt();
  if (connected) mqtt.connected = true;
  const time = new FakeTime();
  const logger = memoryLogger();
  const bridge = new Bridge({
    device,
    mqtt,
    options: { ...BRIDGE_OPTIONS, ...options },
    logger,
    now: () => time.now,
    sleep: time.sleep,
    random: seededRandom(1),
  });
  const stop = new AbortController();
  let running: Promise<void> | undefined;
  return {
    device,
    mqtt,
    time,
    logger,
    bridge,
    start() {
      running = bridge.run(stop.signal);
      return running;
    },
    async stop() {
      stop.abort();
      await running;
    },
  };
}

/** Every leaf topic and value of the fake device's `home`, `common` and `batt`. */
export function expectedLeaves(device: FakeDevice): Map<string, string> {
  const leaves = new Map<string, string>();
  for (const state of PUBLISHED_STATES) {
    for (const { path, value } of flatten(device.states[state])) {
      leaves.set(["ess", state, ...path].join("/"), value);
    }
  }
  for (const [topic, payload] of readingTopics(normalise(device.states))) {
    leaves.set(`ess/reading/${topic}`, payload);
  }
  return leaves;
}
