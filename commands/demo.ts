/**
 * `ess demo` (`deno task demo`): ess end to end with no hardware and no outside service. It
 * starts the simulator in-process and runs real ess commands against it, one labelled section
 * each.
 *
 * @module
 */
import { UsageError } from "../lib/errors.ts";
import { type Simulator, startSimulator } from "../lib/simulator.ts";
import { type Command, type Io, parseCommand } from "./_cli.ts";
import data from "./data.ts";
import graph from "./graph.ts";

/** What a demo section gets to work with. */
export interface DemoContext {
  sim: Simulator;
  /** Output, with an environment that is empty so that no user setting leaks in. */
  io: Io;
  /** `--host`, `--password` and `--fingerprint` of the simulator, for a command's argv. */
  deviceArgs: string[];
}

/** One labelled part of the demo; returns an exit code (0: go on). */
export interface DemoSection {
  title: string;
  run(ctx: DemoContext): Promise<number>;
}

const pad = (n: number) => String(n).padStart(2, "0");

/** The demo's sections in order; later features append theirs. */
export const DEMO_SECTIONS: DemoSection[] = [
  {
    title: "ess data --format table: the live state, as the device sends it",
    run: (ctx) => data.run([...ctx.deviceArgs, "--format", "table"], ctx.io),
  },
  {
    title: "ess graph pv day --format chart: yesterday's PV generation",
    run: (ctx) => {
      const now = new Date();
      const day = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
      const date = `${day.getFullYear()}-${pad(day.getMonth() + 1)}-${pad(day.getDate())}`;
      return graph.run(["pv", "day", date, ...ctx.deviceArgs, "--format", "chart"], ctx.io);
    },
  },
];

/** Runs every section against a fresh simulator; stops at the first that fails. */
export async function runDemo(io: Io, sections: readonly DemoSection[]): Promise<number> {
  const sim = await startSimulator();
  try {
    const ctx: DemoContext = {
      sim,
      io: { ...io, env: () => undefined },
      deviceArgs: [
        "--host",
        sim.host,
        "--password",
        sim.password,
        "--fingerprint",
        sim.fingerprint,
      ],
    };
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
    await sim.close();
  }
}

const command: Command = {
  name: "demo",
  usage: "demo",
  description: "Starts a simulated LG ESS on 127.0.0.1 and runs ess commands against it, " +
    "printing each\nunder a heading. Needs no hardware and no outside service.",
  options: [],
  examples: ["ess demo", "deno task demo"],
  async run(argv: string[], io: Io): Promise<number> {
    const p = await parseCommand(command, argv, io);
    if (!p) return 0;
    if (p.positionals.length > 0) throw new UsageError("ess demo takes no arguments");
    return await runDemo(io, DEMO_SECTIONS);
  },
};

export default command;
