/**
 * The bridge plugin that keeps the battery announced to Home Assistant: after every connect to
 * the broker, whenever the entities the bridge can back with published topics change, and a
 * short random while after Home Assistant says `online` on `homeassistant/status`. When ess
 * takes over it clears the configs pyess announced for `hass_autoconfig_sensors`, so that
 * nobody sees a sensor or switch twice.
 *
 * @module
 */
import { Backoff, sleep as sleepFor } from "../backoff.ts";
import { errorText } from "../errors.ts";
import type { BridgeContext, BridgePlugin } from "../mqtt/bridge.ts";
import type { JsonObject } from "../device/flatten.ts";
import { buildDiscovery, DEFAULT_DISCOVERY_PREFIX } from "./discovery.ts";
import { ENTITY_TABLE, rowTopic } from "./entities.ts";

/** Waits `ms`, or less if `signal` aborts; never rejects. */
export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

/** Options of {@link createHassPlugin}. */
export interface HassPluginOptions {
  /** ess's version, for the origin of the messages. */
  version: string;
  supportUrl?: string | undefined;
  /** Home Assistant's discovery prefix (`homeassistant`). */
  discoveryPrefix?: string | undefined;
  /** Identifies the device if systeminfo has no serial number (the device's host). */
  fallbackId: string;
  /** pyess's `hass_autoconfig_sensors`: the state topics that become sensors. */
  sensors?: readonly string[] | undefined;
  /**
   * The config topics pyess announced for the same `hass_autoconfig_sensors`
   * (`readAutoconfigSensors().pyessTopics`): cleared once, at the first announcement.
   */
  pyessTopics?: readonly string[] | undefined;
  /**
   * For `ess mqtt --once`: announce without availability, sensors expiring after this many
   * seconds (see `DiscoveryInput.expireAfterSeconds`).
   */
  expireAfterSeconds?: number | undefined;
  /** Longest wait after Home Assistant comes online, in ms (default 5000). */
  onlineDelayMs?: number | undefined;
  /** How often to look for entities to add or remove once announced, in ms (default 60 s). */
  recheckMs?: number | undefined;
  /**
   * How soon to look again while nothing can be announced yet or just was, in ms (default 2 s);
   * while the device does not answer systeminfo, the wait doubles up to `recheckMs`.
   */
  retryMs?: number | undefined;
  /** Uniform in [0, 1); `Math.random` unless a test seeds it. */
  random?: (() => number) | undefined;
  sleep?: Sleep | undefined;
}

/** The Home Assistant plugin; `idle()` resolves when no announcement is under way (for tests). */
export interface HassPlugin extends BridgePlugin {
  subscriptions: readonly string[];
  idle(): Promise<void>;
}

/**
 * Creates the plugin. Its first announcement on a connection is awaited; everything after that
 * runs in the background.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * const plugin = createHassPlugin({ version: "0.1.0", fallbackId: "192.168.1.20" });
 * // Handed to the bridge, it listens for Home Assistant's restarts to announce again.
 * deepEqual(plugin.subscriptions, ["homeassistant/status"]);
 * ```
 */
