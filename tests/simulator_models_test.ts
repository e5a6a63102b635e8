/**
 * The simulator per model: its answers have the shape of the recorded ones (the fixtures, see
 * fixtures/README.md) key for key and type for type, and the model layer reads them back into
 * a consistent reading.
 */
import assert from "node:assert/strict";
import type { Json, JsonObject } from "../lib/device/flatten.ts";
import { normalise } from "../lib/model/normalise.ts";
import { SimDevice } from "../lib/sim/_device.ts";
import { startSimulator } from "../lib/sim/simulator.ts";
import { runCli } from "./_cli.ts";
import { deviceArgs } from "./_world.ts";

/** Keys (sorted), nesting and JSON types of a value; arrays by their items' shapes. */
function shape(value: Json): Json {
  if (Array.isArray(value)) return value.map(shape);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, shape(value[k]!)]));
  }
  return value === null ? "null" : typeof value;
}

const fixture = (family: string, state: string): JsonObject =>
  JSON.parse(
    Deno.readTextFileSync(new URL(`../fixtures/${family}/${state}.json`, import.meta.url)),
  );

const device = (model: "home5" | "home15", at = "2026-06-17T13:10:00") =>
  new SimDevice({
    firmware: "classic",
    model,
    seed: 7,
    now: () => new Date(at),
    name: "SIMTEST01",
  });

for (const model of ["home5", "home15"] as const) {
  Deno.test(`the simulator answers as an ESS ${model} does, field for field`, async (t) => {
    const sim = device(model);
    for (const state of ["home", "common", "batt", "systeminfo"] as const) {
      await t.step(`should give ${state} the recorded shape`, () => {
        assert.deepEqual(shape(sim.read(state)), shape(fixture(model, state)));
      });
    }
  });
}

Deno.test("the simulated ESS Home 15 reads back consistently", async (t) => {
  const sim = device("home15");
  const states = {
    home: sim.read("home"),
    common: sim.read("common"),
    batt: sim.read("batt"),
    systeminfo: sim.read("systeminfo"),
  };
  const reading = normalise(states);
  await t.step("should be told a Home 15 and understood in full", () => {
    assert.equal(reading.family, "home15");
    assert.equal(reading.model, "D015KE1N212");
    assert.deepEqual(reading.unknownFields, []);
  });
  await t.step("should balance the house: load = PV + grid + battery, within 0.1 kW steps", () => {
    const { pvW = NaN, loadW = NaN, batteryW = NaN, gridW = NaN } = reading.power;
    assert.ok(Math.abs(pvW + gridW + batteryW - loadW) <= 150, JSON.stringify(reading.power));
    assert.ok(pvW > 0, "midday sun");
  });
  await t.step("should sum the strings to the unit's PV power, in W", () => {
    const sum = reading.pvStrings.reduce((s, p) => s + (p.powerW ?? 0), 0);
    assert.equal(reading.pvStrings.length, 2, "the third string is not installed");
    assert.equal(sum, (states.common["ess"] as JsonObject[])[0]!["sum_of_pv_power"]);
    assert.ok(Math.abs(sum - reading.power.pvW!) <= 50);
  });
  await t.step("should report voltages and frequency in V and Hz", () => {
    assert.ok(reading.grid.frequencyHz! > 49 && reading.grid.frequencyHz! < 51);
    for (const p of reading.grid.phases) assert.ok(p.voltageV! > 200 && p.voltageV! < 260);
  });
  await t.step("should take a charge strategy in digits and report it in words", () => {
    assert.equal(states.batt["alg_setting"], "battery_care");
    assert.equal(sim.changeSettings({ alg_setting: "1" }), true);
    assert.equal(sim.read("batt")["alg_setting"], "fast_charge");
    assert.equal(sim.changeSettings({ alg_setting: "on" }), false);
  });
});

Deno.test("the newer Home 10 firmware (--firmware words) answers as D010KE1N211 does", async (t) => {
  const sim = new SimDevice({
    firmware: "words",
    model: "home10",
    seed: 7,
    now: () => new Date("2026-06-17T13:10:00"),
    name: "SIMTEST01",
  });
  for (const state of ["home", "common", "batt", "systeminfo"] as const) {
    await t.step(`should give ${state} the recorded shape`, () => {
      assert.deepEqual(shape(sim.read(state)), shape(fixture("home10", state)));
    });
  }
  await t.step("should keep the house's live values and spell safety_soc", () => {
    const common = sim.read("common");
    assert.equal((common["BATT"] as JsonObject)["safety_soc"], "10");
    assert.equal(sim.read("batt")["safety_soc"], "10");
    const load = Number((common["LOAD"] as JsonObject)["load_power"]);
    assert.equal(load, Math.round(sim.flows.load));
    assert.ok(Number((common["PV"] as JsonObject)["pv1_power"]) > 0, "midday sun");
  });
  await t.step("should be read by the model layer as a Home 10 with words", () => {
    const reading = normalise({
      home: sim.read("home"),
      common: sim.read("common"),
      batt: sim.read("batt"),
      systeminfo: sim.read("systeminfo"),
    });
    assert.equal(reading.model, "D010KE1N211");
    assert.equal(reading.family, "home10-new");
    assert.deepEqual(reading.unknownFields, []);
  });
});

Deno.test("a charge strategy written through the client to --firmware words reads back", async () => {
  const sim = await startSimulator({ model: "home10", firmware: "words" });
  const ess = (...args: string[]) =>
    runCli([
      ...args,
      ...deviceArgs(sim),
    ]);
  try {
    assert.equal(sim.device.algSetting, "battery_care");
    for (
      const [strategy, word] of [
        ["fast-charge", "fast_charge"],
        ["weather-forecast", "weather_forecast"],
        ["battery-care", "battery_care"],
      ]
    ) {
      const set = await ess("control", "strategy", strategy!);
      assert.equal(set.code, 0, set.stderr);
      assert.equal(sim.device.algSetting, word, "the device reports the strategy in words");
      assert.match(set.stdout, new RegExp(`charge strategy: ${strategy}`));
      const read = await ess("data", "--format", "reading");
      assert.equal(read.code, 0, read.stderr);
      assert.match(read.stdout, new RegExp(`^settings/charge_strategy +${word}$`, "m"));
      assert.match(read.stdout, /^settings\/reserve +10 +%$/m, "safety_soc read");
    }
  } finally {
    await sim.close();
  }
});

Deno.test("ess data --format reading against ess simulate --model home15", async () => {
  const sim = await startSimulator({ model: "home15" });
  try {
    const run = await runCli([
      "data",
      ...deviceArgs(sim),
      "--format",
      "reading",
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^info\/family +home15$/m);
    assert.match(run.stdout, /^info\/model +D015KE1N212$/m);
    assert.match(run.stdout, /^power\/load +\d+ +W$/m);
    assert.match(run.stdout, /^grid\/c\/voltage +\d{3}(\.\d)? +V$/m);
    assert.doesNotMatch(run.stdout, /^pv\/3\//m, "the uninstalled string");
  } finally {
    await sim.close();
  }
});
