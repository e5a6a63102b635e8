/**
 * The simulated house behaves like one: readings move, counters only grow until midnight or
 * the first of the month, the state of charge stays within its bounds, and power balances.
 * Time is an injected clock; nothing sleeps.
 */
import assert from "node:assert/strict";
import type { JsonObject } from "../lib/device/flatten.ts";
import { type Simulator, startSimulator, WINTER_RESERVE } from "../lib/sim/simulator.ts";

function clockAt(text: string): { now: () => Date; advance(ms: number): void } {
  let t = new Date(text).getTime();
  return { now: () => new Date(t), advance: (ms) => t += ms };
}

async function withSim(
  options: Parameters<typeof startSimulator>[0],
  fn: (sim: Simulator) => Promise<void> | void,
) {
  const sim = await startSimulator(options);
  try {
    await fn(sim);
  } finally {
    await sim.close();
  }
}

type Groups = Record<string, Record<string, string>>;
const groups = (answer: JsonObject) => answer as unknown as Groups;
const num = (text: string | undefined) => {
  assert.ok(text !== undefined && /^-?\d+(\.\d+)?$/.test(text), `not a number: ${text}`);
  return Number(text);
};

/** The power flows `home` shows, signed by its direction flags. */
function homeBalance(home: Groups) {
  const s = home["statistics"]!;
  const d = home["direction"]!;
  const battery = num(s["batconv_power"]);
  const grid = num(s["grid_power"]);
  const charging = d["is_battery_charging_"] === "1";
  const discharging = d["is_battery_discharging_"] === "1";
  const selling = d["is_grid_selling_"] === "1";
  const buying = d["is_grid_buying_"] === "1";
  assert.ok(!(charging && discharging) && !(selling && buying), JSON.stringify(d));
  assert.equal(battery > 0, charging || discharging, "battery flag agrees with its power");
  assert.equal(grid > 0, selling || buying, "grid flag agrees with its power");
  return {
    pv: num(s["pcs_pv_total_power"]),
    load: num(s["load_power"]),
    charge: charging ? battery : 0,
    discharge: discharging ? battery : 0,
    feedIn: selling ? grid : 0,
    purchase: buying ? grid : 0,
  };
}

