import { deepEqual, equal, match, ok as assert, rejects } from "node:assert/strict";
import {
  BAD_COMMAND_WARNING_MS,
  type BridgeContext,
  type BridgePlugin,
} from "../lib/mqtt/bridge.ts";
import { parseControl } from "../lib/device/controls.ts";
import { BadAnswerError, WrongPasswordError } from "../lib/errors.ts";
import { flatten } from "../lib/device/flatten.ts";
import { topicMatches } from "../lib/mqtt/topics.ts";
import { CONTROL_NAMES } from "../lib/device/controls.ts";
import { bridgeHarness, expectedLeaves, FakeDevice, settle } from "./_bridge_fakes.ts";

Deno.test("Bridge.run() publishing", async (t) => {
  await t.step(
    "should publish every leaf of home, common and batt, retained, then status online",
    async () => {
      const h = bridgeHarness();
      h.start();
      equal(await h.time.sleeping(), 10_000);
      await settle();
      const sent = h.mqtt.take();
      const leaves = expectedLeaves(h.device);
      equal(sent.length, leaves.size + 1, "each value once, then the status");
      deepEqual(
        new Map(sent.filter((m) => m.topic !== "ess/status").map((m) => [m.topic, m.payload])),
        leaves,
      );
      assert(sent.every((m) => m.retain));
      assert(leaves.get("ess/common/PV/pv1_voltage") === "231.500000", "device text unchanged");
      equal(leaves.get("ess/batt/alg_setting"), "0", "batt under its own state name");
      deepEqual(sent.at(-1), { topic: "ess/status", payload: "online", retain: true, qos: 1 });
      await h.stop();
    },
  );

  await t.step("should publish only changed values, and everything every republishMs", async () => {
    const h = bridgeHarness({ republishMs: 60_000 });
    h.start();
    await h.time.sleeping();
    h.mqtt.take();
    (h.device.states.home["statistics"] as Record<string, string>)["load_power"] = "999";
    await h.time.advance();
    deepEqual(h.mqtt.take().map((m) => `${m.topic} ${m.payload}`), [
      "ess/home/statistics/load_power 999",
      "ess/reading/power/load 999",
    ]);
    for (let i = 0; i < 4; i++) await h.time.advance();
    equal(h.mqtt.take().length, 0, "nothing changed within the minute");
    await h.time.advance();
    equal(h.mqtt.take().length, expectedLeaves(h.device).size, "full republish after 60 s");
    await h.stop();
  });

  await t.step("should publish everything every cycle with publish mode all", async () => {
    const h = bridgeHarness({ publishMode: "all" });
    h.start();
    await h.time.sleeping();
    h.mqtt.take();
    await h.time.advance();
    const reading = [...expectedLeaves(h.device).keys()].filter((t) =>
      t.startsWith("ess/reading/")
    );
    equal(
      h.mqtt.take().length,
      flatten(h.device.states.home).length + flatten(h.device.states.common).length +
        reading.length,
      "every leaf of what was read (batt is read about once a minute), and the reading",
    );
    await h.stop();
  });

  await t.step("should read the batt settings about once a minute", async () => {
    const h = bridgeHarness({ intervalMs: 10_000 });
    h.start();
    await h.time.sleeping();
    for (let i = 0; i < 12; i++) await h.time.advance();
    const cycles = h.device.reads.join(" ").split(/ ?(?=home)/);
    equal(cycles.length, 13);
    const battCycles = cycles.flatMap((reads, cycle) => reads.includes("batt") ? [cycle] : []);
    deepEqual(battCycles, [0, 6, 12]);
    await h.stop();
  });

  await t.step("should read common only every commonDivisor-th cycle", async () => {
    const h = bridgeHarness({ commonDivisor: 3, publishMode: "all" });
    h.start();
    await h.time.sleeping();
    for (let i = 0; i < 5; i++) await h.time.advance();
    deepEqual(
      h.device.reads.join(" "),
      "home common batt home home home common home home",
    );
    const commonTopics = h.mqtt.sent.filter((m) => m.topic.startsWith("ess/common/"));
    equal(commonTopics.length, 2 * flatten(h.device.states.common).length);
    const battTopics = h.mqtt.sent.filter((m) => m.topic.startsWith("ess/batt/"));
    equal(battTopics.length, flatten(h.device.states.batt).length);
    const homeTopics = h.mqtt.sent.filter((m) => m.topic.startsWith("ess/home/"));
    equal(homeTopics.length, 6 * flatten(h.device.states.home).length);
    await h.stop();
  });

  await t.step(
    "should keep the poll rate fixed: the wait is the interval less the poll",
    async () => {
      const h = bridgeHarness();
      const read = h.device.read.bind(h.device);
      h.device.read = (state) => {
        h.time.now += 1500;
        return read(state);
      };
      h.start();
      // Three reads (home, common, batt) of 1.5 s each.
      equal(await h.time.sleeping(), 5_500);
      await h.stop();
    },
  );

  await t.step("should not retain state with retain false, but still retain status", async () => {
    const h = bridgeHarness({ retain: false });
    h.start();
    await h.time.sleeping();
    const sent = h.mqtt.take();
    assert(sent.filter((m) => m.topic !== "ess/status").every((m) => !m.retain));
    assert(sent.find((m) => m.topic === "ess/status")?.retain);
    await h.stop();
  });

  await t.step("should publish each state as one JSON document at ess/json/<state>", async () => {
    const h = bridgeHarness({ json: true });
    h.start();
    await h.time.sleeping();
    deepEqual(JSON.parse(h.mqtt.last("ess/json/home")!), h.device.states.home);
    deepEqual(JSON.parse(h.mqtt.last("ess/json/common")!), h.device.states.common);
    deepEqual(JSON.parse(h.mqtt.last("ess/json/batt")!), h.device.states.batt);
    h.mqtt.take();
    await h.time.advance();
    equal(h.mqtt.last("ess/json/home"), undefined, "unchanged: not published again");
    await h.stop();
  });
});

