/**
 * `ess mqtt`: the MQTT bridge, a drop-in successor to pyess's essmqtt.
 *
 * @module
 */
import {
  Bridge,
  BRIDGE_DEFAULTS,
  type BridgeOptions,
  type BridgePlugin,
  PUBLISH_MODES,
} from "../lib/mqtt/bridge.ts";
import { sleep } from "../lib/backoff.ts";
import { UsageError } from "../lib/errors.ts";
import { VERSION } from "../lib/version.ts";
import { createHassPlugin } from "../lib/hass/plugin.ts";
import { connectMqtt, type MqttConnectOptions } from "../lib/mqtt/client.ts";
import { statusTopic } from "../lib/mqtt/topics.ts";
import { SWITCH_WORDS_TEXT } from "../lib/device/vocabulary.ts";
import {
  choose,
  defineCommand,
  DEVICE_OPTIONS,
  GENERAL_OPTIONS,
  type Io,
  type OptionSpec,
  type ParsedOf,
} from "./_cli.ts";
import { openSite } from "./_site.ts";
import { runSiteBridge } from "./_mqtt_site.ts";
import {
  daemonSurplus,
  latestReading,
  siteSurplus,
  SURPLUS_OPTIONS,
  type SurplusConfig,
  surplusConfig,
} from "./_surplus.ts";
import { surplusPlugins } from "./_surplus_mqtt.ts";
import { OFFLINE_AFTER_MS } from "../lib/device/poller.ts";
import { createSurplusPlugin } from "../lib/surplus/mqtt.ts";
import {
  HASS_OPTIONS,
  type HassSettings,
  hassSettings,
  MQTT_OPTIONS,
  mqttConnectOptions,
  topicPrefix,
} from "./_mqtt.ts";
import {
  DAEMON_OPTIONS,
  pollSettings,
  runDaemon,
  SERVE_OPTIONS,
  type ServeSettings,
  serveSettings,
} from "./_poll.ts";

/** The bridge's plugins, as their options set them. */
export interface PluginSettings {
  /** `--no-hass` turns Home Assistant discovery off. */
  hass: boolean;
  /** How Home Assistant discovery is announced. */
  hassSettings: HassSettings;
}

/** The bridge's plugins: Home Assistant discovery, unless `--no-hass`. */
function createPlugins(settings: PluginSettings): BridgePlugin[] {
  return settings.hass ? [createHassPlugin({ version: VERSION, ...settings.hassSettings })] : [];
}

const PUBLISHING_OPTIONS = [
  {
    name: "publish-mode",
    type: "string",
    arg: "MODE",
    help: "changes: a value when it changes, everything every --republish-seconds; " +
      "all: everything every poll (as pyess did)",
    default: BRIDGE_DEFAULTS.publishMode,
    env: "ESS_PUBLISH_MODE",
    group: "Publishing",
  },
  {
    name: "republish-seconds",
    type: "string",
    arg: "SECONDS",
    help: "in publish mode changes, publish everything again this often",
    default: String(BRIDGE_DEFAULTS.republishMs / 1000),
    env: "ESS_REPUBLISH_SECONDS",
    group: "Publishing",
  },
  {
    name: "retain",
    aliases: ["mqtt-retain"],
    type: "boolean",
    help: "publish state retained, so that new subscribers see it at once (--no-retain: not)",
    default: BRIDGE_DEFAULTS.retain,
    env: "MQTT_RETAIN",
    group: "Publishing",
  },
  {
    name: "json",
    type: "boolean",
    help: "also publish each state as one JSON document on <prefix>/json/<state>",
    env: "ESS_JSON",
    group: "Publishing",
  },
  {
    name: "once",
    type: "boolean",
    help: "poll once, publish, and exit (for cron; pyess's --once True works too; see " +
      "--hass-expire-after)",
    pyessValue: true,
    group: "Publishing",
  },
] as const satisfies readonly OptionSpec[];

const PLUGIN_OPTIONS = [
  {
    name: "hass",
    type: "boolean",
    help: "announce the sensors and switches to Home Assistant (--no-hass: do not)",
    default: true,
    env: "ESS_HASS",
    group: "Home Assistant",
  },
  ...HASS_OPTIONS,
] as const satisfies readonly OptionSpec[];

/** Every option of `ess mqtt`. */
const OPTIONS = [
  ...DEVICE_OPTIONS,
  ...MQTT_OPTIONS,
  ...PUBLISHING_OPTIONS,
  ...DAEMON_OPTIONS,
  ...PLUGIN_OPTIONS,
  ...SERVE_OPTIONS,
  ...SURPLUS_OPTIONS,
  ...GENERAL_OPTIONS,
] as const satisfies readonly OptionSpec[];

