/**
 * Finding LG ESS devices by mDNS / DNS-SD (`_pmsctrl._tcp.local`). The record handling is pure
 * (a {@link ServiceCache} fed with answer records), so it is tested without sockets; {@link browse}
 * only adds the multicast socket and the timing. Announcing one as a device does (for the
 * simulator) is lib/device/mdns_announce.ts.
 *
 * @module
 */
// @ts-types="@types/multicast-dns"
import type multicastDns from "multicast-dns";
// @ts-types="@types/dns-packet"
import type { Answer, Question, TxtData } from "dns-packet";
import { DiscoveryError, isPrintable } from "../errors.ts";
import { type Logger, silentLogger } from "../log.ts";

/** The DNS-SD service type LG ESS devices announce. */
export const SERVICE_TYPE = "_pmsctrl._tcp.local";
/** Instance names are `LGE_ESS-<NAME>._pmsctrl._tcp.local`; NAME is the registration number. */
export const INSTANCE_PREFIX = "LGE_ESS-";
/** The TXT record a device announces (its own spelling, `HWRevison`). */
export const DEVICE_TXT: Readonly<Record<string, string>> = { Device: "LGEESS", HWRevison: "1.5" };
/**
 * TXT key ess's own announcer adds when its HTTPS API is not on port 443. A real device does not
 * send it: its HTTPS API is always on 443, whatever port its SRV record names.
 */
export const HTTPS_PORT_KEY = "https_port";

/** The mDNS port, on which devices answer and browsers listen. */
export const MDNS_PORT = 5353;

/**
 * The most instances, and host addresses, a browse keeps; beyond, it forgets the oldest. A home
 * has one or two ESS, but anyone on the network can answer, and a flood of made-up names would
 * otherwise grow the cache, and the questions asked for it, for as long as the browse lasts. A
 * device is reported the moment its records are complete, so forgetting never loses one that
 * answers in full.
 */
export const MAX_CACHED_NAMES = 64;

/** Makes room for one more key in `map` by forgetting its oldest, once it holds the most. */
function makeRoom<K>(map: Map<K, unknown>, forget: (key: K) => void = (key) => map.delete(key)) {
  if (map.size < MAX_CACHED_NAMES) return;
  const oldest = map.keys().next();
  if (!oldest.done) forget(oldest.value);
}

/**
 * The socket library, loaded on first use: commands given `--host` never browse, and should not
 * pay for loading it.
 */
export async function loadMulticastDns(): Promise<typeof multicastDns> {
  return (await import("multicast-dns")).default as typeof multicastDns;
}

/** One LG ESS found on the network. */
export interface EssDevice {
  /** The registration number, from the instance name `LGE_ESS-<name>`. */
  name: string;
  /** The full DNS-SD instance name, `LGE_ESS-<name>._pmsctrl._tcp.local`. */
  instance: string;
  /** IPv4 address from the A record. */
  address: string;
  /** Port from the SRV record (not necessarily the HTTPS port: see {@link deviceAuthority}). */
  port: number;
  /** TXT record as key/value pairs. */
  txt: Record<string, string>;
}

/** A DNS name as compared: lower case, without the trailing dot. */
export const norm = (name: string): string => name.toLowerCase().replace(/\.$/, "");
const SERVICE_SUFFIX = `.${SERVICE_TYPE}`;

/**
 * The device name in an instance name (`LGE_ESS-DE1234._pmsctrl._tcp.local` -> `DE1234`), or
 * `undefined` for an instance of another service type, or a name with characters that would
 * steer the terminal `ess discover` prints it to.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(deviceNameOf("LGE_ESS-DE1234._pmsctrl._tcp.local."), "DE1234");
 * equal(deviceNameOf("LGE_ESS-\u001b[2J._pmsctrl._tcp.local"), undefined);
 * ```
 */
export function deviceNameOf(instance: string): string | undefined {
  const bare = instance.replace(/\.$/, "");
  if (!norm(bare).endsWith(SERVICE_SUFFIX)) return undefined;
  const label = bare.slice(0, -SERVICE_SUFFIX.length);
  if (label === "" || !isPrintable(label)) return undefined;
  return label.toUpperCase().startsWith(INSTANCE_PREFIX.toUpperCase())
    ? label.slice(INSTANCE_PREFIX.length)
    : label;
}

/** The DNS-SD instance name of the device called `name`. */
export function instanceName(name: string): string {
  return `${INSTANCE_PREFIX}${name}${SERVICE_SUFFIX}`;
}

/** Whether `device` is the one the user named (`DE1234` or `LGE_ESS-DE1234`, any case). */
export function matchesName(device: EssDevice, name: string): boolean {
  const wanted = name.trim().toLowerCase();
  return wanted === device.name.toLowerCase() ||
    wanted === `${INSTANCE_PREFIX}${device.name}`.toLowerCase();
}

