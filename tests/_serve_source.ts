/**
 * Sources for the `ess serve` tests: the real one (a poller, a control queue and `pollerSource`
 * over the simulator, polling on a short timer so that the dashboard sees live numbers), and one
 * in memory that says whatever a test wants (secrets, huge answers, graphs that never come).
 *
 * @module
 */
import { seededRandom, sleep } from "../lib/backoff.ts";
import type { GraphAnswer } from "../lib/device/client.ts";
import { EssClient } from "../lib/device/client.ts";
import { ControlQueue } from "../lib/device/control_queue.ts";
import type { JsonObject } from "../lib/device/flatten.ts";
import { Poller } from "../lib/device/poller.ts";
import type { CalendarDate, GraphDevice, GraphSpan, StateName } from "../lib/device/states.ts";
import { createDeviceFetch } from "../lib/device/transport.ts";
import { silentLogger } from "../lib/log.ts";
import { pollerSource } from "../lib/serve/poller_source.ts";
import { type Simulator, type SimulatorOptions, startSimulator } from "../lib/sim/simulator.ts";
import type { ControlCommand, ControlName } from "../lib/device/controls.ts";
import type { ControlOutcome, ServeSnapshot, ServeSource } from "../lib/serve/source.ts";
import { waitFor } from "./_wait.ts";
import type { Reading } from "../lib/model/reading.ts";

