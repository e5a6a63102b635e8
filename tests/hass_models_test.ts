/**
 * Home Assistant on every model: each fixture family (shaped like a real device's answers) is
 * normalised, its reading topics are published, and the announcement is checked against Home
 * Assistant's rules and by what each entity shows, against numbers worked out by hand from the
 * fixture's own fields.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import type { JsonObject } from "../lib/device/flatten.ts";
import { buildDiscovery } from "../lib/hass/discovery.ts";
import { ENTITY_TABLE } from "../lib/hass/entities.ts";
import { normalise } from "../lib/model/normalise.ts";
import type { Reading } from "../lib/model/reading.ts";
import { discoveryProblems, entityState } from "./_hass_rules.ts";
import { readingTopics } from "./_reading_topics.ts";
import { fixtureStates } from "./_serve_source.ts";

/** The fixture family's reading, its published topics and what Home Assistant is told. */
function announce(family: string, prefix = "ess") {
  const states = fixtureStates(family);
  const reading = normalise(states);
  const retained = readingTopics(prefix, reading);
  const published = new Set(retained.keys());
  retained.set(`${prefix}/status`, "online");
  const d = buildDiscovery({
    prefix,
    systeminfo: states.systeminfo ?? {},
    published,
    origin: { version: "0.1.0" },
    fallbackId: "host",
    reading,
  });
  const config = JSON.parse(JSON.stringify(d.config)) as JsonObject;
  /** What Home Assistant shows for each announced entity, by component id. */
  const shown = Object.fromEntries(
    d.announced.map((row) => [row.id, entityState(config, row.id, retained, 0)]),
  );
  return { reading, published, config, shown, d };
}

/** A component of the announcement. */
const componentOf = (config: JsonObject, id: string) =>
  (config["components"] as Record<string, JsonObject>)[id]!;

Deno.test("Home Assistant on an ESS Home 15 (0.1 kW, 0.1 V, 0.1 Hz, 0.01 A, ess[] units)", async (t) => {
  const { published, config, shown } = announce("home15");

  await t.step("should be valid by Home Assistant's rules", () => {
    deepEqual(discoveryProblems(config, published, "ess"), []);
  });

  await t.step("should show the power flows in W, signed the same as every model", () => {
    // home.statistics: load_power_01kW 7, pv_total_power_01kW 3, batt_conv_power_01kW 2 with
    // is_battery_charging_ 0 (discharging: +), grid_power_01kW 2 with is_grid_selling_ 0 (buying: +).
    equal(shown["load_power"], "700");
    equal(shown["pv_power"], "300");
    equal(shown["battery_power"], "200");
    equal(shown["grid_power"], "200");
    equal(shown["battery_soc"], "63");
    const load = componentOf(config, "load_power");
    equal(load["unit_of_measurement"], "W");
    equal(load["device_class"], "power");
  });

  await t.step("should show the installed unit's PV strings, and none of the others", () => {
    // common.ess[0].pv[]: voltage 3120/3250/2830 in 0.1 V, current 32/40/25 in 0.01 A, power in W.
    deepEqual(
      [1, 2, 3].map((
        n,
      ) => [shown[`pv${n}_power`], shown[`pv${n}_voltage`], shown[`pv${n}_current`]]),
      [["100", "312", "0.32"], ["130", "325", "0.4"], ["70", "283", "0.25"]],
    );
    equal(shown["pv4_power"], undefined, "ess[1] and ess[2] are not installed");
    deepEqual(componentOf(config, "pv4_power"), { platform: "sensor" });
    equal(shown["pv_capacity"], "15500");
  });

  await t.step("should show the grid in Hz and per phase", () => {
    // GRID.freq 501 in 0.1 Hz; a_phase[] in 0.1 V; active_power[] in W, oriented by the total.
    equal(shown["grid_frequency"], "50.1");
    equal(componentOf(config, "grid_frequency")["unit_of_measurement"], "Hz");
    deepEqual(
      [shown["grid_voltage"], shown["grid_voltage_b"], shown["grid_voltage_c"]],
      ["231", "232.4", "229.8"],
    );
    deepEqual(
      [shown["grid_power_a"], shown["grid_power_b"], shown["grid_power_c"]],
      ["-150", "420", "-70"],
    );
  });

  await t.step("should show codes and settings as words", () => {
    equal(shown["operation_mode"], "normal");
    equal(shown["inverter_status"], "ok");
    equal(shown["battery_status"], "discharging");
    equal(shown["battery_safety_soc"], "15", "reserved_soc");
    equal(shown["winter_reserve"], "20");
    equal(shown["feed_in_limit"], "70");
  });

  await t.step("should read alg_setting in words and backup mode simple", () => {
    equal(shown["charge_strategy"], "fast_charge");
    equal(shown["fast_charge"], "on");
    equal(shown["backup_mode"], "on", "backup_setting simple");
    equal(shown["winter_mode"], "off");
    equal(shown["system"], "on");
    deepEqual(componentOf(config, "backup_reserve"), { platform: "number" }, "no backup_soc");
  });

  await t.step("should announce energy sensors only as the reading has counters", () => {
    // The live answer has no energy counters: the entities come only where the model layer
    // makes them (from the graphs or by integrating), and then say so.
    const { reading } = announce("home15");
    for (
      const [id, name] of [
        ["pv_generation_today", "pvGeneration"],
        ["grid_purchase_today", "gridPurchase"],
        ["grid_feed_in_today", "gridFeedIn"],
        ["battery_charge_today", "batteryCharge"],
        ["battery_discharge_today", "batteryDischarge"],
      ] as const
    ) {
      const counter = reading.energy[name];
      if (counter?.todayWh === undefined) {
        equal(shown[id], undefined, id);
        continue;
      }
      equal(shown[id], String(counter.todayWh), id);
      const c = componentOf(config, id);
      equal(JSON.parse(String(c["json_attributes_template"]))["source"], counter.source, id);
    }
  });
});

