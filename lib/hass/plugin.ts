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
import { buildDiscovery, DEFAULT_DISCOVERY_PREFIX, type NamedDevice } from "./discovery.ts";
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
  /**
   * One of several devices (the bridge's prefix is then the device's, `ess/garage`): its name
   * and the process's prefix (see `NamedDevice` in `discovery.ts`).
   */
  named?: NamedDevice | undefined;
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

/** The options with every default filled in. */
interface Settings {
  version: string;
  supportUrl: string | undefined;
  discoveryPrefix: string;
  fallbackId: string;
  sensors: readonly string[] | undefined;
  pyessTopics: readonly string[];
  expireAfterSeconds: number | undefined;
  named: NamedDevice | undefined;
  onlineDelayMs: number;
  recheckMs: number;
  retryMs: number;
  random: () => number;
  sleep: Sleep;
}

function settingsOf(options: HassPluginOptions): Settings {
  return {
    version: options.version,
    supportUrl: options.supportUrl,
    discoveryPrefix: options.discoveryPrefix ?? DEFAULT_DISCOVERY_PREFIX,
    fallbackId: options.fallbackId,
    sensors: options.sensors,
    pyessTopics: options.pyessTopics ?? [],
    expireAfterSeconds: options.expireAfterSeconds,
    named: options.named,
    onlineDelayMs: options.onlineDelayMs ?? 5000,
    recheckMs: options.recheckMs ?? 60_000,
    retryMs: options.retryMs ?? 2000,
    random: options.random ?? Math.random,
    sleep: options.sleep ?? sleepFor,
  };
}

/** Waits from `retryMs` doubling up to `recheckMs`, for what keeps failing. */
function backoffOf({ retryMs, recheckMs, random }: Settings): Backoff {
  return new Backoff({ baseMs: retryMs, maxMs: Math.max(retryMs, recheckMs), random });
}

/** Runs work one piece after the other, in the order it was handed in. */
class Serial {
  #queue: Promise<unknown> = Promise.resolve();

  /** Runs `fn` once everything handed in before has ended; its result or its error. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Resolves when everything handed in so far has ended. */
  idle(): Promise<void> {
    return this.#queue.then(() => {});
  }
}

/**
 * The device's systeminfo, kept once read. A device that does not answer it is asked less and
 * less often, as the poller asks a device that does not answer at all: not every 2 s for as long
 * as it fails.
 */
class SysteminfoCache {
  #systeminfo: JsonObject | undefined;
  #unreadable: Backoff;

  constructor(settings: Settings) {
    this.#unreadable = backoffOf(settings);
  }

  /** systeminfo, read again if `fresh`; `undefined` while it has never been read. */
  async read(ctx: BridgeContext, fresh: boolean): Promise<JsonObject | undefined> {
    if (this.#systeminfo !== undefined && !fresh) return this.#systeminfo;
    try {
      this.#systeminfo = await ctx.read("systeminfo");
      this.#unreadable.reset();
    } catch (err) {
      if (this.#systeminfo === undefined && this.#unreadable.failures === 0) {
        ctx.logger.warning(
          `Home Assistant discovery waits for the device's systeminfo: ${errorText(err)}`,
        );
      }
    }
    return this.#systeminfo;
  }

  /** How long to wait before asking again after a read that gave nothing, in ms. */
  retryWait(): number {
    return this.#unreadable.next();
  }
}

/** Clears the configs pyess announced, all at once, and says so. */
async function clearPyessConfigs(ctx: BridgeContext, topics: readonly string[]): Promise<void> {
  // All at once: they leave in one write and the broker's acknowledgements come back together,
  // instead of one round trip after the other.
  await Promise.all(topics.map((topic) => ctx.publish(topic, "", { retain: true, qos: 1 })));
  ctx.logger.info(
    `cleared pyess's Home Assistant configs for hass_autoconfig_sensors: ${topics.length} topics`,
  );
}

/**
 * Keeps the announcement in step with the entities the bridge can back: what was announced on
 * this connection, and what is done once per process (pyess's configs, the unknown sensors).
 */
class Announcer {
  #settings: Settings;
  #systeminfo: SysteminfoCache;
  #serial = new Serial();
  #lastAnnounced: string | undefined;
  #pyessCleared = false;
  #warnedUnknown = false;
  /** Announcements that failed in a row. */
  #failing: Backoff;

  constructor(settings: Settings) {
    this.#settings = settings;
    this.#systeminfo = new SysteminfoCache(settings);
    this.#failing = backoffOf(settings);
  }

  /** A new connection: the broker may have lost what was announced on the last one. */
  forget(): void {
    this.#lastAnnounced = undefined;
  }

  /**
   * {@link Announcer.announce}, one at a time. Returns how long to wait before looking again. A
   * failure is a warning, the ones right after it debug lines, and it is tried again after
   * `retryMs`, the wait doubling up to `recheckMs` while it keeps failing.
   */
  async attempt(ctx: BridgeContext, force: boolean): Promise<number> {
    try {
      const waitMs = await this.#serial.run(() => this.announce(ctx, force));
      this.#failing.reset();
      return waitMs;
    } catch (err) {
      const level = this.#failing.failures === 0 ? "warning" : "debug";
      ctx.logger[level](`Home Assistant discovery failed: ${errorText(err)}`);
      return this.#failing.next();
    }
  }