/** Calls listeners; the result of `add` removes one again. */
class Listeners {
  #set = new Set<() => void>();
  add(listener: () => void): () => void {
    this.#set.add(listener);
    return () => this.#set.delete(listener);
  }
  call(): void {
    for (const listener of [...this.#set]) listener();
  }
}

/** The real source over the simulator, recording the commands it is given. */
export interface SimSource extends ServeSource {
  /** The client every poll, graph and control goes through. */
  readonly client: EssClient;
  /** Every control command received, in order. */
  readonly controls: { name: ControlName; description: string; source: string }[];
}

/** A simulator whose clock the test moves, and the real source polling it. */
export interface SimWorld {
  sim: Simulator;
  source: SimSource;
  /** Moves the simulated clock. */
  setTime(date: Date): void;
}

/**
 * Runs `fn` with a simulator at `start`, and a poller reading it every `intervalMs` behind
 * `pollerSource`, as `ess serve` runs them, once the first poll and systeminfo have arrived.
 * Controls are not spaced, and the device counts as down at its first failed poll, so that the
 * tests need not wait for the daemon's rules (tests/poller_source_test.ts checks those).
 */
export async function withSimSource(
  fn: (w: SimWorld) => Promise<void>,
  { start = new Date("2026-06-21T10:00:00Z"), intervalMs = 200, simulator = {} }: {
    start?: Date;
    intervalMs?: number;
    simulator?: Omit<SimulatorOptions, "now">;
  } = {},
): Promise<void> {
  let time = start;
  const sim = await startSimulator({ ...simulator, now: () => time });
  const fetch = createDeviceFetch({ fingerprint: sim.fingerprint, timeoutMs: 2000 });
  const client = new EssClient({ host: sim.host, password: sim.password, fetch });
  const poller = new Poller({
    device: client,
    options: {
      intervalMs,
      commonDivisor: 1,
      offlineAfterFailures: 1,
      offlineAfterMs: 0,
      maxBackoffMs: 1000,
    },
    logger: silentLogger,
    now: Date.now,
    sleep,
    random: seededRandom(1),
  });
  const queue = new ControlQueue({
    poller,
    options: { controlSpacingMs: 0, activeSpacingMs: 0 },
    logger: silentLogger,
    now: Date.now,
    sleep,
  });
  const real = pollerSource(poller, queue, client);
  const controls: SimSource["controls"] = [];
  const source: SimSource = {
    client,
    controls,
    snapshot: () => real.snapshot(),
    onPoll: (listener) => real.onPoll(listener),
    graph: (device, span, date) => real.graph(device, span, date),
    control(name, command, from) {
      controls.push({ name, description: command.description, source: from });
      return real.control(name, command, from);
    },
  };
  const stop = new AbortController();
  const running = poller.run(stop.signal);
  try {
    await waitFor(() => real.snapshot().states.systeminfo !== undefined, {
      what: "the simulator's systeminfo",
    });
    await fn({ sim, source, setTime: (date) => time = date });
  } finally {
    stop.abort();
    queue.close();
    real.close();
    await running;
    fetch.close();
    await sim.close();
  }
}

/** Several simulators as a site, each with the real source polling it. */
export interface SimSite {
  /** By name (`sim1`, `sim2`, …), in order. */
  devices: Map<string, SimWorld>;
  /** Moves every simulator's clock. */
  setTime(date: Date): void;
}

/**
 * Runs `fn` with `count` different simulators (seeds 1 to `count`, so each has its own serial
 * and house), named `sim1` … `simN`, each polled by its own poller and source as `ess serve`
 * polls the devices of a `[device NAME]` config (see {@link withSimSource}).
 */
export async function withSimSite(
  count: number,
  fn: (site: SimSite) => Promise<void>,
  { start = new Date("2026-06-21T10:00:00Z"), intervalMs = 200 } = {},
): Promise<void> {
  const devices = new Map<string, SimWorld>();
  const run = async (i: number): Promise<void> => {
    if (i > count) {
      await fn({ devices, setTime: (date) => devices.forEach((w) => w.setTime(date)) });
      return;
    }
    await withSimSource(async (world) => {
      devices.set(`sim${i}`, world);
      await run(i + 1);
    }, { start, intervalMs, simulator: { seed: i } });
  };
  await run(1);
}

/** The states the server shows, as a fixture family (`classic`, `new`, `home15`) has them. */
export function fixtureStates(family: string): Partial<Record<StateName, JsonObject>> {
  const states: Partial<Record<StateName, JsonObject>> = {};
  for (const state of ["home", "common", "batt", "systeminfo"] as const) {
    const file = new URL(`../fixtures/${family}/${state}.json`, import.meta.url);
    try {
      states[state] = JSON.parse(Deno.readTextFileSync(file));
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  return states;
}

/** A source that answers what the test put in it. */
export class FakeSource implements ServeSource {
  /** What {@link FakeSource.snapshot} answers. */
  snap: ServeSnapshot = { states: {}, lastSuccess: undefined, up: undefined };
  /** How graph requests are answered. */
  graphAnswer: (device: GraphDevice, span: GraphSpan, date: CalendarDate) => Promise<GraphAnswer> =
    () => Promise.resolve({ loginfo: [] });
  /** How control commands are answered. */
  controlAnswer: (name: ControlName, command: ControlCommand) => Promise<ControlOutcome> = () =>
    Promise.resolve({ outcome: "written" });
  #listeners = new Listeners();

  /** {@link FakeSource.snap}. */
  snapshot(): ServeSnapshot {
    return this.snap;
  }
  /** Calls `listener` after every {@link FakeSource.poll} and {@link FakeSource.fail}. */
  onPoll(listener: () => void): () => void {
    return this.#listeners.add(listener);
  }
  /** Answers with {@link FakeSource.graphAnswer}. */
  graph(device: GraphDevice, span: GraphSpan, date: CalendarDate): Promise<GraphAnswer> {
    return this.graphAnswer(device, span, date);
  }
  /** Answers with {@link FakeSource.controlAnswer}. */
  control(name: ControlName, command: ControlCommand): Promise<ControlOutcome> {
    return this.controlAnswer(name, command);
  }
  /** Sets the states (and the reading a poller made of them, if given) as a successful poll and tells the listeners. */
  poll(states: Partial<Record<StateName, JsonObject>>, at = Date.now(), reading?: Reading): void {
    this.snap = { states, lastSuccess: at, up: true, ...(reading ? { reading } : {}) };
    this.#listeners.call();
  }
  /** A failed poll. */
  fail(error: string): void {
    this.snap = { ...this.snap, up: false, error };
    this.#listeners.call();
  }
}
