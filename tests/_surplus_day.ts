/**
 * A simulated day for the surplus tests: the simulator's house (sun, passing clouds, household,
 * battery) on a fake clock, polled every 10 s, with the loads the rules switch drawing their
 * power on top of it. A switched load takes what the house would have fed in first, then what
 * the battery would have charged with, then buys the rest.
 *
 * @module
 */
import type { Reading } from "../lib/model/reading.ts";
import { startSimulator } from "../lib/sim/simulator.ts";
import {
  SurplusEngine,
  type SurplusEngineOptions,
  type SurplusState,
} from "../lib/surplus/engine.ts";

/** One poll of the day. */
export interface DayPoll {
  at: number;
  /** The reading ess saw (absent while the device was out). */
  reading: Pick<Reading, "power" | "socPct"> | undefined;
  state: SurplusState;
}

/** What {@link simulateDay} takes besides the engine's options. */
export interface DayOptions {
  /** The simulator's seed (its weather). */
  seed: number;
  /** Local midnight of the day (TZ=UTC in the tests). */
  day: string;
  /** Polls from this hour to `toHour`. */
  fromHour: number;
  toHour: number;
  /** ms between polls. */
  intervalMs?: number;
  /** The device does not answer in these spans [from, to) of ms since `day`'s midnight. */
  outages?: readonly [number, number][];
  /** What each rule's load really draws, when that is not its `loadWatts` (to test the loop). */
  drawW?: Readonly<Record<string, number>>;
}

/** Runs the engine through a simulated day; returns every poll. */
export async function simulateDay(
  engineOptions: SurplusEngineOptions,
  options: DayOptions,
): Promise<DayPoll[]> {
  const midnight = Date.parse(`${options.day}T00:00:00Z`);
  let clock = midnight + options.fromHour * 3_600_000;
  const sim = await startSimulator({ seed: options.seed, now: () => new Date(clock) });
  try {
    const engine = new SurplusEngine(engineOptions);
    const polls: DayPoll[] = [];
    const draw = new Map(engineOptions.rules.map((r) => [r.name, r.loadWatts]));
    for (const [name, w] of Object.entries(options.drawW ?? {})) draw.set(name, w);
    const end = midnight + options.toHour * 3_600_000;
    for (; clock <= end; clock += options.intervalMs ?? 10_000) {
      const since = clock - midnight;
      const out = options.outages?.some(([from, to]) => since >= from && since < to) ?? false;
      let switched = 0;
      for (const rule of engine.state.rules) if (rule.on) switched += draw.get(rule.name) ?? 0;
      const reading = out ? undefined : readingWith(sim.device.flows, sim.device.soc, switched);
      polls.push({ at: clock, reading, state: engine.update(clock, reading) });
    }
    return polls;
  } finally {
    await sim.close();
  }
}

/** The reading of the house's flows with `extraW` more load. */
function readingWith(
  flows: {
    feedIn: number;
    purchase: number;
    charge: number;
    discharge: number;
    load: number;
    pv: number;
  },
  soc: number,
  extraW: number,
): Pick<Reading, "power" | "socPct"> {
  let { feedIn, purchase, charge } = flows;
  const fromFeedIn = Math.min(feedIn, extraW);
  feedIn -= fromFeedIn;
  const fromCharge = Math.min(charge, extraW - fromFeedIn);
  charge -= fromCharge;
  purchase += extraW - fromFeedIn - fromCharge;
  return {
    power: {
      pvW: flows.pv,
      loadW: flows.load + extraW,
      gridW: purchase - feedIn,
      batteryW: flows.discharge - charge,
    },
    socPct: soc,
  };
}

/** Each time a rule switched: when, and to what. */
export function switches(polls: readonly DayPoll[], rule: string): { at: number; on: boolean }[] {
  const out: { at: number; on: boolean }[] = [];
  let on = false;
  for (const poll of polls) {
    const status = poll.state.rules.find((r) => r.name === rule)!;
    if (status.on !== on) out.push({ at: poll.at, on: status.on });
    on = status.on;
  }
  return out;
}
