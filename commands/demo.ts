/**
 * `ess demo` (`deno task demo`): ess end to end with no hardware and no outside service. It
 * starts the simulator in-process and runs real ess commands against it, one labelled section
 * each.
 *
 * @module
 */
import { sleep } from "../lib/backoff.ts";
import { Bridge, BRIDGE_DEFAULTS } from "../lib/mqtt/bridge.ts";
import { EssClient } from "../lib/device/client.ts";
import { STATE_NAMES } from "../lib/device/states.ts";
import { createLogger } from "../lib/log.ts";
import type { MqttConnection, MqttListener } from "../lib/mqtt/client.ts";
import { type Simulator, startSimulator } from "../lib/sim/simulator.ts";
import { controlTopic, DEFAULT_PREFIX } from "../lib/mqtt/topics.ts";
import { createDeviceFetch } from "../lib/device/transport.ts";
import { defineCommand, type Io } from "./_cli.ts";
import { renderData, renderGraph } from "./_format.ts";

/** What a demo section gets to work with. */
interface DemoContext {
  /** The simulator the demo runs against. */
  sim: Simulator;
  /** Output, with an environment that is empty so that no user setting leaks in. */
  io: Io;
  /** A client of the simulator, pinned to its certificate. */
  client: EssClient;
}

/** One labelled part of the demo; returns an exit code (0: go on). */
interface DemoSection {
  /** The heading printed above it. */
  title: string;
  /** Prints the section; returns an exit code. */
  run(ctx: DemoContext): Promise<number>;
}

/**
 * A broker inside the demo: it prints every message the bridge publishes and can deliver a
 * message to the bridge as a subscriber would, so the demo needs no MQTT server.
 */
class PrintingBroker implements MqttConnection {
  readonly broker = "the demo's in-memory broker";
  readonly connected = true;
  #listener: MqttListener | undefined;
  constructor(private readonly print: (line: string) => void) {}
  listen(listener: MqttListener): void {
    this.#listener = listener;
    listener.connected();
  }
  publish(topic: string, payload: string, options?: { retain?: boolean | undefined }) {
    this.print(`  ${topic} ${payload}${options?.retain ? "   (retained)" : ""}\n`);
    return Promise.resolve();
  }
  subscribe(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  /** Delivers a message to the bridge as if someone had published it. */
  deliver(topic: string, payload: string): void {
    this.print(`> ${topic} ${payload}   (a command, not retained)\n`);
    this.#listener?.message(topic, payload, false);
  }
}

/** `ess mqtt` against the simulator for two polls, with a command in between. */
const MQTT_SECTION: DemoSection = {
  title: "ess mqtt: the bridge publishes pyess's topics, then takes a command",
  async run(ctx) {
    const broker = new PrintingBroker((line) => ctx.io.out(line));
    const stop = new AbortController();
    const bridge = new Bridge({
      device: ctx.client,
      mqtt: broker,
      options: { ...BRIDGE_DEFAULTS, intervalMs: 1000 },
      logger: createLogger("warning", (line) => ctx.io.err(`ess: ${line}\n`)),
      now: Date.now,
      sleep,
      random: Math.random,
    });
    const running = bridge.run(stop.signal);
    try {
      await sleep(1500, stop.signal);
      ctx.io.out("\n");
      broker.deliver(controlTopic(DEFAULT_PREFIX, "winter_mode"), "true");
      await sleep(1000, stop.signal);
    } finally {
      stop.abort();
      await running;
    }
    ctx.io.out(`\nwinter mode on the device is now ${ctx.sim.device.winterMode ? "on" : "off"}\n`);
    return 0;
  },
};

/** The demo's sections, in order. */
const DEMO_SECTIONS: readonly DemoSection[] = [
  {
    title: "ess data --format table: the live state, as the device sends it",
    async run(ctx) {
      ctx.io.out(renderData(await ctx.client.readAll(STATE_NAMES), "table"));
      return 0;
    },
  },
  {
    title: "ess graph pv day --format chart: yesterday's PV generation",
    async run(ctx) {
      const now = new Date();
      const day = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
      const date = { year: day.getFullYear(), month: day.getMonth() + 1, day: day.getDate() };
      const answer = await ctx.client.graph("pv", "day", date);
      ctx.io.out(renderGraph(answer, "pv", "day", "chart"));
      return 0;
    },
  },
  MQTT_SECTION,
];

/** Runs every section against a fresh simulator; stops at the first that fails. */
async function runDemo(io: Io, sections: readonly DemoSection[]): Promise<number> {
  const sim = await startSimulator();
  const fetch = createDeviceFetch({ fingerprint: sim.fingerprint });
  try {
    const client = new EssClient({ host: sim.host, password: sim.password, fetch });
    const ctx: DemoContext = { sim, io: { ...io, env: () => undefined }, client };
    io.out(
      `ess demo: a simulated LG ESS listens on https://${sim.host} ` +
        `(password ${sim.password}, ${sim.firmware} firmware)\n`,
    );
    for (const [i, section] of sections.entries()) {
      io.out(`\n=== ${i + 1}. ${section.title} ===\n\n`);
      const code = await section.run(ctx);
      if (code !== 0) return code;
    }
    io.out("\nDone: that was ess against the simulator. Try 'ess simulate' to keep one running.\n");
    return 0;
  } finally {
    fetch.close();
    await sim.close();
  }
}

const command = defineCommand({
  name: "demo",
  usage: "demo",
  description: "Starts a simulated LG ESS on 127.0.0.1 and runs ess commands against it, " +
    "printing each\nunder a heading. Needs no hardware and no outside service.",
  options: [],
  examples: ["ess demo", "deno task demo"],
  run: (_p, io) => runDemo(io, DEMO_SECTIONS),
});

export default command;
