import assert from "node:assert/strict";
import { SurplusEngine } from "../lib/surplus/engine.ts";
import { instantSurplus } from "../lib/surplus/power.ts";
import { Rule, type RuleSettings, type RuleStatus } from "../lib/surplus/rule.ts";
import { type DayPoll, simulateDay, switches } from "./_surplus_day.ts";

const SURPLUS = { prioritySocPct: 80, reserveW: 100, windowMs: 60_000 };

/** A rule with evcc's delays and no minimum times, changed by `patch`. */
function rule(patch: Partial<RuleSettings> = {}): RuleSettings {
  return {
    name: "heater",
    onWatts: 1500,
    offWatts: 200,
    loadWatts: 2000,
    onDelaySeconds: 60,
    offDelaySeconds: 180,
    minOnSeconds: 0,
    minOffSeconds: 0,
    minSoc: 0,
    ...patch,
  };
}

const statusOf = (poll: DayPoll, name: string): RuleStatus =>
  poll.state.rules.find((r) => r.name === name)!;

Deno.test("instantSurplus() follows the documented formula", async (t) => {
  const s = { prioritySocPct: 80, reserveW: 100 };
  await t.step("should count export and charging at or above the priority SoC", () => {
    assert.equal(instantSurplus({ power: { gridW: -1000, batteryW: -500 }, socPct: 80 }, s), 1400);
  });
  await t.step("should count only export below the priority SoC", () => {
    assert.equal(instantSurplus({ power: { gridW: -1000, batteryW: -500 }, socPct: 79 }, s), 900);
  });
  await t.step("should count buying and discharging against it at any SoC", () => {
    assert.equal(instantSurplus({ power: { gridW: 300, batteryW: 0 }, socPct: 90 }, s), -400);
    assert.equal(instantSurplus({ power: { gridW: 0, batteryW: 700 }, socPct: 30 }, s), -800);
  });
  await t.step("should take a reading without a SoC as below the priority SoC", () => {
    assert.equal(instantSurplus({ power: { gridW: -1000, batteryW: -500 } }, s), 900);
  });
  await t.step("should be unknown, not zero, without the grid power", () => {
    assert.equal(instantSurplus({ power: { batteryW: -500 }, socPct: 90 }, s), undefined);
    assert.equal(instantSurplus({ power: { gridW: NaN } }, s), undefined);
  });
});

Deno.test("Rule.step() switches at its thresholds after its delays", async (t) => {
  const at = (s: number) => s * 1000;
  await t.step("should wait for the on delay, and start it over when the surplus dips", () => {
    const r = new Rule(rule());
    assert.equal(r.step({ at: at(0), availableW: 1600, socPct: 90 }).reason, "on-delay");
    assert.match(r.status.why, /1600 W ≥ on at 1500 W, on in 60 s/);
    assert.equal(r.step({ at: at(30), availableW: 1499, socPct: 90 }).reason, "below-on");
    assert.equal(r.step({ at: at(40), availableW: 1500, socPct: 90 }).reason, "on-delay");
    assert.equal(r.step({ at: at(99), availableW: 1500, socPct: 90 }).on, false);
    const on = r.step({ at: at(100), availableW: 1500, socPct: 90 });
    assert.deepEqual([on.on, on.reason, on.changedAt], [true, "switched-on", at(100)]);
  });
  await t.step("should stay on between the thresholds and wait for the off delay", () => {
    const r = new Rule(rule({ onDelaySeconds: 0 }));
    r.step({ at: 0, availableW: 1500, socPct: 90 });
    assert.equal(r.step({ at: at(10), availableW: 200, socPct: 90 }).reason, "above-off");
    assert.equal(r.step({ at: at(20), availableW: 199, socPct: 90 }).reason, "off-delay");
    assert.equal(r.step({ at: at(199), availableW: 0, socPct: 90 }).on, true);
    assert.equal(r.step({ at: at(200), availableW: 0, socPct: 90 }).reason, "switched-off");
  });
  await t.step("should be held by its minimum on and off times, and say so", () => {
    const r = new Rule(
      rule({ onDelaySeconds: 0, offDelaySeconds: 0, minOnSeconds: 600, minOffSeconds: 300 }),
    );
    assert.equal(r.step({ at: 0, availableW: 2000, socPct: 90 }).on, true);
    const held = r.step({ at: at(100), availableW: -500, socPct: 90 });
    assert.deepEqual([held.on, held.reason], [true, "min-on"]);
    assert.match(held.why, /held on by the minimum on time: 500 s left/);
    assert.equal(r.step({ at: at(600), availableW: -500, socPct: 90 }).on, false);
    const heldOff = r.step({ at: at(700), availableW: 3000, socPct: 90 });
    assert.deepEqual([heldOff.on, heldOff.reason], [false, "min-off"]);
    assert.equal(r.step({ at: at(900), availableW: 3000, socPct: 90 }).on, true);
  });
  await t.step("should keep off below its minimum SoC, and go off when the SoC falls", () => {
    const r = new Rule(rule({ onDelaySeconds: 0, offDelaySeconds: 0, minSoc: 40 }));
    const low = r.step({ at: 0, availableW: 3000, socPct: 39 });
    assert.deepEqual([low.on, low.reason, low.why], [false, "soc-low", "SoC 39 % < 40 %"]);
    assert.equal(r.step({ at: at(10), availableW: 3000, socPct: undefined }).reason, "soc-low");
    assert.equal(r.step({ at: at(20), availableW: 3000, socPct: 40 }).on, true);
    assert.equal(r.step({ at: at(30), availableW: 3000, socPct: 35 }).on, false);
  });
});

