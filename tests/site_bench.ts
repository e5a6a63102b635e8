/**
 * Benchmark of several devices in one `ess mqtt` process, run by `deno task bench` (it measures
 * whole processes, so it is a script rather than a `Deno.bench`). The simulated devices
 * (tests/_site.ts) and an aedes broker run here; `ess mqtt` runs as a subprocess with the flags
 * of run-flags.txt and a config file, at a 1 s interval, and its CPU time and memory are read
 * from /proc:
 *
 * - cost: single mode (one device, no `[device]` section), named mode with one section and
 *   named mode with four, `RUNS` runs each in turn; peak RSS (goal for four devices: at most
 *   75 MB) and CPU per device-poll over 20 s after every device has polled (goal: at most 1.2
 *   times the single-mode figure); then single mode and four devices for `LONG` seconds each,
 *   RSS every 30 s and the peak, since V8's heap settles over minutes rather than seconds;
 * - independence: four devices, all healthy, then one that accepts connections and never
 *   answers, then one that answers every request after 5 s; the gaps between the other
 *   devices' polls (as their simulators see them) and between their publishing bursts on
 *   `ess/<name>/home/…` (as the broker delivers them; `--publish-mode all`, so every poll
 *   publishes), median and largest, and the latency of commands to one of them
 *   (`ess/sim1/control/winter_mode` published -> request at sim1).
 *
 * `deno run -A tests/site_bench.ts [RUNS] [LONG]` runs it alone (default 3 runs, 180 s; about
 * 11 minutes).
 *
 * @module
 */
import mqtt from "mqtt";
import { BATT_SETTING_PATH, STATE_PATHS } from "../lib/device/states.ts";
import { startAedes, type TestBroker } from "./_broker.ts";
import {
  clockTicks,
  median,
  pause,
  percentile,
  sample as sampleProcess,
  spawnEss,
  stopEss,
  write,
  writeTable,
} from "./_bench.ts";
import { type SiteSim, startSite, type TestSite } from "./_site.ts";

/** Clock ticks per second of /proc's CPU times, set before measuring. */
let ticksPerSecond = 100;
const sample = (pid: number) => sampleProcess(pid, ticksPerSecond);

/** The window in which CPU and polls are counted, after every device has polled twice. */
const WINDOW_MS = 20_000;
/** How long an independence run watches the healthy devices. */
const WATCH_MS = 30_000;
/** Messages closer than this belong to one publishing burst (one poll's topics). */
const BURST_MS = 150;

/** How `ess mqtt` finds its devices: one top-level device, or `[device]` sections. */
type Mode = "single" | "named";

/** A config file for `mode` over `devices` (single mode: the first alone), at a 1 s interval. */
async function configFor(
  devices: readonly SiteSim[],
  mode: Mode,
  broker: TestBroker,
): Promise<string> {
  const lines = [`mqtt_server = ${broker.url}`, "interval_seconds = 1"];
  for (const { name, sim } of mode === "named" ? devices : devices.slice(0, 1)) {
    if (mode === "named") lines.push(`[device ${name}]`);
    lines.push(
      `host = ${sim.host}`,
      `password = ${sim.password}`,
      `fingerprint = ${sim.fingerprint}`,
    );
  }
  const path = await Deno.makeTempFile({ prefix: "ess-bench-", suffix: ".conf" });
  await Deno.writeTextFile(path, `${lines.join("\n")}\n`);
  return path;
}

function spawnMqtt(config: string, args: string[] = []): Deno.ChildProcess {
  return spawnEss(["mqtt", "--config", config, "--log-level", "warning", ...args]);
}

/** Per simulator: requests looked at so far, and the polls of `home` among them. */
const pollCounts = new WeakMap<SiteSim["sim"], { seen: number; polls: number }>();

/** Polls of `home` that reached a device's current simulator so far (counted incrementally). */
function polls(d: SiteSim): number {
  const count = pollCounts.get(d.sim) ?? { seen: 0, polls: 0 };
  const { requests } = d.sim;
  for (; count.seen < requests.length; count.seen++) {
    if (requests[count.seen]!.path === STATE_PATHS.home) count.polls++;
  }
  pollCounts.set(d.sim, count);
  return count.polls;
}

