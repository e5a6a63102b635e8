/**
 * The MQTT 3.1.1 packets a client needs, as bytes: encoders for what it sends and a streaming
 * {@link PacketReader} for what a broker sends. Pure (no sockets, no timers), so every packet is
 * tested byte for byte; lib/mqtt/client.ts adds the connection.
 *
 * @module
 */
import { quote } from "./_quote.ts";
import { topicProblem } from "./topics.ts";

/** Control packet types (MQTT 3.1.1, 2.2.1). */
export const PacketType = {
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
} as const;

/** Quality of service of one message. */
export type Qos = 0 | 1 | 2;

/** A packet that does not follow MQTT 3.1.1, or one a client cannot take. */
export class MqttProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MqttProtocolError";
  }
}

/** The largest packet a {@link PacketReader} takes unless told otherwise (1 MiB). */
export const DEFAULT_MAX_PACKET_BYTES = 1 << 20;
/** The largest remaining length MQTT can express (four varint bytes). */
const MAX_REMAINING_LENGTH = 268_435_455;

const encoder = new TextEncoder();
const payloadDecoder = new TextDecoder();
const topicDecoder = new TextDecoder("utf-8", { fatal: true });

/**
 * The remaining-length field (MQTT 3.1.1, 2.2.3): seven bits a byte, low bits first.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(encodeRemainingLength(321), Uint8Array.of(0xc1, 0x02));
 * ```
 */
export function encodeRemainingLength(length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > MAX_REMAINING_LENGTH) {
    throw new RangeError(`an MQTT packet cannot be ${length} bytes long`);
  }
  const bytes: number[] = [];
  do {
    let byte = length % 128;
    length = Math.floor(length / 128);
    if (length > 0) byte |= 0x80;
    bytes.push(byte);
  } while (length > 0);
  return Uint8Array.from(bytes);
}

/** Builds packets field by field; {@link Writer.packet} prepends the fixed header. */
class Writer {
  #parts: Uint8Array[] = [];
  #length = 0;

  bytes(b: Uint8Array): this {
    this.#parts.push(b);
    this.#length += b.length;
    return this;
  }

  u8(n: number): this {
    return this.bytes(Uint8Array.of(n));
  }

  u16(n: number): this {
    return this.bytes(Uint8Array.of(n >> 8, n & 0xff));
  }

  /** A length-prefixed field (strings are UTF-8). */
  field(value: string | Uint8Array, what: string): this {
    const b = typeof value === "string" ? encoder.encode(value) : value;
    if (b.length > 0xffff) throw new RangeError(`${what} is longer than 65535 bytes`);
    return this.u16(b.length).bytes(b);
  }

