/**
 * Several devices over one broker connection (a config with `[device NAME]` sections): each
 * device has its own `Bridge` (`bridge.ts`) under its own prefix (`ess/garage/...`), talking through a
 * {@link SiteBridge.channel} of the process's one connection, while the site bridge owns that
 * connection: it says `online` on `<prefix>/status` at every connect (the connection's last will
 * says `offline`, and so does a clean stop), logs the connection's comings and goings once, runs
 * the process's own plugins, and closes the connection when every device's bridge has stopped.
 *
 * Plugins come in two kinds. A device's plugins go in that device's bridge options
 * (`BridgeOptions.plugins`) and see the device (`BridgeContext`, its prefix
 * `ess/garage`); the process's plugins go in {@link SiteBridgeOptions.plugins} and see the
 * process's prefix and the shared connection ({@link MqttContext}), for topics about the whole
 * site such as `ess/surplus/...`.
 *
 * @module
 */
import { errorText, EssError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { MqttConnection, MqttListener } from "./client.ts";
import {
  type BridgePlugin,
  dispatchMessage,
  inBackground,
  type MqttContext,
  pluginPublisher,
  runHook,
} from "./plugin.ts";
import { ConnectionLog } from "./_connection_log.ts";
import { statusTopic } from "./topics.ts";

/** How the site bridge behaves. */
export interface SiteBridgeOptions {
  /** The process's topic prefix (`ess`); each device's is `devicePrefix(prefix, name)`. */
  prefix: string;
  /**
   * `ess mqtt --once`: no process status (nothing would ever say `offline`), and the devices'
   * bridges each poll once; those that fail are named, after the others have published.
   */
  once: boolean;
  /** The process's plugins: their context has the process's prefix and the shared connection. */
  plugins?: readonly BridgePlugin<MqttContext>[] | undefined;
}

/** Everything the site bridge depends on. */
export interface SiteBridgeDeps {
  /** The process's one connection; its last will should be `offline` on `<prefix>/status`. */
  mqtt: MqttConnection;
  options: SiteBridgeOptions;
  /** The process's logger (not a device's). */
  logger: Logger;
  /** Milliseconds since some epoch. */
  now(): number;
}

/** One device's bridge, as the site runs it. */
export interface SiteMember {
  /** The device's `[device NAME]`. */
  name: string;
  /** The device's logger (`garage: ...`), which says why it stopped. */
  logger: Logger;
  /** Runs the device's bridge until `signal` aborts (or once); `Bridge.run`. */
  run(signal: AbortSignal): Promise<void>;
}

/**
 * The process side of several devices' bridges over one connection.
 *
 * @example
 * ```ts ignore
 * const site = new SiteBridge({ mqtt, options: { prefix: "ess", once: false }, logger, now: Date.now });
 * const garage = new Bridge({ ...deps, mqtt: site.channel(), logConnection: false });
 * await site.run([{ name: "garage", logger, run: (signal) => garage.run(signal) }], signal);
 * ```
 */
export class SiteBridge {
  #mqtt: MqttConnection;
  #options: SiteBridgeOptions;
  #log: Logger;
  #connectionLog: ConnectionLog;
  #plugins: readonly BridgePlugin<MqttContext>[];
  #ctx: MqttContext;
  /** The listeners of the devices' channels. */
  #listeners = new Set<MqttListener>();
  #stopping = false;

  /** A site bridge over `deps`; it listens to the connection from now on. */
  constructor(deps: SiteBridgeDeps) {
    this.#mqtt = deps.mqtt;
    this.#options = deps.options;
    this.#log = deps.logger;
    this.#connectionLog = new ConnectionLog(deps.mqtt.broker, deps.logger, deps.now);
    this.#plugins = deps.options.plugins ?? [];
    this.#ctx = {
      prefix: deps.options.prefix,
      publish: pluginPublisher(this.#mqtt),
      logger: deps.logger,
    };
    this.#mqtt.listen(this.#listener());
  }

  /**
   * A device bridge's view of the connection: it hears what the connection hears (but its
   * warnings, which the site logs once), publishes and subscribes through it, and its `close()`
   * only stops it hearing; the site closes the connection.
   */
  channel(): MqttConnection {
    const mqtt = this.#mqtt;
    const listeners = this.#listeners;
    let own: MqttListener | undefined;
    const detach = () => {
      if (own !== undefined) listeners.delete(own);
      own = undefined;
    };
    return {
      get broker() {
        return mqtt.broker;
      },
      get connected() {
        return mqtt.connected;
      },
      listen(listener) {
        detach();
        own = listener;
        listeners.add(listener);
        if (mqtt.connected) listener.connected();
      },
      publish: (topic, payload, options) => mqtt.publish(topic, payload, options),
      subscribe: (topics) => mqtt.subscribe(topics),
      close: () => Promise.resolve(detach()),
    };
  }

  /**
   * Runs every device's bridge at once, each on its own: one that stops for good (a wrong
   * password) says so through its logger and the others go on; this rejects with the first
   * one's error only when all have. Then, once `signal` aborted and every bridge has stopped,
   * the process's status goes `offline` and the connection is closed. With `once`, it rejects
   * after every device has had its turn if any failed, naming them.
   */
  async run(members: readonly SiteMember[], signal: AbortSignal): Promise<void> {
    const failed: { name: string; err: unknown }[] = [];
    try {
      await Promise.all(members.map(async (member) => {
        try {
          await member.run(signal);
        } catch (err) {
          failed.push({ name: member.name, err });
          member.logger.error(
            this.#options.once
              ? errorText(err)
              : `stopped polling and publishing: ${errorText(err)}`,
          );
        }
      }));
    } finally {
      await this.#shutdown();
    }
    if (failed.length === 0) return;
    if (!this.#options.once) {
      if (failed.length === members.length) throw failed[0]!.err;
      return;
    }
    const names = failed.map((f) => f.name).join(", ");
    throw new EssError(
      failed.length === members.length
        ? `nothing published: no device could be polled and published (${names}; see above)`
        : `published ${members.length - failed.length} of ${members.length} devices; not ` +
          `${names} (see above)`,
    );
  }

  #listener(): MqttListener {
    return {
      connected: () => {
        if (this.#stopping) return;
        this.#connectionLog.connected();
        if (!this.#options.once) inBackground(this.#log, this.#onConnect());
        for (const listener of [...this.#listeners]) listener.connected();
      },
      disconnected: (reason) => {
        if (this.#stopping) return;
        // In `once`, each device's bridge says that the broker cannot be reached.
        if (!this.#options.once) this.#connectionLog.disconnected(reason);
        for (const listener of [...this.#listeners]) listener.disconnected(reason);
      },
      message: (topic, payload, retained) => {
        if (this.#stopping) return;
        for (const listener of [...this.#listeners]) listener.message(topic, payload, retained);
        this.#onMessage(topic, payload, retained);
      },
      warning: (message) => this.#log.warning(message),
    };
  }

  /** The process is online; the process's plugins subscribe and hear of the connect. */
  async #onConnect(): Promise<void> {
    await this.#publishStatus("online");
    const topics = [...new Set(this.#plugins.flatMap((p) => p.subscriptions ?? []))];
    if (topics.length > 0) {
      try {
        await this.#mqtt.subscribe(topics);
      } catch (err) {
        this.#log.warning(`subscribing on ${this.#mqtt.broker} failed: ${errorText(err)}`);
      }
    }
    for (const plugin of this.#plugins) {
      await runHook(this.#log, "onConnect", () => plugin.onConnect?.(this.#ctx));
    }
  }

  #onMessage(topic: string, payload: string, retained: boolean): void {
    dispatchMessage(this.#plugins, this.#log, { topic, payload, retained }, this.#ctx);
  }

  /** The process's status, retained; a failure is only logged, a reconnect says it again. */
  async #publishStatus(status: "online" | "offline"): Promise<void> {
    try {
      await this.#mqtt.publish(statusTopic(this.#options.prefix), status, { retain: true, qos: 1 });
    } catch (err) {
      this.#log.debug(`publishing the status ${status} failed: ${errorText(err)}`);
    }
  }

  /** After every device's bridge stopped: `offline`, the process's plugins, and the close. */
  async #shutdown(): Promise<void> {
    this.#stopping = true;
    if (this.#mqtt.connected && !this.#options.once) await this.#publishStatus("offline");
    for (const plugin of this.#plugins) {
      await runHook(this.#log, "onStop", () => plugin.onStop?.(this.#ctx));
    }
    await this.#mqtt.close();
  }
}
