import { deepEqual, match, ok, rejects } from "@std/assert";
import { EssError } from "../lib/errors.ts";
import { buildDiscovery, pyessConfigTopic } from "../lib/hass.ts";
import { publishRetained, removeDiscovery } from "../lib/hass_mqtt.ts";
import { connectMqtt } from "../lib/mqtt.ts";
import { brokers, client, retained, startBroker } from "./_broker.ts";

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

for (const { name, skip } of await brokers()) {
  Deno.test({
    name: `removeDiscovery() clears ess's and pyess's configs only (${name}${
      skip ? `: ${skip}` : ""
    })`,
    ignore: skip !== undefined,
    async fn() {
      const broker = await startBroker(name);
      const setup = client(broker.url, "setup");
      const remover = client(broker.url, "remove");
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
        const left = await retained(broker.url, "homeassistant/#");
        deepEqual([...left.keys()].sort(), strangers.map((s) => s.topic).sort());
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
