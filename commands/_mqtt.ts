/**
 * What `ess mqtt` and `ess hass` share: how to reach the broker, the topic prefix, and the
 * Home Assistant discovery options, with their checks.
 *
 * @module
 */
import { readSmallTextFile } from "../lib/config.ts";
import { UsageError } from "../lib/errors.ts";
import { type SupervisorMqtt, supervisorMqtt } from "../lib/hass/addon.ts";
import { DEFAULT_DISCOVERY_PREFIX } from "../lib/hass/discovery.ts";
import { readAutoconfigSensors } from "../lib/hass/pyess.ts";
import type { MqttConnectOptions } from "../lib/mqtt/client.ts";
import { DEFAULT_PREFIX, topicProblem } from "../lib/mqtt/topics.ts";
import type { OptionSpec, Parsed, ParsedOf } from "./_cli.ts";
import { parseHostPort } from "./_device.ts";
/** How to reach the broker, and the first level of every topic: shared by every command that talks MQTT. */
export const MQTT_OPTIONS = [
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
    help: "MQTT client id (default: ess- and 8 random hex digits)",
    env: "MQTT_CLIENT_ID",
    group: "MQTT",
  },
  {
    name: "mqtt-prefix",
    type: "string",
    arg: "PREFIX",
    help: "first level of every topic",
    default: DEFAULT_PREFIX,
    env: "MQTT_PREFIX",
    group: "MQTT",
  },
] as const satisfies readonly OptionSpec[];

/**
 * How long a `--once` announcement lets a sensor show its last value: three runs of a 5-minute
 * cron. Longer crons need more; an expiry shorter than the cron only leaves gaps between runs.
 */
const DEFAULT_EXPIRE_AFTER_SECONDS = 900;

/** What Home Assistant discovery is announced with; `ess mqtt` and `ess hass` share them. */
export const HASS_OPTIONS = [
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
  {
    name: "hass-expire-after",
    type: "string",
    arg: "SECONDS",
    help: "with --once: Home Assistant shows a sensor unavailable when no value came for this " +
      "long (make it a few times the cron interval)",
    default: String(DEFAULT_EXPIRE_AFTER_SECONDS),
    env: "ESS_HASS_EXPIRE_AFTER",
    group: "Home Assistant",
  },
] as const satisfies readonly OptionSpec[];

/**
 * The broker URL from `--mqtt-server` (a host, `HOST:PORT` or a URL), `--mqtt-port` (used when
 * the server names no port) and TLS (`mqtts://`, `--mqtt-tls` or `--mqtt-ca`).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(brokerUrl("broker.lan", undefined, false), "mqtt://broker.lan:1883");
 * equal(brokerUrl("mqtts://broker.lan", undefined, false), "mqtts://broker.lan:8883");
 * ```
 */
