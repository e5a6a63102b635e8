/**
 * Sources for the `ess serve` tests: one that polls the simulator through a real `EssClient` on
 * a short timer (the dashboard sees live numbers), and one in memory that says whatever a test
 * wants (secrets, huge answers, graphs that never come).
 *
 * @module
 */
import type { GraphAnswer } from "../lib/device/client.ts";
import { EssClient } from "../lib/device/client.ts";
import { errorText } from "../lib/errors.ts";
import type { JsonObject } from "../lib/device/flatten.ts";
import type { CalendarDate, GraphDevice, GraphSpan, StateName } from "../lib/device/states.ts";
import { createDeviceFetch } from "../lib/device/transport.ts";
import { type Simulator, startSimulator } from "../lib/sim/simulator.ts";
import type {
  ControlCommand,
  ControlName,
  ControlOutcome,
  ServeSnapshot,
  ServeSource,
} from "../lib/serve/source.ts";

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

/** Polls a device every `intervalMs`: `systeminfo` once, then `home`, `common` and `batt`. */
export class PollingSource implements ServeSource {
  /** The client every poll, graph and control goes through. */
  readonly client: EssClient;
  /** Every control command received, in order. */
  readonly controls: { name: ControlName; description: string; source: string }[] = [];
  #fetch: ReturnType<typeof createDeviceFetch>;
  #intervalMs: number;
  #listeners = new Listeners();
  #snapshot: ServeSnapshot = { states: {}, lastSuccess: undefined, up: undefined };
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  #polling: Promise<void> = Promise.resolve();

  constructor(sim: Pick<Simulator, "host" | "password" | "fingerprint">, intervalMs: number) {
    this.#fetch = createDeviceFetch({ fingerprint: sim.fingerprint, timeoutMs: 2000 });
    this.client = new EssClient({ host: sim.host, password: sim.password, fetch: this.#fetch });
    this.#intervalMs = intervalMs;
  }

  /** Polls now and then every interval; resolves after the first poll. */
  async start(): Promise<void> {
    await this.pollNow();
    this.#schedule();
  }

  /** One poll, after any poll under way. */
  pollNow(): Promise<void> {
    this.#polling = this.#polling.then(() => this.#poll());
    return this.#polling;
  }

  /** Stops polling, waits for a poll under way, and closes the connection. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#polling;
    this.#fetch.close();
  }

  /** The latest answers. */
  snapshot(): ServeSnapshot {
    return this.#snapshot;
  }

  /** Calls `listener` after every poll. */
  onPoll(listener: () => void): () => void {
    return this.#listeners.add(listener);
  }

  /** Reads a graph from the simulator. */
  graph(device: GraphDevice, span: GraphSpan, date: CalendarDate): Promise<GraphAnswer> {
    return this.client.graph(device, span, date);
  }

  /** Runs the command on the simulator at once, then polls so the change shows. */
  async control(
    name: ControlName,
    command: ControlCommand,
    source: string,
  ): Promise<ControlOutcome> {
    this.controls.push({ name, description: command.description, source });
    try {
      await command.run(this.client);
    } catch (err) {
      return { outcome: "failed", error: errorText(err) };
    }
    await this.pollNow();
    return { outcome: "written" };
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(async () => {
      await this.pollNow();
      this.#schedule();
    }, this.#intervalMs);
  }

  async #poll(): Promise<void> {
    if (this.#stopped) return;
    const wanted: StateName[] = ["home", "common", "batt"];
    if (!this.#snapshot.states.systeminfo) wanted.unshift("systeminfo");
    try {
      const states = { ...this.#snapshot.states };
      for (const state of wanted) states[state] = await this.client.read(state);
      this.#snapshot = { states, lastSuccess: Date.now(), up: true };
    } catch (err) {
      this.#snapshot = { ...this.#snapshot, up: false, error: errorText(err) };
    }
    this.#listeners.call();
  }
}

/** A simulator whose clock the test moves, and a source polling it. */
export interface SimWorld {
  sim: Simulator;
  source: PollingSource;
  /** Moves the simulated clock. */
  setTime(date: Date): void;
}

/** Runs `fn` with a simulator at `start` and a source polling it every `intervalMs`. */
export async function withSimSource(
  fn: (w: SimWorld) => Promise<void>,
  { start = new Date("2026-06-21T10:00:00Z"), intervalMs = 200 } = {},
): Promise<void> {
  let time = start;
  const sim = await startSimulator({ now: () => time });
  const source = new PollingSource(sim, intervalMs);
  try {
    await source.start();
    await fn({ sim, source, setTime: (date) => time = date });
  } finally {
    await source.stop();
    await sim.close();
  }
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
  /** Every graph asked for, as `device/span/y-m-d`. */
  readonly graphCalls: string[] = [];
  /** Every control command, as `name: description`. */
  readonly controlCalls: string[] = [];
  #listeners = new Listeners();

  /** {@link FakeSource.snap}. */
  snapshot(): ServeSnapshot {
    return this.snap;
  }
  /** Calls `listener` after every {@link FakeSource.poll} and {@link FakeSource.fail}. */
  onPoll(listener: () => void): () => void {
    return this.#listeners.add(listener);
  }
  /** Records the request and answers with {@link FakeSource.graphAnswer}. */
  graph(device: GraphDevice, span: GraphSpan, date: CalendarDate): Promise<GraphAnswer> {
    this.graphCalls.push(`${device}/${span}/${date.year}-${date.month}-${date.day}`);
    return this.graphAnswer(device, span, date);
  }
  /** Records the command and answers with {@link FakeSource.controlAnswer}. */
  control(name: ControlName, command: ControlCommand): Promise<ControlOutcome> {
    this.controlCalls.push(`${name}: ${command.description}`);
    return this.controlAnswer(name, command);
  }
  /** Sets the states as a successful poll and tells the listeners. */
  poll(states: Partial<Record<StateName, JsonObject>>, at = Date.now()): void {
    this.snap = { states, lastSuccess: at, up: true };
    this.#listeners.call();
  }
  /** A failed poll. */
  fail(error: string): void {
    this.snap = { ...this.snap, up: false, error };
    this.#listeners.call();
  }
}
