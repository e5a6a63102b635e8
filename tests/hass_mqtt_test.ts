import { deepEqual, match, ok, rejects } from "node:assert/strict";
import { EssError } from "../lib/errors.ts";
import { buildDiscovery } from "../lib/hass/discovery.ts";
import { pyessConfigTopic } from "../lib/hass/pyess.ts";
import { publishRetained, removeDiscovery } from "../lib/hass/publish.ts";
import { connectMqtt } from "../lib/mqtt/client.ts";
import { BROKERS, type TestBroker, watch } from "./_broker.ts";

const ours = buildDiscovery({
  prefix: "ess",
  systeminfo: { pms: { serialno: "S1" } },
  published: new Set(["ess/home/statistics/bat_user_soc"]),
  origin: { version: "0.1.0" },
  fallbackId: "h",
});
const otherEss = buildDiscovery({
  prefix: "garage",
  systeminfo: { pms: { serialno: "S2" } },
  published: new Set(["garage/home/statistics/bat_user_soc"]),
  origin: { version: "0.1.0" },
  fallbackId: "h",
});
const pyess = (topic: string) => ({
  topic: pyessConfigTopic(topic),
  payload: JSON.stringify({ name: topic, state_topic: topic }),
});
const strangers = [
  {
    topic: "homeassistant/device/0x00158d0001/config",
    payload: '{"o":{"name":"Zigbee2MQTT"},"dev":{"ids":["z"]},"cmps":{}}',
  },
  { topic: "homeassistant/sensor/garden_temp/config", payload: '{"state_topic":"garden/temp"}' },
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

for (const { name, start, ignore } of BROKERS) {
  Deno.test({
    name: `removeDiscovery() clears ess's and pyess's configs only (${name})`,
    ignore,
    async fn() {
      const broker = await start();
      const setup = client(broker, "setup");
      const remover = client(broker, "remove");
      try {
        await publishRetained(setup, [
          { topic: ours.topic, payload: JSON.stringify(ours.config) },
          pyess("ess/common/BATT/soc"),
          ...strangers,
        ]);
        const cleared = await removeDiscovery(remover, {
          prefix: "ess",
          alsoClear: [pyessConfigTopic("ess/home/statistics/load_power")],
          quietMs: 200,
        });
        deepEqual(Object.fromEntries(cleared), {
          [ours.topic]: "ess",
          "homeassistant/sensor/esscommonBATTsoc/config": "pyess",
          "homeassistant/sensor/esshomestatisticsload_power/config": "listed",
        });
        deepEqual(await retainedConfigs(broker), strangers.map((s) => s.topic).sort());
      } finally {
        await setup.close();
        await remover.close();
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
