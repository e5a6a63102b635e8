/**
 * `ess hass`: announce the battery to Home Assistant once, print the announcement, or remove
 * everything ess (and pyess before it) announced.
 *
 * @module
 */
import { errorText, EssError, UsageError } from "../lib/errors.ts";
import { labelledLogger } from "../lib/log.ts";
import { VERSION } from "../lib/version.ts";
import type { JsonObject } from "../lib/device/flatten.ts";
import { buildDiscovery, type Discovery, type DiscoveryInput } from "../lib/hass/discovery.ts";
import { publishRetained, removeDiscovery } from "../lib/hass/publish.ts";
import { connectMqtt } from "../lib/mqtt/client.ts";
import { normalise } from "../lib/model/normalise.ts";
import { READING_TOPIC, readingTopics } from "../lib/model/topics.ts";
import { devicePrefix, PUBLISHED_STATES } from "../lib/mqtt/topics.ts";
import { defineCommand, DEVICE_OPTIONS, GENERAL_OPTIONS } from "./_cli.ts";
import { openDevice } from "./_device.ts";
import { daemonDevices } from "./_devices.ts";
import {
  HASS_OPTIONS,
  hassSettings,
  MQTT_OPTIONS,
  mqttConnectOptions,
  topicPrefix,
} from "./_mqtt.ts";

const command = defineCommand({
  name: "hass",
  usage: "hass [--print | --remove] [options]",
  description: [
    "Announces the battery to Home Assistant by MQTT discovery, once, and exits: one device",
    "(homeassistant/device/ess_<serial>/config, retained) with sensors for SOC, power flows,",
    "energy sums, voltages and flags, and switches, a select and a number for the controls, all",
    "reading the topics 'ess mqtt' publishes. 'ess mqtt' does this by itself (unless --no-hass);",
    "this command is for checking what it announces and for cleaning up.",
    "  (no option)  read the device, then publish the announcement and clear the configs pyess",
    "               announced for hass_autoconfig_sensors",
    "  --print      read the device and print the announcement (topic, then JSON); no broker",
    "  --remove     clear every config this ess (same --mqtt-prefix) or pyess left on the",
    "               broker; no device. Stop 'ess mqtt' first, or it announces again.",
    "With --once, the announcement is the one 'ess mqtt --once' makes: no availability topic,",
    "sensors that expire after --hass-expire-after seconds without a new value.",
    "A config with [device NAME] sections announces (or prints) every device: one Home",
    "Assistant device each, 'LG ESS NAME', reading <prefix>/NAME/...; one that cannot be read",
    "is named, and the command exits 1 after announcing the others. --remove clears them all.",
  ].join("\n"),
  options: [
    { name: "print", type: "boolean", help: "print the announcement instead", config: false },
    { name: "remove", type: "boolean", help: "remove ess's and pyess's configs", config: false },
    {
      name: "once",
      type: "boolean",
      help: "announce as 'ess mqtt --once' does (for cron)",
      group: "Home Assistant",
    },
    ...HASS_OPTIONS,
    ...DEVICE_OPTIONS,
    ...MQTT_OPTIONS,
    ...GENERAL_OPTIONS,
  ],
  examples: [
    "ess hass --config /etc/essmqtt.conf",
    "ess hass --host 192.168.1.20 --password a1b2c3d4e5f6 --print",
    "ess hass --config /etc/essmqtt.conf --remove",
  ],
  async run(p, io) {
    if (p.flag("print") && p.flag("remove")) {
      throw new UsageError("--print and --remove do not go together");
    }
    const prefix = topicPrefix(p);
    const hass = hassSettings(p);
    const { discoveryPrefix, pyessTopics } = hass;

    if (p.flag("remove")) {
      const mqtt = connectMqtt(await mqttConnectOptions(p, undefined));
      try {
        const devicePrefixes = p.devices.map((d) => devicePrefix(prefix, d.name));
        const cleared = await removeDiscovery(mqtt, {
          prefix,
          devicePrefixes,
          discoveryPrefix,
          pyessTopics,
        });
        for (const [topic, owner] of cleared) io.out(`cleared ${topic} (${owner})\n`);
        io.out(`cleared ${cleared.size} discovery configs on ${mqtt.broker}\n`);
      } finally {
        await mqtt.close();
      }
      return 0;
    }

    const views = daemonDevices(p);
    const devices = views === undefined
      ? [{ name: undefined, p, prefix }]
      : views.map((v) => ({ name: v.name, p: v.p, prefix: devicePrefix(prefix, v.name) }));
    const results = await Promise.allSettled(devices.map((d) =>
      readDiscovery(d.p, {
        ...hass,
        ...hassSettings(d.p),
        prefix: d.prefix,
        named: d.name === undefined ? undefined : { name: d.name, processPrefix: prefix },
      })
    ));
    const discoveries: Discovery[] = [];
    const failed: string[] = [];
    results.forEach((result, i) => {
      const name = devices[i]!.name;
      if (result.status === "fulfilled") discoveries.push(result.value);
      else if (name === undefined) throw result.reason;
      else {
        failed.push(name);
        labelledLogger(p.log, name).error(errorText(result.reason));
      }
    });
    const unknown = discoveries[0]?.unknownSensors ?? [];
    if (unknown.length > 0) {
      p.log.warning(
        `hass_autoconfig_sensors: no entity for ${unknown.join(", ")} ` +
          "(not a known field, or not published)",
      );
    }
    if (p.flag("print")) {
      for (const d of discoveries) io.out(`${d.topic}\n${JSON.stringify(d.config, null, 2)}\n`);
    } else if (discoveries.length > 0) {
      const mqtt = connectMqtt(await mqttConnectOptions(p, undefined));
      try {
        await publishRetained(mqtt, [
          ...discoveries.map((d) => ({ topic: d.topic, payload: JSON.stringify(d.config) })),
          ...pyessTopics.map((topic) => ({ topic, payload: "" })),
        ]);
        for (const d of discoveries) {
          io.out(`announced ${d.announced.length} entities on ${d.topic} (${mqtt.broker})\n`);
        }
        if (pyessTopics.length > 0) {
          io.out(
            `cleared pyess's configs for hass_autoconfig_sensors: ${pyessTopics.length} topics\n`,
          );
        }
      } finally {
        await mqtt.close();
      }
    }
    if (failed.length === 0) return 0;
    throw new EssError(
      `${p.flag("print") ? "printed" : "announced"} ${discoveries.length} of ${devices.length} ` +
        `devices; not ${failed.join(", ")} (see above)`,
    );
  },
});

/**
 * Reads one device and builds its announcement, for exactly the reading topics 'ess mqtt'
 * publishes for it (under `input.prefix`), which the entities read.
 */
async function readDiscovery(
  p: Parameters<typeof openDevice>[0],
  input: Omit<DiscoveryInput, "systeminfo" | "published" | "origin" | "reading">,
): Promise<Discovery> {
  const session = await openDevice(p);
  let data: Record<string, JsonObject>;
  try {
    data = await session.client.readAll(["systeminfo", ...PUBLISHED_STATES]);
  } finally {
    session.close();
  }
  const reading = normalise(data);
  const published = new Set(
    readingTopics(reading).map(([path]) => `${input.prefix}/${READING_TOPIC}/${path}`),
  );
  return buildDiscovery({
    ...input,
    systeminfo: data["systeminfo"] ?? {},
    published,
    origin: { version: VERSION },
    reading,
  });
}

export default command;
