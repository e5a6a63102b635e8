/**
 * The bridge against odd input, with the fakes: device keys that cannot be topics, keys that
 * collide, a device that invents keys, empty values, and odd messages from the broker.
 */
import { deepEqual, equal, ok as assert } from "node:assert/strict";
import type { JsonObject } from "../lib/device/flatten.ts";
import { bridgeHarness, expectedLeaves, settle } from "./_bridge_fakes.ts";

const warnings = (lines: string[]) => lines.filter((l) => l.startsWith("warning"));

/** Keys no broker takes as a topic level, and why the bridge says so. */
const BAD_KEYS: [string, RegExp][] = [
  ["a\nb", /control character U\+000A/],
  ["nul\u0000", /control character U\+0000/],
  ["next\u0085line", /control character U\+0085/],
  ["not\uffffa char", /U\+FFFF, which is not a character/],
  ["lone\ud800", /lone surrogate U\+D800/],
  ["power#1", /wildcards/],
  ["a+b", /wildcards/],
  ["", /empty topic level/],
  ["x/", /empty topic level/],
  ["k".repeat(70_000), /70,0\d\d bytes long, more than MQTT's 65,535/],
];

Deno.test("Bridge.run() with device keys that cannot be topics", async (t) => {
  await t.step(
    "should skip each of them with one warning, and publish every other value",
    async () => {
      const h = bridgeHarness();
      const good = expectedLeaves(h.device);
      const statistics = h.device.states.home["statistics"] as JsonObject;
      for (const [key] of BAD_KEYS) statistics[key] = "1";
      h.start();
      await h.time.sleeping();
      for (let i = 0; i < 3; i++) await h.time.advance();
      const published = new Map(
        h.mqtt.sent.filter((m) => m.topic !== "ess/status").map((m) => [m.topic, m.payload]),
      );
      deepEqual(published, good);
      equal(h.mqtt.last("ess/status"), "online");
      const [unknown, ...more] = warnings(h.logger.lines).filter((l) =>
        /does not understand/.test(l)
      );
      const said = warnings(h.logger.lines).filter((l) => !/does not understand/.test(l));
      equal(more.length, 0, "fields ess does not understand are warned about once");
      assert(unknown !== undefined && unknown.length < 600, "and named in a bounded line");
      equal(said.length, BAD_KEYS.length, said.join("\n"));
      for (const [key, why] of BAD_KEYS) {
        assert(said.some((l) => why.test(l)), `${JSON.stringify(key.slice(0, 20))}: ${why}`);
      }
      assert(said.every((l) => l.length < 400), "a 70,000-character key is cut in the log");
      const raw = ["\n", "\u0000", "\u0085", "\uffff"];
      assert(
        [...said, unknown].every((l) => raw.every((c) => !l.includes(c))),
        "no raw control characters",
      );
      await h.stop();
    },
  );

  await t.step("should remember at most 256 bad keys of a device that invents them", async () => {
    const h = bridgeHarness({ intervalMs: 1000 });
    let n = 0;
    const read = h.device.read.bind(h.device);
    h.device.read = async (state) => {
      const answer = await read(state);
      if (state === "home") answer[`bad#${n++}`] = "1";
      return answer;
    };
    h.start();
    await h.time.sleeping();
    for (let i = 0; i < 300; i++) await h.time.advance();
    const said = warnings(h.logger.lines).filter((l) => !/does not understand/.test(l));
    equal(said.length, 257);
    assert(/more than 256 odd values from the device/.test(said.at(-1)!), String(said.at(-1)));
    await h.stop();
  });

  await t.step(
    "should publish the first of two values for one topic, with one warning",
    async () => {
      const h = bridgeHarness();
      h.device.states.home = { "a/b": "1", a: { b: "2", c: "3" } };
      h.start();
      await h.time.sleeping();
      await h.time.advance();
      await h.time.advance();
      deepEqual(
        h.mqtt.sent.filter((m) => m.topic.startsWith("ess/home/")).map((m) =>
          `${m.topic} ${m.payload}`
        ),
        ["ess/home/a/b 1", "ess/home/a/c 3"],
      );
      const said = warnings(h.logger.lines).filter((l) => !/does not understand/.test(l));
      equal(said.length, 1, said.join("\n"));
      assert(said[0]!.includes('two values for "ess/home/a/b"'), String(said[0]));
      await h.stop();
    },
  );
});

Deno.test("Bridge.run() with keys the device stops sending", async (t) => {
  await t.step("should stop republishing a topic not sent for 5 polls", async () => {
    const h = bridgeHarness({ publishMode: "all" });
    let n = 0;
    const read = h.device.read.bind(h.device);
    h.device.read = async (state) => {
      const answer = await read(state);
      if (state === "home") answer["extra"] = { [`k${n++}`]: "1" };
      return answer;
    };
    h.start();
    await h.time.sleeping();
    for (let i = 0; i < 20; i++) await h.time.advance();
    h.mqtt.take();
    await h.time.advance();
    const extra = h.mqtt.take().filter((m) => m.topic.startsWith("ess/home/extra/"));
    deepEqual(extra.map((m) => m.topic), ["ess/home/extra/k21"], "only what the poll sent");
    h.mqtt.drop();
    h.mqtt.connect();
    await settle();
    const republished = h.mqtt.take().filter((m) => m.topic.startsWith("ess/home/extra/"));
    deepEqual(
      republished.map((m) => m.topic),
      [
        "ess/home/extra/k17",
        "ess/home/extra/k18",
        "ess/home/extra/k19",
        "ess/home/extra/k20",
        "ess/home/extra/k21",
      ],
      "a reconnect republishes the last 5 polls' keys, not all 22",
    );
    await h.stop();
  });

  await t.step("should hold at most maxTopics topics, with one warning", async () => {
    const h = bridgeHarness({ maxTopics: 40 });
    let n = 0;
    const read = h.device.read.bind(h.device);
    h.device.read = async (state) => {
      const answer = await read(state);
      if (state === "home") {
        answer["extra"] = Object.fromEntries(Array.from({ length: 100 }, () => [`k${n++}`, "1"]));
      }
      return answer;
    };
    h.start();
    await h.time.sleeping();
    for (let i = 0; i < 3; i++) await h.time.advance();
    const topics = new Set(h.mqtt.sent.map((m) => m.topic).filter((t) => t !== "ess/status"));
    assert(topics.size <= 40, String(topics.size));
    assert(topics.has("ess/home/statistics/load_power"), "the device's own values come first");
    const said = warnings(h.logger.lines).filter((l) => !/does not understand/.test(l));
    equal(said.length, 1);
    assert(/more than 40 different values/.test(said[0]!), String(said[0]));
    await h.stop();
  });
});

Deno.test("Bridge.run() with empty values", async (t) => {
  await t.step(
    "should publish an empty value without retain, so the topic is not deleted",
    async () => {
      const h = bridgeHarness();
      h.device.states.batt["backupmode"] = "";
      h.start();
      await h.time.sleeping();
      deepEqual(h.mqtt.sent.find((m) => m.topic === "ess/batt/backupmode"), {
        topic: "ess/batt/backupmode",
        payload: "",
        retain: false,
        qos: 0,
      });
      h.device.states.batt["backupmode"] = "on";
      h.mqtt.deliver("ess/control/winter_mode", "on");
      await settle();
      deepEqual(h.mqtt.sent.findLast((m) => m.topic === "ess/batt/backupmode"), {
        topic: "ess/batt/backupmode",
        payload: "on",
        retain: true,
        qos: 0,
      });
      await h.stop();
    },
  );
});

Deno.test("Bridge.run() with odd messages from the broker", async (t) => {
  await t.step("should quote a 300 KB payload in a short log line", async () => {
    const h = bridgeHarness();
    h.start();
    await h.time.sleeping();
    h.mqtt.deliver("ess/control/active", "x".repeat(300_000));
    h.mqtt.deliver("ess/control/winter_mode", "y".repeat(300_000), true);
    await settle();
    const said = warnings(h.logger.lines);
    equal(said.length, 2);
    for (const line of said) {
      assert(line.length < 300, `${line.length} characters`);
      assert(line.includes("… (300,000 characters)"), line);
    }
    deepEqual(h.device.calls, []);
    await h.stop();
  });

  await t.step("should warn about a retained command once, however often it comes", async () => {
    const h = bridgeHarness();
    h.start();
    await h.time.sleeping();
    for (let i = 0; i < 3; i++) {
      h.mqtt.drop();
      h.mqtt.connect();
      h.mqtt.deliver("ess/control/active", "false", true);
    }
    h.time.now += 60_000;
    h.mqtt.deliver("ess/control/active", "true", true);
    await settle();
    const said = warnings(h.logger.lines).filter((l) => /retained/.test(l));
    equal(said.length, 2, said.join("\n"));
    deepEqual(h.device.calls, []);
    await h.stop();
  });

  await t.step(
    "should warn about retained commands that keep changing once a minute per topic",
    async () => {
      const h = bridgeHarness();
      h.start();
      await h.time.sleeping();
      const values = ["true", "false", "1"];
      for (let i = 0; i < 100_000; i++) {
        h.mqtt.deliver("ess/control/active", values[i % 3]!, true);
        h.mqtt.deliver("ess/control/fastcharge", values[i % 2]!, true);
      }
      await settle();
      deepEqual(
        warnings(h.logger.lines).map((l) => l.replace(/ on .*/, "")),
        [
          'warning: ignoring the retained message "true"',
          'warning: ignoring the retained message "true"',
        ],
        "one per topic",
      );
      h.time.now += 60_000;
      h.mqtt.deliver("ess/control/active", "0", true);
      await settle();
      const said = warnings(h.logger.lines);
      equal(said.length, 3);
      assert(
        said[2]!.endsWith(
          "(and 99,999 more on this topic in the last 60 s, not each warned about)",
        ),
        String(said[2]),
      );
      deepEqual(h.device.calls, []);
      await h.stop();
    },
  );

  await t.step(
    "should warn about a connection that keeps dropping once, and pass on the client's warnings",
    async () => {
      const h = bridgeHarness();
      h.start();
      await h.time.sleeping();
      for (let i = 0; i < 5; i++) {
        h.mqtt.drop("the broker closed the connection");
        h.time.now += 2000;
        h.mqtt.connect();
      }
      h.mqtt.warn("another client with the id ess-1 is probably connected");
      await settle();
      deepEqual(warnings(h.logger.lines), [
        "warning: lost the connection to mqtt://broker.test:1883: the broker closed the " +
        "connection; reconnecting",
        "warning: another client with the id ess-1 is probably connected",
      ]);
      h.time.now += 120_000;
      h.mqtt.drop("connection reset");
      equal(warnings(h.logger.lines).length, 3, "a loss after a stable connection is news");
      await h.stop();
    },
  );
});