Deno.test("Home Assistant on an ESS Home 10 with newer firmware (alg_setting in words)", async (t) => {
  const { published, config, shown } = announce("home10");

  await t.step("should be valid by Home Assistant's rules", () => {
    deepEqual(discoveryProblems(config, published, "ess"), []);
  });

  await t.step("should show the power flows in W, signed by the direction flags", () => {
    // batconv_power 1200 with is_battery_charging_ 1; grid_power 500 with is_grid_selling_ 1.
    deepEqual(
      [shown["pv_power"], shown["load_power"], shown["battery_power"], shown["grid_power"]],
      ["2400", "700", "-1200", "-500"],
    );
    equal(shown["battery_soc"], "54.2");
    equal(shown["self_consumption_today"], "75");
  });

  await t.step("should give every Energy-dashboard sensor, from the device's counters", () => {
    deepEqual(
      [
        "grid_purchase_today",
        "grid_feed_in_today",
        "pv_generation_today",
        "battery_charge_today",
        "battery_discharge_today",
        "load_consumption_month",
      ].map((id) => shown[id]),
      ["1500", "3000", "12000", "4000", "2500", "160000"],
    );
    const purchase = componentOf(config, "grid_purchase_today");
    equal(purchase["device_class"], "energy");
    equal(purchase["unit_of_measurement"], "Wh");
    equal(purchase["state_class"], "total_increasing");
    equal(purchase["json_attributes_topic"], "ess/reading/energy/grid_purchase/today");
    equal(JSON.parse(String(purchase["json_attributes_template"]))["source"], "device");
  });

  await t.step("should read the charge strategy in words and offer what the firmware takes", () => {
    equal(shown["charge_strategy"], "weather_forecast");
    equal(shown["fast_charge"], "off");
    deepEqual(componentOf(config, "charge_strategy")["options"], [
      "battery_care",
      "fast_charge",
      "weather_forecast",
    ]);
  });

  await t.step("should show the reserve from safety_soc and the backup settings", () => {
    equal(shown["battery_safety_soc"], "20");
    equal(shown["backup_mode"], "on");
    equal(shown["backup_reserve"], "30");
    equal(shown["grid_charge"], "on");
    equal(shown["battery_status"], "charging");
  });

  await t.step("should show the third string, and no per-phase figures", () => {
    deepEqual([shown["pv3_power"], shown["pv3_voltage"]], ["0", "35.5"]);
    equal(shown["grid_voltage"], "231.4");
    equal(shown["grid_frequency"], "50.02");
    equal(shown["grid_power_a"], undefined);
  });
});

