/**
 * Turning the device options into a connected client.
 *
 * @module
 */
import { EssClient } from "../lib/client.ts";
import { UsageError } from "../lib/errors.ts";
import { createDeviceFetch, type DeviceFetch } from "../lib/transport.ts";
import type { Parsed } from "./_cli.ts";

/** A host and port, as the URL authority `HOST` or `HOST:PORT`. */
export interface HostPort {
  hostname: string;
  port: number;
  /** `hostname` or `hostname:port`, IPv6 in brackets; what URLs and messages use. */
  authority: string;
}

/**
 * Parses `HOST[:PORT]` (IPv6 as `[addr]:port` or bare). A bad port is a usage error.
 *
 * @example
 * ```ts
 * parseHostPort("192.168.1.20:8443", 443).authority; // "192.168.1.20:8443"
 * ```
 */
export function parseHostPort(text: string, defaultPort: number, what = "host"): HostPort {
  const t = text.trim();
  let hostname: string;
  let portText: string | undefined;
  const bracketed = /^\[([0-9A-Fa-f:.]+)\](?::(.*))?$/.exec(t);
  if (bracketed) [, hostname = "", portText] = bracketed;
  else if ((t.match(/:/g) ?? []).length > 1) hostname = t;
  else [hostname = "", portText] = t.split(":");
  if (hostname === "" || /[\s/@?#]/.test(hostname)) {
    throw new UsageError(`${what} ${JSON.stringify(text)} is not a host name or address`);
  }
  let port = defaultPort;
  if (portText !== undefined) {
    port = Number(portText);
    if (!/^\d+$/.test(portText) || port < 1 || port > 65535) {
      throw new UsageError(`${what} ${JSON.stringify(text)} has a bad port: use 1-65535`);
    }
  }
  const name = hostname.includes(":") ? `[${hostname}]` : hostname;
  return { hostname, port, authority: port === defaultPort ? name : `${name}:${port}` };
}

/** The device's address from `--host` (or config / environment). */
export function deviceHost(p: Parsed): HostPort {
  const host = p.string("host");
  if (host === undefined || host.trim() === "") {
    throw new UsageError(
      "no device address: give --host, ESS_HOST or ess_host in the config file",
    );
  }
  return parseHostPort(host, 443);
}

/** The device password from `--password`, `ESS_PASSWORD` or `ess_password`. */
export function devicePassword(p: Parsed): string {
  const password = p.string("password");
  if (password === undefined || password === "") {
    throw new UsageError(
      "no device password: give --password, ESS_PASSWORD or ess_password in the config file " +
        "('ess password' reads it on the device's Wi-Fi)",
    );
  }
  return password;
}

/** The fetch-shaped transport for the device, from `--fingerprint` and `--timeout`. */
export function deviceFetch(p: Parsed): DeviceFetch {
  const timeoutMs = (p.seconds("timeout") ?? 10) * 1000;
  return createDeviceFetch({
    fingerprint: p.string("fingerprint"),
    timeoutMs,
    connectTimeoutMs: Math.min(timeoutMs, 5000),
  });
}

/** A client and the connection to close when done. */
export interface DeviceSession {
  client: EssClient;
  host: HostPort;
  close(): void;
}

/** Opens a client for the device named by the options. */
export function openDevice(p: Parsed): DeviceSession {
  const host = deviceHost(p);
  const password = devicePassword(p);
  const fetch = deviceFetch(p);
  const client = new EssClient({ host: host.authority, password, fetch, logger: p.log });
  return { client, host, close: () => fetch.close() };
}
