/**
 * The MQTT bridge: publishes what the device poller reads (every leaf of `home` and `common`
 * under the pyess topics, the `batt` settings under `<prefix>/batt/`), keeps `<prefix>/status`
 * honest, and hands commands from `<prefix>/control/...` to the control queue. It runs until
 * aborted and survives every transient failure of the device or the broker; only a wrong device
 * password ends it.
 *
 * @module
 */
import { errorText, EssError } from "../errors.ts";
import { type Device, parseControl } from "../device/controls.ts";
import { ControlQueue, type ControlQueueOptions } from "../device/control_queue.ts";
import { isJsonObject, type JsonObject } from "../device/flatten.ts";
import type { Reading } from "../model/reading.ts";
import { READING_TOPIC, readingTopics } from "../model/topics.ts";
import {
  type BridgeContext,
  type BridgePlugin,
  dispatchMessage,
  inBackground,
  pluginPublisher,
  runHook,
} from "./plugin.ts";
import { ConnectionLog } from "./_connection_log.ts";
import {
  POLLED_STATES,
  type PolledAnswer,
  Poller,
  type PollerOptions,
  type PollEvent,
} from "../device/poller.ts";
import type { Logger } from "../log.ts";
import type { MqttConnection, MqttListener } from "./client.ts";
import { quote } from "./_quote.ts";
import { TopicTable } from "./_table.ts";
import { CONTROL_NAMES, type ControlName } from "../device/controls.ts";
import {
  controlTopic,
  DEFAULT_PREFIX,
  jsonTopic,
  LEGACY_CONTROL_NAMES,
  legacyControlTopic,
  statusTopic,
} from "./topics.ts";

export type { BridgeContext, BridgePlugin, MqttContext } from "./plugin.ts";

/** `changes`: a value when it changes plus a full republish now and then; `all`: every cycle. */
export const PUBLISH_MODES = ["changes", "all"] as const;
/** One of {@link PUBLISH_MODES}. */
export type PublishMode = typeof PUBLISH_MODES[number];

/**
 * The reading as one more answer for the topic table, under `<prefix>/reading/` in the layout
 * of {@link readingTopics}.
 */
function readingAnswer(reading: Reading): { state: string; answer: JsonObject } {
  const answer: JsonObject = {};
  for (const [topic, payload] of readingTopics(reading)) {
    const path = topic.split("/");
    let node = answer;
    for (const key of path.slice(0, -1)) {
      const next = node[key];
      node = isJsonObject(next) ? next : (node[key] = {});
    }
    node[path[path.length - 1]!] = payload;
  }
  return { state: READING_TOPIC, answer };
}

/**
 * The least time between two warnings about commands that are no command or are retained, per
 * control topic: anyone who may publish there could otherwise write a log line per message, a
 * thousand a second. The ones in between are counted, and logged at debug level.
 */
export const BAD_COMMAND_WARNING_MS = 60_000;

/**
 * How the bridge behaves; the poller's and the control queue's options are used when the bridge
 * makes them itself.
 */
export interface BridgeOptions extends PollerOptions, ControlQueueOptions {
  /** Topic prefix (`ess`). */
  prefix: string;
  publishMode: PublishMode;
  /** In `changes` mode, everything is published again this often, in ms. */
  republishMs: number;
  /** Whether state messages are retained (status always is; empty values never are). */
  retain: boolean;
  /** Also publish each state as one JSON document. */
  json: boolean;
  /** Poll once, publish, and return. */
  once: boolean;
  /**
   * How long `once` waits for the broker, in ms (default 10 s, as `ess hass`); a broker that
   * refuses the connection fails it at once.
   */
  connectTimeoutMs?: number | undefined;
  /** A topic the device stopped sending leaves the republish table after this many polls. */
  staleAfterPolls?: number | undefined;
  /** The most state topics the bridge keeps. */
  maxTopics?: number | undefined;
  plugins?: readonly BridgePlugin[] | undefined;
}

/**
 * What `ess mqtt` does when no option says otherwise (all but the poll interval): pyess's
 * topics, retained, with values published when they change and everything every five minutes.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(BRIDGE_DEFAULTS.republishMs, 300_000);
 * ```
 */
export const BRIDGE_DEFAULTS = {
  prefix: DEFAULT_PREFIX,
  commonDivisor: 1,
  publishMode: "changes",
  republishMs: 300_000,
  retain: true,
  json: false,
  once: false,
} as const satisfies Omit<BridgeOptions, "intervalMs">;