Deno.test("Home Assistant on an ESS Home 5 and a classic Home 10 (alg_setting on/off)", async (t) => {
  for (
    const [family, expected] of [
      ["home5", {
        pv_power: "0",
        battery_power: "350",
        grid_power: "150",
        load_power: "500",
        battery_soc: "37.5",
        pv_generation_today: "8800",
        battery_discharge_today: "3100",
        battery_safety_soc: "15",
        winter_mode: "on",
        winter_mode_active: "on",
        charge_strategy: "battery_care",
      }],
      ["classic", {
        pv_power: "2174",
        battery_power: "-612",
        grid_power: "-1074",
        load_power: "488",
        battery_soc: "63.81944",
        pv_generation_today: "6318",
        battery_discharge_today: "2210",
        battery_safety_soc: "10",
        winter_mode: "off",
        winter_mode_active: "off",
        charge_strategy: "battery_care",
      }],
    ] as const
  ) {
    await t.step(`should show the ${family} fixture's figures`, () => {
      const { published, config, shown } = announce(family);
      deepEqual(discoveryProblems(config, published, "ess"), []);
      for (const [id, value] of Object.entries(expected)) equal(shown[id], value, id);
      deepEqual(
        componentOf(config, "charge_strategy")["options"],
        ["battery_care", "fast_charge"],
        "older firmware has no weather forecast",
      );
      deepEqual(componentOf(config, "backup_mode"), { platform: "switch" }, "no backup mode");
      equal(shown["pv3_power"], undefined, "two strings");
    });
  }
});

Deno.test("Home Assistant: the same entity ids on every model, with the same units", () => {
  const families = ["classic", "new", "home10", "home5", "home15"];
  const seen = new Map<string, string>();
  for (const family of families) {
    const { config, d } = announce(family);
    for (const row of d.announced) {
      const c = componentOf(config, row.id);
      const unit = `${c["default_entity_id"]} ${c["unit_of_measurement"] ?? "-"}`;
      const before = seen.get(row.id);
      if (before !== undefined) equal(unit, before, `${row.id} on ${family}`);
      seen.set(row.id, unit);
    }
  }
  // Every row of the table is announced on some model.
  const never = ENTITY_TABLE.filter((r) => !seen.has(r.id)).map((r) => r.id);
  deepEqual(never, ["pv4_power", "pv4_voltage", "pv4_current"]);
});

Deno.test("Home Assistant: an unknown code stays visible as unknown (7)", () => {
  const reading: Reading = {
    ...normalise(fixtureStates("home10")),
  };
  reading.status = { ...reading.status, batteryStatus: { code: "7", word: "unknown (7)" } };
  const retained = readingTopics("ess", reading);
  retained.set("ess/status", "online");
  const d = buildDiscovery({
    prefix: "ess",
    systeminfo: {},
    published: new Set(retained.keys()),
    origin: { version: "0.1.0" },
    fallbackId: "host",
    reading,
  });
  const config = JSON.parse(JSON.stringify(d.config));
  equal(entityState(config, "battery_status", retained, 0), "unknown (7)");
  ok(d.announced.some((r) => r.id === "battery_status"));
});
