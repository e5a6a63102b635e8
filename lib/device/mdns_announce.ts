/**
 * Announcing an LG ESS by mDNS / DNS-SD the way a device does, for the simulator and the
 * discovery tests: the records it owns ({@link announcementRecords}), the answer to a query
 * ({@link answerQuestions}, pure, tested without sockets) and {@link announce}, which adds the
 * multicast socket. Finding devices is lib/device/mdns.ts.
 *
 * @module
 */
// @ts-types="@types/dns-packet"
import type { Answer, Question } from "dns-packet";
import {
  DEVICE_TXT,
  HTTPS_PORT_KEY,
  instanceName,
  IPV4,
  loadMulticastDns,
  MDNS_PORT,
  norm,
  SERVICE_TYPE,
} from "./mdns.ts";

const DNS_SD_SERVICES = "_services._dns-sd._udp.local";

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
