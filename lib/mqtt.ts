/**
 * The MQTT connection the bridge depends on, and its implementation over MQTT.js. The bridge
 * sees only {@link MqttConnection}; tests give it a fake, the CLI gives it {@link connectMqtt}.
 *
 * @module
 */
import mqtt from "@mqtt/mqtt";
import { Backoff } from "./backoff.ts";

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
  /** PEM CA certificate(s) to trust for `mqtts://` instead of the system store. */
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
}

/**
 * Whether an MQTT topic filter (with `+` and `#`) matches a topic.
 *
 * @example
 * ```ts
 * topicMatches("homeassistant/+/status", "homeassistant/x/status"); // true
 * topicMatches("ess/#", "ess/home/statistics/load_power"); // true
 * ```
 */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    // `#` also matches the parent level: `ess/#` matches `ess`.
    if (f[i] === "#") return true;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/**
 * Connects to a broker with MQTT.js. It reconnects after any loss with a capped, jittered
 * back-off (MQTT.js's own fixed-period retry is switched off) and never queues messages while
 * disconnected: after a reconnect the bridge republishes its whole retained state anyway, so a
 * queue would only grow during a long broker outage.
 */
export function connectMqtt(options: MqttConnectOptions): MqttConnection {
  const backoff = new Backoff({
    baseMs: options.reconnectBaseMs ?? 1000,
    maxMs: options.reconnectMaxMs ?? 30_000,
    random: options.random,
  });
  const url = new URL(options.url);
  const broker = `${url.protocol}//${url.host}`;
  const client = mqtt.connect(options.url, {
    clientId: options.clientId,
    ...(options.username !== undefined ? { username: options.username } : {}),
    ...(options.password !== undefined ? { password: options.password } : {}),
    ...(options.ca !== undefined ? { ca: options.ca } : {}),
    ...(options.will ? { will: options.will } : {}),
    clean: true,
    reconnectPeriod: 0,
    resubscribe: false,
    queueQoSZero: false,
    connectTimeout: 10_000,
  });
  let listener: MqttListener | undefined;
  let closing = false;
  let lastError = "";
  let timer: ReturnType<typeof setTimeout> | undefined;

  client.on("connect", () => {
    backoff.reset();
    lastError = "";
    listener?.connected();
  });
  client.on("error", (err: Error) => {
    lastError = err.message;
  });
  client.on("message", (topic, payload, packet) => {
    listener?.message(topic, payload.toString("utf8"), packet.retain === true);
  });
  client.on("close", () => {
    if (closing || timer !== undefined) return;
    listener?.disconnected(lastError || "connection closed");
    timer = setTimeout(() => {
      timer = undefined;
      if (!closing) client.reconnect();
    }, backoff.next());
  });

  return {
    broker,
    get connected() {
      return client.connected;
    },
    listen(l) {
      listener = l;
      if (client.connected) l.connected();
    },
    async publish(topic, payload, opts = {}) {
      if (!client.connected) return;
      await client.publishAsync(topic, payload, {
        retain: opts.retain ?? false,
        qos: opts.qos ?? 0,
      });
    },
    async subscribe(topics) {
      if (!client.connected || topics.length === 0) return;
      await client.subscribeAsync([...topics], { qos: 1 });
    },
    async close() {
      closing = true;
      clearTimeout(timer);
      timer = undefined;
      if (!client.connected) {
        await client.endAsync(true);
        return;
      }
      let timeout: ReturnType<typeof setTimeout> | undefined;
      const ended = client.endAsync(false);
      const late = await Promise.race([
        ended.then(() => false),
        new Promise<boolean>((resolve) => {
          timeout = setTimeout(() => resolve(true), options.closeTimeoutMs ?? 1000);
        }),
      ]).finally(() => clearTimeout(timeout));
      // A broker that does not take the goodbye in time: drop the socket.
      if (late) client.stream.destroy();
      await ended.catch(() => {});
    },
  };
}
