/**
 * The reading's MQTT topics for each model, replayed from the fixtures shaped like real devices'
 * answers, with the values worked out by hand (see tests/model_test.ts for the arithmetic).
 */
import { deepEqual, equal } from "node:assert/strict";
import type { JsonObject } from "../lib/device/flatten.ts";
import { bridgeHarness, settle } from "./_bridge_fakes.ts";

function fixtureStates(family: string) {
  const read = (state: string): JsonObject =>
    JSON.parse(
      Deno.readTextFileSync(new URL(`../fixtures/${family}/${state}.json`, import.meta.url)),
    );
  return { home: read("home"), common: read("common"), batt: read("batt") };
}

/** The topics published at start (and after `polls` more polls), as topic → last payload. */
async function publishedFor(family: string, polls = 0): Promise<Map<string, string>> {
  const h = bridgeHarness();
  h.device.states = { ...h.device.states, ...fixtureStates(family) };
  h.start();
  await h.time.sleeping();
  for (let i = 0; i < polls; i++) await h.time.advance();
  await settle();
  const topics = new Map(h.mqtt.sent.map((m) => [m.topic, m.payload]));
  await h.stop();
  return topics;
}

const pick = (topics: Map<string, string>, names: string[]) =>
  Object.fromEntries(names.map((n) => [n, topics.get(`ess/reading/${n}`)]));

Deno.test("ess mqtt publishes an ESS Home 15's reading in W, V, A, Hz and %", async (t) => {
  const topics = await publishedFor("home15", 6);
  await t.step("should publish the 0.1 kW powers in W with the directions' signs", () => {
    deepEqual(
      pick(topics, ["power/pv", "power/load", "power/battery", "power/grid", "battery/soc"]),
      {
        "power/pv": "300",
        "power/load": "700",
        "power/battery": "200",
        "power/grid": "200",
        "battery/soc": "63",
      },
    );
  });
  await t.step("should publish the strings and the phases in SI units", () => {
    deepEqual(
      pick(topics, ["pv/1/voltage", "pv/2/current", "pv/3/power", "pv/capacity", "grid/frequency"]),
      {
        "pv/1/voltage": "312",
        "pv/2/current": "0.4",
        "pv/3/power": "70",
        "pv/capacity": "15500",
        "grid/frequency": "50.1",
      },
    );
    deepEqual(pick(topics, ["grid/a/voltage", "grid/b/power", "grid/c/power"]), {
      "grid/a/voltage": "231",
      "grid/b/power": "420",
      "grid/c/power": "-70",
    });
  });
  await t.step("should integrate energy: 700 W for one minute is 12 Wh", () => {
    deepEqual(
      pick(topics, [
        "energy/load_consumption/today",
        "energy/pv_generation/today",
        "energy/battery_discharge/today",
        "energy/grid_purchase/today",
        "energy/grid_feed_in/today",
      ]),
      {
        "energy/load_consumption/today": "12",
        "energy/pv_generation/today": "5",
        "energy/battery_discharge/today": "3",
        "energy/grid_purchase/today": "3",
        "energy/grid_feed_in/today": "0",
      },
    );
  });
  await t.step("should publish the settings and codes as words", () => {
    deepEqual(
      pick(topics, [
        "settings/charge_strategy",
        "settings/reserve",
        "settings/winter_reserve",
        "settings/backup_mode",
        "status/battery",
        "status/operating_mode",
        "info/family",
      ]),
      {
        "settings/charge_strategy": "fast_charge",
        "settings/reserve": "15",
        "settings/winter_reserve": "20",
        "settings/backup_mode": "on",
        "status/battery": "discharging",
        "status/operating_mode": "normal",
        "info/family": "home15",
      },
    );
  });
  await t.step("should keep pyess's raw topics, without the units not installed", () => {
    equal(topics.get("ess/home/statistics/load_power_01kW"), "7");
    equal(topics.get("ess/common/ess/0/sum_of_pv_power"), "300");
    const garbage = [...topics.keys()].filter((t) =>
      /^ess\/common\/ess\/[12]\//.test(t) || t.startsWith("ess/common/ess/0/batt/1/")
    );
    deepEqual(garbage, []);
  });
});

Deno.test("ess mqtt publishes an ESS Home 10's (newer firmware) reading", async () => {
  const topics = await publishedFor("home10");
  deepEqual(
    pick(topics, [
      "power/load",
      "power/battery",
      "power/grid",
      "energy/pv_generation/today",
      "energy/grid_feed_in/month",
      "self_consumption/today",
      "settings/charge_strategy",
      "settings/grid_charge",
      "settings/backup_reserve",
      "grid/a/voltage",
    ]),
    {
      "power/load": "700",
      "power/battery": "-1200",
      "power/grid": "-500",
      "energy/pv_generation/today": "12000",
      "energy/grid_feed_in/month": "45000",
      "self_consumption/today": "75",
      "settings/charge_strategy": "weather_forecast",
      "settings/grid_charge": "on",
      "settings/backup_reserve": "30",
      "grid/a/voltage": "231.4",
    },
  );
});

Deno.test("ess mqtt publishes an ESS Home 5's reading", async () => {
  const topics = await publishedFor("home5");
  deepEqual(
    pick(topics, [
      "power/pv",
      "power/battery",
      "power/grid",
      "energy/load_consumption/today",
      "settings/reserve",
      "settings/charge_strategy",
      "status/winter_active",
      "info/family",
    ]),
    {
      "power/pv": "0",
      "power/battery": "350",
      "power/grid": "150",
      "energy/load_consumption/today": "7600",
      "settings/reserve": "15",
      "settings/charge_strategy": "battery_care",
      "status/winter_active": "on",
      "info/family": "home10-classic",
    },
  );
});
