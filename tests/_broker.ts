/**
 * MQTT brokers for tests: aedes in-process, or a real mosquitto the test starts itself on a free
 * loopback port. Both can be stopped and started again on the same port (a broker restart), and
 * both forget retained messages when they stop, as a broker without persistence does.
 *
 * @module
 */
import { createServer, type Server } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import { Aedes } from "aedes";
import mqtt from "mqtt";
import { waitFor } from "./_wait.ts";
import { peerCheck } from "./_peers.ts";

/** A broker a test owns. */
export interface TestBroker {
  readonly name: "aedes" | "mosquitto";
  readonly port: number;
  /** `mqtt://127.0.0.1:<port>`. */
  readonly url: string;
  /** Stops the broker, dropping every client. */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  /** Stops it for good and removes its files. */
  close(): Promise<void>;
}

/** Where mosquitto is installed, if it is. */
export function mosquittoPath(): string | undefined {
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/sbin", "/usr/local/sbin"];
  for (const dir of dirs) {
    try {
      const path = `${dir}/mosquitto`;
      if (Deno.statSync(path).isFile) return path;
    } catch {
      continue;
    }
  }
  return undefined;
}

/** A TCP port free on loopback right now. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function waitForPort(port: number, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** TLS material for a broker: PEM certificate chain and key. */
export interface BrokerTls {
  cert: string;
  key: string;
}

/** An in-process aedes broker on 127.0.0.1 (port 0: a free one), with TLS if given. */
export async function startAedes(port = 0, tls?: BrokerTls): Promise<TestBroker> {
  let broker: Aedes | undefined;
  let server: Server | undefined;
  let actual = port;
  const start = async () => {
    broker = await Aedes.createBroker();
    server = tls ? createTlsServer(tls, broker.handle) : createServer(broker.handle);
    await new Promise<void>((resolve, reject) => {
      server!.once("error", reject);
      server!.listen(actual, "127.0.0.1", () => resolve());
    });
    actual = (server.address() as { port: number }).port;
  };
  const stop = async () => {
    const b = broker;
    const s = server;
    broker = undefined;
    server = undefined;
    if (b) await new Promise<void>((resolve) => b.close(() => resolve()));
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  await start();
  return {
    name: "aedes",
    get port() {
      return actual;
    },
    get url() {
      return `${tls ? "mqtts" : "mqtt"}://127.0.0.1:${actual}`;
    },
    start,
    stop,
    close: stop,
  };
}

/** A mosquitto of the test's own, on a free loopback port, with its own config file. */
export async function startMosquitto(): Promise<TestBroker> {
  const path = mosquittoPath();
  if (!path) throw new Error("mosquitto is not installed");
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "ess-mosquitto-" });
  const config = `${dir}/mosquitto.conf`;
  await Deno.writeTextFile(
    config,
    `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`,
  );
  let child: Deno.ChildProcess | undefined;
  const start = async () => {
    child = new Deno.Command(path, {
      args: ["-c", config],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitForPort(port);
  };
  await start();
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c) return;
    c.kill("SIGTERM");
    await c.status;
  };
  return {
    name: "mosquitto",
    port,
    url: `mqtt://127.0.0.1:${port}`,
    start,
    stop,
    async close() {
      await stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** A message a {@link Watcher} saw. */
export interface Seen {
  payload: string;
  retained: boolean;
}

/** A subscriber to everything, keeping the last message per topic. */
export interface Watcher {
  last: Map<string, Seen>;
  /** Every message, in order. */
  all: { topic: string; payload: string; retained: boolean }[];
  /** Waits until `check()` holds; throws naming `what` after `timeoutMs` (see _wait.ts). */
  until(check: () => boolean, what: string, timeoutMs?: number): Promise<void>;
  publish(topic: string, payload: string, retain?: boolean): Promise<void>;
  close(): Promise<void>;
}

/** Connects a test client that subscribes to `#` and remembers what it sees. */
export async function watch(url: string): Promise<Watcher> {
  const client = mqtt.connect(url, {
    reconnectPeriod: 100,
    clientId: `watcher-${crypto.randomUUID()}`,
  });
  const last = new Map<string, Seen>();
  const all: Watcher["all"] = [];
  client.on("message", (topic, payload, packet) => {
    const seen = { payload: payload.toString("utf8"), retained: packet.retain === true };
    last.set(topic, seen);
    all.push({ topic, ...seen });
  });
  await new Promise<void>((resolve) => client.once("connect", () => resolve()));
  await client.subscribeAsync("#");
  return {
    last,
    all,
    until: (check, what, timeoutMs) =>
      waitFor(check, timeoutMs === undefined ? { what } : { what, timeoutMs }),
    async publish(topic, payload, retain = false) {
      await client.publishAsync(topic, payload, { retain, qos: 1 });
    },
    async close() {
      await client.endAsync(true);
    },
  };
}

const mosquitto = peerCheck(
  "mosquitto",
  mosquittoPath() ? undefined : "mosquitto is not installed",
);

/**
 * The brokers every MQTT suite runs against: aedes in-process always, and a real mosquitto
 * where it is installed (otherwise the test is ignored, and its name says why; see _peers.ts).
 */
export const BROKERS: { name: string; start: () => Promise<TestBroker>; ignore: boolean }[] = [
  { name: "aedes", start: () => startAedes(), ignore: false },
  {
    name: `mosquitto${mosquitto.label}`,
    start: () => {
      mosquitto.assertPresent();
      return startMosquitto();
    },
    ignore: mosquitto.ignore,
  },
];