Deno.test("SurplusEngine", async (t) => {
  const reading = (gridW: number) => ({ power: { gridW, batteryW: 0 }, socPct: 50 });
  await t.step("should average the surplus over its window", () => {
    const engine = new SurplusEngine({ surplus: SURPLUS, rules: [], graceMs: 30_000 });
    engine.update(0, reading(-1100));
    assert.equal(engine.update(10_000, reading(-2100)).powerW, 1500);
    assert.equal(engine.state.instantW, 2000);
    assert.equal(engine.update(65_000, reading(-100)).powerW, 1000);
  });
  await t.step("should add a rule's load back only to the samples it drew in", () => {
    const engine = new SurplusEngine({
      surplus: { ...SURPLUS, windowMs: 30_000 },
      rules: [rule({ onDelaySeconds: 0 })],
      graceMs: 30_000,
    });
    assert.equal(engine.update(0, reading(-1700)).rules[0]!.on, true);
    // The heater's 2000 W now draws: the export becomes a purchase of 300 W.
    const on = engine.update(10_000, reading(300)).rules[0]!;
    assert.deepEqual([on.on, on.availableW, engine.state.powerW], [true, 1600, 600]);
  });
  await t.step("should change a rule's settings at run time and keep its state", () => {
    const engine = new SurplusEngine({
      surplus: SURPLUS,
      rules: [rule({ onDelaySeconds: 0 })],
      graceMs: 30_000,
    });
    assert.equal(engine.update(0, reading(-1700)).rules[0]!.on, true);
    assert.equal(engine.setRule(rule({ offWatts: 1500, onWatts: 2500, offDelaySeconds: 0 })), true);
    assert.equal(engine.rules[0]!.onWatts, 2500);
    assert.equal(engine.update(10_000, reading(800)).rules[0]!.reason, "switched-off");
    assert.equal(engine.setRule(rule({ name: "nobody" })), false);
  });
});

