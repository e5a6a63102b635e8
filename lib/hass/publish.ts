/**
 * One-shot broker work for `ess hass`: publish an announcement and leave, or find and clear every
 * discovery config ess or pyess left on the broker.
 *
 * @module
 */
import { sleep } from "../backoff.ts";
import { EssError } from "../errors.ts";
import { DEFAULT_DISCOVERY_PREFIX } from "./discovery.ts";
import { type ConfigOwner, configOwner, PYESS_DISCOVERY_PREFIX } from "./pyess.ts";
import type { MqttConnection } from "../mqtt/client.ts";

/** One retained message to publish. */
export interface Message {
  topic: string;
  payload: string;
}

type OnMessage = (topic: string, payload: string, retained: boolean) => void;

/** Waits until `mqtt` is connected; an {@link EssError} naming the broker after `timeoutMs`. */
function connected(mqtt: MqttConnection, timeoutMs: number, onMessage: OnMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    let reason = "";
    const timer = setTimeout(() => {
      reject(
        new EssError(
          `Cannot reach the MQTT broker at ${mqtt.broker} within ${timeoutMs / 1000} s` +
            (reason ? ` (${reason})` : ""),
        ),
      );
    }, timeoutMs);
    mqtt.listen({
      connected: () => {
        clearTimeout(timer);
        resolve();
      },
      disconnected: (why) => reason = why,
      message: onMessage,
    });
  });
}

async function publishAll(mqtt: MqttConnection, messages: readonly Message[]): Promise<void> {
  for (const m of messages) await mqtt.publish(m.topic, m.payload, { retain: true, qos: 1 });
  // The connection drops messages while it is down: only an unbroken connection delivered all.
  if (!mqtt.connected) {
    throw new EssError(`Lost the connection to ${mqtt.broker} while publishing; run it again`);
  }
}

/** Connects, publishes `messages` retained with QoS 1, and returns; the caller closes `mqtt`. */
export async function publishRetained(
  mqtt: MqttConnection,
  messages: readonly Message[],
  timeoutMs = 10_000,
): Promise<void> {
  await connected(mqtt, timeoutMs, () => {});
  await publishAll(mqtt, messages);
}

/** Options of {@link removeDiscovery}. */
export interface RemoveOptions {
  /** ess's topic prefix: only configs that point at it are cleared. */
  prefix: string;
  /**
   * For a config with several devices, each device's prefix (`ess/garage`): the configs that
   * `ess mqtt --once` announced for them (which have no availability that names `prefix`)
   * are cleared too.
   */
  devicePrefixes?: readonly string[] | undefined;
  discoveryPrefix?: string | undefined;
  /**
   * The config topics pyess announced for `hass_autoconfig_sensors`: cleared when something is
   * retained there, whatever its shape.
   */
  pyessTopics?: readonly string[] | undefined;
  timeoutMs?: number | undefined;
  /** The broker sends retained messages right after subscribing; this much silence ends them. */
  quietMs?: number | undefined;
  /** The longest time to listen, however busy the broker is (default 30 s). */
  listenMs?: number | undefined;
}

/**
 * Finds the retained discovery configs that belong to this ess or to pyess (see
 * {@link configOwner}, and `pyessTopics`) and clears them with empty retained messages, which
 * also tells Home Assistant to remove their entities. Only what is retained is cleared, so the
 * answer, the cleared topics (in order) and whose they were, is what really was there.
 */
export async function removeDiscovery(
  mqtt: MqttConnection,
  options: RemoveOptions,
): Promise<Map<string, ConfigOwner>> {
  const discoveryPrefix = options.discoveryPrefix ?? DEFAULT_DISCOVERY_PREFIX;
  const listed = new Set(options.pyessTopics ?? []);
  const found = new Map<string, ConfigOwner>();
  let heard = 0;
  await connected(mqtt, options.timeoutMs ?? 10_000, (topic, payload, retained) => {
    heard++;
    if (!retained || payload === "") return;
    const owner = configOwner(topic, payload, options.prefix, discoveryPrefix) ??
      (options.devicePrefixes ?? []).map((p) => configOwner(topic, payload, p, discoveryPrefix))
        .find((o) => o === "ess") ??
      (listed.has(topic) ? "pyess" : undefined);
    if (owner !== undefined) found.set(topic, owner);
  });
  // pyess wrote under its fixed prefix, whatever Home Assistant's is now.
  const prefixes = new Set([discoveryPrefix, PYESS_DISCOVERY_PREFIX]);
  await mqtt.subscribe([...prefixes].map((p) => `${p}/+/+/config`));
  const never = new AbortController().signal;
  const until = Date.now() + (options.listenMs ?? 30_000);
  for (let before = -1; before !== heard && Date.now() < until;) {
    before = heard;
    await sleep(options.quietMs ?? 500, never);
  }
  const cleared = new Map([...found].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0));
  await publishAll(mqtt, [...cleared.keys()].map((topic) => ({ topic, payload: "" })));
  return cleared;
}
