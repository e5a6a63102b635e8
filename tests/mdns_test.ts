// These tests never open a socket: every packet is built, encoded and decoded in memory.
// @ts-types="@types/dns-packet"
import * as dnsPacket from "dns-packet";
import type { Answer } from "dns-packet";
import { Buffer } from "node:buffer";
import { deepEqual, equal } from "node:assert/strict";
import { announcementRecords, answerQuestions, goodbye } from "../lib/device/mdns_announce.ts";
import {
  browseQuestions,
  deviceAuthority,
  deviceNameOf,
  type EssDevice,
  FoundDevices,
  httpsPort,
  matchesName,
  MAX_CACHED_NAMES,
  MAX_FOUND_DEVICES,
  parseTxt,
  queryTimes,
  reasonableHttpsPort,
  ServiceCache,
} from "../lib/device/mdns.ts";

const INSTANCE = "LGE_ESS-TEST0815._pmsctrl._tcp.local";
const PTR: Answer = { type: "PTR", name: "_pmsctrl._tcp.local", ttl: 4500, data: INSTANCE };
const SRV: Answer = {
  type: "SRV",
  name: INSTANCE,
  ttl: 120,
  data: { port: 443, target: "ess-test.local", priority: 0, weight: 0 },
};
const TXT: Answer = { type: "TXT", name: INSTANCE, ttl: 4500, data: ["Device=LGEESS"] };
const A: Answer = { type: "A", name: "ess-test.local", ttl: 120, data: "192.0.2.20" };

/** Sends records through the wire format and back, as a browser would receive them. */
function overTheWire(answers: Answer[], additionals: Answer[] = []): Answer[] {
  const bytes = dnsPacket.encode({ type: "response", flags: 0x400, answers, additionals });
  const decoded = dnsPacket.decode(Buffer.from(bytes));
  return [...decoded.answers ?? [], ...decoded.additionals ?? []];
}

Deno.test("browseQuestions()", async (t) => {
  await t.step("should encode as one PTR question for _pmsctrl._tcp.local", () => {
    const bytes = dnsPacket.encode({ type: "query", id: 0, questions: browseQuestions() });
    const decoded = dnsPacket.decode(Buffer.from(bytes));
    equal(decoded.type, "query");
    deepEqual(
      decoded.questions?.map((q) => [q.name, q.type, q.class]),
      [["_pmsctrl._tcp.local", "PTR", "IN"]],
    );
    equal(decoded.answers?.length, 0);
  });
});