/** Everything `ess mqtt` runs with, resolved from its options. */
export interface MqttSettings {
  connect: MqttConnectOptions;
  bridge: Omit<BridgeOptions, "plugins">;
  plugins: PluginSettings;
  /** Where the bridge also serves the dashboard, the API and the metrics, if anywhere. */
  serve: ServeSettings | undefined;
  /** The surplus and its rules; a one-shot run has none (the surplus is a mean over time). */
  surplus: SurplusConfig | undefined;
}

/**
 * `--listen` of `ess mqtt`. A one-shot run does not serve: `listen` from the config file or the
 * environment (which `ess serve` may share) is left aside, and `--once --listen` on one command
 * line is a usage error.
 */
function bridgeServeSettings(
  p: ParsedOf<typeof OPTIONS>,
  once: boolean,
): ServeSettings | undefined {
  if (!once) return serveSettings(p);
  if (p.get("listen")?.origin.startsWith("--")) {
    throw new UsageError(
      "--once polls once and exits, so it cannot serve: drop --listen or --once",
    );
  }
  return undefined;
}

/** Resolves and checks the options of `ess mqtt` (but not the device's). */
export async function mqttSettings(p: ParsedOf<typeof OPTIONS>): Promise<MqttSettings> {
  const prefix = topicPrefix(p);
  const once = p.flag("once");
  return {
    // A one-shot run has no availability to announce.
    connect: await mqttConnectOptions(
      p,
      once ? undefined : { topic: statusTopic(prefix), payload: "offline", retain: true, qos: 1 },
    ),
    bridge: {
      ...pollSettings(p),
      prefix,
      publishMode: choose(p.string("publish-mode"), PUBLISH_MODES, "publish mode"),
      republishMs: (p.seconds("republish-seconds") ?? BRIDGE_DEFAULTS.republishMs / 1000) * 1000,
      retain: p.flag("retain"),
      json: p.flag("json"),
      once,
    },
    plugins: { hass: p.flag("hass"), hassSettings: hassSettings(p) },
    serve: bridgeServeSettings(p, once),
    surplus: once ? undefined : surplusConfig(p),
  };
}

/**
 * `ess mqtt` for a config with `[device NAME]` sections: every device under `<prefix>/<name>/`
 * over one connection (`_mqtt_site.ts`).
 */
async function runNamed(
  p: ParsedOf<typeof OPTIONS>,
  io: Io,
  settings: MqttSettings,
): Promise<number> {
  const site = await openSite(p);
  try {
    const views = new Map(p.devices.map((d) => [d.name, d.p]));
    const surplus = settings.surplus &&
      siteSurplus(settings.surplus, site, settings.bridge.offlineAfterMs ?? OFFLINE_AFTER_MS);
    const surplusMqtt = surplus && surplusPlugins(
      surplus,
      site,
      settings.bridge.prefix,
      settings.plugins.hass
        ? (name) => ({
          version: VERSION,
          ...settings.plugins.hassSettings,
          ...(name === undefined ? {} : deviceHass(views.get(name)!)),
        })
        : undefined,
    );
    // Followed before the bridges run and the server starts, so that each poll's surplus is
    // published and served with it.
    surplus?.follow(surplusMqtt?.publish, p.log);
    // The server shares the devices' pollers, which the bridges run.
    const serving = settings.serve && await (await import("./_serve.ts")).startServing({
      site,
      serve: settings.serve,
      logger: p.log,
      surplusOf: surplus?.documentOf,
    });
    return await runSiteBridge(
      site,
      {
        connect: settings.connect,
        bridge: settings.bridge,
        hass: settings.plugins.hass
          ? (device) => ({
            ...settings.plugins.hassSettings,
            ...deviceHass(views.get(device.name!)!),
          })
          : undefined,
        serving,
        devicePlugins: surplusMqtt && ((device) => [surplusMqtt.ofDevice(device.name)!]),
        sitePlugins: surplusMqtt?.site && [surplusMqtt.site],
      },
      p.log,
      io,
    );
  } finally {
    site.close();
  }
}

/** What names one device in Home Assistant if its systeminfo has no serial number: its host. */
function deviceHass(p: ParsedOf<typeof OPTIONS>): Pick<HassSettings, "fallbackId"> {
  return { fallbackId: hassSettings(p).fallbackId };
}