async function untilEach(devices: readonly SiteSim[], n: (d: SiteSim) => number, what: string) {
  const deadline = performance.now() + 60_000;
  while (!devices.every((d) => polls(d) >= n(d))) {
    if (performance.now() > deadline) throw new Error(`no ${what} within 60 s`);
    await pause(20);
  }
}

/** One run of `ess mqtt` over the site's first `count` devices: CPU per device-poll, peak RSS. */
async function costRun(site: TestSite, broker: TestBroker, mode: Mode, count: number) {
  const devices = site.devices.slice(0, count);
  const config = await configFor(devices, mode, broker);
  const child = spawnMqtt(config);
  try {
    const base = new Map(devices.map((d) => [d, polls(d)]));
    await untilEach(devices, (d) => base.get(d)! + 2, "two polls of every device");
    const before = sample(child.pid);
    const start = devices.map(polls);
    await pause(WINDOW_MS);
    const after = sample(child.pid);
    const devicePolls = devices.map(polls).reduce((sum, n, i) => sum + n - start[i]!, 0);
    return {
      cpuPerPollMs: (after.cpu - before.cpu) / devicePolls * 1000,
      cpu: after.cpu - before.cpu,
      devicePolls,
      peakMb: after.peakMb,
    };
  } finally {
    await stopEss(child);
    await Deno.remove(config);
  }
}

/** RSS of `ess mqtt` in `mode` (named: four devices), every 30 s over `seconds`, and its peak. */
async function memoryRun(site: TestSite, broker: TestBroker, mode: Mode, seconds: number) {
  const config = await configFor(site.devices, mode, broker);
  const child = spawnMqtt(config);
  try {
    const rss: number[] = [];
    for (let t = 30; t <= seconds; t += 30) {
      await pause(30_000);
      rss.push(sample(child.pid).rssMb);
    }
    return { rss, peakMb: sample(child.pid).peakMb };
  } finally {
    await stopEss(child);
    await Deno.remove(config);
  }
}

/** Times (ms, `performance.now()`) at which each device's poll count grew. */
function watchPolls(devices: readonly SiteSim[]): { times: Map<string, number[]>; stop(): void } {
  const times = new Map(devices.map((d) => [d.name, [] as number[]]));
  const counts = new Map(devices.map((d) => [d.name, polls(d)]));
  const timer = setInterval(() => {
    const now = performance.now();
    for (const d of devices) {
      const n = polls(d);
      if (n > counts.get(d.name)!) times.get(d.name)!.push(now);
      counts.set(d.name, n);
    }
  }, 10);
  return { times, stop: () => clearInterval(timer) };
}

/** Start times of each device's publishing bursts on `ess/<name>/home/…`. */
async function watchBursts(url: string, names: readonly string[]) {
  const client = await mqtt.connectAsync(url, { clientId: `bench-${crypto.randomUUID()}` });
  const bursts = new Map(names.map((n) => [n, [] as number[]]));
  const last = new Map<string, number>();
  client.on("message", (topic, _payload, packet) => {
    if (packet.retain) return;
    const name = topic.split("/")[1]!;
    const list = bursts.get(name);
    if (!list) return;
    const now = performance.now();
    if (now - (last.get(name) ?? -Infinity) > BURST_MS) list.push(now);
    last.set(name, now);
  });
  await client.subscribeAsync(names.map((n) => `ess/${n}/home/#`));
  return { bursts, close: () => client.endAsync() };
}

/** Gaps between successive times after `from`, ascending. */
function gaps(times: readonly number[], from: number): number[] {
  const after = times.filter((t) => t >= from);
  return after.slice(1).map((t, i) => t - after[i]!).sort((a, b) => a - b);
}

