import { deepEqual, equal, match, ok as assert, throws } from "node:assert/strict";
import {
  connackRefusal,
  DISCONNECT,
  encodeAck,
  encodeConnect,
  encodePublish,
  encodeRemainingLength,
  encodeSubscribe,
  MqttProtocolError,
  PacketType,
  PINGREQ,
} from "../lib/mqtt/_packet.ts";
import { PacketReader, payloadText, type ServerPacket } from "../lib/mqtt/_reader.ts";
import { seededRandom } from "../lib/backoff.ts";

/** Bytes from hex with spaces, and ASCII text in quotes: `10 0f "MQTT"`. */
function bytes(spec: string): Uint8Array {
  const out: number[] = [];
  for (const [, text, hex] of spec.matchAll(/"([^"]*)"|([0-9a-fA-F]{2})/g)) {
    if (text !== undefined) out.push(...new TextEncoder().encode(text));
    else out.push(parseInt(hex!, 16));
  }
  return Uint8Array.from(out);
}

const read = (...chunks: Uint8Array[]): ServerPacket[] => {
  const reader = new PacketReader();
  return chunks.flatMap((chunk) => reader.push(chunk));
};

Deno.test("encodeRemainingLength()", async (t) => {
  await t.step("should encode the boundaries of MQTT 3.1.1 table 2.4", () => {
    const cases: [number, string][] = [
      [0, "00"],
      [127, "7f"],
      [128, "80 01"],
      [16_383, "ff 7f"],
      [16_384, "80 80 01"],
      [2_097_151, "ff ff 7f"],
      [2_097_152, "80 80 80 01"],
      [268_435_455, "ff ff ff 7f"],
    ];
    for (const [length, hex] of cases) deepEqual(encodeRemainingLength(length), bytes(hex));
  });

  await t.step("should refuse what four bytes cannot hold", () => {
    throws(() => encodeRemainingLength(268_435_456), RangeError);
    throws(() => encodeRemainingLength(-1), RangeError);
  });
});

Deno.test("encodeConnect()", async (t) => {
  await t.step("should send a clean session with client id and keepalive", () => {
    deepEqual(
      encodeConnect({ clientId: "ess", keepaliveSeconds: 60 }),
      bytes(`10 0f  00 04 "MQTT"  04  02  00 3c  00 03 "ess"`),
    );
  });

  await t.step("should carry user name, password and a retained QoS 1 will", () => {
    deepEqual(
      encodeConnect({
        clientId: "c",
        keepaliveSeconds: 10,
        username: "u",
        password: "p",
        will: { topic: "w", payload: "bye", qos: 1, retain: true },
      }),
      // Flags: user name 80, password 40, will retain 20, will QoS 1 08, will 04, clean 02.
      bytes(`10 1b  00 04 "MQTT"  04  ee  00 0a  00 01 "c"  00 01 "w"  00 03 "bye"  00 01 "u"
             00 01 "p"`),
    );
  });

  await t.step("should encode a will of QoS 0 without retain and UTF-8 credentials", () => {
    deepEqual(
      encodeConnect({
        clientId: "",
        keepaliveSeconds: 0,
        username: "jörg",
        will: { topic: "s", payload: "", qos: 0, retain: false },
      }),
      bytes(`10 18  00 04 "MQTT"  04  86  00 00  00 00  00 01 "s"  00 00  00 05 "j" c3 b6 "rg"`),
    );
  });

  await t.step("should refuse a password without a user name", () => {
    throws(() => encodeConnect({ clientId: "c", keepaliveSeconds: 1, password: "p" }), RangeError);
  });
});

