/**
 * `ess mqtt`: the MQTT bridge, a drop-in successor to pyess's essmqtt.
 *
 * @module
 */
import {
  Bridge,
  type BridgeOptions,
  type BridgePlugin,
  PUBLISH_MODES,
} from "../lib/mqtt/bridge.ts";
import { sleep } from "../lib/backoff.ts";
import { UsageError, WrongPasswordError } from "../lib/errors.ts";
import { VERSION } from "../lib/version.ts";
import { DEFAULT_DISCOVERY_PREFIX } from "../lib/hass/discovery.ts";
import { parseSensorList } from "../lib/hass/pyess.ts";
import { createHassPlugin } from "../lib/hass/plugin.ts";
import type { Logger } from "../lib/log.ts";
import { connectMqtt, type MqttConnectOptions } from "../lib/mqtt/client.ts";
import { DEFAULT_PREFIX, statusTopic, topicProblem } from "../lib/mqtt/topics.ts";
import {
  choose,
  type Command,
  DEVICE_OPTIONS,
  GENERAL_OPTIONS,
  type Io,
  type OptionSpec,
  parseCommand,
  type Parsed,
} from "./_cli.ts";
import { openDevice, parseHostPort } from "./_device.ts";

/** Exit code for a wrong device password (EX_CONFIG): the systemd unit does not restart on it. */
export const EXIT_WRONG_PASSWORD = 78;

/** What the bridge's plugins are given: the options they own, parsed. */
export interface PluginSettings {
  prefix: string;
  /** `--no-hass` turns Home Assistant discovery off. */
  hass: boolean;
  /** pyess's `hass_autoconfig_sensors`: the state topics to announce, if given. */
  hassAutoconfigSensors: readonly string[] | undefined;
  /** Home Assistant's discovery prefix (`--hass-prefix`). */
  hassPrefix: string;
  /** The device's host as given, which names it in Home Assistant if it has no serial number. */
  deviceName: string;
  logger: Logger;
}

/** Builds the bridge's plugins. */
export const PLUGIN_FACTORIES: ((settings: PluginSettings) => BridgePlugin | undefined)[] = [
  (s) =>
    s.hass
      ? createHassPlugin({
        version: VERSION,
        fallbackId: s.deviceName,
        discoveryPrefix: s.hassPrefix,
        sensors: s.hassAutoconfigSensors,
      })
      : undefined,
];

/** How to reach the broker: shared by every command that talks MQTT. */
export const MQTT_OPTIONS: readonly OptionSpec[] = [
  {
    name: "mqtt-server",
    type: "string",
    arg: "HOST|URL",
    help: "the broker: a host name, HOST:PORT, mqtt://HOST:PORT or mqtts://HOST:PORT",
    default: "localhost",
    env: "MQTT_SERVER",
    group: "MQTT",
  },
  {
    name: "mqtt-port",
    type: "string",
    arg: "PORT",
    help: "the broker's port (default: 1883, with TLS 8883)",
    env: "MQTT_PORT",
    group: "MQTT",
  },
  {
    name: "mqtt-user",
    type: "string",
    arg: "USER",
    help: "user name at the broker",
    env: "MQTT_USER",
    group: "MQTT",
  },
  {
    name: "mqtt-password",
    type: "string",
    arg: "PASSWORD",
    help: "password at the broker",
    env: "MQTT_PASSWORD",
    group: "MQTT",
  },
  {
    name: "mqtt-tls",
    type: "boolean",
    help: "connect with TLS (as mqtts:// does)",
    env: "MQTT_TLS",
    group: "MQTT",
  },
  {
    name: "mqtt-ca",
    type: "string",
    arg: "FILE",
    help: "PEM file of the CA that signed the broker's certificate (implies TLS)",
    env: "MQTT_CA",
    group: "MQTT",
  },
  {
    name: "mqtt-client-id",
    type: "string",
    arg: "ID",
    help: "MQTT client id (default: ess- and random letters)",
    env: "MQTT_CLIENT_ID",
    group: "MQTT",
  },
];