Deno.test("simulator house model", async (t) => {
  await t.step("should give different readings 2 s apart", async () => {
    const clock = clockAt("2026-11-26T01:30:00");
    await withSim({ now: clock.now }, (sim) => {
      const first = [sim.device.read("home"), sim.device.read("common")];
      clock.advance(2000);
      const second = [sim.device.read("home"), sim.device.read("common")];
      assert.notDeepEqual(second[0], first[0]);
      assert.notDeepEqual(second[1], first[1]);
    });
  });

  await t.step("should be deterministic for a seed and a clock", async () => {
    const clock = clockAt("2026-05-04T10:00:00");
    const read = (seed: number) =>
      withSim({ now: clock.now, seed }, (sim) => {
        readings.push(JSON.stringify([sim.device.read("common"), sim.device.read("home")]));
      });
    const readings: string[] = [];
    await read(7);
    await read(7);
    await read(8);
    assert.equal(readings[0], readings[1]);
    assert.notEqual(readings[0], readings[2]);
  });

  await t.step(
    "should keep counters growing, SOC in bounds and power balanced over a day",
    async () => {
      // From a June morning past midnight into July: both the day and the month roll over.
      const clock = clockAt("2026-06-30T05:00:00");
      await withSim({ now: clock.now }, (sim) => {
        let previous: { day: number; month: number; counters: Groups } | undefined;
        let dayResets = 0;
        let monthResets = 0;
        let maxPv = 0;
        let charged = false;
        let discharged = false;
        for (let minutes = 0; minutes <= 27 * 60; minutes += 5) {
          const now = clock.now();
          const home = groups(sim.device.read("home"));
          const common = groups(sim.device.read("common"));
          const f = homeBalance(home);
          const supply = f.pv + f.discharge + f.purchase;
          const demand = f.load + f.charge + f.feedIn;
          assert.ok(Math.abs(supply - demand) <= 3, `unbalanced at ${now.toISOString()}`);
          const hour = now.getUTCHours();
          if (hour < 3 || hour >= 23) assert.equal(f.pv, 0, "no PV at night");
          maxPv = Math.max(maxPv, f.pv);
          charged ||= f.charge > 0;
          discharged ||= f.discharge > 0;

          const soc = num(home["statistics"]!["bat_user_soc"]);
          assert.ok(soc >= sim.device.safetySoc && soc <= 100, `soc ${soc}`);
          assert.equal(num(common["BATT"]!["soc"]), Math.round(soc * 10) / 10);

          if (previous) {
            const newDay = now.getUTCDate() !== previous.day;
            const newMonth = now.getUTCMonth() !== previous.month;
            for (const [group, fields] of Object.entries(common)) {
              for (const [field, value] of Object.entries(fields)) {
                if (!/^(today|month|current)_/.test(field) || /self_consumption/.test(field)) {
                  continue;
                }
                const before = num(previous.counters[group]![field]);
                const after = num(value);
                const resets = field.startsWith("month_") ? newMonth : newDay;
                if (after < before) {
                  assert.ok(resets, `${group}/${field} went down ${before} -> ${after}`);
                }
              }
            }
            if (newDay) dayResets++;
            if (newMonth) {
              monthResets++;
              assert.ok(num(common["PV"]!["today_month_pv_generation_sum"]) < 50);
            }
          }
          previous = { day: now.getUTCDate(), month: now.getUTCMonth(), counters: common };
          clock.advance(5 * 60_000);
        }
        assert.equal(dayResets, 1);
        assert.equal(monthResets, 1);
        assert.ok(maxPv > 2000, `a June day has sun (max ${maxPv} W)`);
        assert.ok(charged && discharged, "the battery charged and discharged");
      });
    },
  );

  await t.step("should keep today's graph in step with today's counters", async () => {
    const clock = clockAt("2026-06-30T16:40:00");
    await withSim({ now: clock.now }, (sim) => {
      const graph = sim.device.graph("pv", "day", { year_month_day: "20260630" });
      const rows = graph?.["loginfo"] as Record<string, string>[];
      assert.equal(rows.length, 16 * 4 + 3);
      const total = num(rows.at(-1)?.["total_generation"]);
      const counter = num(groups(sim.device.read("common"))["PV"]!["today_pv_generation_sum"]);
      assert.ok(Math.abs(total - counter) <= rows.length, `${total} vs ${counter}`);
      const month = sim.device.graph("pv", "month", { year_month: "202606" });
      const days = month?.["loginfo"] as Record<string, string>[];
      assert.equal(days.length, 30);
      assert.ok("total_feed_in" in days[0]!, "the device's own spelling in month graphs");
    });
  });

  await t.step("should have no rows for today at midnight and all of yesterday's", async () => {
    const clock = clockAt("2026-07-01T00:00:00");
    await withSim({ now: clock.now }, (sim) => {
      const rows = (date: string) =>
        (sim.device.graph("load", "day", { year_month_day: date })?.["loginfo"] as unknown[])
          .length;
      assert.equal(rows("20260701"), 0);
      assert.equal(rows("20260630"), 96);
      clock.advance(1000);
      assert.equal(rows("20260701"), 1);
    });
  });

  await t.step("should bring PV and battery to 0 when stopped", async () => {
    const clock = clockAt("2026-06-30T12:00:00");
    await withSim({ now: clock.now }, (sim) => {
      assert.ok(sim.device.flows.pv > 0);
      assert.ok(sim.device.operate("stop"));
      clock.advance(60_000);
      const socBefore = sim.device.soc;
      clock.advance(10 * 60_000);
      const f = sim.device.flows;
      assert.equal(f.pv, 0);
      assert.equal(f.charge + f.discharge, 0);
      assert.equal(f.purchase, f.load);
      assert.equal(sim.device.soc, socBefore);
      assert.equal(sim.device.operation, "stop");
    });
  });

  await t.step("should charge from the grid to the winter reserve in winter mode", async () => {
    const clock = clockAt("2026-11-26T01:30:00");
    await withSim({ now: clock.now }, (sim) => {
      assert.ok(sim.device.soc < WINTER_RESERVE, "a November night empties the battery");
      assert.ok(sim.device.changeSettings({ wintermode: "on" }));
      clock.advance(5 * 60_000);
      const home = groups(sim.device.read("home"));
      assert.equal(home["direction"]!["is_charging_from_grid_"], "1");
      assert.equal(home["wintermode"]!["winter_status"], "on");
      const before = sim.device.soc;
      clock.advance(30 * 60_000);
      assert.ok(sim.device.soc > before);
      clock.advance(12 * 3600_000);
      assert.ok(sim.device.soc >= WINTER_RESERVE - 0.5);
    });
  });

  await t.step("should hold the backup reserve", async () => {
    const clock = clockAt("2026-06-30T20:00:00");
    await withSim({ now: clock.now }, (sim) => {
      const soc = sim.device.soc;
      assert.ok(soc > 50, `the battery is full enough in a June evening (${soc})`);
      const reserve = Math.floor(soc) - 5;
      assert.ok(sim.device.changeSettings({ backupmode: "on", backup_soc: String(reserve) }));
      clock.advance(10 * 3600_000);
      assert.ok(Math.abs(sim.device.soc - reserve) < 0.5, `${sim.device.soc} vs ${reserve}`);
    });
  });
});
