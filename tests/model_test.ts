/**
 * The model layer against fixtures shaped field for field like real devices' recorded answers
 * (see fixtures/README.md): each expected reading below is worked out by hand from the fixture.
 */
import { deepEqual, equal } from "node:assert/strict";
import { detectFamily, type DeviceStates, normalise } from "../lib/model/normalise.ts";
import type { Reading } from "../lib/model/reading.ts";
import { flattenInstalled, type JsonObject } from "../lib/device/flatten.ts";

function states(family: string): DeviceStates {
  const result: Record<string, JsonObject> = {};
  for (const state of ["home", "common", "batt", "systeminfo"]) {
    const file = new URL(`../fixtures/${family}/${state}.json`, import.meta.url);
    result[state] = JSON.parse(Deno.readTextFileSync(file));
  }
  return result;
}

const device = (todayWh: number, monthWh: number) => ({
  source: "device" as const,
  todayWh,
  monthWh,
});

Deno.test("normalise() reads an ESS Home 15 (D015KE1N212 shape)", () => {
  const expected: Reading = {
    family: "home15",
    model: "D015KE1N212",
    serial: "ESSFIX015001",
    // 0.1 kW magnitudes, signs from the direction flags: PV 3, battery 2 discharging, grid 2
    // buying, house 7: 300 + 200 + 200 = 700 W.
    power: { pvW: 300, loadW: 700, batteryW: 200, gridW: 200 },
    socPct: 63,
    // Only ess[0] is installed; voltages in 0.1 V, currents in 0.01 A, power in W
    // (100 + 130 + 70 = sum_of_pv_power 300).
    pvStrings: [
      { index: 1, powerW: 100, voltageV: 312, currentA: 0.32 },
      { index: 2, powerW: 130, voltageV: 325, currentA: 0.4 },
      { index: 3, powerW: 70, voltageV: 283, currentA: 0.25 },
    ],
    // freq 501 in 0.1 Hz; a_phase in 0.1 V; active_power in W summing to total_active_power
    // 200, which has the sign of the grid flow (buying): kept as it is.
    grid: {
      frequencyHz: 50.1,
      phases: [
        { phase: "a", voltageV: 231, powerW: -150 },
        { phase: "b", voltageV: 232.4, powerW: 420 },
        { phase: "c", voltageV: 229.8, powerW: -70 },
      ],
    },
    energy: {},
    status: {
      running: true,
      operatingMode: { code: "1", word: "normal" },
      inverterStatus: { code: "pcs_ok", word: "ok" },
      batteryStatus: { code: "2", word: "discharging" },
      winterActive: false,
      batteryCharging: false,
      gridSelling: false,
    },
    settings: {
      winterMode: false,
      chargeStrategy: "fast-charge",
      chargeStrategies: ["battery-care", "fast-charge", "weather-forecast"],
      backupMode: true,
      reservePct: 15,
      winterReservePct: 20,
      feedInLimitPct: 70,
      winterStart: "1101",
      winterStop: "0228",
    },
    pvCapacityW: 15500,
    versions: { pms: "1.1.2960", pcs: "LG P21 01.00.01.00 R80 56.10" },
    unknownFields: [],
  };
  deepEqual(normalise(states("home15")), expected);
});

Deno.test("normalise() reads an ESS Home 10 on newer firmware (D010KE1N211 shape, words)", () => {
  const expected: Reading = {
    family: "home10-new",
    model: "D010KE1N211",
    serial: "ESSFIX010001",
    // PV 2400 W; battery 1200 W charging, grid 500 W selling: 2400 - 1200 - 500 = 700 W.
    power: { pvW: 2400, loadW: 700, batteryW: -1200, gridW: -500 },
    socPct: 54.2,
    // 320.5 V × 3.9 A ≈ 1250 W, 298.4 V × 3.85 A ≈ 1150 W: 2400 W in all.
    pvStrings: [
      { index: 1, powerW: 1250, voltageV: 320.5, currentA: 3.9 },
      { index: 2, powerW: 1150, voltageV: 298.4, currentA: 3.85 },
      { index: 3, powerW: 0, voltageV: 35.5, currentA: 0 },
    ],
    grid: { frequencyHz: 50.02, phases: [{ phase: "a", voltageV: 231.4 }] },
    // PV 12000 = direct 5000 + charge 4000 + feed-in 3000; house 9000 = direct 5000 +
    // discharge 2500 + purchase 1500; the same sums hold for the month.
    energy: {
      pvGeneration: device(12000, 180000),
      loadConsumption: device(9000, 160000),
      pvDirectConsumption: device(5000, 80000),
      gridFeedIn: device(3000, 45000),
      gridPurchase: device(1500, 30000),
      batteryCharge: device(4000, 55000),
      batteryDischarge: device(2500, 50000),
    },
    // (12000 - 3000) / 12000.
    selfConsumptionTodayPct: 75,
    status: {
      running: true,
      operatingMode: { code: "1", word: "normal" },
      inverterStatus: { code: "pcs_ok", word: "ok" },
      batteryStatus: { code: "1", word: "charging" },
      winterActive: false,
      batteryCharging: true,
      gridSelling: true,
    },
    settings: {
      winterMode: false,
      chargeStrategy: "weather-forecast",
      chargeStrategies: ["battery-care", "fast-charge", "weather-forecast"],
      backupMode: true,
      gridCharge: true,
      reservePct: 20,
      backupReservePct: 30,
      feedInLimitPct: 70,
      winterStart: "1101",
      winterStop: "0228",
    },
    pvCapacityW: 9800,
    versions: {
      pms: "10.05.7501",
      pcs: "LG 05.00.01.00 R2110 A.106.C",
      bms: "BMS 02.04.00.01 / DCDC 16.12.0.0",
    },
    unknownFields: [],
  };
  deepEqual(normalise(states("home10")), expected);
});