Deno.test("Bridge.run() controls", async (t) => {
  const cases: [string, string, string][] = [
    ["ess/control/active", "false", "operation stop"],
    ["ess/control/active", "STOP", "operation stop"],
    ["ess/control/active", "On", "operation start"],
    ["ess/control/active", "start", "operation start"],
    ["ess/control/winter_mode", "true", "wintermode on"],
    ["ess/control/winter_mode", "0", "wintermode off"],
    ["ess/control/fastcharge", "TRUE", "fastcharge on"],
    ["ess/control/fastcharge", "off", "fastcharge off"],
    ["ess/control/charge_strategy", "weather_forecast", "strategy weather-forecast"],
    ["ess/control/charge_strategy", "battery-care", "strategy battery-care"],
    ["ess/control/charge_strategy", "FAST_CHARGE", "strategy fast-charge"],
    ["ess/control/backup_mode", "on", "backup on"],
    ["ess/control/backup_soc", "35", "backup off 35"],
    ["/ess/control/active", "false", "operation stop"],
    ["/ess/control/winter_mode", "true", "wintermode on"],
    ["/ess/control/fastcharge", "1", "fastcharge on"],
  ];
  for (const [topic, payload, call] of cases) {
    await t.step(`should turn ${topic} ${payload} into ${call}`, async () => {
      const h = bridgeHarness();
      h.start();
      await h.time.sleeping();
      h.mqtt.deliver(topic, payload);
      await settle();
      deepEqual(h.device.calls, [call]);
      await h.stop();
    });
  }

  await t.step("should subscribe to every control and the three legacy topics", async () => {
    const h = bridgeHarness();
    h.start();
    await h.time.sleeping();
    deepEqual(h.mqtt.subscriptions, [[
      ...CONTROL_NAMES.map((n) => `ess/control/${n}`),
      "/ess/control/active",
      "/ess/control/winter_mode",
      "/ess/control/fastcharge",
    ]]);
    await h.stop();
  });

  await t.step("should read back and publish the new state at once after a command", async () => {
    const h = bridgeHarness();
    h.start();
    await h.time.sleeping();
    h.mqtt.take();
    h.mqtt.deliver("ess/control/winter_mode", "true");
    await settle();
    deepEqual(h.mqtt.take().map((m) => `${m.topic} ${m.payload}`), [
      "ess/home/wintermode/winter_status on",
      "ess/common/BATT/winter_setting on",
      "ess/batt/winter_setting on",
      "ess/reading/status/winter_active on",
      "ess/reading/settings/winter_mode on",
    ]);
    await h.stop();
  });

  for (
    const [topic, payload, published] of [
      ["ess/control/fastcharge", "on", [
        "ess/batt/alg_setting 1",
        "ess/reading/settings/charge_strategy fast_charge",
      ]],
      ["ess/control/charge_strategy", "weather_forecast", [
        "ess/batt/alg_setting 2",
        "ess/reading/settings/charge_strategy weather_forecast",
      ]],
      ["ess/control/backup_mode", "on", [
        "ess/batt/backup_setting on",
        "ess/reading/settings/backup_mode on",
      ]],
      ["ess/control/backup_soc", "45", [
        "ess/batt/backup_soc 45",
        "ess/reading/settings/backup_reserve 45",
      ]],
    ] as const
  ) {
    await t.step(
      `should publish the new batt setting at once after ${topic} ${payload}`,
      async () => {
        const h = bridgeHarness();
        h.start();
        await h.time.sleeping();
        h.mqtt.take();
        h.mqtt.deliver(topic, payload);
        await settle();
        deepEqual(h.mqtt.take().map((m) => `${m.topic} ${m.payload}`), published);
        deepEqual(h.device.reads.slice(-3), ["home", "common", "batt"]);
        await h.stop();
      },
    );
  }

  for (
    const [topic, payload] of [
      ["ess/control/active", "maybe"],
      ["ess/control/winter_mode", "yes please"],
      ["ess/control/charge_strategy", "cheapest"],
      ["ess/control/backup_soc", "101"],
      ["ess/control/backup_soc", "-1"],
      ["ess/control/backup_soc", "12.5"],
    ] as const
  ) {
    await t.step(`should warn once and send nothing for ${topic} ${payload}`, async () => {
      const h = bridgeHarness();
      h.start();
      await h.time.sleeping();
      h.logger.lines.length = 0;
      h.mqtt.deliver(topic, payload);
      await settle();
      deepEqual(h.device.calls, []);
      equal(h.logger.lines.filter((l) => l.startsWith("warning")).length, 1);
      assert(h.logger.lines[0]!.includes("nothing sent to the device"), String(h.logger.lines[0]));
      await h.time.advance();
      equal(h.mqtt.last("ess/status"), "online", "the bridge lives on");
      await h.stop();
    });
  }

  await t.step("should warn of a flood of bad commands once a minute per topic", async () => {
    const h = bridgeHarness();
    h.start();
    await h.time.sleeping();
    h.logger.lines.length = 0;
    const warnings = () => h.logger.lines.filter((l) => l.startsWith("warning"));
    for (let i = 0; i < 1000; i++) h.mqtt.deliver("ess/control/active", `maybe ${i}`);
    h.mqtt.deliver("ess/control/winter_mode", "perhaps");
    await settle();
    deepEqual(warnings(), [
      'warning: ignoring "maybe 0" on ess/control/active: expected true/false, on/off, yes/no, ' +
      "1/0 (also y/n, t/f) or start/stop; nothing sent to the device",
      'warning: ignoring "perhaps" on ess/control/winter_mode: expected true/false, on/off, ' +
      "yes/no, 1/0 (also y/n, t/f); nothing sent to the device",
    ]);
    h.time.now += BAD_COMMAND_WARNING_MS;
    h.mqtt.deliver("ess/control/active", "maybe again");
    await settle();
    match(
      warnings().at(-1)!,
      /"maybe again" .* nothing sent to the device \(and 999 more on this topic in the last 60 s, not each warned about\)$/,
    );
    equal(warnings().length, 3);
    deepEqual(h.device.calls, []);
    await h.stop();
  });

  await t.step("should never act on a retained command", async () => {
    const h = bridgeHarness();
    h.start();
    await h.time.sleeping();
    h.mqtt.deliver("ess/control/active", "false", true);
    await settle();
    deepEqual(h.device.calls, []);
    assert(h.logger.lines.some((l) => /retained/.test(l)));
    await h.stop();
  });

  await t.step("should ignore an empty message (clearing a retained command)", async () => {
    const h = bridgeHarness();
    h.start();
    await h.time.sleeping();
    h.logger.lines.length = 0;
    h.mqtt.deliver("ess/control/active", "");
    await settle();
    deepEqual(h.device.calls, []);
    equal(h.logger.lines.filter((l) => !l.startsWith("debug")).length, 0);
    await h.stop();
  });

  await t.step("should log a failed command and go on", async () => {
    const h = bridgeHarness();
    h.start();
    await h.time.sleeping();
    h.device.setFastCharge = () => Promise.reject(new Error("refused"));
    h.mqtt.deliver("ess/control/fastcharge", "on");
    await settle();
    assert(h.logger.lines.some((l) => /warning: ess\/control\/fastcharge: .*refused/.test(l)));
    await h.time.advance();
    await h.stop();
  });

  await t.step("should not let a poll publish stale data after a command", async () => {
    const h = bridgeHarness();
    h.start();
    await h.time.sleeping();
    h.mqtt.take();
    let open!: () => void;
    h.device.gate = new Promise((resolve) => open = resolve);
    h.time.advance();
    await settle();
    // The poll is reading now; the command comes in meanwhile.
    h.mqtt.deliver("ess/control/active", "off");
    await settle();
    deepEqual(h.device.calls, [], "the command waits for the poll");
    h.device.gate = undefined;
    open();
    await settle();
    deepEqual(h.device.calls, ["operation stop"]);
    equal(h.mqtt.last("ess/home/operation/status"), "stop");
    await h.stop();
  });
});

