/**
 * Finding LG ESS devices by mDNS / DNS-SD (`_pmsctrl._tcp.local`), and announcing one the way a
 * device does (for the simulator). The record handling is pure (a {@link ServiceCache} fed with
 * answer records, {@link answerQuestions} for the responder), so it is tested without sockets;
 * {@link browse} and {@link announce} only add the multicast socket and the timing.
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

const DNS_SD_SERVICES = "_services._dns-sd._udp.local";
const MDNS_PORT = 5353;

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
async function loadMulticastDns(): Promise<typeof multicastDns> {
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

const norm = (name: string) => name.toLowerCase().replace(/\.$/, "");
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
 * Where the device's HTTPS API is, as `--host` takes it: the address on port 443 (what every
 * client has always used), or on the port ess's own announcer put in TXT `https_port`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const device = { name: "X", instance: "", address: "192.168.1.20", port: 80, txt: {} };
 * equal(deviceAuthority(device), "192.168.1.20");
 * ```
 */
export function deviceAuthority(device: EssDevice): string {
  const port = Number(device.txt[HTTPS_PORT_KEY]);
  return Number.isInteger(port) && port > 0 && port < 65536 && port !== 443
    ? `${device.address}:${port}`
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

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/**
 * What a browser has heard so far: instances of the service with their SRV, TXT and A records,
 * from answers and additional records alike, in any order. Foreign service types are ignored;
 * goodbye records (TTL 0) are ignored too.
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
          if (!IPV4.test(record.data)) break;
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
    const found: EssDevice[] = [];
    const cache = new ServiceCache();
    const timers: ReturnType<typeof setTimeout>[] = [];
    let settle: ReturnType<typeof setTimeout> | undefined;
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
      options.signal?.removeEventListener("abort", onAbort);
      mdns.removeAllListeners();
      mdns.on("error", () => {});
      mdns.destroy(() => error ? reject(error) : resolve(found));
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
    mdns.on("warning", (err: Error) => log.debug(`mDNS: ${err.message}`));
    mdns.on("response", (packet) => {
      if (done) return;
      if (!cache.add([...packet.answers ?? [], ...packet.additionals ?? []])) return;
      for (const device of cache.devices()) {
        if (found.some((d) => norm(d.instance) === norm(device.instance))) continue;
        if (options.name !== undefined && !matchesName(device, options.name)) continue;
        found.push(device);
        options.onFound?.(device);
        if (options.first) return finish();
        if (options.settleMs !== undefined) {
          clearTimeout(settle);
          settle = setTimeout(() => finish(), options.settleMs);
        }
      }
      ask(cache.missing());
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

/** What {@link announce} announces. */
export interface AnnounceInfo {
  /** Device name: the instance is `LGE_ESS-<name>._pmsctrl._tcp.local`. */
  name: string;
  /** Port of the SRV record, where the HTTPS API listens. */
  port: number;
  /**
   * Host name in the SRV and A records (default `lge-ess-<name>.local`); an IPv4 address here is
   * taken as the address to announce instead.
   */
  hostname?: string | undefined;
  /**
   * IPv4 address in the A record (default: an IPv4 `hostname` other than 0.0.0.0, else
   * `interfaceAddress`, else the first non-loopback one).
   */
  address?: string | undefined;
  /** IPv4 address of the network interface to answer on (default: all). */
  interfaceAddress?: string | undefined;
  /** TXT entries on top of the device's `Device=LGEESS` and `HWRevison=1.5`. */
  txt?: Record<string, string> | undefined;
}

/** The four records of an announced device: PTR, SRV, TXT and A. */
export function announcementRecords(
  info: AnnounceInfo & { hostname: string; address: string },
): Answer[] {
  const instance = instanceName(info.name);
  const txt = {
    ...DEVICE_TXT,
    ...(info.port === 443 ? {} : { [HTTPS_PORT_KEY]: String(info.port) }),
    ...info.txt,
  };
  return [
    { type: "PTR", name: SERVICE_TYPE, ttl: 4500, data: instance },
    {
      type: "SRV",
      name: instance,
      ttl: 120,
      flush: true,
      data: { port: info.port, target: info.hostname, priority: 0, weight: 0 },
    },
    {
      type: "TXT",
      name: instance,
      ttl: 4500,
      flush: true,
      data: Object.entries(txt).map(([k, v]) => `${k}=${v}`),
    },
    { type: "A", name: info.hostname, ttl: 120, flush: true, data: info.address },
  ];
}

/**
 * The answer a responder owning `records` gives to `questions`: the records asked for (`ANY`
 * matches every type), plus, as additional records, what the asker needs next (SRV, TXT and A
 * after a PTR; A after an SRV). Empty when none of the questions concern these records.
 */
export function answerQuestions(
  records: readonly Answer[],
  questions: readonly Question[],
): { answers: Answer[]; additionals: Answer[] } {
  const answers = new Set<Answer>();
  const additionals = new Set<Answer>();
  const byName = (name: string, type?: string) =>
    records.filter((r) => norm(r.name) === norm(name) && (type === undefined || r.type === type));
  for (const q of questions) {
    if (q.type === "PTR" && norm(q.name) === DNS_SD_SERVICES) {
      answers.add({ type: "PTR", name: DNS_SD_SERVICES, ttl: 4500, data: SERVICE_TYPE });
      continue;
    }
    const matched = records.filter((r) =>
      norm(r.name) === norm(q.name) && (q.type as string === "ANY" || r.type === q.type)
    );
    for (const record of matched) {
      answers.add(record);
      if (record.type === "PTR") {
        for (const extra of byName(record.data)) additionals.add(extra);
      }
      const srv = record.type === "PTR"
        ? byName(record.data, "SRV")
        : record.type === "SRV"
        ? [record]
        : [];
      for (const s of srv) {
        if (s.type === "SRV") { for (const a of byName(s.data.target, "A")) additionals.add(a); }
      }
    }
  }
  return { answers: [...answers], additionals: [...additionals].filter((r) => !answers.has(r)) };
}

/** The same records with TTL 0: "this service is gone" (RFC 6762 §10.1). */
export function goodbye(records: readonly Answer[]): Answer[] {
  return records.map((r) => ({ ...r, ttl: 0 }) as Answer);
}

function firstExternalIpv4(): string {
  const ifaces = Deno.networkInterfaces();
  return ifaces.find((i) => i.family === "IPv4" && !i.address.startsWith("127."))?.address ??
    "127.0.0.1";
}

/** A running announcement. */
export interface Announcer {
  /** Resolves once the socket listens and the first announcement has been sent. */
  ready: Promise<void>;
  /** Says goodbye (TTL 0) and closes the socket. */
  close(): Promise<void>;
}

/**
 * Answers mDNS queries for `_pmsctrl._tcp.local` as an LG ESS does (PTR, SRV, TXT and A, with
 * `Device=LGEESS` and `HWRevison=1.5` in TXT), announces itself once at start, and says goodbye
 * on `close()`. Used by `ess simulate --mdns` and the discovery tests.
 *
 * @example
 * ```ts ignore
 * const announcer = announce({ name: "DE1234", port: 8443, address: "10.213.0.1" });
 * await announcer.close();
 * ```
 */
export function announce(info: AnnounceInfo): Announcer {
  // A server's listen address given as the host name (the simulator's `127.0.0.1`, say) is where
  // it can be reached, unless it is the wildcard.
  const literal = info.hostname !== undefined && IPV4.test(info.hostname)
    ? info.hostname
    : undefined;
  const hostname = (literal === undefined ? info.hostname : undefined) ??
    `lge-ess-${info.name.toLowerCase().replace(/[^a-z0-9-]/g, "-")}.local`;
  const address = info.address ?? (literal !== "0.0.0.0" ? literal : undefined) ??
    info.interfaceAddress ?? firstExternalIpv4();
  const records = announcementRecords({ ...info, hostname, address });
  const socket = loadMulticastDns().then((multicastDns) => {
    const mdns = multicastDns({
      bind: "0.0.0.0",
      interface: info.interfaceAddress,
      port: MDNS_PORT,
    });
    mdns.on("error", () => {});
    mdns.on("warning", () => {});
    mdns.on("query", (query, rinfo) => {
      const reply = answerQuestions(records, query.questions ?? []);
      if (reply.answers.length === 0) return;
      // A query from a port other than 5353 is a one-shot (legacy unicast) query: answer it
      // directly.
      if (rinfo.port !== MDNS_PORT) {
        mdns.respond(reply, { port: rinfo.port, address: rinfo.address });
      } else mdns.respond(reply);
    });
    return mdns;
  });
  const ready = socket.then((mdns) =>
    new Promise<void>((resolve) =>
      mdns.on("ready", () => mdns.respond({ answers: records }, () => resolve()))
    )
  );
  let closed: Promise<void> | undefined;
  return {
    ready,
    close() {
      closed ??= socket.then((mdns) =>
        new Promise<void>((resolve) => {
          mdns.removeAllListeners("query");
          mdns.respond({ answers: goodbye(records) }, () => mdns.destroy(() => resolve()));
        })
      );
      return closed;
    },
  };
}