const command = defineCommand({
  name: "mqtt",
  usage: "mqtt [--config FILE] [options]",
  description: [
    "Polls the ESS and publishes every value under the topics pyess used, retained:",
    "  <prefix>/home/<group>/<key>     live power flows, e.g. ess/home/statistics/load_power",
    "  <prefix>/common/<GROUP>/<key>   details, e.g. ess/common/BATT/soc",
    "  <prefix>/batt/<key>             battery settings (new in ess), e.g. ess/batt/alg_setting",
    "  <prefix>/status                 online, or offline when the device or ess is away",
    "and carries out commands sent (not retained) to <prefix>/control/<name>:",
    "  active           on/off or start/stop: run or stop the system",
    "  winter_mode      on/off (on switches winter mode ON; pyess had it the other way)",
    "  fastcharge       on/off",
    "  charge_strategy  battery_care, fast_charge or weather_forecast",
    "  backup_mode      on/off",
    "  backup_soc       0-100: the backup reserve in %",
    `On and off are any of pyess's words: ${SWITCH_WORDS_TEXT}, in any case.`,
    "pyess's /ess/control/active, winter_mode and fastcharge still work. A burst of commands for",
    "one control merges (the latest wins) and is written at most every --control-spacing-seconds.",
    "Home Assistant finds the battery, its sensors and switches by MQTT discovery (see 'ess",
    "hass --help'); --no-hass turns that off.",
    "With --listen ADDR:PORT it also serves the dashboard, the JSON/SSE API and /metrics of",
    "'ess serve' from the same device session (the device lets one app session in at a time).",
    "A config with [device NAME] sections bridges every device over one connection, each with",
    "this layout under <prefix>/NAME/ (ess/garage/home/..., ess/garage/status, commands on",
    "ess/garage/control/...), while <prefix>/status says whether ess itself runs (its last will).",
    "With --once it polls each once, publishes, and exits 1 naming those it could not reach.",
    "It runs until SIGINT or SIGTERM and rides out device and broker outages. Options can also",
    "come from the environment or a config file in pyess's format (keys as the long option",
    "names, with _ or -). Exit codes: 0 stopped, 2 bad option or config, 78 wrong device",
    "password (the systemd unit does not restart on it).",
  ].join("\n"),
  options: OPTIONS,
  examples: [
    "ess mqtt --config /etc/essmqtt.conf",
    "ess mqtt --host 192.168.1.20 --password a1b2c3d4e5f6 --mqtt-server mqtts://broker.lan",
    "ESS_PASSWORD=a1b2c3d4e5f6 ess mqtt --host 192.168.1.20 --once --publish-mode all",
    "mosquitto_pub -t ess/control/winter_mode -m true",
    "ess mqtt --config /etc/essmqtt.conf --listen 0.0.0.0:8080",
  ],
  async run(p, io) {
    const settings = await mqttSettings(p);
    if (p.devices.length > 0) return await runNamed(p, io, settings);
    const plugins = createPlugins(settings.plugins);
    const surplus = settings.surplus &&
      daemonSurplus(
        settings.surplus,
        settings.bridge.offlineAfterMs ?? OFFLINE_AFTER_MS,
        latestReading,
      );
    const surplusPlugin = surplus && createSurplusPlugin({
      engine: surplus.engine,
      prefix: settings.bridge.prefix,
      hass: settings.plugins.hass
        ? { version: VERSION, ...settings.plugins.hassSettings }
        : undefined,
    });
    if (surplusPlugin) plugins.push(surplusPlugin);
    const site = await openSite(p);
    try {
      const device = site.devices[0]!;
      // Listened to before the server, so that each state it sends has that poll's surplus.
      surplus?.follow(device.poller, surplusPlugin?.publish);
      // The server's modules load only here, so that the bridge alone does not carry them.
      const serving = settings.serve && await (await import("./_serve.ts")).startServing({
        site,
        serve: settings.serve,
        logger: p.log,
        surplusOf: surplus && ((name) => name === undefined ? surplus.document() : undefined),
      });
      const mqtt = connectMqtt(settings.connect);
      const bridge = new Bridge({
        poller: device.poller,
        controls: device.controls,
        mqtt,
        options: { ...settings.bridge, plugins },
        logger: p.log,
        now: Date.now,
        sleep,
        random: Math.random,
      });
      p.log.info(
        `bridging ${device.session.host.authority} and ${mqtt.broker} under ` +
          `${settings.bridge.prefix}/`,
      );
      return await runDaemon(io, p.log, async (signal) => {
        try {
          await bridge.run(signal);
        } finally {
          await serving?.close();
        }
      });
    } finally {
      site.close();
    }
  },
});

export default command;