/** Everything the bridge depends on. */
export interface BridgeDeps {
  /** The device, for the bridge's own poller; not needed when `poller` is given. */
  device?: Device | undefined;
  /** The broker connection, which reconnects by itself. */
  mqtt: MqttConnection;
  /** How to publish (and to poll and to space commands, for what the bridge makes itself). */
  options: BridgeOptions;
  /** Where everything is logged. */
  logger: Logger;
  /** Milliseconds since some epoch. */
  now(): number;
  /** Waits `ms`, or less if `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
  /** Uniform in [0, 1), for back-off jitter. */
  random(): number;
  /**
   * A poller shared with others (an HTTP server in the same process); the bridge runs its loop.
   * Default: the bridge's own, over `device`.
   */
  poller?: Poller | undefined;
  /** A control queue shared with others; default: the bridge's own, closed when it stops. */
  controls?: ControlQueue | undefined;
  /**
   * Whether the bridge logs the connection's comings and goings (default true); `false` when the
   * connection is shared by several bridges and its owner says so once (`site.ts`).
   */
  logConnection?: boolean | undefined;
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
  #mqtt: MqttConnection;
  #options: BridgeOptions;
  #log: Logger;
  #now: () => number;
  #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  #plugins: readonly BridgePlugin[];
  #poller: Poller;
  #controls: ControlQueue;
  #ownControls: boolean;
  #ctx: BridgeContext;
  #controlTopics = new Map<string, ControlName>();
  #table: TopicTable;
  /** Last JSON document of every state, when `--json`. */
  #documents = new Map<string, string>();
  /** The retained command last seen per control topic, so that its copies are not warned about. */
  #retainedWarned = new Map<string, string>();
  /** Per control topic: when a bad command was last warned about, and how many came since. */
  #badWarned = new Map<string, { at: number; since: number }>();
  #lastFull = -Infinity;
  /** Set on every connect until everything has been published on that connection. */
  #fresh = false;
  /** The status published on this connection. */
  #statusSent: string | undefined;
  #announced = false;
  /** Says when the connection comes and goes, unless the connection's owner does. */
  #connectionLog: ConnectionLog | undefined;
  #stop = new AbortController();
  #stopping = false;
  /** In `once`, hears the first connection or the first failure to connect. */
  #onceWaiter: ((failure?: string) => void) | undefined;
  /** In `once`, why the first attempt to connect failed. */
  #onceFailure: string | undefined;