/**
 * Whether a TXT `https_port` is one ess goes to: 443, or an unprivileged port (1024–65535), where
 * a simulator or a port forward listens. Anyone on the network can answer mDNS; a port below
 * 1024 but 443 is another service's (SSH, SMTP, a printer's), and the password is not sent there.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(reasonableHttpsPort("8443"), true);
 * equal(reasonableHttpsPort("22"), false);
 * ```
 */
export function reasonableHttpsPort(text: string): boolean {
  if (!/^\d{1,5}$/.test(text)) return false;
  const port = Number(text);
  return port === 443 || (port >= 1024 && port <= 65535);
}

/**
 * Where the device's HTTPS API is, as `--host` takes it: the address on port 443 (what every
 * client has always used), or on the port ess's own announcer put in TXT `https_port` when it is
 * {@link reasonableHttpsPort reasonable}.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const device = { name: "X", instance: "", address: "192.168.1.20", port: 80, txt: {} };
 * equal(deviceAuthority(device), "192.168.1.20");
 * equal(deviceAuthority({ ...device, txt: { https_port: "8443" } }), "192.168.1.20:8443");
 * equal(deviceAuthority({ ...device, txt: { https_port: "25" } }), "192.168.1.20");
 * ```
 */
export function deviceAuthority(device: EssDevice): string {
  const text = device.txt[HTTPS_PORT_KEY];
  return text !== undefined && text !== "443" && reasonableHttpsPort(text)
    ? `${device.address}:${Number(text)}`
    : device.address;
}

/** The HTTPS port of {@link deviceAuthority}. */
export function httpsPort(device: EssDevice): number {
  const authority = deviceAuthority(device);
  return authority === device.address ? 443 : Number(authority.slice(device.address.length + 1));
}

/** The question a browse asks: every instance of the service. */
export function browseQuestions(): Question[] {
  return [{ name: SERVICE_TYPE, type: "PTR" }];
}

/**
 * Parses TXT data (`key=value` strings, one per chunk) into an object; a key without `=` gets
 * an empty value, and the first occurrence of a key wins, as RFC 6763 says.
 */
export function parseTxt(data: TxtData): Record<string, string> {
  const chunks = Array.isArray(data) ? data : [data];
  const txt: Record<string, string> = {};
  for (const chunk of chunks) {
    const text = typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk);
    if (text === "") continue;
    const eq = text.indexOf("=");
    const key = eq < 0 ? text : text.slice(0, eq);
    if (key !== "" && !Object.hasOwn(txt, key)) txt[key] = eq < 0 ? "" : text.slice(eq + 1);
  }
  return txt;
}

/** A dotted-quad IPv4 address. */
export const IPV4: RegExp = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/**
 * Whether an A record's address can be a device on the network: not loopback (127/8), not
 * "this network" (0/8, the unspecified 0.0.0.0), not multicast (224/4), not reserved or the
 * broadcast address (240/4, 255.255.255.255). Anyone on the network can answer mDNS: an answer
 * pointing at 127.0.0.1 would make ess send the device password to whatever listens on this
 * computer. (AAAA records are not used at all: ess reaches the device over IPv4.)
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(usableAddress("192.168.1.20"), true);
 * equal(usableAddress("127.0.0.1"), false);
 * equal(usableAddress("255.255.255.255"), false);
 * ```
 */
export function usableAddress(address: string): boolean {
  if (!IPV4.test(address)) return false;
  const first = Number(address.split(".")[0]);
  return first !== 0 && first !== 127 && first < 224;
}

/**
 * What a browser has heard so far: instances of the service with their SRV, TXT and A records,
 * from answers and additional records alike, in any order. Foreign service types are ignored;
 * goodbye records (TTL 0) are ignored too, and so are addresses no device can have (see
 * {@link usableAddress}).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * const cache = new ServiceCache();
 * cache.add([{ type: "PTR", name: "_pmsctrl._tcp.local", data: "LGE_ESS-X._pmsctrl._tcp.local" }]);
 * deepEqual(cache.missing(), [
 *   { name: "LGE_ESS-X._pmsctrl._tcp.local", type: "SRV" },
 *   { name: "LGE_ESS-X._pmsctrl._tcp.local", type: "TXT" },
 * ]);
 * ```
 */
export class ServiceCache {
  /** Normalised instance name -> the name as announced, in order of arrival. */
  #instances = new Map<string, string>();
  #srv = new Map<string, { target: string; port: number }>();
  #txt = new Map<string, Record<string, string>>();
  #a = new Map<string, string>();