Deno.test("ServiceCache", async (t) => {
  await t.step("should turn PTR, SRV, TXT and A in one answer into a device", () => {
    const cache = new ServiceCache();
    equal(cache.add(overTheWire([PTR], [SRV, TXT, A])), true);
    deepEqual(cache.devices(), [{
      name: "TEST0815",
      instance: INSTANCE,
      address: "192.0.2.20",
      port: 443,
      txt: { Device: "LGEESS" },
    }]);
    deepEqual(cache.missing(), []);
  });

  await t.step("should ask for SRV and TXT after a bare PTR, then for A after the SRV", () => {
    const cache = new ServiceCache();
    cache.add(overTheWire([PTR]));
    deepEqual(cache.devices(), []);
    deepEqual(cache.missing(), [
      { name: INSTANCE, type: "SRV" },
      { name: INSTANCE, type: "TXT" },
    ]);
    cache.add(overTheWire([SRV]));
    deepEqual(cache.devices(), []);
    deepEqual(cache.missing(), [{ name: "ess-test.local", type: "A" }]);
    cache.add(overTheWire([A]));
    equal(cache.devices()[0]?.address, "192.0.2.20");
    deepEqual(cache.devices()[0]?.txt, {});
    deepEqual(cache.missing(), []);
  });

  await t.step("should accept records in any order and an SRV without a PTR", () => {
    const cache = new ServiceCache();
    cache.add(overTheWire([A]));
    cache.add(overTheWire([SRV]));
    equal(cache.devices()[0]?.name, "TEST0815");
  });

  await t.step("should match names case-insensitively and ignore a trailing dot", () => {
    const cache = new ServiceCache();
    cache.add([
      { ...PTR, name: "_PMSCTRL._tcp.local.", data: `${INSTANCE}.` } as Answer,
      { ...SRV, name: INSTANCE.toUpperCase() } as Answer,
      { ...A, name: "ESS-TEST.local." } as Answer,
    ]);
    equal(cache.devices().length, 1);
    equal(cache.devices()[0]?.instance, INSTANCE);
  });

  await t.step("should ignore foreign service types and their hosts", () => {
    const cache = new ServiceCache();
    const printer = "Office._ipp._tcp.local";
    equal(
      cache.add(overTheWire([
        { type: "PTR", name: "_ipp._tcp.local", ttl: 4500, data: printer },
        {
          type: "SRV",
          name: printer,
          ttl: 120,
          data: { port: 631, target: "printer.local" },
        },
        { type: "TXT", name: printer, ttl: 120, data: ["rp=ipp"] },
      ])),
      false,
    );
    deepEqual(cache.devices(), []);
    deepEqual(cache.missing(), []);
  });

  await t.step("should ignore goodbye records (TTL 0)", () => {
    const cache = new ServiceCache();
    cache.add(overTheWire(goodbye([PTR, SRV, TXT, A])));
    deepEqual(cache.devices(), []);
    deepEqual(cache.missing(), []);
  });

  await t.step("should ignore non-IPv4 A data and report nothing new for a repeat", () => {
    const cache = new ServiceCache();
    cache.add([PTR, SRV, { ...A, data: "not-an-address" } as Answer]);
    deepEqual(cache.devices(), []);
    cache.add([A]);
    equal(cache.add([PTR, SRV, A]), false);
    equal(cache.devices().length, 1);
  });

  await t.step("should refuse addresses no device can have, and ignore AAAA", () => {
    for (
      const address of [
        "127.0.0.1",
        "127.1.2.3",
        "0.0.0.0",
        "0.1.2.3",
        "224.0.0.251",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
      ]
    ) {
      const cache = new ServiceCache();
      equal(cache.add(overTheWire([PTR], [SRV, TXT, { ...A, data: address } as Answer])), true);
      deepEqual(cache.devices(), [], address);
      deepEqual(cache.missing(), [{ name: "ess-test.local", type: "A" }], address);
    }
    const cache = new ServiceCache();
    cache.add(
      overTheWire([PTR], [SRV, TXT, {
        type: "AAAA",
        name: "ess-test.local",
        ttl: 120,
        data: "::1",
      }]),
    );
    deepEqual(cache.devices(), []);
    for (
      const address of ["10.0.0.5", "169.254.10.20", "172.16.0.9", "192.168.1.20", "223.1.1.1"]
    ) {
      const cache = new ServiceCache();
      cache.add(overTheWire([PTR], [SRV, TXT, { ...A, data: address } as Answer]));
      equal(cache.devices()[0]?.address, address);
    }
  });

  await t.step("should list several devices in the order they were first heard", () => {
    const cache = new ServiceCache();
    const other = "LGE_ESS-OTHER1._pmsctrl._tcp.local";
    cache.add(overTheWire([{ ...PTR, data: other } as Answer], [
      { ...SRV, name: other, data: { port: 443, target: "other.local" } } as Answer,
      { ...A, name: "other.local", data: "192.0.2.21" } as Answer,
    ]));
    cache.add(overTheWire([PTR], [SRV, A]));
    deepEqual(cache.devices().map((d) => d.name), ["OTHER1", "TEST0815"]);
  });

  await t.step("should ignore an instance whose name would steer a terminal", () => {
    const cache = new ServiceCache();
    const hostile = "LGE_ESS-\u001b[2J\u202e._pmsctrl._tcp.local";
    equal(
      cache.add(overTheWire([{ ...PTR, data: hostile } as Answer], [
        { ...SRV, name: hostile } as Answer,
        A,
      ])),
      true, // the A record is news, the instance is not
    );
    deepEqual(cache.devices(), []);
    deepEqual(cache.missing(), []);
  });

  await t.step(
    "should keep the newest instances and addresses of a flood, and find the device",
    () => {
      const cache = new ServiceCache();
      const flood = (i: number) => `LGE_ESS-FAKE${i}._pmsctrl._tcp.local`;
      for (let i = 0; i < 10 * MAX_CACHED_NAMES; i++) {
        cache.add([
          { ...PTR, data: flood(i) } as Answer,
          { ...A, name: `fake${i}.local`, data: "192.0.2.99" } as Answer,
        ]);
      }
      equal(cache.missing().length, 2 * MAX_CACHED_NAMES);
      equal(cache.missing()[0]?.name, flood(9 * MAX_CACHED_NAMES));
      cache.add(overTheWire([PTR], [SRV, TXT, A]));
      deepEqual(cache.devices().map((d) => [d.name, d.address]), [["TEST0815", "192.0.2.20"]]);
      equal(cache.missing().length, 2 * (MAX_CACHED_NAMES - 1));
    },
  );
});

