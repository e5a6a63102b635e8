/**
 * The MQTT 3.1.1 packets a client sends, as bytes, and the constants both directions share;
 * lib/mqtt/_reader.ts reads what a broker sends. Pure (no sockets, no timers), so every packet is
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

/** The largest packet a `PacketReader` (lib/mqtt/_reader.ts) takes unless told otherwise (1 MiB). */
export const DEFAULT_MAX_PACKET_BYTES = 1 << 20;
/** The largest remaining length MQTT can express (four varint bytes). */
const MAX_REMAINING_LENGTH = 268_435_455;

const encoder = new TextEncoder();

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