export function createHassPlugin(options: HassPluginOptions): HassPlugin {
  const discoveryPrefix = options.discoveryPrefix ?? DEFAULT_DISCOVERY_PREFIX;
  const hassStatus = `${discoveryPrefix}/status`;
  const sleep = options.sleep ?? sleepFor;
  const random = options.random ?? Math.random;
  const onlineDelayMs = options.onlineDelayMs ?? 5000;
  const recheckMs = options.recheckMs ?? 60_000;
  const retryMs = options.retryMs ?? 2000;

  let connection: AbortController | undefined;
  let queue: Promise<unknown> = Promise.resolve();
  let systeminfo: JsonObject | undefined;
  let lastAnnounced: string | undefined;
  let onlinePending = false;
  let pyessCleared = false;
  let warnedUnknown = false;
  // A device that does not answer systeminfo is asked less and less often, as the poller asks
  // a device that does not answer at all: not every 2 s for as long as it fails.
  const unreadable = new Backoff({ baseMs: retryMs, maxMs: Math.max(retryMs, recheckMs), random });

  const serially = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn);
    queue = run.catch(() => {});
    return run;
  };

  /** systeminfo, read again if `fresh`; `undefined` while it has never been read. */
  const readSysteminfo = async (ctx: BridgeContext, fresh: boolean) => {
    if (systeminfo !== undefined && !fresh) return systeminfo;
    try {
      systeminfo = await ctx.read("systeminfo");
      unreadable.reset();
    } catch (err) {
      if (systeminfo === undefined && unreadable.failures === 0) {
        ctx.logger.warning(
          `Home Assistant discovery waits for the device's systeminfo: ${errorText(err)}`,
        );
      }
    }
    return systeminfo;
  };

  /**
   * Announces when something changed (or always, if forced). Returns how long to wait before
   * looking again: `recheckMs` when the announcement stands as it was; `retryMs` when it could
   * not announce yet, or just did, because the bridge may still be publishing the rest of a
   * poll; longer each time systeminfo cannot be read.
   */
  const announce = async (ctx: BridgeContext, force: boolean): Promise<number> => {
    const published = ctx.publishedTopics();
    if (!ENTITY_TABLE.some((row) => published.has(rowTopic(ctx.prefix, row)))) return retryMs;
    const info = await readSysteminfo(ctx, force || lastAnnounced === undefined);
    if (info === undefined) return unreadable.next();
    const discovery = buildDiscovery({
      prefix: ctx.prefix,
      discoveryPrefix,
      systeminfo: info,
      published,
      origin: { version: options.version, supportUrl: options.supportUrl },
      fallbackId: options.fallbackId,
      sensors: options.sensors,
      lastValue: (topic) => ctx.lastValue(topic),
      expireAfterSeconds: options.expireAfterSeconds,
    });
    const payload = JSON.stringify(discovery.config);
    if (!force && payload === lastAnnounced) return recheckMs;
    await ctx.publish(discovery.topic, payload, { retain: true, qos: 1 });
    lastAnnounced = payload;
    ctx.logger.info(
      `announced ${discovery.announced.length} entities to Home Assistant on ${discovery.topic}`,
    );
    const pyess = options.pyessTopics ?? [];
    if (!pyessCleared && pyess.length > 0) {
      // All at once: they leave in one write and the broker's acknowledgements come back
      // together, instead of one round trip after the other.
      await Promise.all(pyess.map((topic) => ctx.publish(topic, "", { retain: true, qos: 1 })));
      ctx.logger.info(
        `cleared pyess's Home Assistant configs for hass_autoconfig_sensors: ${pyess.length} topics`,
      );
    }
    pyessCleared = true;
    if (discovery.unknownSensors.length > 0 && !warnedUnknown) {
      ctx.logger.warning(
        `hass_autoconfig_sensors: no entity for ${discovery.unknownSensors.join(", ")} ` +
          "(not a known field, or not published)",
      );
      warnedUnknown = true;
    }
    return retryMs;
  };

  /** {@link announce}, one at a time; a failure is logged, and tried again after `retryMs`. */
  const attempt = async (ctx: BridgeContext, force: boolean): Promise<number> => {
    try {
      return await serially(() => announce(ctx, force));
    } catch (err) {
      ctx.logger.warning(`Home Assistant discovery failed: ${errorText(err)}`);
      return retryMs;
    }
  };

  /** After the first attempt: keep the announcement in step with what the bridge publishes. */
  const watch = async (ctx: BridgeContext, first: Promise<number>, signal: AbortSignal) => {
    let waitMs = await first;
    while (!signal.aborted) {
      await sleep(waitMs, signal);
      if (!signal.aborted) waitMs = await attempt(ctx, false);
    }
  };

  return {
    subscriptions: [hassStatus],
    async onConnect(ctx) {
      connection?.abort();
      connection = new AbortController();
      lastAnnounced = undefined;
      onlinePending = false;
      // Awaited, so that `ess mqtt --once` announces before it disconnects.
      const first = attempt(ctx, false);
      void watch(ctx, first, connection.signal);
      await first;
    },
    onMessage(topic, payload, retained, ctx) {
      // Home Assistant's birth message; a retained one is old news that onConnect covered.
      if (topic !== hassStatus || retained || payload.trim().toLowerCase() !== "online") return;
      if (connection === undefined || onlinePending) return;
      onlinePending = true;
      const signal = connection.signal;
      void (async () => {
        await sleep(Math.floor(random() * onlineDelayMs), signal);
        onlinePending = false;
        if (!signal.aborted) await attempt(ctx, true);
      })();
    },
    async onStop() {
      connection?.abort();
      connection = undefined;
      await queue;
    },
    idle: () => queue.then(() => {}),
  };
}