/** Latency of `count` winter mode commands to `d` (published -> request at the device). */
async function commandLatencies(url: string, d: SiteSim, count: number): Promise<number[]> {
  const client = await mqtt.connectAsync(url, { clientId: `bench-${crypto.randomUUID()}` });
  const writes = () => d.sim.requests.filter((r) => r.path === BATT_SETTING_PATH).length;
  const latencies: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const seen = writes();
      const sent = performance.now();
      await client.publishAsync(`ess/${d.name}/control/winter_mode`, i % 2 ? "false" : "true");
      const deadline = sent + 15_000;
      while (writes() === seen && performance.now() < deadline) await pause(1);
      latencies.push(writes() === seen ? Infinity : performance.now() - sent);
      await pause(700 + (i * 137) % 400);
    }
  } finally {
    await client.endAsync();
  }
  return latencies.sort((a, b) => a - b);
}

/**
 * Whether this commit's `ess mqtt` runs named mode: it polls both devices of a two-section
 * config within 15 s rather than exiting or polling only one.
 */
async function namedModeRuns(site: TestSite, broker: TestBroker): Promise<boolean> {
  const devices = site.devices.slice(0, 2);
  const config = await configFor(devices, "named", broker);
  const child = spawnMqtt(config);
  let exited = false;
  void child.status.then(() => exited = true);
  try {
    const base = devices.map(polls);
    const allPolled = () => devices.every((d, i) => polls(d) > base[i]!);
    const deadline = performance.now() + 15_000;
    while (!exited && !allPolled() && performance.now() < deadline) await pause(20);
    return !exited && allPolled();
  } finally {
    if (!exited) await stopEss(child);
    await child.status;
    await Deno.remove(config);
  }
}

type Trouble = "none" | "hanging" | "slow";

/**
 * Four devices in one `ess mqtt`, the fourth in `trouble`: the gaps of the other three's polls
 * and publishing bursts over {@link WATCH_MS}, and command latency to the first.
 */
async function independenceRun(site: TestSite, broker: TestBroker, trouble: Trouble) {
  const troubled = site.devices[3]!;
  if (trouble === "hanging") await troubled.hang();
  if (trouble === "slow") troubled.sim.setFaults({ latencyMs: 5_000 });
  const healthy = site.devices.slice(0, 3);
  const config = await configFor(site.devices, "named", broker);
  const pollWatch = watchPolls(healthy);
  const burstWatch = await watchBursts(broker.url, healthy.map((d) => d.name));
  // Every poll publishes (`all`), so that a missing burst is a delay, not an unchanged value.
  const child = spawnMqtt(config, [
    "--control-spacing-seconds",
    "0.001",
    "--publish-mode",
    "all",
  ]);
  try {
    const base = new Map(healthy.map((d) => [d, polls(d)]));
    await untilEach(healthy, (d) => base.get(d)! + 2, "two polls of every healthy device");
    const from = performance.now();
    const latencies = commandLatencies(broker.url, healthy[0]!, 12);
    await pause(WATCH_MS);
    const pollGaps = healthy.flatMap((d) => gaps(pollWatch.times.get(d.name)!, from));
    const burstGaps = healthy.flatMap((d) => gaps(burstWatch.bursts.get(d.name)!, from));
    return {
      pollGaps: pollGaps.sort((a, b) => a - b),
      burstGaps: burstGaps.sort((a, b) => a - b),
      latencies: await latencies,
    };
  } finally {
    pollWatch.stop();
    await burstWatch.close();
    await stopEss(child);
    await Deno.remove(config);
    if (trouble === "hanging") await troubled.start();
    if (trouble === "slow") troubled.sim.setFaults({ latencyMs: 0 });
  }
}

const ms = (n: number) => Number.isFinite(n) ? `${n.toFixed(0)} ms` : "none";
const gapText = (g: number[]) =>
  g.length === 0 ? "none" : `${ms(median(g))} / ${ms(g.at(-1)!)} (${g.length})`;

type CostRuns = Map<string, Awaited<ReturnType<typeof costRun>>[]>;
type IndependenceRuns = Map<Trouble, Awaited<ReturnType<typeof independenceRun>>>;

const KIND_LABELS: Record<string, string> = {
  single: "single mode",
  named1: "named, 1 device",
  named4: "named, 4 devices",
};