Deno.test("encodePublish()", async (t) => {
  await t.step("should encode QoS 0 without a packet identifier", () => {
    deepEqual(
      encodePublish({ topic: "a/b", payload: "hi", qos: 0, retain: false }),
      bytes(`30 07  00 03 "a/b"  "hi"`),
    );
  });

  await t.step("should encode QoS 1, retain and the packet identifier", () => {
    deepEqual(
      encodePublish({ topic: "a/b", payload: "hi", qos: 1, retain: true, packetId: 10 }),
      bytes(`33 09  00 03 "a/b"  00 0a  "hi"`),
    );
  });

  await t.step("should encode topic and payload as UTF-8, and an empty payload", () => {
    deepEqual(
      encodePublish({ topic: "ä", payload: "€", qos: 0, retain: false }),
      bytes(`30 07  00 02 c3 a4  e2 82 ac`),
    );
    deepEqual(
      encodePublish({ topic: "t", payload: "", qos: 0, retain: true }),
      bytes(`31 03  00 01 "t"`),
    );
  });

  await t.step("should use two length bytes above 127", () => {
    const packet = encodePublish({ topic: "t", payload: "x".repeat(200), qos: 0, retain: false });
    deepEqual(packet.subarray(0, 6), bytes(`30 cb 01  00 01 "t"`));
    equal(packet.length, 206);
  });

  await t.step("should refuse wildcards, empty topics and misplaced packet identifiers", () => {
    throws(() => encodePublish({ topic: "a/#", payload: "", qos: 0, retain: false }), RangeError);
    throws(() => encodePublish({ topic: "", payload: "", qos: 0, retain: false }), RangeError);
    throws(() => encodePublish({ topic: "a", payload: "", qos: 1, retain: false }), RangeError);
    throws(
      () => encodePublish({ topic: "a", payload: "", qos: 0, retain: false, packetId: 1 }),
      RangeError,
    );
  });
});

Deno.test("encodeAck(), encodeSubscribe(), PINGREQ and DISCONNECT", async (t) => {
  await t.step("should encode the acknowledgements with their packet identifier", () => {
    deepEqual(encodeAck(PacketType.PUBACK, 10), bytes("40 02 00 0a"));
    deepEqual(encodeAck(PacketType.PUBREC, 0x1234), bytes("50 02 12 34"));
    deepEqual(encodeAck(PacketType.PUBCOMP, 65535), bytes("70 02 ff ff"));
    throws(() => encodeAck(PacketType.PUBACK, 0), RangeError);
  });

  await t.step("should subscribe to every filter with the QoS asked for", () => {
    deepEqual(
      encodeSubscribe(1, ["a/#", "b/+"], 1),
      bytes(`82 0e  00 01  00 03 "a/#" 01  00 03 "b/+" 01`),
    );
    throws(() => encodeSubscribe(1, [], 1), RangeError);
  });

  await t.step("should be the two-byte packets of the spec", () => {
    deepEqual(PINGREQ, bytes("c0 00"));
    deepEqual(DISCONNECT, bytes("e0 00"));
  });
});

