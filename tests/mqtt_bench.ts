/**
 * Benchmark of `ess mqtt`, run as `deno task bench` (it needs a whole process, so it is a script
 * rather than a `Deno.bench`). It starts the simulator and an in-process aedes broker, runs the
 * real CLI as a subprocess with the flags of run-flags.txt, and reads the subprocess's
 * CPU time and memory from /proc:
 *
 * - CPU seconds and peak RSS over 20 s at a 1 s interval, five runs, the median reported;
 * - CPU time per poll cycle and RSS growth over 10,000 fast cycles, after a warm-up (the bridge
 *   at a 1 ms interval, which the CLI does not offer, in a process of its own:
 *   tests/_fast_bridge.ts), and V8's heap after each full collection;
 * - the same heap under a flood of commands (200 every 100 ms for 2 minutes);
 * - command latency: control message published -> request at the device, p50 and p95.
 *
 * It takes about ten minutes; `deno run -A tests/mqtt_bench.ts CYCLES WARMUP` changes the fast
 * run (default 10,000 cycles measured after 50,000 to warm up). The ten-minute soak is
 * tests/soak_bench.ts (`deno task soak`).
 *
 * @module
 */
import { type Simulator, startSimulator } from "../lib/sim/simulator.ts";
import { createLogger } from "../lib/log.ts";
import { BATT_SETTING_PATH, STATE_PATHS } from "../lib/device/states.ts";
import mqtt from "mqtt";
import { startAedes, type TestBroker, watch, type Watcher } from "./_broker.ts";
import {
  clockTicks,
  median,
  pause,
  percentile,
  sample as sampleProcess,
  spawnEss as spawnCli,
  stopEss,
  write,
  writeTable,
} from "./_bench.ts";
import { PERMISSIONS } from "./_cli.ts";
import { worldArgs } from "./_world.ts";

const FAST_BRIDGE = new URL("./_fast_bridge.ts", import.meta.url).pathname;
/** Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`), set before measuring. */
let ticksPerSecond = 100;

const sample = (pid: number) => sampleProcess(pid, ticksPerSecond);

/** The bridge at a 1 ms interval in a process of its own, with the binary's flags. */
interface FastBridge {
  child: Deno.ChildProcess;
  /** V8's heap in MB after each full collection so far (from `--trace-gc` on its stdout). */
  liveHeaps: number[];
}

function spawnFastBridge(sim: Simulator, broker: TestBroker): FastBridge {
  const flags = PERMISSIONS.map((f) => f.startsWith("--v8-flags=") ? `${f},--trace-gc` : f);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      ...flags,
      FAST_BRIDGE,
      sim.host,
      sim.password,
      sim.fingerprint,
      broker.url,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const liveHeaps: number[] = [];
  void (async () => {
    for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
      for (const [, mb] of text.matchAll(/Mark-Compact[^\n]*?-> ([\d.]+) \(/g)) {
        liveHeaps.push(Number(mb));
      }
    }
  })();
  return { child, liveHeaps };
}

/** `min–max (n full collections)`, or that there was none. */
function heapRange(heaps: readonly number[]): string {
  if (heaps.length === 0) return "no full collection";
  return `${Math.min(...heaps).toFixed(1)}–${Math.max(...heaps).toFixed(1)} MB (${heaps.length} ` +
    `full collections)`;
}

function spawnEss(sim: Simulator, broker: TestBroker, args: string[]): Deno.ChildProcess {
  return spawnCli(["mqtt", ...worldArgs({ sim, broker }), "--log-level", "warning", ...args]);
}

function polls(sim: Simulator): number {
  return sim.requests.filter((r) => r.path === STATE_PATHS.home).length;
}

async function untilPolls(sim: Simulator, n: number): Promise<void> {
  while (polls(sim) < n) await pause(50);
}

async function atOneSecond(sim: Simulator, broker: TestBroker) {
  const child = spawnEss(sim, broker, ["--interval-seconds", "1"]);
  try {
    await pause(2_000);
    const started = sample(child.pid);
    await pause(18_000);
    const first20 = sample(child.pid);
    await pause(2_000);
    const steady = sample(child.pid);
    return { started, first20, steady };
  } finally {
    await stopEss(child);
  }
}