  packet(type: number, flags: number): Uint8Array {
    const header = encodeRemainingLength(this.#length);
    const out = new Uint8Array(1 + header.length + this.#length);
    out[0] = (type << 4) | flags;
    out.set(header, 1);
    let at = 1 + header.length;
    for (const part of this.#parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }
}

function checkPacketId(id: number): number {
  if (!Number.isInteger(id) || id < 1 || id > 0xffff) {
    throw new RangeError(`packet identifier ${id} is not in 1..65535`);
  }
  return id;
}

function checkTopic(topic: string, filter: boolean): string {
  const problem = topicProblem(topic, { filter });
  if (problem !== undefined) {
    throw new RangeError(
      `cannot ${filter ? "subscribe to" : "publish to"} ${quote(topic)}: ${problem}`,
    );
  }
  return topic;
}

/** What a CONNECT says. */
export interface ConnectFields {
  clientId: string;
  /** Seconds; 0 turns keepalive off. */
  keepaliveSeconds: number;
  username?: string | undefined;
  password?: string | undefined;
  will?: { topic: string; payload: string; qos: Qos; retain: boolean } | undefined;
}

/**
 * A CONNECT packet with a clean session (the broker keeps nothing between connections).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const connect = encodeConnect({ clientId: "ess", keepaliveSeconds: 60 });
 * equal(connect[0], 0x10);
 * equal(connect[9], 0x02, "clean session, no will, no credentials");
 * ```
 */
export function encodeConnect(fields: ConnectFields): Uint8Array {
  if (fields.password !== undefined && fields.username === undefined) {
    throw new RangeError("MQTT 3.1.1 allows a password only together with a user name");
  }
  const will = fields.will;
  let flags = 0x02;
  if (will) flags |= 0x04 | (will.qos << 3) | (will.retain ? 0x20 : 0);
  if (fields.password !== undefined) flags |= 0x40;
  if (fields.username !== undefined) flags |= 0x80;
  const w = new Writer()
    .field("MQTT", "protocol name")
    .u8(4)
    .u8(flags)
    .u16(fields.keepaliveSeconds)
    .field(fields.clientId, "client id");
  if (will) {
    w.field(checkTopic(will.topic, false), "will topic").field(
      encoder.encode(will.payload),
      "will payload",
    );
  }
  if (fields.username !== undefined) w.field(fields.username, "user name");
  if (fields.password !== undefined) w.field(encoder.encode(fields.password), "password");
  return w.packet(PacketType.CONNECT, 0);
}

/** What a PUBLISH carries. */
export interface PublishFields {
  topic: string;
  payload: string | Uint8Array;
  qos: Qos;
  retain: boolean;
  /** Required for QoS 1 and 2, absent for QoS 0. */
  packetId?: number | undefined;
  dup?: boolean | undefined;
}

/**
 * A PUBLISH packet.
 *
 * @example
 * ```ts
 * import { equal, throws } from "node:assert/strict";
 * const publish = encodePublish({ topic: "ess/status", payload: "online", qos: 1, retain: true, packetId: 1 });
 * equal(publish[0], 0x33, "PUBLISH, QoS 1, retained");
 * throws(() => encodePublish({ topic: "a\nb", payload: "", qos: 0, retain: false }), RangeError);
 * ```
 */
export function encodePublish(fields: PublishFields): Uint8Array {
  const w = new Writer().field(checkTopic(fields.topic, false), "topic");
  if (fields.qos > 0) w.u16(checkPacketId(fields.packetId ?? 0));
  else if (fields.packetId !== undefined) {
    throw new RangeError("a QoS 0 message has no packet identifier");
  }
  w.bytes(typeof fields.payload === "string" ? encoder.encode(fields.payload) : fields.payload);
  const flags = (fields.dup ? 0x08 : 0) | (fields.qos << 1) | (fields.retain ? 0x01 : 0);
  return w.packet(PacketType.PUBLISH, flags);
}

/**
 * PUBACK, PUBREC or PUBCOMP: the packets that only carry a packet identifier.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(encodeAck(PacketType.PUBACK, 10), Uint8Array.of(0x40, 0x02, 0x00, 0x0a));
 * ```
 */
export function encodeAck(
  type: typeof PacketType.PUBACK | typeof PacketType.PUBREC | typeof PacketType.PUBCOMP,
  packetId: number,
): Uint8Array {
  return new Writer().u16(checkPacketId(packetId)).packet(type, 0);
}

/**
 * A SUBSCRIBE packet asking for each topic filter at `qos`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const subscribe = encodeSubscribe(1, ["ess/control/#"], 1);
 * equal(subscribe[0], 0x82);
 * equal(subscribe.at(-1), 1, "QoS 1");
 * ```
 */
export function encodeSubscribe(
  packetId: number,
  filters: readonly string[],
  qos: Qos,
): Uint8Array {
  if (filters.length === 0) throw new RangeError("SUBSCRIBE needs at least one topic filter");
  const w = new Writer().u16(checkPacketId(packetId));
  for (const filter of filters) w.field(checkTopic(filter, true), "topic filter").u8(qos);
  return w.packet(PacketType.SUBSCRIBE, 0x02);
}

/** PINGREQ: keepalive. */
export const PINGREQ: Uint8Array = Uint8Array.of(PacketType.PINGREQ << 4, 0);
/** DISCONNECT: a clean goodbye, after which the broker discards the will. */
export const DISCONNECT: Uint8Array = Uint8Array.of(PacketType.DISCONNECT << 4, 0);

/** A packet a broker sends to a client. */
export type ServerPacket =
  | { type: "connack"; sessionPresent: boolean; returnCode: number }
  | {
    type: "publish";
    topic: string;
    payload: Uint8Array;
    qos: Qos;
    retain: boolean;
    dup: boolean;
    /** Present for QoS 1 and 2. */
    packetId?: number;
  }
  | { type: "puback" | "pubrec" | "pubrel" | "pubcomp"; packetId: number }
  | { type: "suback"; packetId: number; returnCodes: number[] }
  | { type: "pingresp" }
  | {
    /** A PUBLISH longer than the reader's limit, read past and discarded. */
    type: "oversized";
    topic: string;
    /** Its remaining length: how many bytes were read past. */
    bytes: number;
    qos: Qos;
    retain: boolean;
    dup: boolean;
    /** Present for QoS 1 and 2, so that it can still be acknowledged. */
    packetId?: number;
  };

/** Return codes of a CONNACK that refuses (MQTT 3.1.1, 3.2.2.3), as a person reads them. */
const CONNACK_REFUSALS: Readonly<Record<number, string>> = {
  1: "the broker does not speak MQTT 3.1.1",
  2: "the broker refused the client id",
  3: "the broker is unavailable",
  4: "the broker refused the user name or password",
  5: "the broker says this client is not authorised to connect",
};

/**
 * Why a broker refused a connection, from the CONNACK return code.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(connackRefusal(4), "the broker refused the user name or password");
 * ```
 */
export function connackRefusal(returnCode: number): string {
  return CONNACK_REFUSALS[returnCode] ?? `the broker refused the connection (code ${returnCode})`;
}

/** A SUBACK return code that means the broker refused the subscription. */
export const SUBACK_FAILURE = 0x80;

function decode(type: number, flags: number, body: Uint8Array): ServerPacket {
  const u16 = (at: number) => {
    if (at + 2 > body.length) throw new MqttProtocolError("a packet ends in the middle of a field");
    return (body[at]! << 8) | body[at + 1]!;
  };
  const exactly = (n: number, name: string) => {
    if (body.length !== n) {
      throw new MqttProtocolError(`${name} should be ${n} bytes long, not ${body.length}`);
    }
  };
  const expectFlags = (wanted: number, name: string) => {
    if (flags !== wanted) throw new MqttProtocolError(`${name} with reserved flags ${flags}`);
  };
  switch (type) {
    case PacketType.CONNACK:
      expectFlags(0, "CONNACK");
      exactly(2, "CONNACK");
      return { type: "connack", sessionPresent: (body[0]! & 1) === 1, returnCode: body[1]! };
    case PacketType.PUBLISH: {
      const qos = (flags >> 1) & 3;
      if (qos === 3) throw new MqttProtocolError("PUBLISH with QoS 3");
      const length = u16(0);
      if (2 + length > body.length) throw new MqttProtocolError("PUBLISH topic runs past the end");
      let topic: string;
      try {
        topic = topicDecoder.decode(body.subarray(2, 2 + length));
      } catch {
        throw new MqttProtocolError("PUBLISH topic is not UTF-8");
      }
      let at = 2 + length;
      let packetId: number | undefined;
      if (qos > 0) {
        packetId = u16(at);
        at += 2;
      }
      return {
        type: "publish",
        topic,
        // A copy: the reader's buffer is reused.
        payload: body.slice(at),
        qos: qos as Qos,
        retain: (flags & 1) === 1,
        dup: (flags & 8) === 8,
        ...(packetId !== undefined ? { packetId } : {}),
      };
    }
    case PacketType.PUBACK:
    case PacketType.PUBREC:
    case PacketType.PUBREL:
    case PacketType.PUBCOMP: {
      const name = type === PacketType.PUBACK
        ? "puback"
        : type === PacketType.PUBREC
        ? "pubrec"
        : type === PacketType.PUBREL
        ? "pubrel"
        : "pubcomp";
      expectFlags(type === PacketType.PUBREL ? 2 : 0, name.toUpperCase());
      exactly(2, name.toUpperCase());
      return { type: name, packetId: u16(0) };
    }
    case PacketType.SUBACK:
      expectFlags(0, "SUBACK");
      if (body.length < 3) throw new MqttProtocolError("SUBACK without return codes");
      return { type: "suback", packetId: u16(0), returnCodes: [...body.subarray(2)] };
    case PacketType.PINGRESP:
      expectFlags(0, "PINGRESP");
      exactly(0, "PINGRESP");
      return { type: "pingresp" };
    default:
      throw new MqttProtocolError(`a broker does not send packets of type ${type}`);
  }
}

/** An oversized PUBLISH being read past: its head is kept, the rest only counted. */
interface Skipping {
  flags: number;
  length: number;
  /** Bytes of the body still to come. */
  remaining: number;
  /** The topic length field, the topic and the packet identifier, as far as they came. */
  head: Uint8Array;
  filled: number;
  /** Whether `head` has its full size (the topic length is known). */
  sized: boolean;
}

/**
 * Turns the bytes a broker sends into packets, whatever the reads look like: a packet may arrive
 * split over several reads, and one read may hold several packets. A PUBLISH longer than the
 * limit is read past without being kept (its topic and packet identifier excepted) and comes
 * out as an `oversized` packet, so that one huge message cannot cost the session.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * const reader = new PacketReader();
 * deepEqual(reader.push(Uint8Array.of(0x20, 0x02)), []);
 * deepEqual(reader.push(Uint8Array.of(0x00, 0x00, 0xd0, 0x00)), [
 *   { type: "connack", sessionPresent: false, returnCode: 0 },
 *   { type: "pingresp" },
 * ]);
 * ```
 */
export class PacketReader {
  #pending: Uint8Array = new Uint8Array(0);
  #maxBytes: number;
  #skipping: Skipping | undefined;

  /**
   * `maxPacketBytes`: a longer PUBLISH is discarded, any other longer packet is a protocol
   * error, rather than a buffer that grows.
   */
  constructor(maxPacketBytes = DEFAULT_MAX_PACKET_BYTES) {
    this.#maxBytes = maxPacketBytes;
  }

  /**
   * Takes the next bytes (which it does not keep: the caller may reuse the buffer) and returns
   * every packet now complete; throws {@link MqttProtocolError} on a malformed packet.
   */
  push(chunk: Uint8Array): ServerPacket[] {
    const packets: ServerPacket[] = [];
    let data = chunk;
    let at = 0;
    if (this.#skipping) {
      at = this.#skip(chunk, 0, packets);
      if (this.#skipping) return packets;
    } else if (this.#pending.length > 0) {
      data = new Uint8Array(this.#pending.length + chunk.length);
      data.set(this.#pending);
      data.set(chunk, this.#pending.length);
    }
    for (;;) {
      const header = this.#header(data, at);
      if (header === undefined) break;
      const [bodyAt, length] = header;
      const first = data[at]!;
      if (length > this.#maxBytes) {
        if (first >> 4 !== PacketType.PUBLISH) {
          throw new MqttProtocolError(
            `the broker sent a packet of ${length} bytes (more than ${this.#maxBytes})`,
          );
        }
        if (((first >> 1) & 3) === 3) throw new MqttProtocolError("PUBLISH with QoS 3");
        this.#skipping = {
          flags: first & 0x0f,
          length,
          remaining: length,
          head: new Uint8Array(2),
          filled: 0,
          sized: false,
        };
        at = this.#skip(data, bodyAt, packets);
        if (this.#skipping) {
          this.#pending = new Uint8Array(0);
          return packets;
        }
        continue;
      }
      if (bodyAt + length > data.length) break;
      packets.push(decode(first >> 4, first & 0x0f, data.subarray(bodyAt, bodyAt + length)));
      at = bodyAt + length;
    }
    // Copy the tail: `chunk` belongs to the caller.
    this.#pending = data.slice(at);
    return packets;
  }

  /** Reads past the oversized PUBLISH from `data[at]` on; returns where its bytes end. */
  #skip(data: Uint8Array, at: number, packets: ServerPacket[]): number {
    const skip = this.#skipping!;
    const end = at + Math.min(skip.remaining, data.length - at);
    let i = at;
    while (i < end && skip.filled < skip.head.length) {
      const n = Math.min(end - i, skip.head.length - skip.filled);
      skip.head.set(data.subarray(i, i + n), skip.filled);
      skip.filled += n;
      i += n;
      if (!skip.sized && skip.filled === 2) {
        const qos = (skip.flags >> 1) & 3;
        const size = 2 + ((skip.head[0]! << 8) | skip.head[1]!) + (qos > 0 ? 2 : 0);
        if (size > skip.length) throw new MqttProtocolError("PUBLISH topic runs past the end");
        const head = new Uint8Array(size);
        head.set(skip.head);
        skip.head = head;
        skip.sized = true;
      }
    }
    skip.remaining -= end - at;
    if (skip.remaining === 0) {
      this.#skipping = undefined;
      packets.push(oversized(skip));
    }
    return end;
  }

  /** The offset of the body and its length, or `undefined` while the header is incomplete. */
  #header(data: Uint8Array, at: number): [number, number] | undefined {
    let length = 0;
    let multiplier = 1;
    for (let i = 1; i <= 4; i++) {
      const byte = data[at + i];
      if (byte === undefined) return undefined;
      length += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) return [at + 1 + i, length];
      multiplier *= 128;
    }
    throw new MqttProtocolError("a remaining length longer than four bytes");
  }
}

function oversized(skip: Skipping): ServerPacket {
  const qos = ((skip.flags >> 1) & 3) as Qos;
  const head = skip.head;
  const topicEnd = head.length - (qos > 0 ? 2 : 0);
  let topic: string;
  try {
    topic = topicDecoder.decode(head.subarray(2, topicEnd));
  } catch {
    throw new MqttProtocolError("PUBLISH topic is not UTF-8");
  }
  return {
    type: "oversized",
    topic,
    bytes: skip.length,
    qos,
    retain: (skip.flags & 1) === 1,
    dup: (skip.flags & 8) === 8,
    ...(qos > 0 ? { packetId: (head[topicEnd]! << 8) | head[topicEnd + 1]! } : {}),
  };
}

/**
 * The payload of a PUBLISH as text (invalid UTF-8 becomes U+FFFD, as MQTT payloads need not be
 * text).
 */
export function payloadText(payload: Uint8Array): string {
  return payloadDecoder.decode(payload);
}