Deno.test("PacketReader", async (t) => {
  await t.step("should decode CONNACK, accepted or refused", () => {
    deepEqual(read(bytes("20 02 00 00")), [
      { type: "connack", sessionPresent: false, returnCode: 0 },
    ]);
    deepEqual(read(bytes("20 02 01 05")), [
      { type: "connack", sessionPresent: true, returnCode: 5 },
    ]);
  });

  await t.step("should decode PUBLISH of QoS 0, 1 and 2 with retain and dup", () => {
    const [qos0, qos1, qos2] = read(
      bytes(`30 07  00 03 "a/b"  "hi"`),
      bytes(`33 09  00 03 "a/b"  00 0a  "hi"`),
      bytes(`3c 09  00 03 "a/b"  00 0b  c3 a4`),
    );
    deepEqual(qos0, {
      type: "publish",
      topic: "a/b",
      payload: bytes(`"hi"`),
      qos: 0,
      retain: false,
      dup: false,
    });
    deepEqual(qos1, {
      type: "publish",
      topic: "a/b",
      payload: bytes(`"hi"`),
      qos: 1,
      retain: true,
      dup: false,
      packetId: 10,
    });
    deepEqual(qos2, {
      type: "publish",
      topic: "a/b",
      payload: bytes("c3 a4"),
      qos: 2,
      retain: false,
      dup: true,
      packetId: 11,
    });
  });

  await t.step("should decode the acknowledgements, SUBACK and PINGRESP", () => {
    deepEqual(
      read(bytes("40 02 00 0a  50 02 00 0b  62 02 00 0c  70 02 00 0d  90 04 00 01 01 80  d0 00")),
      [
        { type: "puback", packetId: 10 },
        { type: "pubrec", packetId: 11 },
        { type: "pubrel", packetId: 12 },
        { type: "pubcomp", packetId: 13 },
        { type: "suback", packetId: 1, returnCodes: [1, 0x80] },
        { type: "pingresp" },
      ],
    );
  });

  await t.step("should give the same packets however the bytes are split", () => {
    const stream = bytes(`20 02 00 00  33 09 00 03 "a/b" 00 0a "hi"  30 cb 01 00 01 "t"
                          ${"78 ".repeat(200)}  d0 00`);
    const whole = read(stream);
    equal(whole.length, 4);
    deepEqual(read(...Array.from(stream, (b) => Uint8Array.of(b))), whole);
    const random = seededRandom(4);
    for (let run = 0; run < 50; run++) {
      const chunks: Uint8Array[] = [];
      for (let at = 0; at < stream.length;) {
        const size = 1 + Math.floor(random() * 20);
        chunks.push(stream.slice(at, at + size));
        at += size;
      }
      deepEqual(read(...chunks), whole, `run ${run}`);
    }
  });

  await t.step("should not depend on the caller's buffer after push()", () => {
    const reader = new PacketReader();
    const buffer = bytes(`30 07 00 03 "a/b" "h"`);
    equal(reader.push(buffer).length, 0);
    buffer.fill(0);
    const [packet] = reader.push(bytes(`"i"`));
    equal(packet?.type === "publish" && payloadText(packet.payload), "hi");
    const first = bytes(`30 04 00 01 "t" "x" 30 04`);
    const [x] = reader.push(first);
    first.fill(0xff);
    equal(x?.type === "publish" && payloadText(x.payload), "x");
    const [y] = reader.push(bytes(`00 01 "t" "y"`));
    equal(y?.type === "publish" && payloadText(y.payload), "y");
  });

  await t.step("should refuse malformed packets and packets a broker does not send", () => {
    const cases: [string, RegExp][] = [
      ["30 ff ff ff ff 7f", /four bytes/],
      ["10 00", /type 1/],
      ["36 03 00 01 74", /QoS 3/],
      ["30 04 00 01 ff 78", /UTF-8/],
      ["30 04 00 05 74 78", /past the end/],
      ["32 03 00 01 74", /middle of a field/],
      ["60 02 00 01", /reserved flags/],
      ["20 03 00 00 00", /CONNACK should be 2 bytes/],
      ["90 02 00 01", /without return codes/],
      ["90 03 00 01 03", /SUBACK with the return code 3/],
      ["32 05 00 01 74 00 00", /PUBLISH of QoS 1 with packet identifier 0/],
      ["34 06 00 01 74 00 00 78", /PUBLISH of QoS 2 with packet identifier 0/],
      ["40 02 00 00", /PUBACK with packet identifier 0/],
      ["62 02 00 00", /PUBREL with packet identifier 0/],
      ["90 03 00 00 01", /SUBACK with packet identifier 0/],
    ];
    for (const [hex, message] of cases) {
      throws(() => read(bytes(hex)), (err: Error) => {
        equal(err instanceof MqttProtocolError, true, hex);
        match(err.message, message, hex);
        return true;
      });
    }
  });

  await t.step("should refuse any other packet longer than its limit before it arrives", () => {
    const reader = new PacketReader(100);
    throws(() => reader.push(bytes("90 e5 00")), /101 bytes \(more than 100\)/);
  });

  /** PINGRESP, a QoS 1 PUBLISH on a/b (id 7) with 200 payload bytes, a QoS 0 PUBLISH. */
  const stream = Uint8Array.from([
    ...bytes("d0 00"),
    ...bytes(`32 cf 01  00 03 "a/b"  00 07`),
    ...new Uint8Array(200).fill(0x78),
    ...bytes(`30 05 00 01 "c" "ok"`),
  ]);
  const afterwards: ServerPacket[] = [
    { type: "pingresp" },
    { type: "oversized", topic: "a/b", bytes: 207, qos: 1, retain: false, dup: false, packetId: 7 },
    { type: "publish", topic: "c", payload: bytes(`"ok"`), qos: 0, retain: false, dup: false },
  ];

  await t.step("should read past a PUBLISH longer than its limit, and on", () => {
    deepEqual(new PacketReader(100).push(stream), afterwards);
  });

  await t.step("should read past it the same however the bytes are split", () => {
    const random = seededRandom(11);
    for (const size of [1, 2, 3, 7, 50, 199]) {
      const reader = new PacketReader(100);
      const packets: ServerPacket[] = [];
      for (let at = 0; at < stream.length;) {
        const n = size === 199 ? 1 + Math.floor(random() * size) : size;
        const chunk = stream.slice(at, at + n);
        packets.push(...reader.push(chunk));
        chunk.fill(0xee);
        at += n;
      }
      deepEqual(packets, afterwards, `chunks of ${size}`);
    }
  });

  await t.step("should read past a retained QoS 0 one of 2 MB without an identifier", () => {
    const reader = new PacketReader();
    const length = 2_000_000;
    const header = Uint8Array.from([0x31, ...encodeRemainingLength(length), 0, 1, 0x74]);
    deepEqual(reader.push(header), []);
    const chunk = new Uint8Array(16 * 1024);
    let left = length - 3;
    while (left > chunk.length) {
      deepEqual(reader.push(chunk), []);
      left -= chunk.length;
    }
    deepEqual(reader.push(Uint8Array.from([...chunk.subarray(0, left), 0xd0, 0x00])), [
      { type: "oversized", topic: "t", bytes: length, qos: 0, retain: true, dup: false },
      { type: "pingresp" },
    ]);
  });

  await t.step("should join a packet in many small reads once, not at every read", () => {
    const reader = new PacketReader();
    const payload = new Uint8Array(1_000_000).fill(0x78);
    const packet = encodePublish({
      topic: "ess/json/home",
      payload,
      qos: 1,
      retain: false,
      packetId: 3,
    });
    const packets: ServerPacket[] = [];
    for (let at = 0; at < packet.length; at += 100) {
      packets.push(...reader.push(packet.subarray(at, at + 100)));
    }
    equal(packets.length, 1);
    const [message] = packets;
    equal(message?.type === "publish" && message.payload.length, payload.length);
    const copied = reader.bytesCopied;
    // Each byte a bounded number of times: copying all that came at every read was 5 GB.
    assert(copied <= 3 * packet.length, `${copied.toLocaleString("en")} bytes copied`);
  });

  await t.step("should refuse an oversized PUBLISH that is malformed", () => {
    throws(
      () =>
        new PacketReader(10).push(
          Uint8Array.from([0x32, 0x20, 0, 1, 0x74, 0, 0, ...new Uint8Array(27)]),
        ),
      /PUBLISH of QoS 1 with packet identifier 0/,
    );
    throws(() => new PacketReader(10).push(bytes("36 20 00 01 74")), /QoS 3/);
    throws(() => new PacketReader(10).push(bytes("30 20 00 40 74")), /past the end/);
    throws(
      () =>
        new PacketReader(10).push(
          Uint8Array.from([0x30, 0x20, 0, 2, 0xff, 0xfe, ...new Uint8Array(30)]),
        ),
      /UTF-8/,
    );
  });
});

Deno.test("connackRefusal()", async (t) => {
  await t.step("should say why in words for every return code of MQTT 3.1.1", () => {
    match(connackRefusal(1), /MQTT 3\.1\.1/);
    match(connackRefusal(2), /client id/);
    match(connackRefusal(3), /unavailable/);
    match(connackRefusal(4), /user name or password/);
    match(connackRefusal(5), /not authorised/);
    match(connackRefusal(42), /code 42/);
  });
});
