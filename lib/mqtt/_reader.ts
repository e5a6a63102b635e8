/**
 * What a broker sends to a client, from bytes: a streaming {@link PacketReader} that takes reads
 * of any size and gives whole MQTT 3.1.1 packets, bounded in size. Pure (no sockets, no timers),
 * so every packet is tested byte for byte; the encoders are in lib/mqtt/_packet.ts.
 *
 * @module
 */
import {
  DEFAULT_MAX_PACKET_BYTES,
  MqttProtocolError,
  PacketType,
  type Qos,
  SUBACK_FAILURE,
} from "./_packet.ts";

const payloadDecoder = new TextDecoder();
const topicDecoder = new TextDecoder("utf-8", { fatal: true });

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

function decode(type: number, flags: number, body: Uint8Array): ServerPacket {
  const u16 = (at: number) => {
    if (at + 2 > body.length) throw new MqttProtocolError("a packet ends in the middle of a field");
    return (body[at]! << 8) | body[at + 1]!;
  };
  /** A packet identifier, which is never 0 (MQTT 3.1.1, 2.3.1). */
  const packetIdAt = (at: number, name: string) => {
    const id = u16(at);
    if (id === 0) throw new MqttProtocolError(`${name} with packet identifier 0`);
    return id;
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
        // Refused before anything is delivered: it could not be acknowledged.
        packetId = packetIdAt(at, `PUBLISH of QoS ${qos}`);
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
      return { type: name, packetId: packetIdAt(0, name.toUpperCase()) };
    }
    case PacketType.SUBACK:
      expectFlags(0, "SUBACK");
      if (body.length < 3) throw new MqttProtocolError("SUBACK without return codes");
      for (const code of body.subarray(2)) {
        if (code > 2 && code !== SUBACK_FAILURE) {
          throw new MqttProtocolError(`SUBACK with the return code ${code}`);
        }
      }
      return {
        type: "suback",
        packetId: packetIdAt(0, "SUBACK"),
        returnCodes: [...body.subarray(2)],
      };
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
  /**
   * The start of a packet that has not fully arrived, in the pieces it came in: joined once,
   * when all of it is there, so that a packet in many small reads costs no more than in one.
   */
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  /** How many bytes the packet in `#chunks` has in all; 0 while its header is incomplete. */
  #need = 0;
  #copied = 0;
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
   * How many bytes the reader has copied so far: each byte it is given is copied a bounded
   * number of times (three at most), however the packets are split. For tests and benchmarks.
   */
  get bytesCopied(): number {
    return this.#copied;
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
    } else if (this.#buffered > 0) {
      // `chunk` belongs to the caller: keep a copy, and join only when the packet is complete.
      this.#chunks.push(this.#copy(chunk));
      this.#buffered += chunk.length;
      if (this.#buffered < this.#need) return packets;
      data = this.#join();
    }
    let need = 0;
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
          this.#keep(new Uint8Array(0), 0);
          return packets;
        }
        continue;
      }
      if (bodyAt + length > data.length) {
        need = bodyAt + length - at;
        break;
      }
      packets.push(decode(first >> 4, first & 0x0f, data.subarray(bodyAt, bodyAt + length)));
      at = bodyAt + length;
    }
    this.#keep(at < data.length ? this.#copy(data.subarray(at)) : new Uint8Array(0), need);
    return packets;
  }

  /** Keeps `tail`, the start of a packet of `need` bytes, for the next push. */
  #keep(tail: Uint8Array, need: number): void {
    this.#chunks = tail.length > 0 ? [tail] : [];
    this.#buffered = tail.length;
    this.#need = need;
  }

  #copy(bytes: Uint8Array): Uint8Array {
    this.#copied += bytes.length;
    return bytes.slice();
  }

  #join(): Uint8Array {
    if (this.#chunks.length === 1) return this.#chunks[0]!;
    const joined = new Uint8Array(this.#buffered);
    let at = 0;
    for (const chunk of this.#chunks) {
      joined.set(chunk, at);
      at += chunk.length;
    }
    this.#copied += joined.length;
    return joined;
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
  const packetId = qos > 0 ? (head[topicEnd]! << 8) | head[topicEnd + 1]! : undefined;
  if (packetId === 0) throw new MqttProtocolError(`PUBLISH of QoS ${qos} with packet identifier 0`);
  return {
    type: "oversized",
    topic,
    bytes: skip.length,
    qos,
    retain: (skip.flags & 1) === 1,
    dup: (skip.flags & 8) === 8,
    ...(packetId !== undefined ? { packetId } : {}),
  };
}

/**
 * The payload of a PUBLISH as text (invalid UTF-8 becomes U+FFFD, as MQTT payloads need not be
 * text).
 */
export function payloadText(payload: Uint8Array): string {
  return payloadDecoder.decode(payload);
}
