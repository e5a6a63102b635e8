/**
 * The surplus end to end: `ess mqtt` against the simulator and a broker publishes it, announces it
 * to Home Assistant, takes a number over MQTT and keeps it across a restart; `ess surplus` explains
 * one reading.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startAedes } from "./_broker.ts";
import { runCli, spawnDaemon } from "./_cli.ts";
import { discoveryProblems } from "./_hass_rules.ts";
import { deviceArgs, withWorld, type World, worldArgs } from "./_world.ts";

/** A rule that is on whatever the sun does: on at any surplus at all, at once. */
const ALWAYS = "heater:on-watts=-100000,off-watts=-100000,on-delay-seconds=0,load-watts=2000";

function bridge(w: World) {
  return spawnDaemon([
    "mqtt",
    ...worldArgs(w),
    "--interval-seconds",
    "1",
    "--surplus-rule",
    ALWAYS,
  ]);
}

Deno.test("ess mqtt publishes the surplus and its rules", async (t) => {
  await withWorld(startAedes, async (w) => {
    const seen = (topic: string) => w.watcher.last.get(topic)?.payload;
    let ess = bridge(w);
    try {
      await t.step("should publish the surplus and the rule, retained", async () => {
        await w.watcher.until(() => seen("ess/surplus/heater") === "on", "the heater on");
        await w.watcher.until(() => /^-?\d+$/.test(seen("ess/surplus/power") ?? ""), "a surplus");
        assert.match(seen("ess/surplus/heater/why")!, /≥ off at -100000 W|switched on/);
        assert.equal(seen("ess/surplus/heater/on-watts"), "-100000");
      });
      await t.step("should announce it to Home Assistant under the battery's device", async () => {
        const find = () => [...w.watcher.last.keys()].find((k) => /_surplus\/config$/.test(k));
        await w.watcher.until(
          () => find() !== undefined,
          "the surplus's discovery message",
          20_000,
        );
        const topic = find()!;
        const config = JSON.parse(seen(topic)!);
        const published = new Set(w.watcher.all.map((m) => m.topic));
        assert.deepEqual(discoveryProblems(config, published, "ess"), []);
      });
      await t.step("should take a number over MQTT and keep it across a restart", async () => {
        await w.watcher.publish("ess/surplus/heater/on-watts/set", "2500");
        await w.watcher.until(() => seen("ess/surplus/heater/on-watts") === "2500", "2500 W");
        // The overrides topic follows the value: wait for it rather than read it at once.
        await w.watcher.until(
          () => seen("ess/surplus/heater/overrides") === '{"on-watts":2500}',
          "the retained override",
        );
        await ess.waitFor(/info: surplus rule heater: on-watts set to 2500 at run time\n/);
        await ess.stop();
        const before = w.watcher.all.length;
        ess = bridge(w);
        const after = () =>
          w.watcher.all.slice(before).filter((m) => m.topic === "ess/surplus/heater/on-watts");
        // Once connected, ess publishes the file's value, then reads the override back.
        await w.watcher.until(() => after().at(-1)?.payload === "2500", "2500 W after the restart");
      });
    } finally {
      await ess.stop();
    }
  });
});

Deno.test("ess surplus explains the surplus now", async (t) => {
  await withWorld(startAedes, async (w) => {
    await t.step("should print the surplus, its terms and each rule's verdict", async () => {
      const result = await runCli([
        "surplus",
        ...deviceArgs(w.sim),
        "--surplus-rule",
        ALWAYS,
        "--surplus-rule",
        "never:on-watts=100000",
      ]);
      assert.equal(result.code, 0, result.stderr);
      const lines = result.stdout.trimEnd().split("\n");
      assert.match(lines[0]!, /^surplus {2}-?\d+ W {2}\(.*− reserve 100 W\)$/);
      assert.match(lines[1]!, /^heater {3}would switch on: .* ≥ on at -100000 W$/);
      assert.match(lines[2]!, /^never {4}would stay off: .* < on at 100000 W$/);
    });
    await t.step("should refuse a bad rule with one line and exit code 2", async () => {
      const result = await runCli([
        "surplus",
        ...deviceArgs(w.sim),
        "--surplus-rule",
        "x:on-watts=lots",
      ]);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /^ess: --surplus-rule: rule x: on-watts must be a number/);
    });
  });
});
