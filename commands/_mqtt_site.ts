/**
 * `ess mqtt` for a config with `[device NAME]` sections: one broker connection for the process,
 * each device bridged under its own prefix (`ess/garage/...`, the layout of a single device),
 * `ess/status` the process's status. Single-device configs do not come here.
 *
 * @module
 */
import { sleep } from "../lib/backoff.ts";
import { Bridge, type BridgeOptions, type BridgePlugin } from "../lib/mqtt/bridge.ts";
import { connectMqtt, type MqttConnectOptions } from "../lib/mqtt/client.ts";
import type { MqttContext } from "../lib/mqtt/plugin.ts";
import { SiteBridge, type SiteMember } from "../lib/mqtt/site.ts";
import { devicePrefix } from "../lib/mqtt/topics.ts";
import { createHassPlugin } from "../lib/hass/plugin.ts";
import type { Logger } from "../lib/log.ts";
import { VERSION } from "../lib/version.ts";
import type { Io } from "./_cli.ts";
import type { HassSettings } from "./_mqtt.ts";
import { runDaemon } from "./_poll.ts";
import type { Site, SiteDevice } from "./_site.ts";

/** What {@link runSiteBridge} runs with. */
export interface SiteBridgeSettings {
  /** How to reach the broker; its last will is `offline` on `<prefix>/status` (not with once). */
  connect: MqttConnectOptions;
  /** The bridges' options, `prefix` the process's; each device's poll settings override. */
  bridge: Omit<BridgeOptions, "plugins">;
  /** Home Assistant discovery for one device (its host names it without a serial), or none. */
  hass: ((device: SiteDevice) => HassSettings) | undefined;
  /**
   * More plugins of one device's bridge, after Home Assistant's: they see that device's
   * prefix (`ess/garage`), its reads and its reading (its surplus goes here).
   */
  devicePlugins?: ((device: SiteDevice) => BridgePlugin[]) | undefined;
  /**
   * The process's plugins: they see the process's prefix (`ess`) and the shared connection
   * (the site's surplus under `ess/surplus/...` goes here).
   */
  sitePlugins?: readonly BridgePlugin<MqttContext>[] | undefined;
  /** The server over the same devices (`--listen`), closed once the bridges have stopped. */
  serving?: { close(): Promise<void> } | undefined;
}

/** A device's Home Assistant plugin; pyess's configs are cleared once, by the first device. */
function hassPlugin(
  settings: SiteBridgeSettings,
  device: SiteDevice,
  first: boolean,
): BridgePlugin[] {
  const hass = settings.hass?.(device);
  if (hass === undefined) return [];
  return [createHassPlugin({
    version: VERSION,
    ...hass,
    pyessTopics: first ? hass.pyessTopics : [],
    named: { name: device.name!, processPrefix: settings.bridge.prefix },
  })];
}

/**
 * Bridges every device of `site` (named mode) over one connection until SIGINT or SIGTERM, or
 * once; the exit code as `ess mqtt` gives it.
 */
export async function runSiteBridge(
  site: Site,
  settings: SiteBridgeSettings,
  logger: Logger,
  io: Io,
): Promise<number> {
  const prefix = settings.bridge.prefix;
  const mqtt = connectMqtt(settings.connect);
  const siteBridge = new SiteBridge({
    mqtt,
    options: { prefix, once: settings.bridge.once, plugins: settings.sitePlugins },
    logger,
    now: Date.now,
  });
  const members = site.devices.map((device, i): SiteMember => {
    const bridge = new Bridge({
      poller: device.poller,
      controls: device.controls,
      mqtt: siteBridge.channel(),
      options: {
        ...settings.bridge,
        ...device.poll,
        prefix: devicePrefix(prefix, device.name!),
        plugins: [
          ...hassPlugin(settings, device, i === 0),
          ...settings.devicePlugins?.(device) ?? [],
        ],
      },
      logger: device.logger,
      now: Date.now,
      sleep,
      random: Math.random,
      logConnection: false,
    });
    return { name: device.name!, logger: device.logger, run: (signal) => bridge.run(signal) };
  });
  logger.info(
    `bridging ${site.devices.length} devices and ${mqtt.broker}: ` +
      site.devices.map((d) => `${d.session.host.authority} under ${devicePrefix(prefix, d.name!)}/`)
        .join(", "),
  );
  return await runDaemon(io, logger, async (signal) => {
    try {
      await siteBridge.run(members, signal);
    } finally {
      await settings.serving?.close();
    }
  });
}