  /** Resolves when no announcement is under way. */
  idle(): Promise<void> {
    return this.#serial.idle();
  }

  /**
   * Announces when something changed (or always, if forced). Returns how long to wait before
   * looking again: `recheckMs` when the announcement stands as it was; `retryMs` when it could
   * not announce yet, or just did, because the bridge may still be publishing the rest of a
   * poll; longer each time systeminfo cannot be read.
   */
  async announce(ctx: BridgeContext, force: boolean): Promise<number> {
    const { retryMs, recheckMs } = this.#settings;
    const published = ctx.publishedTopics();
    if (!ENTITY_TABLE.some((row) => published.has(rowTopic(ctx.prefix, row)))) return retryMs;
    const info = await this.#systeminfo.read(ctx, force || this.#lastAnnounced === undefined);
    if (info === undefined) return this.#systeminfo.retryWait();
    const discovery = this.#discovery(ctx, info, published);
    const payload = JSON.stringify(discovery.config);
    if (!force && payload === this.#lastAnnounced) return recheckMs;
    await ctx.publish(discovery.topic, payload, { retain: true, qos: 1 });
    this.#lastAnnounced = payload;
    ctx.logger.info(
      `announced ${discovery.announced.length} entities to Home Assistant on ${discovery.topic}`,
    );
    if (!this.#pyessCleared && this.#settings.pyessTopics.length > 0) {
      await clearPyessConfigs(ctx, this.#settings.pyessTopics);
    }
    this.#pyessCleared = true;
    this.#warnUnknown(ctx, discovery.unknownSensors);
    return retryMs;
  }

  #discovery(ctx: BridgeContext, systeminfo: JsonObject, published: ReadonlySet<string>) {
    const settings = this.#settings;
    return buildDiscovery({
      prefix: ctx.prefix,
      discoveryPrefix: settings.discoveryPrefix,
      systeminfo,
      published,
      origin: { version: settings.version, supportUrl: settings.supportUrl },
      fallbackId: settings.fallbackId,
      sensors: settings.sensors,
      reading: ctx.reading?.(),
      expireAfterSeconds: settings.expireAfterSeconds,
      named: settings.named,
    });
  }

  /** Once per process: the `hass_autoconfig_sensors` that became no entity. */
  #warnUnknown(ctx: BridgeContext, unknown: readonly string[]): void {
    if (unknown.length === 0 || this.#warnedUnknown) return;
    ctx.logger.warning(
      `hass_autoconfig_sensors: no entity for ${unknown.join(", ")} ` +
        "(not a known field, or not published)",
    );
    this.#warnedUnknown = true;
  }
}

/** After the first attempt on a connection: look again after each wait until `signal` aborts. */
async function watch(
  announcer: Announcer,
  ctx: BridgeContext,
  first: Promise<number>,
  sleep: Sleep,
  signal: AbortSignal,
): Promise<void> {
  let waitMs = await first;
  while (!signal.aborted) {
    await sleep(waitMs, signal);
    if (!signal.aborted) waitMs = await announcer.attempt(ctx, false);
  }
}

/**
 * Home Assistant's birth message: announce again, even unchanged, after a random while, so that
 * a restarted Home Assistant is not flooded by every device at the same moment. One wait at a
 * time; a retained `online` is old news that the connect covered.
 */
class OnlineListener {
  #settings: Settings;
  #announcer: Announcer;
  #pending = false;

  constructor(settings: Settings, announcer: Announcer) {
    this.#settings = settings;
    this.#announcer = announcer;
  }

  /** A new connection: any wait under way ended with the old one. */
  reset(): void {
    this.#pending = false;
  }

  /** Handles a message on the status topic while connected (`signal`: the connection). */
  onStatus(payload: string, retained: boolean, ctx: BridgeContext, signal: AbortSignal): void {
    if (retained || payload.trim().toLowerCase() !== "online" || this.#pending) return;
    this.#pending = true;
    void (async () => {
      const { sleep, random, onlineDelayMs } = this.#settings;
      await sleep(Math.floor(random() * onlineDelayMs), signal);
      this.#pending = false;
      if (!signal.aborted) await this.#announcer.attempt(ctx, true);
    })();
  }
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
  const settings = settingsOf(options);
  const hassStatus = `${settings.discoveryPrefix}/status`;
  const announcer = new Announcer(settings);
  const online = new OnlineListener(settings, announcer);
  let connection: AbortController | undefined;
  return {
    subscriptions: [hassStatus],
    async onConnect(ctx) {
      connection?.abort();
      connection = new AbortController();
      announcer.forget();
      online.reset();
      // Awaited, so that `ess mqtt --once` announces before it disconnects.
      const first = announcer.attempt(ctx, false);
      void watch(announcer, ctx, first, settings.sleep, connection.signal);
      await first;
    },
    onMessage(topic, payload, retained, ctx) {
      if (topic !== hassStatus || connection === undefined) return;
      online.onStatus(payload, retained, ctx, connection.signal);
    },
    async onStop() {
      connection?.abort();
      connection = undefined;
      await announcer.idle();
    },
    idle: () => announcer.idle(),
  };
}
