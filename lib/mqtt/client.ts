/**
 * The MQTT connection the bridge depends on, and ess's own MQTT 3.1.1 client behind it. The
 * bridge sees only {@link MqttConnection}; tests give it a fake, the CLI gives it
 * {@link connectMqtt}. The packets are in lib/mqtt/_packet.ts (what the client sends) and
 * lib/mqtt/_reader.ts (what the broker sends), the requests awaiting an answer in
 * lib/mqtt/_in_flight.ts; this module adds the socket (Deno's own TCP and TLS), keepalive and
 * reconnecting.
 *
 * @module
 */
import {
  connackRefusal,
  DEFAULT_MAX_PACKET_BYTES,
  DISCONNECT,
  encodeAck,
  encodeConnect,
  encodePublish,
  encodeSubscribe,
  PacketType,
  PINGREQ,
  SUBACK_FAILURE,
} from "./_packet.ts";
import { PacketReader, payloadText, type ServerPacket } from "./_reader.ts";
import { InFlight, type Pending, type RequestKind } from "./_in_flight.ts";
import { Backoff, sleep } from "../backoff.ts";
import { errorText, EssError } from "../errors.ts";
import { quote } from "./_quote.ts";

/** How one message is published. */
export interface PublishOptions {
  /** Whether the broker keeps it for later subscribers (default false). */
  retain?: boolean | undefined;
  /** 0: at most once (default), 1: at least once. */
  qos?: 0 | 1 | undefined;
}

/** What the connection tells its one listener. */
export interface MqttListener {
  /** Connected, for the first time or again; the broker has forgotten the subscriptions. */
  connected(): void;
  /** The connection was lost or could not be made; it keeps trying by itself. */
  disconnected(reason: string): void;
  /** A message on a subscribed topic; `retained` when the broker sent it from its store. */
  message(topic: string, payload: string, retained: boolean): void;
  /** Something a person should know (a message discarded, a client id in use twice); it goes on. */
  warning?(message: string): void;
}

/** A connection to one broker that reconnects by itself until closed. */
export interface MqttConnection {
  /** Where it connects, for messages (`mqtt://localhost:1883`, no credentials). */
  readonly broker: string;
  /** Whether it is connected right now. */
  readonly connected: boolean;
  /** Sets the listener; if already connected, `connected()` is called at once. */
  listen(listener: MqttListener): void;
  /** Publishes one message; while disconnected the message is dropped, not queued. */
  publish(topic: string, payload: string, options?: PublishOptions): Promise<void>;
  /** Subscribes to topic filters (QoS 1). */
  subscribe(topics: readonly string[]): Promise<void>;
  /** Disconnects cleanly (the broker does not send the last will) and stops reconnecting. */
  close(): Promise<void>;
}

/** Options of {@link connectMqtt}. */
export interface MqttConnectOptions {
  /** `mqtt://host:port` or `mqtts://host:port`. */
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  /** PEM CA certificate(s) to trust for `mqtts://`, besides the CAs Deno trusts anyway. */
  ca?: string | undefined;
  clientId: string;
  /** The message the broker publishes when the connection breaks without a goodbye. */
  will?: { topic: string; payload: string; retain: boolean; qos: 0 | 1 } | undefined;
  /** Reconnect back-off: first delay and cap, in ms (default 1 s and 30 s). */
  reconnectBaseMs?: number | undefined;
  reconnectMaxMs?: number | undefined;
  /** Jitter source for the reconnect back-off. */
  random?: (() => number) | undefined;
  /** How long `close()` waits for the broker before dropping the socket, in ms (default 1000). */
  closeTimeoutMs?: number | undefined;
  /** A ping goes to the broker this often, in seconds (default 60). */
  keepaliveSeconds?: number | undefined;
  /** The connection counts as dead when a ping is not answered within this, in ms (default 10 s). */
  pingTimeoutMs?: number | undefined;
  /**
   * The connection counts as dead when the broker does not acknowledge a QoS 1 message or a
   * subscription within this, in ms (default 10 s).
   */
  ackTimeoutMs?: number | undefined;
  /** The longest wait for TCP, TLS and the broker's CONNACK, in ms (default 10 s). */
  connectTimeoutMs?: number | undefined;
  /** A message longer than this, in bytes, is discarded with a warning (default 1 MiB). */
  maxPacketBytes?: number | undefined;
  /**
   * The most QoS 1 messages and subscriptions that await the broker's acknowledgement at one
   * time (default and most: `MAX_IN_FLIGHT`, 256); past it, `publish()` and `subscribe()` wait
   * until the broker acknowledges an earlier one.
   */
  maxInFlight?: number | undefined;
}