/**
 * RSS over `cycles` fast polls after `warmup` polls, sampled every `cycles / 4`: V8 sizes its heap
 * during the warm-up (under this allocation rate its first full collection comes after about
 * 45,000 polls), so growth after it is what a leak would show.
 */
async function fastCycles(sim: Simulator, broker: TestBroker, cycles: number, warmup: number) {
  const { child, liveHeaps } = spawnFastBridge(sim, broker);
  try {
    const base = polls(sim);
    await untilPolls(sim, base + warmup);
    const samples = [sample(child.pid)];
    const started = performance.now();
    for (let quarter = 1; quarter <= 4; quarter++) {
      await untilPolls(sim, base + warmup + cycles * quarter / 4);
      samples.push(sample(child.pid));
    }
    const seconds = (performance.now() - started) / 1000;
    return { samples, seconds, cycles, warmup, liveHeaps };
  } finally {
    await stopEss(child);
  }
}

/**
 * Memory under a flood of commands: 200 alternating start/stop and winter mode commands every
 * 100 ms for `seconds`, into the bridge at a 1 ms interval, so that V8 collects often enough to
 * show what the command path keeps (at a 1 s interval it may not collect for hours).
 */
async function commandFlood(sim: Simulator, broker: TestBroker, seconds: number) {
  const { child, liveHeaps } = spawnFastBridge(sim, broker);
  const flood = await mqtt.connectAsync(broker.url, { clientId: "bench-flood" });
  try {
    await untilPolls(sim, polls(sim) + 1000);
    let commands = 0;
    const rss: number[] = [];
    for (const until = performance.now() + seconds * 1000; performance.now() < until;) {
      for (let i = 0; i < 200; i++, commands++) {
        const topic = i % 2 === 0 ? "ess/control/active" : "ess/control/winter_mode";
        flood.publish(topic, (commands >> 1) % 2 === 0 ? "true" : "false");
      }
      await pause(100);
      if (commands % 60_000 === 0) rss.push(sample(child.pid).rssMb);
    }
    return { commands, rss, liveHeaps };
  } finally {
    await flood.endAsync();
    await stopEss(child);
  }
}

/** One `--once` run first, so that every measured run finds Deno's compile caches warm. */
async function warmUp(sim: Simulator, broker: TestBroker): Promise<void> {
  const child = spawnEss(sim, broker, ["--once"]);
  const status = await child.status;
  if (!status.success) throw new Error(`ess mqtt --once failed with exit code ${status.code}`);
}

const SLOW_RUNS = 5;

async function commandLatency(
  sim: Simulator,
  broker: TestBroker,
  watcher: Watcher,
  arrivals: number[],
  count: number,
) {
  // The path of one command is measured: no spacing, which would hold back the next command
  // for the same control on purpose.
  const child = spawnEss(sim, broker, [
    "--interval-seconds",
    "1",
    "--control-spacing-seconds",
    "0.001",
  ]);
  try {
    await watcher.until(() => watcher.last.get("ess/status")?.payload === "online", "online");
    const latencies: number[] = [];
    for (let i = 0; i < count; i++) {
      const seen = arrivals.length;
      const sent = performance.now();
      await watcher.publish("ess/control/winter_mode", i % 2 === 0 ? "true" : "false");
      while (arrivals.length === seen) await pause(1);
      latencies.push(arrivals[seen]! - sent);
      // Spread the commands over the poll cycle.
      await pause(37 + (i * 53) % 200);
    }
    return latencies.sort((a, b) => a - b);
  } finally {
    await stopEss(child);
  }
}

