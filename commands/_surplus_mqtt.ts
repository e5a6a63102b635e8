/**
 * The surplus on MQTT for `ess mqtt`: the plugins that publish each device's surplus and the
 * site's, apart from `_surplus.ts` so that `ess serve` does not load them.
 *
 * @module
 */
import { devicePrefix } from "../lib/mqtt/topics.ts";
import {
  createSurplusPlugin,
  type SurplusPlugin,
  type SurplusPluginOptions,
} from "../lib/surplus/mqtt.ts";
import type { Site } from "./_site.ts";
import type { SiteSurplus, SurplusPublish } from "./_surplus.ts";

/** The surplus's MQTT plugins of a daemon's site. */
export interface SurplusPlugins {
  /**
   * The plugin of a device's bridge, by the device's name (`ess/garage/surplus/...`), or, with
   * `undefined`, of the one device of single mode (`ess/surplus/...`).
   */
  ofDevice(device: string | undefined): SurplusPlugin | undefined;
  /** Named mode: the site's, among the process's plugins (`ess/surplus/...`). */
  site: SurplusPlugin | undefined;
  /** Hands a new state to its plugin; give it to {@link SiteSurplus.follow}. */
  publish: SurplusPublish;
}

/** How a surplus plugin announces itself to Home Assistant, or `undefined`: it does not. */
export type SurplusHass = SurplusPluginOptions["hass"];

/**
 * The MQTT plugins of `surplus`: in single mode the one device's under `prefix`; in named mode
 * each device's under its own prefix (on its own HA device) and the site's under `prefix` (on
 * `LG ESS site`). `hass(device)` says how a device's plugin announces itself (`undefined`: the
 * site's, or single mode's), or nothing for none.
 */
export function surplusPlugins(
  surplus: SiteSurplus,
  site: Pick<Site, "devices">,
  prefix: string,
  hass: ((device: string | undefined) => SurplusHass) | undefined,
): SurplusPlugins {
  const plugin = (device: string | undefined) => {
    const engine = surplus.engineOf(device)!;
    const announce = hass?.(device);
    if (!surplus.named) return createSurplusPlugin({ engine, prefix, hass: announce });
    if (device === undefined) {
      const devices = site.devices.map((d) => d.name!);
      return createSurplusPlugin({
        engine,
        prefix,
        hass: announce && { ...announce, site: { devices } },
      });
    }
    return createSurplusPlugin({
      engine,
      prefix: devicePrefix(prefix, device),
      hass: announce && { ...announce, named: { name: device, processPrefix: prefix } },
    });
  };
  const plugins = new Map(site.devices.map((d) => [d.name, plugin(d.name)]));
  const sitePlugin = surplus.named ? plugin(undefined) : undefined;
  const of = (device: string | undefined) =>
    surplus.named && device === undefined ? sitePlugin : plugins.get(device);
  return {
    ofDevice: (device) => plugins.get(device),
    site: sitePlugin,
    publish: (device, state) => of(device)?.publish(state),
  };
}