/** Above this many unwritten bytes, publishing waits for the socket instead of queueing more. */
const HIGH_WATER_BYTES = 64 * 1024;
/**
 * A connection that lasted this long was stable: the reconnect back-off starts again from its
 * base. Shorter ones that the broker ends count towards the client-id warning.
 */
const STABLE_SESSION_MS = 60_000;
/** Short sessions in a row after which another client with the same id is the likely cause. */
const SHORT_SESSIONS_WARNING = 3;
/** Topics remembered as warned about for an oversized message. */
const MAX_OVERSIZED_WARNED = 64;

/** A failed TLS handshake, said so that a person knows what to try; `host` as in a URL. */
function tlsFailure(err: unknown, host: string, port: number): string {
  const text = errorText(err);
  if (/certificate|issuer|CertNotValid|NotValidForName|expired/i.test(text)) {
    return `the broker at ${host}:${port} showed a TLS certificate ess cannot verify (${text}): ` +
      `give the CA that signed it with --mqtt-ca, and connect by a name the certificate has`;
  }
  return `the broker at ${host}:${port} did not complete a TLS handshake (${text}): is it a ` +
    `TLS port (usually 8883)? For plain MQTT use mqtt://${host}:1883`;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Closed already: the session that owned it is ending anyway.
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/**
 * Connects to a broker with ess's own MQTT 3.1.1 client (clean session). It reconnects after any
 * loss with a capped, jittered back-off and never queues messages while disconnected: after a
 * reconnect the bridge republishes its whole retained state anyway, so a queue would only grow
 * during a long broker outage. It subscribes with QoS 1 at most, and answers QoS 2 anyway.
 *
 * @example
 * ```ts ignore
 * const mqtt = connectMqtt({ url: "mqtt://broker.lan:1883", clientId: "ess-1" });
 * mqtt.listen({ connected() {}, disconnected() {}, message(topic, payload) {} });
 * await mqtt.close();
 * ```
 */
export function connectMqtt(options: MqttConnectOptions): MqttConnection {
  return new Client(options);
}

class Client implements MqttConnection {
  readonly broker: string;
  #options: MqttConnectOptions;
  #hostname: string;
  #port: number;
  #secure: boolean;
  #backoff: Backoff;
  #listener: MqttListener | undefined;
  #closing = false;
  #stop = new AbortController();
  #done: Promise<void>;
  #buffer = new Uint8Array(16 * 1024);

  /** Sessions in a row that the broker ended soon after accepting them. */
  #shortSessions = 0;
  #warnedCollision = false;
  #oversizedWarned = new Set<string>();

  // The current connection: reset by every session.
  #conn: Deno.Conn | undefined;
  #up = false;
  #acceptedAt: number | undefined;
  /** Whether the broker (or the network), not ess, ended the accepted connection. */
  #brokerClosed = false;
  #endReason: string | undefined;
  #inFlight: InFlight;
  #out: Uint8Array[] = [];
  #outBytes = 0;
  #flushing: Promise<void> | undefined;
  #ping: ReturnType<typeof setInterval> | undefined;
  #pong: ReturnType<typeof setTimeout> | undefined;
  /** QoS 2 messages delivered and waiting for PUBREL, so a resent one is not delivered again. */
  #qos2 = new Set<number>();

  constructor(options: MqttConnectOptions) {
    this.#options = options;
    const url = new URL(options.url);
    this.broker = `${url.protocol}//${url.host}`;
    this.#secure = url.protocol === "mqtts:";
    this.#hostname = url.hostname.replace(/^\[|\]$/g, "");
    this.#port = url.port === "" ? (this.#secure ? 8883 : 1883) : Number(url.port);
    this.#backoff = new Backoff({
      baseMs: options.reconnectBaseMs ?? 1000,
      maxMs: options.reconnectMaxMs ?? 30_000,
      random: options.random,
    });
    this.#inFlight = new InFlight(options.maxInFlight);
    this.#done = this.#run();
  }

  get connected(): boolean {
    return this.#up;
  }

  /** The broker's host as a URL writes it (an IPv6 address in brackets). */
  get #urlHost(): string {
    return this.#hostname.includes(":") ? `[${this.#hostname}]` : this.#hostname;
  }

  listen(listener: MqttListener): void {
    this.#listener = listener;
    if (this.#up) listener.connected();
  }

  async publish(topic: string, payload: string, opts: PublishOptions = {}): Promise<void> {
    if (!this.#up) return;
    const qos = opts.qos ?? 0;
    const retain = opts.retain ?? false;
    if (qos === 0) {
      const flushed = this.#send(encodePublish({ topic, payload, qos, retain }));
      if (this.#outBytes > HIGH_WATER_BYTES) await flushed;
      return;
    }
    await this.#request(
      "puback",
      0,
      (packetId) => encodePublish({ topic, payload, qos, retain, packetId }),
    );
  }

  async subscribe(topics: readonly string[]): Promise<void> {
    if (!this.#up || topics.length === 0) return;
    const codes = await this.#request(
      "suback",
      topics.length,
      (packetId) => encodeSubscribe(packetId, topics, 1),
    );
    const refused = topics.filter((_, i) => codes[i] === SUBACK_FAILURE);
    if (refused.length > 0) {
      throw new EssError(`${this.broker} refused the subscription to ${refused.join(", ")}`);
    }
  }

  async close(): Promise<void> {
    if (this.#closing) return await this.#done;
    this.#closing = true;
    this.#stop.abort();
    const conn = this.#conn;
    const limit = setTimeout(() => {
      // A broker that does not take the goodbye in time: drop the socket.
      if (this.#conn) closeQuietly(this.#conn);
    }, this.#options.closeTimeoutMs ?? 1000);
    try {
      if (conn && this.#up) {
        await this.#inFlight.settled();
        if (this.#conn === conn) {
          await this.#send(DISCONNECT);
          // The broker closes its side on DISCONNECT, which ends the session's read loop.
          await conn.closeWrite().catch(() => closeQuietly(conn));
        }
      } else if (conn) closeQuietly(conn);
      await this.#done;
    } finally {
      clearTimeout(limit);
    }
  }

  async #run(): Promise<void> {
    while (!this.#closing) {
      let reason: string;
      try {
        reason = await this.#session();
      } catch (err) {
        reason = this.#endReason ?? errorText(err);
      }
      if (this.#closing) break;
      this.#sessionEnded();
      this.#listener?.disconnected(reason);
      await sleep(this.#backoff.next(), this.#stop.signal);
    }
  }

  /**
   * Keeps backing off while connections do not last (a reset after every CONNACK would let two
   * clients with one id take the session from each other every second), and says once what a
   * run of sessions the broker ends right after accepting them most likely means.
   */
  #sessionEnded(): void {
    const accepted = this.#acceptedAt;
    this.#acceptedAt = undefined;
    if (accepted === undefined) return;
    const lasted = Date.now() - accepted;
    if (lasted >= STABLE_SESSION_MS) {
      this.#backoff.reset();
      this.#shortSessions = 0;
      this.#warnedCollision = false;
      return;
    }
    this.#shortSessions = this.#brokerClosed ? this.#shortSessions + 1 : 0;
    if (this.#shortSessions >= SHORT_SESSIONS_WARNING && !this.#warnedCollision) {
      this.#warnedCollision = true;
      this.#listener?.warning?.(
        `the broker at ${this.broker} closed the connection soon after accepting it ` +
          `${this.#shortSessions} times in a row: another client with the id ` +
          `${quote(this.#options.clientId)} is probably connected, and each takes the session ` +
          `from the other; give every client its own id (--mqtt-client-id). Reconnecting with ` +
          `back-off`,
      );
    }
  }

  /** One connection, from TCP connect to its end; returns why it ended. */
  async #session(): Promise<string> {
    this.#endReason = undefined;
    this.#brokerClosed = false;
    const connecting = new AbortController();
    const connectTimeoutMs = this.#options.connectTimeoutMs ?? 10_000;
    const timeout = setTimeout(() => {
      this.#endReason ??= `no answer from the broker within ${connectTimeoutMs / 1000} s`;
      connecting.abort();
      if (this.#conn) closeQuietly(this.#conn);
    }, connectTimeoutMs);
    try {
      const tcp = await Deno.connect({
        hostname: this.#hostname,
        port: this.#port,
        signal: AbortSignal.any([connecting.signal, this.#stop.signal]),
      });
      // ess batches its writes itself; Nagle would only delay acknowledgements.
      tcp.setNoDelay(true);
      this.#conn = tcp;
      if (this.#secure && !this.#closing) {
        try {
          // Standard verification: Deno's CAs plus --mqtt-ca, and the broker's host name.
          const tls = await Deno.startTls(tcp, {
            hostname: this.#hostname,
            ...(this.#options.ca !== undefined ? { caCerts: [this.#options.ca] } : {}),
          });
          this.#conn = tls;
          if (!this.#closing) await tls.handshake();
        } catch (err) {
          this.#endReason ??= tlsFailure(err, this.#urlHost, this.#port);
          throw err;
        }
      }
      if (this.#closing) return "closed";
      return await this.#converse(this.#conn, timeout);
    } finally {
      clearTimeout(timeout);
      this.#lost();
    }
  }

  /** Sends CONNECT and handles the broker's packets until the connection ends. */
  async #converse(
    conn: Deno.Conn,
    connectTimeout: ReturnType<typeof setTimeout>,
  ): Promise<string> {
    const o = this.#options;
    this.#send(encodeConnect({
      clientId: o.clientId,
      keepaliveSeconds: o.keepaliveSeconds ?? 60,
      username: o.username,
      password: o.password,
      will: o.will,
    }));
    const reader = new PacketReader(o.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES);
    for (let first = true;; first = false) {
      let n: number | null;
      try {
        n = await conn.read(this.#buffer);
      } catch (err) {
        // A reset rather than a goodbye, unless ess itself ended the connection.
        if (this.#up && this.#endReason === undefined) this.#brokerClosed = true;
        throw err;
      }
      if (n === null) {
        if (this.#up && this.#endReason === undefined) this.#brokerClosed = true;
        return this.#endReason ??
          (this.#up
            ? "the broker closed the connection"
            : "the broker closed the connection before accepting it");
      }
      // A TLS record (handshake 0x16, alert 0x15) where CONNACK should be: a TLS port.
      if (first && !this.#secure && (this.#buffer[0] === 0x15 || this.#buffer[0] === 0x16)) {
        return `the broker at ${this.#urlHost}:${this.#port} answered in TLS: use ` +
          `mqtts://${this.#urlHost}:${this.#port} (or --mqtt-tls)`;
      }
      for (const packet of reader.push(this.#buffer.subarray(0, n))) {
        if (!this.#up && packet.type !== "connack") {
          return `the broker sent ${packet.type.toUpperCase()} before CONNACK`;
        }
        if (packet.type === "connack") {
          if (this.#up) return "the broker sent a second CONNACK";
          if (packet.returnCode !== 0) return connackRefusal(packet.returnCode);
          clearTimeout(connectTimeout);
          this.#accepted(conn);
        } else this.#receive(packet);
      }
    }
  }

  #accepted(conn: Deno.Conn): void {
    this.#up = true;
    this.#acceptedAt = Date.now();
    const keepaliveSeconds = this.#options.keepaliveSeconds ?? 60;
    if (keepaliveSeconds > 0) {
      const pingTimeoutMs = this.#options.pingTimeoutMs ?? 10_000;
      this.#ping = setInterval(() => {
        this.#send(PINGREQ);
        this.#pong ??= setTimeout(() => {
          this.#kill(`the broker did not answer a ping within ${pingTimeoutMs / 1000} s`, conn);
        }, pingTimeoutMs);
      }, keepaliveSeconds * 1000);
    }
    this.#listener?.connected();
  }

  #receive(packet: Exclude<ServerPacket, { type: "connack" }>): void {
    switch (packet.type) {
      case "publish": {
        const { packetId } = packet;
        const duplicate = packet.qos === 2 && this.#qos2.has(packetId!);
        if (!this.#closing && !duplicate) {
          this.#listener?.message(packet.topic, payloadText(packet.payload), packet.retain);
        }
        if (packet.qos === 1) this.#send(encodeAck(PacketType.PUBACK, packetId!));
        if (packet.qos === 2) {
          this.#qos2.add(packetId!);
          this.#send(encodeAck(PacketType.PUBREC, packetId!));
        }
        return;
      }
      case "pubrel":
        this.#qos2.delete(packet.packetId);
        this.#send(encodeAck(PacketType.PUBCOMP, packet.packetId));
        return;
      case "puback":
        this.#inFlight.answer("puback", packet.packetId, []);
        return;
      case "suback":
        this.#inFlight.answer("suback", packet.packetId, packet.returnCodes);
        return;
      case "pingresp":
        clearTimeout(this.#pong);
        this.#pong = undefined;
        return;
      case "pubrec":
      case "pubcomp":
        // ess never publishes with QoS 2.
        this.#kill(`the broker sent ${packet.type.toUpperCase()} for a message never sent`);
        return;
      case "oversized": {
        // Discarded, but acknowledged: unacknowledged, the broker would send it again.
        const { packetId } = packet;
        if (packet.qos === 1) this.#send(encodeAck(PacketType.PUBACK, packetId!));
        if (packet.qos === 2) {
          this.#qos2.add(packetId!);
          this.#send(encodeAck(PacketType.PUBREC, packetId!));
        }
        this.#warnOversized(packet.topic, packet.bytes, packet.retain);
        return;
      }
    }
  }

  /** One warning per topic (of a bounded number) for messages too big to take. */
  #warnOversized(topic: string, bytes: number, retained: boolean): void {
    const key = topic.slice(0, 200);
    if (this.#oversizedWarned.has(key) || this.#oversizedWarned.size >= MAX_OVERSIZED_WARNED) {
      return;
    }
    this.#oversizedWarned.add(key);
    const cap = this.#options.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES;
    const capText = cap % (1 << 20) === 0
      ? `${cap / (1 << 20)} MiB`
      : `${cap.toLocaleString("en")} bytes`;
    this.#listener?.warning?.(
      `discarded a message of ${bytes.toLocaleString("en")} bytes on ${quote(topic)} from ` +
        `${this.broker}: ess takes messages of up to ${capText}` +
        (retained
          ? "; it is retained, so the broker sends it at every connect: clear it with an empty " +
            "retained message"
          : ""),
    );
  }

  /**
   * Sends the packet `encode` makes with a free packet identifier; resolves with the answer. A
   * broker that keeps answering pings but never this would otherwise hold the caller (the
   * bridge's status, and with it the device queue behind the poll) for as long as it likes: no
   * answer in time ends the connection, which rejects every waiter and reconnects.
   */
  #request(
    kind: RequestKind,
    filters: number,
    encode: (packetId: number) => Uint8Array,
  ): Promise<number[]> {
    const conn = this.#conn;
    const ackTimeoutMs = this.#options.ackTimeoutMs ?? 10_000;
    const what = kind === "puback" ? "a message" : "a subscription";
    const placed = this.#inFlight.add(kind, filters, ackTimeoutMs, () => {
      this.#kill(`the broker did not acknowledge ${what} within ${ackTimeoutMs / 1000} s`, conn);
    });
    // Sent at once when there is a place, in order with the messages of QoS 0.
    if (placed instanceof Promise) {
      return placed.then((pending) => this.#sendRequest(pending, encode));
    }
    return this.#sendRequest(placed, encode);
  }

  #sendRequest(pending: Pending, encode: (packetId: number) => Uint8Array): Promise<number[]> {
    let packet: Uint8Array;
    try {
      packet = encode(pending.packetId);
    } catch (err) {
      this.#inFlight.cancel(pending.packetId);
      return Promise.reject(err);
    }
    this.#send(packet);
    return pending.answered;
  }

  /** Queues bytes for the socket; resolves once they are written or the connection is gone. */
  #send(bytes: Uint8Array): Promise<void> {
    this.#out.push(bytes);
    this.#outBytes += bytes.length;
    return this.#flushing ??= this.#flush(this.#conn!);
  }

  /** Writes everything queued for `conn`, in as few writes as the callers' pace allows. */
  async #flush(conn: Deno.Conn): Promise<void> {
    try {
      while (conn === this.#conn && this.#out.length > 0) {
        const parts = this.#out;
        let bytes = parts[0]!;
        if (parts.length > 1) {
          bytes = new Uint8Array(this.#outBytes);
          let at = 0;
          for (const part of parts) {
            bytes.set(part, at);
            at += part.length;
          }
        }
        this.#out = [];
        this.#outBytes = 0;
        await writeAll(conn, bytes);
      }
    } catch (err) {
      this.#kill(errorText(err), conn);
    } finally {
      // A new connection has its own flush by now.
      if (conn === this.#conn) this.#flushing = undefined;
    }
  }

  /** Ends the connection (the session's read fails or sees the end); `reason` says why. */
  #kill(reason: string, conn = this.#conn): void {
    if (conn === undefined || conn !== this.#conn) return;
    this.#endReason ??= reason;
    closeQuietly(conn);
  }

  /** The connection has ended: whatever waited for it will not be answered. */
  #lost(): void {
    if (this.#conn) closeQuietly(this.#conn);
    this.#conn = undefined;
    this.#up = false;
    clearInterval(this.#ping);
    clearTimeout(this.#pong);
    this.#ping = this.#pong = undefined;
    this.#out = [];
    this.#outBytes = 0;
    this.#flushing = undefined;
    this.#qos2.clear();
    this.#inFlight.fail(
      new EssError(`Lost the connection to ${this.broker} before the broker answered`),
    );
  }
}