Deno.test("parseTxt()", async (t) => {
  await t.step("should split key=value chunks, keep the first of a key, allow bare keys", () => {
    deepEqual(
      parseTxt([
        Buffer.from("Device=LGEESS"),
        "HWRevison=1.5",
        "flag",
        "Device=other",
        "",
        "a=b=c",
      ]),
      { Device: "LGEESS", HWRevison: "1.5", flag: "", a: "b=c" },
    );
  });
});

Deno.test("deviceNameOf()", async (t) => {
  await t.step("should take the name from LGE_ESS-<name> and refuse other services", () => {
    equal(deviceNameOf("LGE_ESS-DE1234._pmsctrl._tcp.local."), "DE1234");
    equal(deviceNameOf("lge_ess-de1234._PMSCTRL._tcp.local"), "de1234");
    equal(deviceNameOf("Other._pmsctrl._tcp.local"), "Other");
    equal(deviceNameOf("LGE_ESS-DE1234._http._tcp.local"), undefined);
    equal(deviceNameOf("_pmsctrl._tcp.local"), undefined);
    equal(deviceNameOf("LGE_ESS-DE\n1234._pmsctrl._tcp.local"), undefined);
  });
});

Deno.test("matchesName()", async (t) => {
  await t.step("should accept the bare name or the instance label, in any case", () => {
    const d: EssDevice = { name: "DE1234", instance: "", address: "", port: 443, txt: {} };
    equal(matchesName(d, "de1234"), true);
    equal(matchesName(d, "LGE_ESS-DE1234"), true);
    equal(matchesName(d, "DE123"), false);
  });
});

Deno.test("deviceAuthority()", async (t) => {
  const device = (txt: Record<string, string>, port = 80): EssDevice => ({
    name: "X",
    instance: "",
    address: "192.0.2.20",
    port,
    txt,
  });
  await t.step("should use port 443 whatever the SRV port says", () => {
    equal(deviceAuthority(device({}, 80)), "192.0.2.20");
    equal(httpsPort(device({}, 80)), 443);
  });
  await t.step("should use TXT https_port when it is a valid port", () => {
    equal(deviceAuthority(device({ https_port: "8443" })), "192.0.2.20:8443");
    equal(httpsPort(device({ https_port: "8443" })), 8443);
    equal(deviceAuthority(device({ https_port: "99999" })), "192.0.2.20");
    equal(deviceAuthority(device({ https_port: "x" })), "192.0.2.20");
  });
  await t.step("should take 443 or 1024-65535, never another service's port", () => {
    for (const port of ["1024", "8443", "65535", "443"]) {
      equal(httpsPort(device({ https_port: port })), Number(port), port);
      equal(reasonableHttpsPort(port), true, port);
    }
    for (
      const port of ["0", "22", "25", "80", "631", "1023", "65536", " 8443", "8443.0", "+8443"]
    ) {
      equal(deviceAuthority(device({ https_port: port })), "192.0.2.20", port);
      equal(reasonableHttpsPort(port), false, port);
    }
  });
});