Deno.test("Bridge.run() staying up", async (t) => {
  await t.step("should back off while the device is unreachable, logging once", async () => {
    const h = bridgeHarness();
    h.device.unplug();
    h.start();
    const delays = [await h.time.sleeping()];
    for (let i = 0; i < 9; i++) delays.push(await h.time.advance());
    equal(h.mqtt.last("ess/status"), "offline");
    for (const [i, d] of delays.entries()) {
      const nominal = Math.min(60_000, 10_000 * 2 ** i);
      assert(
        d >= nominal / 2 && d <= nominal,
        `delay ${i}: ${d} not in the upper half of ${nominal}`,
      );
    }
    equal(Math.max(...delays) <= 60_000, true, "capped at 1 min");
    equal(
      h.logger.lines.filter((l) => l.startsWith("warning")).length,
      1,
      h.logger.lines.join("\n"),
    );
    h.device.failure = undefined;
    equal(await h.time.advance(), 10_000);
    equal(h.mqtt.last("ess/status"), "online");
    assert(h.logger.lines.some((l) => /answers again \(after 10 failed tries\)/.test(l)));
    await h.stop();
  });

  await t.step(
    "should go offline only after three failed polls over 30 s, and online at once after",
    async () => {
      const h = bridgeHarness();
      h.start();
      await h.time.sleeping();
      const lastAnswer = h.time.now;
      h.device.unplug();
      let failures = 0;
      while (h.mqtt.last("ess/status") === "online") {
        assert(h.time.now - lastAnswer < 600_000, "still online after 10 minutes without answers");
        await h.time.advance();
        failures++;
        if (h.mqtt.last("ess/status") === "online") {
          assert(failures < 3 || h.time.now - lastAnswer < 30_000, `still online: ${failures}`);
        }
      }
      equal(h.mqtt.last("ess/status"), "offline");
      assert(failures >= 3, `offline after ${failures} failures`);
      assert(h.time.now - lastAnswer >= 30_000, "offline only once the last answer is 30 s old");
      h.device.failure = undefined;
      await h.time.advance();
      equal(h.mqtt.last("ess/status"), "online");
      await h.stop();
    },
  );

  await t.step("should stay online through one failed poll (a 502 page)", async () => {
    const h = bridgeHarness();
    h.start();
    await h.time.sleeping();
    h.device.failure = new BadAnswerError("ess.test", "Reading home", 502, "<html>502</html>");
    await h.time.advance();
    h.device.failure = undefined;
    await h.time.advance();
    await h.time.advance();
    deepEqual(
      h.mqtt.sent.filter((m) => m.topic === "ess/status").map((m) => m.payload),
      ["online"],
    );
    equal(
      h.logger.lines.filter((l) => l.startsWith("warning")).length,
      0,
      h.logger.lines.join("\n"),
    );
    assert(h.logger.lines.some((l) => /^info: cannot read the device: Reading home/.test(l)));
    await h.stop();
  });

  await t.step("should end with a wrong password after publishing offline", async () => {
    const h = bridgeHarness();
    h.device.failure = new WrongPasswordError("ess.test");
    await rejects(h.start(), WrongPasswordError);
    deepEqual(h.mqtt.sent.at(-1), {
      topic: "ess/status",
      payload: "offline",
      retain: true,
      qos: 1,
    });
    assert(h.mqtt.closed);
  });

  await t.step("should end with a wrong password met by a command", async () => {
    const h = bridgeHarness();
    const running = h.start();
    await h.time.sleeping();
    h.device.setOperation = () => Promise.reject(new WrongPasswordError("ess.test"));
    h.mqtt.deliver("ess/control/active", "on");
    await rejects(running, WrongPasswordError);
  });

  await t.step("should resubscribe and republish status and state after a reconnect", async () => {
    const h = bridgeHarness();
    h.start();
    await h.time.sleeping();
    h.mqtt.drop();
    h.mqtt.take();
    h.mqtt.connect();
    await settle();
    equal(h.mqtt.subscriptions.length, 2);
    const sent = h.mqtt.take();
    deepEqual(sent.at(-1), { topic: "ess/status", payload: "online", retain: true, qos: 1 });
    equal(sent.length, 1 + expectedLeaves(h.device).size, "each value once, then the status");
    assert(h.logger.lines.some((l) => /lost the connection to mqtt:\/\/broker.test:1883/.test(l)));
    await h.stop();
  });

  await t.step("should poll while the broker is away and publish on connect", async () => {
    const h = bridgeHarness({}, false);
    h.start();
    await h.time.sleeping();
    h.mqtt.drop("connection refused");
    h.mqtt.drop("connection refused");
    equal(h.logger.lines.filter((l) => l.startsWith("warning")).length, 1, "logged once");
    h.mqtt.connect();
    await settle();
    equal(h.mqtt.last("ess/status"), "online");
    equal(h.mqtt.last("ess/home/statistics/load_power"), "410");
    await h.stop();
  });

  await t.step("should publish offline and close when stopped", async () => {
    const h = bridgeHarness();
    h.start();
    await h.time.sleeping();
    await h.stop();
    deepEqual(h.mqtt.sent.at(-1), {
      topic: "ess/status",
      payload: "offline",
      retain: true,
      qos: 1,
    });
    assert(h.mqtt.closed);
  });

  await t.step("should stop at once even while a device request hangs", async () => {
    const h = bridgeHarness();
    h.device.gate = new Promise(() => {});
    h.start();
    await settle();
    await h.stop();
    assert(h.mqtt.closed);
    equal(h.mqtt.last("ess/status"), "offline");
  });
});

