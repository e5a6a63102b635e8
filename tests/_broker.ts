/**
 * MQTT brokers for integration tests: aedes in-process (always there), and a real mosquitto on a
 * free loopback port when it is installed. Each test closes what it starts.
 *
 * @module
 */
import { Aedes } from "aedes";
import { createServer, type Server } from "node:net";
import { connectMqtt, type MqttConnection } from "../lib/mqtt.ts";

/** A running broker. */
export interface TestBroker {
  /** `mqtt://127.0.0.1:<port>`. */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** aedes, listening on a free loopback port. */
export async function startAedes(): Promise<TestBroker> {
  const aedes = await Aedes.createBroker();
  const server: Server = createServer(aedes.handle);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    close: async () => {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Whether `mosquitto` can be run here; the reason to skip when not. */
export async function mosquittoMissing(): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("mosquitto", {
      args: ["-h"],
      stdout: "null",
      stderr: "null",
    })
      .output();
    return out.code === 0 || out.code === 3 ? undefined : `mosquitto -h exited ${out.code}`;
  } catch {
    return "mosquitto is not installed (apt-get install mosquitto)";
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** A real mosquitto on a free loopback port, without persistence. */
export async function startMosquitto(): Promise<TestBroker> {
  const port = freePort();
  const dir = await Deno.makeTempDir();
  const conf = `${dir}/mosquitto.conf`;
  await Deno.writeTextFile(
    conf,
    `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`,
  );
  const child = new Deno.Command("mosquitto", {
    args: ["-c", conf],
    stdout: "null",
    stderr: "null",
  })
    .spawn();
  for (let i = 0; i < 100; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    close: async () => {
      child.kill("SIGTERM");
      await child.status;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Every broker to run a test against: aedes, and mosquitto when installed. */
export async function brokers(): Promise<{ name: string; skip?: string }[]> {
  const missing = await mosquittoMissing();
  return [
    { name: "aedes" },
    missing === undefined ? { name: "mosquitto" } : { name: "mosquitto", skip: missing },
  ];
}

/** Starts the broker called `name` (from {@link brokers}). */
export function startBroker(name: string): Promise<TestBroker> {
  return name === "mosquitto" ? startMosquitto() : startAedes();
}

/** A client connection with a fixed id prefix. */
export function client(url: string, name: string): MqttConnection {
  return connectMqtt({ url, clientId: `test-${name}-${crypto.randomUUID().slice(0, 8)}` });
}

/**
 * The retained messages under `filter`, as a fresh subscriber sees them (empty ones are not
 * retained, so they never show up).
 */
export async function retained(
  url: string,
  filter: string,
  quietMs = 300,
): Promise<Map<string, string>> {
  const seen = new Map<string, string>();
  const mqtt = client(url, "retained");
  try {
    await new Promise<void>((resolve) => {
      mqtt.listen({
        connected: resolve,
        disconnected: () => {},
        message: (topic, payload, isRetained) => {
          if (isRetained) seen.set(topic, payload);
        },
      });
    });
    await mqtt.subscribe([filter]);
    await new Promise((r) => setTimeout(r, quietMs));
  } finally {
    await mqtt.close();
  }
  return seen;
}
