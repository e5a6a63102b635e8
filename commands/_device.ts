/**
 * Turning the device options into a connected client.
 *
 * @module
 */
import { EssClient } from "../lib/device/client.ts";
import { retryOnce } from "../lib/device/retry.ts";
import { ConfigError, DiscoveryError, preview, UsageError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import {
  browse,
  deviceAuthority,
  type EssDevice,
  HTTPS_PORT_KEY,
  INSTANCE_PREFIX,
  matchesName,
  reasonableHttpsPort,
  SERVICE_TYPE,
} from "../lib/device/mdns.ts";
import { createDeviceFetch, type DeviceFetch } from "../lib/device/transport.ts";
import { MAX_PASSWORD_LENGTH } from "../lib/device/limits.ts";
import {
  type DEVICE_OPTIONS,
  errorAt,
  fromConfigFile,
  type OptionValue,
  type Parsed,
  type ParsedOf,
} from "./_cli.ts";

/** What the device helpers read of a command's options. */
export type DeviceParsed = ParsedOf<typeof DEVICE_OPTIONS>;

/** A host and port, as the URL authority `HOST` or `HOST:PORT`. */
export interface HostPort {
  hostname: string;
  port: number;
  /** `hostname` or `hostname:port`, IPv6 in brackets; what URLs and messages use. */
  authority: string;
}

/** The longest host name DNS allows. */
const MAX_HOSTNAME_LENGTH = 253;
/** A DNS name (labels of letters, digits, `-` and `_`, up to 63 each) or an IPv4 address. */
const HOST_NAME =
  /^(?!.*\.\.)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;
/** What the digits and colons of an IPv6 address may be made of (the URL parser checks the rest). */
const IPV6 = /^[0-9A-Fa-f:.]+$/;

/**
 * Parses `HOST[:PORT]` (IPv6 as `[addr]:port` or bare). A value that is no host name or address
 * (`[::1`, `%00`, `a b`, an empty or over-long one) or a bad port is a {@link UsageError}, so it
 * never reaches a URL or a socket.
 *
 * @example
 * ```ts
 * import { equal, throws } from "node:assert/strict";
 * equal(parseHostPort("192.168.1.20:8443", 443).authority, "192.168.1.20:8443");
 * equal(parseHostPort("fe80::1", 443).authority, "[fe80::1]");
 * throws(() => parseHostPort("[::1", 443), /is not a host name or address/);
 * ```
 */
export function parseHostPort(text: string, defaultPort: number, what = "host"): HostPort {
  const t = text.trim();
  if (t.length > MAX_HOSTNAME_LENGTH + 8) {
    throw new UsageError(`${what} of ${t.length} characters is too long for a host name`);
  }
  let hostname: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(t);
  if (bracketed) [, hostname = "", portText] = bracketed;
  else if ((t.match(/:/g) ?? []).length > 1) hostname = t;
  else [hostname = "", portText] = t.split(":");
  const v6 = hostname.includes(":");
  if (
    hostname.length > MAX_HOSTNAME_LENGTH || !(v6 ? IPV6.test(hostname) : HOST_NAME.test(hostname))
  ) {
    throw new UsageError(
      `${what} ${JSON.stringify(text)} is not a host name or address (give a name such as ` +
        `ess.lan, an IPv4 address, or an IPv6 address in brackets, each with :PORT if needed)`,
    );
  }
  let port = defaultPort;
  if (portText !== undefined) {
    port = Number(portText);
    if (!/^\d+$/.test(portText) || port < 1 || port > 65535) {
      throw new UsageError(`${what} ${JSON.stringify(text)} has a bad port: use 1-65535`);
    }
  }
  const name = v6 ? `[${hostname}]` : hostname;
  const authority = port === defaultPort ? name : `${name}:${port}`;
  if (!URL.canParse(`https://${authority}/`)) {
    throw new UsageError(`${what} ${JSON.stringify(text)} is not a valid host name or address`);
  }
  return { hostname, port, authority };
}

/**
 * {@link parseHostPort} of an option's value. A bad value from a config file is a
 * {@link ConfigError} naming its file and line, as other values are.
 */
export function hostPortOption(option: OptionValue, defaultPort: number, what?: string): HostPort {
  try {
    return parseHostPort(String(option.value), defaultPort, what);
  } catch (err) {
    if (err instanceof UsageError && fromConfigFile(option.origin)) {
      throw new ConfigError(`${option.origin}: ${err.message}`);
    }
    throw err;
  }
}

/** How long a device command without `--host` listens for mDNS answers. */
export const DISCOVERY_TIMEOUT_MS = 3000;
/** Once a device has answered, how long to wait for others before picking one. */
const DISCOVERY_SETTLE_MS = 1000;

/** Finds LG ESS devices on the network (all of them, or the one called `name`). */
export type Discover = (name: string | undefined, log: Logger) => Promise<EssDevice[]>;

/**
 * Browses by mDNS: with a name it stops at that device (still returning the others it heard, for
 * the error message if none matches); without, it waits until answers have settled, so that it
 * can tell one device from several.
 */
export function browseDevices(name: string | undefined, log: Logger): Promise<EssDevice[]> {
  log.debug(`no --host: looking for ${name ?? "an LG ESS"} by mDNS (${SERVICE_TYPE})`);
  const stop = new AbortController();
  return browse({
    timeoutMs: DISCOVERY_TIMEOUT_MS,
    settleMs: name === undefined ? DISCOVERY_SETTLE_MS : undefined,
    signal: stop.signal,
    logger: log,
    onFound: (device) => {
      if (name !== undefined && matchesName(device, name)) stop.abort();
    },
  });
}

/** `discover`, asked at most once per name: later calls share the first answer (not a failure). */
export function cachedDiscover(discover: Discover): Discover {
  const discoveries = new Map<string, Promise<EssDevice[]>>();
  return (name, log) => {
    const key = name?.toLowerCase() ?? "";
    let found = discoveries.get(key);
    if (!found) {
      found = discover(name, log);
      found.catch(() => discoveries.delete(key));
      discoveries.set(key, found);
    }
    return found;
  };
}

/** The process's discovery: several device sessions in one process reuse its answer. */
export const discoverOnce: Discover = cachedDiscover(browseDevices);

const label = (d: EssDevice) => `${INSTANCE_PREFIX}${d.name} (${deviceAuthority(d)})`;

/** The most devices a message names; the others are counted. */
const NAMED_IN_MESSAGE = 5;

/** `devices` for a message: the first few by name, then how many more. */
function labels(devices: readonly EssDevice[]): string {
  const named = devices.slice(0, NAMED_IN_MESSAGE).map(label).join(", ");
  const more = devices.length - NAMED_IN_MESSAGE;
  return more > 0 ? `${named} and ${more} more` : named;
}

/**
 * The one device to use among those discovered: the one called `name`, or the only one. None is
 * a {@link DiscoveryError}; several without a name is a {@link UsageError} listing them.
 */
export function pickDevice(devices: readonly EssDevice[], name: string | undefined): EssDevice {
  const seconds = DISCOVERY_TIMEOUT_MS / 1000;
  const hint = "give --host, ESS_HOST or ess_host in the config file";
  if (name !== undefined) {
    const device = devices.find((d) => matchesName(d, name));
    if (device) return device;
    throw new DiscoveryError(
      SERVICE_TYPE,
      `No LG ESS named ${JSON.stringify(name)} answered on mDNS within ${seconds} s${
        devices.length > 0 ? ` (found ${labels(devices)})` : ""
      }: check --name, or ${hint}`,
    );
  }
  const [only, ...others] = devices;
  if (only === undefined) {
    throw new DiscoveryError(
      SERVICE_TYPE,
      `No LG ESS answered on mDNS (${SERVICE_TYPE}) within ${seconds} s: ${hint} ` +
        "(mDNS finds the device only on the same network segment)",
    );
  }
  if (others.length > 0) {
    throw new UsageError(
      `Several LG ESS answered on mDNS: ${labels(devices)}; ` +
        "pick one with --name NAME or --host",
    );
  }
  return only;
}

/**
 * The device's address from `--host` (or config / environment); without one, the device found
 * by mDNS (the only one, or the one `--name` names).
 */
export async function deviceHost(
  p: DeviceParsed,
  discover: Discover = discoverOnce,
): Promise<HostPort> {
  const host = p.get("host");
  if (typeof host?.value === "string" && host.value.trim() !== "") return hostPortOption(host, 443);
  const name = p.string("name")?.trim() || undefined;
  const device = pickDevice(await discover(name, p.log), name);
  const port = device.txt[HTTPS_PORT_KEY];
  if (port !== undefined && !reasonableHttpsPort(port)) {
    p.log.warning(
      `${INSTANCE_PREFIX}${device.name} announces ${HTTPS_PORT_KEY} ${preview(port, 20)}, ` +
        "which ess does not use (only 443 or 1024-65535): trying port 443",
    );
  }
  // Anyone on the network can answer mDNS: say where the password goes before it goes.
  p.log.info(`found ${label(device)} by mDNS; logging in there`);
  return parseHostPort(deviceAuthority(device), 443);
}

/** The device password from `--password`, `ESS_PASSWORD` or `ess_password`. */
export function devicePassword(p: DeviceParsed): string {
  const password = p.get("password");
  if (typeof password?.value !== "string" || password.value === "") {
    throw new UsageError(
      "no device password: give --password, ESS_PASSWORD or ess_password in the config file " +
        "or the add-on's options ('ess password' reads it on the device's Wi-Fi)",
    );
  }
  if (password.value.length > MAX_PASSWORD_LENGTH) {
    throw errorAt(
      password.origin,
      `the device password has ${password.value.length} characters, more than ` +
        `${MAX_PASSWORD_LENGTH}: the device's is its wired MAC address, 12 characters ` +
        `(see 'ess password')`,
    );
  }
  return password.value;
}

/** The fetch-shaped transport for the device, from `--fingerprint` and `--timeout`. */
export function deviceFetch(p: Parsed<"fingerprint" | "timeout", never>): DeviceFetch {
  const timeoutMs = (p.seconds("timeout") ?? 10) * 1000;
  return createDeviceFetch({
    fingerprint: p.string("fingerprint"),
    timeoutMs,
    connectTimeoutMs: Math.min(timeoutMs, 5000),
    redactor: p.log.redactor,
  });
}

/** A client and the connection to close when done. */
export interface DeviceSession {
  client: EssClient;
  host: HostPort;
  close(): void;
}

/** Options of {@link openDevice}. */
export interface OpenDeviceOptions {
  /** How to find the device without `--host` (default: mDNS, once per process). */
  discover?: Discover | undefined;
  /**
   * Send a request that fails transiently once more after a short pause (lib/device/retry.ts):
   * for one-shot commands only; a daemon has its own back-off.
   */
  retryOnce?: boolean | undefined;
  /** How the retry waits (tests pass a fake). */
  sleep?: ((ms: number) => Promise<void>) | undefined;
}

/** Opens a client for the device named by the options (found by mDNS without `--host`). */
export async function openDevice(
  p: DeviceParsed,
  options: OpenDeviceOptions = {},
): Promise<DeviceSession> {
  const host = await deviceHost(p, options.discover ?? discoverOnce);
  const password = devicePassword(p);
  const transport = deviceFetch(p);
  const fetch = options.retryOnce
    ? retryOnce(transport, { sleep: options.sleep, logger: p.log })
    : transport;
  const client = new EssClient({ host: host.authority, password, fetch, logger: p.log });
  return { client, host, close: () => transport.close() };
}