export function brokerUrl(server: string, port: number | undefined, tls: boolean): string {
  let text = server.trim();
  // First, and not quoted, whatever the scheme: what comes before the @ is a user name and, as
  // likely, a password.
  if (text.includes("@")) {
    throw new UsageError(
      "--mqtt-server takes no user name or password in the address: give --mqtt-user and " +
        "--mqtt-password (better MQTT_PASSWORD or mqtt_password in the config file)",
    );
  }
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

/** The largest CA file ess reads: a whole system bundle of every public CA is about 220 kB. */
const MAX_CA_BYTES = 1024 * 1024;

function readCa(path: string): Promise<string> {
  return readSmallTextFile(
    path,
    MAX_CA_BYTES,
    "a CA file",
    (why) => new UsageError(`--mqtt-ca ${path}: cannot read it (${why})`),
  );
}

/** What Home Assistant discovery is announced with, from {@link HASS_OPTIONS}. */
export interface HassSettings {
  /** Home Assistant's discovery prefix (`--hass-prefix`). */
  discoveryPrefix: string;
  /** pyess's `hass_autoconfig_sensors`: the state topics to announce, if given. */
  sensors: readonly string[] | undefined;
  /** The configs pyess announced for that list, which ess clears when it takes over. */
  pyessTopics: readonly string[];
  /** With `--once`: sensors expire after this long instead of following `<prefix>/status`. */
  expireAfterSeconds: number | undefined;
  /** The device's host as given, which names it in Home Assistant if it has no serial number. */
  fallbackId: string;
}

/** Resolves and checks {@link HASS_OPTIONS} (with `--host` and `--once`). */
export function hassSettings(
  p: Parsed<"host" | "hass-prefix" | "hass-autoconfig-sensors" | "hass-expire-after", "once">,
): HassSettings {
  const text = p.string("hass-autoconfig-sensors");
  const autoconfig = text === undefined ? undefined : readAutoconfigSensors(text);
  // Checked even without --once, so that a bad value in the config file shows at once.
  const expireAfter = p.integer("hass-expire-after", 1, 30 * 86_400) ??
    DEFAULT_EXPIRE_AFTER_SECONDS;
  return {
    discoveryPrefix: hassPrefix(p),
    sensors: autoconfig?.sensors,
    pyessTopics: autoconfig?.pyessTopics ?? [],
    expireAfterSeconds: p.flag("once") ? expireAfter : undefined,
    fallbackId: p.string("host")?.trim() || "ess",
  };
}

/** `prefix` from `option`, if it can begin topics: no wildcard, no "/" at either end. */
function checkedPrefix(option: string, prefix: string): string {
  if (topicProblem(prefix) !== undefined || prefix.startsWith("/") || prefix.endsWith("/")) {
    throw new UsageError(`${option} ${JSON.stringify(prefix)} is not a usable topic prefix`);
  }
  return prefix;
}

/** `--hass-prefix`, checked. */
function hassPrefix(p: Parsed<"hass-prefix", never>): string {
  return checkedPrefix("--hass-prefix", p.string("hass-prefix") ?? DEFAULT_DISCOVERY_PREFIX);
}

/** `--mqtt-prefix`, checked. */
export function topicPrefix(p: Parsed<"mqtt-prefix", never>): string {
  return checkedPrefix("--mqtt-prefix", p.string("mqtt-prefix") ?? DEFAULT_PREFIX);
}

/** Where an add-on reaches the Supervisor's API; `ESS_SUPERVISOR_URL` stands in for tests. */
const SUPERVISOR_URL = "http://supervisor";

/**
 * The Supervisor's broker, when ess runs as a Home Assistant add-on (`SUPERVISOR_TOKEN` is set)
 * and no option names a broker; `undefined` otherwise. Its password joins the redacted secrets.
 */
async function addonBroker(
  p: ParsedOf<typeof MQTT_OPTIONS>,
): Promise<SupervisorMqtt | undefined> {
  const token = p.io.env("SUPERVISOR_TOKEN");
  if (token === undefined || p.get("mqtt-server")?.origin !== "default") return undefined;
  const broker = await supervisorMqtt({
    baseUrl: p.io.env("ESS_SUPERVISOR_URL") ?? SUPERVISOR_URL,
    token,
  });
  p.log.redactor.add(broker.password);
  p.log.info(`MQTT broker from the Supervisor: ${broker.host}:${broker.port}`);
  return broker;
}

/**
 * How to connect to the broker, from {@link MQTT_OPTIONS}, or in a Home Assistant add-on without
 * `mqtt_server` from the Supervisor (a user or password given in the options still win); `will`
 * is the last will, if any.
 */
export async function mqttConnectOptions(
  p: ParsedOf<typeof MQTT_OPTIONS>,
  will: MqttConnectOptions["will"],
): Promise<MqttConnectOptions> {
  const caPath = p.string("mqtt-ca");
  const broker = await addonBroker(p);
  const tls = p.flag("mqtt-tls") || caPath !== undefined;
  return {
    url: broker === undefined
      ? brokerUrl(p.string("mqtt-server") ?? "localhost", p.integer("mqtt-port", 1, 65535), tls)
      : brokerUrl(broker.host, broker.port, broker.ssl || tls),
    username: p.string("mqtt-user") ?? broker?.username,
    password: p.string("mqtt-password") ?? broker?.password,
    ca: caPath === undefined ? undefined : await readCa(caPath),
    clientId: p.string("mqtt-client-id") ?? `ess-${randomId()}`,
    will,
  };
}