/** The table: cost per kind of run, the 4-device ratio and RSS goal, then independence. */
function resultRows(cost: CostRuns, independence: IndependenceRuns): [string, string, string][] {
  const rows: [string, string, string][] = [];
  const perPoll = (k: string) => median(cost.get(k)!.map((r) => r.cpuPerPollMs));
  for (const [kind, runs] of cost) {
    const label = KIND_LABELS[kind]!;
    rows.push(
      [`${label}: CPU per device-poll (median)`, `${perPoll(kind).toFixed(2)} ms`, ""],
      ["  the runs", `${runs.map((r) => r.cpuPerPollMs.toFixed(2)).join(" / ")} ms`, ""],
      ["  device-polls in each 20 s window", runs.map((r) => r.devicePolls).join(" / "), ""],
      ["  CPU in each 20 s window", `${runs.map((r) => r.cpu.toFixed(2)).join(" / ")} CPU-s`, ""],
      [
        `${label}: peak RSS (highest run)`,
        `${Math.max(...runs.map((r) => r.peakMb)).toFixed(1)} MB`,
        kind === "named4" ? "<= 75" : "",
      ],
    );
  }
  if (cost.has("named4")) {
    const ratio = perPoll("named4") / perPoll("single");
    rows.push(["4 devices / single mode, CPU per device-poll", `${ratio.toFixed(2)}x`, "<= 1.2x"]);
  }
  for (const [trouble, r] of independence) {
    const label = trouble === "none" ? "all healthy" : `4th ${trouble}`;
    rows.push(
      [`${label}: others' poll gaps, median / max (n)`, gapText(r.pollGaps), "~1000 ms"],
      [`${label}: others' publish gaps, median / max (n)`, gapText(r.burstGaps), "~1000 ms"],
      [
        `${label}: command latency to sim1, p50 / max`,
        `${ms(percentile(r.latencies, 50))} / ${ms(r.latencies.at(-1)!)}`,
        "",
      ],
    );
  }
  return rows;
}

if (import.meta.main) {
  ticksPerSecond = await clockTicks();
  const runs = Number(Deno.args[0] ?? 3);
  await using site = await startSite(4);
  const broker = await startAedes();
  try {
    write("several devices in one ess mqtt: simulators + in-process aedes, ess as a subprocess\n");
    const warm = await configFor(site.devices, "single", broker);
    await (spawnMqtt(warm, ["--once"])).status;
    await Deno.remove(warm);
    const named = await namedModeRuns(site, broker);
    if (!named) write("  ess mqtt does not run named mode at this commit: single mode only\n");
    const kinds = named ? (["single", "named1", "named4"] as const) : (["single"] as const);
    const cost: CostRuns = new Map(kinds.map((k) => [k, []]));
    for (let run = 1; run <= runs; run++) {
      write(`  cost, run ${run} of ${runs}: ${kinds.join(", ")} ...\n`);
      for (const kind of kinds) {
        const count = kind === "named4" ? 4 : 1;
        cost.get(kind)!.push(
          await costRun(site, broker, kind === "single" ? "single" : "named", count),
        );
      }
    }
    const long = Number(Deno.args[1] ?? 180);
    const memory = new Map<Mode, Awaited<ReturnType<typeof memoryRun>>>();
    for (const mode of named ? (["single", "named"] as const) : []) {
      write(`  ${mode} mode for ${long} s, RSS every 30 s ...\n`);
      memory.set(mode, await memoryRun(site, broker, mode, long));
    }
    const independence: IndependenceRuns = new Map();
    for (const trouble of named ? (["none", "hanging", "slow"] as const) : []) {
      write(`  independence, fourth device ${trouble === "none" ? "healthy" : trouble} ...\n`);
      independence.set(trouble, await independenceRun(site, broker, trouble));
    }
    const rows = resultRows(cost, independence);
    for (const [mode, m] of memory) {
      const label = mode === "single" ? "single mode" : "named, 4 devices";
      rows.push(
        [
          `${label} over ${long} s: RSS every 30 s`,
          `${m.rss.map((r) => r.toFixed(1)).join(" / ")} MB`,
          "",
        ],
        [
          `${label} over ${long} s: peak RSS`,
          `${m.peakMb.toFixed(1)} MB`,
          mode === "named" ? "<= 75" : "",
        ],
      );
    }
    writeTable(rows);
  } finally {
    await broker.close();
  }
}