Deno.test("FoundDevices", async (t) => {
  const device = (i: number): EssDevice => ({
    name: `FAKE${i}`,
    instance: `LGE_ESS-FAKE${i}._pmsctrl._tcp.local`,
    address: "192.0.2.99",
    port: 443,
    txt: {},
  });
  await t.step(`should keep each instance once, and at most ${MAX_FOUND_DEVICES}`, () => {
    const found = new FoundDevices();
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 2000; i++) found.add(device(i));
    }
    equal(found.list.length, MAX_FOUND_DEVICES);
    deepEqual(
      found.list.map((d) => d.name),
      Array.from({ length: MAX_FOUND_DEVICES }, (_, i) => `FAKE${i}`),
    );
    equal(found.overflowed, true);
    equal(found.has(device(0)), true);
    equal(found.has(device(MAX_FOUND_DEVICES)), false);
  });
  await t.step("should tell names apart only by more than case and a trailing dot", () => {
    const found = new FoundDevices();
    equal(found.add(device(1)), true);
    equal(found.add({ ...device(1), instance: "lge_ess-fake1._PMSCTRL._tcp.local." }), false);
    equal(found.overflowed, false);
  });
});

Deno.test("queryTimes()", async (t) => {
  await t.step("should ask at once, then after 1 s, 2 s, 4 s … within the timeout", () => {
    deepEqual(queryTimes(500), [0]);
    deepEqual(queryTimes(3000), [0, 1000, 2000]);
    deepEqual(queryTimes(10_000), [0, 1000, 2000, 4000, 8000]);
  });
});

Deno.test("announcementRecords() and answerQuestions()", async (t) => {
  const records = announcementRecords({
    name: "TEST0815",
    port: 8443,
    hostname: "ess-sim.local",
    address: "10.213.0.1",
  });

  await t.step("should announce TXT Device=LGEESS, HWRevison=1.5 and the HTTPS port", () => {
    const txt = records.find((r) => r.type === "TXT");
    deepEqual(parseTxt(txt!.data as string[]), {
      Device: "LGEESS",
      HWRevison: "1.5",
      https_port: "8443",
    });
    const at443 = announcementRecords({
      name: "X",
      port: 443,
      hostname: "h.local",
      address: "1.2.3.4",
    });
    deepEqual(parseTxt(at443.find((r) => r.type === "TXT")!.data as string[]), {
      Device: "LGEESS",
      HWRevison: "1.5",
    });
  });

  await t.step(
    "should answer a browse with PTR plus SRV, TXT and A that a browser resolves",
    () => {
      const reply = answerQuestions(records, browseQuestions());
      deepEqual(reply.answers.map((r) => r.type), ["PTR"]);
      deepEqual(reply.additionals.map((r) => r.type).sort(), ["A", "SRV", "TXT"]);
      const cache = new ServiceCache();
      cache.add(overTheWire(reply.answers, reply.additionals));
      deepEqual(cache.devices(), [{
        name: "TEST0815",
        instance: "LGE_ESS-TEST0815._pmsctrl._tcp.local",
        address: "10.213.0.1",
        port: 8443,
        txt: { Device: "LGEESS", HWRevison: "1.5", https_port: "8443" },
      }]);
      equal(deviceAuthority(cache.devices()[0]!), "10.213.0.1:8443");
    },
  );

  await t.step("should answer SRV with A as additional, and A and ANY by name", () => {
    const srv = answerQuestions(records, [{
      name: "LGE_ESS-TEST0815._pmsctrl._tcp.local",
      type: "SRV",
    }]);
    deepEqual(srv.answers.map((r) => r.type), ["SRV"]);
    deepEqual(srv.additionals.map((r) => r.type), ["A"]);
    deepEqual(
      answerQuestions(records, [{ name: "ESS-SIM.local", type: "A" }]).answers.map((r) =>
        "data" in r && r.data
      ),
      ["10.213.0.1"],
    );
    const any = answerQuestions(records, [
      { name: "LGE_ESS-TEST0815._pmsctrl._tcp.local", type: "ANY" as "A" },
    ]);
    deepEqual(any.answers.map((r) => r.type), ["SRV", "TXT"]);
  });

  await t.step("should answer the DNS-SD service enumeration", () => {
    const reply = answerQuestions(records, [{ name: "_services._dns-sd._udp.local", type: "PTR" }]);
    deepEqual(reply.answers.map((r) => "data" in r && r.data), ["_pmsctrl._tcp.local"]);
  });

  await t.step("should stay silent for other names and types", () => {
    deepEqual(answerQuestions(records, [{ name: "_ipp._tcp.local", type: "PTR" }]), {
      answers: [],
      additionals: [],
    });
    deepEqual(answerQuestions(records, [{ name: "ess-sim.local", type: "AAAA" }]).answers, []);
  });
});