/** `--mqtt-prefix`, the first level of every topic. */
export const PREFIX_OPTION: OptionSpec = {
  name: "mqtt-prefix",
  type: "string",
  arg: "PREFIX",
  help: "first level of every topic",
  default: DEFAULT_PREFIX,
  env: "MQTT_PREFIX",
  group: "Publishing",
};

const PUBLISHING_OPTIONS: readonly OptionSpec[] = [
  PREFIX_OPTION,
  {
    name: "interval-seconds",
    type: "string",
    arg: "SECONDS",
    help: "poll the device this often",
    default: "10",
    env: "ESS_INTERVAL_SECONDS",
    group: "Publishing",
  },
  {
    name: "common-divisor",
    type: "string",
    arg: "N",
    help: "read common (PV, BATT, GRID, LOAD, PCS) only every N-th poll; " +
      "batt (the settings) is read with it about once a minute",
    default: "1",
    env: "ESS_COMMON_DIVISOR",
    group: "Publishing",
  },
  {
    name: "publish-mode",
    type: "string",
    arg: "MODE",
    help: "changes: a value when it changes, everything every --republish-seconds; " +
      "all: everything every poll (as pyess did)",
    default: "changes",
    env: "ESS_PUBLISH_MODE",
    group: "Publishing",
  },
  {
    name: "republish-seconds",
    type: "string",
    arg: "SECONDS",
    help: "in publish mode changes, publish everything again this often",
    default: "300",
    env: "ESS_REPUBLISH_SECONDS",
    group: "Publishing",
  },
  {
    name: "retain",
    aliases: ["mqtt-retain"],
    type: "boolean",
    help: "publish state retained, so that new subscribers see it at once (--no-retain: not)",
    default: true,
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
    help: "poll once, publish, and exit (for cron)",
    group: "Publishing",
  },
];

const CONTROL_OPTIONS: readonly OptionSpec[] = [
  {
    name: "control-spacing-seconds",
    type: "string",
    arg: "SECONDS",
    help: "write one control at most this often; commands in between merge, the latest wins",
    default: "2",
    env: "ESS_CONTROL_SPACING_SECONDS",
    group: "Controls",
  },
  {
    name: "active-spacing-seconds",
    type: "string",
    arg: "SECONDS",
    help: "the same for active (starting and stopping the system)",
    default: "30",
    env: "ESS_ACTIVE_SPACING_SECONDS",
    group: "Controls",
  },
];

/** What Home Assistant discovery is announced with; `ess mqtt` and `ess hass` share them. */
export const HASS_OPTIONS: readonly OptionSpec[] = [
  {
    name: "hass-autoconfig-sensors",
    type: "string",
    arg: "TOPICS",
    help: "comma-separated state topics to announce (pyess's key)",
    env: "ESS_HASS_AUTOCONFIG_SENSORS",
    group: "Home Assistant",
  },
  {
    name: "hass-prefix",
    type: "string",
    arg: "PREFIX",
    help: "Home Assistant's discovery prefix",
    default: DEFAULT_DISCOVERY_PREFIX,
    env: "ESS_HASS_PREFIX",
    group: "Home Assistant",
  },
];

const PLUGIN_OPTIONS: readonly OptionSpec[] = [
  {
    name: "hass",
    type: "boolean",
    help: "announce the sensors and switches to Home Assistant (--no-hass: do not)",
    default: true,
    env: "ESS_HASS",
    group: "Home Assistant",
  },
  ...HASS_OPTIONS,
];

/**
 * The broker URL from `--mqtt-server` (a host, `HOST:PORT` or a URL), `--mqtt-port` (used when
 * the server names no port) and TLS (`mqtts://`, `--mqtt-tls` or `--mqtt-ca`).
 *
 * @example
 * ```ts
 * brokerUrl("broker.lan", undefined, false); // "mqtt://broker.lan:1883"
 * brokerUrl("mqtts://broker.lan", undefined, false); // "mqtts://broker.lan:8883"
 * ```
 */
