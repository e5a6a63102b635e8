/**
 * The MQTT bridge: polls the device, publishes every leaf of `home` and `common` under the
 * pyess topics and of the `batt` settings under `<prefix>/batt/`, keeps `<prefix>/status`
 * honest, and carries out commands from `<prefix>/control/...`. It runs until aborted and survives every transient failure of the
 * device or the broker; only a wrong device password ends it.
 *
 * @module
 */
import { Backoff } from "../backoff.ts";
import { errorText, EssError, WrongPasswordError } from "../errors.ts";
import { flatten, type JsonObject } from "../device/flatten.ts";
import type { Logger } from "../log.ts";
import { type MqttConnection, type MqttListener, topicMatches } from "./client.ts";
import type { StateName } from "../device/states.ts";
import { type Device, parseControl } from "./controls.ts";
import {
  CONTROL_NAMES,
  type ControlName,
  controlTopic,
  jsonTopic,
  LEGACY_CONTROL_NAMES,
  legacyControlTopic,
  PUBLISHED_STATES,
  type PublishedState,
  stateTopic,
  statusTopic,
} from "./topics.ts";

/** `changes`: a value when it changes plus a full republish now and then; `all`: every cycle. */
export const PUBLISH_MODES = ["changes", "all"] as const;
/** One of {@link PUBLISH_MODES}. */
export type PublishMode = typeof PUBLISH_MODES[number];

/** What a plugin can do with the bridge. */
export interface BridgeContext {
  /** The topic prefix (`ess`). */
  prefix: string;
  /** Publishes through the bridge's connection (default: not retained, QoS 0). */
  publish(topic: string, payload: string, opts?: { retain?: boolean; qos?: 0 | 1 }): Promise<void>;
  /** Reads a state through the device (requests never overlap on the device). */
  read(state: StateName): Promise<JsonObject>;
  /** Every state topic published so far. */
  publishedTopics(): ReadonlySet<string>;
  /** The last value read for a state topic. */
  lastValue(topic: string): string | undefined;
  logger: Logger;
}

/** An extension of the bridge, such as Home Assistant discovery. Errors in hooks are logged. */
export interface BridgePlugin {
  /** Extra topic filters to subscribe to. */
  subscriptions?: readonly string[];
  /** After every (re)connect, after status and state have been republished. */
  onConnect?(ctx: BridgeContext): Promise<void> | void;
  /** A message on one of {@link BridgePlugin.subscriptions}. */
  onMessage?(
    topic: string,
    payload: string,
    retained: boolean,
    ctx: BridgeContext,
  ): Promise<void> | void;
  /** On a clean shutdown, before the bridge disconnects. */
  onStop?(ctx: BridgeContext): Promise<void> | void;
}

/** How the bridge behaves. */
export interface BridgeOptions {
  /** Topic prefix (`ess`). */
  prefix: string;
  /** Time between polls, in ms. */
  intervalMs: number;
  /** `common` is read every N-th poll. */
  commonDivisor: number;
  /**
   * `batt` (the settings: winter mode, charge strategy, backup) is read with `common`, but at
   * most about this often, in ms (default 60 s): settings change only by a command, which the
   * bridge reads back at once, or in LG's app.
   */
  settingsEveryMs?: number | undefined;
  publishMode: PublishMode;
  /** In `changes` mode, everything is published again this often, in ms. */
  republishMs: number;
  /** Whether state messages are retained (status always is). */
  retain: boolean;
  /** Also publish each state as one JSON document. */
  json: boolean;
  /** Poll once, publish, and return. */
  once: boolean;
  /** The longest wait between tries while the device cannot be reached, in ms (default 5 min). */
  maxBackoffMs?: number | undefined;
  /** How long `once` waits for the broker, in ms (default 30 s). */
  connectTimeoutMs?: number | undefined;
  plugins?: readonly BridgePlugin[] | undefined;
}

/** Everything the bridge depends on. */
export interface BridgeDeps {
  device: Device;
  mqtt: MqttConnection;
  options: BridgeOptions;
  logger: Logger;
  /** Milliseconds since some epoch. */
  now(): number;
  /** Waits `ms`, or less if `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
  /** Uniform in [0, 1), for back-off jitter. */
  random(): number;
}

/**
 * `work`'s result, or `fallback` as soon as `signal` aborts. Unlike a race against one
 * long-lived promise, it leaves nothing behind per call, so a loop can use it forever.
 */
function unlessAborted<T>(work: Promise<T>, signal: AbortSignal, fallback: T): Promise<T> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return resolve(fallback);
    const onAbort = () => resolve(fallback);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * The bridge between one device and one broker.
 *
 * @example
 * ```ts ignore
 * const bridge = new Bridge({ device: client, mqtt: connection, options, logger, now: Date.now, sleep, random: Math.random });
 * await bridge.run(abortController.signal);
 * ```
 */
