/**
 * What a bridge plugin is handed and what it hooks into. A device's bridge hands its plugins a
 * {@link BridgeContext} (the device's topics, its reads and readings); the process layer of
 * several devices (`site.ts`) hands its own plugins a {@link MqttContext}: the process's prefix
 * and the one connection every device shares.
 *
 * @module
 */
import type { JsonObject } from "../device/flatten.ts";
import type { StateName } from "../device/states.ts";
import type { Reading } from "../model/reading.ts";
import { errorText, EssError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { MqttConnection } from "./client.ts";
import { topicMatches } from "./topics.ts";

/** What every plugin can do: publish under a prefix through the connection, and log. */
export interface MqttContext {
  /** The topic prefix: the device's (`ess`, `ess/garage`), or for a process plugin the process's. */
  prefix: string;
  /**
   * Publishes through the connection (default: not retained, QoS 0); rejects when not
   * connected, or when the message cannot be sent or (QoS 1) is not acknowledged.
   */
  publish(topic: string, payload: string, opts?: { retain?: boolean; qos?: 0 | 1 }): Promise<void>;
  logger: Logger;
}

/** What a plugin can do with one device's bridge. */
export interface BridgeContext extends MqttContext {
  /** Reads a state through the device (requests never overlap on the device). */
  read(state: StateName): Promise<JsonObject>;
  /** Every state topic published so far that the device still sends. */
  publishedTopics(): ReadonlySet<string>;
  /** The last value read for a state topic. */
  lastValue(topic: string): string | undefined;
  /** The latest poll's normalised reading, where the bridge has one. */
  reading?(): Reading | undefined;
}

/**
 * An extension of a bridge, such as Home Assistant discovery; `C` is what its hooks are handed
 * ({@link BridgeContext} for a device's bridge, {@link MqttContext} for the process's). Errors
 * in hooks are logged.
 */
export interface BridgePlugin<C extends MqttContext = BridgeContext> {
  /** Extra topic filters to subscribe to. */
  subscriptions?: readonly string[];
  /** After every (re)connect, after status and state have been republished. */
  onConnect?(ctx: C): Promise<void> | void;
  /** A message on one of {@link BridgePlugin.subscriptions}. */
  onMessage?(topic: string, payload: string, retained: boolean, ctx: C): Promise<void> | void;
  /** On a clean shutdown, before the bridge disconnects. */
  onStop?(ctx: C): Promise<void> | void;
}

/**
 * The `publish` a plugin is handed: through `mqtt` (default: not retained, QoS 0), even while
 * the bridge stops; unlike a bridge's own, it fails when the message cannot go out, so that a
 * plugin says it did something only once it did.
 */
export function pluginPublisher(mqtt: MqttConnection): MqttContext["publish"] {
  return async (topic, payload, opts) => {
    if (!mqtt.connected) throw new EssError(`Not connected to ${mqtt.broker}`);
    await mqtt.publish(topic, payload, { retain: opts?.retain ?? false, qos: opts?.qos ?? 0 });
  };
}

/** Runs a plugin's hook `name`; what it throws is one warning, never the bridge's failure. */
export async function runHook(
  log: Logger,
  name: string,
  fn: () => Promise<void> | void,
): Promise<void> {
  try {
    await fn();
  } catch (err) {
    log.warning(`plugin ${name} failed: ${errorText(err)}`);
  }
}

/** Lets `work` run on; should it reject, which nothing expects, that is logged as an error. */
export function inBackground(log: Logger, work: Promise<unknown>): void {
  work.catch((err) => log.error(`unexpected error: ${errorText(err)}`));
}

/**
 * Hands a message to each plugin that subscribed to its topic, each hook in the background (a
 * slow plugin holds up neither the connection nor the others).
 */
export function dispatchMessage<C extends MqttContext>(
  plugins: readonly BridgePlugin<C>[],
  log: Logger,
  message: { topic: string; payload: string; retained: boolean },
  ctx: C,
): void {
  const { topic, payload, retained } = message;
  for (const plugin of plugins) {
    if (plugin.onMessage && plugin.subscriptions?.some((f) => topicMatches(f, topic))) {
      inBackground(
        log,
        runHook(log, "onMessage", () => plugin.onMessage?.(topic, payload, retained, ctx)),
      );
    }
  }
}