export function brokerUrl(server: string, port: number | undefined, tls: boolean): string {
  let text = server.trim();
  let secure = tls;
  const url = /^([a-z][a-z0-9+.-]*):\/\/([^/]*)\/?$/i.exec(text);
  if (url) {
    const scheme = url[1]!.toLowerCase();
    if (["mqtts", "ssl", "tls"].includes(scheme)) secure = true;
    else if (scheme !== "mqtt" && scheme !== "tcp") {
      throw new UsageError(
        `--mqtt-server ${JSON.stringify(server)}: use a host name, mqtt:// or mqtts://`,
      );
    }
    text = url[2]!;
  }
  const { hostname, port: p } = parseHostPort(
    text,
    port ?? (secure ? 8883 : 1883),
    "--mqtt-server",
  );
  const name = hostname.includes(":") ? `[${hostname}]` : hostname;
  return `${secure ? "mqtts" : "mqtt"}://${name}:${p}`;
}

function randomId(): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(4)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

async function readCa(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    throw new UsageError(`--mqtt-ca ${path}: cannot read it (${(err as Error).message})`);
  }
}

/** pyess's `hass_autoconfig_sensors`, if given. */
export function hassSensors(p: Parsed): string[] | undefined {
  const text = p.string("hass-autoconfig-sensors");
  return text === undefined ? undefined : parseSensorList(text);
}

/**
 * The device's host as given, which identifies it in Home Assistant when its systeminfo has no
 * serial number.
 */
export function deviceName(p: Parsed): string {
  return p.string("host")?.trim() || "ess";
}

/** `--hass-prefix`, checked. */
export function hassPrefix(p: Parsed): string {
  const prefix = p.string("hass-prefix") ?? DEFAULT_DISCOVERY_PREFIX;
  if (topicProblem(prefix) !== undefined || prefix.startsWith("/") || prefix.endsWith("/")) {
    throw new UsageError(`--hass-prefix ${JSON.stringify(prefix)} is not a usable topic prefix`);
  }
  return prefix;
}

/** Everything `ess mqtt` runs with, resolved from its options. */
export interface MqttSettings {
  connect: MqttConnectOptions;
  bridge: Omit<BridgeOptions, "plugins">;
  plugins: PluginSettings;
}

/** `--mqtt-prefix`, checked. */
export function topicPrefix(p: Parsed): string {
  const prefix = p.string("mqtt-prefix") ?? DEFAULT_PREFIX;
  if (topicProblem(prefix) !== undefined || prefix.startsWith("/") || prefix.endsWith("/")) {
    throw new UsageError(`--mqtt-prefix ${JSON.stringify(prefix)} is not a usable topic prefix`);
  }
  return prefix;
}

/** How to connect to the broker, from {@link MQTT_OPTIONS}; `will` is the last will, if any. */
export async function mqttConnectOptions(
  p: Parsed,
  will: MqttConnectOptions["will"],
): Promise<MqttConnectOptions> {
  const caPath = p.string("mqtt-ca");
  return {
    url: brokerUrl(
      p.string("mqtt-server") ?? "localhost",
      p.integer("mqtt-port", 1, 65535),
      p.flag("mqtt-tls") || caPath !== undefined,
    ),
    username: p.string("mqtt-user"),
    password: p.string("mqtt-password"),
    ca: caPath === undefined ? undefined : await readCa(caPath),
    clientId: p.string("mqtt-client-id") ?? `ess-${randomId()}`,
    will,
  };
}

/** Resolves and checks the options of `ess mqtt` (but not the device's). */
export async function mqttSettings(p: Parsed): Promise<MqttSettings> {
  const prefix = topicPrefix(p);
  const once = p.flag("once");
  return {
    // A one-shot run has no availability to announce.
    connect: await mqttConnectOptions(
      p,
      once ? undefined : { topic: statusTopic(prefix), payload: "offline", retain: true, qos: 1 },
    ),
    bridge: {
      prefix,
      intervalMs: (p.seconds("interval-seconds") ?? 10) * 1000,
      commonDivisor: p.integer("common-divisor", 1, 10_000) ?? 1,
      publishMode: choose(p.string("publish-mode"), PUBLISH_MODES, "publish mode"),
      republishMs: (p.seconds("republish-seconds") ?? 300) * 1000,
      retain: p.flag("retain"),
      json: p.flag("json"),
      once,
      controlSpacingMs: (p.seconds("control-spacing-seconds") ?? 2) * 1000,
      activeSpacingMs: (p.seconds("active-spacing-seconds") ?? 30) * 1000,
    },
    plugins: {
      prefix,
      hass: p.flag("hass"),
      hassAutoconfigSensors: hassSensors(p),
      hassPrefix: hassPrefix(p),
      deviceName: deviceName(p),
      logger: p.log,
    },
  };
}