export class Bridge {
  #device: Device;
  #mqtt: MqttConnection;
  #options: BridgeOptions;
  #log: Logger;
  #now: () => number;
  #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  #plugins: readonly BridgePlugin[];
  #backoff: Backoff;
  #maxBackoffMs: number;
  #ctx: BridgeContext;
  #controls = new Map<string, ControlName>();
  /** Last value of every leaf topic, in the device's order. */
  #values = new Map<string, string>();
  #topics = new Set<string>();
  /** Last JSON document of every state, when `--json`. */
  #documents = new Map<string, string>();
  #lastFull = -Infinity;
  /** Set on every connect until everything has been published on that connection. */
  #fresh = false;
  /** `undefined` until the first poll has told. */
  #deviceUp: boolean | undefined;
  #failures = 0;
  #brokerUp: boolean | undefined;
  #queue: Promise<void> = Promise.resolve();
  #stop = new AbortController();
  #stopping = false;
  #fatal: Error | undefined;
  #connectedOnce: (() => void) | undefined;

  constructor(deps: BridgeDeps) {
    this.#device = deps.device;
    this.#mqtt = deps.mqtt;
    this.#options = deps.options;
    this.#log = deps.logger;
    this.#now = deps.now;
    this.#sleep = deps.sleep;
    this.#plugins = deps.options.plugins ?? [];
    this.#maxBackoffMs = Math.max(deps.options.intervalMs, deps.options.maxBackoffMs ?? 300_000);
    this.#backoff = new Backoff({
      baseMs: deps.options.intervalMs,
      maxMs: this.#maxBackoffMs,
      random: deps.random,
    });
    const prefix = deps.options.prefix;
    for (const name of CONTROL_NAMES) this.#controls.set(controlTopic(prefix, name), name);
    for (const name of LEGACY_CONTROL_NAMES) {
      this.#controls.set(legacyControlTopic(prefix, name), name);
    }
    this.#ctx = {
      prefix,
      publish: (topic, payload, opts) =>
        this.#publish(topic, payload, opts?.retain ?? false, opts?.qos ?? 0, true),
      read: (state) => this.#device.read(state),
      publishedTopics: () => this.#topics,
      lastValue: (topic) => this.#values.get(topic),
      logger: this.#log,
    };
  }

  /** The topics the bridge subscribes to: every control, then the plugins'. */
  get subscriptions(): string[] {
    return [
      ...new Set([
        ...this.#controls.keys(),
        ...this.#plugins.flatMap((p) => p.subscriptions ?? []),
      ]),
    ];
  }

  /**
   * Polls and publishes until `signal` aborts (then publishes `offline` and disconnects), or once
   * with `options.once`. Rejects only on a wrong device password, or in `once` mode when the
   * device or the broker cannot be reached.
   */
  async run(signal: AbortSignal): Promise<void> {
    const onAbort = () => this.#stop.abort();
    signal.addEventListener("abort", onAbort);
    if (signal.aborted) onAbort();
    this.#mqtt.listen(this.#listener());
    try {
      if (this.#options.once) await this.#runOnce();
      else await this.#loop();
    } finally {
      signal.removeEventListener("abort", onAbort);
      await this.#shutdown();
    }
    if (this.#fatal) throw this.#fatal;
  }

  async #loop(): Promise<void> {
    const { commonDivisor, intervalMs } = this.#options;
    const settingsEveryMs = this.#options.settingsEveryMs ?? 60_000;
    const battDivisor = commonDivisor *
      Math.max(1, Math.round(settingsEveryMs / (intervalMs * commonDivisor)));
    let cycle = 0;
    while (!this.#stop.signal.aborted) {
      const started = this.#now();
      const recovering = this.#deviceUp !== true;
      const states: PublishedState[] = ["home"];
      if (cycle % commonDivisor === 0 || recovering) states.push("common");
      if (cycle % battDivisor === 0 || recovering) states.push("batt");
      // A hung device request must not hold up a shutdown.
      const ok = await unlessAborted(this.#poll(states), this.#stop.signal, false);
      if (this.#stop.signal.aborted) break;
      let wait: number;
      if (ok) {
        cycle++;
        this.#backoff.reset();
        wait = Math.max(0, started + this.#options.intervalMs - this.#now());
      } else wait = this.#backoff.next();
      await this.#sleep(wait, this.#stop.signal);
    }
  }

  async #runOnce(): Promise<void> {
    const answers: [PublishedState, JsonObject][] = [];
    for (const state of PUBLISHED_STATES) answers.push([state, await this.#device.read(state)]);
    if (!this.#mqtt.connected) {
      const timeoutMs = this.#options.connectTimeoutMs ?? 30_000;
      const waiting = new AbortController();
      this.#connectedOnce = () => waiting.abort();
      await this.#sleep(timeoutMs, AbortSignal.any([waiting.signal, this.#stop.signal]));
      this.#connectedOnce = undefined;
      if (!this.#mqtt.connected) {
        throw new EssError(
          `Cannot reach the MQTT broker at ${this.#mqtt.broker} within ${timeoutMs / 1000} s`,
        );
      }
    }
    await this.#exclusive(() => this.#publishStates(answers, true));
    for (const plugin of this.#plugins) {
      await this.#hook("onConnect", () => plugin.onConnect?.(this.#ctx));
    }
  }

  #listener(): MqttListener {
    return {
      connected: () => {
        if (this.#stopping) return;
        this.#log.info(
          this.#brokerUp === undefined
            ? `connected to ${this.#mqtt.broker}`
            : `connected to ${this.#mqtt.broker} again`,
        );
        this.#brokerUp = true;
        this.#fresh = true;
        this.#connectedOnce?.();
        this.#background(this.#onConnect());
      },
      disconnected: (reason) => {
        if (this.#stopping) return;
        if (this.#brokerUp !== false) {
          this.#log.warning(
            `${this.#brokerUp ? "lost the connection to" : "cannot connect to"} ` +
              `${this.#mqtt.broker}: ${reason}; reconnecting`,
          );
        } else this.#log.debug(`still no connection to ${this.#mqtt.broker}: ${reason}`);
        this.#brokerUp = false;
      },
      message: (topic, payload, retained) => this.#onMessage(topic, payload, retained),
    };
  }

  async #onConnect(): Promise<void> {
    if (this.#options.once) return;
    try {
      await this.#mqtt.subscribe(this.subscriptions);
    } catch (err) {
      this.#log.warning(`subscribing on ${this.#mqtt.broker} failed: ${errorText(err)}`);
    }
    await this.#exclusive(async () => {
      // A poll may have published everything on this connection already.
      if (!this.#fresh) return;
      await this.#publishStatus();
      await this.#republish();
    });
    for (const plugin of this.#plugins) {
      await this.#hook("onConnect", () => plugin.onConnect?.(this.#ctx));
    }
  }

  #onMessage(topic: string, payload: string, retained: boolean): void {
    if (this.#stopping) return;
    const name = this.#controls.get(topic);
    if (name !== undefined) this.#control(name, topic, payload, retained);
    for (const plugin of this.#plugins) {
      if (plugin.onMessage && plugin.subscriptions?.some((f) => topicMatches(f, topic))) {
        this.#background(
          this.#hook("onMessage", () => plugin.onMessage?.(topic, payload, retained, this.#ctx)),
        );
      }
    }
  }

  #control(name: ControlName, topic: string, payload: string, retained: boolean): void {
    if (retained) {
      // A retained command would switch the device at every start-up: never act on one.
      this.#log.warning(
        `ignoring the retained message ${JSON.stringify(payload)} on ${topic}: commands must ` +
          `be sent without the retain flag (clear it with an empty retained message)`,
      );
      return;
    }
    if (payload.trim() === "") {
      this.#log.debug(`ignoring an empty message on ${topic}`);
      return;
    }
    const command = parseControl(name, payload);
    if (typeof command === "string") {
      this.#log.warning(
        `ignoring ${JSON.stringify(payload)} on ${topic}: ${command}; nothing sent to the device`,
      );
      return;
    }
    this.#background(this.#exclusive(async () => {
      if (this.#stopping) return;
      this.#log.info(`${topic}: ${command.description}`);
      try {
        await command.run(this.#device);
      } catch (err) {
        if (err instanceof WrongPasswordError) return this.#die(err);
        this.#log.warning(`${topic}: ${command.description} failed: ${errorText(err)}`);
        return;
      }
      await this.#readAndPublish(PUBLISHED_STATES);
    }));
  }

  /** Reads and publishes `states`; `true` if the device answered. Never throws. */
  #poll(states: readonly PublishedState[]): Promise<boolean> {
    return this.#exclusive(() => this.#readAndPublish(states));
  }

  async #readAndPublish(states: readonly PublishedState[]): Promise<boolean> {
    const answers: [PublishedState, JsonObject][] = [];
    try {
      for (const state of states) answers.push([state, await this.#device.read(state)]);
    } catch (err) {
      if (err instanceof WrongPasswordError) this.#die(err);
      else await this.#deviceState(false, err);
      return false;
    }
    if (this.#stopping) return true;
    await this.#publishStates(answers, false);
    await this.#deviceState(true);
    return true;
  }

  async #publishStates(answers: [PublishedState, JsonObject][], forceAll: boolean): Promise<void> {
    const changed: string[] = [];
    const changedDocs: string[] = [];
    for (const [state, answer] of answers) {
      let any = false;
      for (const leaf of flatten(answer)) {
        const topic = stateTopic(this.#options.prefix, state, leaf.path);
        if (this.#values.get(topic) !== leaf.value) {
          this.#values.set(topic, leaf.value);
          changed.push(topic);
          any = true;
        }
      }
      if (this.#options.json) {
        const topic = jsonTopic(this.#options.prefix, state);
        const text = JSON.stringify(answer);
        if (any || this.#documents.get(topic) !== text) {
          this.#documents.set(topic, text);
          changedDocs.push(topic);
        }
      }
    }
    const full = forceAll || this.#options.publishMode === "all" ||
      this.#now() - this.#lastFull >= this.#options.republishMs;
    if (full) {
      if (this.#options.publishMode === "all" && !forceAll && !this.#fresh) {
        for (const [state] of answers) await this.#publishState(state);
      } else await this.#republish();
      return;
    }
    for (const topic of changed) await this.#publishLeaf(topic);
    for (const topic of changedDocs) await this.#publishLeaf(topic);
  }

  /** `all` mode: every leaf of one state. */
  async #publishState(state: PublishedState): Promise<void> {
    const start = `${stateTopic(this.#options.prefix, state, [])}/`;
    for (const topic of this.#values.keys()) {
      if (topic.startsWith(start)) await this.#publishLeaf(topic);
    }
    const doc = jsonTopic(this.#options.prefix, state);
    if (this.#documents.has(doc)) await this.#publishLeaf(doc);
  }

  /** Everything known, again: after a (re)connect and every `republishMs`. */
  async #republish(): Promise<void> {
    if (!this.#mqtt.connected) return;
    this.#lastFull = this.#now();
    this.#fresh = false;
    for (const topic of this.#values.keys()) await this.#publishLeaf(topic);
    for (const topic of this.#documents.keys()) await this.#publishLeaf(topic);
  }

  async #publishLeaf(topic: string): Promise<void> {
    const value = this.#values.get(topic) ?? this.#documents.get(topic);
    if (value === undefined) return;
    if (this.#values.has(topic)) this.#topics.add(topic);
    await this.#publish(topic, value, this.#options.retain, 0);
  }

  async #deviceState(up: boolean, err?: unknown): Promise<void> {
    const was = this.#deviceUp;
    this.#deviceUp = up;
    if (up) {
      if (was === false) {
        this.#log.info(`the device answers again (after ${this.#failures} failed tries)`);
      } else if (was === undefined) {
        this.#log.info(
          `publishing under ${this.#options.prefix}/ every ${this.#options.intervalMs / 1000} s`,
        );
      }
      this.#failures = 0;
    } else {
      this.#failures++;
      if (was !== false) {
        this.#log.warning(
          `cannot read the device: ${errorText(err)}; status offline, retrying with back-off ` +
            `(at most every ${Math.round(this.#maxBackoffMs / 1000)} s)`,
        );
      } else this.#log.debug(`device still unreachable: ${errorText(err)}`);
    }
    if (was !== up) await this.#publishStatus();
  }

  async #publishStatus(): Promise<void> {
    if (this.#deviceUp === undefined) return;
    await this.#publish(
      statusTopic(this.#options.prefix),
      this.#deviceUp ? "online" : "offline",
      true,
      1,
    );
  }

  /**
   * Publishes unless stopping (`force`: plugins and the final `offline`); a failed publish is
   * only logged, because a reconnect republishes everything.
   */
  async #publish(
    topic: string,
    payload: string,
    retain: boolean,
    qos: 0 | 1,
    force = false,
  ): Promise<void> {
    if (this.#stopping && !force) return;
    try {
      await this.#mqtt.publish(topic, payload, { retain, qos });
    } catch (err) {
      this.#log.debug(`publishing ${topic} failed: ${errorText(err)}`);
    }
  }

  /** Runs device work and its publishing one at a time, so no poll publishes stale data. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn);
    this.#queue = run.then(() => {}, () => {});
    return run;
  }

  #background(work: Promise<unknown>): void {
    work.catch((err) => this.#log.error(`unexpected error: ${errorText(err)}`));
  }

  async #hook(name: string, fn: () => Promise<void> | void): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.#log.warning(`plugin ${name} failed: ${errorText(err)}`);
    }
  }

  #die(err: Error): void {
    this.#fatal ??= err;
    this.#stop.abort();
  }

  async #shutdown(): Promise<void> {
    this.#stopping = true;
    if (this.#mqtt.connected && !this.#options.once) {
      await this.#publish(statusTopic(this.#options.prefix), "offline", true, 1, true);
    }
    for (const plugin of this.#plugins) {
      await this.#hook("onStop", () => plugin.onStop?.(this.#ctx));
    }
    await this.#mqtt.close();
  }
}