Deno.test("surplus rules through a simulated day with passing clouds", async (t) => {
  // Seed 2's 15 June is a day of passing clouds: the surplus crosses the thresholds often.
  const day = { seed: 2, day: "2026-06-15", fromHour: 5, toHour: 21 };
  const heater = rule({ minOnSeconds: 600, minOffSeconds: 300 });
  const pump = rule({ name: "pump", onWatts: 600, offWatts: 0, loadWatts: 500 });
  const polls = await simulateDay(
    { surplus: SURPLUS, rules: [heater, pump], graceMs: 30_000 },
    day,
  );

  await t.step("should switch each rule on and off at its thresholds, after its delays", () => {
    for (const settings of [heater, pump]) {
      const changes = switches(polls, settings.name);
      assert.ok(changes.length >= 4, `${settings.name} switched ${changes.length} times`);
      for (const change of changes) {
        const delay = (change.on ? settings.onDelaySeconds : settings.offDelaySeconds) * 1000;
        const before = polls.filter((p) => p.at >= change.at - delay && p.at <= change.at);
        for (const poll of before) {
          const { availableW } = statusOf(poll, settings.name);
          assert.ok(availableW !== undefined);
          if (change.on) {
            assert.ok(availableW >= settings.onWatts, `${settings.name} on at ${change.at}`);
          } else assert.ok(availableW < settings.offWatts, `${settings.name} off at ${change.at}`);
        }
      }
    }
  });
  await t.step("should ride out a passing cloud within its off delay", () => {
    const rode = polls.filter((p, i) => {
      const now = statusOf(p, "heater");
      const next = polls[i + 1] && statusOf(polls[i + 1]!, "heater");
      return now.reason === "off-delay" && next?.reason === "above-off";
    });
    assert.ok(rode.length > 0, "no cloud was ridden out");
  });
  await t.step("should never toggle faster than its minimum times allow", () => {
    const changes = switches(polls, "heater");
    for (let i = 1; i < changes.length; i++) {
      const held = changes[i]!.at - changes[i - 1]!.at;
      const min = changes[i - 1]!.on ? heater.minOnSeconds : heater.minOffSeconds;
      assert.ok(held >= min * 1000, `held ${held} ms after switching at ${changes[i - 1]!.at}`);
    }
    assert.ok(polls.some((p) => ["min-on", "min-off"].includes(statusOf(p, "heater").reason)));
  });
  await t.step(
    "should not loop: adding back the load keeps it from switching itself off",
    async () => {
      const options = { surplus: SURPLUS, graceMs: 30_000 };
      const drawW = { heater: 2000 };
      const withLoad = await simulateDay({ ...options, rules: [rule()] }, { ...day, drawW });
      const without = await simulateDay(
        { ...options, rules: [rule({ loadWatts: 0 })] },
        { ...day, drawW },
      );
      const loops = (p: DayPoll[]) => {
        const changes = switches(p, "heater");
        // Switched off by its own load: off within the off delay and the window of going on.
        return changes.filter((c, i) => !c.on && i > 0 && c.at - changes[i - 1]!.at <= 300_000)
          .length;
      };
      assert.ok(
        loops(without) >= 3,
        `without the load added back it looped ${loops(without)} times`,
      );
      assert.equal(loops(withLoad), 0);
      assert.ok(switches(without, "heater").length >= 3 * switches(withLoad, "heater").length);
    },
  );
});

Deno.test("surplus rules fail safe when the device goes offline", async (t) => {
  // Seed 1's 15 June is sunny: the heater is on from about 10:00 until the evening.
  const outage: [number, number] = [12 * 3_600_000, 12 * 3_600_000 + 300_000];
  const polls = await simulateDay(
    { surplus: SURPLUS, rules: [rule()], graceMs: 30_000 },
    { seed: 1, day: "2026-06-15", fromHour: 9, toHour: 14, outages: [outage] },
  );
  const start = Date.parse("2026-06-15T12:00:00Z");
  const at = (s: number) => polls.find((p) => p.at === start + s * 1000)!;
  await t.step("should hold its state within the grace period", () => {
    assert.equal(statusOf(at(-10), "heater").on, true);
    // The last answer came at 11:59:50; the grace runs from there.
    assert.equal(at(10).reading, undefined);
    assert.equal(statusOf(at(10), "heater").on, true);
    assert.equal(typeof at(10).state.powerW, "number");
  });
  await t.step("should make the surplus unknown and turn every rule off after it", () => {
    const out = at(20);
    assert.equal(out.state.powerW, undefined);
    assert.equal(out.state.failSafe, true);
    const heater = statusOf(out, "heater");
    assert.deepEqual([heater.on, heater.reason], [false, "offline"]);
    assert.match(heater.why, /^device offline for 30 s \(grace 30 s\): off$/);
    assert.equal(statusOf(at(290), "heater").on, false);
  });
  await t.step("should come back after the on delay once the device answers", () => {
    assert.equal(typeof at(300).state.powerW, "number");
    assert.equal(statusOf(at(300), "heater").reason, "on-delay");
    assert.equal(statusOf(at(360), "heater").on, true);
  });
});