Deno.test("Bridge.run() once", async (t) => {
  await t.step("should poll home, common and batt once, publish, and return", async () => {
    const h = bridgeHarness({ once: true }, false);
    const running = h.start();
    await h.time.sleeping();
    h.mqtt.connect();
    await running;
    deepEqual(h.device.reads, ["home", "common", "batt"]);
    equal(h.mqtt.sent.length, expectedLeaves(h.device).size);
    equal(h.mqtt.last("ess/status"), undefined, "no availability for a one-shot run");
    assert(h.mqtt.closed);
  });

  await t.step("should fail when the broker cannot be reached in time", async () => {
    const h = bridgeHarness({ once: true, connectTimeoutMs: 5000 }, false);
    const running = h.start();
    await h.time.sleeping();
    h.time.advance();
    await rejects(running, /Cannot reach the MQTT broker at mqtt:\/\/broker.test:1883 within 5 s/);
  });

  await t.step("should fail when the device cannot be reached", async () => {
    const h = bridgeHarness({ once: true });
    h.device.unplug();
    await rejects(h.start(), /connection refused/);
  });
});

Deno.test("Bridge plugins", async (t) => {
  await t.step(
    "should subscribe, call onConnect after the republish, route messages, stop",
    async () => {
      const events: string[] = [];
      let seen: ReadonlySet<string> = new Set();
      const plugin: BridgePlugin = {
        subscriptions: ["homeassistant/status"],
        async onConnect(ctx: BridgeContext) {
          events.push(`connect ${ctx.prefix}`);
          seen = new Set(ctx.publishedTopics());
          events.push(`alg_setting ${ctx.lastValue("ess/batt/alg_setting")}`);
          await ctx.publish("homeassistant/sensor/x/config", "{}", { retain: true });
          events.push(`read ${Object.keys(await ctx.read("batt")).length}`);
        },
        onMessage(topic, payload, retained) {
          events.push(`message ${topic} ${payload} ${retained}`);
        },
        onStop(ctx) {
          events.push("stop");
          return ctx.publish("ess/plugin", "bye");
        },
      };
      const h = bridgeHarness({ plugins: [plugin] }, false);
      h.start();
      await h.time.sleeping();
      h.mqtt.connect();
      await settle();
      assert(h.mqtt.subscriptions[0]!.includes("homeassistant/status"));
      assert(seen.has("ess/home/statistics/load_power"), "state published before onConnect");
      equal(seen.size, expectedLeaves(h.device).size);
      deepEqual(h.mqtt.sent.at(-1), {
        topic: "homeassistant/sensor/x/config",
        payload: "{}",
        retain: true,
        qos: 0,
      });
      h.mqtt.deliver("homeassistant/status", "online", true);
      h.mqtt.deliver("ess/other", "x");
      await settle();
      await h.stop();
      deepEqual(events, [
        "connect ess",
        "alg_setting 0",
        "read 4",
        "message homeassistant/status online true",
        "stop",
      ]);
      deepEqual(h.mqtt.sent.slice(-2).map((m) => `${m.topic} ${m.payload}`), [
        "ess/status offline",
        "ess/plugin bye",
      ]);
    },
  );

  await t.step("should fail a plugin's publish that does not go out", async () => {
    let context: BridgeContext | undefined;
    const h = bridgeHarness({ plugins: [{ onConnect: (ctx) => void (context = ctx) }] }, false);
    h.start();
    await h.time.sleeping();
    h.mqtt.connect();
    await settle();
    const ctx = context!;
    await ctx.publish("homeassistant/device/x/config", "{}", { retain: true, qos: 1 });
    equal(h.mqtt.last("homeassistant/device/x/config"), "{}");
    const publish = h.mqtt.publish;
    h.mqtt.publish = () => Promise.reject(new RangeError("topic is longer than 65535 bytes"));
    await rejects(ctx.publish("homeassistant/device/y/config", "{}"), /longer than 65535/);
    h.mqtt.publish = publish;
    h.mqtt.drop();
    await rejects(
      ctx.publish("homeassistant/device/x/config", "{}", { qos: 1 }),
      /^EssError: Not connected to mqtt:\/\/broker\.test:1883$/,
    );
    await h.stop();
  });

  await t.step("should log a failing plugin and keep running", async () => {
    const h = bridgeHarness({
      plugins: [{
        onConnect() {
          throw new Error("boom");
        },
      }],
    }, false);
    h.start();
    await h.time.sleeping();
    h.mqtt.connect();
    await settle();
    assert(h.logger.lines.some((l) => /plugin onConnect failed: boom/.test(l)));
    await h.time.advance();
    await h.stop();
  });
});