  /** A bridge over `deps`; it works once `run()` is called. */
  constructor(deps: BridgeDeps) {
    this.#mqtt = deps.mqtt;
    this.#options = deps.options;
    this.#log = deps.logger;
    this.#now = deps.now;
    this.#sleep = deps.sleep;
    this.#plugins = deps.options.plugins ?? [];
    const { logger, now, sleep, random } = deps;
    if (deps.logConnection ?? true) {
      this.#connectionLog = new ConnectionLog(deps.mqtt.broker, logger, now);
    }
    if (deps.poller) this.#poller = deps.poller;
    else if (deps.device) {
      this.#poller = new Poller({
        device: deps.device,
        options: deps.options,
        logger,
        now,
        sleep,
        random,
      });
    } else throw new TypeError("the bridge needs a device or a poller");
    this.#ownControls = deps.controls === undefined;
    this.#controls = deps.controls ??
      new ControlQueue({ poller: this.#poller, options: deps.options, logger, now, sleep });
    const prefix = deps.options.prefix;
    this.#table = new TopicTable(deps.options, deps.logger);
    for (const name of CONTROL_NAMES) this.#controlTopics.set(controlTopic(prefix, name), name);
    for (const name of LEGACY_CONTROL_NAMES) {
      this.#controlTopics.set(legacyControlTopic(prefix, name), name);
    }
    this.#ctx = {
      prefix,
      publish: pluginPublisher(this.#mqtt),
      read: (state) => this.#poller.read(state),
      publishedTopics: () => this.#table.published,
      lastValue: (topic) => this.#table.value(topic),
      reading: () => this.#poller.reading,
      logger: this.#log,
    };
  }

  /** The topics the bridge subscribes to: every control, then the plugins'. */
  get subscriptions(): string[] {
    return [
      ...new Set([
        ...this.#controlTopics.keys(),
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
    const unlisten = this.#poller.listen((event) => this.#onPoll(event));
    try {
      if (this.#options.once) await this.#runOnce();
      else await this.#poller.run(this.#stop.signal);
    } finally {
      unlisten();
      signal.removeEventListener("abort", onAbort);
      await this.#shutdown();
    }
  }

  async #runOnce(): Promise<void> {
    const answers: PolledAnswer[] = [];
    for (const state of POLLED_STATES) {
      answers.push({ state, answer: await this.#poller.read(state) });
    }
    if (!this.#mqtt.connected) await this.#brokerOnce();
    const reading = this.#poller.reading;
    await this.#publishStates(reading ? [...answers, readingAnswer(reading)] : answers, true);
    for (const plugin of this.#plugins) {
      await runHook(this.#log, "onConnect", () => plugin.onConnect?.(this.#ctx));
    }
  }

  /**
   * Waits for the broker in `once`: resolves once connected; fails at the first refused
   * attempt, or after {@link BridgeOptions.connectTimeoutMs}, with the reason.
   */
  async #brokerOnce(): Promise<void> {
    const timeoutMs = this.#options.connectTimeoutMs ?? 10_000;
    if (this.#onceFailure === undefined) {
      const waiting = new AbortController();
      this.#onceWaiter = () => waiting.abort();
      await this.#sleep(timeoutMs, AbortSignal.any([waiting.signal, this.#stop.signal]));
      this.#onceWaiter = undefined;
    }
    if (this.#mqtt.connected) return;
    const failure = this.#onceFailure;
    throw new EssError(
      failure === undefined
        ? `Cannot reach the MQTT broker at ${this.#mqtt.broker} within ${timeoutMs / 1000} s`
        : `Cannot reach the MQTT broker at ${this.#mqtt.broker}: ${failure}`,
    );
  }

  /** Publishes what a poll read, and the status when the device came or went. */
  async #onPoll(event: PollEvent): Promise<void> {
    if (this.#stopping) return;
    if (event.ok) {
      // Said once something is published: with no broker, the warnings say what is wrong.
      if (!this.#announced && this.#mqtt.connected) {
        this.#announced = true;
        this.#log.info(
          `publishing under ${this.#options.prefix}/ every ${this.#options.intervalMs / 1000} s`,
        );
      }
      await this.#publishStates([...event.answers, readingAnswer(event.reading)], false);
    }
    if (event.upChanged) await this.#publishStatus();
  }

  #listener(): MqttListener {
    return {
      connected: () => {
        if (this.#stopping) return;
        this.#connectionLog?.connected();
        this.#fresh = true;
        this.#statusSent = undefined;
        this.#onceWaiter?.();
        inBackground(this.#log, this.#onConnect());
      },
      disconnected: (reason) => {
        if (this.#stopping) return;
        if (this.#options.once) {
          // `once` ends with this reason, rather than a line that promises a reconnection.
          this.#onceFailure ??= reason;
          this.#onceWaiter?.(reason);
          return;
        }
        this.#connectionLog?.disconnected(reason);
      },
      message: (topic, payload, retained) => this.#onMessage(topic, payload, retained),
      warning: (message) => this.#log.warning(message),
    };
  }

  async #onConnect(): Promise<void> {
    if (this.#options.once) return;
    try {
      await this.#mqtt.subscribe(this.subscriptions);
    } catch (err) {
      this.#log.warning(`subscribing on ${this.#mqtt.broker} failed: ${errorText(err)}`);
    }
    // Through the device queue, so that no poll publishes at the same time; a poll may have
    // published everything on this connection already.
    await this.#poller.exclusive(async () => {
      if (this.#fresh) await this.#republish();
    });
    for (const plugin of this.#plugins) {
      await runHook(this.#log, "onConnect", () => plugin.onConnect?.(this.#ctx));
    }
  }

  #onMessage(topic: string, payload: string, retained: boolean): void {
    if (this.#stopping) return;
    const name = this.#controlTopics.get(topic);
    if (name !== undefined) this.#control(name, topic, payload, retained);
    dispatchMessage(this.#plugins, this.#log, { topic, payload, retained }, this.#ctx);
  }

  #control(name: ControlName, topic: string, payload: string, retained: boolean): void {
    if (retained) {
      // A retained command would switch the device at every start-up: never act on one. The
      // broker sends it again at every reconnect, so it is warned about once.
      // One that keeps changing is warned about as often as a bad command.
      const seen = `${payload.length} ${payload.slice(0, 100)}`;
      if (this.#retainedWarned.get(topic) === seen) return;
      this.#retainedWarned.set(topic, seen);
      this.#badCommand(
        topic,
        `ignoring the retained message ${quote(payload)} on ${topic}: commands must be sent ` +
          `without the retain flag (clear it with an empty retained message)`,
      );
      return;
    }
    if (payload.trim() === "") {
      this.#log.debug(`ignoring an empty message on ${topic}`);
      return;
    }
    const command = parseControl(name, payload);
    if (typeof command === "string") {
      this.#badCommand(
        topic,
        `ignoring ${quote(payload)} on ${topic}: ${command}; nothing sent to the device`,
      );
      return;
    }
    void this.#controls.submit(name, command, topic);
  }

  /** Says why a command was ignored: a warning, or debug within {@link BAD_COMMAND_WARNING_MS}. */
  #badCommand(topic: string, message: string): void {
    const now = this.#now();
    const last = this.#badWarned.get(topic);
    if (last !== undefined && now - last.at < BAD_COMMAND_WARNING_MS) {
      last.since++;
      this.#log.debug(message);
      return;
    }
    const more = last?.since
      ? ` (and ${last.since.toLocaleString("en")} more on this topic in the last ${
        Math.round((now - last.at) / 1000)
      } s, not each warned about)`
      : "";
    this.#badWarned.set(topic, { at: now, since: 0 });
    this.#log.warning(`${message}${more}`);
  }

  async #publishStates(
    answers: readonly { state: string; answer: JsonObject }[],
    forceAll: boolean,
  ): Promise<void> {
    const sent: string[] = [];
    const changed: string[] = [];
    for (const { state, answer } of answers) {
      const leaves = this.#table.update(state, answer);
      sent.push(...leaves.sent);
      changed.push(...leaves.changed);
      if (this.#options.json) {
        const topic = jsonTopic(this.#options.prefix, state);
        const text = JSON.stringify(answer);
        sent.push(topic);
        if (leaves.changed.length > 0 || this.#documents.get(topic) !== text) {
          this.#documents.set(topic, text);
          changed.push(topic);
        }
      }
    }
    const all = this.#options.publishMode === "all";
    const due = !all && this.#now() - this.#lastFull >= this.#options.republishMs;
    if (forceAll || this.#fresh || due) await this.#republish();
    else {
      // `all`: what this poll read, as pyess did; `changes`: what changed.
      for (const topic of all ? sent : changed) await this.#publishLeaf(topic);
    }
  }

  /**
   * Everything known, again: after a (re)connect (then the status too, after the values) and
   * every `republishMs`.
   */
  async #republish(): Promise<void> {
    if (!this.#mqtt.connected) return;
    const fresh = this.#fresh;
    this.#lastFull = this.#now();
    this.#fresh = false;
    for (const topic of this.#table.topics()) await this.#publishLeaf(topic);
    for (const topic of this.#documents.keys()) await this.#publishLeaf(topic);
    if (fresh) await this.#publishStatus();
  }

  async #publishLeaf(topic: string): Promise<void> {
    const value = this.#table.value(topic) ?? this.#documents.get(topic);
    if (value === undefined) return;
    this.#table.markPublished(topic);
    // An empty retained message deletes the topic at the broker: an empty value is news, not
    // something to keep.
    await this.#publish(topic, value, this.#options.retain && value !== "", 0);
  }

  /** The device's status, unless this connection carries it already. */
  async #publishStatus(): Promise<void> {
    const up = this.#poller.up;
    if (up === undefined) return;
    const status = up ? "online" : "offline";
    if (status === this.#statusSent) return;
    this.#statusSent = status;
    await this.#publish(statusTopic(this.#options.prefix), status, true, 1);
  }

  /**
   * Publishes unless stopping (`force`: the final `offline`); a failed publish is only logged,
   * because a reconnect republishes everything.
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
      this.#log.debug(`publishing ${quote(topic)} failed: ${errorText(err)}`);
    }
  }

  async #shutdown(): Promise<void> {
    this.#stopping = true;
    if (this.#ownControls) this.#controls.close();
    if (this.#mqtt.connected && !this.#options.once) {
      await this.#publish(statusTopic(this.#options.prefix), "offline", true, 1, true);
    }
    for (const plugin of this.#plugins) {
      await runHook(this.#log, "onStop", () => plugin.onStop?.(this.#ctx));
    }
    await this.#mqtt.close();
  }
}