if (import.meta.main) {
  ticksPerSecond = await clockTicks();
  const arrivals: number[] = [];
  const sim = await startSimulator({
    logger: createLogger("debug", (line) => {
      if (line.includes(`PUT ${BATT_SETTING_PATH} `)) arrivals.push(performance.now());
    }),
  });
  const broker = await startAedes();
  const watcher = await watch(broker.url);
  try {
    write("ess mqtt benchmark: simulator + in-process aedes, ess as a subprocess\n");
    await warmUp(sim, broker);
    const runs: Awaited<ReturnType<typeof atOneSecond>>[] = [];
    for (let run = 1; run <= SLOW_RUNS; run++) {
      write(`  22 s at a 1 s interval (run ${run} of ${SLOW_RUNS}) ...\n`);
      runs.push(await atOneSecond(sim, broker));
    }
    // The run with the median CPU over the first 20 s stands for all of them: start-up CPU
    // varies by tens of ms from run to run (most of it Deno's TLS set-up).
    const slow = runs.find((r) => r.first20.cpu === median(runs.map((r) => r.first20.cpu)))!;
    const cycles = Number(Deno.args[0] ?? 10_000);
    const warmup = Number(Deno.args[1] ?? 50_000);
    write(
      `  ${cycles.toLocaleString("en")} fast cycles after ${
        warmup.toLocaleString("en")
      } to warm up ...\n`,
    );
    const fast = await fastCycles(sim, broker, cycles, warmup);
    write("  command flood, 2 minutes ...\n");
    const flood = await commandFlood(sim, broker, 120);
    write("  command latency ...\n");
    const latencies = await commandLatency(sim, broker, watcher, arrivals, 60);
    const first = fast.samples[0]!;
    const last = fast.samples.at(-1)!;
    const cpuPerCycleMs = (last.cpu - first.cpu) / fast.cycles * 1000;
    const growth = last.rssMb - first.rssMb;
    const rssRange = fast.samples.map((s) => s.rssMb);
    const p50 = percentile(latencies, 50);
    const p95 = percentile(latencies, 95);
    const cpus = runs.map((r) => r.first20.cpu.toFixed(2)).join(" / ");
    const k = (n: number) => n.toLocaleString("en");
    const rows: [string, string, string][] = [
      ["start-up: CPU in the first 2 s", `${slow.started.cpu.toFixed(2)} CPU-s`, ""],
      [
        "CPU over 20 s at 1 s interval, after start-up",
        `${(slow.steady.cpu - slow.started.cpu).toFixed(2)} CPU-s`,
        "<= 0.29",
      ],
      [
        "CPU over the first 20 s, start-up included (median)",
        `${slow.first20.cpu.toFixed(2)} CPU-s`,
        "<= 0.29",
      ],
      [`  the ${SLOW_RUNS} runs`, `${cpus} CPU-s`, ""],
      [
        "peak RSS over 22 s at 1 s interval (highest run)",
        `${Math.max(...runs.map((r) => r.steady.peakMb)).toFixed(1)} MB`,
        "<= 66",
      ],
      ["CPU per fast poll cycle (home + common)", `${cpuPerCycleMs.toFixed(2)} ms`, ""],
      [
        `RSS from ${k(fast.warmup)} to ${k(fast.warmup + fast.cycles)} cycles, every ${
          k(fast.cycles / 4)
        }`,
        `${rssRange.map((r) => r.toFixed(1)).join(" / ")} MB`,
        "",
      ],
      [
        `RSS growth over those ${k(fast.cycles)} cycles`,
        `${growth >= 0 ? "+" : ""}${growth.toFixed(1)} MB`,
        "~0",
      ],
      ["V8 heap after each full collection in the fast run", heapRange(fast.liveHeaps), "flat"],
      ["peak RSS in the fast run", `${last.peakMb.toFixed(1)} MB`, ""],
      [`commands in the 2-minute flood`, k(flood.commands), ""],
      ["V8 heap after each full collection in the flood", heapRange(flood.liveHeaps), "flat"],
      [
        "RSS in the flood, every 30 s",
        `${flood.rss.map((r) => r.toFixed(1)).join(" / ")} MB`,
        "",
      ],
      ["cycles per second in the fast run", `${(fast.cycles / fast.seconds).toFixed(0)}`, ""],
      ["command latency p50", `${p50.toFixed(1)} ms`, ""],
      ["command latency p95", `${p95.toFixed(1)} ms`, "< 100"],
    ];
    writeTable(rows);
  } finally {
    await watcher.close();
    await broker.close();
    await sim.close();
  }
}