const command: Command = {
  name: "mqtt",
  usage: "mqtt [--config FILE] [options]",
  description: [
    "Polls the ESS and publishes every value under the topics pyess used, retained:",
    "  <prefix>/home/<group>/<key>     live power flows, e.g. ess/home/statistics/load_power",
    "  <prefix>/common/<GROUP>/<key>   details, e.g. ess/common/BATT/soc",
    "  <prefix>/batt/<key>             battery settings (new in ess), e.g. ess/batt/alg_setting",
    "  <prefix>/status                 online, or offline when the device or ess is away",
    "and carries out commands sent (not retained) to <prefix>/control/<name>:",
    "  active           true/false, on/off, 1/0, start/stop: run or stop the system",
    "  winter_mode      true/false (true switches winter mode ON; pyess had it the other way)",
    "  fastcharge       true/false",
    "  charge_strategy  battery_care, fast_charge or weather_forecast",
    "  backup_mode      on/off",
    "  backup_soc       0-100: the backup reserve in %",
    "pyess's /ess/control/active, winter_mode and fastcharge still work.",
    "Home Assistant finds the battery, its sensors and switches by MQTT discovery (see 'ess",
    "hass --help'); --no-hass turns that off.",
    "It runs until SIGINT or SIGTERM and rides out device and broker outages. Options can also",
    "come from the environment or a config file in pyess's format (keys as the long option",
    "names, with _ or -). Exit codes: 0 stopped, 2 bad option or config, 78 wrong device",
    "password (the systemd unit does not restart on it).",
  ].join("\n"),
  options: [
    ...DEVICE_OPTIONS,
    ...MQTT_OPTIONS,
    ...PUBLISHING_OPTIONS,
    ...CONTROL_OPTIONS,
    ...PLUGIN_OPTIONS,
    ...GENERAL_OPTIONS,
  ],
  examples: [
    "ess mqtt --config /etc/essmqtt.conf",
    "ess mqtt --host 192.168.1.20 --password a1b2c3d4e5f6 --mqtt-server mqtts://broker.lan",
    "ESS_PASSWORD=a1b2c3d4e5f6 ess mqtt --host 192.168.1.20 --once --publish-mode all",
    "mosquitto_pub -t ess/control/winter_mode -m true",
  ],
  async run(argv: string[], io: Io): Promise<number> {
    const p = await parseCommand(command, argv, io);
    if (!p) return 0;
    const settings = await mqttSettings(p);
    const plugins = PLUGIN_FACTORIES.map((make) => make(settings.plugins)).filter((x) =>
      x !== undefined
    );
    const session = await openDevice(p);
    const mqtt = connectMqtt(settings.connect);
    const bridge = new Bridge({
      device: session.client,
      mqtt,
      options: { ...settings.bridge, plugins },
      logger: p.log,
      now: Date.now,
      sleep,
      random: Math.random,
    });
    const prefix = settings.bridge.prefix;

    const stop = new AbortController();
    const onSignal = () => stop.abort();
    const signals = ["SIGINT", "SIGTERM"] as const;
    for (const signal of signals) Deno.addSignalListener(signal, onSignal);
    let deadline: ReturnType<typeof setTimeout> | undefined;
    try {
      p.log.info(`bridging ${session.host.authority} and ${mqtt.broker} under ${prefix}/`);
      await Promise.race([
        bridge.run(stop.signal),
        // However the device or the broker hang, a signal ends ess within 2 s.
        new Promise<void>((resolve) => {
          stop.signal.addEventListener("abort", () => deadline = setTimeout(resolve, 1500), {
            once: true,
          });
        }),
      ]);
    } catch (err) {
      if (!(err instanceof WrongPasswordError)) throw err;
      io.err(`ess: ${err.message}\n`);
      return EXIT_WRONG_PASSWORD;
    } finally {
      clearTimeout(deadline);
      for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
      session.close();
    }
    return 0;
  },
};

export default command;