  /** Takes in answer and additional records; returns whether anything new was learnt. */
  add(records: readonly Answer[]): boolean {
    let learnt = false;
    const instance = (name: string) => {
      if (deviceNameOf(name) === undefined) return undefined;
      const key = norm(name);
      if (!this.#instances.has(key)) {
        makeRoom(this.#instances, (oldest) => {
          this.#instances.delete(oldest);
          this.#srv.delete(oldest);
          this.#txt.delete(oldest);
        });
        this.#instances.set(key, name.replace(/\.$/, ""));
        learnt = true;
      }
      return key;
    };
    for (const record of records) {
      if ("ttl" in record && record.ttl === 0) continue;
      switch (record.type) {
        case "PTR":
          if (norm(record.name) === SERVICE_TYPE) instance(record.data);
          break;
        case "SRV": {
          const key = instance(record.name);
          if (key === undefined) break;
          const srv = { target: norm(record.data.target), port: record.data.port };
          const old = this.#srv.get(key);
          if (old?.target !== srv.target || old.port !== srv.port) learnt = true;
          this.#srv.set(key, srv);
          break;
        }
        case "TXT": {
          const key = instance(record.name);
          if (key === undefined) break;
          if (!this.#txt.has(key)) learnt = true;
          this.#txt.set(key, parseTxt(record.data));
          break;
        }
        case "A": {
          const host = norm(record.name);
          if (!usableAddress(record.data)) break;
          if (!this.#a.has(host)) makeRoom(this.#a);
          if (this.#a.get(host) !== record.data) learnt = true;
          this.#a.set(host, record.data);
          break;
        }
      }
    }
    return learnt;
  }

  /** Every instance whose SRV and A records have arrived, in order of first mention. */
  devices(): EssDevice[] {
    const devices: EssDevice[] = [];
    for (const [key, instance] of this.#instances) {
      const srv = this.#srv.get(key);
      const address = srv && this.#a.get(srv.target);
      if (!srv || address === undefined) continue;
      devices.push({
        name: deviceNameOf(instance) ?? instance,
        instance,
        address,
        port: srv.port,
        txt: this.#txt.get(key) ?? {},
      });
    }
    return devices;
  }

  /** Questions that would complete what is known: SRV and TXT of instances, A of SRV targets. */
  missing(): Question[] {
    const questions: Question[] = [];
    for (const [key, instance] of this.#instances) {
      const srv = this.#srv.get(key);
      if (!srv) {
        questions.push({ name: instance, type: "SRV" });
        if (!this.#txt.has(key)) questions.push({ name: instance, type: "TXT" });
      } else if (!this.#a.has(srv.target)) questions.push({ name: srv.target, type: "A" });
    }
    return questions;
  }
}

/** Options of {@link browse}. */
export interface BrowseOptions {
  /** Stop listening after this long, in ms. */
  timeoutMs: number;
  /** Stop at the first device (the first one called `name`, if given). */
  first?: boolean | undefined;
  /** Report only the device with this name (`DE1234` or `LGE_ESS-DE1234`). */
  name?: string | undefined;
  /** Once a device has answered, stop when no new one has come for this long, in ms. */
  settleMs?: number | undefined;
  /** IPv4 address of the network interface to use (default: all). */
  interfaceAddress?: string | undefined;
  /** Stops the browse early; it then resolves with what it found so far. */
  signal?: AbortSignal | undefined;
  /** Called with each device as soon as its answer is complete. */
  onFound?: ((device: EssDevice) => void) | undefined;
  /** Where socket warnings and follow-up queries are logged (debug). */
  logger?: Logger | undefined;
}

/**
 * The most devices one browse reports. A home has one or two ESS; past this many, the others are
 * left out with one warning, so that a flood of made-up answers cannot grow the list, the output
 * or an error message that names the devices found.
 */
export const MAX_FOUND_DEVICES = 64;

/**
 * The devices a browse has reported: each instance once (looked up by name, not by going through
 * the list), at most {@link MAX_FOUND_DEVICES}.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const found = new FoundDevices();
 * const device = { name: "X", instance: "LGE_ESS-X._pmsctrl._tcp.local", address: "192.168.1.20", port: 443, txt: {} };
 * equal(found.add(device), true);
 * equal(found.add({ ...device, instance: "lge_ess-x._pmsctrl._tcp.local." }), false);
 * equal(found.list.length, 1);
 * ```
 */
export class FoundDevices {
  #byInstance = new Map<string, EssDevice>();
  #full = false;

  /** Whether `device` is new and now in the list; `false` for a repeat, or when the list is full. */
  add(device: EssDevice): boolean {
    const key = norm(device.instance);
    if (this.#byInstance.has(key)) return false;
    if (this.#byInstance.size >= MAX_FOUND_DEVICES) {
      this.#full = true;
      return false;
    }
    this.#byInstance.set(key, device);
    return true;
  }

  /** Whether `device` is in the list. */
  has(device: EssDevice): boolean {
    return this.#byInstance.has(norm(device.instance));
  }

  /** Whether a new device came after the list was full, and was left out. */
  get overflowed(): boolean {
    return this.#full;
  }

  /** The devices, in the order they were reported. */
  get list(): EssDevice[] {
    return [...this.#byInstance.values()];
  }
}

/** The least time between two follow-up queries (for the SRV, TXT and A records still missing). */
const FOLLOW_UP_MS = 100;

/** When the browse asks again, in ms after the start (mDNS spaces repeated queries 1 s, 2 s, 4 s …). */
export function queryTimes(timeoutMs: number): number[] {
  const times = [0];
  for (let t = 1000; t < timeoutMs; t *= 2) times.push(t);
  return times;
}

/**
 * Browses for LG ESS devices on the local network. Each device is reported (through `onFound`)
 * as soon as its PTR, SRV and A records are in; missing SRV and A records are asked for
 * directly. Resolves with the devices found, de-duplicated, at the timeout, at the first device
 * with `first`, when the answers have settled with `settleMs`, or when `signal` aborts. Rejects
 * with a {@link DiscoveryError} only when the socket cannot be used.
 *
 * @example
 * ```ts ignore
 * const devices = await browse({ timeoutMs: 3000, onFound: (d) => log.info(d.address) });
 * ```
 */
export async function browse(options: BrowseOptions): Promise<EssDevice[]> {
  const log = options.logger ?? silentLogger;
  const multicastDns = await loadMulticastDns();
  return await new Promise((resolve, reject) => {
    const found = new FoundDevices();
    const cache = new ServiceCache();
    const timers: ReturnType<typeof setTimeout>[] = [];
    let settle: ReturnType<typeof setTimeout> | undefined;
    let followUp: ReturnType<typeof setTimeout> | undefined;
    let lastFollowUp = -Infinity;
    let done = false;
    const mdns = multicastDns({
      bind: "0.0.0.0",
      interface: options.interfaceAddress,
      port: MDNS_PORT,
    });

    const finish = (error?: Error) => {
      if (done) return;
      done = true;
      for (const t of timers) clearTimeout(t);
      clearTimeout(settle);
      clearTimeout(followUp);
      if (found.overflowed) {
        log.warning(
          `more than ${MAX_FOUND_DEVICES} LG ESS answered on mDNS; only the first ` +
            `${MAX_FOUND_DEVICES} are listed (is something on the network flooding mDNS?)`,
        );
      }
      options.signal?.removeEventListener("abort", onAbort);
      mdns.removeAllListeners();
      mdns.on("error", () => {});
      mdns.destroy(() => error ? reject(error) : resolve(found.list));
    };
    const onAbort = () => finish();
    const ask = (questions: Question[]) => {
      if (done || questions.length === 0) return;
      log.debug(`mDNS query: ${questions.map((q) => `${q.type} ${q.name}`).join(", ")}`);
      mdns.query({ questions }, (err) => {
        if (err) log.debug(`mDNS query not sent: ${err.message}`);
      });
    };

    mdns.on("error", (err: Error) =>
      finish(
        new DiscoveryError(
          SERVICE_TYPE,
          `Cannot listen for mDNS on port ${MDNS_PORT}: ${err.message}`,
          {
            cause: err,
          },
        ),
      ));
    /**
     * Asks for what is still missing, at most every {@link FOLLOW_UP_MS}: a flood of answers,
     * each naming new instances, would otherwise make a query of each.
     */
    const followUpSoon = () => {
      if (followUp !== undefined) return;
      const waitMs = lastFollowUp + FOLLOW_UP_MS - performance.now();
      followUp = setTimeout(() => {
        followUp = undefined;
        lastFollowUp = performance.now();
        ask(cache.missing());
      }, Math.max(0, waitMs));
    };

    mdns.on("warning", (err: Error) => log.debug(`mDNS: ${err.message}`));
    mdns.on("response", (packet) => {
      if (done) return;
      if (!cache.add([...packet.answers ?? [], ...packet.additionals ?? []])) return;
      for (const device of cache.devices()) {
        if (found.has(device)) continue;
        if (options.name !== undefined && !matchesName(device, options.name)) continue;
        if (!found.add(device)) continue;
        options.onFound?.(device);
        if (options.first) return finish();
        if (options.settleMs !== undefined) {
          clearTimeout(settle);
          settle = setTimeout(() => finish(), options.settleMs);
        }
      }
      followUpSoon();
    });
    mdns.on("ready", () => {
      for (const at of queryTimes(options.timeoutMs)) {
        timers.push(setTimeout(() => ask([...browseQuestions(), ...cache.missing()]), at));
      }
    });

    if (options.signal?.aborted) return finish();
    options.signal?.addEventListener("abort", onAbort);
    timers.push(setTimeout(() => finish(), options.timeoutMs));
  });
}