Deno.test("normalise() reads an ESS Home 5 (D005KD1N111 shape)", () => {
  const expected: Reading = {
    family: "home5",
    model: "D005KD1N111",
    serial: "ESSFIX005001",
    // No PV; battery 350 W discharging, grid 150 W buying: 0 + 350 + 150 = 500 W.
    power: { pvW: 0, loadW: 500, batteryW: 350, gridW: 150 },
    socPct: 37.5,
    pvStrings: [
      { index: 1, powerW: 0, voltageV: 24.6, currentA: 0 },
      { index: 2, powerW: 0, voltageV: 31.2, currentA: 0 },
    ],
    grid: { frequencyHz: 49.98, phases: [{ phase: "a", voltageV: 229.6 }] },
    // PV 8800 = direct 2600 + charge 3400 + feed-in 2800; house 7600 = 2600 + 3100 + 1900.
    energy: {
      pvGeneration: device(8800, 41000),
      loadConsumption: device(7600, 33700),
      pvDirectConsumption: device(2600, 11000),
      gridFeedIn: device(2800, 16000),
      gridPurchase: device(1900, 9500),
      batteryCharge: device(3400, 14000),
      batteryDischarge: device(3100, 13200),
    },
    // (8800 - 2800) / 8800 = 68.2 %.
    selfConsumptionTodayPct: 68.2,
    status: {
      running: true,
      operatingMode: { code: "1", word: "normal" },
      inverterStatus: { code: "pcs_ok", word: "ok" },
      batteryStatus: { code: "2", word: "discharging" },
      winterActive: true,
      batteryCharging: false,
      gridSelling: false,
    },
    settings: {
      winterMode: true,
      chargeStrategy: "battery-care",
      chargeStrategies: ["battery-care", "fast-charge"],
      reservePct: 15,
      feedInLimitPct: 100,
      winterStart: "1015",
      winterStop: "0310",
    },
    pvCapacityW: 5200,
    versions: { pms: "10.05.6121", pcs: "LG P1 02.00.03.00 R1800", bms: "LGBMS.01.01.02.00" },
    unknownFields: [],
  };
  deepEqual(normalise(states("home5")), expected);
});

Deno.test("detectFamily() tells every fixture's family", () => {
  deepEqual(
    ["classic", "new", "home10", "home5", "home15"].map((f) => detectFamily(states(f))),
    ["home10-classic", "home10-new", "home10-new", "home5", "home15"],
  );
  equal(detectFamily({ home: states("home15").home! }), "home15");
  equal(detectFamily({ systeminfo: states("home15").systeminfo! }), "home15");
  equal(detectFamily({}), "unknown");
});

Deno.test("normalise() leaves out Home 15 units that are not installed", async (t) => {
  const home15 = states("home15");
  await t.step("should keep no leaf of ess[1] or ess[2], nor of ess[0].batt[1]", () => {
    const paths = flattenInstalled(home15.common!, ["common"]).map((l) => l.path.join("/"));
    equal(paths.some((p) => /^common\/ess\/[12]\//.test(p)), false);
    equal(paths.some((p) => p.startsWith("common/ess/0/batt/1/")), false);
    equal(paths.includes("common/ess/0/sum_of_pv_power"), true);
  });
  await t.step("should count no garbage into the PV capacity or strings", () => {
    const reading = normalise(home15);
    equal(reading.pvStrings.length, 3);
    equal(reading.pvCapacityW, 15500);
  });
});

Deno.test("normalise() lists what it does not understand, and guesses nothing", async (t) => {
  await t.step("should list a new field of a known family", () => {
    const s = states("home10");
    const common = { ...s.common!, LOAD: s.common!["LOAD"]!, NEW: { gadget_power: "12" } };
    deepEqual(normalise({ ...s, common }).unknownFields, ["common/NEW/gadget_power"]);
  });
  await t.step("should give an unknown shape no value and list all of it", () => {
    const reading = normalise({ home: { stats: { power: 7 } }, common: { x: ["a"] } });
    equal(reading.family, "unknown");
    deepEqual(reading.power, {});
    deepEqual(reading.unknownFields, ["home/stats/power", "common/x/0"]);
  });
  await t.step("should read a magnitude without its direction flag only when it is 0", () => {
    const reading = normalise({
      home: { statistics: { grid_power: "300", batconv_power: "0", load_power: "300" } },
    });
    deepEqual(reading.power, { loadW: 300, batteryW: 0 });
  });
  await t.step("should report no charge strategy when the answer has no alg_setting", () => {
    for (const family of ["home15", "home10", "home5", "classic", "new"]) {
      const { batt: _batt, ...rest } = states(family);
      equal(normalise(rest).settings.chargeStrategy, undefined, family);
    }
  });
  await t.step("should say unknown codes as unknown (n) and drop garbage", () => {
    const reading = normalise({
      home: {
        statistics: { bat_status: "7", bat_user_soc: "212693561", load_power: "-5" },
        operation: { mode: 9 },
      },
    });
    deepEqual(reading.status.batteryStatus, { code: "7", word: "unknown (7)" });
    deepEqual(reading.status.operatingMode, { code: "9", word: "unknown (9)" });
    equal(reading.socPct, undefined);
    equal(reading.power.loadW, undefined);
  });
});
