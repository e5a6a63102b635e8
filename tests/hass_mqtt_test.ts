import { deepEqual, match, ok, rejects } from "node:assert/strict";
import { EssError } from "../lib/errors.ts";
import { buildDiscovery } from "../lib/hass/discovery.ts";
import { readAutoconfigSensors } from "../lib/hass/pyess.ts";
import {
  type Message,
  publishRetained,
  removeDiscovery,
  type RemoveOptions,
} from "../lib/hass/publish.ts";
import { connectMqtt } from "../lib/mqtt/client.ts";
import { BROKERS, type TestBroker, watch } from "./_broker.ts";
import { PYESS_LATEST, PYESS_LEFT_BEHIND, PYESS_SENSORS } from "./_hass_pyess.ts";

const input = (prefix: string, serial: string) => ({
  prefix,
  systeminfo: { pms: { serialno: serial } },
  published: new Set([`${prefix}/reading/battery/soc`]),
  origin: { version: "0.1.0" },
  fallbackId: "h",
});
/** This ess's config as `ess mqtt --once` announces it: no availability topic to tell it by. */
const ours = buildDiscovery({ ...input("ess", "S1"), expireAfterSeconds: 900 });
const otherEss = buildDiscovery(input("garage", "S2"));
const strangers: Message[] = [
  {
    topic: "homeassistant/device/0x00158d0001/config",
    payload: '{"o":{"name":"Zigbee2MQTT"},"dev":{"ids":["z"]},"cmps":{}}',
  },
  { topic: "homeassistant/sensor/garden_temp/config", payload: '{"state_topic":"garden/temp"}' },
  {
    topic: "homeassistant/sensor/gardentemp/config",
    payload: '{"name": "garden/temp", "state_topic": "garden/temp"}',
  },
  { topic: otherEss.topic, payload: JSON.stringify(otherEss.config) },
];

const client = (broker: TestBroker, name: string) =>
  connectMqtt({ url: broker.url, clientId: `test-${name}-${crypto.randomUUID().slice(0, 8)}` });

/** The discovery configs still retained on the broker, as a new subscriber sees them. */
export async function retainedConfigs(broker: TestBroker): Promise<string[]> {
  const watcher = await watch(broker.url);
  try {
    // The broker sends retained messages before anything published after the subscription.
    await watcher.publish("test/sync", "1");
    await watcher.until(() => watcher.last.has("test/sync"), "test/sync");
    return [...watcher.last].filter(([t, m]) => m.retained && t.startsWith("homeassistant/"))
      .map(([t]) => t).sort();
  } finally {
    await watcher.close();
  }
}

/** Runs removeDiscovery() on a connection of its own; the cleared topics and their owners. */
async function remove(
  broker: TestBroker,
  options: RemoveOptions,
): Promise<Record<string, string>> {
  const remover = client(broker, "remove");
  try {
    return Object.fromEntries(await removeDiscovery(remover, { quietMs: 200, ...options }));
  } finally {
    await remover.close();
  }
}

const owned = (owner: string, messages: readonly Message[]) =>
  messages.map((m) => [m.topic, owner] as const);

for (const { name, start, ignore } of BROKERS) {
  Deno.test({
    name: `removeDiscovery() clears what ess and pyess left, and only that (${name})`,
    ignore,
    async fn(t) {
      const broker = await start();
      const setup = client(broker, "setup");
      const pyessTopics = readAutoconfigSensors(PYESS_SENSORS).pyessTopics;
      const leftToOthers = strangers.map((s) => s.topic).sort();
      try {
        const mine = { topic: ours.topic, payload: JSON.stringify(ours.config) };
        await publishRetained(setup, [mine, ...PYESS_LEFT_BEHIND, ...strangers]);

        await t.step("should clear ess's config and every config pyess left", async () => {
          deepEqual(
            await remove(broker, { prefix: "ess", pyessTopics }),
            Object.fromEntries([...owned("ess", [mine]), ...owned("pyess", PYESS_LEFT_BEHIND)]),
          );
          deepEqual(await retainedConfigs(broker), leftToOthers);
        });

        await t.step("should count only what is there when run again", async () => {
          deepEqual(await remove(broker, { prefix: "ess", pyessTopics }), {});
        });

        await t.step(
          "should find pyess's configs under homeassistant/ with another prefix",
          async () => {
            const inHa = buildDiscovery({ ...input("ess", "S1"), discoveryPrefix: "ha" });
            const mineInHa = { topic: inHa.topic, payload: JSON.stringify(inHa.config) };
            await publishRetained(setup, [mineInHa, ...PYESS_LATEST.configs]);
            deepEqual(
              await remove(broker, { prefix: "ess", discoveryPrefix: "ha" }),
              Object.fromEntries([
                ...owned("ess", [mineInHa]),
                ...owned("pyess", PYESS_LATEST.configs),
              ]),
            );
            deepEqual(await retainedConfigs(broker), leftToOthers);
          },
        );
      } finally {
        await publishRetained(setup, strangers.map(({ topic }) => ({ topic, payload: "" })));
        await setup.close();
        await broker.close();
      }
    },
  });
}

Deno.test("publishRetained() names the broker it cannot reach", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  const mqtt = connectMqtt({ url: `mqtt://127.0.0.1:${port}`, clientId: "test-unreachable" });
  try {
    await rejects(publishRetained(mqtt, [], 300), (err: Error) => {
      ok(err instanceof EssError);
      match(
        err.message,
        /^Cannot reach the MQTT broker at mqtt:\/\/127\.0\.0\.1:\d+ within 0\.3 s/,
      );
      return true;
    });
  } finally {
    await mqtt.close();
  }
});
