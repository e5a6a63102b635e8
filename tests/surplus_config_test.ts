import assert from "node:assert/strict";
import { GENERAL_OPTIONS, type Io } from "../commands/_cli.ts";
import { SURPLUS_OPTIONS, surplusConfig } from "../commands/_surplus.ts";
import { ConfigError, UsageError } from "../lib/errors.ts";
import { parsed } from "./_parse.ts";

const command = {
  name: "surplus",
  usage: "surplus",
  description: "test",
  options: [...GENERAL_OPTIONS, ...SURPLUS_OPTIONS],
  examples: [],
};

function io(): Io & { errors: string[] } {
  const errors: string[] = [];
  return {
    errors,
    out: () => {},
    err: (text) => void errors.push(text),
    stdoutIsTerminal: false,
    stderrIsTerminal: false,
    env: () => undefined,
  };
}

async function withConfig<T>(text: string, fn: (path: string) => Promise<T>): Promise<T> {
  const path = await Deno.makeTempFile({ suffix: ".conf" });
  try {
    await Deno.writeTextFile(path, text);
    return await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

/** Asserts that `fn` throws an instance of `type` whose message matches; returns the error. */
function throwsWith<E extends Error>(
  fn: () => unknown,
  type: new (message: string) => E,
  message: RegExp,
): E {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof type, `expected ${type.name}, got ${err}`);
    assert.match(err.message, message);
    return err;
  }
  return assert.fail(`expected ${type.name}, got no error`);
}

const CONFIG = [
  "ess_host = 192.168.1.20",
  "surplus-priority-soc = 90",
  "surplus.heater.on-watts = 1500",
  "surplus.heater.off_watts = 200",
  "surplus.heater.load-watts = 2000",
  "surplus.heater.topic = shellies/heater/relay/0/command",
  "surplus.pump.on-watts = 600",
  "surplus.pump.min-soc = 40",
  "surplus_rule = dryer:on-watts=900",
  "",
].join("\n");

Deno.test("surplusConfig() reads the surplus options and rules", async (t) => {
  await t.step("should read rules from the config file, without unknown-key warnings", async () => {
    const out = io();
    const config = await withConfig(
      CONFIG,
      async (path) => surplusConfig(await parsed(command, ["--config", path], out)),
    );
    // Only the key no command here knows is warned about.
    assert.equal(out.errors.length, 1);
    assert.match(out.errors[0]!, /:1: unknown key "ess_host" ignored/);
    assert.deepEqual(config.surplus, { prioritySocPct: 90, reserveW: 100, windowMs: 60_000 });
    assert.deepEqual(config.rules.map((r) => r.name), ["heater", "pump", "dryer"]);
    const [heater, pump] = config.rules;
    assert.deepEqual(
      [heater!.onWatts, heater!.offWatts, heater!.loadWatts, heater!.onDelaySeconds],
      [1500, 200, 2000, 60],
    );
    assert.deepEqual(heater!.switch, {
      topic: "shellies/heater/relay/0/command",
      payloadOn: "on",
      payloadOff: "off",
    });
    assert.deepEqual([pump!.minSoc, pump!.offDelaySeconds, pump!.switch], [40, 180, undefined]);
  });
  await t.step("should take rules from a repeated --surplus-rule, over the file's", async () => {
    const config = await withConfig(CONFIG, async (path) =>
      surplusConfig(
        await parsed(command, [
          "--config",
          path,
          "--surplus-rule",
          "heater:on-watts=2500,min-on-seconds=600",
          "--surplus-rule=dryer:on-watts=900,off-watts=100",
        ], io()),
      ));
    assert.deepEqual(config.rules.map((r) => [r.name, r.onWatts, r.minOnSeconds]), [
      ["heater", 2500, 600],
      ["pump", 600, 0],
      ["dryer", 900, 0],
    ]);
  });
  await t.step("should name the file and line of a bad setting", async () => {
    const bad = async (line: string, message: RegExp) =>
      await withConfig(`ess_host = x\n${line}\n`, async (path) => {
        const p = await parsed(command, ["--config", path], io());
        const error = throwsWith(() => surplusConfig(p), ConfigError, message);
        assert.ok(error.message.startsWith(`${path}:2: `), error.message);
      });
    await bad("surplus.heater.on-watts = lots", /rule heater: on-watts must be a number/);
    await bad("surplus.heater.on-wats = 1", /unknown setting on-wats; one of on-watts, /);
    await bad("surplus.Heater.on-watts = 1", /rule name "Heater": use lowercase/);
    await bad("surplus.heater = 1", /a rule's key is surplus\.<rule>\.<setting>/);
    await bad("surplus.heater.min-soc = 101", /min-soc must be a number from 0 to 100/);
    await bad("surplus.heater.off-watts = 100", /rule heater: on-watts is missing/);
    await bad("surplus.heater.payload-on = ON", /on-watts is missing/);
  });
  await t.step("should refuse an off threshold above the on threshold", async () => {
    const p = await parsed(command, ["--surplus-rule", "a:on-watts=100,off-watts=200"], io());
    throwsWith(
      () => surplusConfig(p),
      UsageError,
      /^--surplus-rule: rule a: off-watts \(200\) must not be above on-watts \(100\)$/,
    );
  });
  await t.step(
    "should refuse a topic it cannot publish to, and a payload without a topic",
    async () => {
      for (
        const [rule, message] of [
          [
            "a:on-watts=1,topic=plugs/#",
            /rule a: cannot publish to its topic: it contains # or \+/,
          ],
          ["a:on-watts=1,payload-on=ON", /rule a: a payload needs a topic/],
          ["a:on-watts", /rule a: "on-watts" is not key=value/],
          ["heater", /a rule is NAME:key=value,key=value/],
        ] as const
      ) {
        const p = await parsed(command, ["--surplus-rule", rule], io());
        throwsWith(() => surplusConfig(p), UsageError, message);
      }
    },
  );
  await t.step("should refuse a 33rd rule", async () => {
    const args = Array.from({ length: 33 }, (_, i) => ["--surplus-rule", `r${i}:on-watts=1`])
      .flat();
    const p = await parsed(command, args, io());
    throwsWith(() => surplusConfig(p), UsageError, /at most 32 rules/);
  });
  await t.step("should check the surplus options", async () => {
    for (
      const [option, message] of [
        ["--surplus-priority-soc=101", /surplus-priority-soc must be a whole number from 0 to 100/],
        ["--surplus-window-seconds=0", /surplus-window-seconds must be a number of seconds from 1/],
      ] as const
    ) {
      const p = await parsed(command, [option], io());
      throwsWith(() => surplusConfig(p), UsageError, message);
    }
  });
});