Deno.test("parseControl()", async (t) => {
  await t.step("should accept every word pyess's strtobool took, in any case, trimmed", () => {
    const on = ["y", "yes", "t", "true", "on", "1"];
    const off = ["n", "no", "f", "false", "off", "0"];
    for (const name of ["active", "winter_mode", "fastcharge", "backup_mode"] as const) {
      for (const [words, want] of [[on, /on$|start/], [off, /off$|stop/]] as const) {
        for (const word of words.flatMap((w) => [w, w.toUpperCase(), ` ${w}\n`])) {
          const command = parseControl(name, word);
          if (typeof command === "string") throw new Error(`${name} ${word}: ${command}`);
          match(command.description, want, `${name} ${JSON.stringify(word)}`);
        }
      }
    }
    for (const p of ["2", "enable", "", "yess"]) {
      equal(typeof parseControl("fastcharge", p), "string");
    }
  });
  await t.step("should accept start/stop for active only", () => {
    equal(typeof parseControl("active", "start"), "object");
    equal(typeof parseControl("winter_mode", "start"), "string");
  });
  await t.step("should take the backup reserve 0-100 with the current backup mode", async () => {
    const device = new FakeDevice();
    (device.states.batt as Record<string, string>)["backup_setting"] = "on";
    const command = parseControl("backup_soc", "100");
    if (typeof command === "string") throw new Error(command);
    await command.run(device);
    deepEqual(device.calls, ["backup on 100"]);
  });
  await t.step("should refuse a backup reserve on a device without backup mode", async () => {
    const device = new FakeDevice();
    delete (device.states.batt as Record<string, string>)["backup_setting"];
    const command = parseControl("backup_soc", "10");
    if (typeof command === "string") throw new Error(command);
    await rejects(command.run(device), /no backup mode/);
    deepEqual(device.calls, []);
  });
});

Deno.test("topicMatches()", () => {
  assert(topicMatches("a/+/c", "a/b/c"));
  assert(!topicMatches("a/+/c", "a/b/d"));
  assert(topicMatches("a/#", "a"));
  assert(topicMatches("a/#", "a/b/c"));
  assert(!topicMatches("a/b", "a/b/c"));
  assert(!topicMatches("a/b/c", "a/b"));
});
